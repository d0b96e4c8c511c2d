"""Typed fetchers over :class:`MoodleClient`: Moodle's answers -> frozen records.

JSON and XML answers give identical records: XML carries only text, so every field is coerced by
the known shape of each function's result (ints, "1"/"0" booleans, None for null).

Warnings are read, never ignored: where Moodle answers a question other than the one asked (an
unsupported search key returns *everything* plus a warning), the fetcher raises instead.

Per-enrolment problems in :meth:`MoodleApi.course_completions` (``usernotenroled``,
``nocriteriaset``, ``cannotviewreport``, an unknown course or user) are yielded as errors for the
caller to record; auth, permission and availability errors end the whole fetch.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from connector.errors import (
    MoodleError,
    MoodleNotFound,
    MoodleProtocolError,
    MoodleRequestError,
    MoodleUnavailable,
)
from connector.moodle.client import PER_ENROLMENT_ERRORCODES, MoodleClient, MoodleFunctionNotFound
from connector.moodle.records import (
    Cohort,
    CohortMembers,
    Course,
    CourseCompletion,
    EnrolledUser,
    Enrolment,
    Person,
    ReportCompletion,
    ReportPage,
    SiteInfo,
    UserCourse,
    read_record,
    whole_number,
)
from connector.moodle.reportconditions import ReportConditions, report_conditions_from
from connector.moodle.reporttime import (
    ReportColumns,
    ReportTimeError,
    cell_text,
    choose_zone,
    consistent_zones,
    link_id,
    local_to_epoch,
    most_telling_row,
    parse_report_datetime,
    zone_order,
)

__all__ = ["MoodleApi", "ReportColumns"]

log = logging.getLogger("connector.moodle")

AGGREGATION_ALL = 1
AGGREGATION_ANY = 2
_CALIBRATION_SAMPLE_ROWS = 5000
_CALIBRATION_MAX_LOOKUPS = 6


# --------------------------------------------------------------------------------------------
# coercion: JSON gives typed values, XML gives text


def _int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    return whole_number(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None or value == "" else whole_number(value)


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true")
    return bool(value)


def _opt_bool(value: Any) -> bool | None:
    return None if value is None or value == "" else _bool(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any, function: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MoodleProtocolError(
            f"{function}: expected a structure, got {type(value).__name__}", function=function
        )
    return value


def _as_list(value: Any, function: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MoodleProtocolError(
            f"{function}: expected a list, got {type(value).__name__}", function=function
        )
    return value


# --------------------------------------------------------------------------------------------
# record builders


def site_info_from(data: Mapping[str, Any]) -> SiteInfo:
    return SiteInfo(
        sitename=_str(data.get("sitename")),
        siteurl=_str(data.get("siteurl")),
        release=_str(data.get("release")),
        version=_str(data.get("version")),
        lang=_str(data.get("lang")),
        username=_str(data.get("username")),
        userid=_int(data.get("userid")),
        functions=frozenset(_str(f.get("name")) for f in _list(data.get("functions")) if isinstance(f, dict)),
    )


@read_record("course")
def course_from(data: Mapping[str, Any]) -> Course:
    return Course(
        id=_int(data.get("id")),
        shortname=_str(data.get("shortname")),
        fullname=_str(data.get("fullname")),
        idnumber=_str(data.get("idnumber")),
        visible=_bool(data.get("visible", 1)),
        completion_enabled=_bool(data.get("enablecompletion", 0)),
        category_id=_int(data.get("categoryid", data.get("category"))),
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
        (_str(f.get("shortname")), _str(f.get("value")))
        for f in _list(data.get("customfields"))
        if isinstance(f, dict)
    )
    fullname = _str(data.get("fullname")) or " ".join(
        part for part in (_str(data.get("firstname")), _str(data.get("lastname"))) if part
    )
    return Person(
        id=_int(data.get("id")),
        username=_str(data.get("username")),
        idnumber=_str(data.get("idnumber")),
        fullname=fullname,
        email=_str(data.get("email")),
        department=_str(data.get("department")),
        institution=_str(data.get("institution")),
        custom_fields=tuple(custom),
        suspended=_opt_bool(data.get("suspended")),
        firstaccess=_int(data.get("firstaccess")),
        lastaccess=_int(data.get("lastaccess")),
        deleted=looks_deleted(_str(data.get("username")), _str(data.get("email"))),
    )


@read_record("enrolled user")
def enrolled_user_from(course_id: int, data: Mapping[str, Any]) -> EnrolledUser:
    person = person_from(data)
    return EnrolledUser(
        person=person,
        enrolment=Enrolment(
            course_id=course_id, user_id=person.id, lastcourseaccess=_opt_int(data.get("lastcourseaccess"))
        ),
    )


def completion_time(aggregation: int, criteria: Iterable[Mapping[str, Any]]) -> int | None:
    """Latest criterion time for ALL, earliest for ANY; None when no criterion carries a time."""
    times = [_int(c.get("timecompleted")) for c in criteria if _opt_int(c.get("timecompleted"))]
    if not times:
        return None
    return min(times) if aggregation == AGGREGATION_ANY else max(times)


@read_record("completion status")
def course_completion_from(course_id: int, user_id: int, data: Mapping[str, Any]) -> CourseCompletion:
    status = data.get("completionstatus")
    if not isinstance(status, dict):
        raise MoodleProtocolError(
            "core_completion_get_course_completion_status: no completionstatus in the answer",
            function="core_completion_get_course_completion_status",
        )
    completed = _bool(status.get("completed"))
    aggregation = _int(status.get("aggregation"), AGGREGATION_ALL)
    criteria = [c for c in _list(status.get("completions")) if isinstance(c, dict)]
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
        course_id=_int(data.get("id")),
        shortname=_str(data.get("shortname")),
        idnumber=_str(data.get("idnumber")),
        visible=_bool(data.get("visible", 1)),
        completion_enabled=_bool(data.get("enablecompletion", 0)),
        completed=_opt_bool(data.get("completed")),
        progress=_opt_float(data.get("progress")),
        lastaccess=_opt_int(data.get("lastaccess")),
    )


def is_per_enrolment_error(error: MoodleError) -> bool:
    """Errors that concern one (course, user) pair: recorded per enrolment, the sync goes on."""
    if isinstance(error, MoodleFunctionNotFound):
        return False
    if isinstance(error, MoodleNotFound):
        return True
    return isinstance(error, MoodleRequestError) and error.errorcode in PER_ENROLMENT_ERRORCODES


# --------------------------------------------------------------------------------------------
# the API


class MoodleApi:
    """The functions the connector uses, returning records from :mod:`connector.moodle.records`."""

    def __init__(self, client: MoodleClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"MoodleApi({self.client!r})"

    def _warnings_are_fatal(self, function: str, data: Mapping[str, Any]) -> None:
        warnings = [w for w in _list(data.get("warnings")) if isinstance(w, dict)]
        if warnings:
            said = "; ".join(f"{_str(w.get('warningcode'))}: {_str(w.get('message'))}" for w in warnings)
            raise MoodleRequestError(
                f"{function}: Moodle answered with warnings that change the result: {said}",
                function=function,
                errorcode=_str(warnings[0].get("warningcode")) or None,
            )

    @staticmethod
    def _log_warnings(function: str, data: Mapping[str, Any]) -> None:
        for warning in _list(data.get("warnings")):
            if isinstance(warning, dict):
                log.warning("%s: Moodle warning %s", function, _str(warning.get("warningcode")))

    # -- site and courses ---------------------------------------------------------------------

    def site_info(self) -> SiteInfo:
        function = "core_webservice_get_site_info"
        return site_info_from(_dict(self.client.call(function), function))

    def courses(self, ids: Sequence[int] | None = None) -> list[Course]:
        """Courses by id (all when ids is None), without the site's front page (format "site")."""
        function = "core_course_get_courses"
        params = {"options": {"ids": [int(i) for i in ids]}} if ids is not None else None
        if ids is not None and not ids:
            return []
        data = _as_list(self.client.call(function, params), function)
        return [course_from(c) for c in data if isinstance(c, dict) and _str(c.get("format")) != "site"]

    def courses_by_field(self, field: str | None = None, value: str | int | None = None) -> list[Course]:
        """``core_course_get_courses_by_field`` (field: id, ids, shortname, idnumber, category)."""
        function = "core_course_get_courses_by_field"
        params: dict[str, Any] = {}
        if field is not None:
            params = {"field": field, "value": value}
        data = _dict(self.client.call(function, params), function)
        self._warnings_are_fatal(function, data)
        return [
            course_from(c)
            for c in _list(data.get("courses"))
            if isinstance(c, dict) and _str(c.get("format")) != "site"
        ]

    # -- people -------------------------------------------------------------------------------

    def enrolled_users(
        self,
        course_id: int,
        *,
        page_size: int = 1000,
        userfields: Sequence[str] | None = None,
        only_active: bool = False,
    ) -> Iterator[EnrolledUser]:
        """Every enrolled user of a course once, paged with limitfrom/limitnumber.

        ``only_active`` leaves out suspended and ended enrolments (Moodle's ``onlyactive``; it
        looks at the enrolment, not at whether the person's account is suspended)."""
        function = "core_enrol_get_enrolled_users"
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        seen: set[int] = set()
        offset = 0
        while True:
            options: list[dict[str, Any]] = []
            if userfields:
                options.append({"name": "userfields", "value": ",".join(userfields)})
            if only_active:
                options.append({"name": "onlyactive", "value": 1})
            options += [{"name": "limitfrom", "value": offset}, {"name": "limitnumber", "value": page_size}]
            page = _as_list(
                self.client.call(function, {"courseid": int(course_id), "options": options}), function
            )
            for row in page:
                if isinstance(row, dict) and _int(row.get("id")) not in seen:
                    seen.add(_int(row.get("id")))  # a user enrolled mid-paging can shift rows
                    yield enrolled_user_from(int(course_id), row)
            if len(page) < page_size:
                return
            offset += page_size

    def enrolled_users_of(
        self,
        course_ids: Iterable[int],
        *,
        page_size: int = 1000,
        userfields: Sequence[str] | None = None,
        only_active: bool = False,
    ) -> Iterator[tuple[int, list[EnrolledUser]]]:
        """(course_id, its enrolled users) for each course, courses read concurrently, in input order."""
        return self.client.map(
            lambda course_id: (
                course_id,
                list(
                    self.enrolled_users(
                        course_id, page_size=page_size, userfields=userfields, only_active=only_active
                    )
                ),
            ),
            course_ids,
        )

    def users_by_field(
        self, field: str, values: Iterable[str | int], *, batch_size: int = 100
    ) -> list[Person]:
        """People by id, idnumber, username or email; carries ``suspended``."""
        wanted = [str(v) for v in values]
        batches = [wanted[start : start + batch_size] for start in range(0, len(wanted), batch_size)]
        people: list[Person] = []
        for found in self.client.map(lambda batch: self._users_batch(field, batch), batches):
            people.extend(found)
        return people

    def _users_batch(self, field: str, batch: list[str]) -> list[Person]:
        function = "core_user_get_users_by_field"
        data = _as_list(self.client.call(function, {"field": field, "values": batch}), function)
        return [person_from(row) for row in data if isinstance(row, dict)]

    # -- completions --------------------------------------------------------------------------

    def course_completion(self, course_id: int, user_id: int) -> CourseCompletion:
        function = "core_completion_get_course_completion_status"
        data = _dict(
            self.client.call(function, {"courseid": int(course_id), "userid": int(user_id)}), function
        )
        self._log_warnings(function, data)
        return course_completion_from(int(course_id), int(user_id), data)

    def course_completions(
        self, pairs: Iterable[tuple[int, int]]
    ) -> Iterator[CourseCompletion | MoodleError]:
        """Completion status per (course_id, user_id), concurrently, in input order."""
        return self.client.map(self._completion_or_error, pairs)

    def _completion_or_error(self, pair: tuple[int, int]) -> CourseCompletion | MoodleError:
        course_id, user_id = pair
        try:
            return self.course_completion(course_id, user_id)
        except MoodleError as error:
            if is_per_enrolment_error(error):
                return error
            raise

    def user_courses(self, user_id: int) -> list[UserCourse]:
        function = "core_enrol_get_users_courses"
        data = _as_list(self.client.call(function, {"userid": int(user_id)}), function)
        return [user_course_from(int(user_id), row) for row in data if isinstance(row, dict)]

    def users_courses(self, user_ids: Iterable[int]) -> Iterator[tuple[int, list[UserCourse]]]:
        return self.client.map(lambda user_id: (user_id, self.user_courses(user_id)), user_ids)

    # -- cohorts ------------------------------------------------------------------------------

    def cohorts(self) -> list[Cohort]:
        function = "core_cohort_get_cohorts"
        data = _as_list(self.client.call(function), function)
        return [
            Cohort(
                id=_int(c.get("id")),
                idnumber=_str(c.get("idnumber")),
                name=_str(c.get("name")),
                visible=_bool(c.get("visible", 1)),
            )
            for c in data
            if isinstance(c, dict)
        ]

    def cohort_members(self, cohort_ids: Iterable[int]) -> list[CohortMembers]:
        function = "core_cohort_get_cohort_members"
        ids = [int(i) for i in cohort_ids]
        if not ids:
            return []
        data = _as_list(self.client.call(function, {"cohortids": ids}), function)
        return [
            CohortMembers(
                cohort_id=_int(c.get("cohortid")),
                user_ids=tuple(sorted(_int(u) for u in _list(c.get("userids")))),
            )
            for c in data
            if isinstance(c, dict)
        ]

    # -- report builder -----------------------------------------------------------------------

    def reports(self, *, per_page: int = 100) -> list[tuple[int, str]]:
        """(id, name) of the custom reports the token's user can see."""
        function = "core_reportbuilder_list_reports"
        found: list[tuple[int, str]] = []
        page = 0
        while True:
            data = _dict(self.client.call(function, {"page": page, "perpage": per_page}), function)
            rows = [r for r in _list(data.get("reports")) if isinstance(r, dict)]
            found.extend((_int(r.get("id")), _str(r.get("name"))) for r in rows)
            if len(rows) < per_page:
                return found
            page += 1

    def report_conditions(self, report_id: int) -> ReportConditions:
        """The report's conditions as its editor shows them (``core_reportbuilder_reports_get``,
        editmode 1; needs edit rights on the report). See :mod:`connector.moodle.reportconditions`."""
        function = "core_reportbuilder_reports_get"
        data = _dict(self.client.call(function, {"reportid": int(report_id), "editmode": 1}), function)
        conditions = report_conditions_from(int(report_id), data)
        if conditions is None:
            raise MoodleProtocolError(
                f"{function}: report {report_id} came without its conditions", function=function
            )
        return conditions

    def report_pages(self, report_id: int, *, per_page: int = 1000) -> Iterator[ReportPage]:
        """Pages of a custom report until all ``totalrowcount`` rows are read."""
        page, read = 0, 0
        while True:
            current = self.report_page(report_id, page, per_page)
            yield current
            read += len(current.rows)
            if not current.rows or read >= current.total_rows:
                return
            page += 1

    def report_pages_concurrently(self, report_id: int, *, per_page: int = 1000) -> Iterator[ReportPage]:
        """Every row of a report, its pages read side by side (in order) up to the worker limit.

        A one-row probe gives ``totalrowcount``; the pages are then sized so that every worker
        gets one (never larger than ``per_page``): the server's cost grows with rows, so equal
        pages read in parallel finish soonest. Rows added while reading are read after.
        """
        probe = self.report_page(report_id, 0, 1)
        total = probe.total_rows
        if total == 0:
            yield probe
            return
        workers = self.client.settings.max_concurrency
        size = max(1, min(per_page, math.ceil(total / workers)))
        count = math.ceil(total / size)
        last = probe
        for last in self.client.map(lambda page: self.report_page(report_id, page, size), range(count)):
            yield last
        while last.rows and last.total_rows > count * size:
            last = self.report_page(report_id, count, size)
            yield last
            count += 1

    def report_page(self, report_id: int, page: int, per_page: int) -> ReportPage:
        function = "core_reportbuilder_retrieve_report"
        data = _dict(
            self.client.call(function, {"reportid": int(report_id), "page": page, "perpage": per_page}),
            function,
        )
        body = _dict(data.get("data"), function)
        rows = tuple(
            tuple(_str(cell) for cell in _list(row.get("columns")))
            for row in _list(body.get("rows"))
            if isinstance(row, dict)
        )
        return ReportPage(
            report_id=int(report_id),
            page=page,
            headers=tuple(_str(h) for h in _list(body.get("headers"))),
            rows=rows,
            total_rows=_int(body.get("totalrowcount")),
        )

    def report_completions(
        self,
        report_id: int,
        *,
        tz: ZoneInfo,
        per_page: int = 1000,
        columns: ReportColumns = ReportColumns(),
        concurrent: bool = False,
    ) -> Iterator[ReportCompletion]:
        """Report rows as facts: ids from link markup, times parsed in ``tz`` (minute precision).

        Rows without a user are skipped: the "Course participants" source also lists enrolment
        methods nobody uses (guest access, self enrolment) as rows with empty user cells.
        ``concurrent`` reads the pages side by side (:meth:`report_pages_concurrently`).
        """
        pages = self.report_pages_concurrently if concurrent else self.report_pages
        for page in pages(report_id, per_page=per_page):
            index = _column_index(page.headers, columns, report_id)
            for row in page.rows:
                user_id = link_id(_cell(row, index, "user"), "/user/profile.php")
                username = cell_text(_cell(row, index, "username"))
                if user_id is None and not username:
                    continue  # an enrolment method with nobody in it (the source joins them in)
                local = _row_time(row, index, report_id)
                yield ReportCompletion(
                    user_id=user_id,
                    username=username,
                    course_id=link_id(_cell(row, index, "course"), "/course/view.php"),
                    course_idnumber=cell_text(_cell(row, index, "course_idnumber")),
                    completed_at=None if local is None else local_to_epoch(local, tz),
                )

    def calibrate_report_timezone(
        self,
        report_id: int,
        *,
        preferred: str | None = None,
        per_page: int = 1000,
        columns: ReportColumns = ReportColumns(),
        site: SiteInfo | None = None,
    ) -> ZoneInfo:
        """The IANA zone the report writes its times in (see :mod:`connector.moodle.reporttime`).

        Pass ``site`` when the caller already read the site info, to save the call."""
        site = site or self.site_info()
        if site.lang.split("_")[0] != "en":
            raise MoodleProtocolError(
                f"report times are written in the token user's language {site.lang!r}; only English can be read",
                function="core_reportbuilder_retrieve_report",
                hint=f"set the language of the web-service user {site.username!r} to English in their Moodle profile",
            )
        samples = self._completed_report_rows(report_id, per_page=per_page, columns=columns)
        if not samples:
            raise MoodleProtocolError(
                f"report {report_id} has no completed rows with user and course links to calibrate its time zone",
                function="core_reportbuilder_retrieve_report",
                hint="calibrate once the report shows at least one completion, or configure the zone explicitly",
            )
        preferred = preferred or self._token_user_timezone(site)
        candidates = zone_order(preferred)
        checked: set[int] = set()
        candidates = self._filter_by_exact_time(candidates, samples, 0, checked)
        for _ in range(_CALIBRATION_MAX_LOOKUPS):
            index = most_telling_row(candidates, [local for _, _, local in samples])
            if index is None or index in checked:
                break
            candidates = self._filter_by_exact_time(candidates, samples, index, checked)
        if not candidates:
            raise MoodleProtocolError(
                f"no time zone makes report {report_id}'s times agree with the completion status",
                function="core_reportbuilder_retrieve_report",
                hint="check that the report's time column is the course completion time",
            )
        chosen = choose_zone(candidates, preferred)
        log.info("report %d: times are in %s (%d zones fit)", report_id, chosen, len(candidates))
        return ZoneInfo(chosen)

    def _token_user_timezone(self, site: SiteInfo) -> str | None:
        """The token user's own zone from their profile, when set (not "99", the server default)."""
        function = "core_user_get_users_by_field"
        try:
            rows = self.client.call(function, {"field": "id", "values": [site.userid]})
        except MoodleError as error:
            if isinstance(error, MoodleUnavailable):
                raise
            return None  # only a hint: without it the stable order decides
        zone = (
            _str(rows[0].get("timezone"))
            if isinstance(rows, list) and rows and isinstance(rows[0], dict)
            else ""
        )
        return zone if "/" in zone or zone == "UTC" else None

    def _completed_report_rows(
        self, report_id: int, *, per_page: int, columns: ReportColumns
    ) -> list[tuple[int, int, datetime]]:
        """(course_id, user_id, local time) of completed rows, from the first pages."""
        samples: list[tuple[int, int, datetime]] = []
        for page in self.report_pages(report_id, per_page=per_page):
            index = _column_index(page.headers, columns, report_id)
            if "user" not in index or "course" not in index:
                raise MoodleProtocolError(
                    f"report {report_id}: calibration needs the linked columns {columns.user!r} and {columns.course!r}",
                    function="core_reportbuilder_retrieve_report",
                )
            for row in page.rows:
                local = _row_time(row, index, report_id)
                user_id = link_id(_cell(row, index, "user"), "/user/profile.php")
                course_id = link_id(_cell(row, index, "course"), "/course/view.php")
                if local is not None and user_id is not None and course_id is not None:
                    samples.append((course_id, user_id, local))
            if len(samples) >= _CALIBRATION_SAMPLE_ROWS or (samples and len(samples) >= per_page):
                break
        return samples

    def _filter_by_exact_time(
        self, candidates: list[str], samples: list[tuple[int, int, datetime]], index: int, checked: set[int]
    ) -> list[str]:
        """Keep the zones in which the sample's exact completion time reads as its report text."""
        for position in [index, *range(len(samples))]:
            if position in checked:
                continue
            checked.add(position)
            course_id, user_id, local = samples[position]
            try:
                status = self.course_completion(course_id, user_id)
            except MoodleError as error:
                if is_per_enrolment_error(error):
                    continue
                raise
            if status.completed_at is None:
                continue  # reset since the report was read, or no timed criterion
            return consistent_zones(candidates, [(local, status.completed_at)])
        return candidates


