"""The real CLI against the demo emulator over loopback HTTP, into a real ledger file."""

from __future__ import annotations

import json
import signal
import sqlite3
import stat
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.ledger import Ledger
from tests.helpers import ANCHOR, Site, sync_process

STATUS_KEYS = {
    "department",
    "requirement",
    "in_scope",
    "compliant",
    "expiring",
    "expired",
    "missing",
    "share",
    "targets_met",
}


def run_cli(site: Site, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(site.config_path), *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def sync(site: Site, *args: str) -> tuple[int, str, str]:
    return run_cli(site, "sync", "--as-of", ANCHOR.isoformat(), *args)


def person_statuses(site: Site, username: str) -> dict[str, str]:
    code, out, err = run_cli(site, "person", username, "--format", "json")
    assert code == 0, err
    return {s["requirement"]: s["status"] for s in json.loads(out)["statuses"]}


@pytest.mark.parametrize("path", ["report", "per_user", "per_course"])
def test_sync_gives_the_statuses_the_demo_people_earned(demo_site: Site, path: str) -> None:
    code, out, err = sync(demo_site, "--path", path)
    assert code == 0, err
    assert f"{path} path" in out
    assert person_statuses(demo_site, "u001")["itsec-cz"] == "compliant"  # completed 180 days ago
    assert person_statuses(demo_site, "u002")["itsec-cz"] == "expired"  # 900 days ago, 24-month rule
    assert person_statuses(demo_site, "u003")["itsec-cz"] == "missing"  # enrolled, never completed
    assert person_statuses(demo_site, "u004")["itsec-cz"] == "expiring"  # 700 days ago, 60-day window
    assert person_statuses(demo_site, "u005")["itsec-cz"] == "compliant"  # latest of two wins
    assert person_statuses(demo_site, "u041")["digvar-si"] == "expired"
    assert person_statuses(demo_site, "u040")["digvar-si"] == "compliant"
    suspended = person_statuses(demo_site, "u017")
    assert set(suspended.values()) == {"not_applicable"}  # out of scope, history kept
    code, out, _ = run_cli(demo_site, "person", "u017", "--format", "json")
    assert json.loads(out)["evidence"], "the suspended user's evidence is kept"


def test_all_paths_agree(demo_site: Site, tmp_path: Path) -> None:
    exports = {}
    for path in ("report", "per_user", "per_course"):
        demo_site.ledger_path.unlink(missing_ok=True)
        code, _, err = sync(demo_site, "--path", path, "--full")
        assert code == 0, err
        code, out, err = run_cli(demo_site, "export", "--format", "json")
        assert code == 0, err
        exports[path] = sorted(
            (r["username"], r["requirement"], r["status"], r["valid_until"]) for r in json.loads(out)
        )
    assert exports["report"] == exports["per_user"] == exports["per_course"]
    assert len(exports["report"]) > 100


def test_status_json_and_filters(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    code, out, err = run_cli(demo_site, "status", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert rows and all(STATUS_KEYS <= set(r) for r in rows)
    informatika = [
        r for r in rows if r["department"] == "jablonec.informatika" and r["requirement"] == "itsec-cz"
    ]
    assert informatika and informatika[0]["in_scope"] >= 2
    code, out, _ = run_cli(
        demo_site, "status", "--department", "ljubljana", "--requirement", "digvar-si", "--format", "json"
    )
    assert code == 0
    assert {r["department"].split(".")[0] for r in json.loads(out)} == {"ljubljana"}
    code, out, _ = run_cli(demo_site, "status")
    assert code == 0 and "Odbor sociálních věcí" in out and "Služba za digitalizacijo" in out
    code, _, err = run_cli(demo_site, "status", "--department", "atlantis")
    assert code == 2 and "no department 'atlantis'" in err


def test_status_as_of_recomputes_from_evidence(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    code, out, _ = run_cli(demo_site, "export", "--format", "json", "--as-of", "2030-01-01")
    assert code == 0
    u001 = {r["requirement"]: r for r in json.loads(out) if r["username"] == "u001"}
    assert u001["itsec-cz"]["status"] == "expired"  # two years after 2026 have passed by 2030
    code, out, _ = run_cli(demo_site, "status", "--as-of", "2030-01-01", "--format", "csv")
    assert code == 0 and out.startswith("department,requirement,in_scope")


def test_ledger_is_private_and_holds_no_token(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    assert stat.S_IMODE(demo_site.ledger_path.stat().st_mode) == 0o600
    for path in demo_site.tmp.glob("ledger.sqlite*"):
        assert demo_site.token.encode() not in path.read_bytes(), path


def test_course_reset_then_full_sync_keeps_evidence_and_statuses(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    before = _statuses_table(demo_site.ledger_path)
    demo_site.emulator.reset_course(2)  # type: ignore[attr-defined]  # ITSEC-CZ
    code, out, err = sync(demo_site, "--full")
    assert code == 0, err
    assert " 0 no longer in Moodle" not in out  # the reset completions were noticed
    assert _statuses_table(demo_site.ledger_path) == before  # nobody's status dropped
    code, out, _ = run_cli(demo_site, "person", "u001", "--format", "json")
    itsec = [e for e in json.loads(out)["evidence"] if e["course"] == "ITSEC-CZ"]
    assert itsec and not itsec[0]["still_in_moodle"]


def test_new_completion_is_picked_up_by_the_nightly_sync(demo_site: Site) -> None:
    demo_site.write_config()  # no report: the incremental fallback path
    assert sync(demo_site)[0] == 0
    assert person_statuses(demo_site, "u003")["itsec-cz"] == "missing"
    at = int(datetime.combine(ANCHOR - timedelta(days=1), dtime(10), tzinfo=UTC).timestamp())
    demo_site.emulator.complete(5, 2, at)  # type: ignore[attr-defined]  # u003 (id 5) completes ITSEC-CZ
    code, out, err = sync(demo_site)
    assert code == 0, err
    assert "incremental" in out
    assert person_statuses(demo_site, "u003")["itsec-cz"] == "compliant"


def test_bad_mappings_stop_before_anything_is_written(demo_site: Site, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.toml").write_text('[[requirement]]\nid = "a"\ntitel = "typo"\n', encoding="utf-8")
    code, _, err = run_cli(demo_site, "--mappings", str(broken), "sync")
    assert code == 2
    assert "x.toml" in err and "titel" in err
    assert not demo_site.ledger_path.exists()


def test_mappings_check(demo_site: Site, tmp_path: Path) -> None:
    code, out, _ = run_cli(demo_site, "mappings", "check")
    assert code == 0 and "ok" in out
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.toml").write_text('[[department]]\nid = "x"\nnmae = "X"\n', encoding="utf-8")
    (broken / "b.toml").write_text(
        '[[requirement]]\nid = "r"\ntitle = "R"\ncourses = ["nope"]\nvalid_for = "two years"\n',
        encoding="utf-8",
    )
    code, _, err = run_cli(demo_site, "mappings", "check", "--mappings", str(broken))
    assert code == 2
    for fragment in ("a.toml", "nmae", "b.toml", "nope", "two years"):
        assert fragment in err, fragment
    assert sorted(p.name for p in broken.iterdir()) == ["a.toml", "b.toml"]  # nothing written there
    assert not demo_site.ledger_path.exists() and not list(demo_site.tmp.glob("*.lock"))


def test_wrong_token_fails_with_exit_1_and_is_recorded(demo_site: Site) -> None:
    (demo_site.tmp / "token").write_text("0123456789abcdef0123456789abcdef\n", encoding="utf-8")
    code, _, err = sync(demo_site)
    assert code == 1
    assert "token" in err.lower() and "0123456789abcdef" not in err
    with Ledger.open(demo_site.ledger_path, create=False) as ledger:
        [run] = ledger.runs.recent()
    assert run["outcome"] == "failed" and "MoodleAuthError" in run["error"]


def test_courses_and_doctor(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    code, out, err = run_cli(demo_site, "courses", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert {r["idnumber"] for r in data["mapped"]} >= {"ITSEC-CZ", "DIGVAR-SI", "DIGSVET", "AI-URED"}
    assert {c["idnumber"] for c in data["unmapped"]} >= {"ORIENT", "ARCH-SEC19"}
    itsec = next(r for r in data["mapped"] if r["idnumber"] == "ITSEC-CZ")
    assert itsec["enrolled"] >= itsec["completed"] >= 1
    code, out, _ = run_cli(demo_site, "doctor")
    assert code == 0, out
    assert "4.1" in out and "wsconnector" in out


def _wait_for_calls(site: Site, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while site.emulator.total_calls < at_least:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the sync never reached Moodle"
        time.sleep(0.02)


def _statuses_table(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT user_id, requirement_id, status, valid_until FROM statuses ORDER BY 1, 2"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_killed_sync_leaves_previous_state_and_next_sync_completes(demo_site: Site) -> None:
    demo_site.write_config(completion_path="per_course")
    assert sync(demo_site)[0] == 0
    before = _statuses_table(demo_site.ledger_path)
    emu = demo_site.emulator
    emu.set_latency(150)  # type: ignore[attr-defined]
    emu.reset_counts()  # type: ignore[attr-defined]
    proc = sync_process(demo_site, "--full")
    _wait_for_calls(demo_site, 8)  # well into reading completions
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    emu.set_latency(0)  # type: ignore[attr-defined]
    conn = sqlite3.connect(demo_site.ledger_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert _statuses_table(demo_site.ledger_path) == before
    code, _, err = sync(demo_site)
    assert code == 0, err
    with Ledger.open(demo_site.ledger_path, create=False) as ledger:
        outcomes = [r["outcome"] for r in ledger.runs.recent()]
    assert outcomes[0] == "ok" and "failed" in outcomes  # the killed run is recorded as failed


@pytest.mark.slow
def test_second_sync_exits_75_while_the_first_runs(demo_site: Site) -> None:
    demo_site.write_config(completion_path="per_course")
    emu = demo_site.emulator
    emu.set_latency(40)  # type: ignore[attr-defined]
    emu.reset_counts()  # type: ignore[attr-defined]
    first = sync_process(demo_site)
    _wait_for_calls(demo_site, 2)
    code, _, err = sync(demo_site)
    assert code == 75, err
    assert "another sync" in err
    assert first.poll() is None  # it answered at once, without waiting for the first to finish
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err


def test_teacher_marked_completion_waits_for_the_full_reconcile(demo_site: Site) -> None:
    """The documented limit of the incremental fallback paths, and what closes it."""
    demo_site.write_config(completion_path="per_course")
    assert sync(demo_site)[0] == 0
    at = int(datetime.combine(ANCHOR - timedelta(days=2), dtime(9), tzinfo=UTC).timestamp())
    demo_site.emulator.complete(5, 2, at, by_teacher=True)  # type: ignore[attr-defined]  # u003, untouched course
    assert sync(demo_site)[0] == 0
    assert person_statuses(demo_site, "u003")["itsec-cz"] == "missing"  # not read: nothing moved
    code, out, err = sync(demo_site, "--full")
    assert code == 0, err
    assert person_statuses(demo_site, "u003")["itsec-cz"] == "compliant"


def test_doctor_names_the_missing_capabilities_for_a_weak_token(demo_site: Site) -> None:
    weak = "weak" + demo_site.token[4:]
    demo_site.emulator.add_token(weak, kind="weak")  # type: ignore[attr-defined]
    (demo_site.tmp / "token").write_text(weak + "\n", encoding="utf-8")
    code, out, _ = run_cli(demo_site, "doctor")
    assert code == 1
    assert "[FAIL] capabilities" in out and "moodle/course:view" in out
    assert weak not in out


def test_sync_logs_hold_neither_the_token_nor_personal_data(
    demo_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    demo_site.write_config(completion_path="per_user")
    caplog.set_level(logging.DEBUG)
    code, out, err = run_cli(demo_site, "--log-level", "debug", "sync", "--as-of", ANCHOR.isoformat())
    assert code == 0, err
    assert caplog.records, "debug logging produced records"
    text = "\n".join(r.getMessage() for r in caplog.records) + out + err
    assert demo_site.token not in text
    for personal in ("u001", "Kateřina", "EMP1001", "example.org"):
        assert personal not in text, personal


def test_deleted_user_becomes_inactive_and_keeps_history(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    assert person_statuses(demo_site, "u001")["itsec-cz"] == "compliant"
    demo_site.emulator.delete_user(3)  # type: ignore[attr-defined]  # u001
    code, out, err = sync(demo_site)
    assert code == 0, err
    code, out, _ = run_cli(demo_site, "person", "u001", "--format", "json")
    view = json.loads(out)
    assert view["deleted"] and not view["active"]
    assert {s["status"] for s in view["statuses"]} == {"not_applicable"}
    assert view["evidence"] and [h for h in view["history"] if h["to"] == "compliant"]


def test_renewal_is_picked_up_by_the_nightly_per_user_sync(demo_site: Site) -> None:
    demo_site.write_config(completion_path="per_user")
    assert sync(demo_site)[0] == 0
    assert person_statuses(demo_site, "u002")["itsec-cz"] == "expired"
    at = int(datetime.combine(ANCHOR - timedelta(days=1), dtime(10), tzinfo=UTC).timestamp())
    demo_site.emulator.complete(4, 2, at)  # type: ignore[attr-defined]  # u002 retakes ITSEC-CZ
    code, out, err = sync(demo_site)
    assert code == 0, err
    assert "incremental, per_user path" in out and " 1 new completions" in out
    assert person_statuses(demo_site, "u002")["itsec-cz"] == "compliant"


def test_auto_falls_back_to_per_course_when_the_service_lacks_users_courses(demo_site: Site) -> None:
    from connector.moodle.functions import REQUIRED_FUNCTIONS

    narrow = "narrow" + demo_site.token[6:]
    demo_site.emulator.add_token(narrow, kind="full", functions=REQUIRED_FUNCTIONS)  # type: ignore[attr-defined]
    (demo_site.tmp / "token").write_text(narrow + "\n", encoding="utf-8")
    demo_site.write_config()  # no report either
    code, out, err = sync(demo_site)
    assert code == 0, err
    assert "per_course path" in out


def _snapshot(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in (
                "courses",
                "people",
                "enrolments",
                "evidence",
                "statuses",
                "status_history",
                "rollups",
                "bookmarks",
            )
        }
    finally:
        conn.close()


@pytest.mark.slow
def test_a_run_killed_after_writing_evidence_leaves_every_table_as_it_was(demo_site: Site) -> None:
    """Invariant 2: the run's writes land together or not at all, not just its statuses."""
    demo_site.write_config(completion_path="per_course")
    assert sync(demo_site)[0] == 0
    demo_site.emulator.reset_course(2)  # type: ignore[attr-defined]  # so a full run has evidence to mark gone
    before = _snapshot(demo_site.ledger_path)
    emu = demo_site.emulator
    emu.reset_counts()  # type: ignore[attr-defined]
    # people are read after enrolments and completions are recorded: hold the run there
    emu.script_fault(1, "slow", function="core_user_get_users_by_field")  # type: ignore[attr-defined]
    proc = sync_process(demo_site, "--full")
    deadline = time.monotonic() + 60
    while emu.call_counts().get("core_user_get_users_by_field", 0) < 1:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline and proc.poll() is None, "the sync never got to people"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert _snapshot(demo_site.ledger_path) == before
    assert sync(demo_site)[0] == 0
    assert _snapshot(demo_site.ledger_path) != before  # the next run does write


def test_many_people_vanishing_stops_the_run(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    before = _snapshot(demo_site.ledger_path)
    for user_id in range(3, 13):  # ten people at once: more likely lost visibility than deletions
        demo_site.emulator.delete_user(user_id)  # type: ignore[attr-defined]
    code, _, err = sync(demo_site)
    assert code == 1 and "--allow-mass-deletion" in err
    assert _snapshot(demo_site.ledger_path) == before
    code, _, err = sync(demo_site, "--allow-mass-deletion")
    assert code == 0, err


def test_sync_refuses_a_future_date(demo_site: Site) -> None:
    code, _, err = run_cli(demo_site, "sync", "--as-of", "2999-01-01")
    assert code == 2 and "in the future" in err
    assert not demo_site.ledger_path.exists()


def test_export_file_is_private(demo_site: Site) -> None:
    assert sync(demo_site)[0] == 0
    target = demo_site.tmp / "hr.csv"
    code, _, err = run_cli(demo_site, "export", "--format", "csv", "-o", str(target))
    assert code == 0, err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text(encoding="utf-8").startswith("username,idnumber,department_id")
    code, _, err = run_cli(demo_site, "export", "-o", str(demo_site.tmp / "no" / "such" / "dir.csv"))
    assert code == 1 and err.startswith("error: cannot write")


def test_config_and_mapping_problems_are_listed_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("MOODLE_URL", "MOODLE_TOKEN", "MOODLE_TOKEN_FILE", "CONNECTOR_CONFIG", "CONNECTOR_MAPPINGS"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["sync"])
    assert result.exit_code == 2
    for fragment in ("mappings", "moodle.url", "moodle.token_file"):
        assert fragment in result.stderr, fragment
    assert list(tmp_path.iterdir()) == []  # not even a lock file
