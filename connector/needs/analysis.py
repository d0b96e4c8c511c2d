"""The yearly needs analysis: who needs which training in a year, and why.

A need is a person x requirement with at least one reason:

* the gaps the rules found at the last sync: ``missing``, ``expired``, ``grace`` (a newcomer who
  has not completed it yet) and ``expiring`` (valid now, but not to the end of the year);
* ``declared``: the person said so (the needs survey, an imported CSV file) for that year.

Only active people count. A declared area may name several requirements (one per country, say):
the need goes to those that apply to the person; when none does, to the first one named (the
person asked for it all the same). Pure: the caller reads the ledger and passes the rows in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connector.ledger.needs import AnalysisRow, DeclaredNeed
from connector.ledger.records import StatusRow
from connector.mapping import Mappings

REASONS = ("missing", "expired", "expiring", "grace", "declared")
_GAPS = frozenset(("missing", "expired", "grace"))


@dataclass(frozen=True, slots=True)
class Need:
    user_id: int
    requirement_id: str
    department_id: str | None
    reasons: tuple[str, ...]  # in REASONS order


@dataclass(slots=True)
class NeedsGroup:
    """One department x requirement of the analysis: counts per reason and who."""

    department_id: str | None
    requirement_id: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    user_ids: list[int] = field(default_factory=list)


def gap_reason(status: StatusRow, year: int) -> str | None:
    """Why a stored status is a need in ``year`` (None: it is not)."""
    if status.status in _GAPS:
        return status.status
    if status.status in ("compliant", "expiring") and status.valid_until is not None:
        if date.fromisoformat(status.valid_until) <= date(year, 12, 31):
            return "expiring"
    return None


def needs_of_year(
    year: int,
    statuses: Iterable[StatusRow],
    declared: Iterable[DeclaredNeed],
    people: Mapping[int, Mapping[str, Any]],
    mappings: Mappings,
) -> list[Need]:
    """Every need of the year, by person then requirement (in the mappings' order).

    Reasons are kept as bits of one int per person x requirement and requirements that apply
    only for people who declared a need: at 100,000 people a set per need took 200 MB."""
    bits = {reason: 1 << i for i, reason in enumerate(REASONS)}
    reasons: dict[tuple[int, str], int] = {}
    known = {r.id for r in mappings.requirements}
    wanted = [
        need
        for need in declared
        if need.year == year
        and need.requirement_id in known
        and (person := people.get(need.user_id)) is not None
        and person.get("active")
    ]
    declaring = {need.user_id for need in wanted}
    applies: set[tuple[int, str]] = set()  # of the people who declared a need
    for status in statuses:
        person = people.get(status.user_id)
        if person is None or not person.get("active") or status.requirement_id not in known:
            continue
        if status.user_id in declaring and status.status != "not_applicable":
            applies.add((status.user_id, status.requirement_id))
        reason = gap_reason(status, year)
        if reason is not None:
            key = (status.user_id, status.requirement_id)
            reasons[key] = reasons.get(key, 0) | bits[reason]
    by_area: dict[tuple[int, str], list[str]] = {}
    for need in wanted:
        named = by_area.setdefault((need.user_id, need.area), [])
        if need.requirement_id not in named:
            named.append(need.requirement_id)
    order = {r.id: i for i, r in enumerate(mappings.requirements)}
    for (user_id, _area), requirement_ids in by_area.items():
        chosen = [r for r in requirement_ids if (user_id, r) in applies]
        if not chosen:
            chosen = sorted(requirement_ids, key=order.__getitem__)[:1]
        for requirement_id in chosen:
            key = (user_id, requirement_id)
            reasons[key] = reasons.get(key, 0) | bits["declared"]
    # one tuple per combination of reasons (at most 32), shared by the needs that have it
    by_mask = {mask: tuple(r for r in REASONS if mask & bits[r]) for mask in range(1 << len(REASONS))}
    return [
        Need(user_id, requirement_id, people[user_id].get("department_id"), by_mask[mask])
        for (user_id, requirement_id), mask in sorted(
            reasons.items(), key=lambda i: (i[0][0], order[i[0][1]])
        )
    ]


def group(needs: Iterable[Need], mappings: Mappings) -> list[NeedsGroup]:
    """Department x requirement groups, in the mappings' department and requirement order (the
    unplaced last)."""
    groups: dict[tuple[str | None, str], NeedsGroup] = {}
    for need in needs:
        key = (need.department_id, need.requirement_id)
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = NeedsGroup(need.department_id, need.requirement_id)
        entry.user_ids.append(need.user_id)
        for reason in need.reasons:
            entry.counts[reason] += 1
    dept_order = {d.id: i for i, d in enumerate(mappings.departments)}
    req_order = {r.id: i for i, r in enumerate(mappings.requirements)}
    return sorted(
        groups.values(),
        key=lambda g: (dept_order.get(g.department_id or "", len(dept_order)), req_order[g.requirement_id]),
    )


def course_to_take(mappings: Mappings, requirement_id: str) -> str:
    """The course(s) that satisfy a requirement, by title: "A or B" (any), "A + B" (all)."""
    requirement = mappings.requirement(requirement_id)
    titles = []
    for ref in requirement.courses:
        mapped = next((c for c in mappings.courses if c.ref == ref), None)
        titles.append(mapped.title if mapped and mapped.title else str(ref))
    return (" + " if requirement.require == "all" else " or ").join(titles)


def as_rows(needs: Iterable[Need]) -> list[AnalysisRow]:
    """What a saved analysis keeps of each need."""
    return [AnalysisRow(n.user_id, n.requirement_id, n.department_id, ", ".join(n.reasons)) for n in needs]


def from_rows(rows: Iterable[AnalysisRow]) -> list[Need]:
    return [
        Need(r.user_id, r.requirement_id, r.department_id, tuple(r.reasons.split(", ")) if r.reasons else ())
        for r in rows
    ]
