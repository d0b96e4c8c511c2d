"""Erasure and the suppression list: explicit, audited under a pseudonym, and lasting.

Erased people go on a suppression list keyed by an HMAC of their Moodle user id
(``subject_key``), never by the id or the username, so no later sync brings them back.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

import sqlite_utils

from connector.errors import LedgerError
from connector.i18n import _
from connector.ledger._batch import stamp
from connector.ledger.migrations import subject_key
from connector.ledger.runs import FULL_RUN_WANTED

# Every table that holds rows about a person, by Moodle user id.
PERSONAL_TABLES = (
    "evidence",
    "imported_evidence",
    "statuses",
    "status_history",
    "enrolments",
    "people",
    "declared_needs",
    "needs_analysis_rows",
)


class Suppressions:
    def __init__(
        self,
        db: sqlite_utils.Database,
        path: Path,
        transaction: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._db = db
        self._path = path
        self._transaction = transaction

    def subject_key(self, user_id: int) -> str:
        """The pseudonym the suppression list and the erasure audit use for a Moodle user id."""
        return subject_key(self._salt(), user_id)

    def _salt(self) -> str:
        row = self._db.execute("SELECT value FROM ledger_keys WHERE name = 'subject_salt'").fetchone()
        if row is None:
            raise LedgerError(
                _("the ledger {path} has no subject salt (ledger_keys): it was altered by hand").format(
                    path=self._path
                ),
                hint=_("restore it from a backup"),
            )
        return str(row[0])

    def suppressed_among(self, user_ids: Iterable[int]) -> set[int]:
        """Which of these Moodle user ids were erased and are kept out of syncs."""
        keys = {r[0] for r in self._db.execute("SELECT subject_key FROM suppressions")}
        if not keys:
            return set()
        salt = self._salt()
        return {u for u in user_ids if subject_key(salt, u) in keys}

    def erase(self, user_id: int, reason: str, *, now: datetime) -> int:
        """The one way personal data leaves the ledger: every row about the person goes, the erasure
        is audited in ``erasures`` (by pseudonym) and the person goes on the suppression list.
        Joins an open transaction (so a caller can recompute roll-ups in the same one)."""
        if not self._db.conn.in_transaction:
            with self._transaction():
                return self.erase(user_id, reason, now=now)
        key = self.subject_key(user_id)
        removed = 0
        for table in PERSONAL_TABLES:
            removed += self._db.execute(f"DELETE FROM {table} WHERE user_id = ?", [user_id]).rowcount
        cursor = self._db.execute(
            "INSERT INTO erasures (subject_key, erased_at, reason, rows_removed) VALUES (?, ?, ?, ?)",
            [key, stamp(now), reason, removed],
        )
        self._db.execute(
            "INSERT INTO suppressions (subject_key, since, erasure_id) VALUES (?, ?, ?) "
            "ON CONFLICT(subject_key) DO UPDATE SET erasure_id = excluded.erasure_id",
            [key, stamp(now), cursor.lastrowid],
        )
        return removed

    def lift(self, user_id: int) -> bool:
        """Let an erased person back into later syncs; False when they were not held back."""
        with self._transaction():
            key = self.subject_key(user_id)
            lifted = self._db.execute("DELETE FROM suppressions WHERE subject_key = ?", [key]).rowcount > 0
            if lifted:  # a fresh value each time: a full run clears only the one it saw
                self._db.execute(
                    "INSERT INTO bookmarks (stream, value) VALUES (?, ?) "
                    "ON CONFLICT(stream) DO UPDATE SET value = excluded.value, run_id = NULL",
                    [FULL_RUN_WANTED, secrets.token_hex(8)],
                )
            return lifted
