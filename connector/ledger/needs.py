"""The needs register: declared needs (survey, CSV import) and the saved yearly needs analyses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, NamedTuple

import sqlite_utils

from connector.ledger._batch import stamp


class DeclaredNeed(NamedTuple):
    user_id: int
    year: int
    requirement_id: str
    area: str
    source: str


class AnalysisRow(NamedTuple):
    user_id: int
    requirement_id: str
    department_id: str | None
    reasons: str


class Needs:
    @staticmethod
    def tables_read() -> tuple[str, ...]:
        """The tables a read of a year's analysis touches, the largest first: what `needs` checks
        for damage (``tests/test_soundness.py`` traces it)."""
        return ("statuses", "people", "declared_needs", "sync_runs")

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    # -- declared needs ---------------------------------------------------------------------------
    def replace_source(self, year: int, source: str, needs: Iterable[DeclaredNeed], *, now: datetime) -> int:
        """The needs one source declared for a year, replacing what that source said before (a
        survey read again, a corrected file imported again). Joins the caller's transaction."""
        self._db.execute("DELETE FROM declared_needs WHERE year = ? AND source = ?", [year, source])
        cursor = self._db.conn.executemany(
            "INSERT OR IGNORE INTO declared_needs (user_id, year, requirement_id, area, source, recorded_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(n.user_id, n.year, n.requirement_id, n.area, n.source, stamp(now)) for n in needs],
        )
        return int(cursor.rowcount)

    def declared(self, year: int) -> list[DeclaredNeed]:
        rows = self._db.execute(
            "SELECT user_id, year, requirement_id, area, source FROM declared_needs WHERE year = ?"
            " ORDER BY user_id, requirement_id, source",
            [year],
        ).fetchall()
        return [DeclaredNeed(*row) for row in rows]

    # -- saved analyses ---------------------------------------------------------------------------
    def save(self, year: int, as_of: date, rows: Iterable[AnalysisRow], *, now: datetime) -> dict[str, Any]:
        """A new version of the year's analysis; the one it supersedes stays. Joins a transaction."""
        previous = self.latest(year)
        version = (previous["version"] if previous else 0) + 1
        cursor = self._db.execute(
            "INSERT INTO needs_analyses (year, version, saved_at, supersedes, as_of) VALUES (?, ?, ?, ?, ?)",
            [year, version, stamp(now), previous["id"] if previous else None, as_of.isoformat()],
        )
        analysis_id = int(cursor.lastrowid or 0)
        self._db.conn.executemany(
            "INSERT INTO needs_analysis_rows (analysis_id, user_id, requirement_id, department_id, reasons)"
            " VALUES (?, ?, ?, ?, ?)",
            [(analysis_id, *row) for row in rows],
        )
        return self.get(analysis_id)

    def get(self, analysis_id: int) -> dict[str, Any]:
        rows = self._db.execute_returning_dicts(
            "SELECT a.*, (SELECT COUNT(*) FROM needs_analysis_rows r WHERE r.analysis_id = a.id) AS needs,"
            " (SELECT COUNT(DISTINCT user_id) FROM needs_analysis_rows r WHERE r.analysis_id = a.id)"
            " AS people FROM needs_analyses a WHERE a.id = ?",
            [analysis_id],
        )
        return rows[0]

    def latest(self, year: int) -> dict[str, Any] | None:
        rows = self._db.execute_returning_dicts(
            "SELECT * FROM needs_analyses WHERE year = ? ORDER BY version DESC LIMIT 1", [year]
        )
        return rows[0] if rows else None

    def analyses(self) -> list[dict[str, Any]]:
        """Every saved analysis, newest year first, each with its number of people and needs."""
        return self._db.execute_returning_dicts(
            "SELECT a.id, a.year, a.version, a.saved_at, a.as_of,"
            " (SELECT s.version FROM needs_analyses s WHERE s.id = a.supersedes) AS supersedes,"
            " (SELECT COUNT(DISTINCT user_id) FROM needs_analysis_rows r"
            " WHERE r.analysis_id = a.id) AS people,"
            " (SELECT COUNT(*) FROM needs_analysis_rows r WHERE r.analysis_id = a.id) AS needs"
            " FROM needs_analyses a ORDER BY a.year DESC, a.version DESC"
        )

    def rows_of(self, analysis_id: int) -> list[AnalysisRow]:
        rows = self._db.execute(
            "SELECT user_id, requirement_id, department_id, reasons FROM needs_analysis_rows"
            " WHERE analysis_id = ? ORDER BY user_id, requirement_id",
            [analysis_id],
        ).fetchall()
        return [AnalysisRow(*row) for row in rows]
