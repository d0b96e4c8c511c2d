"""Every command's CSV header and table headings come from connector/reports/columns.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.reports import columns
from connector.reports.columns import Columns
from tests.helpers import MAPPINGS, synced_demo_ledger


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced_demo_ledger(tmp_path_factory.mktemp("columns"))


def _out(ledger: Path, *args: str) -> list[str]:
    result = CliRunner().invoke(main, ["--ledger", str(ledger), "--mappings", str(MAPPINGS), *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize(
    ("command", "spec"),
    [
        (["status", "--format", "csv"], columns.STATUS),
        (["export"], columns.EXPORT),
        (["runs", "--format", "csv"], columns.RUNS),
        (["person", "u001", "--format", "csv"], columns.PERSON_STATUSES),
        (["unplaced", "--format", "csv"], columns.UNPLACED),
        (["courses", "--offline", "--format", "csv"], columns.COURSES_MAPPED),
    ],
)
def test_each_csv_header_is_its_column_specification(ledger: Path, command: list[str], spec: Columns) -> None:
    assert _out(ledger, *command)[0] == ",".join(spec.csv)


def _headings(line: str) -> list[str]:
    return re.split(r"  +", line.strip())


def test_each_table_shows_the_headings_of_its_specification(ledger: Path) -> None:
    status = _out(ledger, "status")
    assert _headings(status[1]) == [heading for _, heading in columns.STATUS.table]
    assert _headings(_out(ledger, "runs")[0]) == [heading for _, heading in columns.RUNS.table]
    person = _out(ledger, "person", "u001")
    for title, spec in (
        ("Requirements", columns.PERSON_STATUSES),
        ("Evidence", columns.PERSON_EVIDENCE),
        ("History", columns.PERSON_HISTORY),
    ):
        assert _headings(person[person.index(title) + 1]) == [heading for _, heading in spec.table], title
    courses = _out(ledger, "courses", "--offline")
    assert _headings(courses[0]) == [heading for _, heading in columns.COURSES_MAPPED.table]
