"""CI's smoke run of the sync benchmark: a tiny site, no latency; counts are checked, never times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.emulator import generated_scenario
from tests.benchmarks.bench_sync import ANCHOR, RUN_NAMES, Bench, figures, main, run_bench, runs_needed


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    scenario = generated_scenario(
        users=60, courses=5, enrolments_per_user=2.5, completion_rate=0.6, seed=11, anchor=ANCHOR
    )
    return run_bench(
        "tiny",
        latency_ms=0,
        workers=3,
        report_row_ms=0,
        enrolled_row_ms=0,
        root=tmp_path_factory.mktemp("bench"),
        runs=RUN_NAMES,
        isolate=True,
        scenario=scenario,
    )


def runs(bench: Bench) -> dict[str, dict]:
    return {r["name"]: r for r in bench.runs}


@pytest.mark.slow
def test_every_run_is_present_and_correct(bench: Bench) -> None:
    assert set(runs(bench)) == set(RUN_NAMES)
    assert bench.failures == []
    for run in bench.runs:
        assert run["calls"] > 0
        assert sum(run["calls_by_function"].values()) == run["calls"]
        assert run["peak_rss_mb"] > 0


@pytest.mark.slow
def test_full_syncs_hold_exactly_the_scenarios_completions(bench: Bench) -> None:
    for name in ("full_report", "full_per_user", "full_per_course"):
        run = runs(bench)[name]
        assert run["path"] == name.removeprefix("full_")
        assert run["evidence"] == run["expected_evidence"] > 0  # counted before the 1 % change


@pytest.mark.slow
def test_the_naive_peer_asks_once_per_enrolment(bench: Bench) -> None:
    naive = runs(bench)["naive"]
    listed = naive["counts"]["enrolments_listed"]
    assert naive["calls_by_function"]["core_completion_get_course_completion_status"] == listed
    assert listed == runs(bench)["full_per_course"]["counts"]["enrolments"] > 0


@pytest.mark.slow
def test_nightly_with_nothing_changed_is_far_cheaper_than_a_full_sync(bench: Bench) -> None:
    r = runs(bench)
    assert r["nightly_nochange"]["mode"] == "incremental"
    assert r["nightly_nochange"]["calls"] < r["full_report"]["calls"]  # no calibration
    assert "core_completion_get_course_completion_status" not in r["nightly_nochange"]["calls_by_function"]
    assert (
        "core_completion_get_course_completion_status"
        not in r["nightly_nochange_fallback"]["calls_by_function"]
    )
    assert r["nightly_nochange_fallback"]["calls"] * 5 < r["full_per_user"]["calls"]


@pytest.mark.slow
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
    tiny = generated_scenario(
        users=20, courses=2, enrolments_per_user=1.5, completion_rate=0.5, seed=2, anchor=ANCHOR
    )
    result = run_bench(
        "tiny",
        latency_ms=0,
        workers=2,
        report_row_ms=0,
        enrolled_row_ms=0,
        root=tmp_path,
        runs=("full_report",),
        isolate=False,
        scenario=tiny,
    )
    assert [r["name"] for r in result.runs] == ["full_report"]
    assert any("full_report" in f and "missing [(1, 2, 3)]" in f for f in result.failures)


@pytest.mark.slow
def test_the_json_figures_carry_what_the_issue_names(bench: Bench) -> None:
    data = json.loads(json.dumps(figures(bench, "tiny")))
    assert (data["scenario"], data["latency_ms"], data["workers"]) == ("tiny", 0, 3)
    assert {r["name"] for r in data["runs"]} == set(RUN_NAMES)
    for run in data["runs"]:
        assert {
            "name",
            "calls",
            "calls_by_function",
            "wall_s",
            "bound_s",
            "bound_rows_s",
            "ratio",
            "peak_rss_mb",
            "client_cpu_s",
            "ledger_rows_per_s",
        } <= set(run)
        assert run["client_cpu_s"] > 0
    for run in data["runs"][1:]:  # the syncs: their ledger and its write-ahead log
        assert run["ledger_mb"] > 0
        assert run["wal_peak_mb"] >= 0 and run["written_mb"] > 0


@pytest.mark.slow
def test_the_naive_scripts_bound_counts_one_worker(bench: Bench) -> None:
    naive, full = runs(bench)["naive"], runs(bench)["full_per_course"]
    assert naive["bound_s"] == naive["calls"] * bench.latency_ms / 1000  # 0 here: no latency
    bench_with_latency = Bench(bench.scenario, bench.emulator, "", bench.root, 4, 25.0, 0.5, 0.9)
    assert bench_with_latency.rows_bound(100, {"counts": {}}, 1) == 2.5
    assert bench_with_latency.rows_bound(100, {"counts": {}}, 4) == 0.625
    assert full["bound_s"] == 0


def test_a_run_brings_the_runs_its_ledger_starts_from() -> None:
    assert runs_needed(["nightly_1pct"]) == {"full_report", "nightly_nochange", "nightly_1pct"}
    assert runs_needed(["nightly_1pct_fallback", "full_per_course"]) == {
        "full_per_course",
        "nightly_nochange_fallback",
        "nightly_1pct_fallback",
    }
    assert runs_needed(["nightly_nochange_fallback"]) == {"full_per_user", "nightly_nochange_fallback"}
    assert runs_needed(["naive"]) == {"naive"}


def test_an_unknown_run_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--runs", "full_report,nightly_sometimes"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "bench_sync.py: error: unknown run nightly_sometimes; choose from " + ", ".join(RUN_NAMES)
    )


# -- the fast paths the benchmark measures read exactly what the plain ones read ------------------
def test_concurrent_reads_match_the_plain_ones_within_the_worker_limit() -> None:
    from connector.emulator import Emulator, demo_scenario
    from connector.moodle.api import MoodleApi
    from connector.moodle.client import MoodleClient
    from connector.moodle.settings import ClientSettings

    with Emulator(demo_scenario(ANCHOR), tokens={"t-123456": "full"}, latency_ms=2, workers=8) as emu:
        settings = ClientSettings(url=emu.url, token="t-123456", max_concurrency=3)
        with MoodleClient(settings) as client:
            api = MoodleApi(client)
            plain = [row for page in api.report_pages(1, per_page=1000) for row in page.rows]
            emu.reset_counts()
            pages = list(api.report_pages_concurrently(1, per_page=7))
            side_by_side = [row for page in pages for row in page.rows]
            assert side_by_side == plain and len(plain) > 20
            assert emu.max_in_flight <= 3
            assert emu.call_counts()["core_reportbuilder_retrieve_report"] == 1 + len(pages)  # probe + pages
            big_pages = list(api.report_pages_concurrently(1, per_page=100_000))
            assert len(big_pages) == 1 and list(big_pages[0].rows) == plain  # the first read held every row
            ids = list(range(3, 63))
            assert [p.id for p in api.users_by_field("id", ids, batch_size=7)] == [
                p.id for p in api.users_by_field("id", ids, batch_size=1000)
            ]
            by_course = dict(api.enrolled_users_of([2, 3, 4], page_size=5))
            assert {c: [u.person.id for u in rows] for c, rows in by_course.items()} == {
                c: [u.person.id for u in api.enrolled_users(c, page_size=1000)] for c in (2, 3, 4)
            }
            assert emu.max_in_flight <= 3
