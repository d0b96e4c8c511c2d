"""Who is due: people in scope whose requirement is missing, expired, in its grace period, or
valid only until a day inside the coming window; one row per person x requirement, by due date.

The due date is the last day the evidence is valid (expiring, compliant, and expired, which is
overdue since then), the end of the newcomer's grace period, or ``as_of`` itself for someone who
never held it (due now). Statuses are recomputed from the ledger's evidence for ``as_of`` (Moodle's
completions and imported evidence alike), so an expiry since the last sync is seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from connector.durations import Duration
from connector.evaluation import evaluate_ledger, resolve_courses
from connector.ledger import Ledger, StatusRow
from connector.mapping import CourseRef, Mappings, Requirement

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
) -> list[dict[str, Any]]:
    """Every due person x requirement up to ``as_of + within``, by due date, then department and name."""
    course_ids = resolve_courses(mappings, ledger.courses.all())
    horizon = within.after(as_of)
    people = {r["user_id"]: r for r in ledger.people.rows()}
    requirements = {r.id: r for r in mappings.requirements}
    names = {d.id: d.name for d in mappings.departments}
    statuses, _ = evaluate_ledger(ledger, mappings, course_ids, as_of)
    rows: list[dict[str, Any]] = []
    for row in _wanted(statuses, requirement):
        due = due_date(row, as_of)
        if due is None or due > horizon:
            continue
        person = people.get(row.user_id, {})
        department = person.get("department_id")
        if departments is not None and department not in departments:
            continue
        req = requirements[row.requirement_id]
        course, course_id = course_to_take(req, mappings, course_ids)
        org = (
            mappings.organisation_of(department)
            if department and mappings.has_department(department)
            else None
        )
        rows.append(
            {
                "due_on": due.isoformat(),
                "fullname": person.get("fullname") or "",
                "username": person.get("username"),
                "idnumber": person.get("idnumber"),
                "email": person.get("email") or "",
                "department": department,
                "department_name": names.get(department or "", ""),
                "organisation": org,
                "organisation_name": names.get(org or "", ""),
                "requirement": row.requirement_id,
                "requirement_title": req.title,
                "status": row.status,
                "valid_until": row.valid_until,
                "course": course,
                "course_url": _course_url(moodle_url, course_id),
            }
        )
    rows.sort(
        key=lambda r: (
            r["due_on"],
            r["organisation_name"],
            r["department_name"],
            r["fullname"],
            r["username"] or "",
            r["requirement"],
        )
    )
    return rows


def _wanted(statuses: Iterator[StatusRow], requirement: str | None) -> Iterator[StatusRow]:
    for row in statuses:
        if requirement is None or row.requirement_id == requirement:
            yield row


def _course_url(moodle_url: str | None, course_id: int | None) -> str | None:
    if not moodle_url or course_id is None:
        return None
    return f"{moodle_url.rstrip('/')}/course/view.php?id={course_id}"