def _column_index(headers: Sequence[str], columns: ReportColumns, report_id: int) -> dict[str, int]:
    missing = columns.missing_from(headers)
    if missing:
        raise MoodleProtocolError(
            f"report {report_id} lacks the columns {', '.join(repr(m) for m in missing)}; it has {', '.join(repr(h) for h in headers)}",
            function="core_reportbuilder_retrieve_report",
            hint="add to the custom report: 'Full name with link', 'Username', 'Course full name with link', "
            "'Course ID number' and 'Time completed' (or configure the header names)",
        )
    wanted = {
        "user": columns.user,
        "username": columns.username,
        "course": columns.course,
        "course_idnumber": columns.course_idnumber,
        "time_completed": columns.time_completed,
    }
    return {role: list(headers).index(name) for role, name in wanted.items() if name is not None}


def _cell(row: Sequence[str], index: Mapping[str, int], role: str) -> str:
    position = index.get(role)
    return row[position] if position is not None and position < len(row) else ""


def _row_time(row: Sequence[str], index: Mapping[str, int], report_id: int) -> datetime | None:
    try:
        return parse_report_datetime(_cell(row, index, "time_completed"))
    except ReportTimeError as error:
        raise MoodleProtocolError(
            f"report {report_id}: {error}",
            function="core_reportbuilder_retrieve_report",
            hint="set the web-service user's language to English so dates are written in English",
        ) from None
