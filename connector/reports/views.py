"""Rows for `status`, `export`, `person` and `courses`, read from the ledger (or recomputed).

Without ``as_of`` the views show what the last successful sync stored; with ``as_of`` they
recompute from the ledger's evidence for that date (rules are pure, so any past date can be
asked: "were we compliant on 1 June?"). Nothing here writes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from connector.errors import LedgerError, UsageError
from connector.evaluation import resolve_courses, rollup_row, rollups_as_of, statuses_as_of
from connector.i18n import _
from connector.ledger import Ledger
from connector.mapping import Mappings
from connector.moodle.records import Course


def _last_ok_run(ledger: Ledger) -> dict[str, Any]:
    run = ledger.runs.last("ok")
    if run is None:
        raise LedgerError(
            _("the ledger has no successful sync yet"),
            hint=_("run `connector sync` (or `connector demo` to try it out)"),
        )
    return run


def _check_as_of(ledger: Ledger, as_of: date) -> None:
    """A day before the first sync would be recomputed from people and evidence read later: refuse it."""
    _last_ok_run(ledger)  # no successful sync at all: say that first
    first = ledger.runs.first_ok_as_of()
    if first is not None and as_of < first:
        raise UsageError(
            _(
                "the ledger knows nothing before its first sync on {date}; "
                "--as-of must be on or after that day"
            ).format(date=first)
        )


def departments_named(mappings: Mappings, department: str) -> list[str]:
    """The ids a --department value names: one by id, or every department with that display name
    (case-insensitive); two towns may both have an "Odbor informatiky"."""
    wanted = department.casefold()
    by_id = [d.id for d in mappings.departments if d.id.casefold() == wanted]
    return by_id or [d.id for d in mappings.departments if d.name.casefold() == wanted]


def organisation(mappings: Mappings, department_id: str | None) -> tuple[str | None, str | None]:
    """(id, name) of the top-level organisation a department belongs to."""
    if not department_id or not mappings.has_department(department_id):
        return None, None
    org = mappings.organisation_of(department_id)
    return org, mappings.department(org).name


def display_name(mappings: Mappings, department_id: str) -> str:
    """The department's name, with its organisation's when another department has the same name."""
    name = mappings.department(department_id).name
    if sum(d.name.casefold() == name.casefold() for d in mappings.departments) < 2:
        return name
    return f"{name} ({organisation(mappings, department_id)[1]})"


def with_tree_names(rows: list[dict[str, Any]], mappings: Mappings) -> list[dict[str, Any]]:
    """Indent sub-departments under their organisation (two cells per level) for the table. A name
    two departments share gets its organisation's name when that organisation's rows are not shown
    above it (a --department filter): the indentation alone no longer tells the towns apart."""
    shown = {row["department"] for row in rows}
    top = min((row.get("depth", 0) for row in rows), default=0)  # a filtered subtree starts at the left
    out = []
    for row in rows:
        dept = row["department"]
        name = row["department_name"]
        if mappings.has_department(dept) and row.get("organisation") not in shown:
            name = display_name(mappings, dept)
        out.append(dict(row, tree_name="  " * (row.get("depth", 0) - top) + name))
    return out


def _department_filter(mappings: Mappings, department: str | None) -> set[str] | None:
    """The ids of the departments a --department value names (see departments_named) and their subtrees."""
    if not department:
        return None
    roots = departments_named(mappings, department)
    if not roots:
        known = ", ".join(d.id for d in mappings.departments[:12])
        raise UsageError(
            _("no department '{department}' in the mappings").format(department=department),
            hint=_("known ids: {ids}, ...").format(ids=known),
        )
    children: dict[str | None, list[str]] = {}
    for d in mappings.departments:
        children.setdefault(d.parent_id, []).append(d.id)
    selected: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node not in selected:
            selected.add(node)
            stack.extend(children.get(node, []))
    return selected


def _depths(mappings: Mappings) -> dict[str, int]:
    parents = {d.id: d.parent_id for d in mappings.departments}
    depths: dict[str, int] = {}
    for dept_id in parents:
        level, node = 0, parents[dept_id]
        while node is not None and level < len(parents):
            level, node = level + 1, parents.get(node)
        depths[dept_id] = level
    return depths


def _check_requirement(mappings: Mappings, requirement: str | None) -> None:
    if requirement and requirement not in {r.id for r in mappings.requirements}:
        known = ", ".join(r.id for r in mappings.requirements)
        raise UsageError(
            _("no requirement '{requirement}' in the mappings").format(requirement=requirement),
            hint=_("known: {ids}").format(ids=known),
        )


def status_rows(
    ledger: Ledger,
    mappings: Mappings,
    *,
    as_of: date | None = None,
    department: str | None = None,
    requirement: str | None = None,
) -> tuple[date, list[dict[str, Any]]]:
    departments = _department_filter(mappings, department)
    _check_requirement(mappings, requirement)
    if as_of is None:
        run = _last_ok_run(ledger)
        as_of = date.fromisoformat(run["as_of"])
        raw = ledger.rollups.for_run(run["id"])
    else:
        _check_as_of(ledger, as_of)
        course_ids = resolve_courses(mappings, ledger.courses.all())
        raw = [rollup_row(r) for r in rollups_as_of(ledger, mappings, course_ids, as_of).build()]
    names = {d.id: d.name for d in mappings.departments}
    titles = {r.id: r.title for r in mappings.requirements}
    order = {d.id: i for i, d in enumerate(mappings.departments)}
    depth = _depths(mappings)
    out = []
    for r in raw:
        if departments is not None and r["department_id"] not in departments:
            continue
        if requirement and r["requirement_id"] != requirement:
            continue
        org_id, org_name = organisation(mappings, r["department_id"])
        out.append(
            {
                "department": r["department_id"],
                "department_name": names.get(r["department_id"], r["department_id"]),
                "organisation": org_id,
                "organisation_name": org_name,
                "depth": depth.get(r["department_id"], 0),
                "requirement": r["requirement_id"],
                "requirement_title": titles.get(r["requirement_id"], ""),
                "in_scope": r["in_scope"],
                "compliant": r["compliant"],
                "expiring": r["expiring"],
                "expired": r["expired"],
                "missing": r["missing"],
                "grace": r["grace"],
                "exempt": r["exempt"],
                "holders": r["holders"],
                "share": r["share"],
                "targets_met": None if r["targets_met"] is None else bool(r["targets_met"]),
                "targets": json.loads(r["targets"] or "[]"),
            }
        )
    out.sort(key=lambda row: (order.get(row["department"], 10**9), row["requirement"]))
    return as_of, out


def placement_problems(ledger: Ledger) -> dict[str, int]:
    """Active people the mappings could not place: the first thing to fix in a needs analysis."""
    unplaced, conflicts, _ = ledger.queries.placement_counts()
    return {"unplaced": unplaced, "conflicts": conflicts}


def export_rows(
    ledger: Ledger, mappings: Mappings, *, as_of: date | None = None
) -> tuple[date, Iterator[dict[str, Any]]]:
    names = {d.id: d.name for d in mappings.departments}
    if as_of is None:
        run = _last_ok_run(ledger)
        return date.fromisoformat(run["as_of"]), _stored_export_rows(ledger, mappings, names)
    _check_as_of(ledger, as_of)
    people = {r["user_id"]: r for r in ledger.people.rows()}
    courses = {c.id: c for c in ledger.courses.all()}
    evidence: dict[int, tuple[int | None, int | None]] = dict(ledger.evidence.course_and_time())
    imported = {-row["id"]: row for row in ledger.imports.rows()}
    course_ids = resolve_courses(mappings, ledger.courses.all())
    source = statuses_as_of(ledger, mappings, course_ids, as_of)

    def rows() -> Iterator[dict[str, Any]]:
        for row in source:
            person = people.get(row.user_id, {})
            org_id, org_name = organisation(mappings, person.get("department_id"))
            course_id, completed_at = (
                evidence.get(row.evidence_id, (None, None)) if row.evidence_id else (None, None)
            )
            course: Course | None = courses.get(course_id) if course_id else None
            outside = imported.get(row.evidence_id) if row.evidence_id and row.evidence_id < 0 else None
            yield {
                "username": person.get("username"),
                "idnumber": person.get("idnumber"),
                "department_id": person.get("department_id"),
                "department_name": names.get(person.get("department_id") or "", None),
                "requirement": row.requirement_id,
                "status": row.status,
                "valid_until": row.valid_until,
                "decided_by_course": (course.idnumber or course.shortname)
                if course
                else (outside["course"] or outside["requirement_id"])
                if outside
                else None,
                "decided_by_completed_at": _utc(_noon(outside["completed_on"]))
                if outside
                else _utc(completed_at),
                "organisation": org_id,
                "organisation_name": org_name,
                "decided_by_source": f"import:{outside['provider']}"
                if outside
                else ("moodle" if row.evidence_id and row.evidence_id > 0 else None),
                # as far as [privacy] personal_fields lets the ledger keep them
                "fullname": person.get("fullname") or None,
                "email": person.get("email") or None,
            }

    return as_of, rows()


def person_view(ledger: Ledger, mappings: Mappings, username: str) -> dict[str, Any]:
    person = ledger.people.by_username(username)
    if person is None:
        raise LedgerError(
            _("no person with username '{username}' in the ledger").format(username=username),
            hint=_("usernames are Moodle's login names, e.g. u001; run a sync first"),
        )
    names = {d.id: d.name for d in mappings.departments}
    titles = {r.id: r.title for r in mappings.requirements}
    evidence = ledger.evidence.for_user(person["user_id"])
    imported = ledger.imports.for_user(person["user_id"])
    by_id = {e["id"]: e for e in evidence}
    for row in imported:  # a status decided by imported evidence names it by minus its row id
        by_id[-row["id"]] = {
            "course_idnumber": row["course"] or row["requirement_id"],
            "course_id": None,
            "completed_at": _noon(row["completed_on"]),
        }
    statuses = []
    for s in ledger.statuses.for_user(person["user_id"]):
        decided = by_id.get(s["evidence_id"]) if s["evidence_id"] else None
        statuses.append(
            {
                "requirement": s["requirement_id"],
                "title": titles.get(s["requirement_id"], ""),
                "status": s["status"],
                "valid_until": s["valid_until"],
                "since": s["since"],
                "due": s["due"],
                "decided_by": (decided["course_idnumber"] or str(decided["course_id"])) if decided else None,
                "completed_at": _utc(decided["completed_at"]) if decided else None,
                "detail": s["detail"],
            }
        )
    return {
        "username": person["username"],
        "idnumber": person["idnumber"],
        "fullname": person["fullname"],
        "department_id": person["department_id"],
        "department_name": names.get(person["department_id"] or "", None),
        "organisation": organisation(mappings, person["department_id"])[0],
        "organisation_name": organisation(mappings, person["department_id"])[1],
        "position": person["position"],
        "active": bool(person["active"]),
        "suspended": bool(person["suspended"]),
        "deleted": bool(person["deleted"]),
        "statuses": statuses,
        "evidence": [
            {
                "course": e["course_idnumber"] or str(e["course_id"]),
                "course_name": e["course_name"],
                "completed_at": _utc(e["completed_at"]),
                "source": e["source"],
                "first_seen": e["first_seen_at"],
                "last_seen": e["last_seen_at"],
                "still_in_moodle": e["gone_since_run"] is None,
            }
            for e in evidence
        ]
        + [
            {
                "course": row["course"] or f"requirement {row['requirement_id']}",
                "course_name": None,
                "completed_at": row["completed_on"],
                "source": f"import:{row['provider']}",
                "first_seen": row["imported_at"],
                "last_seen": row["imported_at"],
                "still_in_moodle": None,
                "expires_on": row["expires_on"],
                "import": row["import_id"],
                "import_source": row["source"],
            }
            for row in imported
        ],
        "history": [
            {
                "requirement": h["requirement_id"],
                "from": h["from_status"],
                "to": h["to_status"],
                "on": h["changed_on"],
                "run": h["run_id"],
                "reason": h["reason"],  # why a status ended
            }
            for h in ledger.statuses.history_for(person["user_id"])
        ],
    }


def _noon(day: str) -> int:
    """The instant imported evidence of that day counts at (see connector/imports.py)."""
    return int(datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC).timestamp()) + 43200


def _stored_export_rows(
    ledger: Ledger, mappings: Mappings, names: dict[str, str]
) -> Iterator[dict[str, Any]]:
    """The last sync's statuses as export rows, streamed from one join (flat memory)."""
    organisations: dict[str | None, tuple[str | None, str | None]] = {}
    for row in ledger.statuses.current_for_export():
        if row.department_id not in organisations:
            organisations[row.department_id] = organisation(mappings, row.department_id)
        org_id, org_name = organisations[row.department_id]
        yield {
            "username": row.username,
            "idnumber": row.idnumber,
            "department_id": row.department_id,
            "department_name": names.get(row.department_id or "", None),
            "requirement": row.requirement_id,
            "status": row.status,
            "valid_until": row.valid_until,
            "decided_by_course": row.course
            if row.course is not None or row.imported_on is None
            else (row.imported_course or row.imported_requirement),
            "decided_by_completed_at": _utc(_noon(row.imported_on))
            if row.imported_on is not None
            else _utc(row.completed_at),
            "organisation": org_id,
            "organisation_name": org_name,
            "decided_by_source": f"import:{row.provider}"
            if row.imported_on is not None
            else ("moodle" if row.evidence_id and row.evidence_id > 0 else None),
            "fullname": row.fullname or None,
            "email": row.email or None,
        }


