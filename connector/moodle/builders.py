"""Record builders: one Moodle answer item -> one frozen record of :mod:`connector.moodle.records`.

Each builder reads the known shape of its function's result through :mod:`.coerce`, so JSON and
XML answers give identical records; ``@read_record`` turns an unreadable value into a protocol
error naming the record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from connector.errors import MoodleProtocolError
from connector.i18n import _
from connector.moodle.coerce import (
    as_list,
    as_str,
    expect_dict,
    opt_bool,
    opt_float,
    opt_int,
    to_bool,
    to_int,
)
from connector.moodle.records import (
    Cohort,
    CohortMembers,
    Course,
    CourseCompletion,
    EnrolledUser,
    Enrolment,
    Person,
    ReportPage,
    SiteInfo,
    UserCourse,
    read_record,
)

AGGREGATION_ALL = 1
AGGREGATION_ANY = 2


def site_info_from(data: Mapping[str, Any]) -> SiteInfo:
    return SiteInfo(
        sitename=as_str(data.get("sitename")),
        siteurl=as_str(data.get("siteurl")),
        release=as_str(data.get("release")),
        version=as_str(data.get("version")),
        lang=as_str(data.get("lang")),
        username=as_str(data.get("username")),
        userid=to_int(data.get("userid")),
        functions=frozenset(
            as_str(f.get("name")) for f in as_list(data.get("functions")) if isinstance(f, dict)
        ),
    )


@read_record("course")
def course_from(data: Mapping[str, Any]) -> Course:
    return Course(
        id=to_int(data.get("id")),
        shortname=as_str(data.get("shortname")),
        fullname=as_str(data.get("fullname")),
        idnumber=as_str(data.get("idnumber")),
        visible=to_bool(data.get("visible", 1)),
        completion_enabled=to_bool(data.get("enablecompletion", 0)),
        category_id=to_int(data.get("categoryid", data.get("category"))),
    )


# What Moodle's delete_user() leaves of an account: username "<old email>.<unix time>", email the
# md5 of that (32 hex digits); a lookup by id still answers, with no "deleted" field (4.5 capture,
# quirk 20).
_DELETED_USERNAME = re.compile(r"^.*\.\d{9,}$")
_MD5 = re.compile(r"^[0-9a-f]{32}$")


def looks_deleted(username: str, email: str) -> bool:
    return bool(_DELETED_USERNAME.match(username) and _MD5.match(email))


@read_record("user")
def person_from(data: Mapping[str, Any]) -> Person:
    custom = sorted(
        (as_str(f.get("shortname")), as_str(f.get("value")))
        for f in as_list(data.get("customfields"))
        if isinstance(f, dict)
    )
    fullname = as_str(data.get("fullname")) or " ".join(
        part for part in (as_str(data.get("firstname")), as_str(data.get("lastname"))) if part
    )
    return Person(
        id=to_int(data.get("id")),
        username=as_str(data.get("username")),
        idnumber=as_str(data.get("idnumber")),
        fullname=fullname,
        email=as_str(data.get("email")),
        department=as_str(data.get("department")),
        institution=as_str(data.get("institution")),
        custom_fields=tuple(custom),
        suspended=opt_bool(data.get("suspended")),
        firstaccess=to_int(data.get("firstaccess")),
        lastaccess=to_int(data.get("lastaccess")),
        deleted=looks_deleted(as_str(data.get("username")), as_str(data.get("email"))),
    )


@read_record("enrolled user")
def enrolled_user_from(course_id: int, data: Mapping[str, Any]) -> EnrolledUser:
    person = person_from(data)
    return EnrolledUser(
        person=person,
        enrolment=Enrolment(
            course_id=course_id, user_id=person.id, lastcourseaccess=opt_int(data.get("lastcourseaccess"))
        ),
    )


def completion_time(aggregation: int, criteria: Iterable[Mapping[str, Any]]) -> int | None:
    """Latest criterion time for ALL, earliest for ANY; None when no criterion carries a time."""
    times = [to_int(c.get("timecompleted")) for c in criteria if opt_int(c.get("timecompleted"))]
    if not times:
        return None
    return min(times) if aggregation == AGGREGATION_ANY else max(times)


@read_record("completion status")
def course_completion_from(course_id: int, user_id: int, data: Mapping[str, Any]) -> CourseCompletion:
    status = data.get("completionstatus")
    if not isinstance(status, dict):
        raise MoodleProtocolError(
            _("core_completion_get_course_completion_status: no completionstatus in the answer"),
            function="core_completion_get_course_completion_status",
        )
    completed = to_bool(status.get("completed"))
    aggregation = to_int(status.get("aggregation"), AGGREGATION_ALL)
    criteria = [c for c in as_list(status.get("completions")) if isinstance(c, dict)]
    return CourseCompletion(
        user_id=user_id,
        course_id=course_id,
        completed=completed,
        completed_at=completion_time(aggregation, criteria) if completed else None,
    )


@read_record("user's course")
def user_course_from(user_id: int, data: Mapping[str, Any]) -> UserCourse:
    return UserCourse(
        user_id=user_id,
        course_id=to_int(data.get("id")),
        shortname=as_str(data.get("shortname")),
        idnumber=as_str(data.get("idnumber")),
        visible=to_bool(data.get("visible", 1)),
        completion_enabled=to_bool(data.get("enablecompletion", 0)),
        completed=opt_bool(data.get("completed")),
        progress=opt_float(data.get("progress")),
        lastaccess=opt_int(data.get("lastaccess")),
    )


def cohort_from(data: Mapping[str, Any]) -> Cohort:
    return Cohort(
        id=to_int(data.get("id")),
        idnumber=as_str(data.get("idnumber")),
        name=as_str(data.get("name")),
        visible=to_bool(data.get("visible", 1)),
    )


def cohort_members_from(data: Mapping[str, Any]) -> CohortMembers:
    return CohortMembers(
        cohort_id=to_int(data.get("cohortid")),
        user_ids=tuple(sorted(to_int(u) for u in as_list(data.get("userids")))),
    )


def report_page_from(report_id: int, page: int, data: Any, function: str) -> ReportPage:
    body = expect_dict(expect_dict(data, function).get("data"), function)
    rows = tuple(
        # cells are strings as Moodle sends them: converted only when not (a cheap row at 100,000s)
        tuple(cell if type(cell) is str else as_str(cell) for cell in as_list(row.get("columns")))
        for row in as_list(body.get("rows"))
        if isinstance(row, dict)
    )
    return ReportPage(
        report_id=int(report_id),
        page=page,
        headers=tuple(as_str(h) for h in as_list(body.get("headers"))),
        rows=rows,
        total_rows=to_int(body.get("totalrowcount")),
    )


def not_site_course(data: Any) -> bool:
    """A course item, not the site's front page (format "site")."""
    return isinstance(data, dict) and as_str(data.get("format")) != "site"


def warnings_of(data: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    return [w for w in as_list(data.get("warnings")) if isinstance(w, dict)]
