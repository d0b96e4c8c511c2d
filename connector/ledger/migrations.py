"""Versioned schema upgrades: ``MIGRATIONS[n]`` upgrades version n to n+1.

The version lives in ``PRAGMA user_version``. ``Ledger.open`` runs the missing steps in one
transaction, after a backup of a ledger that held data; read-only opens never upgrade.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

import sqlite_utils

from connector.ledger import schema


def subject_key(salt: str, user_id: int) -> str:
    """A stable pseudonym for a Moodle user id within one ledger (HMAC-SHA256 with its salt)."""
    return hmac.new(bytes.fromhex(salt), str(int(user_id)).encode(), hashlib.sha256).hexdigest()


def _v1(db: sqlite_utils.Database) -> None:
    db.executescript(schema.V1)


def _v2(db: sqlite_utils.Database) -> None:
    db.executescript(schema.V2)


def _v3(db: sqlite_utils.Database) -> None:
    salt = secrets.token_hex(32)
    db.executescript(schema.V3)
    db.execute("INSERT INTO ledger_keys (name, value) VALUES ('subject_salt', ?)", [salt])
    old = db.execute("SELECT id, user_id, erased_at, reason, rows_removed FROM erasures").fetchall()
    db.conn.executemany(
        "INSERT INTO erasures_v3 VALUES (?, ?, ?, ?, ?)",
        [(i, subject_key(salt, u), at, why, n) for i, u, at, why, n in old],
    )
    db.executescript(schema.V3_SWAP)


def _v4(db: sqlite_utils.Database) -> None:
    db.executescript(schema.V4)


def _v5(db: sqlite_utils.Database) -> None:
    db.executescript(schema.V5)


def _v6(db: sqlite_utils.Database) -> None:
    db.executescript(schema.V6)


def _v7(db: sqlite_utils.Database) -> None:
    db.executescript(schema.V7)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def upgrade(db: sqlite_utils.Database, from_version: int) -> None:
    """Apply every step from ``from_version`` to SCHEMA_VERSION (inside the caller's transaction)."""
    for step in range(from_version, SCHEMA_VERSION):
        MIGRATIONS[step](db)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
