"""Who is due: people in scope whose requirement is missing, expired, in its grace period, or
valid only until a day inside the coming window; one row per person x requirement, by due date.

The due date is the last day the evidence is valid (expiring, compliant, and expired, which is
overdue since then), the end of the newcomer's grace period, or ``as_of`` itself for someone who
never held it (due now). Statuses are those of ``as_of`` (Moodle's completions and imported
evidence alike), so an expiry since the last sync is seen: the stored ones where they hold on that
day, the others evaluated again (``evaluation.statuses_as_of``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, NamedTuple

from connector.durations import Duration
from connector.evaluation import resolve_courses, statuses_as_of
from connector.ledger import Ledger, StatusRow
from connector.mapping import CourseRef, Mappings, Requirement
from connector.reports.lazy_rows import LazyRows

_VALID = ("compliant", "expiring")


def due_date(row: StatusRow, as_of: date) -> date | None:
    """When this person must have completed the requirement again; None: nothing is due."""
    if row.status == "missing":
        return as_of
    if row.status == "grace":
        return date.fromisoformat(row.due) if row.due else as_of
    if row.status in ("expired", *_VALID) and row.valid_until:
        return date.fromisoformat(row.valid_until)
    return None


def course_to_take(
    requirement: Requirement, mappings: Mappings, course_ids: dict[CourseRef, int]
) -> tuple[str, int | None]:
    """(what to take, in words; the Moodle course id of the first course) for a requirement:
    any-of names its first course (alternatives after "or"), all-of every course joined by "+"."""
    titles = {c.ref: c.title or c.name for c in mappings.courses}
    names = [titles.get(ref, str(ref)) for ref in requirement.courses]
    joiner = " + " if requirement.require == "all" else " or "
    first = course_ids.get(requirement.courses[0]) if requirement.courses else None
    return joiner.join(names), first


def due_rows(
    ledger: Ledger,
    mappings: Mappings,
    as_of: date,
    within: Duration,
    *,
    departments: set[str] | None = None,
    requirement: str | None = None,
    moodle_url: str | None = None,
    first_per_department: int | None = None,
) -> DueRows:
    """Every due person x requirement up to ``as_of + within``, by due date, then department and name.

    Kept compact (a due day, a person and a status) and made into a row only when read: at
    100,000 people 800,000 rows of fifteen keys each took 1.4 GB. ``first_per_department``: only
    each department's first N are kept, the others counted (``DueRows.by_department``)."""
    course_ids = resolve_courses(mappings, ledger.courses.all())
    horizon = within.after(as_of)
    people = {
        r["user_id"]: _Person(*(r[k] for k in _Person._fields)) for r in ledger.people.rows(departments)
    }
    names = {d.id: d.name for d in mappings.departments}
    organisations: dict[str | None, str | None] = {}
    days: dict[date, str] = {}  # one string per due day, not one per row
    shared: dict[str, str] = {}  # and one per requirement id, status and last valid day (95 MB)
    # a department's statuses are read and evaluated alone: the others' would all be left out
    statuses = statuses_as_of(
        ledger, mappings, course_ids, as_of, None if departments is None else set(people)
    )
    entries: list[_DueEntry] = []
    firsts = None if first_per_department is None else _FirstPerDepartment(first_per_department)
    for row in _wanted(statuses, requirement):
        due = due_date(row, as_of)
        if due is None or due > horizon:
            continue
        person = people.get(row.user_id, _NOBODY)
        department = person.department_id
        if departments is not None and department not in departments:
            continue
        if department not in organisations:
            organisations[department] = (
                mappings.organisation_of(department)
                if department and mappings.has_department(department)
                else None
            )
        day = days.get(due)
        if day is None:
            day = days[due] = due.isoformat()
        requirement_id = shared.setdefault(row.requirement_id, row.requirement_id)
        key = (
            day,
            names.get(organisations[department] or "", ""),
            names.get(department or "", ""),
            person.fullname or "",
            person.username or "",
            requirement_id,
        )
        until = row.valid_until
        entry = (
            key,
            _Due(
                row.user_id,
                requirement_id,
                shared.setdefault(row.status, row.status),
                None if until is None else shared.setdefault(until, until),
            ),
        )
        if firsts is None:
            entries.append(entry)
        else:
            firsts.add(department, entry)
    dropped: dict[str | None, int] = {}
    if firsts is not None:
        entries, dropped = firsts.result()
    entries.sort(key=lambda entry: entry[0])
    return DueRows(entries, people, names, organisations, mappings, course_ids, moodle_url, dropped)


