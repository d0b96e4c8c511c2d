"""`status`, `due`, `forecast`, `report` and `needs` check the tables they read for damage while they
compute, and show nothing from a damaged one.

SQLite pages carry no checksum: a damaged page can be read as wrong numbers. `status` runs
``quick_check`` on a second connection beside its own work, on the tables it reads only, and waits
for the verdict before it prints. These tests trace, with SQLite's authorizer, every table the
command reads and every table the check covers, and damage one table's page at a time.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.ledger.rollups import Rollups
from tests.helpers import ANCHOR, MAPPINGS, synced_demo_ledger

DAY_AFTER = date(2026, 6, 16)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced_demo_ledger(tmp_path_factory.mktemp("soundness"), days=(date(2026, 6, 1), ANCHOR))


@pytest.fixture()
def ledger(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ledger.sqlite"
    shutil.copy2(pristine, copy)
    return copy


def status(ledger: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["--ledger", str(ledger), "--mappings", str(MAPPINGS), "status", "--format", "json", *args]
    )
    return result.exit_code, result.stdout, result.stderr


_NOT_IN_THE_FILE = {"sqlite_master", "json_each"}  # the schema, and a function read as a table


class Trace:
    """The tables SQLite is asked to read, and those ``PRAGMA quick_check`` is run on, over
    every connection opened while it is installed."""

    def __init__(self) -> None:
        self.read: set[str] = set()
        self.checked: set[str] = set()
        self.whole_file_checks = 0

    def authorize(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, _src: str | None
    ) -> int:
        if action == sqlite3.SQLITE_READ and arg1 and db != "temp" and arg1 not in _NOT_IN_THE_FILE:
            self.read.add(arg1)
        elif action == sqlite3.SQLITE_PRAGMA and arg1 == "quick_check":
            if arg2 is not None and not arg2.isdigit():
                self.checked.add(arg2)
            else:
                self.whole_file_checks += 1
        return sqlite3.SQLITE_OK


@pytest.fixture()
def trace(monkeypatch: pytest.MonkeyPatch) -> Iterator[Trace]:
    found = Trace()
    connect = sqlite3.connect

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_authorizer(found.authorize)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    yield found


@pytest.mark.parametrize("as_of", [None, DAY_AFTER], ids=["stored", "as-of"])
def test_status_checks_every_table_it_reads_and_no_other(
    ledger: Path, trace: Trace, as_of: date | None
) -> None:
    args = ["--as-of", as_of.isoformat()] if as_of else []
    code, out, err = status(ledger, *args)
    assert code == 0, err
    assert trace.read, "the trace saw no reads"
    assert trace.whole_file_checks == 0
    assert trace.read <= trace.checked, f"read but not checked: {sorted(trace.read - trace.checked)}"
    # the demo's targets count the year's needs and the places given: their tables are read too
    assert trace.checked == set(Rollups.tables_read(recomputed=as_of is not None, needs=True, enrolled=True))
    assert "status_history" not in trace.checked


def page_offset(path: Path, table: str) -> int:
    """Where in the file a leaf page of ``table`` starts (dbstat: SQLite's own map of the file)."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno LIMIT 1", [table]
        ).fetchone()
        assert row is not None, f"{table} has no leaf page"
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return (int(row[0]) - 1) * int(page_size)


def damage(path: Path, table: str) -> None:
    """Turn the first leaf page of ``table`` into something that is no b-tree page."""
    offset = page_offset(path, table)
    data = bytearray(path.read_bytes())
    data[offset] = 0x55  # page type byte: no valid b-tree page has it
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("table", ["statuses", "evidence", "people"])
def test_status_as_of_refuses_a_damaged_table_it_reads(ledger: Path, table: str, trace: Trace) -> None:
    damage(ledger, table)
    code, out, err = status(ledger, "--as-of", DAY_AFTER.isoformat())
    assert trace.whole_file_checks == 0  # the verdict is kept, not sought again over the whole file
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0].startswith(f"error: the ledger {ledger} is damaged"), err
    assert lines[1].startswith("  hint: restore the last backup"), err
    assert len(lines) == 2, err


