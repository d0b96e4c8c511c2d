"""The one error path: every command runs inside ConnectorGroup.invoke, which turns each kind of
failure into its one-line message and its ExitStatus (README "Exit codes")."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import connector.cli.app
from connector.cli import main
from connector.cli.app import ConnectorGroup, Terminated
from connector.errors import ConnectorError, ExitStatus, SyncLocked, UsageError
from tests.helpers import REPO


def _group_raising(exc: BaseException) -> ConnectorGroup:
    """A root group like `main` whose one command raises ``exc``."""

    @click.group(cls=ConnectorGroup)
    def root() -> None:
        pass

    @root.command()
    def boom() -> None:
        raise exc

    return root


@pytest.mark.parametrize(
    ("exc", "status", "stderr"),
    [
        (ConnectorError("Moodle said no"), ExitStatus.FAILED, "error: Moodle said no\n"),
        (
            ConnectorError("Moodle said no", hint="ask the admin"),
            ExitStatus.FAILED,
            "error: Moodle said no\n  hint: ask the admin\n",
        ),
        (
            UsageError("port 80 on 127.0.0.1 is in use"),
            ExitStatus.BAD_INPUT,
            "error: port 80 on 127.0.0.1 is in use\n",
        ),
        (
            SyncLocked("another sync holds the lock"),
            ExitStatus.LOCKED,
            "error: another sync holds the lock\n",
        ),
        (KeyboardInterrupt(), ExitStatus.INTERRUPTED, "interrupted\n"),
        (Terminated("interrupted (SIGTERM)"), ExitStatus.TERMINATED, "interrupted (SIGTERM)\n"),
        (click.Abort(), ExitStatus.FAILED, "aborted\n"),
        (
            RuntimeError("boom"),
            ExitStatus.FAILED,
            "internal error: RuntimeError: boom (run with --log-level debug for details and report it)\n",
        ),
    ],
)
def test_each_kind_of_failure_is_one_message_and_its_exit_status(
    exc: BaseException, status: ExitStatus, stderr: str
) -> None:
    result = CliRunner().invoke(_group_raising(exc), ["boom"])
    assert (result.exit_code, result.stdout, result.stderr) == (status, "", stderr)


def test_a_ledger_failure_under_a_command_is_a_ledger_error_line() -> None:
    result = CliRunner().invoke(_group_raising(sqlite3.DatabaseError("file is not a database")), ["boom"])
    assert (result.exit_code, result.stdout) == (ExitStatus.FAILED, "")
    assert result.stderr.splitlines()[0] == "error: the ledger is damaged (file is not a database)"


def test_clicks_own_usage_errors_and_exits_pass_through() -> None:
    result = CliRunner().invoke(_group_raising(click.exceptions.Exit(3)), ["boom"])
    assert result.exit_code == 3 and result.stderr == ""
    result = CliRunner().invoke(_group_raising(click.UsageError("no such thing")), ["boom"])
    assert result.exit_code == 2 and result.stderr.splitlines()[-1] == "Error: no such thing"


def test_a_bug_in_any_real_command_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_path: Path | None) -> None:
        raise RuntimeError("boom")

    assert isinstance(main, ConnectorGroup)
    monkeypatch.setattr(connector.cli.app, "load_config", broken)
    for command in (["sync"], ["status"], ["runs"], ["mappings", "check"], ["upgrade"]):
        result = CliRunner().invoke(main, command)
        assert (result.exit_code, result.stderr) == (
            1,
            "internal error: RuntimeError: boom (run with --log-level debug for details and report it)\n",
        ), command


def test_the_readme_exit_codes_are_the_exit_statuses() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {
        int(code) for row in re.findall(r"^\| ([\d /]+) \|", section, re.MULTILINE) for code in row.split("/")
    }
    assert documented == {int(status) for status in ExitStatus}
