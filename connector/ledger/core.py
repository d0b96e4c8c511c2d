"""The SQLite ledger: evidence, people, statuses and their history, sync runs.

The ledger is the connector's memory and its proof. Three rules shape it:

* Evidence is append-only. A completion seen once keeps its row (first and last seen, by which
  run) even after Moodle forgets it; a full sync only marks it ``gone_since_run``.
* A sync run writes inside one transaction (``Ledger.transaction``) that also records its outcome
  (``ledger.runs.finish`` joins an open transaction); readers in other processes keep seeing the previous
  state (WAL) until it commits. The run's row is started in its own small transaction, so a failed
  run is recorded as failed and a killed one is found by the next run.
* Erasure is explicit, audited and lasting: erased people go on a suppression list keyed by an
  HMAC of their Moodle user id (``subject_key``), never by the id or the username.
* The file holds personal data: every open that writes sets it and its WAL/SHM files to mode 0600,
  or to 0640 and the readers' group of ``[ledger] group``. A writer leaves the file in
  rollback-journal mode when it closes: a reader who may not write the directory could not
  create the ``-shm`` file WAL mode needs, and can still open the file read-only.

Schema versions are kept in ``PRAGMA user_version``; ``migrations.MIGRATIONS[n]`` upgrades version
n to n+1.
Only an open that writes upgrades, after a backup beside the ledger (``Ledger.open``); read-only
opens (``Ledger.open_readonly``) refuse an older schema and name the command that upgrades it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from connector.errors import LedgerError
from connector.i18n import _
from connector.ledger import migrations
from connector.ledger.backup import BackupResult, copy_database, upgrade_backup_path
from connector.ledger.courses import Courses, Enrolments
from connector.ledger.erasure import Suppressions
from connector.ledger.evaluated import Evaluated
from connector.ledger.evidence import Evidence
from connector.ledger.files import (
    check_version,
    create_private_file,
    enforce_modes,
    ledger_error,
    readonly_uri,
)
from connector.ledger.imports import Imports
from connector.ledger.migrations import SCHEMA_VERSION
from connector.ledger.needs import Needs
from connector.ledger.people import People
from connector.ledger.queries import Queries
from connector.ledger.rollups import Rollups
from connector.ledger.runs import Bookmarks, Runs
from connector.ledger.soundness import READ_WAIT_S, BackgroundCheck, quick_check
from connector.ledger.staging import Staging
from connector.ledger.statuses import Statuses

log = logging.getLogger("connector.ledger")

# What a checkpoint leaves of the write-ahead log on disk (SQLite truncates it to this size).
WAL_KEEP_BYTES = 4 * 2**20


class Ledger:
    """One open ledger file. Use ``Ledger.open(path)``; close it or use it as a context manager."""

    def __init__(self, db: sqlite_utils.Database, path: Path, *, writable: bool = True) -> None:
        self.db = db
        self.path = path
        self.writable = writable
        # One object per concern, as sqlite-utils has one per table: ``ledger.runs.start(...)``.
        self.runs = Runs(db, self.transaction)
        self.bookmarks = Bookmarks(db)
        self.courses = Courses(db)
        self.enrolments = Enrolments(db)
        self.people = People(db, path)
        self.evidence = Evidence(db)
        self.imports = Imports(db, self.transaction)
        self.statuses = Statuses(db)
        self.rollups = Rollups(db)
        self.evaluated = Evaluated(db)
        self.suppressions = Suppressions(db, path, self.transaction)
        self.queries = Queries(db)
        self.needs = Needs(db)
        self.staging = Staging(db)
        self._check: BackgroundCheck | None = None
        self._checked: set[str] = set()  # tables quick_check found sound on this open
        self._whole_checked = False  # the whole file found sound on this open
        self._damage: BaseException | None = None  # what the check found or raised: no verdict of sound

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
                    _("no ledger at {path}").format(path=path),
                    hint=_("run `connector sync` first, or pass --ledger / set [ledger] path"),
                )
            create_private_file(path, group)
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_KEEP_BYTES}")
            conn.execute("PRAGMA foreign_keys=ON")
            db = sqlite_utils.Database(conn)
            ledger = cls(db, path)
            enforce_modes(path, group)  # after WAL mode made the -wal/-shm files exist
            ledger._migrate(group, on_upgrade or log.warning)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            if any(word in str(exc).lower() for word in ("readonly", "locked", "busy", "full")):
                raise ledger_error(exc, path) from None  # an operational fault, said plainly
            raise LedgerError(
                _("cannot open the ledger {path}: {exc}").format(path=path, exc=exc),
                hint=_("is it a connector ledger? check the path and the file's permissions"),
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
                _("no ledger at {path}").format(path=path),
                hint=_("run `connector sync` first, or pass --ledger / set [ledger] path"),
            )
        try:
            conn = sqlite3.connect(
                readonly_uri(path),
                uri=True,
                isolation_level=None,
                timeout=READ_WAIT_S,
                check_same_thread=False,
            )
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            if "unable to open" not in str(exc) and "readonly" not in str(exc):
                raise ledger_error(exc, path) from None
            raise LedgerError(
                _("cannot read the ledger {path}: {exc}").format(path=path, exc=exc),
                hint=_(
                    "readers need read access to the ledger (and its -wal/-shm files); "
                    "`connector upgrade`, run once as the connector's user, resets their modes"
                ),
            ) from None
        ledger = cls(sqlite_utils.Database(conn), path, writable=False)
        if not any_schema and version != SCHEMA_VERSION:
            ledger.close()
            check_version(path, version)
            raise LedgerError(
                _(
                    "the ledger {path} has schema version {version}, this connector needs "
                    "{schema_version}: upgrade it with `connector upgrade` (it makes a backup "
                    "first) or `connector sync`"
                ).format(path=path, version=version, schema_version=SCHEMA_VERSION)
            )
        return ledger

    def _migrate(self, group: str | None, on_upgrade: Callable[[str], None]) -> None:
        """Upgrade to SCHEMA_VERSION in one transaction, after a backup of a ledger that held data."""
        backup: BackupResult | None = None
        version = self.schema_version
        check_version(self.path, version, new_ok=True)
        if version == SCHEMA_VERSION:
            return  # the usual case: no write lock taken
        with self.transaction():  # read again under the write lock: another opener may have upgraded
            version = self.schema_version
            if version == SCHEMA_VERSION:
                return
            if version > 0:
                backup = self._backup_before_upgrade(version, group)
            migrations.upgrade(self.db, version)
        if backup is not None:
            on_upgrade(
                _(
                    "upgraded the ledger {path} from schema version {version} to {schema}; "
                    "the previous one is kept in {backup}"
                ).format(path=self.path, version=version, schema=SCHEMA_VERSION, backup=backup.path)
            )

    def _backup_before_upgrade(self, version: int, group: str | None) -> BackupResult:
        # A second connection reads the snapshot this one's write lock keeps still (WAL lets it);
        # SQLite's backup cannot read through a connection that holds a write transaction.
        source = sqlite3.connect(readonly_uri(self.path), uri=True)
        try:
            return copy_database(source, upgrade_backup_path(self.path, version), group=group)
        finally:
            source.close()

    @property
    def schema_version(self) -> int:
        return migrations.schema_version(self.db)

    def close(self) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None
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

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the file, whatever another process commits meanwhile (a
        deferred read transaction; inside an open transaction, that one)."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def checkpoint(self) -> None:
        """Fold the write-ahead log back into the file and truncate it, after a run committed:
        the log does not stay as large as the run's transaction until the next writer closes."""
        conn = self.db.conn
        waits = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        try:
            # never wait for a reader (an export of a million rows): the next writer folds it back
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            log.debug("checkpoint deferred: %s", exc)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(waits)}")

    def quick_check(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check``: [] when the file is sound, else what it found (a few lines)."""
        return quick_check(self.db.conn)

    def check_in_background(self, tables: Sequence[str]) -> None:
        """Start ``quick_check`` of these tables (the ones the command reads) on connections of
        their own; ``require_sound`` waits for the verdict. Called again, it adds the tables not
        checked yet to the running check, or starts one for them."""
        if self._damage is not None or self._whole_checked:
            return
        wanted = [t for t in dict.fromkeys(tables) if t not in self._checked]
        if self._check is not None:
            self._check.add(wanted)
        elif wanted:
            self._check = BackgroundCheck(self.path, wanted)

    def require_sound(self) -> None:
        """Raise a LedgerError when ``quick_check`` finds damage: SQLite pages carry no checksum,
        so a damaged page can otherwise be read as wrong numbers without any error. Waits for the
        check started in the background, if any; with none ever started, checks the whole file.
        A verdict holds for this open: damage found is raised again, never checked again."""
        if self._damage is not None:
            raise self._damage
        check, self._check = self._check, None
        if check is not None:
            try:
                damage = check.result()
            except sqlite3.Error as exc:  # too damaged to walk, or locked by another program
                self._damage = ledger_error(exc, self.path)
                raise self._damage from None
            except BaseException as exc:  # no verdict: never "sound" by asking again
                self._damage = exc
                raise
            self._checked.update(check.tables)
        elif self._checked or self._whole_checked:
            return
        else:
            damage = self.quick_check()
            self._whole_checked = not damage
        if damage:
            more = _(" (and {n} more problems)").format(n=len(damage) - 1) if len(damage) > 1 else ""
            self._damage = LedgerError(
                _("the ledger {path} is damaged: {value}{more}").format(
                    path=self.path, value=damage[0], more=more
                ),
                hint=_("restore the last backup of the ledger and keep the damaged file for inspection"),
            )
            raise self._damage

    def wait_for_writers(self, seconds: float) -> None:
        """How long a write waits for another writer's lock before failing with 'locked'."""
        self.db.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")

    def backup_to(self, target: Path, *, group: str | None = None, force: bool = False) -> BackupResult:
        """A consistent, checked, private copy of this ledger (``backup.copy_database``)."""
        return copy_database(self.db.conn, target, group=group, force=force)
