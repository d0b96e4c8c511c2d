"""Incremental evaluation gives what a full evaluation gives, byte for byte.

* ``RuleSet.stable_days``: on every day of the interval it returns, the rules decide exactly the
  same statuses (a property over drawn people, evidence, imported certificates and days).
* Two ledger files receive the same seeded random changes (people moving, leaving, being erased,
  new completions, imported certificates added and removed, places given, needs analyses saved) and
  the day moves forward and back; one is evaluated incrementally, the other in full every time.
  Their statuses, status history and roll-ups are equal after every run, and ``status --as-of``'s
  path (stored statuses reused) equals a full evaluation of the day, 60 days either side too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.cli import main
from connector.durations import Duration
from connector.evaluation import evaluate_into_ledger, evaluate_ledger, rollups_as_of, statuses_as_of
from connector.ledger import Ledger, StatusRow
from connector.ledger.imports import ImportedRow, Provenance
from connector.ledger.needs import AnalysisRow
from connector.mapping import Requirement, Target, load_mappings
from connector.moodle.records import Completion, Subject
from connector.reports.views import _department_filter
from connector.rules import DepartmentRollup, RuleSet, evaluate_person
from tests.helpers import ANCHOR, move_in_and_out, synced_demo_ledger
from tests.helpers import MAPPINGS as DEMO_MAPPINGS
from tests.test_rules_properties import COURSE_IDS, MAPPINGS, A, completions, days, instants, subjects
from tests.test_status_writes import completion, person

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
# every kind of target: shares over a period, over the needs analysis, of places given; appointed
RICH = replace(
    MAPPINGS,
    requirements=(
        *MAPPINGS.requirements,
        Requirement(
            "appointed", "a mayor in office", (), targets=(Target("appointed", 1, positions=("starosta",)),)
        ),
        Requirement(
            "needs",
            "over the needs analysis",
            (A,),
            "any",
            Duration(12, "months"),
            targets=(
                Target("share", 0.5, of="needs"),
                Target("share", 0.3, Duration(1, "years"), counts="enrolled"),
            ),
        ),
    ),
)


@st.composite
def certificates(draw: st.DrawFn, user_id: int = 1) -> Completion:
    """Imported evidence: naming a requirement, or a course with the certificate's own expiry."""
    named = draw(st.booleans())
    return Completion(
        user_id,
        0 if named else draw(st.sampled_from([10, 20])),
        draw(instants),
        "import:KÚ",
        86400,
        requirement_id=draw(st.sampled_from(["any24", "all12", "scoped"])) if named else None,
        expires_on=draw(st.none() | days),
    )


@settings(max_examples=400, deadline=None)
@given(subjects(), st.lists(completions() | certificates(), max_size=6), days, st.floats(0, 1))
def test_statuses_are_the_same_on_every_day_they_are_stable(
    subject: Subject, evidence: list[Completion], as_of: date, where: float
) -> None:
    rules = RuleSet(MAPPINGS, COURSE_IDS, as_of)
    statuses = rules.evaluate(subject, evidence)
    first, last = rules.stable_days(subject, evidence, statuses)
    assert first <= as_of <= last
    low, high = max(first, date(2017, 1, 1)), min(last, date(2031, 12, 31))
    inside = low + timedelta(days=int((high - low).days * where))
    for day in {low, high, inside}:
        assert evaluate_person(subject, evidence, MAPPINGS, COURSE_IDS, day) == statuses, day


def _tables(ledger: Ledger) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: ledger.db.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
        for table, order in (
            ("statuses", "user_id, requirement_id"),
            ("status_history", "id"),
            ("rollups", "run_id, department_id, requirement_id"),
        )
    }


def _full_rollups(ledger: Ledger, as_of: date) -> list[DepartmentRollup]:
    rows, builder = evaluate_ledger(ledger, RICH, COURSE_IDS, as_of)
    for _ in rows:
        pass
    return builder.build()


