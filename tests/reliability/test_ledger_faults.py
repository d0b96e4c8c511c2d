"""Operational faults of the ledger file: each ends in one clear line and exit 1, never an
internal error, never exit 0 with a wrong answer; a failed run is recorded where the file can
still be written, and nothing else changes."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.ledger import Ledger
from tests.helpers import ANCHOR, REPO, Site
from tests.reliability.helpers import consistent, run_cli, runs, snapshot, sync

# Root ignores file modes; without these capabilities it is held to them like any other user.
NO_OVERRIDE = [
    "setpriv",
    "--bounding-set=-dac_override,-dac_read_search",
    "--inh-caps=-dac_override,-dac_read_search",
]


def _sync_held_to_file_modes(site: Site) -> subprocess.CompletedProcess[str]:
    prefix = NO_OVERRIDE if os.geteuid() == 0 else []
    if prefix and shutil.which("setpriv") is None:
        pytest.fail("running as root needs setpriv (util-linux) to be held to file modes")
    return subprocess.run(
        [
            *prefix,
            sys.executable,
            "-m",
            "connector.cli",
            "--config",
            str(site.config_path),
            "sync",
            "--as-of",
            ANCHOR.isoformat(),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=120,
    )


def _answer(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return (
            conn.execute(
                "SELECT user_id, requirement_id, status, valid_until FROM statuses ORDER BY 1, 2"
            ).fetchall(),
            conn.execute(
                "SELECT department_id, requirement_id, in_scope, compliant, missing, share FROM rollups "
                "WHERE run_id = (SELECT MAX(id) FROM sync_runs WHERE outcome = 'ok') ORDER BY 1, 2"
            ).fetchall(),
        )
    finally:
        conn.close()


def test_a_full_disk_is_one_line_and_the_run_is_recorded(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = Ledger.open.__func__  # type: ignore[attr-defined]

    def open_on_a_full_disk(cls: type[Ledger], path: Path, *, create: bool = True, **options: Any) -> Ledger:
        ledger = real_open(cls, path, create=create, **options)
        pages = ledger.db.execute("PRAGMA page_count").fetchone()[0]
        ledger.db.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLITE_FULL, as on a full disk
        return ledger

    monkeypatch.setattr(Ledger, "open", classmethod(open_on_a_full_disk))
    code, out, err = sync(demo_site)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"error: the ledger {demo_site.ledger_path} cannot be written: the disk is full",
        "  hint: free space on its filesystem and run again; the previous state is intact",
    ]
    monkeypatch.undo()
    assert runs(demo_site.ledger_path)[-1][1:] == ("failed", "OperationalError: database or disk is full")
    assert _answer(demo_site.ledger_path) == ([], [])
    consistent(demo_site.ledger_path)


@pytest.mark.slow
def test_a_read_only_ledger_is_one_line(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    before = snapshot(demo_site.ledger_path)
    demo_site.ledger_path.chmod(0o444)
    result = _sync_held_to_file_modes(demo_site)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"error: the ledger {demo_site.ledger_path} is read-only to this user",
        "  hint: the connector's user must be able to write the ledger, its -wal and -shm files and "
        "their directory; check permissions and the mount",
    ]
    demo_site.ledger_path.chmod(0o600)
    assert snapshot(demo_site.ledger_path) == before


@pytest.mark.slow
def test_a_read_only_directory_is_one_line(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    lock = demo_site.ledger_path.with_name("ledger.sqlite.lock")
    lock.unlink()
    demo_site.tmp.chmod(0o555)
    try:
        result = _sync_held_to_file_modes(demo_site)
    finally:
        demo_site.tmp.chmod(0o755)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"error: cannot create the sync lock {lock}: Permission denied",
        "  hint: the connector's user must be able to write the ledger's directory",
    ]


def test_a_ledger_locked_by_another_program_is_one_line(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sync(demo_site)[0] == 0
    before = snapshot(demo_site.ledger_path)
    monkeypatch.setattr("connector.sync.LEDGER_WAIT_S", 0.2)
    holder = sqlite3.connect(demo_site.ledger_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # e.g. an sqlite3 shell left in a transaction
    try:
        code, _, err = sync(demo_site)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 1
    assert err.splitlines() == [
        f"error: the ledger {demo_site.ledger_path} is locked by another program",
        "  hint: a program holds a write lock on it (an sqlite3 shell, a copy tool?); close it and run again",
    ]
    assert snapshot(demo_site.ledger_path) == before


def test_an_emptied_ledger_file_is_not_a_fresh_start(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    demo_site.ledger_path.write_bytes(b"")  # a failed copy, a truncation
    code, _, err = sync(demo_site)
    assert code == 1
    assert err.splitlines() == [
        f"error: the ledger {demo_site.ledger_path} is an empty file (0 bytes)",
        "  hint: restore the last backup of the ledger; on a new installation delete the empty file "
        "and run the sync again",
    ]
    assert demo_site.ledger_path.stat().st_size == 0


@pytest.fixture
def synced(demo_site: Site) -> Iterator[tuple[Site, Path, dict[str, Any]]]:
    """A synced ledger, a pristine copy of it, and what a clean second sync and `status` give."""
    assert sync(demo_site)[0] == 0
    pristine = demo_site.tmp / "pristine.sqlite"
    shutil.copy2(demo_site.ledger_path, pristine)
    before_status = run_cli(demo_site, "status", "--format", "json")[1]
    assert sync(demo_site)[0] == 0
    yield (
        demo_site,
        pristine,
        {
            "answer": _answer(demo_site.ledger_path),
            "status_before": before_status,
            "status_after": run_cli(demo_site, "status", "--format", "json")[1],
        },
    )


PAGE = 4096


@pytest.mark.parametrize(
    "offset",
    [0, 20, 40, 60, 100, PAGE, 2 * PAGE + 8, 5 * PAGE + 300, 19 * PAGE + 2784, 7918, 85307, -PAGE, -700],
    ids=lambda o: f"at{o}",
)
def test_a_corrupted_ledger_is_refused_or_harmless(
    synced: tuple[Site, Path, dict[str, Any]], offset: int
) -> None:
    site, pristine, clean = synced
    shutil.copy2(pristine, site.ledger_path)
    data = bytearray(site.ledger_path.read_bytes())
    start = offset % len(data)
    data[start : start + 64] = random.Random(offset).randbytes(64)
    site.ledger_path.write_bytes(bytes(data))
    code, out, err = sync(site)
    synced_ok = code == 0
    assert "internal error" not in err and "Traceback" not in err
    if synced_ok:  # the damage was in a part the answer does not depend on
        assert _answer(site.ledger_path) == clean["answer"]
    else:
        lines = err.splitlines()
        assert code == 1 and len(lines) == 2 and lines[1].startswith("  hint: "), err
        assert lines[0].startswith(
            (
                f"error: the ledger {site.ledger_path} is damaged",
                f"error: cannot open the ledger {site.ledger_path}",
            )
        ), err
    code, out, err = run_cli(site, "status", "--format", "json")
    assert "internal error" not in err and "Traceback" not in err
    if code == 0:
        assert out == clean["status_after" if synced_ok else "status_before"]
    else:
        assert code == 1 and err.startswith("error: ") and len(err.splitlines()) == 2, err
