"""The ledger as a file: its path for read-only opens, schema-version checks, private modes, and
SQLite failures turned into one line a person can act on."""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path

from connector.errors import LedgerError
from connector.i18n import _
from connector.ledger.backup import group_id
from connector.ledger.migrations import SCHEMA_VERSION


def readonly_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.absolute())) + "?mode=ro"


def check_version(path: Path, version: int, *, new_ok: bool = False) -> None:
    if version < 0:
        raise LedgerError(
            _("the ledger {path} is damaged (schema version {version})").format(path=path, version=version),
            hint=_("restore the last backup of the ledger; keep the damaged file for inspection"),
        )
    if version > SCHEMA_VERSION:
        raise LedgerError(
            _(
                "the ledger {path} has schema version {version}, newer than this connector "
                "knows ({schema_version})"
            ).format(path=path, version=version, schema_version=SCHEMA_VERSION),
            hint=_("upgrade the connector"),
        )
    if version == 0 and not new_ok:
        raise LedgerError(
            _("{path} is not a connector ledger (it has no schema)").format(path=path),
            hint=_("check --ledger / [ledger] path; `connector sync` creates a ledger"),
        )


def create_private_file(path: Path, group: str | None = None) -> None:
    """Create the ledger file with its final mode before SQLite touches it (it holds personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise LedgerError(
            _("cannot create the ledger {path}: {strerror}").format(path=path, strerror=exc.strerror),
            hint=_("check that the directory exists and is writable"),
        ) from exc
    os.close(fd)
    enforce_modes(path, group)  # also in case a umask or ACL widened it


def enforce_modes(path: Path, group: str | None) -> None:
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
                    _("cannot give {file} to group '{group}' with mode {mode:o}").format(
                        file=file, group=group, mode=mode
                    ),
                    hint=_(
                        "the connector's user must own it and be a member of '{group}' "
                        "(usermod -aG {group} USER; in the systemd unit: "
                        "SupplementaryGroups={group})"
                    ).format(group=group),
                ) from None
            raise LedgerError(
                _("cannot set {file} to mode {mode:o}: it holds personal data").format(file=file, mode=mode),
                hint=_("run the connector as the user who owns the ledger"),
            ) from None


def ledger_error(exc: sqlite3.Error | UnicodeDecodeError, path: Path | None) -> LedgerError:
    """An SQLite failure as one line a person can act on (disk full, read-only, locked, damaged).

    A UnicodeDecodeError is SQLite handing Python bytes that are not text: a damaged page."""
    where = _("the ledger {path}").format(path=path) if path else _("the ledger")
    if isinstance(exc, UnicodeDecodeError) or "decode" in str(exc):
        text = "a text value in it is not valid UTF-8"
    else:  # a damaged schema can put raw bytes into SQLite's message: never print them
        text = "".join(c if c.isprintable() else "?" for c in str(exc))[:120]
    lowered = text.lower()
    if "disk is full" in lowered or "disk full" in lowered:
        return LedgerError(
            _("{where} cannot be written: the disk is full").format(where=where),
            hint=_("free space on its filesystem and run again; the previous state is intact"),
        )
    if "readonly" in lowered or "read-only" in lowered:
        return LedgerError(
            _("{where} is read-only to this user").format(where=where),
            hint=_(
                "the connector's user must be able to write the ledger, its -wal and -shm "
                "files and their directory; check permissions and the mount"
            ),
        )
    if "locked" in lowered or "busy" in lowered:
        return LedgerError(
            _("{where} is locked by another program").format(where=where),
            hint=_(
                "a program holds a write lock on it (an sqlite3 shell, a copy tool?); close it and run again"
            ),
        )
    if any(word in lowered for word in ("malformed", "not a database", "corrupt", "utf-8")):
        return LedgerError(
            _("{where} is damaged ({text})").format(where=where, text=text),
            hint=_("restore the last backup of the ledger; keep the damaged file for inspection"),
        )
    return LedgerError(
        _("{where} cannot be used: {text}").format(where=where, text=text),
        hint=_("check the file, its permissions and the free space on its filesystem"),
    )
