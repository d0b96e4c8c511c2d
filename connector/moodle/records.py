"""Frozen records: the facts the connector reads from Moodle and computes from them.

Every stage of the data flow hands these to the next one; none of them knows how it was fetched.
Times are UTC epoch seconds (as Moodle sends them) unless a field says ``date``.

The records are the door for Moodle's values: a record never holds one the rest of the connector
cannot use. A number that is not a whole number within SQLite's range makes the record unreadable
(:func:`whole_number`, :func:`read_record`: a protocol error naming the record). A time before
1970 or past the year 9998 is impossible: a completion with one is skipped and an access time is
taken as "never", each with a warning naming the record; the rest of the site is still read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ParamSpec, TypeVar

from connector.errors import MoodleProtocolError
from connector.i18n import _

log = logging.getLogger("connector.moodle")

P = ParamSpec("P")
R = TypeVar("R")

SQLITE_MAX = 2**63 - 1
# Later than this, a date plus a validity or a time zone no longer fits Python's calendar.
LATEST_TIME = int(datetime(9999, 1, 1, tzinfo=UTC).timestamp())


class UnreadableValue(MoodleProtocolError, ValueError):
    """A value of the wrong kind: a protocol error wherever it surfaces, never an internal error."""


def whole_number(value: Any) -> int:
    """An integer Moodle sent (JSON number or XML text), or ValueError saying what came instead."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and value.strip().isascii():
        number = int(value.strip())
    if number is None:
        raise UnreadableValue(f"{_shown(value)} is not a whole number")
    if not -SQLITE_MAX <= number <= SQLITE_MAX:
        raise UnreadableValue(f"{_shown(value)} is out of range")
    return number


def plausible_time(seconds: int) -> bool:
    """A Moodle time that can be real: after 1 January 1970 and before the year 9999."""
    return 0 < seconds < LATEST_TIME


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_record(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a builder of records from Moodle's answer: an unreadable value becomes a
    MoodleProtocolError naming the record (by its id) instead of an internal error."""

    def decorate(build: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(build)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return build(*args, **kwargs)
            except (ValueError, TypeError, OverflowError) as error:  # UnreadableValue included
                data = next((a for a in args if isinstance(a, Mapping)), {})
                raise MoodleProtocolError(
                    _("Moodle sent a {kind} record (id {shown}) that cannot be read: {value}").format(
                        kind=kind,
                        shown=_shown(data.get("id")),
                        value=error.message if isinstance(error, UnreadableValue) else error,
                    ),
                    hint=_("Moodle or a plugin answered outside its own format; check the record in Moodle"),
                ) from None

        return wrapper

    return decorate


def _impossible_time(record: object, name: str, seconds: int | None, what: str) -> bool:
    if seconds is None or seconds == 0 or plausible_time(seconds):
        return False
    log.warning("%s: %s %d is not a possible time; %s", record, name, seconds, what)
    return True


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

    def __post_init__(self) -> None:
        for name in ("firstaccess", "lastaccess"):
            if _impossible_time(f"user id {self.id}", name, getattr(self, name), "taken as never"):
                object.__setattr__(self, name, 0)

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

    def __post_init__(self) -> None:
        if _impossible_time(
            f"user id {self.user_id} in course id {self.course_id}",
            "lastcourseaccess",
            self.lastcourseaccess,
            "taken as never",
        ):
            object.__setattr__(self, "lastcourseaccess", None)


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

    def __post_init__(self) -> None:
        if _impossible_time(
            f"completion of user id {self.user_id} in course id {self.course_id}",
            "timecompleted",
            self.completed_at,
            "this completion is skipped",
        ):
            object.__setattr__(self, "completed_at", None)


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

    def __post_init__(self) -> None:
        if _impossible_time(
            f"user id {self.user_id} in course id {self.course_id}",
            "lastaccess",
            self.lastaccess,
            "taken as never",
        ):
            object.__setattr__(self, "lastaccess", None)


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

    def __post_init__(self) -> None:
        for name in ("user_id", "course_id"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= SQLITE_MAX:
                raise MoodleProtocolError(
                    _(
                        "a report row of {username!r} links to {name} {value}, which cannot be a Moodle id"
                    ).format(username=self.username, name=name, value=value)
                )
        at = self.completed_at
        if at is None or at == 0 or plausible_time(at):  # the usual row: no text built for it
            return
        who = f"user id {self.user_id}" if self.user_id is not None else f"user {self.username!r}"
        if _impossible_time(
            f"report completion of {who} in course {self.course_id or self.course_idnumber!r}",
            "time completed",
            at,
            "this completion is skipped",
        ):
            object.__setattr__(self, "completed_at", None)


@dataclass(frozen=True, slots=True)
class Completion:
    """Evidence: this user completed this course at this instant, as read from ``source``.

    ``source`` is ``"report"`` (minute precision, ``precision_s`` 60) or ``"completion_status"``;
    evidence imported from outside Moodle has ``"import:<provider>"`` (day precision) and may name
    a requirement instead of a course (``requirement_id``; ``course_id`` is then 0) and carry the
    certificate's own expiry (``expires_on``, capping the requirement's validity).
    """

    user_id: int
    course_id: int
    completed_at: int
    source: str = "completion_status"
    precision_s: int = 1
    requirement_id: str | None = None
    expires_on: date | None = None


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