class _Person(NamedTuple):
    """What a due row names of its person."""

    department_id: str | None
    fullname: str | None
    username: str | None
    idnumber: str | None
    email: str | None


_NOBODY = _Person(None, None, None, None, None)


class _Due(NamedTuple):
    """What a due row keeps of its status until it is read."""

    user_id: int
    requirement_id: str
    status: str
    valid_until: str | None


# (sort key: due day, organisation, department, full name, username, requirement; the status)
_DueEntry = tuple[tuple[str, str, str, str, str, str], _Due]


class _FirstPerDepartment:
    """Each department's first ``limit`` entries in sort order, and how many it has past them:
    sorted and cut whenever a department holds twice as many (the report shows 50 a department
    of 825,000 rows due)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._kept: dict[str | None, list[_DueEntry]] = {}
        self._dropped: dict[str | None, int] = {}

    def add(self, department: str | None, entry: _DueEntry) -> None:
        kept = self._kept.setdefault(department, [])
        kept.append(entry)
        if len(kept) >= 2 * self._limit + 2:
            self._cut(department, kept)

    def _cut(self, department: str | None, kept: list[_DueEntry]) -> None:
        kept.sort(key=lambda entry: entry[0])
        if len(kept) > self._limit:
            self._dropped[department] = self._dropped.get(department, 0) + len(kept) - self._limit
            del kept[self._limit :]

    def result(self) -> tuple[list[_DueEntry], dict[str | None, int]]:
        for department, kept in self._kept.items():
            self._cut(department, kept)
        return [entry for kept in self._kept.values() for entry in kept], self._dropped


class DueRows(LazyRows[_DueEntry]):
    """The due rows, in order; each a dict (the columns of `connector due`) when read."""

    def __init__(
        self,
        entries: list[_DueEntry],
        people: dict[int, _Person],
        names: dict[str, str],
        organisations: dict[str | None, str | None],
        mappings: Mappings,
        course_ids: dict[CourseRef, int],
        moodle_url: str | None,
        dropped: dict[str | None, int] | None = None,
    ) -> None:
        super().__init__(entries)
        self._dropped = dropped or {}  # per department: rows left out past its first N
        self._people = people
        self._names = names
        self._organisations = organisations
        self._requirements = {r.id: r for r in mappings.requirements}
        self._courses = {r.id: course_to_take(r, mappings, course_ids) for r in mappings.requirements}
        self._moodle_url = moodle_url

    def by_department(self, limit: int) -> dict[str | None, tuple[list[dict[str, Any]], int]]:
        """Per department: its first ``limit`` rows, and how many more it has (made into rows
        only as far as they are shown)."""
        out: dict[str | None, tuple[list[dict[str, Any]], int]] = {}
        for key, due in self._entries:
            department = self._people.get(due.user_id, _NOBODY).department_id
            shown, more = out.get(department, ([], self._dropped.get(department, 0)))
            if len(shown) < limit:
                shown.append(self._row((key, due)))
                out[department] = (shown, more)
            else:
                out[department] = (shown, more + 1)
        return out

    def _row(self, entry: _DueEntry) -> dict[str, Any]:
        key, row = entry
        person = self._people.get(row.user_id, _NOBODY)
        department = person.department_id
        organisation = self._organisations.get(department)
        course, course_id = self._courses[row.requirement_id]
        return {
            "due_on": key[0],
            "fullname": person.fullname or "",
            "username": person.username,
            "idnumber": person.idnumber,
            "email": person.email or "",
            "department": department,
            "department_name": key[2],
            "organisation": organisation,
            "organisation_name": key[1],
            "requirement": row.requirement_id,
            "requirement_title": self._requirements[row.requirement_id].title,
            "status": row.status,
            "valid_until": row.valid_until,
            "course": course,
            "course_url": _course_url(self._moodle_url, course_id),
        }


def _wanted(statuses: Iterator[StatusRow], requirement: str | None) -> Iterator[StatusRow]:
    for row in statuses:
        if requirement is None or row.requirement_id == requirement:
            yield row


def _course_url(moodle_url: str | None, course_id: int | None) -> str | None:
    if not moodle_url or course_id is None:
        return None
    return f"{moodle_url.rstrip('/')}/course/view.php?id={course_id}"
