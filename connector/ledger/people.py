"""People as the last sync placed them (department, position, cohorts, active/deleted)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import sqlite_utils

from connector.errors import LedgerError
from connector.i18n import _
from connector.ledger._batch import batched

_UPSERT = (
    "INSERT INTO people (user_id, username, idnumber, fullname, email, institution, department_text, "
    "position, cohorts, department_id, placement_conflicts, start_date, lastaccess, active, "
    "suspended, deleted, first_seen_run, last_seen_run, first_seen_on) "
    "VALUES (:user_id, :username, :idnumber, :fullname, :email, :institution, :department_text, "
    ":position, :cohorts, :department_id, :placement_conflicts, :start_date, :lastaccess, "
    ":active, :suspended, 0, :run_id, :run_id, :seen_on) "
    "ON CONFLICT(user_id) DO UPDATE SET username = excluded.username, "
    "idnumber = excluded.idnumber, fullname = excluded.fullname, email = excluded.email, "
    "institution = excluded.institution, department_text = excluded.department_text, "
    "position = excluded.position, cohorts = excluded.cohorts, "
    "department_id = excluded.department_id, placement_conflicts = excluded.placement_conflicts, "
    "start_date = COALESCE(excluded.start_date, people.start_date), "
    "lastaccess = excluded.lastaccess, active = excluded.active, "
    "suspended = excluded.suspended, deleted = 0, last_seen_run = excluded.last_seen_run"
)


# (column, its empty value, "holds a value"): the personal fields [privacy] personal_fields governs
_PERSONAL_FIELDS = (
    ("fullname", "''", "fullname != ''"),
    ("email", "NULL", "email IS NOT NULL"),
)


class People:
    @staticmethod
    def tables_read_for_one() -> tuple[str, ...]:
        """The tables a read of one person touches (their row, statuses and history, evidence with
        its courses, imported evidence with its files), the largest first: what `person` checks
        for damage (``tests/test_soundness.py`` traces it)."""
        return (
            "statuses",
            "status_history",
            "evidence",
            "people",
            "imported_evidence",
            "evidence_imports",
            "courses",
        )

    def __init__(self, db: sqlite_utils.Database, path: Path) -> None:
        self._db = db
        self._path = path

    def upsert(self, rows: Iterable[dict[str, Any]], run_id: int, seen_on: date) -> int:
        """rows: dicts with the people columns (user_id, username, ...); returns rows written."""
        count = 0
        for batch in batched(rows):
            for row in batch:
                row["run_id"] = run_id
                row["seen_on"] = seen_on.isoformat()
                row.setdefault("email", None)  # kept only when [privacy] personal_fields allows it
            self._db.conn.executemany(_UPSERT, batch)
            count += len(batch)
        return count

    def empty_fields_not_kept(self, kept: Collection[str]) -> int:
        """Empty, for everyone the ledger knows, the personal fields ``kept`` (``[privacy]
        personal_fields``) leaves out: people Moodle deleted are never read again, so a sync's
        rewrite of the people it reads does not reach them. Returns the people changed."""
        emptied = [(c, e, w) for c, e, w in _PERSONAL_FIELDS if c not in kept]
        if not emptied:
            return 0
        return int(
            self._db.conn.execute(
                f"UPDATE people SET {', '.join(f'{c} = {e}' for c, e, _ in emptied)} "
                f"WHERE {' OR '.join(w for _, _, w in emptied)}"
            ).rowcount
        )

    def mark_deleted(self, user_ids: Iterable[int]) -> None:
        """Moodle no longer knows them: inactive here, their history kept."""
        self._db.conn.executemany(
            "UPDATE people SET active = 0, deleted = 1 WHERE user_id = ?", [(u,) for u in user_ids]
        )

    def rows(self, departments: Collection[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every person, by user id (the evaluation's stream); or those placed in ``departments``."""
        cursor = (
            self._db.execute("SELECT * FROM people ORDER BY user_id")
            if departments is None
            else self._db.execute(
                "SELECT * FROM people WHERE department_id IN (SELECT value FROM json_each(?)) "
                "ORDER BY user_id",
                [json.dumps(sorted(departments))],
            )
        )
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row, strict=True))

    def by_username(self, username: str) -> dict[str, Any] | None:
        """The person with this username; a live account wins over deleted ones that had it."""
        rows = self._db.execute_returning_dicts(
            "SELECT * FROM people WHERE username = ? ORDER BY deleted, last_seen_run DESC", [username]
        )
        live = [r for r in rows if not r["deleted"]]
        if len(live) > 1:
            ids = ", ".join(str(r["user_id"]) for r in live)
            raise LedgerError(
                _("several people in the ledger have the username '{username}' (user ids {ids})").format(
                    username=username, ids=ids
                ),
                hint=_("the next full sync settles who holds it now"),
            )
        return rows[0] if rows else None

    def by_idnumber(self, idnumber: str) -> dict[str, Any] | None:
        """The person with this idnumber (HR's employee number); a live account wins."""
        rows = self._db.execute_returning_dicts(
            "SELECT * FROM people WHERE idnumber = ? ORDER BY deleted, last_seen_run DESC", [idnumber]
        )
        return rows[0] if rows else None

    def department_of(self, user_id: int) -> str | None:
        row = self._db.execute("SELECT department_id FROM people WHERE user_id = ?", [user_id]).fetchone()
        return None if row is None else row[0]

    def cohorts_of_present(self) -> dict[int, frozenset[str]]:
        """The cohorts the last read of each present person recorded (placement and scope read them)."""
        return {
            int(user_id): frozenset(json.loads(cohorts or "[]"))
            for user_id, cohorts in self._db.execute(
                "SELECT user_id, cohorts FROM people "
                "WHERE deleted = 0 AND cohorts IS NOT NULL AND cohorts != '[]'"
            )
        }

    def present_ids(self) -> set[int]:
        """People not (yet) known to be deleted in Moodle."""
        return {r[0] for r in self._db.execute("SELECT user_id FROM people WHERE deleted = 0")}
