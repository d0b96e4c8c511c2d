"""The web-service functions the emulator answers, written from the fixtures' shapes.

``dispatch`` takes the decoded form of one request and gives the answer Moodle would give:
token check, function lookup, service membership, parameter validation, then the function.
Both captured Moodle versions are served (:data:`MOODLE_VERSIONS`): 4.5 adds a few fields and
namespaces its exception classes; the behaviour is the same.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from connector.emulator.feedback import FEEDBACK_FUNCTIONS, FEEDBACK_SERVICE_FUNCTIONS
from connector.emulator.scenario import TIME_COMPLETED, CourseDef, PersonView, Scenario
from connector.emulator.wire import (
    Param,
    WsException,
    XmlOnly,
    invalid_parameter,
    missing_record,
    require_login,
    validate,
)


@dataclass(frozen=True)
class MoodleVersion:
    """What differs between the captured releases on the wire (not in behaviour)."""

    name: str
    release: str
    version: str
    namespaced_exceptions: bool  # "core\exception\moodle_exception" instead of "moodle_exception"
    fields_45: bool  # courseimage, trackforums, policyagreed, tags, customfields' displayvalue ...


MOODLE_VERSIONS = {
    "4.1": MoodleVersion("4.1", "4.1.10 (Build: 20240422)", "2022112810", False, False),
    "4.5": MoodleVersion("4.5", "4.5.11+ (Build: 20260501)", "2024100711.02", True, True),
}
CORE_EXCEPTIONS = frozenset(
    {
        "moodle_exception",
        "required_capability_exception",
        "require_login_exception",
        "invalid_parameter_exception",
    }
)
SERVICE_FUNCTIONS = (
    "core_webservice_get_site_info",
    "core_course_get_courses",
    "core_course_get_courses_by_field",
    "core_course_get_categories",
    "core_enrol_get_enrolled_users",
    "core_enrol_get_users_courses",
    "core_completion_get_course_completion_status",
    "core_completion_get_activities_completion_status",
    "core_user_get_users",
    "core_user_get_users_by_field",
    "core_cohort_get_cohorts",
    "core_cohort_search_cohorts",
    "core_cohort_get_cohort_members",
    "core_reportbuilder_list_reports",
    "core_reportbuilder_retrieve_report",
    "core_reportbuilder_reports_get",
    "core_reportbuilder_set_filters",
    "core_reportbuilder_filters_reset",
    "core_course_update_courses",
    "core_message_send_instant_messages",
    "core_course_get_enrolled_users_by_cmid",
    "core_enrol_get_course_enrolment_methods",
    *FEEDBACK_SERVICE_FUNCTIONS,
)
# Functions that exist in Moodle but are in no service the emulator grants by default.
OTHER_KNOWN_FUNCTIONS = frozenset(
    {
        "core_user_create_users",
        "core_user_update_users",
        "core_user_delete_users",
        "core_course_create_courses",
        "core_course_delete_courses",
        "enrol_manual_enrol_users",
        "core_completion_mark_course_self_completed",
        "core_cohort_add_cohort_members",
        "core_role_assign_roles",
        "core_enrol_get_enrolled_users_with_capability",
        "core_reportbuilder_conditions_add",
        "core_reportbuilder_conditions_delete",
        "core_reportbuilder_view_report",
        "core_course_get_contents",
    }
)
KNOWN_FUNCTIONS = frozenset(SERVICE_FUNCTIONS) | OTHER_KNOWN_FUNCTIONS


@dataclass(frozen=True)
class Grant:
    """What a token may do: "full" capabilities or "weak" (REST only); and its service's functions."""

    kind: str = "full"
    functions: frozenset[str] = frozenset(SERVICE_FUNCTIONS)
    lacking: frozenset[str] = frozenset()  # capabilities the token's role lacks, e.g. "mod/feedback:view"


@dataclass
class Call:
    scenario: Scenario
    grant: Grant
    site_url: str
    moodle: MoodleVersion = MOODLE_VERSIONS["4.1"]
    function: str = ""
    report_rows: int = 0
    enrolled_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def weak(self) -> bool:
        return self.grant.kind == "weak"

    def can(self, capability: str) -> bool:
        return not self.weak and capability not in self.grant.lacking


Handler = Callable[[Call, dict[str, Any]], Any]


def invalid_token() -> WsException:
    return WsException("moodle_exception", "invalidtoken", "Invalid token - token not found")


def access_exception() -> WsException:
    return WsException("webservice_access_exception", "accessexception", "Access control exception")


def course_context_error(course_id: int) -> WsException:
    return WsException(
        "moodle_exception",
        "errorcoursecontextnotvalid",
        f"You cannot execute functions in the course context (course id:{course_id}). "
        "The context error message was: Course or activity not accessible.",
    )


def no_permissions(what: str) -> WsException:
    return WsException(
        "required_capability_exception",
        "nopermissions",
        f"Sorry, but you do not currently have permissions to do that ({what}).",
    )


def report_access(what: str) -> WsException:
    verb = "edit" if what == "edit" else "view"
    return WsException(
        "core_reportbuilder\\exception\\report_access_exception",
        f"errorreport{verb}",
        f"You cannot {verb} this report",
    )


def dispatch(call: Call, function: str, raw_params: dict[str, Any]) -> Any:
    """The answer to one call, or a WsException; the token has already been checked."""
    if not function:
        raise invalid_parameter()  # no wsfunction at all
    if function not in KNOWN_FUNCTIONS and function not in call.grant.functions:
        raise missing_record("external_functions")
    if function not in call.grant.functions:
        raise access_exception()
    entry = FUNCTIONS.get(function)
    if entry is None:  # in the service, but the emulator does not implement it
        raise WsException(
            "invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected"
        )
    description, handler = entry
    params = validate(description, raw_params)
    call.function = function
    with call.scenario.lock:
        return handler(call, params)


# ----- shared pieces -----------------------------------------------------------------------------
def _image_url(call: Call, size: str) -> str:
    return f"{call.site_url}/theme/image.php/boost/core/1/u/{size}"


