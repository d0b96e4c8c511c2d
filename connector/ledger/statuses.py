"""Current statuses (one row per person x requirement) and the history of their changes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Iterator
from datetime import date
from itertools import islice
from typing import Any

import sqlite_utils

from connector.ledger._batch import BATCH, fill_among
from connector.ledger.records import ExportRow, StatusRow

_COLUMNS = "user_id, requirement_id, status, valid_until, since, due, evidence_id, completed_on, detail"
_WRITTEN = _COLUMNS + ", department_id"
_VALUES = _WRITTEN.split(", ")[2:]  # what a status says, beside its key
# a partial write (``only_reevaluated``) touches the people of this set only (Evaluated.select)
_AMONG = "user_id IN (SELECT user_id FROM temp.reevaluate)"


def _by_person(columns: str, *, among: bool, user_ids: str = "") -> str:
    """The query for ``columns`` of the stored statuses (of the people whose user id is
    ``user_ids``, a condition), by person then requirement; ``among``: of the people in
    ``temp.among`` only, looked up person by person rather than by a scan of every status."""
    if among:
        chosen = f" WHERE a.user_id {user_ids}" if user_ids else ""
        return (
            f"SELECT {', '.join('s.' + c for c in columns.split(', '))} FROM temp.among a "
            f"CROSS JOIN statuses s ON s.user_id = a.user_id{chosen} ORDER BY s.user_id, s.requirement_id"
        )
    chosen = f" WHERE user_id {user_ids}" if user_ids else ""
    return f"SELECT {columns} FROM statuses{chosen} ORDER BY user_id, requirement_id"


class Statuses:
    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        self.written = 0  # rows the last ``write`` inserted or replaced
        self.received = 0  # rows the last ``write`` was given

    def stage(self) -> None:
        """The temp table ``write`` compares in (public so the query-plan test can explain against it)."""
        conn = self._db.conn
        conn.execute("DROP TABLE IF EXISTS temp.new_statuses")
        conn.execute(
            "CREATE TEMP TABLE new_statuses (user_id INTEGER, requirement_id TEXT, status TEXT,"
            " valid_until TEXT, since TEXT, due TEXT, evidence_id INTEGER, completed_on TEXT,"
            " detail TEXT, department_id TEXT, PRIMARY KEY (user_id, requirement_id)) WITHOUT ROWID"
        )

    def write(
        self, rows: Iterable[StatusRow], run_id: int, as_of: date, *, only_reevaluated: bool = False
    ) -> int:
        """Make the current statuses ``rows``; append a history row for every change (a status that ends
        without a successor gets ``to_status = 'dropped'`` and a reason). Returns changes.

        ``only_reevaluated``: ``rows`` are the statuses of the people in ``temp.reevaluate`` only
        (an incremental evaluation); everyone else's stored statuses stay as they are.
        Staged in a temp table so that comparison happens in SQL, not in Python memory."""
        conn = self._db.conn
        self.received = 0
        if not only_reevaluated and conn.execute("SELECT 1 FROM statuses LIMIT 1").fetchone() is None:
            return self._first(rows, run_id, as_of)
        self.stage()
        for batch in self._batches(rows):
            conn.executemany(
                "INSERT INTO temp.new_statuses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
        changed = conn.execute(
            "INSERT INTO status_history (user_id, requirement_id, from_status, to_status, changed_on,"
            " run_id) "
            "SELECT n.user_id, n.requirement_id, s.status, n.status, ?, ? FROM temp.new_statuses n "
            "LEFT JOIN statuses s ON s.user_id = n.user_id AND s.requirement_id = n.requirement_id "
            "WHERE s.status IS NULL OR s.status != n.status",
            [as_of.isoformat(), run_id],
        ).rowcount
        # statuses that end without a successor get a history row saying why (an incremental run
        # follows mappings that did not change: its requirements are all still there)
        reason = (
            "'person no longer evaluated'"
            if only_reevaluated
            else "CASE WHEN s.requirement_id IN (SELECT requirement_id FROM temp.new_statuses) "
            "THEN 'person no longer evaluated' ELSE 'requirement removed from the mappings' END"
        )
        among = f" AND s.{_AMONG}" if only_reevaluated else ""
        changed += conn.execute(
            "INSERT INTO status_history (user_id, requirement_id, from_status, to_status, changed_on,"
            f" run_id, reason) SELECT s.user_id, s.requirement_id, s.status, 'dropped', ?, ?, {reason} "
            "FROM statuses s WHERE NOT EXISTS (SELECT 1 FROM temp.new_statuses n "
            f"WHERE n.user_id = s.user_id AND n.requirement_id = s.requirement_id){among}",
            [as_of.isoformat(), run_id],
        ).rowcount
        # Only rows that differ are written: a nightly where nothing changed rewrites nothing, so
        # the write-ahead log (and the disk) sees the changes, not a million unchanged rows.
        # A row's as_of and run_id therefore say which run last decided it.
        conn.execute(
            "DELETE FROM statuses WHERE NOT EXISTS (SELECT 1 FROM temp.new_statuses n "
            "WHERE n.user_id = statuses.user_id AND n.requirement_id = statuses.requirement_id)"
            + (f" AND statuses.{_AMONG}" if only_reevaluated else "")
        )
        differs = " OR ".join(f"s.{c} IS NOT n.{c}" for c in _VALUES)
        self.written = conn.execute(
            f"INSERT OR REPLACE INTO statuses ({_WRITTEN}, as_of, run_id) "
            f"SELECT {', '.join('n.' + c for c in _WRITTEN.split(', '))}, ?, ? FROM temp.new_statuses n "
            "LEFT JOIN statuses s ON s.user_id = n.user_id AND s.requirement_id = n.requirement_id "
            f"WHERE s.user_id IS NULL OR {differs}",
            [as_of.isoformat(), run_id],
        ).rowcount
        conn.execute("DROP TABLE temp.new_statuses")
        return changed

    def _first(self, rows: Iterable[StatusRow], run_id: int, as_of: date) -> int:
        """``write`` into an empty table (a first sync): every status is new, so the rows go
        straight into ``statuses`` (no staging and comparing: one pass over them instead of three)
        and their history is copied from there in SQL."""
        conn = self._db.conn
        day = as_of.isoformat()
        # as_of and run_id are the same on every row: literals (a date and an int), not parameters
        marks = ", ".join("?" * 10)
        insert = f"INSERT INTO statuses ({_WRITTEN}, as_of, run_id) VALUES ({marks}, '{day}', {int(run_id)})"
        # An index built once over a million sorted rows costs a fraction of keeping it up to date
        # row by row: the secondary indexes go while the table fills and come back as they were
        # (DDL is transactional: a failed run leaves them in place).
        indexes = [
            (name, sql)
            for name, sql in conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'statuses'"
                " AND sql IS NOT NULL"
            )
        ]
        dropped: list[str] = []
        for name, sql in indexes:
            try:
                conn.execute(f'DROP INDEX "{name}"')
            except sqlite3.OperationalError:  # a statement of this connection still reads: keep them
                break
            dropped.append(sql)
        for batch in self._batches(rows):
            conn.executemany(insert, batch)
        self.written = self.received
        for sql in dropped:
            conn.execute(sql)
        return int(
            conn.execute(
                "INSERT INTO status_history (user_id, requirement_id, from_status, to_status, changed_on,"
                " run_id) SELECT user_id, requirement_id, NULL, status, ?, ? FROM statuses "
                "ORDER BY user_id, requirement_id",
                [day, run_id],
            ).rowcount
        )

    def _batches(self, rows: Iterable[StatusRow]) -> Iterator[list[StatusRow]]:
        """``rows`` in lists of BATCH * 4 (taken by ``islice``: a million rows pass through here),
        counted in ``received``."""
        source = iter(rows)
        while batch := list(islice(source, BATCH * 4)):
            self.received += len(batch)
            yield batch

    def current(self, among: Iterable[int] | None = None) -> Iterator[StatusRow]:
        """Every stored status, by person then requirement; ``among``: of these people only."""
        if among is not None:
            fill_among(self._db.conn, among)
        for row in self._db.execute(_by_person(_COLUMNS, among=among is not None)):
            yield StatusRow(*row)

    def held(self, *, among: bool = False) -> Iterator[StatusRow]:
        """The stored statuses of everyone outside ``temp.reevaluate`` (``Evaluated.select``): the
        statuses that hold on its day, by person then requirement; ``among``: only of the people
        in ``temp.among``."""
        query = _by_person(_WRITTEN, among=among, user_ids="NOT IN (SELECT user_id FROM temp.reevaluate)")
        for row in self._db.execute(query):
            yield StatusRow(*row)

    def people_counted_in(self, departments: Collection[str]) -> set[int]:
        """Who has a stored status counted in one of ``departments``."""
        return {
            user_id
            for (user_id,) in self._db.execute(
                "SELECT DISTINCT user_id FROM statuses "
                "WHERE department_id IN (SELECT value FROM json_each(?))",
                [json.dumps(sorted(departments))],
            )
        }

    def current_for_export(self) -> Iterator[ExportRow]:
        """Every stored status with its person and deciding course, by person then requirement:
        one join streamed row by row, so an export's memory stays flat whatever the headcount."""
        cursor = self._db.execute(
            "SELECT s.user_id, s.requirement_id, s.status, s.valid_until, s.evidence_id, p.username, "
            "p.idnumber, p.department_id, p.fullname, p.email, "
            "CASE WHEN c.course_id IS NOT NULL THEN COALESCE(NULLIF(c.idnumber, ''), c.shortname) END, "
            "e.completed_at, i.course, i.requirement_id, i.completed_on, i.provider "
            "FROM statuses s LEFT JOIN people p ON p.user_id = s.user_id "
            "LEFT JOIN evidence e ON e.id = s.evidence_id "
            "LEFT JOIN courses c ON c.course_id = e.course_id "
            "LEFT JOIN imported_evidence i ON s.evidence_id < 0 AND i.id = -s.evidence_id "
            "ORDER BY s.user_id, s.requirement_id"
        )
        for row in cursor:
            yield ExportRow(*row)

    def for_user(self, user_id: int) -> list[dict[str, Any]]:
        return self._db.execute_returning_dicts(
            "SELECT * FROM statuses WHERE user_id = ? ORDER BY requirement_id", [user_id]
        )

    def history_for(self, user_id: int) -> list[dict[str, Any]]:
        return self._db.execute_returning_dicts(
            "SELECT * FROM status_history WHERE user_id = ? ORDER BY id", [user_id]
        )

    def count(self) -> int:
        """How many statuses are stored."""
        return int(self._db.execute("SELECT COUNT(*) FROM statuses").fetchone()[0])

    def per_requirement(self) -> dict[str, int]:
        """requirement id -> how many people hold a current status for it."""
        return {
            r: n
            for r, n in self._db.execute(
                "SELECT requirement_id, COUNT(*) FROM statuses GROUP BY requirement_id"
            )
        }
