"""A sync writes only the statuses that changed, and what it leaves is what a full rewrite leaves.

Seeded random sequences of runs (new completions, people moving, leaving, coming back, the date
moving forward and sometimes back) over a real ledger file: after every run the stored statuses
equal a full re-evaluation, the history holds exactly the changes, and only changed rows were
written (the rest keep the run that decided them).
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.evaluation import evaluate_into_ledger, evaluate_ledger
from connector.ledger import Ledger, StatusRow
from connector.moodle.records import Completion
from tests.helpers import ANCHOR, Site
from tests.test_rules_properties import COURSE_IDS, MAPPINGS

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
DEPARTMENTS = (None, "org", "org.a", "org.b", "nz")
Key = tuple[int, str]
Values = tuple[object, ...]


def person(user_id: int, rng: random.Random) -> dict[str, object]:
    start = date(2024, 1, 1) + timedelta(days=rng.randrange(1200)) if rng.random() < 0.5 else None
    return {
        "user_id": user_id,
        "username": f"u{user_id}",
        "idnumber": str(user_id),
        "fullname": f"Person {user_id}",
        "institution": None,
        "department_text": None,
        "position": rng.choice((None, "úředník", "starosta")),
        "cohorts": "[]",
        "department_id": rng.choice(DEPARTMENTS),
        "placement_conflicts": None,
        "start_date": start.isoformat() if start else None,
        "lastaccess": None,
        "active": int(rng.random() < 0.9),
        "suspended": 0,
    }


def completion(user_id: int, rng: random.Random, around: date) -> Completion:
    day = around - timedelta(days=rng.randrange(-30, 900))  # some dated after as_of
    at = int(datetime(day.year, day.month, day.day, rng.randrange(24), tzinfo=UTC).timestamp())
    return Completion(user_id, rng.choice((10, 20)), at)


def stored(ledger: Ledger) -> dict[Key, tuple[Values, int]]:
    """(user, requirement) -> (what the status says, the run that wrote the row)."""
    rows = ledger.db.execute(
        "SELECT user_id, requirement_id, status, valid_until, since, due, evidence_id, completed_on, "
        "detail, department_id, run_id FROM statuses"
    )
    return {(r[0], r[1]): (tuple(r[2:10]), r[10]) for r in rows}


def reevaluated(ledger: Ledger, as_of: date) -> dict[Key, Values]:
    rows, _ = evaluate_ledger(ledger, MAPPINGS, COURSE_IDS, as_of)
    return {(r.user_id, r.requirement_id): tuple(r[2:]) for r in rows}


@pytest.mark.parametrize("seed", range(6))
def test_writing_only_changes_leaves_what_a_full_rewrite_leaves(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    as_of = date(2025, 1, 1)
    people = {u: person(u, rng) for u in range(1, 41)}
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        for step in range(8):
            run = ledger.runs.start("incremental", as_of, now=NOW)
            with ledger.transaction():
                for user_id in rng.sample(sorted(people), 8):  # moved, left or came back
                    people[user_id] = person(user_id, rng)
                ledger.people.upsert(list(people.values()), run, as_of)
                if step and rng.random() < 0.4:  # someone erased: their statuses end
                    gone = rng.choice(sorted(people))
                    del people[gone]
                    ledger.db.execute("DELETE FROM people WHERE user_id = ?", [gone])
                new = [completion(rng.choice(sorted(people)), rng, as_of) for _ in range(rng.randrange(12))]
                ledger.evidence.record(new, run, now=NOW)
                before = stored(ledger)
                history_before = ledger.db.execute("SELECT COUNT(*) FROM status_history").fetchone()[0]
                counts = evaluate_into_ledger(ledger, MAPPINGS, COURSE_IDS, as_of, run)
            expected = reevaluated(ledger, as_of)
            after = stored(ledger)
            assert {k: v for k, (v, _) in after.items()} == expected
            differ = {k for k, v in expected.items() if k not in before or before[k][0] != v}
            assert counts["statuses_written"] == len(differ)
            assert {k for k, (_, r) in after.items() if r == run} == differ  # the rest not rewritten
            changes = {k for k, v in expected.items() if k not in before or before[k][0][0] != v[0]}
            dropped = set(before) - set(expected)
            added = ledger.db.execute("SELECT COUNT(*) FROM status_history").fetchone()[0] - history_before
            assert counts["status_changes"] == added == len(changes) + len(dropped)
            as_of += timedelta(days=rng.choice((0, 1, 30, 200, -45)))  # sometimes --as-of an earlier day


def test_a_second_evaluation_with_nothing_changed_writes_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        run = ledger.runs.start("full", ANCHOR, now=NOW)
        with ledger.transaction():
            ledger.people.upsert([person(u, rng) for u in range(1, 201)], run, ANCHOR)
            ledger.evidence.record(
                [completion(rng.randrange(1, 201), rng, ANCHOR) for _ in range(300)], run, now=NOW
            )
            first = evaluate_into_ledger(ledger, MAPPINGS, COURSE_IDS, ANCHOR, run)
        again = ledger.runs.start("incremental", ANCHOR, now=NOW)
        with ledger.transaction():
            writes = ledger.db.conn.total_changes
            second = evaluate_into_ledger(ledger, MAPPINGS, COURSE_IDS, ANCHOR, again)
            writes = ledger.db.conn.total_changes - writes
            rollups = len(ledger.rollups.for_run(again))
    assert first["statuses_written"] == first["statuses"] == 200 * len(MAPPINGS.requirements)
    assert (second["statuses"], second["statuses_written"], second["status_changes"]) == (1000, 0, 0)
    # nobody changed and no status turns: nobody is evaluated again, only this run's roll-ups written
    assert (first["people_evaluated"], second["people_evaluated"]) == (200, 0)
    assert writes == rollups


def _first_evaluation(
    path: Path, sentinel: bool
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """A first evaluation of 60 people; ``sentinel``: with one stored status beforehand (of a
    person not in the ledger), so that the write stages and compares instead of filling an empty
    table. Returns (statuses, history in id order) of the evaluated people."""
    rng = random.Random(11)
    with Ledger.open(path) as ledger:
        run = ledger.runs.start("full", ANCHOR, now=NOW)
        with ledger.transaction():
            if sentinel:
                ledger.db.execute(
                    "INSERT INTO statuses (user_id, requirement_id, status, as_of, run_id) "
                    "VALUES (9999, 'gone', 'missing', '2020-01-01', ?)",
                    [run],
                )
            ledger.people.upsert([person(u, rng) for u in range(1, 61)], run, ANCHOR)
            ledger.evidence.record(
                [completion(rng.randrange(1, 61), rng, ANCHOR) for _ in range(150)], run, now=NOW
            )
            evaluate_into_ledger(ledger, MAPPINGS, COURSE_IDS, ANCHOR, run)
        statuses = ledger.db.execute(
            "SELECT * FROM statuses WHERE user_id < 9999 ORDER BY user_id, requirement_id"
        ).fetchall()
        history = ledger.db.execute(
            "SELECT user_id, requirement_id, from_status, to_status, changed_on, run_id, reason "
            "FROM status_history WHERE user_id < 9999 ORDER BY id"
        ).fetchall()
    return statuses, history


def test_a_first_evaluation_into_an_empty_ledger_writes_what_the_compared_write_does(tmp_path: Path) -> None:
    """The first sync's write (straight into the empty table, indexes rebuilt after) leaves the same
    statuses, the same history in the same order and the same indexes as the staged comparison."""
    first = _first_evaluation(tmp_path / "empty.sqlite", sentinel=False)
    compared = _first_evaluation(tmp_path / "staged.sqlite", sentinel=True)
    assert first == compared
    assert len(first[0]) == len(first[1]) == 60 * len(MAPPINGS.requirements)
    schema = "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'statuses' ORDER BY name"
    with sqlite3.connect(tmp_path / "empty.sqlite") as a, sqlite3.connect(tmp_path / "staged.sqlite") as b:
        assert a.execute(schema).fetchall() == b.execute(schema).fetchall()
        assert ("index", "statuses_rollup") in [(t, n) for t, n, _ in a.execute(schema)]


def test_a_failed_first_evaluation_leaves_the_indexes_of_statuses_in_place(tmp_path: Path) -> None:
    rng = random.Random(3)
    schema = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'statuses' ORDER BY name"
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        before = ledger.db.execute(schema).fetchall()
        run = ledger.runs.start("full", ANCHOR, now=NOW)

        def failing() -> Iterator[StatusRow]:
            yield from reevaluated_rows(ledger)
            raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError), ledger.transaction():
            ledger.people.upsert([person(u, rng) for u in range(1, 21)], run, ANCHOR)
            ledger.statuses.write(failing(), run, ANCHOR)
        assert ledger.db.execute(schema).fetchall() == before
        assert ledger.statuses.count() == 0


def test_a_first_evaluation_whose_rows_already_read_keeps_the_indexes_up_to_date(tmp_path: Path) -> None:
    """While a statement of the connection is still reading, SQLite refuses to drop an index: the
    first write then fills the table with its indexes in place instead of failing."""
    rng = random.Random(5)
    schema = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'statuses' ORDER BY name"
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        before = ledger.db.execute(schema).fetchall()
        run = ledger.runs.start("full", ANCHOR, now=NOW)
        with ledger.transaction():
            ledger.people.upsert([person(u, rng) for u in range(1, 21)], run, ANCHOR)
            rows = reevaluated_rows(ledger)
            first = next(rows)  # the people's cursor is open from here on
            ledger.statuses.write(itertools.chain([first], rows), run, ANCHOR)
        assert ledger.db.execute(schema).fetchall() == before
        assert ledger.statuses.count() == 20 * len(MAPPINGS.requirements)


def test_a_status_names_the_imported_row_that_decided_it_among_two_of_the_same_day(tmp_path: Path) -> None:
    """Two imported rows meeting a requirement on the same day: the one the rules chose (the
    provider named last wins a tie) is the one the stored status names, not whichever came last."""
    from connector.ledger.imports import ImportedRow, Provenance

    rng = random.Random(1)
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        run = ledger.runs.start("full", ANCHOR, now=NOW)
        with ledger.transaction():
            ledger.people.upsert([dict(person(1, rng), active=1, department_id="org")], run, ANCHOR)
        day = ANCHOR - timedelta(days=30)
        rows = [
            ImportedRow(2, 1, None, "forever", day, "Zeta"),
            ImportedRow(3, 1, None, "forever", day, "Alpha"),
        ]
        ledger.imports.record(Provenance("HR", "list.csv", "0" * 64, "hana"), rows, now=NOW)
        ids = {r["provider"]: r["id"] for r in ledger.imports.rows()}
        with ledger.transaction():
            evaluate_into_ledger(ledger, MAPPINGS, COURSE_IDS, ANCHOR, run)
        status = {r["requirement_id"]: r for r in ledger.statuses.for_user(1)}["forever"]
    assert status["detail"] == "evidence from import:Zeta"
    assert status["evidence_id"] == -ids["Zeta"]


def reevaluated_rows(ledger: Ledger) -> Iterator[StatusRow]:
    rows, _ = evaluate_ledger(ledger, MAPPINGS, COURSE_IDS, ANCHOR)
    return rows


@pytest.mark.slow
def test_a_nightly_sync_with_nothing_changed_writes_no_status_and_leaves_a_small_log(demo_site: Site) -> None:
    runner = CliRunner()
    args = ["--config", str(demo_site.config_path), "sync", "--as-of", ANCHOR.isoformat()]
    for _ in range(2):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    with sqlite3.connect(demo_site.ledger_path) as conn:
        first, second = [json.loads(c) for (c,) in conn.execute("SELECT counts FROM sync_runs ORDER BY id")]
        runs_in_statuses = {r for (r,) in conn.execute("SELECT DISTINCT run_id FROM statuses")}
    assert first["statuses_written"] == first["statuses"] > 0
    assert (second["statuses_written"], second["status_changes"]) == (0, 0)
    assert second["statuses"] == first["statuses"]
    assert runs_in_statuses == {1}
    wal = demo_site.ledger_path.with_name(demo_site.ledger_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_ledger_keeps_its_write_ahead_log_small_after_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path) as ledger:
        limit = ledger.db.execute("PRAGMA journal_size_limit").fetchone()[0]
        run = ledger.runs.start("full", ANCHOR, now=NOW)
        with ledger.transaction():
            ledger.evidence.record(
                [Completion(u, 10, 1_700_000_000 + u * 60) for u in range(20_000)], run, now=NOW
            )
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size > 1_000_000  # the transaction went through the log
        ledger.checkpoint()
        assert wal.stat().st_size == 0
    assert limit == 4 * 2**20


@pytest.mark.slow
def test_the_streamed_export_names_what_a_recomputed_export_names(tmp_path: Path) -> None:
    """``export`` (stored statuses, one join) equals ``export --as-of`` the same day (recomputed)."""
    from connector.mapping import load_mappings
    from connector.reports.views import export_rows
    from tests.helpers import MAPPINGS as DEMO
    from tests.helpers import synced_demo_ledger

    mappings = load_mappings(DEMO)
    with Ledger.open_readonly(synced_demo_ledger(tmp_path)) as ledger:
        day, stored_rows = export_rows(ledger, mappings)
        streamed = list(stored_rows)
        again, recomputed = export_rows(ledger, mappings, as_of=day)
        order = lambda r: (r["username"], r["requirement"])  # noqa: E731  (stored: by requirement id)
        assert (day, streamed) == (again, sorted(recomputed, key=order))
    assert day == ANCHOR and len(streamed) > 100
    assert {r["decided_by_course"] for r in streamed} > {None}
    assert any(r["decided_by_completed_at"] for r in streamed)


def test_csv_lines_hold_one_chunk_of_rows_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.reports import formats
    from connector.reports.formats import csv_lines, render_csv

    monkeypatch.setattr(formats, "CSV_CHUNK_ROWS", 2)
    read: list[int] = []

    def rows() -> Iterator[dict[str, object]]:
        for n in range(3):
            read.append(n)
            yield {"a": n, "b": "x\ry" if n == 2 else None}

    lines = csv_lines(rows(), ["a", "b"], "excel-cs")
    assert (next(lines), read) == ("\ufeffa;b\n", [])
    assert (next(lines), read) == ("0;\n1;\n", [0, 1])
    assert list(lines) == ['"2";"x\ry"\n']
    assert render_csv(list(rows()), ["a", "b"], "excel-cs") == '\ufeffa;b\n0;\n1;\n"2";"x\ry"'


def test_plain_csv_rendered_in_bulk_still_defuses_every_formula_and_carriage_return(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bulk path must fall back to the cell rules wherever one matters, at any cell position."""
    from connector.reports import formats
    from connector.reports.formats import render_csv

    monkeypatch.setattr(formats, "CSV_CHUNK_ROWS", 3)
    cells = [
        "plain",
        "=1+1",
        "+1",
        "-1",
        "@SUM(A1)",
        "\tx",
        "a\rb",
        "a,=b",
        "2026-01-05",
        None,
        7,
        True,
        0.125,
    ]
    rows = [{"a": "ok", "b": value} for value in cells] + [{"a": value, "b": "ok"} for value in cells]
    assert render_csv(rows, ["a", "b"]).split("\n")[1:] == [
        "ok,plain", "ok,'=1+1", "ok,'+1", "ok,'-1", "ok,'@SUM(A1)", "ok,'\tx", '"ok","a\rb"', 'ok,"a,=b"',
        "ok,2026-01-05", "ok,", "ok,7", "ok,true", "ok,0.125",
        "plain,ok", "'=1+1,ok", "'+1,ok", "'-1,ok", "'@SUM(A1),ok", "'\tx,ok", '"a\rb","ok"', '"a,=b",ok',
        "2026-01-05,ok", ",ok", "7,ok", "true,ok", "0.125,ok",
    ]  # fmt: skip


