"""Department x requirement roll-ups, kept per run, and the counts they are built from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

import sqlite_utils

# a stored status whose deciding evidence is still valid on the day ?1
_HOLDS = "(s.evidence_id IS NOT NULL AND (s.valid_until IS NULL OR s.valid_until >= ?1))"


class Rollups:
    """The roll-ups' own table, and the counts they are recomputed from."""

    @staticmethod
    def tables_read(*, recomputed: bool, needs: bool = False, enrolled: bool = False) -> tuple[str, ...]:
        """The tables a read of one day's roll-ups touches, the largest first: the stored ones
        (``recomputed`` false), or those recomputed from statuses, evidence and people; ``needs``:
        a target counts the year's needs analysis; ``enrolled``: a target counts the enrolled. A
        read command checks these for damage, not the whole file (``tests/test_soundness.py``
        traces the tables SQLite is asked for and fails on one left out)."""
        if not recomputed:
            return ("people", "rollups", "sync_runs")
        return (
            "statuses",
            *(("enrolments",) if enrolled else ()),
            "evidence",
            "people",
            "evaluated_people",
            "imported_evidence",
            "rollups",
            "courses",
            "evaluation_dirty",
            "evaluation_state",
            "evidence_imports",
            "sync_runs",
            *(("needs_analysis_rows", "needs_analyses") if needs else ()),
        )

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def write(self, rows: Iterable[dict[str, Any]], run_id: int) -> None:
        self._db.conn.executemany(
            "INSERT OR REPLACE INTO rollups (run_id, department_id, requirement_id, in_scope, compliant,"
            " expiring, expired, missing, grace, exempt, holders, share, targets_met, targets) VALUES "
            "(:run_id, :department_id, :requirement_id, :in_scope, :compliant, :expiring, :expired,"
            " :missing, :grace, :exempt, :holders, :share, :targets_met, :targets)",
            [dict(row, run_id=run_id) for row in rows],
        )

    def for_run(self, run_id: int) -> list[dict[str, Any]]:
        return self._db.execute_returning_dicts(
            "SELECT * FROM rollups WHERE run_id = ? ORDER BY department_id, requirement_id", [run_id]
        )

    def replace(self, run_id: int, department_ids: Iterable[str], rows: Iterable[dict[str, Any]]) -> None:
        """Swap the roll-ups of these departments in a run for recomputed ones."""
        departments = sorted(set(department_ids))
        self._db.conn.executemany(
            "DELETE FROM rollups WHERE run_id = ? AND department_id = ?", [(run_id, d) for d in departments]
        )
        self.write([r for r in rows if r["department_id"] in departments], run_id)

    def status_counts(
        self, as_of: date, period_starts: Sequence[date], *, of_reevaluated: bool = False
    ) -> list[tuple[Any, ...]]:
        """(department, requirement, status, count, holders, then per period start: holders whose
        deciding completion is on or after it) over the stored statuses that count in a department;
        ``of_reevaluated``: of the people in ``temp.reevaluate`` only. One pass over one index."""
        since = "".join(f", SUM({_HOLDS} AND s.completed_on >= ?{i + 2})" for i in range(len(period_starts)))
        source = "statuses s"
        if of_reevaluated:
            # A few people: look up each one's statuses. SQLite knows nothing of the temp table's
            # size and would scan every status instead (0.14 s against 0.005 s for 150 of 100,000
            # people); past about a seventh of everyone that scan is the cheaper plan.
            few = self._db.execute(
                "SELECT (SELECT COUNT(*) FROM temp.reevaluate) * 7 <= (SELECT COUNT(*) FROM evaluated_people)"
            ).fetchone()[0]
            join = "CROSS JOIN" if few else "JOIN"
            source = f"temp.reevaluate r {join} statuses s ON s.user_id = r.user_id"
        return self._db.execute(
            f"SELECT s.department_id, s.requirement_id, s.status, COUNT(*), SUM({_HOLDS}){since} "
            f"FROM {source} WHERE s.department_id IS NOT NULL "
            "GROUP BY s.department_id, s.requirement_id, s.status",
            [as_of.isoformat(), *(d.isoformat() for d in period_starts)],
        ).fetchall()

    def positions(self, as_of: date, *, without_reevaluated: bool = False) -> list[tuple[str, str, int]]:
        """(department, position, people) of the active people placed in a department on ``as_of``
        (appointed targets); ``without_reevaluated``: leaving out the people in ``temp.reevaluate``."""
        skip = " AND user_id NOT IN (SELECT user_id FROM temp.reevaluate)" if without_reevaluated else ""
        return self._db.execute(
            "SELECT department_id, position, COUNT(*) FROM people "
            "WHERE active = 1 AND department_id IS NOT NULL AND position IS NOT NULL "
            f"AND (first_seen_on IS NULL OR first_seen_on = '' OR first_seen_on <= ?){skip} "
            "GROUP BY department_id, position",
            [as_of.isoformat()],
        ).fetchall()

    def counted_statuses(
        self, as_of: date, requirement_ids: Iterable[str], *, without_reevaluated: bool = False
    ) -> Iterator[tuple[int, str, str, str, int, str | None]]:
        """(user id, department, requirement, status, holds, completed on) of every stored status of
        these requirements that counts in a department: the targets that need to know who."""
        wanted = sorted(set(requirement_ids))
        marks = ", ".join("?" for _ in wanted)
        skip = " AND s.user_id NOT IN (SELECT user_id FROM temp.reevaluate)" if without_reevaluated else ""
        yield from self._db.execute(
            f"SELECT s.user_id, s.department_id, s.requirement_id, s.status, {_HOLDS}, s.completed_on "
            f"FROM statuses s WHERE s.department_id IS NOT NULL AND s.requirement_id IN ({marks}){skip}",
            [as_of.isoformat(), *wanted],
        )
