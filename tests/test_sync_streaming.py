"""A sync streams what it reads into the ledger's staging area: people are asked about while the
report is still read, nothing holds the ledger's write lock meanwhile, and a night that finds
nothing new rewrites no enrolment check. Real emulator over loopback, real ledger file."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.config import load_config
from connector.ledger import Ledger
from connector.moodle.api import MoodleApi
from connector.sync import SyncOptions, run_sync
from tests.helpers import ANCHOR, Site

NOW = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)


def _sync(site: Site, *, full: bool, days: int = 0) -> Any:
    config = load_config(site.config_path, env={})
    return run_sync(
        config, SyncOptions(full=full, as_of=ANCHOR + timedelta(days=days)), now=NOW + timedelta(days=days)
    )


@pytest.fixture
def small_pages(demo_site: Site) -> Site:
    demo_site.write_config(report_id=1, report_per_page=2, completion_path="report")
    return demo_site


def test_people_are_asked_about_while_the_report_pages_are_still_read(
    small_pages: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sync(small_pages, full=True)  # the ledger now knows the people: a nightly can ask at once
    events: list[str] = []
    lock = threading.Lock()
    page, batch = MoodleApi.report_page, MoodleApi.users_batch

    def report_page(self: MoodleApi, *args: Any) -> Any:
        answer = page(self, *args)
        with lock:
            events.append("page")
        return answer

    def users_batch(self: MoodleApi, *args: Any) -> Any:
        with lock:
            events.append("people")
        return batch(self, *args)

    monkeypatch.setattr(MoodleApi, "report_page", report_page)
    monkeypatch.setattr(MoodleApi, "users_batch", users_batch)
    result = _sync(small_pages, full=False, days=1)
    assert result.counts["people"] > 0
    assert events.count("page") > 2
    assert "people" in events
    # a people batch went out before the report's last page came back, not after the report
    assert events.index("people") < len(events) - 1 - events[::-1].index("page")


def test_the_ledger_is_not_write_locked_while_moodle_is_read(
    small_pages: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sync(small_pages, full=True)
    writable: list[bool] = []
    page = MoodleApi.report_page
    one_at_a_time = threading.Lock()

    def report_page(self: MoodleApi, *args: Any) -> Any:
        with one_at_a_time:  # pages are read side by side: these probes must not meet each other
            probe()
        return page(self, *args)

    def probe() -> None:
        other = sqlite3.connect(small_pages.ledger_path, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # what `erase` takes: it must not have to wait
            other.execute("ROLLBACK")
            writable.append(True)
        except sqlite3.OperationalError:
            writable.append(False)
        finally:
            other.close()

    monkeypatch.setattr(MoodleApi, "report_page", report_page)
    result = _sync(small_pages, full=False, days=1)
    assert writable and all(writable)
    before = _sync_counts(small_pages, 1)
    assert result.counts["enrolments"] == before["enrolments"]
    assert result.counts["people"] == before["people"]


def _sync_counts(site: Site, run_id: int) -> dict[str, int]:
    import json

    with sqlite3.connect(site.ledger_path) as conn:
        return dict(
            json.loads(conn.execute("SELECT counts FROM sync_runs WHERE id = ?", [run_id]).fetchone()[0])
        )


def _rows(site: Site) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(site.ledger_path) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("enrolments", "evidence", "people")
        }


def test_a_night_that_finds_nothing_new_rewrites_no_enrolment_evidence_or_person(small_pages: Site) -> None:
    first = _sync(small_pages, full=True)
    after_full = _rows(small_pages)
    night = _sync(small_pages, full=False, days=1)
    assert night.counts["enrolments"] == first.counts["enrolments"] > 0
    assert night.counts["evidence_seen"] > 0
    assert _rows(small_pages) == after_full  # not one row rewritten: the write-ahead log stays small
    weekly = _sync(small_pages, full=True, days=2)  # a full run still marks everything it saw
    with sqlite3.connect(small_pages.ledger_path) as conn:
        assert {r for (r,) in conn.execute("SELECT DISTINCT last_seen_run FROM enrolments")} == {
            weekly.run_id
        }


def test_staging_spills_to_a_file_even_where_temp_tables_would_stay_in_memory(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        ledger.db.conn.execute("PRAGMA temp_store = MEMORY")
        ledger.staging.begin()
        assert ledger.db.conn.execute("PRAGMA temp_store").fetchone()[0] == 1  # FILE
        ledger.staging.add_enrolments([(1, 2, None)])
        assert ledger.staging.enrolment_count() == 1
        ledger.staging.end()
