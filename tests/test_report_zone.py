"""Full runs on the report path keep the remembered time zone while its witnesses still agree."""

from __future__ import annotations

import json

from click.testing import CliRunner

from connector.cli import main
from tests.helpers import ANCHOR, Site

EXACT_TIME = "core_completion_get_course_completion_status"  # what calibration reads, row by row
PEOPLE = ("u001", "u002", "u003", "u004", "u005", "u006")


def full_sync(site: Site) -> dict[str, int]:
    """A full sync on the report path; the Moodle calls it made, per function."""
    site.emulator.reset_counts()  # type: ignore[attr-defined]
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(site.config_path),
            "sync",
            "--full",
            "--path",
            "report",
            "--as-of",
            ANCHOR.isoformat(),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return dict(site.emulator.call_counts())  # type: ignore[attr-defined]


def evidence_times(site: Site) -> dict[str, list[str]]:
    times: dict[str, list[str]] = {}
    for username in PEOPLE:
        result = CliRunner().invoke(
            main, ["--config", str(site.config_path), "person", username, "--format", "json"]
        )
        assert result.exit_code == 0, result.output
        times[username] = sorted(str(e["completed_at"]) for e in json.loads(result.stdout)["evidence"])
    return times


def test_a_second_full_run_makes_no_calibration_call(demo_site: Site) -> None:
    first = full_sync(demo_site)
    assert first.get(EXACT_TIME, 0) > 0  # the first run calibrated
    before = evidence_times(demo_site)
    second = full_sync(demo_site)
    assert second.get(EXACT_TIME, 0) == 0
    assert evidence_times(demo_site) == before


def test_a_full_run_calibrates_again_when_the_report_zone_changed(demo_site: Site) -> None:
    full_sync(demo_site)
    before = evidence_times(demo_site)
    assert any(before.values())
    demo_site.emulator.scenario.report_timezone = "Asia/Tokyo"  # type: ignore[attr-defined]
    second = full_sync(demo_site)
    assert second.get(EXACT_TIME, 0) > 0
    assert evidence_times(demo_site) == before  # the same instants, read in the new zone
    third = full_sync(demo_site)
    assert third.get(EXACT_TIME, 0) == 0  # the new zone and its witnesses are remembered
