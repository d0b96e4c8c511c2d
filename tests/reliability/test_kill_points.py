"""A sync SIGKILLed at every commit point leaves a sound ledger whose status and export agree, and
the next sync records the killed run as failed and completes."""

from __future__ import annotations

import shutil
import signal
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

import pytest

from connector.config import load_config
from connector.ledger.runs import Runs
from connector.sync import KILL_POINTS, SyncOptions, run_sync
from tests.helpers import ANCHOR, Site, sync_process
from tests.reliability.helpers import consistent, runs, snapshot, sync

KILLED = -signal.SIGKILL
NOW = datetime.combine(ANCHOR, dtime(12), UTC)  # the clock run_sync is given when called directly


def _clone(site: Site, name: str) -> Site:
    """Another config and ledger against the same emulator (each kill gets its own copy)."""
    home = site.tmp / name
    home.mkdir()
    shutil.copy2(site.tmp / "token", home / "token")
    if site.ledger_path.exists():
        shutil.copy2(site.ledger_path, home / "ledger.sqlite")
    clone = Site(site.emulator, site.token, home / "connector.toml", home / "ledger.sqlite", home)
    clone.write_config(report_id=1)
    return clone


def _kill_all_points(site: Site, points: tuple[str, ...] = KILL_POINTS) -> dict[str, Site]:
    """Start one sync per kill point at once (they share nothing but the emulator) and wait."""
    clones = {point: _clone(site, point) for point in points}
    procs = {
        point: sync_process(clone, env={"CONNECTOR_TEST_KILL_AT": point}) for point, clone in clones.items()
    }
    for point, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == KILLED, f"{point}: exit {proc.returncode}: {err}"
    return clones


@pytest.mark.slow
def test_a_kill_at_every_commit_point_of_a_later_sync(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    at = int(datetime.combine(ANCHOR - timedelta(days=1), dtime(10), tzinfo=UTC).timestamp())
    demo_site.emulator.complete(4, 2, at)  # type: ignore[attr-defined]  # u002 renews: the next run writes
    before = snapshot(demo_site.ledger_path)
    first_run = runs(demo_site.ledger_path)
    for point, clone in _kill_all_points(demo_site).items():
        consistent(clone.ledger_path)
        killed_runs = runs(clone.ledger_path)
        if point == "committed":
            assert snapshot(clone.ledger_path) != before and killed_runs[-1][1] == "ok", point
        else:
            assert snapshot(clone.ledger_path) == before, point  # nothing of the run landed
        code, _, err = sync(clone)
        assert code == 0, f"{point}: {err}"
        consistent(clone.ledger_path)
        after = runs(clone.ledger_path)
        if killed_runs != first_run and point != "committed":  # the killed run had started
            killed = next(r for r in after if r[0] == killed_runs[-1][0])
            assert killed[1] == "failed" and "interrupted" in killed[2], point
        assert after[-1][1] == "ok"


@pytest.mark.slow
def test_a_kill_during_the_first_sync_leaves_no_ledger_that_the_next_refuses(demo_site: Site) -> None:
    for point, clone in _kill_all_points(demo_site, ("stale_runs_failed", "run_started", "finished")).items():
        if clone.ledger_path.exists() and point != "locked":
            consistent(clone.ledger_path)
        code, _, err = sync(clone)
        assert code == 0, f"{point}: {err}"
        consistent(clone.ledger_path)
        assert runs(clone.ledger_path)[-1][1] == "ok"


class _Killed(BaseException):
    """Stands for the process dying: nothing in the connector catches it."""


def test_the_run_outcome_commits_with_its_data(demo_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dying while the run is marked ok must not leave the new statuses under an old `status`."""
    assert sync(demo_site)[0] == 0
    at = int(datetime.combine(ANCHOR - timedelta(days=1), dtime(10), tzinfo=UTC).timestamp())
    demo_site.emulator.complete(4, 2, at)  # type: ignore[attr-defined]
    before = snapshot(demo_site.ledger_path)
    real_finish = Runs.finish

    def dying_finish(self: Runs, run_id: int, outcome: str, **kwargs: Any) -> None:
        if outcome == "ok":
            raise _Killed()
        real_finish(self, run_id, outcome, **kwargs)

    monkeypatch.setattr(Runs, "finish", dying_finish)
    with pytest.raises(_Killed):
        run_sync(load_config(demo_site.config_path), SyncOptions(as_of=ANCHOR), now=NOW)
    consistent(demo_site.ledger_path)
    assert snapshot(demo_site.ledger_path) == before
