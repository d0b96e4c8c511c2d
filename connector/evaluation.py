"""Evidence in the ledger -> statuses and roll-ups: the glue between the ledger and the rules.

Shared by a sync (which writes the result) and by the read-side views (`status --as-of`,
`export --as-of`, which recompute for any date without writing). Streams person by person, so
memory stays flat whatever the headcount.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from connector.imports import completion_of, course_ids_by_key, merged_evidence
from connector.ledger import EvidenceItem, Ledger, StatusRow
from connector.mapping import CourseRef, Mappings
from connector.moodle.records import Completion, Course, Subject
from connector.rules import PersonStatus, RollupBuilder, RuleSet, Status, evaluate_sorted


def resolve_courses(mappings: Mappings, courses: Iterable[Course]) -> dict[CourseRef, int]:
    """The Moodle course id each mapped course reference names (refs with no match are left out)."""
    courses = list(courses)
    resolved: dict[CourseRef, int] = {}
    for ref in mappings.course_refs():
        for course in courses:
            if ref.matches(course):
                resolved[ref] = course.id
                break
    return resolved


def subjects_from_ledger(ledger: Ledger, as_of: date | None = None) -> Iterator[Subject]:
    """People as the rules see them; with ``as_of``, those the ledger first saw later are left out
    (the ledger keeps today's department and active flag, not their past values)."""
    for row in ledger.people.rows():
        if as_of is not None and row["first_seen_on"] and date.fromisoformat(row["first_seen_on"]) > as_of:
            continue
        start = date.fromisoformat(row["start_date"]) if row["start_date"] else None
        yield Subject(
            user_id=row["user_id"],
            username=row["username"],
            department_id=row["department_id"],
            position=row["position"],
            cohorts=frozenset(json.loads(row["cohorts"] or "[]")),
            active=bool(row["active"]),
            start_date=start,
            idnumber=row["idnumber"] or "",
        )


def evaluate_ledger(
    ledger: Ledger, mappings: Mappings, course_ids: dict[CourseRef, int], as_of: date
) -> tuple[Iterator[StatusRow], RollupBuilder]:
    """Stream a status row for every subject x requirement; the builder fills as it streams.

    Goes through ``rules.evaluate_sorted``, the path the property tests drive through ``evaluate``."""
    builder = rollup_builder(ledger, mappings, course_ids, as_of)
    rules = RuleSet(mappings, course_ids, as_of)

    def rows() -> Iterator[StatusRow]:
        subjects = subjects_from_ledger(ledger, as_of)
        for subject, items, statuses in evaluate_sorted(
            subjects, evidence_by_user(ledger, mappings, course_ids), _completion, rules, builder
        ):
            ids = {(i.completion.course_id, i.completion.completed_at): i.id for i in items}
            for s in statuses:
                decided = s.decided_by
                yield StatusRow(
                    subject.user_id,
                    s.requirement_id,
                    str(s.status),
                    _iso(s.valid_until),
                    _iso(s.since),
                    _iso(s.due),
                    ids.get((decided.course_id, decided.completed_at)) if decided else None,
                    _iso(s.completed_on),
                    s.detail,
                )

    return rows(), builder


def rollups_as_of(
    ledger: Ledger, mappings: Mappings, course_ids: dict[CourseRef, int], as_of: date
) -> RollupBuilder:
    """The roll-ups of ``as_of`` only (``status --as-of``): the same evaluation as
    ``evaluate_ledger`` without building a status row per person x requirement, which the
    roll-up never reads (at 100,000 people that is a million rows and most of the time)."""
    builder = rollup_builder(ledger, mappings, course_ids, as_of)
    rules = RuleSet(mappings, course_ids, as_of)
    evaluated = evaluate_sorted(
        subjects_from_ledger(ledger, as_of),
        evidence_by_user(ledger, mappings, course_ids),
        _completion,
        rules,
        builder,
    )
    for _ in evaluated:
        pass
    return builder


def evidence_by_user(
    ledger: Ledger, mappings: Mappings, course_ids: dict[CourseRef, int]
) -> Iterator[tuple[int, list[EvidenceItem]]]:
    """Moodle's completions and the evidence imported from outside Moodle, by user id."""
    return merged_evidence(
        ledger.evidence.by_user(), ledger.imports.rows(), course_ids_by_key(mappings, course_ids)
    )


def rollup_builder(
    ledger: Ledger, mappings: Mappings, course_ids: dict[CourseRef, int], as_of: date
) -> RollupBuilder:
    """The roll-up builder with what targets written "of needs" or "counts enrolled" need: the latest
    saved needs analysis of as_of's year, the enrolments' first and last sync days. Read only when a
    target asks for them."""
    targets = [t for r in mappings.requirements for t in r.targets]
    needs: dict[str, frozenset[int]] | None = {}
    if any(t.of == "needs" for t in targets):
        saved = ledger.needs.latest(as_of.year)
        grouped: dict[str, set[int]] = {}
        for row in ledger.needs.rows_of(saved["id"]) if saved else []:
            grouped.setdefault(row.requirement_id, set()).add(row.user_id)
        needs = {r: frozenset(u) for r, u in grouped.items()} if saved else None
    enrolled = ledger.enrolments.spans() if any(t.counts == "enrolled" for t in targets) else None
    return RollupBuilder(mappings, as_of, course_ids=course_ids, needs=needs, enrolled=enrolled)


def _completion(item: EvidenceItem) -> Completion:
    return item.completion


def rollup_row(r: Any) -> dict[str, Any]:
    return {
        "department_id": r.department_id,
        "requirement_id": r.requirement_id,
        "in_scope": r.in_scope,
        "compliant": r.compliant,
        "expiring": r.expiring,
        "expired": r.expired,
        "missing": r.missing,
        "grace": r.grace,
        "exempt": r.exempt,
        "holders": r.holders,
        "share": r.share,
        "targets_met": None if r.targets_met is None else int(r.targets_met),
        "targets": json.dumps([_target_dict(t) for t in r.targets], ensure_ascii=False),
    }


def _target_dict(t: Any) -> dict[str, Any]:
    return {
        "kind": t.kind,
        "required": t.required,
        "actual": t.actual,
        "met": t.met,
        "period": t.period,
        "judged": t.judged,
    }


def evaluate_into_ledger(
    ledger: Ledger, mappings: Mappings, course_ids: dict[CourseRef, int], as_of: date, run_id: int
) -> dict[str, int]:
    rows, builder = evaluate_ledger(ledger, mappings, course_ids, as_of)
    counter = _Counter(rows)
    changes = ledger.statuses.write(counter, run_id, as_of)
    ledger.rollups.write([rollup_row(r) for r in builder.build()], run_id)
    return {"statuses": counter.count, "status_changes": changes, "statuses_written": ledger.statuses.written}


class _Counter:
    def __init__(self, items: Iterable[Any]) -> None:
        self._items = items
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for item in self._items:
            self.count += 1
            yield item


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def rollups_from_statuses(ledger: Ledger, mappings: Mappings, as_of: date) -> list[dict[str, Any]]:
    """Roll-ups rebuilt from the stored statuses (what the last sync decided), without
    re-evaluating any rule: used when people leave the ledger between syncs (``erase``)."""
    decided = ledger.evidence.deciding()
    keys = course_ids_by_key(mappings, resolve_courses(mappings, ledger.courses.all()))
    for outside in ledger.imports.rows():
        imported = completion_of(outside, keys)
        if imported is not None:
            decided[-int(outside["id"])] = imported
    by_user: dict[int, list[PersonStatus]] = {}
    for row in ledger.statuses.current():
        by_user.setdefault(row.user_id, []).append(
            PersonStatus(
                row.user_id,
                row.requirement_id,
                Status(row.status),
                _date(row.valid_until),
                _date(row.since),
                _date(row.due),
                decided.get(row.evidence_id) if row.evidence_id else None,
                _date(row.completed_on),
                row.detail or "",
            )
        )
    builder = rollup_builder(ledger, mappings, resolve_courses(mappings, ledger.courses.all()), as_of)
    for subject in subjects_from_ledger(ledger, as_of):
        builder.add(subject, by_user.get(subject.user_id, []))
    return [rollup_row(r) for r in builder.build()]


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
