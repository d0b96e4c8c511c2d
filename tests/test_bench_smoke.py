"""CI's smoke run of the sync benchmark: a tiny site, no latency; counts are checked, never times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.emulator import generated_scenario
from tests.benchmarks.bench_sync import ANCHOR, Bench, figures, run_bench

RUN_NAMES = {"naive", "full_report", "full_per_user", "full_per_course", "nightly_nochange",
             "nightly_1pct", "nightly_nochange_fallback", "nightly_1pct_fallback"}


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    scenario = generated_scenario(users=60, courses=5, enrolments_per_user=2.5, completion_rate=0.6,
                                  seed=11, anchor=ANCHOR)
    return run_bench("tiny", latency_ms=0, workers=3, report_row_ms=0, enrolled_row_ms=0,
                     root=tmp_path_factory.mktemp("bench"), naive=True, isolate=True, scenario=scenario)


def runs(bench: Bench) -> dict[str, dict]:
    return {r["name"]: r for r in bench.runs}


def test_every_run_is_present_and_correct(bench: Bench) -> None:
    assert set(runs(bench)) == RUN_NAMES
    assert bench.failures == []
    for run in bench.runs:
        assert run["calls"] > 0
        assert sum(run["calls_by_function"].values()) == run["calls"]
        assert run["peak_rss_mb"] > 0


def test_full_syncs_hold_exactly_the_scenarios_completions(bench: Bench) -> None:
    for name in ("full_report", "full_per_user", "full_per_course"):
        run = runs(bench)[name]
        assert run["path"] == name.removeprefix("full_")
        assert run["evidence"] == run["expected_evidence"] > 0  # counted before the 1 % change


def test_the_naive_peer_asks_once_per_enrolment(bench: Bench) -> None:
    naive = runs(bench)["naive"]
    listed = naive["counts"]["enrolments_listed"]
    assert naive["calls_by_function"]["core_completion_get_course_completion_status"] == listed
    assert listed == runs(bench)["full_per_course"]["counts"]["enrolments"] > 0


def test_nightly_with_nothing_changed_is_far_cheaper_than_a_full_sync(bench: Bench) -> None:
    r = runs(bench)
    assert r["nightly_nochange"]["mode"] == "incremental"
    assert r["nightly_nochange"]["calls"] < r["full_report"]["calls"]  # no calibration
    assert "core_completion_get_course_completion_status" not in r["nightly_nochange"]["calls_by_function"]
    assert "core_completion_get_course_completion_status" not in r["nightly_nochange_fallback"]["calls_by_function"]
    assert r["nightly_nochange_fallback"]["calls"] * 5 < r["full_per_user"]["calls"]


def test_nightly_after_new_completions_finds_every_one(bench: Bench) -> None:
    for name in ("nightly_1pct", "nightly_1pct_fallback"):
        run = runs(bench)[name]
        assert run["new_completions"] >= 1
        assert run["new_completions_found"] == run["new_completions"]
        assert run["counts"]["evidence_new"] == run["new_completions"]


def test_a_mismatch_fails_the_benchmark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.benchmarks.bench_sync as bench_sync

    real = bench_sync.expected_evidence
    monkeypatch.setattr(bench_sync, "expected_evidence", lambda s: real(s) | {(1, 2, 3)})
    tiny = generated_scenario(users=20, courses=2, enrolments_per_user=1.5, completion_rate=0.5, seed=2,
                              anchor=ANCHOR)
    result = run_bench("tiny", latency_ms=0, workers=2, report_row_ms=0, enrolled_row_ms=0, root=tmp_path,
                       naive=False, isolate=False, scenario=tiny, paths=("report",))
    assert any("full_report" in f and "missing [(1, 2, 3)]" in f for f in result.failures)


def test_the_json_figures_carry_what_the_issue_names(bench: Bench) -> None:
    data = json.loads(json.dumps(figures(bench, "tiny")))
    assert (data["scenario"], data["latency_ms"], data["workers"]) == ("tiny", 0, 3)
    assert {r["name"] for r in data["runs"]} == RUN_NAMES
    for run in data["runs"]:
        assert {"name", "calls", "calls_by_function", "wall_s", "bound_s", "peak_rss_mb",
                "ledger_rows_per_s"} <= set(run)