def test_damage_where_status_does_not_read_leaves_its_answer_as_it_was(pristine: Path, ledger: Path) -> None:
    clean_stored = status(pristine)
    clean_as_of = status(pristine, "--as-of", DAY_AFTER.isoformat())
    assert clean_stored[0] == clean_as_of[0] == 0
    damage(ledger, "status_history")
    assert status(ledger) == clean_stored
    assert status(ledger, "--as-of", DAY_AFTER.isoformat()) == clean_as_of
    damage(ledger, "statuses")  # the stored roll-ups do not come from the statuses
    assert status(ledger) == clean_stored
    code, _, err = status(ledger, "--as-of", DAY_AFTER.isoformat())
    assert code == 1 and "is damaged" in err


def test_a_check_that_breaks_is_no_verdict_of_sound(ledger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A table the check could not walk for a reason of its own is not taken as sound: the
    command does not print numbers as if it had been checked."""
    from connector.ledger import soundness

    checked = soundness.quick_check

    def breaks_on_evidence(conn: sqlite3.Connection, tables: object = None) -> list[str]:
        if tables == ["evidence"]:
            raise RuntimeError("the check broke")
        return checked(conn, tables)  # type: ignore[arg-type]

    monkeypatch.setattr(soundness, "quick_check", breaks_on_evidence)
    code, out, err = status(ledger, "--as-of", DAY_AFTER.isoformat())
    assert code == 1 and out == ""
    assert err.startswith("internal error: RuntimeError: the check broke"), err


# The other read commands that check beside their work; "{out}" stands for a file to write.
DAY = DAY_AFTER.isoformat()
READ_COMMANDS = {
    "due": ("due", "--as-of", DAY),
    "due-department": ("due", "--as-of", DAY, "--department", "jablonec"),
    "forecast": ("forecast", "--format", "json"),
    "forecast-department": ("forecast", "--department", "ljubljana"),
    "report": ("report", "-o", "{out}"),
    "report-department": ("report", "-o", "{out}", "--department", "ljubljana"),
    "report-as-of": ("report", "-o", "{out}", "--as-of", "2026-09-01"),
    "needs": ("needs", "--year", "2026"),
    "needs-department": ("needs", "--year", "2026", "--department", "ljubljana"),
    "needs-csv": ("needs", "--year", "2026", "--format", "csv"),
    "person": ("person", "u001"),
    "person-json": ("person", "u001", "--format", "json"),
}


def run(ledger: Path, out: Path, command: tuple[str, ...]) -> tuple[int, str, str]:
    args = [a.replace("{out}", str(out)) for a in command]
    result = CliRunner().invoke(main, ["--ledger", str(ledger), "--mappings", str(MAPPINGS), *args])
    return result.exit_code, result.stdout, result.stderr


def assert_checked_what_was_read(trace: Trace) -> None:
    assert trace.read and trace.whole_file_checks == 0
    assert trace.read <= trace.checked, f"read but not checked: {sorted(trace.read - trace.checked)}"


@pytest.mark.parametrize("name", READ_COMMANDS)
def test_read_commands_check_every_table_they_read_beside_their_work(
    ledger: Path, trace: Trace, tmp_path: Path, name: str
) -> None:
    out = tmp_path / "out.html"
    code, stdout, stderr = run(ledger, out, READ_COMMANDS[name])
    assert code == 0, stderr
    assert stdout or out.exists()
    assert_checked_what_was_read(trace)


def test_due_with_other_mappings_checks_what_evaluating_everyone_reads(
    ledger: Path, trace: Trace, tmp_path: Path
) -> None:
    """Without the stored statuses' fingerprint everyone is evaluated, which reads what targets count."""
    with sqlite3.connect(ledger) as conn:
        conn.execute("DELETE FROM evaluation_state")
    code, stdout, stderr = run(ledger, tmp_path / "unused", READ_COMMANDS["due"])
    assert (code, stderr) == (0, "") and stdout
    assert_checked_what_was_read(trace)


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("due", "statuses"),
        ("due-department", "people"),
        ("forecast", "evidence"),
        ("report", "statuses"),
        ("needs", "statuses"),
        ("person", "status_history"),
        ("person-json", "evidence"),
    ],
)
def test_read_commands_show_and_write_nothing_from_a_damaged_table(
    ledger: Path, tmp_path: Path, name: str, table: str
) -> None:
    damage(ledger, table)
    out = tmp_path / "out.html"
    code, stdout, stderr = run(ledger, out, READ_COMMANDS[name])
    assert (code, stdout) == (1, "")
    assert "damaged" in stderr and not out.exists()
