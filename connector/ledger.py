"""The SQLite ledger: evidence, people, statuses and their history, sync runs.

The ledger is the connector's memory and its proof. Three rules shape it:

* Evidence is append-only. A completion seen once keeps its row (first and last seen, by which
  run) even after Moodle forgets it; a full sync only marks it ``gone_since_run``.
* A sync run writes inside one transaction (``Ledger.transaction``) that also records its outcome
  (``finish_run`` joins an open transaction); readers in other processes keep seeing the previous
  state (WAL) until it commits. The run's row is started in its own small transaction, so a failed
  run is recorded as failed and a killed one is found by the next run.
* Erasure is explicit, audited and lasting: erased people go on a suppression list keyed by an
  HMAC of their Moodle user id (``subject_key``), never by the id or the username.
* The file holds personal data: every open that writes sets it and its WAL/SHM files to mode 0600,
  or to 0640 and the readers' group of ``[ledger] group``. A writer leaves the file in
  rollback-journal mode when it closes: a reader who may not write the directory could not
  create the ``-shm`` file WAL mode needs, and can still open the file read-only.

Schema versions are kept in ``PRAGMA user_version``; ``MIGRATIONS[n]`` upgrades version n to n+1.
Only an open that writes upgrades, after a backup beside the ledger (``Ledger.open``); read-only
opens (``Ledger.open_readonly``) refuse an older schema and name the command that upgrades it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from connector.backup import BackupResult, copy_database, group_id, upgrade_backup_path
from connector.errors import LedgerError
from connector.moodle.records import Completion, Course

BATCH = 5000
log = logging.getLogger("connector.ledger")


def _v1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE sync_runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL,              -- running | ok | failed
            mode TEXT NOT NULL,                 -- full | incremental | recompute
            completion_path TEXT,
            as_of TEXT,
            counts TEXT,                        -- JSON
            error TEXT
        );
        CREATE TABLE courses (
            course_id INTEGER PRIMARY KEY,
            idnumber TEXT, shortname TEXT, fullname TEXT,
            visible INTEGER, completion_enabled INTEGER,
            first_seen_run INTEGER, last_seen_run INTEGER
        );
        CREATE TABLE people (
            user_id INTEGER PRIMARY KEY,
            username TEXT NOT NULL, idnumber TEXT, fullname TEXT,
            institution TEXT, department_text TEXT, position TEXT,
            cohorts TEXT,                       -- JSON list of cohort idnumbers
            department_id TEXT,                 -- NULL: unplaced
            placement_conflicts TEXT,           -- JSON list when two departments matched
            start_date TEXT,
            lastaccess INTEGER,
            active INTEGER NOT NULL DEFAULT 1,
            suspended INTEGER NOT NULL DEFAULT 0,
            deleted INTEGER NOT NULL DEFAULT 0,
            first_seen_run INTEGER, last_seen_run INTEGER, first_seen_on TEXT
        );
        CREATE INDEX people_username ON people(username);
        CREATE TABLE enrolments (
            course_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
            lastcourseaccess INTEGER,
            completed INTEGER,                  -- as last read from Moodle; NULL unknown
            checked_run INTEGER,                -- last run that read its completion
            checked_access INTEGER,             -- lastcourseaccess at that read
            first_seen_run INTEGER, last_seen_run INTEGER,
            present INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (course_id, user_id)
        );
        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL, course_id INTEGER NOT NULL,
            completed_at INTEGER NOT NULL,      -- UTC epoch seconds
            completed_minute INTEGER NOT NULL,  -- identity: the same completion read by two paths
            source TEXT NOT NULL, precision_s INTEGER NOT NULL,
            first_seen_run INTEGER NOT NULL, last_seen_run INTEGER NOT NULL,
            first_seen_at TEXT NOT NULL, last_seen_at TEXT NOT NULL,
            gone_since_run INTEGER,             -- set when a full sync no longer finds it
            UNIQUE (user_id, course_id, completed_minute)
        );
        CREATE INDEX evidence_user ON evidence(user_id);
        CREATE TABLE statuses (
            user_id INTEGER NOT NULL, requirement_id TEXT NOT NULL,
            status TEXT NOT NULL, valid_until TEXT, since TEXT, due TEXT,
            evidence_id INTEGER, completed_on TEXT, detail TEXT,
            as_of TEXT NOT NULL, run_id INTEGER NOT NULL,
            PRIMARY KEY (user_id, requirement_id)
        );
        CREATE TABLE status_history (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL, requirement_id TEXT NOT NULL,
            from_status TEXT, to_status TEXT NOT NULL,
            changed_on TEXT NOT NULL, run_id INTEGER NOT NULL
        );
        CREATE INDEX status_history_user ON status_history(user_id);
        CREATE TABLE rollups (
            run_id INTEGER NOT NULL, department_id TEXT NOT NULL, requirement_id TEXT NOT NULL,
            in_scope INTEGER, compliant INTEGER, expiring INTEGER, expired INTEGER,
            missing INTEGER, grace INTEGER, exempt INTEGER, holders INTEGER,
            share REAL, targets_met INTEGER, targets TEXT,
            PRIMARY KEY (run_id, department_id, requirement_id)
        );
        """
    )


