"""Sync against the emulator: the naive peer, every completion path, and the nightly runs.

    python tests/benchmarks/bench_sync.py --scenario small|medium|large|xl [--runs NAME,...]
        [--latency-ms 25] [--workers 4] [--report-row-ms 0.5] [--enrolled-row-ms 0.9] [--json FILE]
        [--no-report-filter] [--keep DIR]

The emulator (in this process) serves the seeded scenario on 127.0.0.1 with a fixed pool of
server workers. Each measured run happens in a fresh ``spawn`` child process, so its peak RSS is
its own (and its client CPU time, and the largest its ledger's write-ahead log grew). Runs, in
order (``--runs`` picks some; a run also brings the runs whose ledger it starts from):

* ``naive``: what a typical script does: ``core_enrol_get_enrolled_users`` per course, then one
  ``core_completion_get_course_completion_status`` per enrolment, sequentially, plain requests
  (by default on small and medium only: on large it would take hours);
* ``full_report`` / ``full_per_user`` / ``full_per_course``: a first full sync into a fresh ledger
  with that completion path forced (the report path only when the scenario has a report);
* ``nightly_nochange`` / ``nightly_1pct``: incremental syncs on the report path after
  ``full_report``, with nothing changed and after 1 % of people newly completed a course;
* ``nightly_nochange_fallback`` / ``nightly_1pct_fallback``: the same on a site without the
  report (``completion_path = "auto"``, no report id), after ``full_per_user``.

``xl`` (100,000 people, 400,000 enrolments) runs the report path's three by default: a fallback
full sync there is hundreds of thousands of calls.

Calls are counted by the emulator (what the server saw, retries included).

The bounds. A call holds a server worker for ``latency`` plus a per-row cost (the emulator's own
rendering of the answer counts toward it, as Moodle's does on a real site): report rows
``--report-row-ms`` each, enrolled-user rows ``--enrolled-row-ms`` each. The defaults, 25 ms,
0.5 ms and 0.9 ms, are what the fixtures README measured on a real Moodle 4.1 ("Cost at scale"):
a flat per-call latency alone would make huge pages look free. So two bounds are printed:

* ``bound_s = calls x latency / workers``: the issue's bound, the least time the server's
  workers need for the calls alone (the naive script makes one call at a time: its bound uses one
  worker);
* ``bound_rows_s = (calls x latency + report rows x report-row-ms + enrolled rows x
  enrolled-row-ms) / workers``: the least time the server needs for everything it was charged.

No client can beat ``bound_rows_s`` while respecting the worker limit, so ``wall / bound_rows_s``
is the honest efficiency (``ratio`` in ``--json``); on call-dominated paths both bounds are
nearly equal.

Correctness is checked in the benchmark: after each full sync the ledger's evidence must be
exactly the scenario's completions (user, course, minute) for mapped courses, and every nightly
run after the 1 % change must hold every new completion. A mismatch prints what is missing and
exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import secrets
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from connector.config import Config  # noqa: E402
from connector.emulator import Emulator, Scenario, scenario_by_name  # noqa: E402
from tests.benchmarks.memory import peak_rss_mb  # noqa: E402

ANCHOR = date(2026, 6, 15)
REQUIREMENTS = 10
NAIVE_SCENARIOS = ("small", "medium")
RUN_NAMES = (
    "naive",
    "full_report",
    "full_per_user",
    "full_per_course",
    "nightly_nochange",
    "nightly_nochange_fallback",
    "nightly_1pct",
    "nightly_1pct_fallback",
)
# the run whose ledger a run starts from (the fallback nights: full_per_user, or full_per_course)
STARTS_FROM = {
    "nightly_nochange": "full_report",
    "nightly_1pct": "nightly_nochange",
    "nightly_nochange_fallback": "full_per_user",
    "nightly_1pct_fallback": "nightly_nochange_fallback",
}
REPORT_RUNS = ("full_report", "nightly_nochange", "nightly_1pct")
ENROLLED_PAGE = 1000
COMPLETION_STATUS = "core_completion_get_course_completion_status"
ENROLLED_USERS = "core_enrol_get_enrolled_users"
REPORT = "core_reportbuilder_retrieve_report"


# -- the site's mappings ------------------------------------------------------------------------
def write_mappings(directory: Path, scenario: Scenario) -> None:
    """Organisations by institution, departments by department name, requirements over courses."""
    people = list(scenario.live_people())
    parent_of: dict[str, str] = {}
    for person in people:
        parent_of.setdefault(person.department, person.institution)
    institutions = sorted(set(parent_of.values()))
    org_id = {name: f"org{k + 1}" for k, name in enumerate(institutions)}
    lines = ['[settings]\ntimezone = "Europe/Prague"\nposition_field = "position"\n']
    for name in institutions:
        lines.append(f'[[department]]\nid = "{org_id[name]}"\nname = "{name}"\ninstitution = "{name}"\n')
    for k, (department, institution) in enumerate(sorted(parent_of.items())):
        lines.append(
            f'[[department]]\nid = "{org_id[institution]}.d{k + 1}"\nparent = "{org_id[institution]}"\n'
            f'name = "{department}"\ndepartment = "{department}"\n'
        )
    courses = [c for c in scenario.courses if c.idnumber]
    for course in courses:
        lines.append(
            f'[course.{course.idnumber.lower()}]\nidnumber = "{course.idnumber}"\n'
            f'title = "{course.fullname}"\n'
        )
    for r in range(min(REQUIREMENTS, len(courses))):
        names = ", ".join(f'"{c.idnumber.lower()}"' for c in courses[r::REQUIREMENTS])
        validity = 'valid_for = "24 months"\nwarn_before = "60 days"\n' if r % 2 == 0 else ""
        lines.append(
            f'[[requirement]]\nid = "r{r + 1}"\ntitle = "Requirement {r + 1}"\ncourses = [{names}]\n'
            f'{validity}[[requirement.target]]\nkind = "share"\nmin = "50 %"\n'
        )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench.toml").write_text("\n".join(lines), encoding="utf-8")


def mapped_course_ids(scenario: Scenario) -> set[int]:
    return {c.id for c in scenario.courses if c.idnumber and c.completion_enabled}


def expected_evidence(scenario: Scenario) -> set[tuple[int, int, int]]:
    mapped = mapped_course_ids(scenario)
    return {
        (c.user_id, c.course_id, c.completed_at // 60) for c in scenario.completions if c.course_id in mapped
    }


def ledger_evidence(path: Path) -> set[tuple[int, int, int]]:
    with sqlite3.connect(path) as conn:
        return {
            (u, c, m)
            for u, c, m in conn.execute(
                "SELECT user_id, course_id, completed_minute FROM evidence WHERE gone_since_run IS NULL"
            )
        }


# -- one measured run (in a child process) ------------------------------------------------------
@dataclass(frozen=True)
class SyncJob:
    url: str
    token: str
    ledger: str
    mappings: str
    workers: int
    completion_path: str
    report_id: int | None
    full: bool
    as_of: date


def run_sync_job(job: SyncJob) -> dict[str, Any]:
    """One connector sync; returns its counts, its wall time and this process's peak RSS."""
    from connector.clock import utc_now
    from connector.sync import SyncOptions, run_sync

    config = Config(
        moodle_url=job.url,
        token=job.token,
        ledger_path=Path(job.ledger),
        mappings_dir=Path(job.mappings),
        concurrency=job.workers,
        report_id=job.report_id,
        completion_path=job.completion_path,
        full_every_days=7,
    )
    written = _own_written_bytes()
    with WalWatch(Path(job.ledger + "-wal")) as wal:
        cpu = time.process_time()
        started = time.perf_counter()
        result = run_sync(config, SyncOptions(full=job.full, as_of=job.as_of), now=utc_now())
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return {
        "wall_s": wall,
        "client_cpu_s": cpu,
        "counts": result.counts,
        "mode": result.mode,
        "path": result.completion_path,
        "client_calls": result.calls,
        "phases": result.phases,
        "peak_rss_mb": peak_rss_mb(),
        "wal_peak_mb": wal.peak / 2**20,
        "written_mb": (_own_written_bytes() - written) / 2**20,
        "ledger_mb": Path(job.ledger).stat().st_size / 2**20,
    }