def _full_rows(ledger: Ledger, as_of: date) -> list[StatusRow]:
    rows, _ = evaluate_ledger(ledger, RICH, COURSE_IDS, as_of)
    return list(rows)  # in its order: statuses_as_of keeps it


def _change(
    ledger: Ledger, rng: random.Random, people: dict[int, dict[str, object]], step: int, as_of: date
) -> None:
    """One run's worth of changes, drawn from ``rng`` (the twin ledger gets the same draws)."""
    run = ledger.runs.start("incremental", as_of, now=NOW)
    with ledger.transaction():
        for user_id in rng.sample(sorted(people), 3):
            people[user_id] = person(user_id, rng)
        ledger.people.upsert([dict(p) for p in people.values()], run, as_of)
        if rng.random() < 0.3:  # erased: every row about them goes
            gone = rng.choice(sorted(people))
            del people[gone]
            ledger.suppressions.erase(gone, "asked", now=NOW)
        new = [completion(rng.choice(sorted(people)), rng, as_of) for _ in range(rng.randrange(8))]
        ledger.evidence.record(new, run, now=NOW)
        ledger.enrolments.upsert([(10, rng.choice(sorted(people)), None) for _ in range(3)], run)
        if rng.random() < 0.3:
            ledger.needs.save(
                as_of.year,
                as_of,
                [AnalysisRow(u, "needs", None, "missing") for u in rng.sample(sorted(people), 5)],
                now=NOW,
            )
    ledger.runs.finish(run, "ok", now=NOW)
    if rng.random() < 0.4:  # a certificate list imported between syncs (its own transaction)
        rows = [
            ImportedRow(
                line,
                rng.choice(sorted(people)),
                None,
                rng.choice(("any24", "all12", "forever")),
                as_of - timedelta(days=rng.randrange(-20, 800)),
                "KÚ",
                rng.choice((None, as_of + timedelta(days=rng.randrange(-100, 300)))),
            )
            for line in range(2, 2 + rng.randrange(1, 4))
        ]
        ledger.imports.record(Provenance("HR", f"list{step}.csv", f"{step:064x}", "hana"), rows, now=NOW)
    if step and rng.random() < 0.2:
        ledger.imports.remove(1, "wrong list", "hana", now=NOW)


def test_incremental_evaluation_equals_full_evaluation_after_random_changes_and_date_moves(
    tmp_path: Path,
) -> None:
    seeds, picks = random.Random(13), random.Random(7)
    for seed in range(3):
        rng_a, rng_b = random.Random(seed), random.Random(seed)
        people_a = {u: person(u, rng_a) for u in range(1, 61)}
        people_b = {u: person(u, rng_b) for u in range(1, 61)}
        as_of = date(2025, 1, 1)
        with (
            Ledger.open(tmp_path / f"incremental{seed}.sqlite") as incremental,
            Ledger.open(tmp_path / f"full{seed}.sqlite") as full,
        ):
            reevaluated = []
            for step in range(10):
                _change(incremental, rng_a, people_a, step, as_of)
                _change(full, rng_b, people_b, step, as_of)
                for ledger, everyone in ((incremental, False), (full, True)):
                    run = ledger.runs.start("incremental", as_of, now=NOW)
                    with ledger.transaction():
                        counts = evaluate_into_ledger(ledger, RICH, COURSE_IDS, as_of, run, full=everyone)
                    ledger.runs.finish(run, "ok", now=NOW)
                    if not everyone:
                        reevaluated.append(counts["people_evaluated"])
                assert _tables(incremental) == _tables(full), (seed, step)
                for day in (as_of, as_of - timedelta(days=60), as_of + timedelta(days=60)):
                    with incremental.transaction():
                        reused = rollups_as_of(incremental, RICH, COURSE_IDS, day).build()
                        rows = list(statuses_as_of(incremental, RICH, COURSE_IDS, day))
                    among = set(picks.sample(sorted(people_a), 12))
                    with incremental.transaction():
                        some = list(statuses_as_of(incremental, RICH, COURSE_IDS, day, among))
                    assert reused == _full_rollups(incremental, day), (seed, step, day)
                    assert rows == _full_rows(incremental, day), (seed, step, day)
                    assert some == [r for r in rows if r.user_id in among], (seed, step, day)
                as_of += timedelta(days=seeds.choice((0, 1, 30, 200, -45, 400)))
            assert min(reevaluated[1:]) < len(people_a)  # it did work incrementally