def _utc(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):  # a ledger from before times were checked at the door
        return str(epoch)


def courses_view(
    mappings: Mappings, moodle_courses: list[Course], ledger: Ledger | None
) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
    """(mapped course rows, mapping problems, Moodle courses mapped to nothing).

    ``moodle_courses`` is what Moodle answers now (or the ledger's copy when offline); enrolled
    and completed counts come from the ledger's last sync.
    """
    counts = ledger.queries.course_counts() if ledger is not None else {}
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    used: set[int] = set()
    for requirement in mappings.requirements:
        for ref in requirement.courses:
            match = next((c for c in moodle_courses if ref.matches(c)), None)
            if match is None:
                problems.append(
                    _(
                        "{requirement}: course {course} does not exist in Moodle "
                        "(check the idnumber/shortname in mappings/, or create the course)"
                    ).format(requirement=requirement.id, course=ref)
                )
                rows.append(
                    {
                        "requirement": requirement.id,
                        "ref": str(ref),
                        "id": None,
                        "idnumber": None,
                        "name": None,
                        "visible": None,
                        "completion": None,
                        "enrolled": None,
                        "completed": None,
                    }
                )
                continue
            used.add(match.id)
            if not match.completion_enabled:
                problems.append(
                    _(
                        "{requirement}: course {id} '{name}' has completion tracking off: nobody can "
                        "complete it (Course settings > Completion tracking)"
                    ).format(requirement=requirement.id, id=match.id, name=match.fullname)
                )
            if not match.visible:
                problems.append(
                    _(
                        "{requirement}: course {id} '{name}' is hidden from students: they cannot take it"
                    ).format(requirement=requirement.id, id=match.id, name=match.fullname)
                )
            enrolled, completed = counts.get(match.id, (None, None))
            rows.append(
                {
                    "requirement": requirement.id,
                    "ref": str(ref),
                    "id": match.id,
                    "idnumber": match.idnumber,
                    "name": match.fullname,
                    "visible": match.visible,
                    "completion": match.completion_enabled,
                    "enrolled": enrolled,
                    "completed": completed,
                }
            )
    unmapped = [
        {
            "id": c.id,
            "idnumber": c.idnumber,
            "name": c.fullname,
            "visible": c.visible,
            "completion": c.completion_enabled,
        }
        for c in moodle_courses
        if c.id not in used and c.id != 1
    ]  # id 1 is the site itself
    return rows, problems, unmapped
