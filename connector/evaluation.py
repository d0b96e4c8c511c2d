"""Evidence in the ledger -> statuses and roll-ups: the glue between the ledger and the rules.

Shared by a sync (which writes the result) and by the read-side views (`status --as-of`,
`export --as-of`, which recompute for any date without writing). Streams person by person, so
memory stays flat whatever the headcount.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from itertools import groupby
from typing import Any

from connector import __version__
from connector.imports import completion_of, course_ids_by_key, merged_evidence
from connector.ledger import EvidenceItem, Ledger, StatusRow
from connector.ledger.rollups import Rollups
from connector.mapping import CourseRef, Mappings
from connector.moodle.records import Completion, Course, Subject
from connector.rules import (
    RULES_VERSION,
    DepartmentRollup,
    PersonStatus,
    RollupBuilder,
    RuleSet,
    Status,
    evaluate_sorted,
)

_DAY = timedelta(days=1)


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
        if as_of is None or not _first_seen_after(row, as_of):
            yield _subject(row)


def _subject(row: dict[str, Any], parsed: Callable[[str | None], date | None] | None = None) -> Subject:
    start = (parsed or _date)(row["start_date"])
    cohorts = row["cohorts"]
    return Subject(
        user_id=row["user_id"],
        username=row["username"],
        department_id=row["department_id"],
        position=row["position"],
        cohorts=_NO_COHORTS if cohorts in _EMPTY else frozenset(json.loads(cohorts)),
        active=bool(row["active"]),
        start_date=start,
        idnumber=row["idnumber"] or "",
    )


_NO_COHORTS: frozenset[str] = frozenset()
_EMPTY = (None, "", "[]")


def _first_seen_after(row: dict[str, Any], as_of: date) -> bool:
    return bool(row["first_seen_on"]) and date.fromisoformat(row["first_seen_on"]) > as_of


def evaluation_fingerprint(mappings: Mappings, course_ids: dict[CourseRef, int]) -> str:
    """What stored statuses were computed with: the mappings, the courses their references resolve
    to, the rules' version. Stored statuses with another fingerprint are never reused."""
    resolved = sorted((repr(ref), course) for ref, course in course_ids.items())
    text = repr((RULES_VERSION, __version__, mappings, resolved))
    return hashlib.sha256(text.encode()).hexdigest()


def _status_rows(
    mappings: Mappings,
    course_ids: dict[CourseRef, int],
    as_of: date,
    people: Iterable[dict[str, Any]],
    evidence: Iterable[tuple[int, list[EvidenceItem]]],
    builder: RollupBuilder,
    days: _Days | None = None,
) -> Iterator[StatusRow]:
    """The status rows of ``people`` (ordered by user id) at ``as_of`` through
    ``rules.evaluate_sorted``; ``days`` collects the days each person's statuses stay the same.

    The hot loop of a full evaluation (a million rows at 100,000 people): dates are parsed and
    written as text once per distinct date, rows are built as plain tuples."""
    rules = RuleSet(mappings, course_ids, as_of)
    first_seen: list[date] = [date.min]  # of the subject being evaluated
    parsed = _Dates()
    iso: dict[date, str] = {}

    def text(day: date) -> str:
        found = iso.get(day)
        if found is None:
            found = iso[day] = day.isoformat()
        return found

    def subjects() -> Iterator[Subject]:
        for row in people:
            seen = parsed(row["first_seen_on"]) or date.min
            if seen > as_of:  # not a subject before the ledger saw them
                if days is not None:
                    days.add(row["user_id"], date.min, seen - _DAY)
                continue
            first_seen[0] = seen
            yield _subject(row, parsed)

    new = tuple.__new__
    for subject, items, statuses in evaluate_sorted(subjects(), evidence, _completion, rules, builder):
        if days is not None:
            first, last = rules.stable_days(subject, [i.completion for i in items], statuses)
            days.add(subject.user_id, max(first, first_seen[0]), last)
        # the rules hand back the very completion objects they were given
        ids = {id(i.completion): i.id for i in items}
        counted_in = subject.department_id if subject.active else None
        user_id = subject.user_id
        for s in statuses:
            decided = s.decided_by
            until, since, due, on = s.valid_until, s.since, s.due, s.completed_on
            yield new(
                StatusRow,
                (
                    user_id,
                    s.requirement_id,
                    str(s.status),
                    (iso.get(until) or text(until)) if until else None,
                    (iso.get(since) or text(since)) if since else None,
                    (iso.get(due) or text(due)) if due else None,
                    ids.get(id(decided)) if decided else None,
                    (iso.get(on) or text(on)) if on else None,
                    s.detail,
                    counted_in,
                ),
            )


