"""The forecast: what the roll-ups will be at the end of each coming quarter if nobody trains.

The rules are pure and take ``as_of``, so the forecast is the ledger's current evidence
(Moodle's completions and imported evidence) evaluated again at each quarter end: validity runs
out, newcomers' grace periods end, share periods roll over. "Fails first" is, for each target met
today, the first quarter end where it is no longer met: the planning view for the training budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from connector.durations import shift_months
from connector.evaluation import department_rollups_as_of, resolve_courses, rollups_as_of
from connector.ledger import Ledger
from connector.mapping import Mappings
from connector.rules import DepartmentRollup, TargetResult


def quarter_ends(as_of: date, quarters: int) -> list[date]:
    """The last day of the quarter holding ``as_of`` and of the ``quarters - 1`` after it."""
    start = date(as_of.year, (as_of.month - 1) // 3 * 3 + 1, 1)
    return [shift_months(start, 3 * (i + 1)) - timedelta(days=1) for i in range(quarters)]


def quarter_label(end: date) -> str:
    return f"{end.year}-Q{(end.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class Failure:
    department: str
    requirement: str
    target: TargetResult  # as judged today (met)
    fails_at: date
    then: TargetResult  # as judged at fails_at (missed)


def _rollups(
    ledger: Ledger, mappings: Mappings, as_of: date, departments: set[str] | None
) -> dict[tuple[str, str], DepartmentRollup]:
    """The roll-ups of ``as_of`` (of ``departments`` only, when given): the stored statuses of
    everyone whose statuses hold on that day, the others evaluated again (what evaluating
    everyone gives, ``rollups_as_of``)."""
    course_ids = resolve_courses(mappings, ledger.courses.all())
    rollups = (
        rollups_as_of(ledger, mappings, course_ids, as_of).build()
        if departments is None
        else department_rollups_as_of(ledger, mappings, course_ids, as_of, departments)
    )
    return {(r.department_id, r.requirement_id): r for r in rollups}


def forecast(
    ledger: Ledger, mappings: Mappings, as_of: date, quarters: int, departments: set[str] | None = None
) -> tuple[list[date], list[dict[str, Any]], list[Failure]]:
    """(quarter ends, one row per department x requirement x quarter end, targets failing first);
    ``departments``: of these only (their people evaluated alone)."""
    ends = quarter_ends(as_of, quarters)
    today = _rollups(ledger, mappings, as_of, departments)
    ahead = [(end, _rollups(ledger, mappings, end, departments)) for end in ends]
    rows: list[dict[str, Any]] = []
    failures: list[Failure] = []
    for key, now in today.items():
        department, requirement = key
        failed: set[int] = set()
        for end, rollups in ahead:
            then = rollups.get(key)
            if then is None:
                continue
            rows.append(_row(then, end))
            for index, (target, later) in enumerate(zip(now.targets, then.targets, strict=False)):
                if index not in failed and target.met is True and later.met is False:
                    failed.add(index)
                    failures.append(Failure(department, requirement, target, end, later))
    failures.sort(key=lambda f: f.fails_at)
    return ends, rows, failures


def _row(r: DepartmentRollup, end: date) -> dict[str, Any]:
    return {
        "department": r.department_id,
        "requirement": r.requirement_id,
        "quarter": quarter_label(end),
        "quarter_end": end.isoformat(),
        "in_scope": r.in_scope,
        "compliant": r.compliant,
        "expiring": r.expiring,
        "expired": r.expired + r.missing,  # nobody trains: missing and expired are alike
        "grace": r.grace,
        "exempt": r.exempt,
        "share": r.share,
        "targets_met": r.targets_met,
    }


def wide_rows(rows: list[dict[str, Any]], ends: list[date]) -> Iterator[dict[str, Any]]:
    """One row per department x requirement with a "compliant/expiring/expired" cell per quarter."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        wide = by_key.setdefault(
            (row["department"], row["requirement"]),
            {"department": row["department"], "requirement": row["requirement"]},
        )
        wide[row["quarter"]] = f"{row['compliant']}/{row['expiring']}/{row['expired']}"
    yield from by_key.values()
