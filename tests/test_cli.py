"""The command line as people and scripts use it: demo, emulator, help, errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import xmltodict
from click.testing import CliRunner

from connector.cli import main
from connector.mapping import DEMO_MAPPINGS
from tests.helpers import REPO


def test_demo_runs_a_real_sync_and_prints_the_status(tmp_path: Path) -> None:
    ledger = tmp_path / "demo.sqlite"
    result = CliRunner().invoke(main, ["--mappings", str(DEMO_MAPPINGS), "demo", "--ledger", str(ledger)])
    assert result.exit_code == 0, result.output
    assert "Compliance as of" in result.stdout
    assert (
        "Magistrát města Jablonec nad Nisou" in result.stdout and "Mestna občina Ljubljana" in result.stdout
    )
    assert "report path" in result.stderr  # the cheapest path the demo site offers
    assert "1 active person matches no department" in result.stdout  # u060 has no profile fields
    assert ledger.exists() and (ledger.stat().st_mode & 0o777) == 0o600


@pytest.mark.slow
def test_emulator_command_serves_site_info_in_json_and_xml() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connector.cli",
            "emulator",
            "--scenario",
            "demo",
            "--port",
            "0",
            "--token",
            "t0k",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.split("serving ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        form = {"wstoken": "t0k", "wsfunction": "core_webservice_get_site_info"}
        as_json = requests.post(url, data=dict(form, moodlewsrestformat="json"), timeout=10).json()
        as_xml = xmltodict.parse(requests.post(url, data=form, timeout=10).text)
        assert as_json["release"].startswith("4.1")
        keys = {k["@name"]: k for k in as_xml["RESPONSE"]["SINGLE"]["KEY"]}
        assert keys["release"]["VALUE"] == as_json["release"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    "command",
    [
        "sync",
        "status",
        "person",
        "export",
        "courses",
        "doctor",
        "demo",
        "emulator",
        "runs",
        "erase",
        "mappings",
        "unplaced",
    ],
)
def test_every_command_explains_itself(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 4


def test_status_without_a_ledger_is_one_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--ledger", str(tmp_path / "none.sqlite"), "--mappings", str(DEMO_MAPPINGS), "status"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no ledger at") and "Traceback" not in result.output


def test_bad_date_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status", "--as-of", "1.6.2026"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_sync_without_moodle_settings_says_where_to_put_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("MOODLE_URL", "MOODLE_TOKEN", "MOODLE_TOKEN_FILE", "CONNECTOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["--mappings", str(DEMO_MAPPINGS), "sync"])
    assert result.exit_code == 2
    assert "MOODLE_URL" in result.stderr and not (tmp_path / "compliance.sqlite").exists()