def test_a_checkpoint_does_not_wait_for_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.open(path) as ledger:
        ledger.wait_for_writers(30)
        run = ledger.runs.start("full", ANCHOR, now=NOW)
        with ledger.transaction():
            ledger.evidence.record(
                [Completion(u, 10, 1_700_000_000 + u * 60) for u in range(5_000)], run, now=NOW
            )
        reader = sqlite3.connect(path)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT COUNT(*) FROM evidence").fetchone()  # holds a snapshot
            ledger.checkpoint()  # returns: the reader keeps its snapshot, the log waits for later
            assert ledger.db.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
            assert path.with_name(path.name + "-wal").stat().st_size > 0
        finally:
            reader.close()
        ledger.checkpoint()
        assert path.with_name(path.name + "-wal").stat().st_size == 0


@pytest.mark.slow
def test_the_streamed_export_names_imported_evidence_as_the_recomputed_one(demo_site: Site) -> None:
    runner = CliRunner()

    def connector(*args: str) -> str:
        result = runner.invoke(main, ["--config", str(demo_site.config_path), *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    connector("sync", "--as-of", ANCHOR.isoformat())
    (demo_site.tmp / "a.csv").write_text(
        "username,course,date,provider\nu003,itsec-cz,2026-05-04,KÚ\n", encoding="utf-8"
    )
    connector("evidence", "import", str(demo_site.tmp / "a.csv"), "--source", "HR")
    connector("sync", "--as-of", ANCHOR.isoformat())
    streamed = json.loads(connector("export", "--format", "json"))
    recomputed = json.loads(connector("export", "--format", "json", "--as-of", ANCHOR.isoformat()))
    order = lambda r: (r["username"], r["requirement"])  # noqa: E731
    assert streamed == sorted(recomputed, key=order)
    assert {r["decided_by_source"] for r in streamed} == {None, "moodle", "import:KÚ"}