class WalWatch:
    """The largest size a ledger's ``-wal`` file reaches while it runs (sampled every 20 ms; the
    ledger folds the log back and removes it when it closes, so the end shows nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, self.path.stat().st_size)
            except FileNotFoundError:
                pass
            if self._stop.wait(0.02):
                return

    def __enter__(self) -> WalWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _own_written_bytes() -> int:
    """Bytes this process passed to write() (Linux ``/proc/self/io``), 0 where unknown."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_naive_job(url: str, token: str, course_ids: Sequence[int]) -> dict[str, Any]:
    """The typical script: list each course's enrolments, then ask one completion at a time."""
    import requests

    endpoint = url + "/webservice/rest/server.php"
    started = time.perf_counter()
    cpu = time.process_time()
    completions = listed = 0
    with requests.Session() as session:

        def call(function: str, params: dict[str, Any]) -> Any:
            form = {"wstoken": token, "wsfunction": function, "moodlewsrestformat": "json", **params}
            response = session.post(endpoint, data=form, timeout=60)
            response.raise_for_status()
            return response.json()

        for course_id in course_ids:
            offset = 0
            while True:
                page = call(
                    ENROLLED_USERS,
                    {
                        "courseid": course_id,
                        "options[0][name]": "limitfrom",
                        "options[0][value]": offset,
                        "options[1][name]": "limitnumber",
                        "options[1][value]": ENROLLED_PAGE,
                    },
                )
                listed += len(page)
                for user in page:
                    status = call(COMPLETION_STATUS, {"courseid": course_id, "userid": user["id"]})
                    completions += bool(status.get("completionstatus", {}).get("completed"))
                if len(page) < ENROLLED_PAGE:
                    break
                offset += ENROLLED_PAGE
    return {
        "wall_s": time.perf_counter() - started,
        "client_cpu_s": time.process_time() - cpu,
        "counts": {"completed": completions, "enrolments_listed": listed},
        "peak_rss_mb": peak_rss_mb(),
    }


