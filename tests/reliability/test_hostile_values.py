"""Hostile values at every door: mapping files, Moodle's answers, and output read by people."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import shutil
import signal
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from connector.mapping import DEMO_MAPPINGS
from tests.helpers import ANCHOR, Site, sync_process


def _mappings(tmp_path: Path, edit: str, old: str, new: str) -> Path:
    """A copy of the shipped mappings with one text replaced in one file (the first match)."""
    folder = tmp_path / "mappings"
    shutil.copytree(DEMO_MAPPINGS, folder)
    path = folder / edit
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def _check(folder: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["mappings", "check", "--mappings", str(folder)])
    return result.exit_code, result.output.splitlines()


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


# -- item 2: mappings check refuses what a sync cannot use -----------------------------------------
@pytest.mark.parametrize("key", ["valid_for", "warn_before", "grace"])
def test_a_duration_beyond_100_years_is_refused(tmp_path: Path, key: str) -> None:
    old = {
        "valid_for": 'valid_for = "24 months"',
        "warn_before": 'warn_before = "60 days"',
        "grace": 'grace = "90 days"',
    }[key]
    new = f'{key} = "999999999 years"'
    folder = _mappings(tmp_path, "requirements.toml", old, new)
    path = folder / "requirements.toml"
    code, lines = _check(folder)
    hint = "write at most 100 years (1200 months, 5218 weeks, 36525 days)"
    if key == "valid_for":
        hint += "; leave valid_for out for a completion that never expires"
    assert code == 2
    assert lines == [
        "error: 1 problem found:",
        f"  - {path}:{_line_of(path, new)}: requirement[itsec-cz].{key}: "
        f"'999999999 years' is too long to compute dates with ({hint})",
    ]


def test_100_years_is_still_accepted(tmp_path: Path) -> None:
    folder = _mappings(tmp_path, "requirements.toml", 'valid_for = "24 months"', 'valid_for = "100 years"')
    assert _check(folder)[0] == 0


def test_a_share_above_100_percent_is_refused(tmp_path: Path) -> None:
    folder = _mappings(tmp_path, "requirements.toml", '\nmin = "50 %"', '\nmin = "150 %"')
    path = folder / "requirements.toml"
    code, lines = _check(folder)
    assert code == 2
    assert lines == [
        "error: 1 problem found:",
        f"  - {path}:{_line_of(path, '150 %')}: requirement[itsec-cz].target[#1].min: "
        "must be a share between 0 and 100 %, not '150 %' (write min = \"50 %\" or min = 0.5)",
    ]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        (
            "100000000000000000000000",
            "100000000000000000000000 is larger than any Moodle course id can be "
            "(a course id is at most 9223372036854775807; copy it from the course's URL (id=...))",
        ),
        ("1e23", "must be a positive whole number, not a number"),
        ("-4", "must be a positive whole number, not a whole number"),
    ],
)
def test_a_course_id_outside_sqlites_range_is_refused(tmp_path: Path, written: str, message: str) -> None:
    folder = _mappings(tmp_path, "courses.toml", 'idnumber = "ITSEC-CZ"', f"id = {written}")
    path = folder / "courses.toml"
    code, lines = _check(folder)
    assert code == 2
    assert lines == [
        "error: 1 problem found:",
        f"  - {path}:{_line_of(path, f'id = {written}')}: course.itsec-cz.id: {message}",
    ]


def test_a_toml_nesting_bomb_is_a_mapping_problem(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(DEMO_MAPPINGS, folder)
    bomb = folder / "zz-bomb.toml"
    bomb.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    code, lines = _check(folder)
    assert code == 2
    assert lines == [
        "error: 1 problem found:",
        f"  - {bomb}: values are nested too deeply to read "
        "(mappings need a few levels at most; look for a long run of '[' or '{')",
    ]


def test_a_truncated_requirements_file_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(DEMO_MAPPINGS, folder)
    requirements = folder / "requirements.toml"
    header = requirements.read_text(encoding="utf-8").split("[[requirement]]")[0]
    requirements.write_text(header, encoding="utf-8")  # only the comment header is left
    code, lines = _check(folder)
    assert code == 2
    assert lines == [
        "error: 1 problem found:",
        f"  - {folder}: the directory has no requirement (add [[requirement]] entries; if "
        "requirements.toml was truncated, restore it from a backup or version control)",
    ]


# -- item 5: values from Moodle are checked at the door --------------------------------------------
Tamper = Callable[[str, dict[str, Any], Any], Any]


def _tamper(monkeypatch: pytest.MonkeyPatch, change: Tamper) -> None:
    """Let ``change(function, params, answer)`` rewrite what the emulator answers, on the wire."""
    import connector.emulator.server as server

    real = server.dispatch

    def dispatch(call: Any, function: str, params: dict[str, Any]) -> Any:
        return change(function, params, real(call, function, params))

    monkeypatch.setattr(server, "dispatch", dispatch)


def _cli(site: Site, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(site.config_path), *args])


def _sync(site: Site, *args: str) -> Result:
    return _cli(site, "sync", "--as-of", ANCHOR.isoformat(), *args)


YEAR_10000 = 253402300800


@pytest.mark.parametrize("when", [YEAR_10000, -86400])
def test_an_impossible_completion_time_is_skipped_with_a_warning(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, when: int
) -> None:
    def change(function: str, params: dict[str, Any], answer: Any) -> Any:
        if (
            function == "core_completion_get_course_completion_status"
            and str(params.get("userid")) == "3"
            and str(params.get("courseid")) == "2"
        ):
            for criterion in answer["completionstatus"]["completions"]:
                criterion["timecompleted"] = when
        return answer

    _tamper(monkeypatch, change)
    result = _sync(demo_site, "--path", "per_course")
    assert result.exit_code == 0, result.output
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        f"completion of user id 3 in course id 2: timecompleted {when} is not a possible time; "
        "this completion is skipped" in warnings
    )
    person = json.loads(_cli(demo_site, "person", "u001", "--format", "json").output)
    assert {s["requirement"]: s["status"] for s in person["statuses"]}["itsec-cz"] == "missing"
    assert {e["course"] for e in person["evidence"]} >= {"AI-URED", "DIGSVET"}  # the rest was read
    assert _cli(demo_site, "person", "u002").exit_code == 0


def test_an_impossible_time_already_in_an_older_ledger_is_shown_not_fatal(demo_site: Site) -> None:
    """Ledgers written before times were checked at the door may hold one; `person` must still work."""
    assert _sync(demo_site).exit_code == 0
    with sqlite3.connect(demo_site.ledger_path) as db:
        db.execute(
            "UPDATE evidence SET completed_at = ? "
            "WHERE user_id = (SELECT user_id FROM people WHERE username = 'u001')",
            [YEAR_10000],
        )
    db.close()
    table = _cli(demo_site, "person", "u001")
    assert table.exit_code == 0, table.output
    shown = json.loads(_cli(demo_site, "person", "u001", "--format", "json").output)
    assert {e["completed_at"] for e in shown["evidence"]} == {str(YEAR_10000)}
    assert f"  {YEAR_10000}  " in table.output.split("\nEvidence\n")[1]


def test_a_lone_surrogate_in_a_name_does_not_fail_the_sync(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def change(function: str, params: dict[str, Any], answer: Any) -> Any:
        if function == "core_user_get_users_by_field":
            for row in answer:
                if row["username"] == "u001":
                    row["firstname"], row["fullname"] = "Ja\ud800n", "Ja\ud800n Novák"
        return answer

    _tamper(monkeypatch, change)
    result = _sync(demo_site)
    assert result.exit_code == 0, result.output
    assert (
        "core_user_get_users_by_field: record id 3: firstname held an invalid character "
        "(a lone surrogate); U+FFFD stands in its place" in [r.getMessage() for r in caplog.records]
    )
    person = _cli(demo_site, "person", "u001")
    assert person.exit_code == 0
    assert person.output.splitlines()[0] == "Ja\ufffdn Novák (u001, EMP1001), active"


def test_a_non_integer_id_is_a_protocol_error_naming_the_record(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(function: str, params: dict[str, Any], answer: Any) -> Any:
        if function == "core_user_get_users_by_field":
            for row in answer:
                if row["username"] == "u002":
                    row["id"] = "4x"
        return answer

    _tamper(monkeypatch, change)
    result = _sync(demo_site)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: Moodle sent a user record (id '4x') that cannot be read: '4x' is not a whole number",
        "  hint: Moodle or a plugin answered outside its own format; check the record in Moodle",
    ]
    runs = json.loads(_cli(demo_site, "runs", "--format", "json").output)
    assert runs[0]["outcome"] == "failed" and "'4x' is not a whole number" in runs[0]["error"]


# -- item 4: output cannot attack its reader -----------------------------------------------------
def test_moodle_names_reach_tables_escaped_and_csv_neutralised(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(function: str, params: dict[str, Any], answer: Any) -> Any:
        if function == "core_user_get_users_by_field":
            for row in answer:
                if row["username"] == "u001":
                    row["fullname"] = "Jan\x1b[2J\x1b[31m Novák\u202e"
                    row["idnumber"] = '=HYPERLINK("http://evil.example")'
        if function == "core_course_get_courses":
            for course in answer:
                if course["id"] == 2:
                    course["fullname"] = "IT\x1b]0;owned\x07 bezpečnost"
                    course["enablecompletion"] = 0  # so that `courses` lists a problem quoting the name
        return answer

    _tamper(monkeypatch, change)
    assert _sync(demo_site).exit_code == 0
    person = _cli(demo_site, "person", "u001")
    assert (
        person.output.splitlines()[0]
        == 'Jan\\x1b[2J\\x1b[31m Novák\\u202e (u001, =HYPERLINK("http://evil.example")), active'
    )
    courses = _cli(demo_site, "courses", "--offline")
    assert any(
        line.split()[3:5] == ["IT\\x1b]0;owned\\x07", "bezpečnost"] for line in courses.output.splitlines()
    )
    assert "IT\\x1b]0;owned\\x07 bezpečnost' has completion" in courses.output
    outputs = [
        person.output,
        courses.output,
        _cli(demo_site, "status").output,
        _cli(demo_site, "runs").output,
    ]
    for output in outputs:
        assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) <= 0x9F or c == "\u202e" for c in output)
    export = _cli(demo_site, "export", "--format", "csv").output
    line = next(row for row in csv.reader(io.StringIO(export)) if row and row[0] == "u001")
    assert line[1] == '\'=HYPERLINK("http://evil.example")'


# -- item 6: export -o writes privately, never through a link --------------------------------------
def test_export_replaces_a_loose_file_with_a_private_one(demo_site: Site) -> None:
    assert _sync(demo_site).exit_code == 0
    target = demo_site.tmp / "out.csv"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o644)
    result = _cli(demo_site, "export", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text(encoding="utf-8").startswith("username,idnumber,")
    assert sorted(p.name for p in demo_site.tmp.iterdir() if p.name.startswith(".out.csv")) == []


def test_export_refuses_a_symlink(demo_site: Site) -> None:
    assert _sync(demo_site).exit_code == 0
    elsewhere = demo_site.tmp / "elsewhere.txt"
    elsewhere.write_text("keep\n", encoding="utf-8")
    link = demo_site.tmp / "link.csv"
    link.symlink_to(elsewhere)
    result = _cli(demo_site, "export", "-o", str(link))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: refusing to write {link}: it is a symbolic link",
        "  hint: an export holds personal data; give the path of a real file",
    ]
    assert elsewhere.read_text(encoding="utf-8") == "keep\n" and link.is_symlink()


# -- item 6: an exposed token file --------------------------------------------------------------------
def test_doctor_fails_a_token_file_others_can_read(demo_site: Site) -> None:
    token = demo_site.tmp / "token"
    token.chmod(0o644)
    result = _cli(demo_site, "doctor")
    assert result.exit_code != 0
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("[FAIL] token file: "))
    shown = " ".join(part.strip() for part in lines[start : start + 3])
    assert f"the token file {token} can be read by its group and other users (mode 0644)" in shown
    assert f"chmod 600 {token}" in result.output


# -- item 8: a whole-run deadline and SIGTERM -----------------------------------------------------------
def test_a_run_past_max_minutes_fails_cleanly_and_is_recorded(demo_site: Site) -> None:
    with demo_site.config_path.open("a", encoding="utf-8") as config:
        config.write("max_minutes = 0.01\n")  # the file ends in [sync]: 0.6 s
    demo_site.emulator.set_latency(250)  # type: ignore[attr-defined]
    result = _sync(demo_site)
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert re.fullmatch(r"error: core_\w+: the run passed its deadline of 0\.01 minutes; stopped", first), (
        first
    )
    runs = json.loads(_cli(demo_site, "runs", "--format", "json").output)
    assert runs[0]["outcome"] == "failed" and "the run passed its deadline" in runs[0]["error"]


@pytest.mark.slow
def test_sigterm_ends_a_sync_like_ctrl_c_and_records_it(demo_site: Site) -> None:
    demo_site.emulator.set_latency(200)  # type: ignore[attr-defined]
    process = sync_process(demo_site, env={"PYTHONUNBUFFERED": "1"})
    try:
        for _ in range(600):  # wait (at most 30 s) until the sync is talking to Moodle
            if demo_site.emulator.total_calls >= 2 or process.poll() is not None:  # type: ignore[attr-defined]
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == "interrupted (SIGTERM)"
    runs = json.loads(_cli(demo_site, "runs", "--format", "json").output)
    assert runs[0]["outcome"] == "failed" and runs[0]["error"] == "Terminated: interrupted (SIGTERM)"


def test_a_report_link_to_an_impossible_id_is_a_protocol_error(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    def change(function: str, params: dict[str, Any], answer: Any) -> Any:
        if function == "core_reportbuilder_retrieve_report":
            for row in answer["data"]["rows"]:
                row["columns"] = [
                    re.sub(r"profile\.php\?id=3\b", "profile.php?id=99999999999999999999", cell)
                    for cell in row["columns"]
                ]
        return answer

    _tamper(monkeypatch, change)
    result = _sync(demo_site, "--path", "report", "--full")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: a report row of 'u001' links to user_id 99999999999999999999, which cannot be a Moodle id"
    ]
