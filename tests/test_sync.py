"""Pieces of a sync run that need no Moodle: the lock, the full/incremental choice, course resolution."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connector.config import Config
from connector.errors import LedgerError, SyncLocked
from connector.evaluation import resolve_courses
from connector.ledger import Ledger
from connector.mapping import load_mappings
from connector.moodle.records import Course
from connector.sync import SyncLock, SyncOptions, _choose_mode, _refuse_emptied_ledger, lock_path_for
from tests.helpers import MAPPINGS


def test_the_lock_is_exclusive_private_and_released(tmp_path: Path) -> None:
    path = lock_path_for(tmp_path / "ledger.sqlite")
    with SyncLock(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with pytest.raises(SyncLocked) as info:
            with SyncLock(path):
                pass
        assert info.value.exit_code == 75
    with SyncLock(path):  # free again once the holder is done
        pass


def _ledger_with_full_run(tmp_path: Path, started: datetime) -> Ledger:
    ledger = Ledger.open(tmp_path / "l.sqlite")
    run = ledger.start_run("full", date(2026, 6, 1))
    ledger.finish_run(run, "ok")
    ledger.db.execute(
        "UPDATE sync_runs SET started_at = ? WHERE id = ?", [started.isoformat(timespec="seconds"), run]
    )
    return ledger


def test_first_run_is_full_then_incremental_until_the_reconcile_is_due(tmp_path: Path) -> None:
    config = Config(full_every_days=7)
    with Ledger.open(tmp_path / "new.sqlite") as empty:
        assert _choose_mode(empty, SyncOptions(), config) == "full"
    with _ledger_with_full_run(tmp_path, datetime.now(UTC) - timedelta(days=2)) as ledger:
        assert _choose_mode(ledger, SyncOptions(), config) == "incremental"
        assert _choose_mode(ledger, SyncOptions(full=True), config) == "full"
        ledger.db.execute(
            "UPDATE sync_runs SET started_at = ?",
            [(datetime.now(UTC) - timedelta(days=8)).isoformat(timespec="seconds")],
        )
        assert _choose_mode(ledger, SyncOptions(), config) == "full"
        assert _choose_mode(ledger, SyncOptions(), Config(full_every_days=0)) == "incremental"


def test_course_refs_resolve_to_the_first_matching_course() -> None:
    mappings = load_mappings(MAPPINGS)
    old = Course(
        id=7, shortname="old", fullname="Old", idnumber="ITSEC-CZ", visible=False, completion_enabled=True
    )
    new = Course(
        id=42, shortname="new", fullname="New", idnumber="ITSEC-CZ", visible=True, completion_enabled=True
    )
    resolved = resolve_courses(mappings, [new, old])
    assert {ref.value: cid for ref, cid in resolved.items()} == {"ITSEC-CZ": 42}


def test_an_emptied_ledger_is_refused_but_a_new_one_in_wal_is_not(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    path.write_bytes(b"")
    with pytest.raises(LedgerError, match=r"is an empty file \(0 bytes\)"):
        _refuse_emptied_ledger(path)
    # a first run killed before any checkpoint: the main file is empty, its data in the WAL
    path.with_name("l.sqlite-wal").write_bytes(b"\0" * 32)
    _refuse_emptied_ledger(path)
    _refuse_emptied_ledger(tmp_path / "absent.sqlite")  # no file yet: a first run creates it