class _Dates:
    """ISO date text -> date, parsed once per distinct text (people share their first-seen day)."""

    def __init__(self) -> None:
        self._seen: dict[str, date] = {}

    def __call__(self, value: str | None) -> date | None:
        if not value:
            return None
        found = self._seen.get(value)
        if found is None:
            found = self._seen[value] = date.fromisoformat(value)
        return found


def evaluate_ledger(
    ledger: Ledger,
    mappings: Mappings,
    course_ids: dict[CourseRef, int],
    as_of: date,
    days: _Days | None = None,
) -> tuple[Iterator[StatusRow], RollupBuilder]:
    """Stream a status row for every subject x requirement; the builder fills as it streams
    (``days``: each person's stable days are recorded as they are evaluated).

    Goes through ``rules.evaluate_sorted``, the path the property tests drive through ``evaluate``."""
    builder = rollup_builder(ledger, mappings, course_ids, as_of)
    rows = _status_rows(
        mappings,
        course_ids,
        as_of,
        ledger.people.rows(),
        evidence_by_user(ledger, mappings, course_ids),
        builder,
        days,
    )
    return rows, builder


def statuses_as_of(
    ledger: Ledger,
    mappings: Mappings,
    course_ids: dict[CourseRef, int],
    as_of: date,
    among: set[int] | None = None,
) -> Iterator[StatusRow]:
    """Every person x requirement status on ``as_of``, by user id: the stored statuses of everyone
    whose statuses hold on that day, and the others evaluated again (``rollups_as_of``'s reuse, row
    by row), each person's in the mappings' order of requirements. Everyone is evaluated when the
    stored statuses were computed with other mappings, courses or rules. What evaluating everyone
    gives, in the same order (``tests/test_incremental.py``); read from one state of the ledger
    while it is consumed. ``among``: the rows of these people only (a department's), read and
    evaluated alone."""
    with ledger.snapshot():
        if ledger.evaluated.fingerprint() != evaluation_fingerprint(mappings, course_ids):
            rows, _ = evaluate_ledger(ledger, mappings, course_ids, as_of)
            yield from rows if among is None else (row for row in rows if row.user_id in among)
            return
        ledger.evaluated.select(as_of, among)
        evaluated = _reevaluated_rows(ledger, mappings, course_ids, as_of)
        held = ledger.statuses.held(among=among is not None)
        yield from heapq.merge(_in_mappings_order(held, mappings), evaluated, key=_user_of)


def _reevaluated_rows(
    ledger: Ledger,
    mappings: Mappings,
    course_ids: dict[CourseRef, int],
    as_of: date,
    days: _Days | None = None,
) -> Iterator[StatusRow]:
    """The status rows at ``as_of`` of the people ``Evaluated.select`` chose to evaluate again
    (their roll-ups are counted elsewhere: from the stored statuses, in SQL)."""
    return _status_rows(
        mappings,
        course_ids,
        as_of,
        ledger.evaluated.people_rows(),
        _reevaluated_evidence(ledger, mappings, course_ids),
        RollupBuilder(mappings, as_of),  # unused: rows only
        days,
    )


