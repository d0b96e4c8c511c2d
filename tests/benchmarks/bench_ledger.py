"""Rules + ledger end to end: N people x 10 requirements into a real SQLite ledger.

    python tests/benchmarks/bench_ledger.py [--people 100000] [--json FILE] [--keep DIR]

Writes people and their evidence, evaluates every person x requirement with the rules engine,
writes statuses (with history) and department roll-ups, all in one transaction, as a sync does.
Then, side by side with today's full path (everyone evaluated again; a rolled-back twin of each
step on the same ledger): the nightly's evaluation tail when nothing changed and when 1 % of the
people have a new completion (incremental: only who changed, roll-ups counted in SQL), and
`status --as-of` 60 days after, 60 days before and 1 day after the evaluated day (stored statuses reused).
Prints wall time per phase (and the CPU time of the first evaluation and write), rows per second
and the peak RSS of this process. ``--keep DIR``
leaves the ledger (``DIR/bench.sqlite``) and its mappings (``DIR/bench.toml``) there, to measure
the read commands on it (``connector --ledger DIR/bench.sqlite --mappings DIR export``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connector.evaluation import evaluate_into_ledger, resolve_courses, rollups_as_of  # noqa: E402
from connector.ledger import Ledger  # noqa: E402
from connector.mapping import load_mappings  # noqa: E402
from connector.moodle.records import Completion, Course  # noqa: E402
from tests.benchmarks.memory import peak_rss_mb  # noqa: E402

AS_OF = date(2026, 6, 15)
FIRST_SEEN = date(2025, 1, 1)  # the people's first sync: `status --as-of` 60 days back still sees them
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
DEPARTMENTS = 20
REQUIREMENTS = 10


def write_mappings(directory: Path) -> None:
    lines = [
        '[settings]\ntimezone = "Europe/Prague"\n',
        '[[department]]\nid = "city"\nname = "City"\ninstitution = "City"\n',
    ]
    for d in range(DEPARTMENTS):
        lines.append(
            f'[[department]]\nid = "city.d{d}"\nparent = "city"\nname = "Department {d}"\n'
            f'department = "Department {d}"\n'
        )
    for r in range(REQUIREMENTS):
        lines.append(f'[course.c{r}]\nidnumber = "C{r}"\ntitle = "Course {r}"\n')
    for r in range(REQUIREMENTS):
        validity = 'valid_for = "24 months"\nwarn_before = "60 days"\n' if r % 2 == 0 else ""
        target = (
            '[[requirement.target]]\nkind = "share"\nmin = "50 %"\nperiod = "2 years"\n'
            if r % 3 == 0
            else '[[requirement.target]]\nkind = "holders"\nmin = 1\n'
        )
        lines.append(
            f'[[requirement]]\nid = "r{r}"\ntitle = "Requirement {r}"\ncourses = ["c{r}"]\n{validity}{target}'
        )
    (directory / "bench.toml").write_text("\n".join(lines), encoding="utf-8")


class _Undo(Exception):
    """Raised to roll a timed step back, so that its twin runs on the same ledger."""


def _timed(ledger: Ledger, step: Callable[[], object], *, keep: bool) -> float:
    started = time.perf_counter()
    try:
        with ledger.transaction():
            step()
            if not keep:
                raise _Undo
    except _Undo:
        pass
    return round(time.perf_counter() - started, 2)


def side_by_side(
    path: Path, mappings: Any, course_ids: Any, people: int, rng: random.Random
) -> dict[str, float | int]:
    """The incremental paths and today's full ones on the same ledger states (the full twin of each
    step rolled back)."""
    figures: dict[str, float | int] = {}
    with Ledger.open(path) as ledger:

        def nightly(full: bool) -> Callable[[], object]:
            def step() -> object:
                run = ledger.runs.last("ok")
                assert run is not None
                return evaluate_into_ledger(ledger, mappings, course_ids, AS_OF, run["id"], full=full)

            return step

        def forget() -> Callable[[], object]:  # no stored statuses may be reused: today's path
            return lambda: ledger.db.execute("DELETE FROM evaluation_state")

        figures["nightly_no_change_full_s"] = _timed(ledger, nightly(True), keep=False)
        figures["nightly_no_change_incremental_s"] = _timed(ledger, nightly(False), keep=True)
        ledger.checkpoint()
        run = ledger.runs.start("incremental", AS_OF, now=NOW)
        changed = sorted(rng.sample(range(1, people + 1), max(1, people // 100)))
        late = int(time.mktime(AS_OF.timetuple())) - 86_400

        def new_completions() -> None:
            ledger.evidence.record(
                (Completion(u, 100 + u % REQUIREMENTS, late) for u in changed), run, now=NOW
            )

        def with_changes(full: bool) -> Callable[[], object]:
            def step() -> object:
                new_completions()
                return nightly(full)()

            return step

        figures["nightly_1pct_changed_full_s"] = _timed(ledger, with_changes(True), keep=False)
        figures["nightly_1pct_changed_incremental_s"] = _timed(ledger, with_changes(False), keep=True)
        ledger.runs.finish(run, "ok", now=NOW)
        ledger.checkpoint()
        for label, delta in (("60d_after", 60), ("60d_before", -60), ("1d_after", 1)):
            day = AS_OF + timedelta(days=delta)

            def as_of(day: date = day, forget_first: bool = False) -> None:
                if forget_first:
                    forget()()
                rollups_as_of(ledger, mappings, course_ids, day).build()

            figures[f"status_as_of_{label}_full_s"] = _timed(
                ledger, partial(as_of, forget_first=True), keep=False
            )
            figures[f"status_as_of_{label}_incremental_s"] = _timed(ledger, as_of, keep=False)
            figures[f"status_as_of_{label}_people_reevaluated"] = ledger.evaluated.select(day)
    wal = Path(str(path) + "-wal")
    figures["wal_mb_after_runs"] = round(wal.stat().st_size / 2**20, 1) if wal.exists() else 0.0
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", type=Path, help="leave the ledger and its mappings in this directory")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_mappings(root)
        mappings = load_mappings(root)
        courses = [
            Course(
                id=100 + r,
                shortname=f"c{r}",
                fullname=f"Course {r}",
                idnumber=f"C{r}",
                visible=True,
                completion_enabled=True,
            )
            for r in range(REQUIREMENTS)
        ]
        course_ids = resolve_courses(mappings, courses)
        start_epoch = 1_640_995_200  # 2022-01-01
        span = int(time.mktime(AS_OF.timetuple()) - start_epoch)
        t0 = time.perf_counter()
        with Ledger.open(root / "bench.sqlite") as ledger:
            run = ledger.runs.start("full", AS_OF, now=NOW)
            with ledger.transaction():
                ledger.courses.upsert(courses, run)
                people = (
                    {
                        "user_id": uid,
                        "username": f"u{uid}",
                        "idnumber": f"E{uid}",
                        "fullname": f"Person {uid}",
                        "institution": "City",
                        "department_text": f"Department {uid % DEPARTMENTS}",
                        "position": None,
                        "cohorts": "[]",
                        "department_id": f"city.d{uid % DEPARTMENTS}",
                        "placement_conflicts": None,
                        "start_date": None,
                        "lastaccess": 0,
                        "active": 0 if uid % 97 == 0 else 1,
                        "suspended": 0,
                    }
                    for uid in range(1, args.people + 1)
                )
                people_rows = ledger.people.upsert(people, run, FIRST_SEEN)
                t_people = time.perf_counter()
                evidence = (
                    Completion(uid, 100 + r, start_epoch + rng.randrange(span))
                    for uid in range(1, args.people + 1)
                    for r in range(REQUIREMENTS)
                    if rng.random() < 0.45
                )
                counts = ledger.evidence.record(evidence, run, now=NOW)
                t_evidence, cpu_evidence = time.perf_counter(), time.process_time()
                result = evaluate_into_ledger(ledger, mappings, course_ids, AS_OF, run)
                t_eval, cpu_eval = time.perf_counter(), time.process_time()
            ledger.runs.finish(run, "ok", now=NOW, counts=result)
        t_end = time.perf_counter()
        tails = side_by_side(root / "bench.sqlite", mappings, course_ids, args.people, rng)
        rows = people_rows + counts.new + result["statuses"] + result["status_changes"]
        figures = {
            "people": args.people,
            "requirements": REQUIREMENTS,
            "evidence_rows": counts.new,
            "status_rows": result["statuses"],
            "history_rows": result["status_changes"],
            "people_s": round(t_people - t0, 2),
            "evidence_s": round(t_evidence - t_people, 2),
            "evaluate_and_write_statuses_s": round(t_eval - t_evidence, 2),
            # CPU of this process: steadier than wall time on a machine others share
            "evaluate_and_write_statuses_cpu_s": round(cpu_eval - cpu_evidence, 2),
            "total_s": round(t_end - t0, 2),
            "rows_per_s": round(rows / (t_end - t0)),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            **tails,
        }
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for name in ("bench.sqlite", "bench.toml"):
                shutil.copy2(root / name, args.keep / name)
    for key, value in figures.items():
        print(f"{key:>32}: {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
