"""Pieces of a sync run that need no Moodle: the lock, the full/incremental choice, course resolution."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.config import Config
from connector.errors import LedgerError, SyncLocked
from connector.evaluation import resolve_courses
from connector.ledger import Ledger
from connector.mapping import load_mappings
from connector.moodle.records import Course
from connector.sync import SyncLock, SyncOptions, _choose_mode, _refuse_emptied_ledger, lock_path_for
from tests.helpers import MAPPINGS, Site

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)


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


def test_first_run_is_full_then_incremental_until_the_reconcile_is_due(tmp_path: Path) -> None:
    config = Config(full_every_days=7)
    with Ledger.open(tmp_path / "new.sqlite") as empty:
        assert _choose_mode(empty, SyncOptions(), config, NOW) == "full"
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run = ledger.runs.start("full", date(2026, 6, 1), now=NOW)  # the clock is set, no row rewritten
        ledger.runs.finish(run, "ok", now=NOW)
        two_days_later, a_week_later = NOW + timedelta(days=2), NOW + timedelta(days=7)
        assert _choose_mode(ledger, SyncOptions(), config, two_days_later) == "incremental"
        assert _choose_mode(ledger, SyncOptions(full=True), config, two_days_later) == "full"
        assert (
            _choose_mode(ledger, SyncOptions(), config, a_week_later - timedelta(seconds=1)) == "incremental"
        )
        assert _choose_mode(ledger, SyncOptions(), config, a_week_later) == "full"
        assert _choose_mode(ledger, SyncOptions(), Config(full_every_days=0), a_week_later) == "incremental"


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


def test_the_clis_clock_is_the_time_sync_and_erase_record(demo_site: Site) -> None:
    """One clock at the CLI's edge: what a run and an erasure record is the moment it gives."""
    when = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)  # the demo scenario's day, mid-morning
    config = ["--config", str(demo_site.config_path)]
    sync = CliRunner().invoke(main, [*config, "sync", "--quiet"], obj={"clock": lambda: when})
    assert (sync.exit_code, sync.output) == (0, "")
    later = when + timedelta(hours=2)
    erase = CliRunner().invoke(
        main, [*config, "erase", "u001", "--reason", "test", "--yes"], obj={"clock": lambda: later}
    )
    assert erase.exit_code == 0, erase.output
    with Ledger.open_readonly(demo_site.ledger_path) as ledger:
        [run] = ledger.runs.recent()
        erased_at = ledger.db.execute("SELECT erased_at FROM erasures").fetchone()[0]
    assert (run["started_at"], run["finished_at"], run["as_of"]) == (
        "2026-06-15T10:30:00+00:00",
        "2026-06-15T10:30:00+00:00",
        "2026-06-15",  # today by the clock, in the mappings' time zone
    )
    assert erased_at == "2026-06-15T12:30:00+00:00"