def in_child(fn: Callable[..., dict[str, Any]], *args: Any, isolate: bool = True) -> dict[str, Any]:
    """fn(*args) in a fresh spawned process (its own peak RSS), or here when not isolating."""
    if not isolate:
        return fn(*args)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


# -- the benchmark ------------------------------------------------------------------------------
@dataclass
class Bench:
    scenario: Scenario
    emulator: Emulator
    token: str
    root: Path
    workers: int
    latency_ms: float
    report_row_ms: float
    enrolled_row_ms: float
    isolate: bool = True
    runs: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def mappings_dir(self) -> Path:
        return self.root / "mappings"

    def measure(
        self, name: str, fn: Callable[..., dict[str, Any]], *args: Any, workers: int | None = None
    ) -> dict[str, Any]:
        """One run in its own process; ``workers``: how many calls it can have at once."""
        workers = workers or self.workers
        self.emulator.reset_counts()
        outcome = in_child(fn, *args, isolate=self.isolate)
        calls_by_function = dict(sorted(self.emulator.call_counts().items()))
        calls = sum(calls_by_function.values())
        run = {
            "name": name,
            "calls": calls,
            "calls_by_function": calls_by_function,
            "wall_s": round(outcome["wall_s"], 3),
            "bound_s": round(calls * self.latency_ms / 1000 / workers, 3),
            "peak_rss_mb": round(outcome["peak_rss_mb"], 1),
            "client_cpu_s": round(outcome["client_cpu_s"], 2),
            "ledger_mb": round(outcome.get("ledger_mb", 0.0), 1),
            "wal_peak_mb": round(outcome.get("wal_peak_mb", 0.0), 1),
            "written_mb": round(outcome.get("written_mb", 0.0), 1),
            "ledger_rows_per_s": round(ledger_rows(outcome.get("counts", {})) / max(outcome["wall_s"], 1e-9)),
            "per_call_ms": round(outcome["wall_s"] * 1000 / max(calls, 1), 2),
            "mode": outcome.get("mode"),
            "path": outcome.get("path"),
            "counts": outcome.get("counts", {}),
            "phases_s": {k: round(v, 2) for k, v in outcome.get("phases", {}).items()},
        }
        run["bound_rows_s"] = round(self.rows_bound(calls, outcome, workers), 3)
        run["ratio"] = round(run["wall_s"] / run["bound_rows_s"], 2) if run["bound_rows_s"] else None
        self.runs.append(run)
        print(format_run(run), flush=True)
        return run

    def rows_bound(self, calls: int, outcome: dict[str, Any], workers: int) -> float:
        """Server time charged, spread over the workers; rows as the run reports reading them
        (the report's calibration sample is left out, so this bound errs on the strict side)."""
        counts = outcome.get("counts", {})
        enrolled = (
            counts.get("enrolments", counts.get("enrolments_listed", 0))
            if outcome.get("path") != "report"
            else 0
        )
        charged = (
            calls * self.latency_ms
            + counts.get("report_rows", 0) * self.report_row_ms
            + enrolled * self.enrolled_row_ms
        )
        return charged / 1000 / workers

    def sync_job(self, ledger: Path, path: str, *, full: bool, as_of: date, report: bool = True) -> SyncJob:
        report_id = self.scenario.report.id if report and self.scenario.report else None
        return SyncJob(
            self.emulator.url,
            self.token,
            str(ledger),
            str(self.mappings_dir),
            self.workers,
            path,
            report_id,
            full,
            as_of,
        )

    def full_sync(self, name: str, path: str) -> Path | None:
        if path == "report" and self.scenario.report is None:
            return None  # the scenario cannot offer it: left out, not faked
        ledger = self.root / f"{name}.sqlite"
        run = self.measure(name, run_sync_job, self.sync_job(ledger, path, full=True, as_of=ANCHOR))
        self.check_full(name, ledger, run)
        return ledger

    def check_full(self, name: str, ledger: Path, run: dict[str, Any]) -> None:
        expected = expected_evidence(self.scenario)
        found = ledger_evidence(ledger)
        run["evidence"] = len(found)
        run["expected_evidence"] = len(expected)
        if found != expected:
            self.fail(
                name,
                f"evidence {len(found)} != scenario's {len(expected)} completions; "
                f"missing {sorted(expected - found)[:5]}, extra {sorted(found - expected)[:5]}",
            )

    def nightly(
        self, name: str, after: Path, night: int, *, report: bool, must_hold: set[tuple[int, int, int]]
    ) -> Path:
        ledger = self.root / f"{name}.sqlite"
        shutil.copyfile(after, ledger)
        path = "report" if report else "auto"
        run = self.measure(
            name,
            run_sync_job,
            self.sync_job(ledger, path, full=False, as_of=ANCHOR + timedelta(days=night), report=report),
        )
        if run["mode"] != "incremental":
            self.fail(name, f"ran as {run['mode']}, not incremental")
        found = ledger_evidence(ledger)
        missing = must_hold - found
        run["new_completions"] = len(must_hold)
        run["new_completions_found"] = len(must_hold) - len(missing)
        if missing:
            self.fail(
                name, f"{len(missing)} of {len(must_hold)} new completions missed: {sorted(missing)[:5]}"
            )
        return ledger

    def naive(self) -> None:
        self.measure(
            "naive",
            run_naive_job,
            self.emulator.url,
            self.token,
            sorted(mapped_course_ids(self.scenario)),
            workers=1,  # one call at a time
        )

    def fail(self, name: str, message: str) -> None:
        self.failures.append(f"{name}: {message}")
        print(f"MISMATCH {name}: {message}", flush=True)


