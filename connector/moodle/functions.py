"""THE catalogue of the Moodle web-service functions the connector calls.

Everything that names these functions is derived from :data:`CATALOGUE`: the sync's check of the
token's service, ``connector doctor``'s required and optional lines, the "grant these capabilities"
hint of a permission error, the completion paths, the emulator contract test and the README's
setup steps 2 and 3 (``tests/test_function_catalogue.py`` fails when the README drifts).

Capabilities: ``capabilities`` is what the connector's role should hold for the function (the
capture site's working role); ``breaks_without`` is measured: the leave-one-out table of
``tests/fixtures/moodle-4.5/README.md`` (each capability of the role removed in turn, the function
called again). ``webservice/rest:use`` breaks every function and is in :data:`BASE_CAPABILITIES`.
Leave-one-out cannot see capabilities that stand in for each other, nor data the capture site did
not have (groups, hidden profile fields, inactive enrolments), so the role keeps more than what
measurably breaks.

To add a function: add its entry here, implement it in ``connector/emulator/functions.py``, add
its fixture cases, and run the tests (the README's lists and the contract test follow).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from connector.i18n import N_, _


class Need(Enum):
    """Why the connector calls a function, which decides whether a sync can run without it."""

    REQUIRED = "required"  # every sync calls it; without it no sync starts
    PATH = "completion path"  # a cheaper completion path; without it the sync takes another
    COHORTS = "cohorts"  # only when the mappings place or scope people by cohort
    DELTA = "delta reads"  # nightly runs read only recent report rows; without it they read all
    DOCTOR = "doctor"  # only `connector doctor`'s checks
    SURVEY = "needs survey"  # reading the yearly needs survey (a Moodle Feedback)
    LIBRARY = "library"  # MoodleApi offers it; no command calls it


@dataclass(frozen=True)
class WebServiceFunction:
    name: str
    need: Need
    used_for: str  # what the connector needs it for, as doctor says it ("... needs it")
    capabilities: tuple[str, ...]  # what the connector's role should hold for it
    breaks_without: tuple[str, ...] = ()  # measured on Moodle 4.5 (leave-one-out)
    path: str | None = None  # the completion path it makes possible (Need.PATH)


BASE_CAPABILITIES = ("webservice/rest:use",)
# Moodle's menus as the hints name them (translated where shown, as an admin reads them in their Moodle)
ROLE_PLACE = N_("Site administration > Users > Permissions > Define roles")
SERVICE_PLACE = N_(
    "Site administration > Server > Web services > External services > (your service) > Functions"
)

# Completion paths, cheapest first (sync's `auto` tries them in this order).
COMPLETION_PATHS = ("report", "per_user", "per_course")

_COURSE_VIEW = ("moodle/course:view",)
_REPORT_CAPABILITIES = ("moodle/reportbuilder:view", "moodle/reportbuilder:editall")
_SURVEY_CAPABILITIES = (*_COURSE_VIEW, "mod/feedback:view", "mod/feedback:viewreports")
_FEEDBACK_VIEW = ("mod/feedback:view",)
_FEEDBACK_BOTH = ("mod/feedback:view", "mod/feedback:viewreports")

CATALOGUE: tuple[WebServiceFunction, ...] = (
    WebServiceFunction(
        "core_webservice_get_site_info",
        Need.REQUIRED,
        "every run (release, language, the service's functions)",
        (),
    ),
    WebServiceFunction(
        "core_course_get_courses",
        Need.REQUIRED,
        "every run (resolves the mapped courses)",
        (*_COURSE_VIEW, "moodle/course:viewhiddencourses"),
        breaks_without=(*_COURSE_VIEW, "moodle/course:viewhiddencourses"),
    ),
    WebServiceFunction(
        "core_enrol_get_enrolled_users",
        Need.REQUIRED,
        "the per_user and per_course paths (who is enrolled) and doctor's probe",
        (
            *_COURSE_VIEW,
            "moodle/course:viewparticipants",
            "moodle/course:enrolreview",
            "moodle/course:viewsuspendedusers",
            "moodle/site:accessallgroups",
            "moodle/user:viewdetails",
            "moodle/user:viewhiddendetails",
            "moodle/course:viewhiddenuserfields",
            "moodle/site:viewuseridentity",
            "moodle/site:viewfullnames",
        ),
        breaks_without=_COURSE_VIEW,
    ),
    WebServiceFunction(
        "core_user_get_users_by_field",
        Need.REQUIRED,
        "every run (profiles, suspended accounts)",
        ("moodle/user:viewdetails", "moodle/user:viewalldetails", "moodle/site:viewuseridentity"),
    ),
    WebServiceFunction(
        "core_completion_get_course_completion_status",
        Need.REQUIRED,
        "the per_course path, the report's time-zone calibration and doctor's probe",
        (*_COURSE_VIEW, "report/completion:view"),
        breaks_without=(*_COURSE_VIEW, "report/completion:view"),
    ),
    WebServiceFunction(
        "core_reportbuilder_retrieve_report",
        Need.PATH,
        "the report path (the fewest calls)",
        _REPORT_CAPABILITIES,
        breaks_without=("moodle/reportbuilder:editall",),  # or the user in the report's audience
        path="report",
    ),
    WebServiceFunction(
        "core_enrol_get_users_courses",
        Need.PATH,
        "the per-user completion path",
        (*_COURSE_VIEW, "moodle/user:viewdetails", "report/progress:view"),
        path="per_user",
    ),
    WebServiceFunction(
        "core_cohort_get_cohorts",
        Need.COHORTS,
        "placement or scope by cohort",
        ("moodle/cohort:view",),
        breaks_without=("moodle/cohort:view",),
    ),
    WebServiceFunction(
        "core_cohort_get_cohort_members",
        Need.COHORTS,
        "placement or scope by cohort",
        ("moodle/cohort:view",),
        breaks_without=("moodle/cohort:view",),
    ),
    # Read in Moodle's source, not captured (tests/fixtures/moodle-4.5-source/README.md): set
    # needs the report to be viewable by the token's user; reset only its context.
    WebServiceFunction(
        "core_reportbuilder_set_filters",
        Need.DELTA,
        "nightly delta reads of the report",
        _REPORT_CAPABILITIES,
    ),
    WebServiceFunction(
        "core_reportbuilder_filters_reset",
        Need.DELTA,
        "nightly delta reads of the report",
        _REPORT_CAPABILITIES,
    ),
    WebServiceFunction(
        "core_reportbuilder_reports_get",
        Need.DOCTOR,
        "doctor's check of the report's conditions and filters; the sync's check of the "
        "'Time completed' filter",
        _REPORT_CAPABILITIES,
    ),
    *(
        WebServiceFunction(name, Need.SURVEY, f"the needs survey ({what})", _SURVEY_CAPABILITIES, breaks)
        for name, what, breaks in (
            ("mod_feedback_get_feedbacks_by_courses", "finding the Feedback", ()),
            ("mod_feedback_get_items", "its questions", _FEEDBACK_VIEW),
            ("mod_feedback_get_responses_analysis", "the named answers", _FEEDBACK_BOTH),
            ("mod_feedback_get_non_respondents", "who has not answered", _FEEDBACK_BOTH),
            ("mod_feedback_get_feedback_access_information", "what the token may see", _FEEDBACK_VIEW),
        )
    ),
    WebServiceFunction(
        "mod_feedback_get_analysis",
        Need.LIBRARY,
        "a Feedback's answers counted per question",
        _SURVEY_CAPABILITIES,
        breaks_without=_FEEDBACK_BOTH,
    ),
    WebServiceFunction(
        "core_reportbuilder_list_reports",
        Need.LIBRARY,
        "listing the custom reports",
        ("moodle/reportbuilder:view",),
    ),
    WebServiceFunction(
        "core_course_get_courses_by_field",
        Need.LIBRARY,
        "courses by one field",
        (*_COURSE_VIEW, "moodle/course:viewhiddencourses"),
    ),
)

BY_NAME = {function.name: function for function in CATALOGUE}


def named(need: Need) -> tuple[str, ...]:
    """The names of the functions of one need, in catalogue order."""
    return tuple(f.name for f in CATALOGUE if f.need is need)


REQUIRED_FUNCTIONS = named(Need.REQUIRED)
COHORT_FUNCTIONS = named(Need.COHORTS)
REPORT_FUNCTION = "core_reportbuilder_retrieve_report"
PER_USER_FUNCTION = "core_enrol_get_users_courses"
REPORTS_GET = "core_reportbuilder_reports_get"
DELTA_FUNCTIONS = named(Need.DELTA)


def optional_functions() -> tuple[WebServiceFunction, ...]:
    """What a sync can do without, but is cheaper or richer with: doctor lists the absent ones."""
    return tuple(f for f in CATALOGUE if f.need in (Need.PATH, Need.DELTA, Need.COHORTS))


def setup_functions() -> tuple[str, ...]:
    """The functions the README's setup step 3 asks for: every one a sync may call."""
    wanted = (Need.REQUIRED, Need.PATH, Need.DELTA, Need.COHORTS)
    return tuple(f.name for f in CATALOGUE if f.need in wanted)


