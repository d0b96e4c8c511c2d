"""Helpers for the reliability suite: run the real CLI, and read a ledger the way a person checks it.

The central check is ``consistent``: whatever happened to a run, the ledger's current statuses
belong to its last successful run, and the file is sound.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from connector.cli import main
from tests.helpers import ANCHOR, Site

DATA_TABLES = (
    "courses",
    "people",
    "enrolments",
    "evidence",
    "statuses",
    "status_history",
    "rollups",
    "bookmarks",
    "suppressions",
)


def run_cli(site: Site, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(site.config_path), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def sync(site: Site, *args: str) -> tuple[int, str, str]:
    return run_cli(site, "sync", "--as-of", ANCHOR.isoformat(), *args)


def snapshot(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every data table (not sync_runs), in a stable order."""
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in DATA_TABLES
        }
    finally:
        conn.close()


def runs(path: Path) -> list[tuple[int, str, str | None]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, outcome, error FROM sync_runs ORDER BY id").fetchall()
    finally:
        conn.close()


def consistent(path: Path) -> None:
    """The file is sound and what `status` shows (the last ok run) is what `export` shows."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        last_ok = conn.execute("SELECT MAX(id) FROM sync_runs WHERE outcome = 'ok'").fetchone()[0]
        status_runs = {r[0] for r in conn.execute("SELECT DISTINCT run_id FROM statuses")}
        ok_runs = {r[0] for r in conn.execute("SELECT id FROM sync_runs WHERE outcome = 'ok'")}
        rollup_runs = {
            r[0] for r in conn.execute("SELECT DISTINCT run_id FROM rollups WHERE run_id > ?", [last_ok or 0])
        }
    finally:
        conn.close()
    # a sync writes only the statuses that changed: each row names the ok run that last decided it
    assert status_runs <= ok_runs, f"statuses of run(s) {status_runs - ok_runs}, which did not end ok"
    assert not rollup_runs, f"roll-ups of run(s) {rollup_runs} newer than the last ok run {last_ok}"