def _twin_ledgers(tmp_path: Path) -> tuple[Path, Path]:
    """The demo site synced twice (the CLI, the emulator over loopback), and a copy without the
    stored statuses' fingerprint: nothing may be reused there (everyone evaluated)."""
    (tmp_path / "reusing").mkdir()
    (tmp_path / "full").mkdir()
    reusing = synced_demo_ledger(tmp_path / "reusing", (ANCHOR - timedelta(days=120), ANCHOR))
    full = tmp_path / "full" / "demo.sqlite"
    shutil.copy2(reusing, full)
    with Ledger.open(full) as ledger, ledger.transaction():
        ledger.db.execute("DELETE FROM evaluation_state")
    return reusing, full


def test_status_as_of_prints_the_same_bytes_whether_it_reuses_stored_statuses_or_not(tmp_path: Path) -> None:
    """The demo site synced twice (the CLI, the emulator over loopback); `status --as-of` on days
    either side of the syncs, through a read-only ledger, against the same ledger without the stored
    statuses' fingerprint (so nothing may be reused: today's full path)."""
    reusing, full = _twin_ledgers(tmp_path)
    for offset in (-400, -100, -60, 0, 1, 60, 365):
        day = (ANCHOR + timedelta(days=offset)).isoformat()
        outputs = []
        for path in (reusing, full):
            for fmt in ("json", "table"):
                result = CliRunner().invoke(
                    main,
                    [
                        "--ledger",
                        str(path),
                        "--mappings",
                        str(DEMO_MAPPINGS),
                        "status",
                        "--as-of",
                        day,
                        "--format",
                        fmt,
                    ],
                )
                outputs.append((result.exit_code, result.stdout, result.stderr))
        assert outputs[:2] == outputs[2:], day
        assert outputs[0][0] == (2 if offset < -120 else 0)