def role_capabilities() -> tuple[str, ...]:
    """Every capability the connector's role needs for syncing (README setup step 2; the needs
    survey's own are in the README's survey section), first seen first."""
    used = (f.name for f in CATALOGUE if f.need not in (Need.LIBRARY, Need.SURVEY))
    return tuple(dict.fromkeys(BASE_CAPABILITIES + capabilities_needed(used)))


def capabilities_for(function: str) -> tuple[str, ...]:
    return BASE_CAPABILITIES + (BY_NAME[function].capabilities if function in BY_NAME else ())


def capabilities_needed(functions: Iterable[str]) -> tuple[str, ...]:
    """The capabilities ``functions`` need beyond :data:`BASE_CAPABILITIES`, first seen first."""
    seen: dict[str, None] = {}
    for name in functions:
        seen.update(dict.fromkeys(BY_NAME[name].capabilities))
    return tuple(seen)


def add_to_service_hint(functions: Iterable[str] | None = None) -> str:
    """THE hint for functions missing from the token's service."""
    names = list(functions or ())
    if not names:
        return _("add them to the external service ({place})").format(place=_(SERVICE_PLACE))
    return _("add {functions} to the external service ({place})").format(
        functions=", ".join(names), place=_(SERVICE_PLACE)
    )


def capability_hint(function: str) -> str:
    """THE hint for a function refused for lack of capabilities."""
    return _(
        "the token's user lacks capabilities; give it a system role with {capabilities} ({place})"
    ).format(capabilities=", ".join(capabilities_for(function)), place=_(ROLE_PLACE))
