"""Evidence: completions as read from Moodle, append-only (a full sync only marks them gone)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlite_utils

from connector.ledger._batch import batched, stamp
from connector.ledger.records import EvidenceCounts, EvidenceItem
from connector.moodle.records import Completion

# A completion read by the report (minute precision) and by a status call (second precision) is
# the same evidence: identity is (user, course, minute); the more precise time wins.
# Shared by ``record`` and the staging area's move (``Staging.apply_evidence``).
EVIDENCE_INSERT = (
    "INSERT INTO evidence (user_id, course_id, completed_at, completed_minute, source, precision_s,"
    " first_seen_run, last_seen_run, first_seen_at, last_seen_at) "
)
ON_SAME_EVIDENCE = (
    "ON CONFLICT(user_id, course_id, completed_minute) DO UPDATE SET "
    "last_seen_run = excluded.last_seen_run, last_seen_at = excluded.last_seen_at, "
    "gone_since_run = NULL, "
    "completed_at = CASE WHEN excluded.precision_s < evidence.precision_s "
    "  THEN excluded.completed_at ELSE evidence.completed_at END, "
    "source = CASE WHEN excluded.precision_s < evidence.precision_s "
    "  THEN excluded.source ELSE evidence.source END, "
    "precision_s = MIN(excluded.precision_s, evidence.precision_s) "
)
_RECORD = EVIDENCE_INSERT + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " + ON_SAME_EVIDENCE
_COMPLETION_COLUMNS = "id, user_id, course_id, completed_at, source, precision_s"


class Evidence:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def record(self, completions: Iterable[Completion], run_id: int, *, now: datetime) -> EvidenceCounts:
        """Append new completions and refresh last-seen of known ones; returns new/seen counts."""
        seen_at = stamp(now)
        # Rows are only appended, so the new ones are those above the highest id before.
        before = int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM evidence").fetchone()[0])
        seen = 0
        for batch in batched(completions):
            self._db.conn.executemany(
                _RECORD,
                [
                    (
                        c.user_id,
                        c.course_id,
                        c.completed_at,
                        c.completed_at // 60,
                        c.source,
                        c.precision_s,
                        run_id,
                        run_id,
                        seen_at,
                        seen_at,
                    )
                    for c in batch
                ],
            )
            seen += len(batch)
        new = int(self._db.execute("SELECT COUNT(*) FROM evidence WHERE id > ?", [before]).fetchone()[0])
        return EvidenceCounts(new=new, seen=seen - new)

    def mark_gone(self, course_ids: Sequence[int], run_id: int) -> int:
        """After a full read of these courses: evidence Moodle no longer has is marked, never deleted."""
        total = 0
        for course_id in course_ids:
            total += self._db.execute(
                "UPDATE evidence SET gone_since_run = ? WHERE course_id = ? AND last_seen_run < ? "
                "AND gone_since_run IS NULL",
                [run_id, course_id, run_id],
            ).rowcount
        return total

    def by_user(self) -> Iterator[tuple[int, list[EvidenceItem]]]:
        """(user_id, items) for every user with evidence, by user id, each user's by time."""
        yield from items_by_user(
            self._db.execute(f"SELECT {_COMPLETION_COLUMNS} FROM evidence ORDER BY user_id, completed_at")
        )

    def for_user(self, user_id: int) -> list[dict[str, Any]]:
        """One person's evidence with its course's idnumber and name, oldest first."""
        return self._db.execute_returning_dicts(
            "SELECT e.*, c.idnumber AS course_idnumber, c.fullname AS course_name FROM evidence e "
            "LEFT JOIN courses c ON c.course_id = e.course_id WHERE e.user_id = ? "
            "ORDER BY e.completed_at",
            [user_id],
        )

    def per_course(self) -> dict[int, int]:
        """course id -> completions on record (gone from Moodle or not)."""
        return {
            c: n for c, n in self._db.execute("SELECT course_id, COUNT(*) FROM evidence GROUP BY course_id")
        }

    def deciding(self) -> dict[int, Completion]:
        """evidence id -> completion, for the evidence that decides some current status."""
        return {
            eid: Completion(u, c, at, src, prec)
            for eid, u, c, at, src, prec in self._db.execute(
                f"SELECT {_COMPLETION_COLUMNS} FROM evidence WHERE id IN (SELECT evidence_id FROM statuses)"
            )
        }

    def course_and_time(self) -> dict[int, tuple[int, int]]:
        """evidence id -> (course id, completed at): what an export names as deciding a status."""
        return {
            r[0]: (r[1], r[2]) for r in self._db.execute("SELECT id, course_id, completed_at FROM evidence")
        }


def items_by_user(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[int, list[EvidenceItem]]]:
    """(user_id, items) from rows of ``id, user_id, course_id, completed_at, source, precision_s``
    ordered by user id: the evaluation's evidence stream (the whole table on a full evaluation)."""
    item = tuple.__new__
    current: int | None = None
    bucket: list[EvidenceItem] = []
    for eid, user_id, course_id, at, source, precision in rows:
        if user_id != current:
            if current is not None:
                yield current, bucket
            current, bucket = user_id, []
        bucket.append(item(EvidenceItem, (eid, Completion(user_id, course_id, at, source, precision))))
    if current is not None:
        yield current, bucket
