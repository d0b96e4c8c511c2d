"""Sync runs (``sync_runs``) and the per-stream bookmarks a run leaves for the next one."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

import sqlite_utils

from connector.ledger._batch import stamp

INTERRUPTED = "interrupted: the process ended before the run finished (killed or crashed)"


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    row["counts"] = json.loads(row["counts"]) if row["counts"] else {}
    return row


class Runs:
    def __init__(
        self, db: sqlite_utils.Database, transaction: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._db = db
        self._transaction = transaction

    def start(self, mode: str, as_of: date, *, now: datetime) -> int:
        """Record a run as 'running', in its own small transaction (a killed run stays findable)."""
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO sync_runs (started_at, outcome, mode, as_of) VALUES (?, 'running', ?, ?)",
                [stamp(now), mode, as_of.isoformat()],
            )
            run_id = cursor.lastrowid
            assert run_id is not None  # an INSERT into a rowid table always sets it
            return run_id

    def finish(
        self,
        run_id: int,
        outcome: str,
        *,
        now: datetime,
        counts: dict[str, Any] | None = None,
        completion_path: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record the run's outcome. Inside an open transaction (a sync's data write) it joins it,
        so the outcome and the data commit together; otherwise it commits on its own."""
        sql = (
            "UPDATE sync_runs SET finished_at = ?, outcome = ?, counts = ?, completion_path = ?, "
            "error = ? WHERE id = ?"
        )
        params = [
            stamp(now),
            outcome,
            json.dumps(counts or {}, sort_keys=True),
            completion_path,
            error,
            run_id,
        ]
        if self._db.conn.in_transaction:
            self._db.execute(sql, params)
            return
        with self._transaction():
            self._db.execute(sql, params)

    def fail_stale(self, *, now: datetime) -> int:
        """Runs still 'running' when the lock is free were killed: record them as failed."""
        with self._transaction():
            cursor = self._db.execute(
                "UPDATE sync_runs SET outcome = 'failed', finished_at = ?, error = ? "
                "WHERE outcome = 'running'",
                [stamp(now), INTERRUPTED],
            )
            return cursor.rowcount

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first (``counts`` decoded)."""
        rows = self._db.execute_returning_dicts("SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?", [limit])
        return [_decoded(row) for row in rows]

    def last(self, outcome: str = "ok", mode: str | None = None) -> dict[str, Any] | None:
        sql = "SELECT * FROM sync_runs WHERE outcome = ?"
        params: list[Any] = [outcome]
        if mode:
            sql += " AND mode = ?"
            params.append(mode)
        rows = self._db.execute_returning_dicts(sql + " ORDER BY id DESC LIMIT 1", params)
        return _decoded(rows[0]) if rows else None

    def last_finished(self) -> dict[str, Any] | None:
        """The latest run that is not still running (id, outcome, error)."""
        rows = self._db.execute_returning_dicts(
            "SELECT id, outcome, error FROM sync_runs WHERE outcome != 'running' ORDER BY id DESC LIMIT 1"
        )
        return rows[0] if rows else None

    def first_ok_as_of(self) -> date | None:
        """The day the first successful sync evaluated (the ledger knows nothing before it)."""
        value = self._db.execute("SELECT MIN(as_of) FROM sync_runs WHERE outcome = 'ok'").fetchone()[0]
        return date.fromisoformat(value) if value else None


# set by `unsuppress`: a delta night would not read the person let back (their completions are
# older than its window, their profile is not asked), so the next sync reads everything
FULL_RUN_WANTED = "full_run_wanted"


class Bookmarks:
    """Per-stream values a run leaves for the next (Singer-style), e.g. the report's time zone."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def get(self, stream: str) -> str | None:
        row = self._db.execute("SELECT value FROM bookmarks WHERE stream = ?", [stream]).fetchone()
        return None if row is None else str(row[0])

    def set(self, stream: str, value: str, run_id: int) -> None:
        self._db.execute(
            "INSERT INTO bookmarks (stream, value, run_id) VALUES (?, ?, ?) "
            "ON CONFLICT(stream) DO UPDATE SET value = excluded.value, run_id = excluded.run_id",
            [stream, value, run_id],
        )

    def clear(self, stream: str, value: str) -> None:
        """Forget ``stream`` if it still holds ``value`` (one set since it was read stays)."""
        self._db.execute("DELETE FROM bookmarks WHERE stream = ? AND value = ?", [stream, value])
