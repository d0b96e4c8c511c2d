"""What a person reads: exact lines for the rough edges of issue 8 (doctor, busy port, aborted
prompt, exit codes, the demo's hint, unplaced people, --as-of before the first sync, departments
with the same name in two organisations)."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.mapping import DEMO_MAPPINGS

REPO = Path(__file__).resolve().parents[1]
M = str(DEMO_MAPPINGS)


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real demo sync (emulator over loopback) shared by the read-only tests of this module."""
    ledger = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    code, _, err = run("demo", "--ledger", str(ledger))
    assert code == 0, err
    return ledger


@pytest.fixture
def own_ledger(demo_ledger: Path, tmp_path: Path) -> Path:
    """A private copy of the demo ledger for a test that writes."""
    copy = tmp_path / "demo.sqlite"
    shutil.copyfile(demo_ledger, copy)
    copy.chmod(0o600)
    return copy


# -- c. erase ------------------------------------------------------------------------------------
def test_erase_answered_no_erases_nothing_and_says_so(own_ledger: Path) -> None:
    code, out, err = run("--ledger", str(own_ledger), "--mappings", M, "erase", "u001",
                         "--reason", "GDPR request 17", input="n\n")
    assert (code, err.splitlines()[-1]) == (1, "aborted: nothing was erased")
    assert "internal error" not in out + err
    code, out, _ = run("--ledger", str(own_ledger), "--mappings", M, "person", "u001", "--format", "json")
    assert code == 0 and '"username": "u001"' in out


@pytest.mark.parametrize("reason", ["", "   "])
def test_erase_refuses_an_empty_reason(own_ledger: Path, reason: str) -> None:
    code, out, err = run("--ledger", str(own_ledger), "--mappings", M, "erase", "u001",
                         "--reason", reason, "--yes")
    assert code == 2
    assert err.splitlines() == [
        "error: --reason is empty: say why this person's data is erased",
        '  hint: e.g. --reason "GDPR request 2026-17"; it is kept in the erasures table as the '
        "record of why the data went"]


def test_erase_with_a_reason_still_erases(own_ledger: Path) -> None:
    code, out, _ = run("--ledger", str(own_ledger), "--mappings", M, "erase", "u001",
                       "--reason", "GDPR request 17", input="y\n")
    assert code == 0 and out.splitlines()[-1].startswith("erased ")


# -- b. emulator on a busy port --------------------------------------------------------------------
def test_emulator_on_a_busy_port_is_one_clean_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run("emulator", "--port", str(port))
    assert code == 2
    assert err.splitlines() == [f"error: port {port} on 127.0.0.1 is in use",
                                "  hint: pass --port 0 for any free port, or another port"]
    assert out == ""