@pytest.mark.parametrize(
    "command",
    [
        ("due", "--within", "90d"),
        ("due", "--within", "90d", "--department", "jablonec"),
        ("forecast", "--quarters", "4"),
        ("forecast", "--quarters", "4", "--department", "ljubljana"),
        ("export",),
    ],
    ids=["due", "due-department", "forecast", "forecast-department", "export"],
)
def test_due_forecast_and_export_print_the_same_bytes_whether_they_reuse_stored_statuses_or_not(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """`connector due`, `forecast` and `export --as-of` take the stored statuses that hold on
    their days and evaluate the others: the same output as evaluating everyone (the ledger
    without the stored statuses' fingerprint)."""
    reusing, full = _twin_ledgers(tmp_path)
    for offset in (-100, -60, 0, 1, 60, 365):
        day = (ANCHOR + timedelta(days=offset)).isoformat()
        outputs = [
            CliRunner().invoke(
                main,
                [
                    "--ledger",
                    str(path),
                    "--mappings",
                    str(DEMO_MAPPINGS),
                    command[0],
                    "--as-of",
                    day,
                    *command[1:],
                    "--format",
                    "json",
                ],
            )
            for path in (reusing, full)
        ]
        assert outputs[0].exit_code == outputs[1].exit_code == 0, outputs[0].stderr
        assert outputs[0].stdout == outputs[1].stdout, day
        assert json.loads(outputs[0].stdout) and outputs[0].stdout.count("\n") > 30


def test_changed_mappings_or_a_full_run_evaluate_everyone_again(tmp_path: Path) -> None:
    rng = random.Random(3)
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        run = ledger.runs.start("full", ANCHOR, now=NOW)
        with ledger.transaction():
            ledger.people.upsert([person(u, rng) for u in range(1, 31)], run, ANCHOR)
            evaluated = [evaluate_into_ledger(ledger, MAPPINGS, COURSE_IDS, ANCHOR, run)["people_evaluated"]]
            evaluated.append(
                evaluate_into_ledger(ledger, MAPPINGS, COURSE_IDS, ANCHOR, run)["people_evaluated"]
            )
            evaluated.append(evaluate_into_ledger(ledger, RICH, COURSE_IDS, ANCHOR, run)["people_evaluated"])
            evaluated.append(evaluate_into_ledger(ledger, RICH, COURSE_IDS, ANCHOR, run)["people_evaluated"])
            moved = {**COURSE_IDS, A: 11}  # a course reference resolves to another Moodle course
            evaluated.append(evaluate_into_ledger(ledger, RICH, moved, ANCHOR, run)["people_evaluated"])
            evaluated.append(
                evaluate_into_ledger(ledger, RICH, moved, ANCHOR, run, full=True)["people_evaluated"]
            )
    assert evaluated == [30, 0, 30, 0, 30, 30]


@pytest.mark.slow
def test_the_fingerprint_is_the_same_in_every_process() -> None:
    """Else every sync would evaluate everyone (str hashes differ between processes)."""
    code = (
        "from connector.mapping import load_mappings, DEMO_MAPPINGS; "
        "from connector.evaluation import evaluation_fingerprint as f; "
        "m = load_mappings(DEMO_MAPPINGS); print(f(m, {r: 1 for r in m.course_refs()}))"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(prints) == 1 and len(prints.pop().strip()) == 64


@pytest.mark.parametrize("department", ["jablonec", "ljubljana", "ljubljana.digitalizacija"])
def test_a_departments_forecast_is_the_whole_forecast_cut_to_its_subtree(
    tmp_path: Path, department: str
) -> None:
    """`forecast --department` evaluates that subtree's people alone: the same rows and failures as
    the whole forecast has for it, also after people moved in or out of it since the last sync."""
    reusing, _ = _twin_ledgers(tmp_path)
    move_in_and_out(reusing, department, "ceska-lipa")
    subtree = _department_filter(load_mappings(DEMO_MAPPINGS), department)
    for offset in (0, 60, 365):
        day = (ANCHOR + timedelta(days=offset)).isoformat()
        base = ["--ledger", str(reusing), "--mappings", str(DEMO_MAPPINGS), "forecast", "--as-of", day]
        whole = CliRunner().invoke(main, [*base, "--format", "json"])
        cut = CliRunner().invoke(main, [*base, "--department", department, "--format", "json"])
        assert whole.exit_code == cut.exit_code == 0, cut.stderr
        expected = json.loads(whole.stdout)
        for key in ("quarters", "fails_first"):
            expected[key] = [r for r in expected[key] if r["department"] in subtree]
        assert expected["quarters"] and json.loads(cut.stdout) == expected, day


@pytest.mark.parametrize("department", ["jablonec", "ljubljana.digitalizacija"])
def test_a_departments_due_list_is_the_whole_list_cut_to_its_subtree(tmp_path: Path, department: str) -> None:
    """`due --department` reads and evaluates that subtree's people alone: the rows the whole list
    has for it, also after people moved in or out of it or left since the last sync."""
    reusing, _ = _twin_ledgers(tmp_path)
    move_in_and_out(reusing, department, "ceska-lipa", deactivate=True)
    subtree = _department_filter(load_mappings(DEMO_MAPPINGS), department)
    for offset in (0, 60, 365):
        day = (ANCHOR + timedelta(days=offset)).isoformat()
        base = [
            "--ledger",
            str(reusing),
            "--mappings",
            str(DEMO_MAPPINGS),
            "due",
            "--as-of",
            day,
            "--within",
            "1y",
        ]
        whole = CliRunner().invoke(main, [*base, "--format", "json"])
        cut = CliRunner().invoke(main, [*base, "--department", department, "--format", "json"])
        assert whole.exit_code == cut.exit_code == 0, cut.stderr
        expected = [r for r in json.loads(whole.stdout) if r["department"] in subtree]
        assert expected and json.loads(cut.stdout) == expected, day
