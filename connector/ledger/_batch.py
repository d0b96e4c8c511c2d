"""Small helpers the ledger's concerns share."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

from connector.i18n import _

T = TypeVar("T")

BATCH = 5000


def batched(items: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def stamp(now: datetime) -> str:
    """A moment as the ledger stores it: UTC, ISO 8601 to the second ("2026-06-01T02:00:00+00:00")."""
    if now.tzinfo is None:
        raise ValueError(_("the ledger's clock must be timezone-aware (UTC)"))
    return now.astimezone(UTC).isoformat(timespec="seconds")


def fill_among(conn: sqlite3.Connection, user_ids: Iterable[int]) -> None:
    """``temp.among``: the people a read is about (one department's), for a join that looks their
    rows up by user id instead of scanning everyone's."""
    conn.execute("DROP TABLE IF EXISTS temp.among")
    conn.execute("CREATE TEMP TABLE among (user_id INTEGER PRIMARY KEY)")
    for batch in batched(((user_id,) for user_id in user_ids), BATCH * 4):
        conn.executemany("INSERT OR IGNORE INTO temp.among (user_id) VALUES (?)", batch)
