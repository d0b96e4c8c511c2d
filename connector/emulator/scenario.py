"""The facts an emulated Moodle serves: people, courses, enrolments, completions, cohorts.

Stored column-wise in ``array`` objects and small string tables so a 100,000-user scenario
costs a few megabytes: nothing is precomputed per request. Reads and the few mutations
(course reset, a new completion, suspension, an enrolment suspended or ended, deletion, the
report's "Enrolment status" condition removed) go through ``lock``.

An enrolment is active, suspended (``user_enrolments.status`` 1) or ended (its ``timeend`` has
passed). A real Moodle keeps the completion behind an inactive enrolment but hides it from every
web-service path except a custom report without the "Enrolment status" condition (the 4.5
capture's README, quirk 18); the emulator's functions follow that.
"""

from __future__ import annotations

import hashlib
import random
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from connector.moodle.records import Completion, Course, Enrolment, Person

if TYPE_CHECKING:
    from connector.emulator.feedback import FeedbackDef

SUSPENDED = 1
DELETED = 2
# enrolment states (the enrol_state column)
ENROLMENT_ACTIVE = 0
ENROLMENT_SUSPENDED = 1
ENROLMENT_ENDED = 2
FOUR_YEARS_DAYS = 4 * 365
TIME_COMPLETED = "completion:timecompleted"
# core_reportbuilder\local\filters\date operators the emulator applies
DATE_ANY, DATE_NOT_EMPTY, DATE_EMPTY, DATE_RANGE = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class CourseDef:
    id: int
    shortname: str
    fullname: str
    idnumber: str
    category_id: int
    sortorder: int
    visible: bool = True
    completion_enabled: bool = True
    format: str = "topics"
    timecreated: int = 0


@dataclass(frozen=True, slots=True)
class CategoryDef:
    id: int
    name: str
    sortorder: int


@dataclass(frozen=True, slots=True)
class CohortDef:
    id: int
    name: str
    idnumber: str
    institution: str  # members are the people whose institution is exactly this


@dataclass(frozen=True, slots=True)
class Account:
    """A system account (guest, admin, the web-service users): not one of the scenario's people."""

    id: int
    username: str
    firstname: str
    lastname: str
    email: str


@dataclass(frozen=True, slots=True)
class ReportDef:
    """A "Course participants" custom report. Moodle creates it with the default condition
    "Enrolment status = Active", which hides inactive enrolments (and their completions)."""

    id: int
    name: str
    timecreated: int
    enrolment_status_condition: bool = True
    # the "Course completion > Time completed" filter on the report's Filters tab (a viewer, or
    # the web service through core_reportbuilder_set_filters, may then narrow the rows by it)
    time_completed_filter: bool = False

    @property
    def filters(self) -> tuple[tuple[str, str, str], ...]:
        """(identifier, entity, name) of the filters a viewer can set, in the editor's order."""
        chosen = [("user:suspended", "User", "Suspended"), ("user:confirmed", "User", "Confirmed")]
        if self.time_completed_filter:
            chosen.append((TIME_COMPLETED, "Course completion", "Time completed"))
        return tuple(chosen)


@dataclass(frozen=True, slots=True)
class PersonView:
    """One person as read from the columns at a moment."""

    index: int
    id: int
    username: str
    idnumber: str
    firstname: str
    lastname: str
    email: str
    institution: str
    department: str
    position: str
    city: str
    country: str
    suspended: bool

    @property
    def fullname(self) -> str:
        return f"{self.firstname} {self.lastname}"


@dataclass
class PeopleColumns:
    """Input for building a Scenario: one entry per person, ids first_id, first_id+1, ..."""

    first_id: int
    firstnames: array[int]  # indexes into Scenario.strings
    lastnames: array[int]
    institutions: array[int]
    departments: array[int]
    positions: array[int]
    flags: bytearray