def _in_mappings_order(rows: Iterator[StatusRow], mappings: Mappings) -> Iterator[StatusRow]:
    """Stored rows (by user id, then requirement id) as an evaluation yields them: each person's
    in the mappings' order of requirements."""
    order = {r.id: i for i, r in enumerate(mappings.requirements)}
    for _, person in groupby(rows, key=_user_of):
        yield from sorted(person, key=lambda row: order.get(row.requirement_id, len(order)))


def _user_of(row: StatusRow) -> int:
    return row.user_id


def rollups_as_of(
    ledger: Ledger, mappings: Mappings, course_ids: dict[CourseRef, int], as_of: date
) -> RollupBuilder:
    """The roll-ups of ``as_of`` only (``status --as-of``), without a status row per person x
    requirement. The stored statuses of everyone whose evidence and profile did not change since
    and whose statuses hold on ``as_of`` are counted as stored (in SQL); only the others are
    evaluated again. Stored statuses computed with other mappings or rules: everyone is. Read
    from one state of the ledger."""
    with ledger.snapshot():
        return _rollups_as_of(ledger, mappings, course_ids, as_of)


def department_rollups_as_of(
    ledger: Ledger, mappings: Mappings, course_ids: dict[CourseRef, int], as_of: date, departments: set[str]
) -> list[DepartmentRollup]:
    """``rollups_as_of``'s roll-ups of ``departments`` only (a subtree: `forecast --department`):
    only the people placed in them, or whose stored statuses count there, are evaluated again.
    What the others' roll-ups would count is not known then, so they are left out."""
    with ledger.snapshot():
        among = {row["user_id"] for row in ledger.people.rows(departments)}
        among |= ledger.statuses.people_counted_in(departments)  # moved or left since: counted there
        builder = _rollups_as_of(ledger, mappings, course_ids, as_of, among)
    return [r for r in builder.build() if r.department_id in departments]


def _rollups_as_of(
    ledger: Ledger,
    mappings: Mappings,
    course_ids: dict[CourseRef, int],
    as_of: date,
    among: set[int] | None = None,
) -> RollupBuilder:
    builder = rollup_builder(ledger, mappings, course_ids, as_of)
    reuse = ledger.evaluated.fingerprint() == evaluation_fingerprint(mappings, course_ids)
    if reuse:
        ledger.evaluated.select(as_of, among)
        people: Iterable[dict[str, Any]] = ledger.evaluated.people_rows()
        evidence = _reevaluated_evidence(ledger, mappings, course_ids)
    else:
        people, evidence = ledger.people.rows(), evidence_by_user(ledger, mappings, course_ids)
    for _ in evaluate_sorted(
        (_subject(row) for row in people if not _first_seen_after(row, as_of)),
        evidence,
        _completion,
        RuleSet(mappings, course_ids, as_of),
        builder,
    ):
        pass
    if reuse:
        count_stored(ledger, builder, as_of, without_reevaluated=True)
    return builder


def count_stored(ledger: Ledger, builder: RollupBuilder, as_of: date, *, without_reevaluated: bool) -> None:
    """Add the stored statuses to ``builder`` by SQL counts (GROUP BY department x requirement x
    status over one index); ``without_reevaluated``: but those of the people in the ledger's
    re-evaluation set, which the caller adds as evaluated. Targets that need to know who counts
    (needs, places given) read their requirements' rows one by one."""
    starts = builder.period_starts
    for department, requirement, status, count, holders, *since in ledger.rollups.status_counts(
        as_of, starts
    ):
        builder.add_counts(department, requirement, status, count, holders, since)
    if without_reevaluated:
        for department, requirement, status, count, holders, *since in ledger.rollups.status_counts(
            as_of, starts, of_reevaluated=True
        ):
            builder.add_counts(department, requirement, status, count, holders, since, sign=-1)
    if builder.counts_positions:
        for department, position, people in ledger.rollups.positions(
            as_of, without_reevaluated=without_reevaluated
        ):
            builder.add_positions(department, position, people)
    if builder.needs_people:
        for user_id, department, requirement, status, holds, completed_on in ledger.rollups.counted_statuses(
            as_of, builder.needs_people, without_reevaluated=without_reevaluated
        ):
            builder.add_person_status(
                user_id, department, requirement, status, bool(holds), _date(completed_on)
            )