def _v2(db: sqlite_utils.Database) -> None:
    # Per-stream bookmarks (Singer-style) and the audit trail of explicit erasures.
    db.executescript(
        """
        CREATE TABLE bookmarks (stream TEXT PRIMARY KEY, value TEXT NOT NULL, run_id INTEGER);
        CREATE TABLE erasures (
            id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, erased_at TEXT NOT NULL,
            reason TEXT NOT NULL, rows_removed INTEGER NOT NULL
        );
        """
    )


def _v3(db: sqlite_utils.Database) -> None:
    # Erasure that sticks: a per-ledger salt and the suppression list of erased people, keyed by an
    # HMAC of the Moodle user id so neither list names anyone; the erasure audit is re-keyed the same
    # way. History rows gain the reason a status ended without a successor ("dropped").
    salt = secrets.token_hex(32)
    db.executescript(
        """
        CREATE TABLE ledger_keys (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE suppressions (subject_key TEXT PRIMARY KEY, since TEXT NOT NULL, erasure_id INTEGER);
        ALTER TABLE status_history ADD COLUMN reason TEXT;
        CREATE TABLE erasures_v3 (
            id INTEGER PRIMARY KEY, subject_key TEXT NOT NULL, erased_at TEXT NOT NULL,
            reason TEXT NOT NULL, rows_removed INTEGER NOT NULL
        );
        """
    )
    db.execute("INSERT INTO ledger_keys (name, value) VALUES ('subject_salt', ?)", [salt])
    old = db.execute("SELECT id, user_id, erased_at, reason, rows_removed FROM erasures").fetchall()
    db.conn.executemany(
        "INSERT INTO erasures_v3 VALUES (?, ?, ?, ?, ?)",
        [(i, subject_key(salt, u), at, why, n) for i, u, at, why, n in old],
    )
    db.executescript("DROP TABLE erasures; ALTER TABLE erasures_v3 RENAME TO erasures;")


def subject_key(salt: str, user_id: int) -> str:
    """A stable pseudonym for a Moodle user id within one ledger (HMAC-SHA256 with its salt)."""
    return hmac.new(bytes.fromhex(salt), str(int(user_id)).encode(), hashlib.sha256).hexdigest()


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class EvidenceCounts:
    new: int
    seen: int