class Scenario:
    """A Moodle site's content. Build with demo_scenario() or generated_scenario()."""

    def __init__(
        self,
        *,
        name: str,
        anchor: date,
        strings: list[str],
        people: PeopleColumns,
        places: dict[str, tuple[str, str]],
        courses: Sequence[CourseDef],
        categories: Sequence[CategoryDef],
        cohorts: Sequence[CohortDef],
        accounts: Sequence[Account],
        enrolment_triples: Iterable[tuple[int, int, int]],
        report: ReportDef | None,
        report_timezone: str,
        earlier_completions: Sequence[tuple[int, int, int]] = (),
        site_name: str = "Compliance Test Moodle",
        token_user_id: int = 0,
        weak_user_id: int = 0,
        feedbacks: Sequence[FeedbackDef] = (),
    ) -> None:
        self.name = name
        self.anchor = anchor
        self.site_name = site_name
        self.report = report
        self.report_timezone = report_timezone
        self.lock = threading.RLock()
        self.strings = strings
        self._people = people
        self._places = places
        self.course_defs: dict[int, CourseDef] = {c.id: c for c in courses}
        self.categories = tuple(categories)
        self.cohorts = tuple(cohorts)
        self.accounts: dict[int, Account] = {a.id: a for a in accounts}
        self.feedbacks: dict[int, FeedbackDef] = {f.id: f for f in feedbacks}  # Feedback activities
        self.token_user_id = token_user_id
        self.weak_user_id = weak_user_id
        self.username_width = max(3, len(str(len(people.flags))))
        # enrolments, stored in (user, course) order; completed_at 0 = not completed;
        # last_access: the person's last visit to the course (lastcourseaccess), 0 = never.
        # Self completion needs a visit, so a completion's time is also a visit.
        self.enrol_user = array("l")
        self.enrol_course = array("l")
        self.completed_at = array("q")
        self.last_access = array("q")
        self.enrol_state = array("b")
        for user_id, course_id, at in enrolment_triples:
            self.enrol_user.append(user_id)
            self.enrol_course.append(course_id)
            self.completed_at.append(at)
            self.last_access.append(at)
            self.enrol_state.append(ENROLMENT_ACTIVE)
        self.earlier_completions: list[tuple[int, int, int]] = list(earlier_completions)
        # user id -> when Moodle deleted them (their username became "<email>.<that time>")
        self.deleted_at: dict[int, int] = {}
        self._report_rows: array[int] | None = None
        # (operator, from, to) -> the report's rows the "Time completed" filter keeps
        self._filtered_rows: dict[tuple[int, int, int], array[int]] = {}
        # user id -> the report filter values that user set (Moodle keeps them as a preference)
        self.report_filter_values: dict[int, dict[str, Any]] = {}
        self._rebuild_indexes()

    # ----- people -----------------------------------------------------------------------------
    @property
    def person_count(self) -> int:
        return len(self._people.flags)

    def person_index(self, user_id: int) -> int | None:
        index = user_id - self._people.first_id
        if 0 <= index < self.person_count and not self._people.flags[index] & DELETED:
            return index
        return None

    def deleted_index(self, user_id: int) -> int | None:
        """A deleted person's index: Moodle still answers a lookup by id for them."""
        index = user_id - self._people.first_id
        if 0 <= index < self.person_count and self._people.flags[index] & DELETED:
            return index
        return None

    def person_id(self, index: int) -> int:
        return self._people.first_id + index

    def username_of(self, index: int) -> str:
        return f"u{index + 1:0{self.username_width}d}"

    def index_by_username(self, username: str) -> int | None:
        digits = username[1:]
        if not username.startswith("u") or len(digits) != self.username_width:
            return None
        if not digits.isdigit():
            return None
        index = int(digits) - 1
        if 0 <= index < self.person_count and not self._people.flags[index] & DELETED:
            return index
        return None

    def person(self, index: int) -> PersonView:
        p = self._people
        institution = self.strings[p.institutions[index]]
        city, country = self._places.get(institution, ("", ""))
        username = self.username_of(index)
        view = PersonView(
            index=index,
            id=p.first_id + index,
            username=username,
            idnumber=f"EMP{1001 + index}",
            firstname=self.strings[p.firstnames[index]],
            lastname=self.strings[p.lastnames[index]],
            email=f"{username}@example.org",
            institution=institution,
            department=self.strings[p.departments[index]],
            position=self.strings[p.positions[index]],
            city=city,
            country=country,
            suspended=bool(p.flags[index] & SUSPENDED),
        )
        if p.flags[index] & DELETED:
            # Moodle's delete_user(): username "<email>.<time>", email its md5, idnumber and
            # profile fields emptied, no longer suspended; no "deleted" flag reaches the web service
            renamed = f"{view.email}.{self.deleted_at.get(view.id, 0)}"
            view = replace(
                view,
                username=renamed,
                email=hashlib.md5(renamed.encode()).hexdigest(),
                idnumber="",
                position="",
                city="",
                suspended=False,
            )
        return view

    def live_people(self) -> Iterator[PersonView]:
        for index in range(self.person_count):
            if not self._people.flags[index] & DELETED:
                yield self.person(index)

    # ----- enrolments -------------------------------------------------------------------------
    def _rebuild_indexes(self) -> None:
        """Per-user offsets into the (user, course) storage and a (course, user) permutation."""
        self._forget_report_rows()
        count = self.person_count
        first = self._people.first_id
        offsets = array("l", bytes(array("l").itemsize * (count + 1)))
        for user_id in self.enrol_user:
            offsets[user_id - first + 1] += 1
        for i in range(count):
            offsets[i + 1] += offsets[i]
        self._user_offsets = offsets
        per_course: dict[int, int] = {}
        for course_id in self.enrol_course:
            per_course[course_id] = per_course.get(course_id, 0) + 1
        starts: dict[int, int] = {}
        total = 0
        for course_id in sorted(per_course):
            starts[course_id] = total
            total += per_course[course_id]
        self._course_ranges = {c: (starts[c], starts[c] + per_course[c]) for c in per_course}
        by_course = array("l", bytes(array("l").itemsize * len(self.enrol_course)))
        fill = dict(starts)
        for position, course_id in enumerate(self.enrol_course):
            by_course[fill[course_id]] = position
            fill[course_id] += 1
        self._by_course = by_course

    def user_positions(self, index: int) -> range:
        return range(self._user_offsets[index], self._user_offsets[index + 1])

    def course_positions(self, course_id: int) -> Sequence[int]:
        start, end = self._course_ranges.get(course_id, (0, 0))
        return self._by_course[start:end]

    def enrolment_count(self) -> int:
        return len(self.enrol_user)

    def enrolment_active(self, position: int) -> bool:
        return self.enrol_state[position] == ENROLMENT_ACTIVE

    def report_rows(self) -> array[int]:
        """What the custom report lists, in order: enrolment positions, and ``-course_id`` for
        an enrolment method nobody uses (its row has empty user cells). With the default
        "Enrolment status = Active" condition only active enrolments are listed."""
        with self.lock:
            if self._report_rows is None:
                keep_all = self.report is not None and not self.report.enrolment_status_condition
                rows = array(
                    "l",
                    (
                        p
                        for p in range(len(self.enrol_user))
                        if keep_all or self.enrol_state[p] == ENROLMENT_ACTIVE
                    ),
                )
                if keep_all:  # e.g. the unused self enrolment instance of each course
                    rows.extend(
                        -c.id
                        for c in sorted(self.course_defs.values(), key=lambda c: c.id)
                        if c.format != "site"
                    )
                self._report_rows = rows
            return self._report_rows

    def find_enrolment(self, index: int, course_id: int) -> int | None:
        for position in self.user_positions(index):
            if self.enrol_course[position] == course_id:
                return position
        return None

    def enrolled_count(self, course_id: int) -> int:
        start, end = self._course_ranges.get(course_id, (0, 0))
        return end - start

    # ----- what tests and benchmarks check answers against ------------------------------------
    @property
    def users(self) -> Iterator[Person]:
        for view in self.live_people():
            yield Person(
                id=view.id,
                username=view.username,
                idnumber=view.idnumber,
                fullname=view.fullname,
                email=view.email,
                department=view.department,
                institution=view.institution,
                custom_fields=(("position", view.position),) if view.position else (),
                suspended=view.suspended,
            )

    @property
    def courses(self) -> Iterator[Course]:
        for c in sorted(self.course_defs.values(), key=lambda c: c.id):
            if c.format == "site":
                continue
            yield Course(
                id=c.id,
                shortname=c.shortname,
                fullname=c.fullname,
                idnumber=c.idnumber,
                visible=c.visible,
                completion_enabled=c.completion_enabled,
                category_id=c.category_id,
            )

    @property
    def enrolments(self) -> Iterator[Enrolment]:
        with self.lock:
            rows = list(zip(self.enrol_user, self.enrol_course, self.last_access, strict=True))
        for user_id, course_id, access in rows:
            yield Enrolment(course_id=course_id, user_id=user_id, lastcourseaccess=access)

    @property
    def completions(self) -> Iterator[Completion]:
        """What Moodle shows now: the latest completion of each enrolment."""
        with self.lock:
            rows = [
                (u, c, t)
                for u, c, t in zip(self.enrol_user, self.enrol_course, self.completed_at, strict=True)
                if t
            ]
        for user_id, course_id, at in rows:
            yield Completion(user_id=user_id, course_id=course_id, completed_at=at)

    @property
    def completion_history(self) -> Iterator[Completion]:
        """Every completion that ever happened, superseded ones included."""
        with self.lock:
            earlier = list(self.earlier_completions)
        for user_id, course_id, at in earlier:
            yield Completion(user_id=user_id, course_id=course_id, completed_at=at)
        yield from self.completions

    # ----- mutations --------------------------------------------------------------------------
    def reset_course(self, course_id: int) -> None:
        """Moodle's course reset with completion data: completions vanish, enrolments stay."""
        with self.lock:
            for position in self.course_positions(course_id):
                self.completed_at[position] = 0
            self._filtered_rows = {}

    def complete(self, user_id: int, course_id: int, at: int, *, by_teacher: bool = False) -> None:
        """A new completion; enrols the person first when they were not enrolled.

        A self completion is a visit to the course (``lastcourseaccess`` moves); a teacher marking
        someone complete (``by_teacher``) is not: the person's access times stay as they were.
        """
        with self.lock:
            index = self._require_person(user_id)
            if course_id not in self.course_defs:
                raise KeyError(f"no course {course_id}")
            position = self.find_enrolment(index, course_id)
            if position is None:
                position = self._insert_enrolment(index, course_id)
            previous = self.completed_at[position]
            if previous:
                self.earlier_completions.append((user_id, course_id, previous))
            self.completed_at[position] = at
            self._filtered_rows = {}
            if not by_teacher:
                self.last_access[position] = max(self.last_access[position], at)

    def visit(self, user_id: int, course_id: int, at: int) -> None:
        """The person opens an enrolled course (``lastcourseaccess`` moves, nothing else)."""
        with self.lock:
            position = self.find_enrolment(self._require_person(user_id), course_id)
            if position is None:
                raise KeyError(f"user {user_id} is not enrolled in course {course_id}")
            self.last_access[position] = max(self.last_access[position], at)

    def course_access(self, index: int, course_id: int) -> int:
        position = self.find_enrolment(index, course_id)
        return 0 if position is None else self.last_access[position]

    def site_access(self, index: int) -> int:
        return max((self.last_access[p] for p in self.user_positions(index)), default=0)

    def suspend(self, user_id: int) -> None:
        with self.lock:
            self._people.flags[self._require_person(user_id)] |= SUSPENDED

    def suspend_enrolment(self, user_id: int, course_id: int) -> None:
        """The enrolment's status set to suspended (the person's account stays active)."""
        self._set_enrolment_state(user_id, course_id, ENROLMENT_SUSPENDED)

    def end_enrolment(self, user_id: int, course_id: int) -> None:
        """The enrolment's end date has passed (enrolment duration, cohort sync)."""
        self._set_enrolment_state(user_id, course_id, ENROLMENT_ENDED)

    def _set_enrolment_state(self, user_id: int, course_id: int, state: int) -> None:
        with self.lock:
            position = self.find_enrolment(self._require_person(user_id), course_id)
            if position is None:
                raise KeyError(f"user {user_id} is not enrolled in course {course_id}")
            self.enrol_state[position] = state
            self._forget_report_rows()

    def set_report_condition(self, present: bool) -> None:
        """The admin deletes (the README's advice) or adds back the report's "Enrolment status
        = Active" condition."""
        with self.lock:
            if self.report is None:
                raise KeyError("the scenario has no report")
            self.report = replace(self.report, enrolment_status_condition=present)
            self._forget_report_rows()

    def set_report_time_filter(self, present: bool) -> None:
        """The admin adds (or deletes) the report's "Time completed" filter."""
        with self.lock:
            if self.report is None:
                raise KeyError("the scenario has no report")
            self.report = replace(self.report, time_completed_filter=present)

    def _forget_report_rows(self) -> None:
        self._report_rows = None
        self._filtered_rows = {}

    def report_rows_for(self, user_id: int) -> array[int]:
        """The report's rows as ``user_id`` reads them: narrowed by the filter values that user
        set, for the filters the report carries (values of any other filter are ignored)."""
        with self.lock:
            rows = self.report_rows()
            values = self.report_filter_values.get(user_id)
            if not values or self.report is None or not self.report.time_completed_filter:
                return rows
            operator = _int_value(values.get(f"{TIME_COMPLETED}_operator"))
            since = _int_value(values.get(f"{TIME_COMPLETED}_from"))
            until = _int_value(values.get(f"{TIME_COMPLETED}_to"))
            if operator == DATE_RANGE and since <= 0 and until <= 0:
                return rows  # a range with neither end filters nothing
            if operator not in (DATE_NOT_EMPTY, DATE_EMPTY, DATE_RANGE):
                return rows  # "any value", or a relative period the emulator does not model
            key = (operator, since, until)
            kept = self._filtered_rows.get(key)
            if kept is None:
                kept = self._filtered_rows[key] = array(
                    "l", (r for r in rows if _keeps(operator, since, until, self._completion_of(r)))
                )
            return kept

    def _completion_of(self, row: int) -> int:
        return 0 if row < 0 else self.completed_at[row]

    def delete_user(self, user_id: int, at: int | None = None) -> None:
        """Moodle's user deletion: enrolments go, the account is renamed (lookups by id still
        find it, under ``<email>.<time>``); the completion records stay in Moodle's tables."""
        with self.lock:
            index = self._require_person(user_id)
            self._people.flags[index] |= DELETED
            self.deleted_at[user_id] = (
                at if at is not None else int(datetime.combine(self.anchor, time(12), tzinfo=UTC).timestamp())
            )
            doomed = self.user_positions(index)
            for column in (
                self.enrol_user,
                self.enrol_course,
                self.completed_at,
                self.last_access,
                self.enrol_state,
            ):
                del column[doomed.start : doomed.stop]
            self._rebuild_indexes()

    def delete_course(self, course_id: int) -> None:
        """The course is gone from every answer, its enrolments and completions with it (Moodle's
        course deletion; to the connector, like a course hidden from the token's user)."""
        with self.lock:
            del self.course_defs[course_id]
            keep = [p for p, c in enumerate(self.enrol_course) if c != course_id]
            for column in (self.enrol_user, self.enrol_course, self.completed_at, self.last_access):
                column[:] = array(column.typecode, (column[p] for p in keep))
            self._rebuild_indexes()

    def _require_person(self, user_id: int) -> int:
        index = self.person_index(user_id)
        if index is None:
            raise KeyError(f"no user {user_id}")
        return index

    def _insert_enrolment(self, index: int, course_id: int) -> int:
        user_id = self.person_id(index)
        position = self._user_offsets[index + 1]
        for existing in self.user_positions(index):
            if self.enrol_course[existing] > course_id:
                position = existing
                break
        self.enrol_user.insert(position, user_id)
        self.enrol_course.insert(position, course_id)
        self.completed_at.insert(position, 0)
        self.last_access.insert(position, 0)
        self.enrol_state.insert(position, ENROLMENT_ACTIVE)
        self._rebuild_indexes()
        return position