def ledger_rows(counts: dict[str, Any]) -> int:
    """Rows this run wrote: enrolments, evidence (new and refreshed), people, statuses, changes."""
    keys = ("enrolments", "evidence_new", "evidence_seen", "people", "statuses", "status_changes")
    return sum(int(counts.get(k, 0)) for k in keys)


def new_completions(scenario: Scenario, share: float, at: int, seed: int) -> list[tuple[int, int, int]]:
    """(user, course, at) for share of people: a mapped course they are enrolled in and have not completed."""
    rng = random.Random(seed)
    mapped = sorted(mapped_course_ids(scenario))
    done = {(c.user_id, c.course_id) for c in scenario.completions}
    enrolled: dict[int, list[int]] = {}
    for e in scenario.enrolments:
        if e.course_id in mapped and (e.user_id, e.course_id) not in done:
            enrolled.setdefault(e.user_id, []).append(e.course_id)
    people = sorted(p.id for p in scenario.live_people())
    chosen = rng.sample(people, max(1, math.ceil(len(people) * share)))
    result = []
    for user_id in sorted(chosen):
        open_courses = enrolled.get(user_id)
        course_id = rng.choice(open_courses) if open_courses else rng.choice(mapped)  # enrols them
        result.append((user_id, course_id, at + rng.randrange(3600)))
    return result