class Ledger:
    """One open ledger file. Use ``Ledger.open(path)``; close it or use it as a context manager."""

    def __init__(self, db: sqlite_utils.Database, path: Path, *, writable: bool = True) -> None:
        self.db = db
        self.path = path
        self.writable = writable

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: Path,
        *,
        create: bool = True,
        group: str | None = None,
        on_upgrade: Callable[[str], None] | None = None,
    ) -> Ledger:
        """Open to write: create if asked, enforce the file modes, upgrade an older schema.

        ``group``: the readers' group (``[ledger] group``); ``on_upgrade`` receives the sentence
        naming the backup an upgrade made (default: a warning in the log).
        """
        path = Path(path)
        if not path.exists():
            if not create:
                raise LedgerError(
                    f"no ledger at {path}",
                    hint="run `connector sync` first, or pass --ledger / set [ledger] path",
                )
            _create_private_file(path, group)
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            db = sqlite_utils.Database(conn)
            ledger = cls(db, path)
            _enforce_modes(path, group)  # after WAL mode made the -wal/-shm files exist
            ledger._migrate(group, on_upgrade or log.warning)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            if any(word in str(exc).lower() for word in ("readonly", "locked", "busy", "full")):
                raise ledger_error(exc, path) from None  # an operational fault, said plainly
            raise LedgerError(
                f"cannot open the ledger {path}: {exc}",
                hint="is it a connector ledger? check the path and the file's permissions",
            ) from exc
        return ledger

    @classmethod
    def open_readonly(cls, path: Path, *, any_schema: bool = False) -> Ledger:
        """Open to read (status, export, person, runs, check...): never writes, never upgrades.

        Works for a member of the readers' group who may read the file but not write its directory.
        """
        path = Path(path)
        if not path.exists():
            raise LedgerError(
                f"no ledger at {path}",
                hint="run `connector sync` first, or pass --ledger / set [ledger] path",
            )
        try:
            conn = sqlite3.connect(
                _readonly_uri(path), uri=True, isolation_level=None, timeout=30, check_same_thread=False
            )
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            if "unable to open" not in str(exc) and "readonly" not in str(exc):
                raise ledger_error(exc, path) from None
            raise LedgerError(
                f"cannot read the ledger {path}: {exc}",
                hint="readers need read access to the ledger (and its -wal/-shm files); "
                "`connector upgrade`, run once as the connector's user, resets their modes",
            ) from None
        ledger = cls(sqlite_utils.Database(conn), path, writable=False)
        if not any_schema and version != SCHEMA_VERSION:
            ledger.close()
            _check_version(path, version)
            raise LedgerError(
                f"the ledger {path} has schema version {version}, this connector needs {SCHEMA_VERSION}: "
                "upgrade it with `connector upgrade` (it makes a backup first) or `connector sync`"
            )
        return ledger

    def _migrate(self, group: str | None, on_upgrade: Callable[[str], None]) -> None:
        """Upgrade to SCHEMA_VERSION in one transaction, after a backup of a ledger that held data."""
        backup: BackupResult | None = None
        version = self.schema_version
        _check_version(self.path, version, new_ok=True)
        if version == SCHEMA_VERSION:
            return  # the usual case: no write lock taken
        with self.transaction():  # read again under the write lock: another opener may have upgraded
            version = self.schema_version
            if version == SCHEMA_VERSION:
                return
            if version > 0:
                backup = self._backup_before_upgrade(version, group)
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](self.db)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if backup is not None:
            on_upgrade(
                f"upgraded the ledger {self.path} from schema version {version} to {SCHEMA_VERSION}; "
                f"the previous one is kept in {backup.path}"
            )

    def _backup_before_upgrade(self, version: int, group: str | None) -> BackupResult:
        # A second connection reads the snapshot this one's write lock keeps still (WAL lets it);
        # SQLite's backup cannot read through a connection that holds a write transaction.
        source = sqlite3.connect(_readonly_uri(self.path), uri=True)
        try:
            return copy_database(source, upgrade_backup_path(self.path, version), group=group)
        finally:
            source.close()

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        if self.writable:
            self._settle()
        self.db.conn.close()

    def _settle(self) -> None:
        """Leave the file in rollback-journal mode: WAL readers need a -shm file, which a reader
        without write access to the directory cannot create once the last writer removed it."""
        conn = self.db.conn
        if conn.in_transaction:
            return
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.Error:
            pass  # another connection still uses the file; the last writer to close settles it

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE .. COMMIT; ROLLBACK on any exception (KeyboardInterrupt included)."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- sync runs --------------------------------------------------------------------------------
    def start_run(self, mode: str, as_of: date) -> int:
        with self.transaction():
            cursor = self.db.execute(
                "INSERT INTO sync_runs (started_at, outcome, mode, as_of) VALUES (?, 'running', ?, ?)",
                [utc_now(), mode, as_of.isoformat()],
            )
            return int(cursor.lastrowid)  # type: ignore[arg-type]

    def finish_run(
        self,
        run_id: int,
        outcome: str,
        *,
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
            utc_now(),
            outcome,
            json.dumps(counts or {}, sort_keys=True),
            completion_path,
            error,
            run_id,
        ]
        if self.db.conn.in_transaction:
            self.db.execute(sql, params)
            return
        with self.transaction():
            self.db.execute(sql, params)

    def fail_stale_runs(self) -> int:
        """Runs still 'running' when the lock is free were killed: record them as failed."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE sync_runs SET outcome = 'failed', finished_at = ?, "
                "error = 'interrupted: the process ended before the run finished (killed or crashed)' "
                "WHERE outcome = 'running'",
                [utc_now()],
            )
            return cursor.rowcount

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        rows = self.db.execute_returning_dicts("SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?", [limit])
        for row in rows:
            row["counts"] = json.loads(row["counts"]) if row["counts"] else {}
        return rows

    def last_run(self, outcome: str = "ok", mode: str | None = None) -> dict[str, Any] | None:
        sql = "SELECT * FROM sync_runs WHERE outcome = ?"
        params: list[Any] = [outcome]
        if mode:
            sql += " AND mode = ?"
            params.append(mode)
        rows = self.db.execute_returning_dicts(sql + " ORDER BY id DESC LIMIT 1", params)
        if not rows:
            return None
        rows[0]["counts"] = json.loads(rows[0]["counts"]) if rows[0]["counts"] else {}
        return rows[0]

    # -- bookmarks --------------------------------------------------------------------------------
    def bookmark(self, stream: str) -> str | None:
        row = self.db.execute("SELECT value FROM bookmarks WHERE stream = ?", [stream]).fetchone()
        return row[0] if row else None

    def set_bookmark(self, stream: str, value: str, run_id: int) -> None:
        self.db.execute(
            "INSERT INTO bookmarks (stream, value, run_id) VALUES (?, ?, ?) "
            "ON CONFLICT(stream) DO UPDATE SET value = excluded.value, run_id = excluded.run_id",
            [stream, value, run_id],
        )

    # -- courses ----------------------------------------------------------------------------------
    def upsert_courses(self, courses: Iterable[Course], run_id: int) -> None:
        self.db.conn.executemany(
            "INSERT INTO courses (course_id, idnumber, shortname, fullname, visible, completion_enabled,"
            " first_seen_run, last_seen_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(course_id) DO UPDATE SET idnumber = excluded.idnumber, "
            "shortname = excluded.shortname, fullname = excluded.fullname, visible = excluded.visible, "
            "completion_enabled = excluded.completion_enabled, last_seen_run = excluded.last_seen_run",
            [
                (
                    c.id,
                    c.idnumber,
                    c.shortname,
                    c.fullname,
                    int(c.visible),
                    int(c.completion_enabled),
                    run_id,
                    run_id,
                )
                for c in courses
            ],
        )

    def courses(self, *, latest_only: bool = False) -> list[Course]:
        """Courses as last seen, the most recently seen first (a re-created course with the same
        idnumber wins over the deleted one when mappings are resolved against this list).
        ``latest_only``: just the courses the most recent successful run listed."""
        where = " WHERE last_seen_run = (SELECT MAX(last_seen_run) FROM courses)" if latest_only else ""
        return [
            Course(
                id=r[0],
                idnumber=r[1] or "",
                shortname=r[2] or "",
                fullname=r[3] or "",
                visible=bool(r[4]),
                completion_enabled=bool(r[5]),
            )
            for r in self.db.execute(
                "SELECT course_id, idnumber, shortname, fullname, visible, completion_enabled "
                f"FROM courses{where} ORDER BY last_seen_run DESC, course_id"
            )
        ]

    # -- people -----------------------------------------------------------------------------------
    def upsert_people(self, rows: Iterable[dict[str, Any]], run_id: int, seen_on: date) -> int:
        """rows: dicts with the people columns (user_id, username, ...); returns rows written."""
        sql = (
            "INSERT INTO people (user_id, username, idnumber, fullname, institution, department_text, "
            "position, cohorts, department_id, placement_conflicts, start_date, lastaccess, active, "
            "suspended, deleted, first_seen_run, last_seen_run, first_seen_on) "
            "VALUES (:user_id, :username, :idnumber, :fullname, :institution, :department_text, "
            ":position, :cohorts, :department_id, :placement_conflicts, :start_date, :lastaccess, "
            ":active, :suspended, 0, :run_id, :run_id, :seen_on) "
            "ON CONFLICT(user_id) DO UPDATE SET username = excluded.username, "
            "idnumber = excluded.idnumber, fullname = excluded.fullname, "
            "institution = excluded.institution, department_text = excluded.department_text, "
            "position = excluded.position, cohorts = excluded.cohorts, "
            "department_id = excluded.department_id, placement_conflicts = excluded.placement_conflicts, "
            "start_date = COALESCE(excluded.start_date, people.start_date), "
            "lastaccess = excluded.lastaccess, active = excluded.active, "
            "suspended = excluded.suspended, deleted = 0, last_seen_run = excluded.last_seen_run"
        )
        count = 0
        for batch in _batched(rows, BATCH):
            for row in batch:
                row["run_id"] = run_id
                row["seen_on"] = seen_on.isoformat()
            self.db.conn.executemany(sql, batch)
            count += len(batch)
        return count

    def people_rows(self) -> Iterator[dict[str, Any]]:
        cursor = self.db.execute("SELECT * FROM people ORDER BY user_id")
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row))

    def person_by_username(self, username: str) -> dict[str, Any] | None:
        """The person with this username; a live account wins over deleted ones that had it."""
        rows = self.db.execute_returning_dicts(
            "SELECT * FROM people WHERE username = ? ORDER BY deleted, last_seen_run DESC", [username]
        )
        live = [r for r in rows if not r["deleted"]]
        if len(live) > 1:
            ids = ", ".join(str(r["user_id"]) for r in live)
            raise LedgerError(
                f"several people in the ledger have the username '{username}' (user ids {ids})",
                hint="the next full sync settles who holds it now",
            )
        return rows[0] if rows else None

    def present_user_ids(self) -> set[int]:
        """People not (yet) known to be deleted in Moodle."""
        return {r[0] for r in self.db.execute("SELECT user_id FROM people WHERE deleted = 0")}

    # -- enrolments -------------------------------------------------------------------------------
    def enrolment_state(self) -> dict[tuple[int, int], tuple[int | None, int | None, int | None]]:
        """(course_id, user_id) -> (lastcourseaccess, completed, checked_access) as last recorded."""
        return {
            (r[0], r[1]): (r[2], r[3], r[4])
            for r in self.db.execute(
                "SELECT course_id, user_id, lastcourseaccess, completed, checked_access FROM enrolments"
            )
        }

    def upsert_enrolments(self, rows: Iterable[tuple[int, int, int | None]], run_id: int) -> None:
        """rows: (course_id, user_id, lastcourseaccess) seen by this run."""
        for batch in _batched(rows, BATCH):
            self.db.conn.executemany(
                "INSERT INTO enrolments (course_id, user_id, lastcourseaccess, first_seen_run, last_seen_run,"
                " present) VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT(course_id, user_id) DO UPDATE SET "
                "lastcourseaccess = excluded.lastcourseaccess, last_seen_run = excluded.last_seen_run, "
                "present = 1",
                [(c, u, a, run_id, run_id) for c, u, a in batch],
            )

    def record_checks(self, rows: Iterable[tuple[int, int, bool | None, int | None]], run_id: int) -> None:
        """rows: (course_id, user_id, completed, lastcourseaccess at the check)."""
        for batch in _batched(rows, BATCH):
            self.db.conn.executemany(
                "UPDATE enrolments SET completed = ?, checked_run = ?, checked_access = ? "
                "WHERE course_id = ? AND user_id = ?",
                [(None if done is None else int(done), run_id, access, c, u) for c, u, done, access in batch],
            )

    def mark_enrolments_gone(self, course_ids: Sequence[int], run_id: int) -> int:
        total = 0
        for course_id in course_ids:
            total += self.db.execute(
                "UPDATE enrolments SET present = 0 WHERE course_id = ? AND last_seen_run < ?",
                [course_id, run_id],
            ).rowcount
        return total

    # -- evidence ---------------------------------------------------------------------------------
    def record_evidence(self, completions: Iterable[Completion], run_id: int) -> EvidenceCounts:
        """Append new completions and refresh last-seen of known ones; returns new/seen counts.

        A completion read by the report (minute precision) and by a status call (second precision)
        is the same evidence: identity is (user, course, minute); the more precise time wins.
        """
        now = utc_now()
        before = self._count("evidence")
        seen = 0
        sql = (
            "INSERT INTO evidence (user_id, course_id, completed_at, completed_minute, source, precision_s,"
            " first_seen_run, last_seen_run, first_seen_at, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(user_id, course_id, completed_minute) DO UPDATE SET "
            "last_seen_run = excluded.last_seen_run, last_seen_at = excluded.last_seen_at, "
            "gone_since_run = NULL, "
            "completed_at = CASE WHEN excluded.precision_s < evidence.precision_s "
            "  THEN excluded.completed_at ELSE evidence.completed_at END, "
            "source = CASE WHEN excluded.precision_s < evidence.precision_s "
            "  THEN excluded.source ELSE evidence.source END, "
            "precision_s = MIN(excluded.precision_s, evidence.precision_s)"
        )
        for batch in _batched(completions, BATCH):
            self.db.conn.executemany(
                sql,
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
                        now,
                        now,
                    )
                    for c in batch
                ],
            )
            seen += len(batch)
        new = self._count("evidence") - before
        return EvidenceCounts(new=new, seen=seen - new)

    def mark_evidence_gone(self, course_ids: Sequence[int], run_id: int) -> int:
        """After a full read of these courses: evidence Moodle no longer has is marked, never deleted."""
        total = 0
        for course_id in course_ids:
            total += self.db.execute(
                "UPDATE evidence SET gone_since_run = ? WHERE course_id = ? AND last_seen_run < ? "
                "AND gone_since_run IS NULL",
                [run_id, course_id, run_id],
            ).rowcount
        return total

    def evidence_by_user(self) -> Iterator[tuple[int, list[tuple[int, Completion]]]]:
        """(user_id, [(evidence_id, Completion), ...]) for every user with evidence, by user id."""
        cursor = self.db.execute(
            "SELECT id, user_id, course_id, completed_at, source, precision_s FROM evidence "
            "ORDER BY user_id, completed_at"
        )
        current: int | None = None
        bucket: list[tuple[int, Completion]] = []
        for eid, user_id, course_id, at, source, precision in cursor:
            if user_id != current:
                if current is not None:
                    yield current, bucket
                current, bucket = user_id, []
            bucket.append((eid, Completion(user_id, course_id, at, source, precision)))
        if current is not None:
            yield current, bucket

    def evidence_for(self, user_id: int) -> list[dict[str, Any]]:
        return self.db.execute_returning_dicts(
            "SELECT e.*, c.idnumber AS course_idnumber, c.fullname AS course_name FROM evidence e "
            "LEFT JOIN courses c ON c.course_id = e.course_id WHERE e.user_id = ? "
            "ORDER BY e.completed_at",
            [user_id],
        )

    # -- statuses ---------------------------------------------------------------------------------
    def write_statuses(self, rows: Iterable[tuple[Any, ...]], run_id: int, as_of: date) -> int:
        """Replace current statuses; append a history row for every change (a status that ends
        without a successor gets ``to_status = 'dropped'`` and a reason). Returns changes.

        rows: (user_id, requirement_id, status, valid_until, since, due, evidence_id, completed_on,
        detail). Staged in a temp table so that comparison happens in SQL, not in Python memory.
        """
        conn = self.db.conn
        conn.execute("DROP TABLE IF EXISTS temp.new_statuses")
        conn.execute(
            "CREATE TEMP TABLE new_statuses (user_id INTEGER, requirement_id TEXT, status TEXT,"
            " valid_until TEXT, since TEXT, due TEXT, evidence_id INTEGER, completed_on TEXT,"
            " detail TEXT, PRIMARY KEY (user_id, requirement_id)) WITHOUT ROWID"
        )
        for batch in _batched(rows, BATCH * 4):
            conn.executemany("INSERT INTO temp.new_statuses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
        changed = conn.execute(
            "INSERT INTO status_history (user_id, requirement_id, from_status, to_status, changed_on, run_id) "
            "SELECT n.user_id, n.requirement_id, s.status, n.status, ?, ? FROM temp.new_statuses n "
            "LEFT JOIN statuses s ON s.user_id = n.user_id AND s.requirement_id = n.requirement_id "
            "WHERE s.status IS NULL OR s.status != n.status",
            [as_of.isoformat(), run_id],
        ).rowcount
        # statuses that end without a successor get a history row saying why
        changed += conn.execute(
            "INSERT INTO status_history (user_id, requirement_id, from_status, to_status, changed_on,"
            " run_id, reason) SELECT s.user_id, s.requirement_id, s.status, 'dropped', ?, ?, "
            "CASE WHEN s.requirement_id IN (SELECT requirement_id FROM temp.new_statuses) "
            "THEN 'person no longer evaluated' ELSE 'requirement removed from the mappings' END "
            "FROM statuses s WHERE NOT EXISTS (SELECT 1 FROM temp.new_statuses n "
            "WHERE n.user_id = s.user_id AND n.requirement_id = s.requirement_id)",
            [as_of.isoformat(), run_id],
        ).rowcount
        conn.execute("DELETE FROM statuses")
        conn.execute(
            "INSERT INTO statuses (user_id, requirement_id, status, valid_until, since, due, evidence_id,"
            " completed_on, detail, as_of, run_id) SELECT user_id, requirement_id, status, valid_until,"
            " since, due, evidence_id, completed_on, detail, ?, ? FROM temp.new_statuses",
            [as_of.isoformat(), run_id],
        )
        conn.execute("DROP TABLE temp.new_statuses")
        return changed

    def statuses_for(self, user_id: int) -> list[dict[str, Any]]:
        return self.db.execute_returning_dicts(
            "SELECT * FROM statuses WHERE user_id = ? ORDER BY requirement_id", [user_id]
        )

    def history_for(self, user_id: int) -> list[dict[str, Any]]:
        return self.db.execute_returning_dicts(
            "SELECT * FROM status_history WHERE user_id = ? ORDER BY id", [user_id]
        )

    def write_rollups(self, rows: Iterable[dict[str, Any]], run_id: int) -> None:
        self.db.conn.executemany(
            "INSERT OR REPLACE INTO rollups (run_id, department_id, requirement_id, in_scope, compliant,"
            " expiring, expired, missing, grace, exempt, holders, share, targets_met, targets) VALUES "
            "(:run_id, :department_id, :requirement_id, :in_scope, :compliant, :expiring, :expired,"
            " :missing, :grace, :exempt, :holders, :share, :targets_met, :targets)",
            [dict(row, run_id=run_id) for row in rows],
        )

    def rollups(self, run_id: int) -> list[dict[str, Any]]:
        return self.db.execute_returning_dicts(
            "SELECT * FROM rollups WHERE run_id = ? ORDER BY department_id, requirement_id", [run_id]
        )

    def requirements_with_statuses(self) -> dict[str, int]:
        """requirement id -> how many people hold a current status for it."""
        return {
            r: n
            for r, n in self.db.execute(
                "SELECT requirement_id, COUNT(*) FROM statuses GROUP BY requirement_id"
            )
        }

    def evidence_per_course(self) -> dict[int, int]:
        """course id -> completions on record (gone from Moodle or not)."""
        return {
            c: n for c, n in self.db.execute("SELECT course_id, COUNT(*) FROM evidence GROUP BY course_id")
        }

    def quick_check(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check``: [] when the file is sound, else what it found (a few lines)."""
        found = [
            line.strip()
            for row in self.db.execute("PRAGMA quick_check(5)")
            for line in str(row[0]).splitlines()
            if line.strip() and not line.startswith("***")
        ]
        return [] if found == ["ok"] else found

    def require_sound(self) -> None:
        """Raise a LedgerError when ``quick_check`` finds damage: SQLite pages carry no checksum,
        so a damaged page can otherwise be read as wrong numbers without any error."""
        damage = self.quick_check()
        if damage:
            more = f" (and {len(damage) - 1} more problems)" if len(damage) > 1 else ""
            raise LedgerError(
                f"the ledger {self.path} is damaged: {damage[0]}{more}",
                hint="restore the last backup of the ledger and keep the damaged file for inspection",
            )

    # -- erasure ----------------------------------------------------------------------------------
    def subject_key(self, user_id: int) -> str:
        """The pseudonym the suppression list and the erasure audit use for a Moodle user id."""
        return subject_key(self._salt(), user_id)

    def _salt(self) -> str:
        row = self.db.execute("SELECT value FROM ledger_keys WHERE name = 'subject_salt'").fetchone()
        if row is None:
            raise LedgerError(
                f"the ledger {self.path} has no subject salt (ledger_keys): it was altered by hand",
                hint="restore it from a backup",
            )
        return str(row[0])

    def suppressed_among(self, user_ids: Iterable[int]) -> set[int]:
        """Which of these Moodle user ids were erased and are kept out of syncs."""
        keys = {r[0] for r in self.db.execute("SELECT subject_key FROM suppressions")}
        if not keys:
            return set()
        salt = self._salt()
        return {u for u in user_ids if subject_key(salt, u) in keys}

    def erase_person(self, user_id: int, reason: str) -> int:
        """The one way personal data leaves the ledger: explicit, audited in ``erasures`` (by
        pseudonym), and lasting: the person goes on the suppression list so no sync brings them
        back. Joins an open transaction (so a caller can recompute roll-ups in the same one)."""
        if not self.db.conn.in_transaction:
            with self.transaction():
                return self.erase_person(user_id, reason)
        key = self.subject_key(user_id)
        removed = 0
        for table in ("evidence", "statuses", "status_history", "enrolments", "people"):
            removed += self.db.execute(f"DELETE FROM {table} WHERE user_id = ?", [user_id]).rowcount
        cursor = self.db.execute(
            "INSERT INTO erasures (subject_key, erased_at, reason, rows_removed) VALUES (?, ?, ?, ?)",
            [key, utc_now(), reason, removed],
        )
        self.db.execute(
            "INSERT INTO suppressions (subject_key, since, erasure_id) VALUES (?, ?, ?) "
            "ON CONFLICT(subject_key) DO UPDATE SET erasure_id = excluded.erasure_id",
            [key, utc_now(), cursor.lastrowid],
        )
        return removed

    def unsuppress(self, user_id: int) -> bool:
        """Let an erased person back into later syncs; False when they were not held back."""
        with self.transaction():
            return (
                self.db.execute(
                    "DELETE FROM suppressions WHERE subject_key = ?", [self.subject_key(user_id)]
                ).rowcount
                > 0
            )

    def replace_rollups(
        self, run_id: int, department_ids: Iterable[str], rows: Iterable[dict[str, Any]]
    ) -> None:
        """Swap the roll-ups of these departments in a run for recomputed ones."""
        departments = sorted(set(department_ids))
        self.db.conn.executemany(
            "DELETE FROM rollups WHERE run_id = ? AND department_id = ?", [(run_id, d) for d in departments]
        )
        self.write_rollups([r for r in rows if r["department_id"] in departments], run_id)

    # -- helpers ----------------------------------------------------------------------------------
    def _count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _readonly_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"


