"""A sync run's reading, written as it arrives into the connection's TEMP schema, then moved.

Moodle is read with no write transaction open on the ledger, and a run lands whole or not at
all. Holding everything read in Python until the one write transaction made the memory of a
run grow with the site (every enrolment, completion and person). Instead each report page,
enrolment batch and people batch goes into TEMP tables as it arrives: they belong to this
connection only, take no lock on the ledger's own tables, spill to an unnamed file SQLite
deletes itself (``temp_store = FILE``), and vanish when the run ends or is killed. The run's
one write transaction then moves them into the ledger with set-based SQL (``apply``): real
INSERT / UPDATE statements on enrolments, evidence and people, so triggers on those tables see
every change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import date, datetime

import sqlite_utils

from connector.ledger._batch import batched, stamp
from connector.ledger.evidence import EVIDENCE_INSERT, ON_SAME_EVIDENCE
from connector.ledger.records import EvidenceCounts

# The people columns a sync writes, in the order ``add_people`` takes them.
PEOPLE_COLUMNS = (
    "user_id",
    "username",
    "idnumber",
    "fullname",
    "email",
    "institution",
    "department_text",
    "position",
    "cohorts",
    "department_id",
    "placement_conflicts",
    "start_date",
    "lastaccess",
    "active",
    "suspended",
)
_TABLES = ("stage_enrolments", "stage_checks", "stage_completions", "stage_people", "stage_deleted")
_CREATE = (
    """CREATE TEMP TABLE stage_enrolments (
    course_id INTEGER NOT NULL, user_id INTEGER NOT NULL, lastcourseaccess INTEGER,
    PRIMARY KEY (course_id, user_id)
) WITHOUT ROWID""",
    """CREATE TEMP TABLE stage_checks (
    course_id INTEGER NOT NULL, user_id INTEGER NOT NULL, completed INTEGER, access INTEGER,
    PRIMARY KEY (course_id, user_id)
) WITHOUT ROWID""",
    """CREATE TEMP TABLE stage_completions (
    user_id INTEGER NOT NULL, course_id INTEGER NOT NULL, completed_at INTEGER NOT NULL,
    source TEXT NOT NULL, precision_s INTEGER NOT NULL
)""",
    "CREATE INDEX temp.stage_completions_user ON stage_completions(user_id)",
    f"CREATE TEMP TABLE stage_people ({', '.join(PEOPLE_COLUMNS)}, PRIMARY KEY (user_id)) WITHOUT ROWID",
    "CREATE TEMP TABLE stage_deleted (user_id INTEGER PRIMARY KEY)",
)
_PEOPLE_CHANGED = " OR ".join(
    [f"people.{c} IS NOT excluded.{c}" for c in PEOPLE_COLUMNS if c not in ("user_id", "start_date")]
    + ["people.start_date IS NOT COALESCE(excluded.start_date, people.start_date)"]
)
_PEOPLE_UPDATE = ", ".join(
    f"{c} = excluded.{c}" for c in PEOPLE_COLUMNS if c not in ("user_id", "start_date")
)


def _temp_in_memory(conn: sqlite3.Connection) -> bool:
    """Whether this connection keeps TEMP tables in memory: set so, or built so by default."""
    setting = int(conn.execute("PRAGMA temp_store").fetchone()[0])
    built = {str(row[0]) for row in conn.execute("PRAGMA compile_options")}
    return setting == 2 or (setting == 0 and "TEMP_STORE=2" in built)


class Staging:
    """``ledger.staging``: ``begin`` before reading, ``add_*`` as things arrive, ``apply`` inside
    the run's transaction, ``end`` always (``begin`` also clears what a failed run left)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db

    def begin(self) -> None:
        conn = self._db.conn
        if _temp_in_memory(conn):  # RSS would grow with the site
            conn.execute("PRAGMA temp_store = FILE")  # (drops TEMP tables: none exist yet)
        self.end()
        for statement in _CREATE:  # one by one: executescript would commit an open transaction
            conn.execute(statement)

    def end(self) -> None:
        for table in _TABLES:
            self._db.conn.execute(f"DROP TABLE IF EXISTS temp.{table}")

    def clear_report(self) -> None:
        """Forget the enrolments, checks and completions staged (a report read again)."""
        for table in ("stage_enrolments", "stage_checks", "stage_completions"):
            self._db.conn.execute(f"DELETE FROM {table}")

    # -- staging (outside any ledger transaction) -------------------------------------------------
    def add_enrolments(self, rows: Iterable[tuple[int, int, int | None]]) -> None:
        """(course_id, user_id, lastcourseaccess); a pair seen again keeps its latest access."""
        for batch in batched(rows):
            self._db.conn.executemany(
                "INSERT INTO stage_enrolments VALUES (?, ?, ?) ON CONFLICT(course_id, user_id) "
                "DO UPDATE SET lastcourseaccess = excluded.lastcourseaccess",
                batch,
            )

    def add_checks(self, rows: Iterable[tuple[int, int, bool | None, int | None]]) -> None:
        """(course_id, user_id, completed, lastcourseaccess at the check)."""
        for batch in batched(rows):
            self._db.conn.executemany(
                "INSERT OR REPLACE INTO stage_checks VALUES (?, ?, ?, ?)",
                [(c, u, None if done is None else int(done), a) for c, u, done, a in batch],
            )

    def check_every_enrolment(self) -> None:
        """The report path reads every staged enrolment's completion (none is unknown after it)."""
        self._db.conn.execute(
            "INSERT OR REPLACE INTO stage_checks SELECT course_id, user_id, NULL, lastcourseaccess "
            "FROM stage_enrolments"
        )

    def add_completions(self, rows: Iterable[tuple[int, int, int, str, int]]) -> None:
        """(user_id, course_id, completed_at, source, precision_s), in the order read."""
        for batch in batched(rows):
            self._db.conn.executemany("INSERT INTO stage_completions VALUES (?, ?, ?, ?, ?)", batch)

    def add_people(self, rows: Iterable[tuple[object, ...]]) -> None:
        """Tuples in ``PEOPLE_COLUMNS`` order."""
        marks = ", ".join("?" for _ in PEOPLE_COLUMNS)
        for batch in batched(rows):
            self._db.conn.executemany(f"INSERT OR REPLACE INTO stage_people VALUES ({marks})", batch)

    def add_deleted(self, user_ids: Iterable[int]) -> None:
        self._db.conn.executemany("INSERT OR IGNORE INTO stage_deleted VALUES (?)", [(u,) for u in user_ids])

    # -- what was staged --------------------------------------------------------------------------
    def user_ids(self) -> Iterator[int]:
        """Every staged person's id, once each."""
        for (user_id,) in self._db.execute(
            "SELECT user_id FROM stage_enrolments UNION SELECT user_id FROM stage_completions "
            "UNION SELECT user_id FROM stage_people UNION SELECT user_id FROM stage_deleted"
        ):
            yield int(user_id)

    def drop_users(self, user_ids: Iterable[int]) -> None:
        """Keep these people out of everything staged (erased people)."""
        for batch in batched(user_ids, 500):
            marks = ", ".join("?" for _ in batch)
            for table in _TABLES:
                self._db.conn.execute(f"DELETE FROM {table} WHERE user_id IN ({marks})", batch)

    def latest_completion(self) -> int | None:
        """The latest completion time staged (None when none is)."""
        found = self._db.execute("SELECT MAX(completed_at) FROM stage_completions").fetchone()[0]
        return None if found is None else int(found)

    def people_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM stage_people").fetchone()[0])

    def enrolment_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM stage_enrolments").fetchone()[0])

    # -- moving into the ledger (inside the run's transaction) ------------------------------------
    def apply_enrolments(self, run_id: int, *, full: bool) -> None:
        """Staged enrolments upserted; their completion checks recorded. A full run marks every
        one seen (what it did not see is gone); an incremental one rewrites only rows whose values
        changed, so a night that finds nothing new writes none."""
        conn = self._db.conn
        conn.execute(
            "INSERT INTO enrolments (course_id, user_id, lastcourseaccess, first_seen_run, "
            "last_seen_run, present) SELECT course_id, user_id, lastcourseaccess, ?1, ?1, 1 "
            "FROM stage_enrolments WHERE true ON CONFLICT(course_id, user_id) DO UPDATE SET "
            "lastcourseaccess = excluded.lastcourseaccess, last_seen_run = excluded.last_seen_run, "
            "present = 1 WHERE ?2 OR enrolments.present = 0 "
            "OR enrolments.lastcourseaccess IS NOT excluded.lastcourseaccess",
            [run_id, full],
        )
        conn.execute(
            "UPDATE enrolments SET completed = s.completed, checked_run = ?, checked_access = s.access "
            # the unary + keeps stage_checks the outer loop: each staged check finds its row by key
            "FROM stage_checks s WHERE enrolments.course_id = +s.course_id "
            "AND enrolments.user_id = +s.user_id AND (enrolments.completed IS NOT s.completed "
            "OR enrolments.checked_access IS NOT s.access OR enrolments.checked_run IS NULL)",
            [run_id],
        )

    def apply_evidence(self, run_id: int, *, now: datetime, full: bool) -> EvidenceCounts:
        """Staged completions appended (new) or refreshed (seen again) as ``evidence.record`` does;
        an incremental run refreshes only evidence that comes back or gains precision."""
        seen_at = stamp(now)
        before = int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM evidence").fetchone()[0])
        seen = int(self._db.execute("SELECT COUNT(*) FROM stage_completions").fetchone()[0])
        self._db.conn.execute(
            EVIDENCE_INSERT
            + "SELECT user_id, course_id, completed_at, completed_at / 60, source, precision_s, "
            "?1, ?1, ?2, ?2 FROM stage_completions WHERE true ORDER BY rowid "
            + ON_SAME_EVIDENCE
            + "WHERE ?3 OR evidence.gone_since_run IS NOT NULL "
            "OR excluded.precision_s < evidence.precision_s",
            [run_id, seen_at, full],
        )
        new = int(self._db.execute("SELECT COUNT(*) FROM evidence WHERE id > ?", [before]).fetchone()[0])
        return EvidenceCounts(new=new, seen=seen - new)

    def apply_people(self, run_id: int, seen_on: date, *, full: bool) -> None:
        """Staged people upserted (an incremental run rewrites only people whose row changed);
        people Moodle no longer knows marked deleted (history kept)."""
        columns = ", ".join(PEOPLE_COLUMNS)
        self._db.conn.execute(
            f"INSERT INTO people ({columns}, deleted, first_seen_run, last_seen_run, first_seen_on) "
            f"SELECT {columns}, 0, ?1, ?1, ?2 FROM stage_people WHERE true "
            f"ON CONFLICT(user_id) DO UPDATE SET {_PEOPLE_UPDATE}, "
            "start_date = COALESCE(excluded.start_date, people.start_date), deleted = 0, "
            f"last_seen_run = excluded.last_seen_run WHERE ?3 OR people.deleted = 1 OR {_PEOPLE_CHANGED}",
            [run_id, seen_on.isoformat(), full],
        )
        self._db.conn.execute(
            "UPDATE people SET active = 0, deleted = 1 WHERE user_id IN (SELECT user_id FROM stage_deleted) "
            "AND NOT (active = 0 AND deleted = 1)"
        )
