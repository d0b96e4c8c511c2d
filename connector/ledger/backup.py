"""Consistent copies of the ledger, safe while a sync runs.

A plain ``cp`` of the SQLite file is not a backup: committed transactions may still sit in the
``-wal`` file, and a copy taken while a checkpoint writes pages back is torn. SQLite's online
backup API copies every page as one consistent snapshot through a read transaction instead; the
copy is then checked with ``PRAGMA integrity_check`` before it takes the target's name, and it is
a single self-contained file (rollback-journal mode, no ``-wal`` beside it).

The copy holds the same personal data as the ledger, so it gets the ledger's mode: 0600, or 0640
for the configured readers' group.
"""

from __future__ import annotations

import grp
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from connector.errors import LedgerError
from connector.i18n import _


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    schema_version: int


def file_mode(group: str | None) -> int:
    """0600, or 0640 when a readers' group is configured."""
    return 0o640 if group else 0o600


def group_id(group: str) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise LedgerError(
            _("there is no group '{group}' on this machine").format(group=group),
            hint=_("create it (groupadd) or fix [ledger] group"),
        ) from None


def upgrade_backup_path(ledger: Path, version: int, now: datetime | None = None) -> Path:
    """Where a schema upgrade keeps the old ledger: beside it, named with its version and the time."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return ledger.with_name(f"{ledger.stem}.schema{version}-{stamp}{ledger.suffix}")


def copy_database(
    source: sqlite3.Connection, target: Path, *, group: str | None = None, force: bool = False
) -> BackupResult:
    """Copy the database behind ``source`` to ``target`` through the online backup API.

    Written to a private temporary file in the target's directory, checked, then renamed: an
    interrupted or failed backup never leaves a half-written file under the target's name.
    """
    target = Path(target)
    if target.is_symlink():
        raise LedgerError(
            _("{target} is a symbolic link; refusing to write through it").format(target=target),
            hint=_("name a regular file"),
        )
    if target.is_dir():
        raise LedgerError(
            _("{target} is a directory").format(target=target),
            hint=_("name the file to create, e.g. {value}").format(value=target / "compliance-backup.sqlite"),
        )
    if target.exists() and not force:
        raise LedgerError(
            _("{target} already exists; nothing was written").format(target=target),
            hint=_("choose a new name, or pass --force to replace it"),
        )
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise LedgerError(
            _("cannot create the backup in {parent}: {strerror}").format(
                parent=target.parent, strerror=exc.strerror
            ),
            hint=_("check that the directory exists and is writable"),
        ) from None
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, file_mode(group))
        if group:
            _chown_group(fd, tmp, group)
        os.close(fd)
        size, version = _copy_and_check(source, tmp)
        _publish(tmp, target, force)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BackupResult(target, size, version)


def _chown_group(fd: int, shown: Path, group: str) -> None:
    try:
        os.fchown(fd, -1, group_id(group))
    except PermissionError:
        raise LedgerError(
            _("cannot give {shown} to group '{group}': this user is not a member").format(
                shown=shown, group=group
            ),
            hint=_("add the connector's user to the group (usermod -aG {group} USER)").format(group=group),
        ) from None


def _copy_and_check(source: sqlite3.Connection, tmp: Path) -> tuple[int, int]:
    try:
        copy = sqlite3.connect(tmp, isolation_level=None)
        try:
            source.backup(copy)  # all pages in one step: one consistent snapshot
            copy.execute("PRAGMA journal_mode=DELETE")  # a single file, no -wal beside it
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
            version = int(copy.execute("PRAGMA user_version").fetchone()[0])
        finally:
            copy.close()
    except sqlite3.Error as exc:
        raise LedgerError(
            _("the backup failed: {exc}").format(exc=exc),
            hint=_("check free disk space; a damaged ledger fails here too"),
        ) from None
    if problems != ["ok"]:
        raise LedgerError(
            _("the copy failed its integrity check ({value}); nothing was written").format(value=problems[0]),
            hint=_("the ledger itself may be damaged: keep the last good backup"),
        )
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    return tmp.stat().st_size, version


def _publish(tmp: Path, target: Path, force: bool) -> None:
    try:
        if force:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if the name was taken meanwhile: never overwrite
            tmp.unlink()
    except FileExistsError:
        raise LedgerError(
            _("{target} already exists; nothing was written").format(target=target),
            hint=_("choose a new name, or pass --force to replace it"),
        ) from None
    except OSError as exc:
        raise LedgerError(
            _("cannot write {target}: {strerror}").format(target=target, strerror=exc.strerror)
        ) from None
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
