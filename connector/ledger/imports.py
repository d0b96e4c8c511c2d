"""Evidence from outside Moodle: imported files with their provenance, and their rows.

A row is evidence like a Moodle completion but comes from a file someone imported; its item id
is the negative of its row id, so a status decided by it (``statuses.evidence_id``) never names a
Moodle completion by mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlite_utils

from connector.ledger._batch import stamp


@dataclass(frozen=True, slots=True)
class ImportedRow:
    """One validated line of an imported file, ready to store."""

    line: int
    user_id: int
    course: str | None
    requirement_id: str | None
    completed_on: date
    provider: str
    expires_on: date | None = None


@dataclass(frozen=True, slots=True)
class Provenance:
    source: str
    file_name: str
    sha256: str
    imported_by: str


class Imports:
    def __init__(
        self, db: sqlite_utils.Database, transaction: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._db = db
        self._transaction = transaction

    def with_sha256(self, sha256: str) -> dict[str, Any] | None:
        """The earliest import of a file with this content that was not removed, if any."""
        rows = self._db.execute_returning_dicts(
            "SELECT * FROM evidence_imports WHERE sha256 = ? AND removed_at IS NULL ORDER BY id LIMIT 1",
            [sha256],
        )
        return rows[0] if rows else None

    def record(self, provenance: Provenance, rows: Iterable[ImportedRow], *, now: datetime) -> int:
        """Store a whole file in one transaction; returns the import's id."""
        rows = list(rows)
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO evidence_imports (source, file_name, sha256, imported_by, imported_at, rows) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    provenance.source,
                    provenance.file_name,
                    provenance.sha256,
                    provenance.imported_by,
                    stamp(now),
                    len(rows),
                ],
            )
            import_id = int(cursor.lastrowid or 0)
            self._db.conn.executemany(
                "INSERT INTO imported_evidence (import_id, line, user_id, course, requirement_id, "
                "completed_on, provider, expires_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        import_id,
                        r.line,
                        r.user_id,
                        r.course,
                        r.requirement_id,
                        r.completed_on.isoformat(),
                        r.provider,
                        r.expires_on.isoformat() if r.expires_on else None,
                    )
                    for r in rows
                ],
            )
        return import_id

    def remove(self, import_id: int, reason: str, removed_by: str, *, now: datetime) -> int | None:
        """Delete an import's rows and record who removed it, when and why; None when there is no
        such import (or it was removed already)."""
        with self._transaction():
            found = self._db.execute(
                "SELECT id FROM evidence_imports WHERE id = ? AND removed_at IS NULL", [import_id]
            ).fetchone()
            if found is None:
                return None
            removed = self._db.execute(
                "DELETE FROM imported_evidence WHERE import_id = ?", [import_id]
            ).rowcount
            self._db.execute(
                "UPDATE evidence_imports SET removed_at = ?, removed_by = ?, removed_reason = ?, "
                "rows_removed = ? WHERE id = ?",
                [stamp(now), removed_by, reason, removed, import_id],
            )
        return int(removed)

    def all(self) -> list[dict[str, Any]]:
        """Every import, removed ones too, oldest first, with the rows it still holds."""
        return self._db.execute_returning_dicts(
            "SELECT i.*, (SELECT COUNT(*) FROM imported_evidence e WHERE e.import_id = i.id) AS rows_held "
            "FROM evidence_imports i ORDER BY i.id"
        )

    def rows(self) -> list[dict[str, Any]]:
        """Every imported row, by user and date (what the evaluation merges with Moodle's evidence)."""
        return self._db.execute_returning_dicts(
            "SELECT * FROM imported_evidence ORDER BY user_id, completed_on, id"
        )

    def for_user(self, user_id: int) -> list[dict[str, Any]]:
        """One person's imported evidence with its file's source, oldest first."""
        return self._db.execute_returning_dicts(
            "SELECT e.*, i.source, i.file_name, i.imported_at, i.imported_by FROM imported_evidence e "
            "JOIN evidence_imports i ON i.id = e.import_id WHERE e.user_id = ? "
            "ORDER BY e.completed_on, e.id",
            [user_id],
        )

    def user_ids(self) -> tuple[dict[str, int], dict[str, int]]:
        """(username -> user id, idnumber -> user id) of everyone in the ledger (an idnumber two
        people share is left out: it names nobody for sure)."""
        by_username: dict[str, int] = {}
        by_idnumber: dict[str, int] = {}
        shared: set[str] = set()
        for user_id, username, idnumber in self._db.execute("SELECT user_id, username, idnumber FROM people"):
            by_username[username] = user_id
            if idnumber:
                if idnumber in by_idnumber:
                    shared.add(idnumber)
                by_idnumber[idnumber] = user_id
        for idnumber in shared:
            del by_idnumber[idnumber]
        return by_username, by_idnumber