def _reevaluated_evidence(
    ledger: Ledger, mappings: Mappings, course_ids: dict[CourseRef, int]
) -> Iterator[tuple[int, list[EvidenceItem]]]:
    return merged_evidence(
        ledger.evaluated.evidence_by_user(),
        ledger.evaluated.imported_rows(),
        course_ids_by_key(mappings, course_ids),
    )


def evidence_by_user(
    ledger: Ledger, mappings: Mappings, course_ids: dict[CourseRef, int]
) -> Iterator[tuple[int, list[EvidenceItem]]]:
    """Moodle's completions and the evidence imported from outside Moodle, by user id."""
    return merged_evidence(
        ledger.evidence.by_user(), ledger.imports.rows(), course_ids_by_key(mappings, course_ids)
    )


def rollup_tables(mappings: Mappings, *, recomputed: bool) -> tuple[str, ...]:
    """The ledger tables one day's roll-ups are read from (stored, or ``recomputed`` for a day)."""
    targets = [t for r in mappings.requirements for t in r.targets]
    return Rollups.tables_read(
        recomputed=recomputed,
        needs=any(t.of == "needs" for t in targets),
        enrolled=any(t.counts == "enrolled" for t in targets),
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
    ledger: Ledger,
    mappings: Mappings,
    course_ids: dict[CourseRef, int],
    as_of: date,
    run_id: int,
    *,
    full: bool = False,
) -> dict[str, int]:
    """Evaluate into the stored statuses and write the run's roll-ups.

    Incremental unless ``full`` or the stored statuses were computed with other mappings, courses
    or rules: only the people whose evidence or profile changed, or whose statuses do not hold on
    ``as_of``, are evaluated again; the roll-ups are then counted from the stored statuses in SQL.
    Either way the stored statuses and roll-ups are what a full evaluation gives."""
    fingerprint = evaluation_fingerprint(mappings, course_ids)
    incremental = not full and ledger.evaluated.fingerprint() == fingerprint
    days = _Days(ledger)
    if incremental:
        evaluated = ledger.evaluated.select(as_of)
        source = _reevaluated_rows(ledger, mappings, course_ids, as_of, days)
    else:
        source, builder = evaluate_ledger(ledger, mappings, course_ids, as_of, days)
    changes = ledger.statuses.write(source, run_id, as_of, only_reevaluated=incremental)
    days.flush()
    ledger.evaluated.finish(fingerprint)
    if incremental:
        builder = rollup_builder(ledger, mappings, course_ids, as_of)
        count_stored(ledger, builder, as_of, without_reevaluated=False)
    else:
        evaluated = days.people
    ledger.rollups.write([rollup_row(r) for r in builder.build()], run_id)
    return {
        "statuses": ledger.statuses.count() if incremental else ledger.statuses.received,
        "status_changes": changes,
        "statuses_written": ledger.statuses.written,
        "people_evaluated": evaluated,
    }


class _Days:
    """The days each evaluated person's statuses hold, written to the ledger in batches."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._pending: list[tuple[int, str, str]] = []
        self.people = 0

    def add(self, user_id: int, first: date, last: date) -> None:
        self._pending.append((user_id, first.isoformat(), last.isoformat()))
        self.people += 1
        if len(self._pending) >= 5000:
            self.flush()

    def flush(self) -> None:
        self._ledger.evaluated.record(self._pending)
        self._pending = []


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