def _course(call: Call, course_id: int) -> CourseDef:
    course = call.scenario.course_defs.get(course_id)
    if course is None:
        raise missing_record("course")
    return course


def _person(call: Call, user_id: int) -> PersonView:
    index = call.scenario.person_index(user_id)
    if index is None:
        raise missing_record("user")
    return call.scenario.person(index)


def _custom_fields(person: PersonView) -> list[dict[str, Any]]:
    if not person.position:
        return []
    return [{"type": "text", "value": person.position, "name": "Position", "shortname": "position"}]


def _optional(record: dict[str, Any], key: str, value: Any) -> None:
    """Moodle leaves empty optional profile fields out of JSON; its XML writer prints null."""
    record[key] = value if value else XmlOnly(None)


# ----- site info ---------------------------------------------------------------------------------
def site_info(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    scenario = call.scenario
    user_id = scenario.weak_user_id if call.weak else scenario.token_user_id
    account = scenario.accounts[user_id]
    return {
        "sitename": scenario.site_name,
        "username": account.username,
        "firstname": account.firstname,
        "lastname": account.lastname,
        "fullname": f"{account.firstname} {account.lastname}",
        "lang": "en",
        "userid": user_id,
        "siteurl": call.site_url,
        "userpictureurl": _image_url(call, "f1"),
        "functions": [
            {"name": name, "version": call.moodle.version}
            for name in SERVICE_FUNCTIONS
            if name in call.grant.functions
        ]
        + [
            {"name": name, "version": call.moodle.version}
            for name in sorted(call.grant.functions - set(SERVICE_FUNCTIONS))
        ],
        "downloadfiles": 0,
        "uploadfiles": 0,
        "release": call.moodle.release,
        "version": call.moodle.version,
        "mobilecssurl": "",
        "advancedfeatures": [
            {"name": name, "value": value}
            for name, value in (
                ("usecomments", 1),
                ("usetags", 1),
                ("enablenotes", 1),
                ("messaging", 1),
                ("enableblogs", 1),
                ("enablecompletion", 1),
                ("enablebadges", 1),
                ("messagingallusers", 0),
                ("enablecustomreports", 1),
                ("mnet_dispatcher_mode", 0),
            )
        ],
        "usercanmanageownfiles": True,
        "userquota": 104857600,
        "usermaxuploadfilesize": 2097152,
        "userhomepage": 1,
        **({"userhomepageurl": XmlOnly(None)} if call.moodle.fields_45 else {}),
        "userprivateaccesskey": f"{user_id:032x}",
        "siteid": 1,
        "sitecalendartype": "gregorian",
        "usercalendartype": "gregorian",
        "userissiteadmin": False,
        "theme": "boost",
        "limitconcurrentlogins": 0,
        "usersessionscount": XmlOnly(None),
        **({"policyagreed": 0} if call.moodle.fields_45 else {}),
    }


# ----- courses -----------------------------------------------------------------------------------
def _format_options(course: CourseDef) -> list[dict[str, Any]]:
    if course.format == "site":
        return [{"name": "numsections", "value": 1}]
    return [{"name": "hiddensections", "value": 1}, {"name": "coursedisplay", "value": 0}]


def _course_record(course: CourseDef) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": course.id,
        "shortname": course.shortname,
        "categoryid": course.category_id,
        "categorysortorder": course.sortorder,
        "fullname": course.fullname,
        "displayname": course.fullname,
        "idnumber": course.idnumber,
        "summary": "" if course.format == "site" else "Kurz / tečaj",
        "summaryformat": 1,
        "format": course.format,
        "showgrades": 1,
        "newsitems": 3 if course.format == "site" else 1,
        "startdate": 0,
        "enddate": 0,
        "numsections": 1,
        "maxbytes": 0,
        "showreports": 0,
        "visible": int(course.visible),
        "hiddensections": XmlOnly(None) if course.format == "site" else 1,
        "groupmode": 0,
        "groupmodeforce": 0,
        "defaultgroupingid": 0,
        "timecreated": course.timecreated,
        "timemodified": course.timecreated,
        "enablecompletion": int(course.completion_enabled),
        "completionnotify": 0,
        "lang": "",
        "forcetheme": "",
        "courseformatoptions": _format_options(course),
        "showactivitydates": False,
        "showcompletionconditions": True if course.completion_enabled else None,
        "customfields": XmlOnly([]),
    }
    return record