def _check_version(path: Path, version: int, *, new_ok: bool = False) -> None:
    if version < 0:
        raise LedgerError(
            f"the ledger {path} is damaged (schema version {version})",
            hint="restore the last backup of the ledger; keep the damaged file for inspection",
        )
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger {path} has schema version {version}, newer than this connector "
            f"knows ({SCHEMA_VERSION})",
            hint="upgrade the connector",
        )
    if version == 0 and not new_ok:
        raise LedgerError(
            f"{path} is not a connector ledger (it has no schema)",
            hint="check --ledger / [ledger] path; `connector sync` creates a ledger",
        )


def _create_private_file(path: Path, group: str | None = None) -> None:
    """Create the ledger file with its final mode before SQLite touches it (it holds personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise LedgerError(
            f"cannot create the ledger {path}: {exc.strerror}",
            hint="check that the directory exists and is writable",
        ) from exc
    os.close(fd)
    _enforce_modes(path, group)  # also in case a umask or ACL widened it


def _enforce_modes(path: Path, group: str | None) -> None:
    """The ledger and its -wal/-shm: 0600, or 0640 owned by the readers' group. Only the owner's
    own bits are kept as they are (a ledger its owner made read-only stays read-only)."""
    gid = group_id(group) if group else -1
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = file.stat()
        except FileNotFoundError:
            continue
        mode = info.st_mode & 0o600 | (0o040 if group else 0)
        try:
            if gid != -1 and info.st_gid != gid:
                os.chown(file, -1, gid)
            if info.st_mode & 0o777 != mode:
                os.chmod(file, mode)
        except PermissionError:
            if gid != -1:
                raise LedgerError(
                    f"cannot give {file} to group '{group}' with mode {mode:o}",
                    hint=f"the connector's user must own it and be a member of '{group}' "
                    f"(usermod -aG {group} USER; in the systemd unit: SupplementaryGroups={group})",
                ) from None
            raise LedgerError(
                f"cannot set {file} to mode {mode:o}: it holds personal data",
                hint="run the connector as the user who owns the ledger",
            ) from None


def ledger_error(exc: sqlite3.Error | UnicodeDecodeError, path: Path | None) -> LedgerError:
    """An SQLite failure as one line a person can act on (disk full, read-only, locked, damaged).

    A UnicodeDecodeError is SQLite handing Python bytes that are not text: a damaged page."""
    where = f"the ledger {path}" if path else "the ledger"
    if isinstance(exc, UnicodeDecodeError) or "decode" in str(exc):
        text = "a text value in it is not valid UTF-8"
    else:  # a damaged schema can put raw bytes into SQLite's message: never print them
        text = "".join(c if c.isprintable() else "?" for c in str(exc))[:120]
    lowered = text.lower()
    if "disk is full" in lowered or "disk full" in lowered:
        return LedgerError(
            f"{where} cannot be written: the disk is full",
            hint="free space on its filesystem and run again; the previous state is intact",
        )
    if "readonly" in lowered or "read-only" in lowered:
        return LedgerError(
            f"{where} is read-only to this user",
            hint="the connector's user must be able to write the ledger, its -wal and -shm "
            "files and their directory; check permissions and the mount",
        )
    if "locked" in lowered or "busy" in lowered:
        return LedgerError(
            f"{where} is locked by another program",
            hint="a program holds a write lock on it (an sqlite3 shell, a copy tool?); "
            "close it and run again",
        )
    if any(word in lowered for word in ("malformed", "not a database", "corrupt", "utf-8")):
        return LedgerError(
            f"{where} is damaged ({text})",
            hint="restore the last backup of the ledger; keep the damaged file for inspection",
        )
    return LedgerError(
        f"{where} cannot be used: {text}",
        hint="check the file, its permissions and the free space on its filesystem",
    )


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
