"""Every transport fault kind the emulator offers, on every completion path: a sync either gives
exactly the answer a clean run gives, or fails cleanly (exit 1, one error line, the run recorded
as failed, nothing else written). Never exit 0 with a different answer."""

from __future__ import annotations

import functools
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import pytest

from connector.emulator import Emulator, demo_scenario
from connector.emulator.server import FAULT_KINDS
from connector.moodle.client import MoodleClient
from tests.helpers import ANCHOR, Site
from tests.reliability.helpers import consistent, runs, snapshot, sync

PATHS = ("report", "per_user", "per_course")


@pytest.fixture
def faulty_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The demo site with a short 'slow' fault, and retries that do not sleep (the suite stays fast;
    the retry logic itself is unchanged)."""
    monkeypatch.setattr("connector.sync.MoodleClient", functools.partial(MoodleClient, sleep=lambda s: None))
    token = secrets.token_hex(16)
    (tmp_path / "token").write_text(token + "\n", encoding="utf-8")
    (tmp_path / "token").chmod(0o600)
    with Emulator(demo_scenario(ANCHOR), tokens={token: "full"}, slow_s=0.5, seed=7) as emu:
        yield Site(emu, token, tmp_path / "connector.toml", tmp_path / "ledger.sqlite", tmp_path)


def _answer(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """What a person reads: statuses, roll-ups and evidence, without run ids and timestamps."""
    conn = sqlite3.connect(path)
    try:
        return {
            "statuses": conn.execute(
                "SELECT user_id, requirement_id, status, valid_until, since, due, "
                "completed_on FROM statuses ORDER BY 1, 2"
            ).fetchall(),
            "rollups": conn.execute(
                "SELECT department_id, requirement_id, in_scope, compliant, expiring, "
                "expired, missing, grace, exempt, holders, share, targets_met FROM rollups "
                "WHERE run_id = (SELECT MAX(id) FROM sync_runs WHERE outcome = 'ok') "
                "ORDER BY 1, 2"
            ).fetchall(),
            "evidence": conn.execute(
                "SELECT user_id, course_id, completed_minute FROM evidence ORDER BY 1, 2, 3"
            ).fetchall(),
        }
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_every_fault_kind_gives_the_clean_answer_or_a_clean_failure(faulty_site: Site, path: str) -> None:
    site = faulty_site
    site.write_config(report_id=1, completion_path=path, timeout_s=0.25)
    assert sync(site)[0] == 0
    at = int(datetime.combine(ANCHOR - timedelta(days=1), dtime(10), tzinfo=UTC).timestamp())
    site.emulator.complete(4, 2, at)  # type: ignore[attr-defined]  # so the next run has news to write
    start = site.tmp / "start.sqlite"
    shutil.copy2(site.ledger_path, start)
    assert sync(site, "--full")[0] == 0
    clean = _answer(site.ledger_path)
    before = snapshot(start)
    for kind in FAULT_KINDS:
        shutil.copy2(start, site.ledger_path)
        # a slow answer costs the client its whole timeout: fewer of them keep the suite fast
        site.emulator.set_error_rate(0.08 if kind == "slow" else 0.35, kinds=[kind])  # type: ignore[attr-defined]
        code, out, err = sync(site, "--full")
        site.emulator.set_error_rate(0.0)  # type: ignore[attr-defined]
        consistent(site.ledger_path)
        if code == 0:
            assert _answer(site.ledger_path) == clean, kind
        else:
            lines = err.splitlines()
            assert code == 1 and lines[0].startswith("error: ") and "internal error" not in err, (kind, err)
            assert "Traceback" not in err and out == ""
            assert snapshot(site.ledger_path) == before, kind
            assert runs(site.ledger_path)[-1][1] == "failed", kind