def _int_value(value: Any) -> int:
    """PHP's (int) of a filter value: numbers and numeric strings, anything else 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _keeps(operator: int, since: int, until: int, at: int) -> bool:
    if operator == DATE_NOT_EMPTY:
        return at != 0
    if operator == DATE_EMPTY:
        return at == 0
    # not completed is NULL in course_completions: no comparison keeps it
    return at != 0 and (since <= 0 or at >= since) and (until <= 0 or at < until)


def completion_instant(anchor: date, days_before: int, seconds_of_day: int = 10 * 3600) -> int:
    day = anchor - timedelta(days=days_before)
    midnight = datetime.combine(day, time(0), tzinfo=UTC)
    return int(midnight.timestamp()) + seconds_of_day


class StringTable:
    """Interns strings so each person's columns hold small integers."""

    def __init__(self) -> None:
        self.strings: list[str] = [""]
        self._index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        found = self._index.get(text)
        if found is None:
            found = len(self.strings)
            self.strings.append(text)
            self._index[text] = found
        return found


def empty_people(first_id: int) -> PeopleColumns:
    return PeopleColumns(
        first_id=first_id,
        firstnames=array("I"),
        lastnames=array("I"),
        institutions=array("I"),
        departments=array("I"),
        positions=array("I"),
        flags=bytearray(),
    )


def add_person(
    people: PeopleColumns,
    intern: StringTable,
    *,
    firstname: str,
    lastname: str,
    institution: str,
    department: str,
    position: str,
    suspended: bool = False,
) -> None:
    people.firstnames.append(intern(firstname))
    people.lastnames.append(intern(lastname))
    people.institutions.append(intern(institution))
    people.departments.append(intern(department))
    people.positions.append(intern(position))
    people.flags.append(SUSPENDED if suspended else 0)


def seeded(seed: int, salt: str) -> random.Random:
    return random.Random(f"{seed}:{salt}")
