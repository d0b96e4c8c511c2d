"""Department x requirement roll-ups, kept per run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlite_utils


class Rollups:
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
