"""Frozen records: the facts the connector reads from Moodle and computes from them.

Every stage of the data flow hands these to the next one; none of them knows how it was fetched.
Times are UTC epoch seconds (as Moodle sends them) unless a field says ``date``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """``core_webservice_get_site_info``: who the token is and what it may call."""

    sitename: str
    siteurl: str
    release: str
    version: str
    lang: str
    username: str
    userid: int
    functions: frozenset[str]

    def can_call(self, function: str) -> bool:
        return function in self.functions


@dataclass(frozen=True, slots=True)
class Course:
    id: int
    shortname: str
    fullname: str
    idnumber: str
    visible: bool
    completion_enabled: bool
    category_id: int = 0


@dataclass(frozen=True, slots=True)
class Person:
    """A Moodle user with the profile fields the mappings may place them by."""

    id: int
    username: str
    idnumber: str = ""
    fullname: str = ""
    email: str = ""
    department: str = ""
    institution: str = ""
    # (shortname, value) pairs of custom profile fields, sorted by shortname
    custom_fields: tuple[tuple[str, str], ...] = ()
    # None: the source did not say (core_enrol_get_enrolled_users never carries it)
    suspended: bool | None = None
    firstaccess: int = 0
    lastaccess: int = 0
    # Moodle sends no flag: a deleted account is recognised by its rewritten username/email
    deleted: bool = False

    def field(self, shortname: str) -> str | None:
        for name, value in self.custom_fields:
            if name == shortname:
                return value
        return None


@dataclass(frozen=True, slots=True)
class Enrolment:
    course_id: int
    user_id: int
    lastcourseaccess: int | None = None


@dataclass(frozen=True, slots=True)
class EnrolledUser:
    """One row of ``core_enrol_get_enrolled_users``: the person and their enrolment."""

    person: Person
    enrolment: Enrolment


@dataclass(frozen=True, slots=True)
class CourseCompletion:
    """``core_completion_get_course_completion_status`` for one user in one course.

    Moodle sends no course-level completion time; ``completed_at`` is derived from the criteria's
    ``timecompleted`` (the latest for aggregation ALL, the earliest completed one for ANY) and is
    None while not completed or when no criterion carries a time.
    """

    user_id: int
    course_id: int
    completed: bool
    completed_at: int | None


@dataclass(frozen=True, slots=True)
class UserCourse:
    """One row of ``core_enrol_get_users_courses``."""

    user_id: int
    course_id: int
    shortname: str
    idnumber: str
    visible: bool
    completion_enabled: bool
    completed: bool | None
    progress: float | None
    lastaccess: int | None = None


@dataclass(frozen=True, slots=True)
class Cohort:
    id: int
    idnumber: str
    name: str
    visible: bool = True


@dataclass(frozen=True, slots=True)
class CohortMembers:
    cohort_id: int
    user_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ReportPage:
    """One page of ``core_reportbuilder_retrieve_report``: cells exactly as Moodle formatted them."""

    report_id: int
    page: int
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    total_rows: int


@dataclass(frozen=True, slots=True)
class ReportCompletion:
    """One report row turned into facts: ids taken from the link markup, time parsed and calibrated."""

    user_id: int | None
    username: str
    course_id: int | None
    course_idnumber: str
    completed_at: int | None  # None: enrolled, not completed


@dataclass(frozen=True, slots=True)
class Completion:
    """Evidence: this user completed this course at this instant, as read from ``source``.

    ``source`` is ``"report"`` (minute precision, ``precision_s`` 60) or ``"completion_status"``.
    """

    user_id: int
    course_id: int
    completed_at: int
    source: str = "completion_status"
    precision_s: int = 1


@dataclass(frozen=True, slots=True)
class Subject:
    """A person as the rules engine sees them: placed, positioned, active or not."""

    user_id: int
    username: str
    department_id: str | None  # None: matched no department (reported as unplaced)
    position: str | None = None
    cohorts: frozenset[str] = field(default_factory=frozenset)  # cohort idnumbers
    active: bool = True  # False when suspended or deleted in Moodle
    start_date: date | None = None  # for the newcomers' grace period; None when unknown
    idnumber: str = ""