def default_runs(scenario_name: str) -> tuple[str, ...]:
    if scenario_name == "xl":
        return REPORT_RUNS
    return tuple(r for r in RUN_NAMES if r != "naive" or scenario_name in NAIVE_SCENARIOS)


def runs_needed(wanted: Collection[str]) -> set[str]:
    """The runs asked for and the runs whose ledgers they start from."""
    unknown = sorted(set(wanted) - set(RUN_NAMES))
    if unknown:
        raise ValueError(f"unknown run {', '.join(unknown)}; choose from {', '.join(RUN_NAMES)}")
    needed = set(wanted)
    for name in wanted:
        while name in STARTS_FROM:
            name = STARTS_FROM[name]
            if name == "full_per_user" and "full_per_course" in needed:
                break  # the fallback nights start from either fallback full sync
            needed.add(name)
    return needed


def run_bench(
    scenario_name: str,
    *,
    latency_ms: float,
    workers: int,
    report_row_ms: float,
    enrolled_row_ms: float,
    root: Path,
    runs: Collection[str] | None = None,
    isolate: bool = True,
    scenario: Scenario | None = None,
) -> Bench:
    """The chosen runs (default: ``default_runs``) and those they start from; returns the Bench
    with its runs and any correctness failures."""
    chosen = runs_needed(default_runs(scenario_name) if runs is None else runs)
    paths = [p for p in ("report", "per_user", "per_course") if f"full_{p}" in chosen]
    scenario = scenario or scenario_by_name(scenario_name, ANCHOR)
    token = secrets.token_hex(16)
    with Emulator(
        scenario,
        tokens={token: "full"},
        latency_ms=latency_ms,
        report_row_ms=report_row_ms,
        enrolled_row_ms=enrolled_row_ms,
        workers=workers,
    ) as emulator:
        bench = Bench(
            scenario, emulator, token, root, workers, latency_ms, report_row_ms, enrolled_row_ms, isolate
        )
        write_mappings(bench.mappings_dir, scenario)
        if "naive" in chosen:
            bench.naive()
        ledgers = {path: bench.full_sync(f"full_{path}", path) for path in paths}
        report_ledger, fallback_ledger = (
            ledgers.get("report"),
            ledgers.get("per_user") or ledgers.get("per_course"),
        )
        nights: dict[str, Path] = {}
        if report_ledger and "nightly_nochange" in chosen:
            nights["report"] = bench.nightly(
                "nightly_nochange", report_ledger, 1, report=True, must_hold=set()
            )
        if fallback_ledger and "nightly_nochange_fallback" in chosen:
            nights["fallback"] = bench.nightly(
                "nightly_nochange_fallback", fallback_ledger, 1, report=False, must_hold=set()
            )
        noon = (
            int(datetime.combine(ANCHOR + timedelta(days=1), datetime.min.time(), tzinfo=UTC).timestamp())
            + 8 * 3600
        )
        changes = new_completions(scenario, 0.01, noon, seed=5)
        for user_id, course_id, at in changes:
            emulator.complete(user_id, course_id, at)
        fresh = {(u, c, at // 60) for u, c, at in changes}
        if "report" in nights and "nightly_1pct" in chosen:
            bench.nightly("nightly_1pct", nights["report"], 2, report=True, must_hold=fresh)
        if "fallback" in nights and "nightly_1pct_fallback" in chosen:
            bench.nightly("nightly_1pct_fallback", nights["fallback"], 2, report=False, must_hold=fresh)
    return bench


# -- printing -----------------------------------------------------------------------------------
def format_run(run: dict[str, Any]) -> str:
    by_function = ", ".join(
        f"{name.removeprefix('core_')} {count}" for name, count in run["calls_by_function"].items()
    )
    return (
        f"{run['name']:<26} calls {run['calls']:>6}  wall {run['wall_s']:>8.2f} s  "
        f"{run['per_call_ms']:>7.2f} ms/call  bound {run['bound_s']:>7.2f} s  "
        f"bound+rows {run['bound_rows_s']:>7.2f} s  rss {run['peak_rss_mb']:>6.1f} MB  "
        f"ledger {run['ledger_rows_per_s']:>7} rows/s\n{'':<26} cpu {run['client_cpu_s']:.2f} s  "
        f"ledger file {run['ledger_mb']:.1f} MB  wal peak {run['wal_peak_mb']:.1f} MB  "
        f"written {run['written_mb']:.1f} MB{_phases(run)}\n{'':<26} [{by_function}]"
    )


def _phases(run: dict[str, Any]) -> str:
    """Where a sync's wall time went: reading Moodle, moving into the ledger, evaluating, committing."""
    phases = run.get("phases_s") or {}
    return ("  (" + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()) + ")") if phases else ""


def print_summary(bench: Bench) -> None:
    naive = next((r for r in bench.runs if r["name"] == "naive"), None)
    print()
    print(f"{'run':<26} {'calls':>7} {'wall s':>8} {'vs naive':>9} {'x bound':>8} {'x bound+rows':>13}")
    for run in bench.runs:
        speedup = f"{naive['wall_s'] / run['wall_s']:.1f}x" if naive and run["wall_s"] else "-"
        over = f"{run['wall_s'] / run['bound_s']:.2f}" if run["bound_s"] else "-"
        over_rows = f"{run['wall_s'] / run['bound_rows_s']:.2f}" if run["bound_rows_s"] else "-"
        print(
            f"{run['name']:<26} {run['calls']:>7} {run['wall_s']:>8.2f} "
            f"{speedup:>9} {over:>8} {over_rows:>13}"
        )
    fulls = {r["name"]: r for r in bench.runs}
    fallback_full = min(
        (fulls[n]["calls"] for n in ("full_per_user", "full_per_course") if n in fulls), default=None
    )
    if fallback_full and "nightly_nochange_fallback" in fulls:
        share = fulls["nightly_nochange_fallback"]["calls"] / fallback_full
        print(f"nightly (fallback, nothing changed): {share:.1%} of the cheapest fallback full sync's calls")


def figures(bench: Bench, scenario_name: str) -> dict[str, Any]:
    return {
        "scenario": scenario_name,
        "latency_ms": bench.latency_ms,
        "workers": bench.workers,
        "report_row_ms": bench.report_row_ms,
        "enrolled_row_ms": bench.enrolled_row_ms,
        "runs": bench.runs,
        "failures": bench.failures,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_sync.py", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("small", "medium", "large", "xl"), default="small")
    parser.add_argument(
        "--runs",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        help=f"comma-separated, from {', '.join(RUN_NAMES)} (default: the scenario's usual set)",
    )
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--report-row-ms", type=float, default=0.5)
    parser.add_argument("--enrolled-row-ms", type=float, default=0.9)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--no-report-filter",
        action="store_true",
        help="the report without its 'Time completed' filter: nightly runs read the whole report",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="leave the runs' ledgers and mappings in this directory (to time read commands)",
    )
    args = parser.parse_args(argv)
    try:
        runs_needed(args.runs or ())
    except ValueError as exc:
        parser.error(str(exc))
    scenario = (
        scenario_by_name(args.scenario, ANCHOR, report_time_filter=False) if args.no_report_filter else None
    )
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            root = args.keep
        bench = run_bench(
            args.scenario,
            latency_ms=args.latency_ms,
            workers=args.workers,
            report_row_ms=args.report_row_ms,
            enrolled_row_ms=args.enrolled_row_ms,
            root=root,
            runs=args.runs,
            scenario=scenario,
        )
    print_summary(bench)
    if args.json:
        args.json.write_text(json.dumps(figures(bench, args.scenario), indent=2) + "\n", encoding="utf-8")
    if bench.failures:
        print("FAILED: " + "; ".join(bench.failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
