"""What an incremental evaluation needs to know: who must be evaluated again.

A person's stored statuses hold as long as their evidence and profile stay as they are and the day
evaluated stays inside the days over which the rules would say the same (``evaluated_people``);
triggers mark people whose evidence or profile changed (``evaluation_dirty``), and the stored
statuses' fingerprint (mappings, courses, rules) says whether any of it may be reused at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import sqlite_utils

from connector.ledger._batch import BATCH, batched, fill_among
from connector.ledger.evidence import items_by_user
from connector.ledger.records import EvidenceItem

_FINGERPRINT = "fingerprint"


class Evaluated:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def fingerprint(self) -> str | None:
        """What the stored statuses were computed with; None before the first evaluation."""
        row = self._db.execute("SELECT value FROM evaluation_state WHERE name = ?", [_FINGERPRINT]).fetchone()
        return None if row is None else str(row[0])

    def select(self, as_of: date, among: Iterable[int] | None = None) -> int:
        """Fill ``temp.reevaluate`` with the people whose stored statuses may not hold at ``as_of``:
        marked as changed, or evaluated for days that do not include ``as_of``. Returns how many.

        ``among``: only these people are wanted (they fill ``temp.among``, which
        ``Statuses.held(among=True)`` reads too), e.g. one department's."""
        conn = self._db.conn
        if among is not None:
            fill_among(conn, among)
        conn.execute("DROP TABLE IF EXISTS temp.reevaluate")
        conn.execute("CREATE TEMP TABLE reevaluate (user_id INTEGER PRIMARY KEY)")
        day = as_of.isoformat()
        conn.execute("INSERT OR IGNORE INTO temp.reevaluate (user_id) SELECT user_id FROM evaluation_dirty")
        conn.execute(
            "INSERT OR IGNORE INTO temp.reevaluate (user_id) "
            "SELECT user_id FROM evaluated_people WHERE stable_until < ?",
            [day],
        )
        conn.execute(
            "INSERT OR IGNORE INTO temp.reevaluate (user_id) "
            "SELECT user_id FROM evaluated_people WHERE stable_from > ?",
            [day],
        )
        if among is not None:
            conn.execute("DELETE FROM temp.reevaluate WHERE user_id NOT IN (SELECT user_id FROM temp.among)")
        return int(conn.execute("SELECT COUNT(*) FROM temp.reevaluate").fetchone()[0])

    def people_rows(self) -> Iterator[dict[str, Any]]:
        """The people of ``temp.reevaluate`` still in the ledger, by user id (``People.rows``' shape)."""
        cursor = self._db.execute(
            "SELECT p.* FROM temp.reevaluate r JOIN people p ON p.user_id = r.user_id ORDER BY r.user_id"
        )
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row, strict=True))

    def evidence_by_user(self) -> Iterator[tuple[int, list[EvidenceItem]]]:
        """(user_id, items) of the people of ``temp.reevaluate``, by user id, each user's by time
        (``Evidence.by_user``'s shape)."""
        yield from items_by_user(
            self._db.execute(
                "SELECT e.id, e.user_id, e.course_id, e.completed_at, e.source, e.precision_s "
                "FROM temp.reevaluate r JOIN evidence e ON e.user_id = r.user_id "
                "ORDER BY r.user_id, e.completed_at"
            )
        )

    def imported_rows(self) -> list[dict[str, Any]]:
        """The imported evidence of the people of ``temp.reevaluate`` (``Imports.rows``' shape)."""
        return self._db.execute_returning_dicts(
            "SELECT i.* FROM temp.reevaluate r JOIN imported_evidence i ON i.user_id = r.user_id "
            "ORDER BY i.user_id, i.completed_on, i.id"
        )

    def record(self, days: Iterable[tuple[int, str, str]]) -> None:
        """Remember (user id, stable from, stable until) of people just evaluated. Unchanged rows are
        not rewritten (the write-ahead log sees only what moved)."""
        conn = self._db.conn
        for batch in batched(days, BATCH * 4):
            conn.executemany(
                "INSERT INTO evaluated_people (user_id, stable_from, stable_until) VALUES (?, ?, ?) "
                "ON CONFLICT(user_id) DO UPDATE SET stable_from = excluded.stable_from, "
                "stable_until = excluded.stable_until WHERE stable_from != excluded.stable_from "
                "OR stable_until != excluded.stable_until",
                batch,
            )

    def finish(self, fingerprint: str) -> None:
        """After an evaluation: nobody is marked as changed any more, and the stored statuses were
        computed with ``fingerprint``."""
        conn = self._db.conn
        conn.execute("DELETE FROM evaluation_dirty")
        conn.execute(
            "INSERT INTO evaluation_state (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value WHERE value != excluded.value",
            [_FINGERPRINT, fingerprint],
        )
