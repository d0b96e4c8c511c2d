"""The report-filter answers read in Moodle's source (tests/fixtures/moodle-4.5-source, NOT captured
from a live site: its README says from which files and what a capture must confirm): the emulator
answers them with the same shapes and behaves as the source says, and the client reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import requests

from connector.emulator import Emulator, demo_scenario, generated_scenario
from connector.moodle.report.filters import TIME_COMPLETED, filters_in_form, time_completed_from
from tests.fixture_cases import Case, load_cases
from tests.test_emulator_contract import TOKEN, emulator_for, json_shape, nulls_as_wildcards, send

SOURCE = "4.5-source"
CASES = load_cases((SOURCE,))


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with emulator_for("4.5") as running:
        running.add_report_time_filter()
        yield running


def _json(emulator: Emulator, function: str, **params: Any) -> Any:
    form = {"wstoken": TOKEN, "wsfunction": function, "moodlewsrestformat": "json", **params}
    return requests.post(f"{emulator.url}/webservice/rest/server.php", data=form, timeout=10).json()


def _case(name: str) -> Case:
    return next(c for c in CASES if c.id == f"{SOURCE}-{name}")


def test_the_folder_has_the_cases_its_readme_names() -> None:
    assert {c.function for c in CASES} == {
        "core_reportbuilder_set_filters",
        "core_reportbuilder_filters_reset",
        "core_reportbuilder_reports_get",
    }
    assert all(c.meta["moodle_release"] == "derived from the source (not captured)" for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_emulator_answers_like_the_source_derived_fixture(emulator: Emulator, case: Case) -> None:
    if case.stem.endswith("_applied"):
        _json(
            emulator, "core_reportbuilder_set_filters", reportid=1, values=json.dumps(time_completed_from(1))
        )
    try:
        reply = send(emulator, case.request)
    finally:
        _json(emulator, "core_reportbuilder_filters_reset", reportid=1)
    assert reply.status_code == case.meta["http_status"]
    expected, actual = case.json_body(), reply.json()
    if isinstance(expected, dict) and "exception" in expected:
        assert (actual["exception"], actual["errorcode"]) == (expected["exception"], expected["errorcode"])
        return
    if isinstance(expected, bool):
        assert actual is expected
        return
    assert json_shape(actual) == nulls_as_wildcards(json_shape(expected), json_shape(actual))
    assert actual["filtersapplied"] == expected["filtersapplied"]
    assert filters_in_form(actual["filtersform"]) == filters_in_form(expected["filtersform"])


def test_the_client_reads_the_filters_from_the_form() -> None:
    form = _case("core_reportbuilder_reports_get/viewmode_time_completed_filter").json_body()["filtersform"]
    assert filters_in_form(form) == {"user:suspended", "user:confirmed", TIME_COMPLETED}
    captured = next(
        c for c in load_cases(("4.5",)) if c.name == "core_reportbuilder_reports_get/report2_viewmode"
    )
    assert filters_in_form(captured.json_body()["filtersform"]) == {"user:suspended", "user:confirmed"}


def test_the_set_request_is_the_one_the_client_sends() -> None:
    request = _case("core_reportbuilder_set_filters/time_completed_from").request
    values = json.loads(dict(request["form_body"])["values"])
    assert values == time_completed_from(values[f"{TIME_COMPLETED}_from"])


def _report(emulator: Emulator) -> tuple[int, list[str]]:
    data = _json(emulator, "core_reportbuilder_retrieve_report", reportid=1, perpage=0)["data"]
    return data["totalrowcount"], [r["columns"][-1] for r in data["rows"]]


def test_set_filters_narrows_the_callers_reads_until_reset(emulator: Emulator) -> None:
    whole, _ = _report(emulator)
    anchor = datetime.combine(emulator.scenario.anchor, time(), tzinfo=UTC)
    since = int((anchor - timedelta(days=400)).timestamp())
    assert _json(
        emulator, "core_reportbuilder_set_filters", reportid=1, values=json.dumps(time_completed_from(since))
    )
    narrowed, times = _report(emulator)
    at_or_after = sum(1 for at in emulator.scenario.completed_at if at >= since)
    assert 0 < narrowed == at_or_after < whole
    assert all(times)  # not-completed rows fall out of a range
    assert _json(emulator, "core_reportbuilder_filters_reset", reportid=1) is True
    assert _report(emulator)[0] == whole


def test_values_of_a_filter_the_report_does_not_carry_are_ignored() -> None:
    with Emulator(demo_scenario(date(2026, 1, 15)), tokens={TOKEN: "full"}, moodle="4.5") as plain:
        whole, _ = _report(plain)
        assert _json(
            plain, "core_reportbuilder_set_filters", reportid=1, values=json.dumps(time_completed_from(1))
        )
        assert _report(plain)[0] == whole
        form = _json(plain, "core_reportbuilder_reports_get", reportid=1, editmode=0)["filtersform"]
        assert TIME_COMPLETED not in filters_in_form(form)


@pytest.mark.parametrize("carried", [True, False])
def test_generated_reports_carry_the_filter_unless_told_not_to(carried: bool) -> None:
    options = {} if carried else {"report_time_filter": False}
    scenario = generated_scenario(
        users=20,
        courses=2,
        enrolments_per_user=1.5,
        completion_rate=0.5,
        seed=3,
        anchor=date(2026, 1, 15),
        **options,
    )
    with Emulator(scenario, tokens={TOKEN: "full"}, moodle="4.5") as emulator:
        form = _json(emulator, "core_reportbuilder_reports_get", reportid=1, editmode=0)["filtersform"]
        assert (TIME_COMPLETED in filters_in_form(form)) is carried
        editor = _json(emulator, "core_reportbuilder_reports_get", reportid=1, editmode=1)
        headings = [f["heading"] for f in editor["filters"]["activefilters"]]
        assert ("Time completed" in headings) is carried