def get_courses(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    if call.weak:  # the whole call fails on the first course the user may not see
        first = min((c.id for c in call.scenario.course_defs.values() if c.format != "site"), default=1)
        raise course_context_error(first)
    ids = (params["options"] or {}).get("ids") or []
    scenario = call.scenario
    chosen = (
        [_course(call, i) for i in ids] if ids else sorted(scenario.course_defs.values(), key=lambda c: c.id)
    )
    return [_course_record(c) for c in chosen]


def _filters() -> list[dict[str, Any]]:
    names = ("displayh5p", "activitynames", "mathjaxloader", "emoticon", "urltolink", "mediaplugin")
    return [{"filter": name, "localstate": 0, "inheritedstate": 1} for name in names]


def _course_by_field_record(call: Call, course: CourseDef) -> dict[str, Any]:
    site = course.format == "site"
    categories = {c.id: c.name for c in call.scenario.categories}
    record: dict[str, Any] = {
        "id": course.id,
        "fullname": course.fullname,
        "displayname": course.fullname,
        "shortname": course.shortname,
        "categoryid": course.category_id,
        "categoryname": categories.get(course.category_id, ""),
        "sortorder": course.sortorder,
        "summary": "" if site else "Kurz / tečaj",
        "summaryformat": 1,
        "summaryfiles": [],
        "overviewfiles": [],
        "showactivitydates": False,
        "showcompletionconditions": True if course.completion_enabled else None,
        "contacts": [],
        "enrollmentmethods": [] if site else ["manual"],
        "customfields": XmlOnly([]),
        "idnumber": course.idnumber,
        "format": course.format,
        "showgrades": 1,
        "newsitems": 3 if site else 1,
        "startdate": 0,
        "enddate": 0,
        "maxbytes": 0,
        "showreports": 0,
        "visible": int(course.visible),
        "groupmode": 0,
        "groupmodeforce": 0,
        "defaultgroupingid": 0,
        "enablecompletion": int(course.completion_enabled),
        "completionnotify": 0,
        "lang": "",
        "theme": "",
        "marker": 0,
        "legacyfiles": 0,
        "calendartype": "",
        "timecreated": course.timecreated,
        "timemodified": course.timecreated,
        "requested": 0,
        "cacherev": course.timecreated,
        "filters": _filters(),
    }
    record["courseformatoptions"] = (
        XmlOnly([]) if site else [*_format_options(course), {"name": "indentation", "value": "1"}]
    )
    if call.moodle.fields_45:
        record.update(
            {
                "courseimage": _course_image(call, course),
                "communicationroomname": XmlOnly(None),
                "communicationroomurl": XmlOnly(None),
            }
        )
    return record


def _course_image(call: Call, course: CourseDef) -> str:
    """Moodle 4.5 sends a generated pattern image for a course without one."""
    return f"data:image/svg+xml;base64,{course.id:08x}"


COURSE_FIELDS = ("", "id", "ids", "shortname", "idnumber", "category")


def get_courses_by_field(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    if call.weak:
        raise require_login()
    field_name, value = params["field"], params["value"]
    if field_name not in COURSE_FIELDS:
        raise WsException(
            "invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected"
        )
    courses = sorted(call.scenario.course_defs.values(), key=lambda c: c.id)
    matches: Callable[[CourseDef], bool]
    if field_name == "id":
        matches = lambda c: str(c.id) == value  # noqa: E731
    elif field_name == "ids":
        wanted = {v.strip() for v in value.split(",")}
        matches = lambda c: str(c.id) in wanted  # noqa: E731
    elif field_name == "category":
        matches = lambda c: str(c.category_id) == value  # noqa: E731
    elif field_name:
        matches = lambda c: getattr(c, field_name) == value  # noqa: E731
    else:
        matches = lambda c: True  # noqa: E731
    return {"courses": [_course_by_field_record(call, c) for c in courses if matches(c)], "warnings": []}


def get_categories(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    if call.weak:
        raise no_permissions("View categories")
    counts: dict[int, int] = {}
    for course in call.scenario.course_defs.values():
        counts[course.category_id] = counts.get(course.category_id, 0) + 1
    return [
        {
            "id": c.id,
            "name": c.name,
            "description": "",
            "descriptionformat": 1,
            "parent": 0,
            "sortorder": c.sortorder,
            "coursecount": counts.get(c.id, 0),
            "depth": 1,
            "path": f"/{c.id}",
        }
        for c in call.scenario.categories
    ]


# ----- enrolments --------------------------------------------------------------------------------
ALWAYS_RETURNED = frozenset({"id", "fullname"})


def _identity(call: Call, person: PersonView) -> dict[str, Any]:
    """The leading fields every user record shares, up to and including the access times."""
    scenario = call.scenario
    site_access = scenario.site_access(person.index)
    record: dict[str, Any] = {
        "id": person.id,
        "username": person.username,
        "firstname": person.firstname,
        "lastname": person.lastname,
        "fullname": person.fullname,
        "email": person.email,
        "address": XmlOnly(None),
        "phone1": XmlOnly(None),
        "phone2": XmlOnly(None),
        "department": person.department,
    }
    _optional(record, "institution", person.institution)
    _optional(record, "idnumber", person.idnumber)
    record.update(
        {
            "interests": XmlOnly(None),
            "firstaccess": site_access
            and min(scenario.last_access[p] or site_access for p in scenario.user_positions(person.index)),
            "lastaccess": site_access,
        }
    )
    return record


def _add_profile(call: Call, record: dict[str, Any], person: PersonView) -> None:
    """Location, pictures and custom fields: the middle block every user record shares."""
    _optional(record, "city", person.city)
    _optional(record, "country", person.country)
    record.update(
        {
            "profileimageurlsmall": _image_url(call, "f2"),
            "profileimageurl": _image_url(call, "f1"),
        }
    )
    _optional(record, "customfields", _custom_fields(person))


def _enrolled_user(
    call: Call, person: PersonView, wanted: frozenset[str] | None, course_id: int
) -> dict[str, Any]:
    scenario = call.scenario
    courses = [
        scenario.course_defs[scenario.enrol_course[p]]
        for p in scenario.user_positions(person.index)
        if scenario.enrolment_active(p)
    ]
    record = _identity(call, person)
    record.update(
        {
            "lastcourseaccess": scenario.course_access(person.index, course_id),
            "description": XmlOnly(None),
            "descriptionformat": XmlOnly(None),
        }
    )
    _add_profile(call, record, person)
    record.update(
        {
            "groups": XmlOnly([]),
            "roles": [{"roleid": 5, "name": "", "shortname": "student", "sortorder": 0}],
            "preferences": XmlOnly([]),
            "enrolledcourses": [
                {"id": c.id, "fullname": c.fullname, "shortname": c.shortname} for c in courses
            ],
        }
    )
    if wanted is None:
        return record
    return {k: v for k, v in record.items() if k in wanted or k in ALWAYS_RETURNED}


def _enrolled_options(options: list[dict[str, Any]]) -> dict[str, str]:
    return {str(o.get("name", "")): str(o.get("value", "")) for o in options}


def _int_option(options: Mapping[str, str], name: str) -> int:
    value = options.get(name, "0").strip() or "0"
    if not value.lstrip("-").isdigit():
        raise WsException(
            "invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected"
        )
    return max(0, int(value))


def get_enrolled_users(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    course_id = params["courseid"]
    _course(call, course_id)
    if call.weak:
        raise course_context_error(course_id)
    options = _enrolled_options(params["options"])
    limitfrom = _int_option(options, "limitfrom")
    limitnumber = _int_option(options, "limitnumber")
    onlyactive = options.get("onlyactive", "0") in ("1", "true")
    fields = options.get("userfields")
    wanted = frozenset(f.strip() for f in fields.split(",")) if fields else None
    scenario = call.scenario
    # onlyactive filters on the enrolment (suspended or ended), never on the person's account
    chosen = [
        scenario.person(scenario.person_index(scenario.enrol_user[p]) or 0)
        for p in scenario.course_positions(course_id)
        if not onlyactive or scenario.enrolment_active(p)
    ]
    end = limitfrom + limitnumber if limitnumber else None
    page = chosen[limitfrom:end]
    call.enrolled_rows = len(page)
    return [_enrolled_user(call, person, wanted, course_id) for person in page]


def get_users_courses(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    if call.weak:
        return []  # no error, just nothing (quirk 4)
    scenario = call.scenario
    if scenario.deleted_index(params["userid"]) is not None:
        return []  # a deleted person has no enrolments left
    person = _person(call, params["userid"])
    result = []
    for position in scenario.user_positions(person.index):
        if not scenario.enrolment_active(position):
            continue  # a suspended or ended enrolment's course is left out (quirk 18)
        course = scenario.course_defs[scenario.enrol_course[position]]
        done = bool(scenario.completed_at[position])
        tracked = course.completion_enabled
        record: dict[str, Any] = {
            "id": course.id,
            "shortname": course.shortname,
            "fullname": course.fullname,
            "displayname": course.fullname,
        }
        if params["returnusercount"]:
            record["enrolledusercount"] = scenario.enrolled_count(course.id)
        record.update(
            {
                "idnumber": course.idnumber,
                "visible": int(course.visible),
                "summary": "Kurz / tečaj",
                "summaryformat": 1,
                "format": course.format,
                "showgrades": True,
                "lang": "",
                "enablecompletion": tracked,
                "completionhascriteria": tracked,
                "completionusertracked": tracked,
                "category": course.category_id,
                "progress": (100 if done else 0) if tracked else None,
                "completed": done if tracked else None,
                "startdate": 0,
                "enddate": 0,
                "marker": 0,
                "lastaccess": scenario.last_access[position] or None,
                "isfavourite": False,
                "hidden": False,
                "overviewfiles": [],
                "showactivitydates": False,
                "showcompletionconditions": True if tracked else None,
                "timemodified": course.timecreated,
            }
        )
        if call.moodle.fields_45:
            record["courseimage"] = _course_image(call, course)
        result.append(record)
    return result


def get_course_enrolment_methods(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    course_id = params["courseid"]
    _course(call, course_id)
    if call.weak:
        raise course_context_error(course_id)
    return []  # manual enrolment instances are not listed to other users, as on the real site


# ----- completion --------------------------------------------------------------------------------
def _enrolment_for_completion(call: Call, params: dict[str, Any]) -> tuple[CourseDef, int | None]:
    """The course and the person's enrolment in it (None: not enrolled, e.g. deleted since)."""
    course = _course(call, params["courseid"])
    if call.weak:
        raise require_login()
    scenario = call.scenario
    index = scenario.person_index(params["userid"])
    if index is None:
        if scenario.deleted_index(params["userid"]) is None:
            raise WsException("dml_missing_record_exception", "invaliduser", "Invalid user")
        return course, None  # a deleted account still exists, with no enrolment left
    return course, scenario.find_enrolment(index, course.id)


def not_enrolled() -> WsException:
    return WsException("moodle_exception", "usernotenroled", "User is not enrolled in this course")


def course_completion_status(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    course, position = _enrolment_for_completion(call, params)
    if position is None or not call.scenario.enrolment_active(position):
        raise not_enrolled()  # also behind a suspended or ended enrolment, completed or not
    if not course.completion_enabled:
        raise WsException("moodle_exception", "cannotviewreport", "You cannot view this report")
    at = call.scenario.completed_at[position]
    return {
        "completionstatus": {
            "completed": bool(at),
            "aggregation": 1,
            "completions": [
                {
                    "type": 1,
                    "title": "Self completion",
                    "status": "Yes" if at else "No",
                    "complete": bool(at),
                    "timecompleted": at or None,
                    "details": {
                        "type": "Self completion",
                        "criteria": "Self completion",
                        "requirement": "Marking yourself complete",
                        "status": "",
                    },
                }
            ],
        },
        "warnings": [],
    }


# The 4.5 capture's ITSEC-CZ has a page activity (cmid 7) with manual completion, done by those
# who completed the course; other courses have no activity with completion.
PAGE_ACTIVITY = {2: (7, 1)}  # course id -> (cmid, page instance)


def activities_completion_status(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    course, position = _enrolment_for_completion(call, params)
    if position is None:
        raise not_enrolled()
    if not call.scenario.enrolment_active(position) or course.id not in PAGE_ACTIVITY:
        return {"statuses": [], "warnings": []}  # inactive enrolment: nothing, no warning
    cmid, instance = PAGE_ACTIVITY[course.id]
    at = call.scenario.completed_at[position]
    return {
        "statuses": [
            {
                "cmid": cmid,
                "modname": "page",
                "instance": instance,
                "state": 1 if at else 0,
                "timecompleted": at,
                "tracking": 1,
                "overrideby": None,
                "valueused": False,
                "hascompletion": True,
                "isautomatic": False,
                "istrackeduser": True,
                "uservisible": True,
                "details": [],
                "isoverallcomplete": bool(at),
            }
        ],
        "warnings": [],
    }


# ----- users -------------------------------------------------------------------------------------
def _user_details(call: Call, person: PersonView) -> dict[str, Any]:
    record = _identity(call, person)
    record.update(
        {
            "auth": "manual",
            "suspended": person.suspended,
            "confirmed": True,
            "lang": "en",
            "calendartype": XmlOnly(None),
            "theme": "",
            "timezone": "99",
            "mailformat": 1,
            "description": XmlOnly(None),
            "descriptionformat": XmlOnly(None),
        }
    )
    if call.moodle.fields_45:
        record["trackforums"] = 0
    _add_profile(call, record, person)
    if call.moodle.fields_45 and isinstance(record.get("customfields"), list):
        record["customfields"] = [{**f, "displayvalue": f["value"]} for f in record["customfields"]]
    record["preferences"] = _own_preferences(call) if person.id == _caller_id(call) else XmlOnly([])
    return record


def _caller_id(call: Call) -> int:
    return call.scenario.weak_user_id if call.weak else call.scenario.token_user_id


def _own_preferences(call: Call) -> list[dict[str, Any]]:
    """Moodle shows the calling user their own preferences (and their values' odd types)."""
    created = call.scenario.report.timecreated if call.scenario.report else 0
    return [
        {"name": "auth_manual_passwordupdatetime", "value": str(created)},
        {"name": "last_time_enrolments_synced", "value": str(created)},
        {"name": "_lastloaded", "value": created},
    ]


def _account_views(call: Call) -> list[PersonView]:
    return [
        PersonView(
            index=-1,
            id=a.id,
            username=a.username,
            idnumber="",
            firstname=a.firstname,
            lastname=a.lastname,
            email=a.email,
            institution="",
            department="",
            position="",
            city="",
            country="",
            suspended=False,
        )
        for a in call.scenario.accounts.values()
    ]


def _all_user_views(call: Call) -> list[PersonView]:
    return sorted([*_account_views(call), *call.scenario.live_people()], key=lambda p: p.id)


SEARCH_KEYS = ("id", "lastname", "firstname", "idnumber", "username", "email", "auth")


def _criterion_matches(person: PersonView, key: str, value: str) -> bool:
    actual = "manual" if key == "auth" else str(getattr(person, key))
    if key in ("email", "firstname", "lastname"):
        return fnmatch.fnmatchcase(actual.lower(), value.lower().replace("%", "*"))
    return actual == value


def get_users(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    if call.weak:
        raise no_permissions("View user details")
    warnings = []
    criteria = []
    for criterion in params["criteria"]:
        key, value = criterion["key"], criterion["value"]
        if key in SEARCH_KEYS:
            criteria.append((key, value))
        else:
            warnings.append(
                {
                    "item": key,
                    "warningcode": "invalidfieldparameter",
                    "message": f"The search key '{key}' is not supported, look at the web service "
                    "documentation",
                }
            )
    people = [p for p in _all_user_views(call) if all(_criterion_matches(p, k, v) for k, v in criteria)]
    return {"users": [_user_details(call, p) for p in people], "warnings": warnings}


USER_FIELDS = ("id", "idnumber", "username", "email")


def get_users_by_field(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    if call.weak:
        return []  # no error, just nothing (quirk 4)
    field_name = params["field"]
    if field_name not in USER_FIELDS:
        raise WsException(
            "invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected"
        )
    wanted = set(params["values"])
    scenario = call.scenario
    indexes: list[int | None] = []
    if field_name == "username":  # direct lookups: a 100,000-user site must answer fast
        indexes = [scenario.index_by_username(v) for v in wanted]
    elif field_name == "id":  # a deleted person is still found by id, renamed (quirk 20)
        ids = [int(v) for v in wanted if v.strip().lstrip("-").isdigit()]
        indexes = [
            scenario.person_index(i) if scenario.deleted_index(i) is None else scenario.deleted_index(i)
            for i in ids
        ]
    if field_name in ("username", "id"):
        people = [scenario.person(i) for i in indexes if i is not None]
        accounts = [p for p in _account_views(call) if str(getattr(p, field_name)) in wanted]
        chosen = sorted([*people, *accounts], key=lambda p: p.id)
    else:
        chosen = [p for p in _all_user_views(call) if str(getattr(p, field_name)) in wanted]
    return [_user_details(call, p) for p in chosen]


# ----- cohorts -----------------------------------------------------------------------------------
def _cohort_record(call: Call, cohort: Any) -> dict[str, Any]:
    record = {
        "id": cohort.id,
        "name": cohort.name,
        "idnumber": cohort.idnumber,
        "description": "",
        "descriptionformat": 1,
        "visible": True,
        "theme": "",
    }
    if call.moodle.fields_45:
        record["customfields"] = []
    return record


def _cohorts_by_id(call: Call, ids: list[int]) -> list[Any]:
    known = {c.id: c for c in call.scenario.cohorts}
    missing = [i for i in ids if i not in known]
    if missing and call.function == "core_cohort_get_cohort_members":
        raise missing_record("cohort")
    # get_cohorts drops unknown ids silently (quirk 4)
    return [known[i] for i in ids if i in known] if ids else list(known.values())


def get_cohorts(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    if call.weak:
        raise no_permissions("View site-wide cohorts")
    return [_cohort_record(call, c) for c in _cohorts_by_id(call, params["cohortids"])]


def search_cohorts(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    if call.weak:
        raise no_permissions("View site-wide cohorts")
    query = params["query"].lower()
    found = sorted(
        (c for c in call.scenario.cohorts if query in c.name.lower() or query in c.idnumber.lower()),
        key=lambda c: c.name,
    )
    start = params["limitfrom"]
    end = start + params["limitnum"] if params["limitnum"] else None
    return {"cohorts": [_cohort_record(call, c) for c in found[start:end]]}


def cohort_members(call: Call, params: dict[str, Any]) -> list[dict[str, Any]]:
    if call.weak:
        raise no_permissions("View site-wide cohorts")
    cohorts = _cohorts_by_id(call, params["cohortids"])
    people = list(call.scenario.live_people())
    return [
        {"cohortid": c.id, "userids": [p.id for p in people if p.institution == c.institution]}
        for c in cohorts
    ]


# ----- report builder ----------------------------------------------------------------------------
REPORT_SOURCE = "core_course\\reportbuilder\\datasource\\participants"
REPORT_HEADERS = (
    "Course full name with link",
    "Method",
    "Full name with link",
    "Username",
    "ID number",
    "Department",
    "Course ID number",
    "Time completed",
)


CONDITION_DATA = '{"enrolment:status_operator":1,"enrolment:status_value":0}'


def _report_details(call: Call) -> dict[str, Any]:
    report = call.scenario.report
    assert report is not None
    details: dict[str, Any] = {
        "name": report.name,
        "source": REPORT_SOURCE,
        "type": 0,
        "uniquerows": False,
        # a stored value, not the truth: Moodle leaves it as it was when the condition is deleted
        # in the editor (quirk 19), so the emulator always shows the default here
        "conditiondata": CONDITION_DATA if call.moodle.fields_45 else "[]",
        "settingsdata": None,
        "contextid": 1,
        "component": "",
        "area": "",
        "itemid": 0,
        "usercreated": 2,
        "id": report.id,
        "timecreated": report.timecreated,
        "timemodified": report.timecreated,
        "usermodified": 2,
        "sourcename": "Course participants",
    }
    if call.moodle.fields_45:
        details["tags"] = []
    details["modifiedby"] = {
        "id": 2,
        "email": "admin@example.org",
        "idnumber": "",
        "phone1": "",
        "phone2": "",
        "department": "",
        "institution": "",
        "fullname": "Admin User",
        "identity": "admin@example.org",
        "profileurl": f"{call.site_url}/user/profile.php?id=2",
        "profileimageurl": _image_url(call, "f1"),
        "profileimageurlsmall": _image_url(call, "f2"),
    }
    return details


def list_reports(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    if call.weak:  # not in the report's audience: an empty list, no error (quirk 4)
        return {"reports": [], "warnings": []}
    reports = [_report_details(call)] if call.scenario.report is not None else []
    start = params["page"] * params["perpage"]
    return {"reports": reports[start : start + params["perpage"]], "warnings": []}


def format_report_time(at: int, zone: ZoneInfo) -> str:
    """Moodle's strftimedaydatetime in English: "Saturday, 24 May 2025, 1:00 PM"."""
    local = datetime.fromtimestamp(at, zone)
    hour = local.hour % 12 or 12
    half = "AM" if local.hour < 12 else "PM"
    return f"{local:%A}, {local.day} {local:%B} {local.year}, {hour}:{local.minute:02d} {half}"


def _report_row(call: Call, row: int, zone: ZoneInfo) -> list[str]:
    scenario = call.scenario
    if row < 0:  # an enrolment method nobody uses: the course is there, the user cells are empty
        course = scenario.course_defs[-row]
        link = f'<a href="{call.site_url}/course/view.php?id={course.id}">{escape(course.fullname)}</a>'
        return [link, "Self enrolment (Student)", "", "", "", "", course.idnumber, ""]
    course = scenario.course_defs[scenario.enrol_course[row]]
    person = scenario.person(scenario.person_index(scenario.enrol_user[row]) or 0)
    at = scenario.completed_at[row]
    return [
        f'<a href="{call.site_url}/course/view.php?id={course.id}">{escape(course.fullname)}</a>',
        "Manual enrolments",
        f'<a href="{call.site_url}/user/profile.php?id={person.id}">{escape(person.fullname)}</a>',
        person.username,
        person.idnumber,
        person.department,
        course.idnumber,
        format_report_time(at, zone) if at else "",
    ]


def _report(call: Call, report_id: int, access: str) -> None:
    report = call.scenario.report
    if report is None or report_id != report.id:
        raise missing_record("reportbuilder_report")
    if call.weak:
        raise report_access(access)


def retrieve_report(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    _report(call, params["reportid"], "view")
    listed = call.scenario.report_rows_for(_caller_id(call))  # the caller's filter values apply
    total = len(listed)
    perpage = params["perpage"] if params["perpage"] > 0 else max(1, total)  # 0: every row (quirk 7)
    start = min(params["page"] * perpage, total)
    end = min(start + perpage, total)
    zone = ZoneInfo(call.scenario.report_timezone)
    rows = [{"columns": _report_row(call, listed[i], zone)} for i in range(start, end)]
    call.report_rows = len(rows)
    return {
        "details": _report_details(call),
        "data": {"headers": list(REPORT_HEADERS), "rows": rows, "totalrowcount": total},
        "warnings": [],
    }


def set_filters(call: Call, params: dict[str, Any]) -> bool:
    """``core_reportbuilder_set_filters``: the values (a JSON string) become the calling user's
    filter preference of the report; Moodle json_decodes them and casts to an array, so text that
    is no JSON object stores no values (and still answers true)."""
    _report(call, params["reportid"], "view")
    try:
        values = json.loads(params["values"])
    except ValueError:
        values = None
    call.scenario.report_filter_values[_caller_id(call)] = values if isinstance(values, dict) else {}
    return True


def filters_reset(call: Call, params: dict[str, Any]) -> bool:
    """``core_reportbuilder_filters_reset``: the calling user's filter values removed (Moodle
    checks only that the report exists and its context, not the right to view it)."""
    report = call.scenario.report
    if report is None or params["reportid"] != report.id:
        raise missing_record("reportbuilder_report")
    call.scenario.report_filter_values.pop(_caller_id(call), None)
    return True


# The report editor's condition list ("Add condition"): entity -> (identifier, name). The real
# one is longer; these are the groups and the enrolment conditions the connector cares about.
CONDITION_GROUPS = (
    ("Course", (("course:fullname", "Course full name"), ("course:idnumber", "Course ID number"))),
    (
        "Enrolment",
        (
            ("enrolment:timecreated", "Time created"),
            ("enrolment:timestarted", "Time started"),
            ("enrolment:timeended", "Time ended"),
            ("enrolment:status", "Status"),
        ),
    ),
    ("User", (("user:fullname", "Full name"), ("user:username", "Username"))),
)
DEFAULT_CONDITIONS = (("user:suspended", "User", "Suspended"), ("user:confirmed", "User", "Confirmed"))
HELP_ICON = '<a class="btn btn-link p-0 me-2 icon-no-margin" role="button" data-toggle="popover">?</a>'


def _active_condition_html(position: int, identifier: str, entity: str, name: str) -> str:
    """One active condition as the editor's form renders it (enough for a reader of the form)."""
    field = identifier.replace(":", "")
    operator = '<option value="0" selected  >Is any value</option>'
    value = ""
    if identifier == "enrolment:status":
        operator = (
            '<option value="0"   >Is any value</option>\n'
            '<option value="1" selected  >Is equal to</option>\n'
            '<option value="2"   >Is not equal to</option>'
        )
        value = (
            f'<select class="custom-select" name="{identifier}_value" id="id_{field}_value">\n'
            '<option value="0" selected  >Active</option>\n<option value="1"   >Suspended</option>\n'
            '<option value="2"   >Not current</option>\n</select>\n'
        )
    return (
        f'<div class="condition list-group-item" data-region="active-condition"\n'
        f'        data-condition-id="{position + 8}" data-condition-name="{escape(name)}" '
        f'data-condition-position="{position + 1}">\n'
        f'<small class="text-muted text-uppercase">{escape(entity)} \u2022 {escape(name)}</small>\n'
        f'<select class="custom-select" name="{identifier}_operator" id="id_{field}_operator">\n'
        f"{operator}\n</select>\n{value}</div>\n"
    )


def _conditions(call: Call) -> dict[str, Any]:
    report = call.scenario.report
    assert report is not None
    active = list(DEFAULT_CONDITIONS)
    if report.enrolment_status_condition:
        active.insert(0, ("enrolment:status", "Enrolment", "Status"))
    in_use = {identifier for identifier, _, _ in active}
    form = (
        '\n<form autocomplete="off" action="' + call.site_url + '/webservice/rest/server.php" '
        'method="post" accept-charset="utf-8" class="mform">\n'
        '<div class="list-group mt-2" data-region="active-conditions">'
        + "".join(_active_condition_html(i, *c) for i, c in enumerate(active))
        + "</div>\n</form>\n"
    )
    return {
        "hasavailableconditions": True,
        "availableconditions": [  # what is not in the report yet (quirk 19)
            {
                "optiongroup": {
                    "text": group,
                    "values": [
                        {"value": identifier, "visiblename": name}
                        for identifier, name in items
                        if identifier not in in_use
                    ],
                }
            }
            for group, items in CONDITION_GROUPS
        ],
        "hasactiveconditions": bool(active),
        "activeconditionsform": form,
        "helpicon": HELP_ICON,
    }


def _editor_parts(call: Call) -> dict[str, Any]:
    """The editor's side panels (editmode 1): columns to add, filters, sorting, card view."""
    headers = [h for h in REPORT_HEADERS if h != "Method"]
    return {
        "sidebarmenucards": {
            "menucards": [
                {
                    "name": group,
                    "key": group.lower(),
                    "items": [
                        {
                            "name": name,
                            "identifier": identifier,
                            "title": f"Add column '{name}'",
                            "action": "report-add-column",
                        }
                        for identifier, name in items
                    ],
                }
                for group, items in CONDITION_GROUPS
            ]
        },
        "conditions": _conditions(call),
        "filters": {
            "hasavailablefilters": True,
            "availablefilters": [
                {
                    "optiongroup": {
                        "text": group,
                        "values": [{"value": identifier, "visiblename": name} for identifier, name in items],
                    }
                }
                for group, items in CONDITION_GROUPS
            ],
            "hasactivefilters": True,
            "activefilters": [
                {
                    "id": i + 1,
                    "heading": name,
                    "headingeditable": f"<span>{name}</span>",
                    "sortorder": i + 1,
                    "movetitle": f"Move filter '{name}'",
                    "entityname": entity,
                }
                for i, (_, entity, name) in enumerate(report_filters(call))
            ],
            "helpicon": HELP_ICON,
        },
        "sorting": {
            "hassortablecolumns": True,
            "sortablecolumns": [
                {
                    "id": i + 1,
                    "title": h,
                    "heading": h,
                    "sortdirection": 4,
                    "sortenabled": i == 0,
                    "sortorder": i + 1,
                    "sorticon": {
                        "key": "t/sort_asc",
                        "component": "moodle",
                        "title": f"Change initial sorting for column '{h}' to descending",
                    },
                    "movetitle": f"Move sorting for column '{h}'",
                    "sortenabledtitle": f"Disable initial sorting for column '{h}'",
                }
                for i, h in enumerate(headers)
            ],
            "helpicon": HELP_ICON,
        },
        "cardview": {"form": '\n<form class="mform"></form>\n', "helpicon": HELP_ICON},
    }


def report_filters(call: Call) -> tuple[tuple[str, str, str], ...]:
    report = call.scenario.report
    assert report is not None
    return report.filters


def _filter_controls(identifier: str) -> str:
    """A filter's controls as the viewer's form names them (a date filter: operator, value, unit,
    from and to; a yes/no filter: its operator)."""
    field = identifier.replace(":", "")
    select = f'<select class="custom-select" name="{identifier}_operator" id="id_{field}_operator">\n'
    if identifier != TIME_COMPLETED:
        options = ("Is any value", "Yes", "No")
        return (
            select
            + "".join(f'<option value="{i}">{t}</option>\n' for i, t in enumerate(options))
            + "</select>\n"
        )
    operators = ("Is any value", "Is not empty", "Is empty", "Range", "Last", "Current")
    controls = select + "".join(f'<option value="{i}">{t}</option>\n' for i, t in enumerate(operators))
    controls += "</select>\n"
    controls += f'<input type="text" name="{identifier}_value" id="id_{field}_value" value="1" size="3">\n'
    controls += f'<select class="custom-select" name="{identifier}_unit" id="id_{field}_unit"></select>\n'
    for end in ("from", "to"):
        for part in ("day", "month", "year"):
            controls += f'<select name="{identifier}_{end}[{part}]" id="id_{field}_{end}_{part}"></select>\n'
        controls += f'<input type="checkbox" name="{identifier}_{end}[enabled]" value="1">\n'
    return controls


def _filters_form(call: Call) -> str:
    """The report page's filters form (reports_get, editmode 0): one block per filter the report
    carries, its controls named ``<filter>_<field>`` as in the 4.5 capture (quirks 18-19)."""
    report = call.scenario.report
    assert report is not None
    blocks = "".join(
        f'<div class="filter pb-3 mb-3" data-filter-for="{escape(name)}">\n'
        f'<div class="filter-name text-truncate">{escape(name)}</div>\n{_filter_controls(identifier)}</div>'
        for identifier, _, name in report.filters
    )
    return (
        f'\n<form autocomplete="off" action="{call.site_url}/webservice/rest/server.php" method="post" '
        'accept-charset="utf-8" class="mform full-width-labels">\n'
        f'<div style="display: none;"><input name="reportid" type="hidden" value="{report.id}" />\n'
        '<input name="parameters" type="hidden" value="[]" />\n</div>\n'
        f"{blocks}\n</form>\n"
    )


def _filters_applied(call: Call) -> int:
    """How many of the report's filters the caller's values set away from "Is any value"."""
    values = call.scenario.report_filter_values.get(_caller_id(call), {})
    return sum(
        1
        for identifier, _, _ in report_filters(call)
        if str(values.get(f"{identifier}_operator", 0)) not in ("", "0")
    )


def reports_get(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """``core_reportbuilder_reports_get``: the report as its page shows it; with editmode 1 the
    editor's panels, among them the conditions (the reliable way to see them, quirk 19)."""
    editmode = params["editmode"]
    _report(call, params["reportid"], "edit" if editmode else "view")
    details = _report_details(call)
    details.pop("sourcename")
    details.pop("modifiedby")
    details.pop("tags", None)
    answer: dict[str, Any] = {
        **details,
        "table": '<div class="table-dynamic position-relative" data-region="core_table/dynamic"></div>',
        "filtersapplied": 0 if editmode else _filters_applied(call),
        "filterspresent": not editmode,
        "filtersform": "" if editmode else _filters_form(call),
        "attributes": [],
        "classes": "",
        "editmode": bool(editmode),
    }
    if editmode:
        answer.update(_editor_parts(call))
    answer["javascript"] = "<script>\n//<![CDATA[\n//]]>\n</script>"
    return answer


# ----- the function table ------------------------------------------------------------------------
INT = Param("int")
OPTIONS = Param([Param({"name": Param("text"), "value": Param("text")})], required=False, default=[])

FUNCTIONS: dict[str, tuple[dict[str, Param], Handler]] = {
    "core_webservice_get_site_info": (
        {"serviceshortnames": Param([Param("text")], required=False, default=[])},
        site_info,
    ),
    "core_course_get_courses": (
        {
            "options": Param(
                {"ids": Param([INT], required=False, default=[])}, required=False, default={"ids": []}
            )
        },
        get_courses,
    ),
    "core_course_get_courses_by_field": (
        {
            "field": Param("text", required=False, default=""),
            "value": Param("text", required=False, default=""),
        },
        get_courses_by_field,
    ),
    "core_course_get_categories": (
        {
            "criteria": Param(
                [Param({"key": Param("text"), "value": Param("text")})], required=False, default=[]
            ),
            "addsubcategories": Param("bool", required=False, default=True),
        },
        get_categories,
    ),
    "core_enrol_get_enrolled_users": ({"courseid": INT, "options": OPTIONS}, get_enrolled_users),
    "core_enrol_get_users_courses": (
        {"userid": INT, "returnusercount": Param("bool", required=False, default=True)},
        get_users_courses,
    ),
    "core_enrol_get_course_enrolment_methods": ({"courseid": INT}, get_course_enrolment_methods),
    "core_completion_get_course_completion_status": (
        {"courseid": INT, "userid": INT},
        course_completion_status,
    ),
    "core_completion_get_activities_completion_status": (
        {"courseid": INT, "userid": INT},
        activities_completion_status,
    ),
    "core_user_get_users": (
        {"criteria": Param([Param({"key": Param("text"), "value": Param("text")})])},
        get_users,
    ),
    "core_user_get_users_by_field": (
        {"field": Param("text"), "values": Param([Param("text")])},
        get_users_by_field,
    ),
    "core_cohort_get_cohorts": ({"cohortids": Param([INT], required=False, default=[])}, get_cohorts),
    "core_cohort_search_cohorts": (
        {
            "query": Param("text"),
            "context": Param(
                {
                    "contextid": Param("int", required=False, default=0),
                    "contextlevel": Param("text", required=False, default=""),
                    "instanceid": Param("int", required=False, default=0),
                }
            ),
            "includes": Param("text", required=False, default="parents"),
            "limitfrom": Param("int", required=False, default=0),
            "limitnum": Param("int", required=False, default=25),
        },
        search_cohorts,
    ),
    "core_cohort_get_cohort_members": ({"cohortids": Param([INT])}, cohort_members),
    "core_reportbuilder_list_reports": (
        {"page": Param("int", required=False, default=0), "perpage": Param("int", required=False, default=5)},
        list_reports,
    ),
    "core_reportbuilder_retrieve_report": (
        {
            "reportid": INT,
            "page": Param("int", required=False, default=0),
            "perpage": Param("int", required=False, default=10),
        },
        retrieve_report,
    ),
    "core_reportbuilder_reports_get": (
        {
            "reportid": INT,
            "editmode": Param("bool", required=False, default=False),
            "pagesize": Param("int", required=False, default=0),
        },
        reports_get,
    ),
    "core_reportbuilder_set_filters": (
        {"reportid": INT, "parameters": Param("raw", required=False, default=""), "values": Param("raw")},
        set_filters,
    ),
    "core_reportbuilder_filters_reset": (
        {"reportid": INT, "parameters": Param("raw", required=False, default="")},
        filters_reset,
    ),
}
FUNCTIONS.update(FEEDBACK_FUNCTIONS)
