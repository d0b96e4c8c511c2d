"""Erasure lasts, changes the numbers at once, and does not wait for a slow sync."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from connector.ledger import Ledger
from tests.helpers import Site, sync_process
from tests.reliability.helpers import consistent, run_cli, sync

U001 = 3  # u001's Moodle user id in the demo: compliant with itsec-cz


def _rollups(site: Site) -> dict[tuple[str, str], tuple[int, int]]:
    code, out, err = run_cli(site, "status", "--format", "json")
    assert code == 0, err
    return {(r["department"], r["requirement"]): (r["in_scope"], r["compliant"]) for r in json.loads(out)}


def test_an_erased_person_stays_out_of_later_syncs_until_let_back(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    code, out, err = run_cli(demo_site, "erase", "u001", "--reason", "GDPR request 42", "--yes")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("erased ") and lines[0].endswith(
        f" rows about user id {U001}; recorded in the erasures table"
    )
    assert lines[1].startswith(
        f"later syncs leave user id {U001} out (`connector unsuppress --user-id {U001}` "
        "lets them back); roll-ups recomputed for "
    )
    for args in ((), ("--full",)):
        code, _, err = sync(demo_site, *args)
        assert code == 0, err
        code, _, err = run_cli(demo_site, "person", "u001")
        assert code == 1 and err.splitlines()[0] == "error: no person with username 'u001' in the ledger"
    with Ledger.open(demo_site.ledger_path, create=False) as ledger:
        assert ledger.runs.recent(1)[0]["counts"]["suppressed"] == 1
        text = "\n".join(
            str(row)
            for table in ("suppressions", "erasures")
            for row in ledger.db.execute(f"SELECT * FROM {table}")
        )
    assert "u001" not in text and "EMP1001" not in text  # the lists name nobody

    code, out, _ = run_cli(demo_site, "unsuppress", "--user-id", str(U001))
    assert code == 0
    assert (
        out == f"user id {U001} may be synced again; the next sync reads them from Moodle as a new person\n"
    )
    assert sync(demo_site)[0] == 0
    code, out, _ = run_cli(demo_site, "person", "u001", "--format", "json")
    assert code == 0 and json.loads(out)["username"] == "u001"


def test_unsuppress_of_someone_never_erased_is_refused(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    code, _, err = run_cli(demo_site, "unsuppress", "--user-id", "4")
    assert code == 1
    assert err == (
        "error: user id 4 is not held back: no erasure of that user id is on record in this ledger\n"
    )


def test_erase_changes_the_roll_ups_at_once_as_the_next_sync_would(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    before = _rollups(demo_site)
    assert run_cli(demo_site, "erase", "u001", "--reason", "GDPR request 42", "--yes")[0] == 0
    after_erase = _rollups(demo_site)
    changed = {key for key in before if before[key] != after_erase.get(key)}
    assert ("jablonec", "itsec-cz") in changed  # u001's town, where they counted as compliant
    in_scope, compliant = before[("jablonec", "itsec-cz")]
    assert after_erase[("jablonec", "itsec-cz")] == (in_scope - 1, compliant - 1)
    consistent(demo_site.ledger_path)
    assert sync(demo_site)[0] == 0
    assert _rollups(demo_site) == after_erase  # the next sync agrees with what erase computed


@pytest.mark.slow
def test_erase_during_a_long_sync_does_not_wait_for_moodle(demo_site: Site) -> None:
    demo_site.write_config(report_id=1, completion_path="per_course")
    assert sync(demo_site)[0] == 0
    emu = demo_site.emulator
    emu.set_latency(60)  # type: ignore[attr-defined]  # about 2 s of reading Moodle
    emu.reset_counts()  # type: ignore[attr-defined]
    proc = sync_process(demo_site, "--full")
    deadline = time.monotonic() + 60
    while emu.total_calls < 4:  # type: ignore[attr-defined]  # reading Moodle
        assert time.monotonic() < deadline and proc.poll() is None, "the sync never reached Moodle"
        time.sleep(0.02)
    code, out, err = run_cli(demo_site, "erase", "u001", "--reason", "GDPR request 42", "--yes")
    calls_when_erased = emu.total_calls  # type: ignore[attr-defined]
    assert code == 0, err
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert calls_when_erased < emu.total_calls  # type: ignore[attr-defined]  # erase did not wait for Moodle
    conn = sqlite3.connect(demo_site.ledger_path)
    assert conn.execute("SELECT COUNT(*) FROM people WHERE user_id = ?", [U001]).fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM evidence WHERE user_id = ?", [U001]).fetchone()[0] == 0
    conn.close()
    consistent(demo_site.ledger_path)


def test_erase_works_with_broken_mappings_and_says_roll_ups_wait(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    broken = demo_site.tmp / "broken"
    broken.mkdir()
    (broken / "requirements.toml").write_text("[[requirement]\n", encoding="utf-8")
    code, out, err = run_cli(
        demo_site, "--mappings", str(broken), "erase", "u001", "--reason", "GDPR 1", "--yes"
    )
    assert code == 0, err
    assert out.splitlines()[1] == (
        f"later syncs leave user id {U001} out (`connector unsuppress --user-id {U001}` "
        "lets them back); roll-ups change at the next sync (the mappings cannot "
        "be read now)"
    )
