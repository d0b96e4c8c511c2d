"""Typed fetchers against the Moodle emulator over loopback: paging, concurrency, per-enrolment
errors, faults through the whole stack, report parsing and time-zone calibration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from connector.emulator import FAULT_KINDS, Emulator, demo_scenario
from connector.errors import MoodleAuthError, MoodlePermissionError, MoodleProtocolError, MoodleRequestError
from connector.moodle.api import MoodleApi
from connector.moodle.builders import completion_time
from connector.moodle.client import MoodleClient
from connector.moodle.records import CourseCompletion
from connector.moodle.report.parsing import (
    ReportColumns,
    ReportTimeError,
    cell_text,
    link_id,
    parse_report_datetime,
)
from connector.moodle.report.timezone import choose_zone, consistent_zones, most_telling_row
from connector.moodle.settings import ClientSettings

ANCHOR = date(2026, 1, 15)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(demo_scenario(ANCHOR), tokens={"full-token-123": "full", "weak-token-456": "weak"}) as emu:
        yield emu


def api_for(url: str, token: str = "full-token-123", **settings: object) -> MoodleApi:
    values: dict[str, object] = {"retry_max_wait_s": 0.01, **settings}
    return MoodleApi(MoodleClient(ClientSettings(url=url, token=token, **values)))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_site_courses_people_and_cohorts(emulator: Emulator, fmt: str) -> None:
    api = api_for(emulator.url, format=fmt)
    site = api.site_info()
    assert site.lang == "en" and site.can_call("core_enrol_get_enrolled_users")
    courses = {c.id: c for c in api.courses()}
    assert set(courses) == {2, 3, 4, 5, 6, 7} and not courses[6].completion_enabled and not courses[7].visible
    assert [c.id for c in api.courses([2, 4])] == [2, 4]
    assert [c.id for c in api.courses_by_field("idnumber", "ITSEC-CZ")] == [2]
    people = {p.username: p for p in api.users_by_field("username", ["u001", "u017", "u045"], batch_size=2)}
    assert people["u017"].suspended is True and people["u001"].suspended is False
    assert api.client.calls_by_function()["core_user_get_users_by_field"] == 2  # batches of 2
    cohorts = api.cohorts()
    members = api.cohort_members([c.id for c in cohorts])
    assert len(members) == len(cohorts) and all(m.user_ids for m in members)
    assert api.reports() == [(1, "Compliance completions")]


def test_json_and_xml_give_identical_records(emulator: Emulator) -> None:
    results = []
    for fmt in ("json", "xml"):
        api = api_for(emulator.url, format=fmt)
        results.append(
            (
                api.site_info(),
                api.courses(),
                list(api.enrolled_users(2, page_size=15)),
                api.user_courses(3),
                list(api.course_completions([(2, 3), (6, 13), (5, 9)])).__repr__(),
                list(api.report_pages(1, per_page=40)),
            )
        )
    assert results[0] == results[1]


@pytest.mark.parametrize("page_size", [1, 7, 10, 40, 1000])
def test_paging_returns_every_enrolled_user_exactly_once(emulator: Emulator, page_size: int) -> None:
    api = api_for(emulator.url)
    everyone = list(api.enrolled_users(2, page_size=1000))
    paged = list(api.enrolled_users(2, page_size=page_size))
    assert len(everyone) == 40
    assert paged == everyone
    assert len({u.person.id for u in paged}) == 40
    pages = api.client.calls_by_function()["core_enrol_get_enrolled_users"] - 1
    assert pages == 40 // page_size + 1  # full pages plus the short (or empty) last one


def test_report_pages_read_every_row_once(emulator: Emulator) -> None:
    api = api_for(emulator.url)
    pages = list(api.report_pages(1, per_page=10))
    rows = [row for page in pages for row in page.rows]
    assert len(rows) == pages[0].total_rows and len(pages) == -(-len(rows) // 10)
    assert rows == list(next(api.report_pages(1, per_page=1000)).rows)


def test_completions_run_concurrently_within_the_limit_and_in_order(emulator: Emulator) -> None:
    api = api_for(emulator.url, max_concurrency=3)
    pairs = [(e.enrolment.course_id, e.enrolment.user_id) for e in api.enrolled_users(3)]
    emulator.set_latency(15)
    emulator.reset_counts()
    try:
        results = list(api.course_completions(pairs))
    finally:
        emulator.set_latency(0)
    assert [(r.course_id, r.user_id) for r in results if isinstance(r, CourseCompletion)] == pairs
    assert 2 <= emulator.max_in_flight <= 3


def test_per_enrolment_errors_are_yielded_and_auth_errors_raised(emulator: Emulator) -> None:
    api = api_for(emulator.url)
    results = list(api.course_completions([(2, 3), (6, 13), (5, 9)]))
    assert isinstance(results[0], CourseCompletion) and results[0].completed
    assert isinstance(results[1], MoodleRequestError) and results[1].errorcode == "cannotviewreport"
    assert isinstance(results[2], MoodleRequestError) and results[2].errorcode == "usernotenroled"
    with pytest.raises(MoodlePermissionError):
        list(api_for(emulator.url, token="weak-token-456").course_completions([(2, 3)]))
    with pytest.raises(MoodleAuthError) as raised:
        list(api_for(emulator.url, token="not-a-real-token-789").course_completions([(2, 3)]))
    assert "not-a-real-token-789" not in str(raised.value)


def test_users_courses_concurrently(emulator: Emulator) -> None:
    api = api_for(emulator.url)
    got = dict(api.users_courses([3, 4, 5]))
    assert set(got) == {3, 4, 5} and all(uc.user_id == uid for uid, ucs in got.items() for uc in ucs)
    assert got[3] and {uc.course_id for uc in got[3]} <= {2, 3, 4, 5, 6, 7}
    assert got[3] == api.user_courses(3)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_every_emulated_fault_is_survived(kind: str) -> None:
    with Emulator(demo_scenario(ANCHOR), tokens={"t0k3n-abc": "full"}, slow_s=1.0) as emu:
        emu.script_fault(call_number=1, kind=kind)
        api = api_for(emu.url, token="t0k3n-abc", timeout_s=0.4)
        assert api.site_info().lang == "en"
        assert emu.call_counts()["core_webservice_get_site_info"] == 2


def test_report_completions_match_the_exact_completion_times(emulator: Emulator) -> None:
    api = api_for(emulator.url)
    zone = api.calibrate_report(1, preferred="Europe/Prague").zone
    assert zone == ZoneInfo("Europe/Prague")
    rows = [r for r in api.report_completions(1, tz=zone, per_page=25) if r.completed_at is not None]
    assert rows
    for row in rows[:12]:
        assert row.user_id is not None and row.course_id is not None
        exact = api.course_completion(row.course_id, row.user_id).completed_at
        assert exact is not None and 0 <= exact - row.completed_at < 60  # minute precision


@pytest.mark.parametrize(
    "site_zone", ["Europe/Prague", "Europe/London", "America/New_York", "UTC", "Asia/Kolkata"]
)
def test_calibration_finds_a_zone_equivalent_to_the_sites(site_zone: str) -> None:
    with Emulator(demo_scenario(ANCHOR, report_timezone=site_zone), tokens={"tok-1": "full"}) as emu:
        api = api_for(emu.url, token="tok-1")
        chosen = api.calibrate_report(1).zone
        truth = ZoneInfo(site_zone)
        rows = list(api.report_completions(1, tz=chosen))
        assert rows == list(api.report_completions(1, tz=truth))
        assert api.calibrate_report(1, preferred=site_zone).zone == truth
        # one lookup, or two when summer and winter must be told apart; never one per row
        assert api.client.calls_by_function()["core_completion_get_course_completion_status"] <= 6


def test_missing_report_columns_are_named(emulator: Emulator) -> None:
    api = api_for(emulator.url)
    with pytest.raises(MoodleProtocolError) as raised:
        list(
            api.report_completions(
                1, tz=ZoneInfo("UTC"), columns=ReportColumns(time_completed="Completed on")
            )
        )
    assert "Completed on" in str(raised.value) and "Time completed" in str(raised.value)


# --------------------------------------------------------------------------------------------
# pure pieces


def test_report_cells_parse_without_the_locale() -> None:
    assert parse_report_datetime("Saturday, 24 May 2025, 1:00 PM") == datetime(2025, 5, 24, 13, 0)
    assert parse_report_datetime("Tuesday, 15 November 2022, 12:00 AM") == datetime(2022, 11, 15, 0, 0)
    assert parse_report_datetime("Tuesday, 15 November 2022, 12:05 PM") == datetime(2022, 11, 15, 12, 5)
    assert parse_report_datetime("24 May 2025, 13:00") == datetime(2025, 5, 24, 13, 0)
    assert parse_report_datetime("") is None
    for bad in ("sobota, 24 května 2025, 13:00", "Friday, 24 May 2025, 1:00 PM", "31 February 2025, 1:00 PM"):
        with pytest.raises(ReportTimeError):
            parse_report_datetime(bad)


def test_link_cells_give_ids_and_text() -> None:
    cell = '<a href="http://m.example.org/user/profile.php?id=3&amp;course=2">Kate&#345;ina &amp; Co</a>'
    assert link_id(cell, "/user/profile.php") == 3
    assert link_id(cell, "/course/view.php") is None
    assert cell_text(cell) == "Kateřina & Co"


def test_the_fixture_fact_pins_the_zone_family() -> None:
    # completion_done: 1748088000 (12:00 UTC) shows as 1:00 PM: UTC+1 in May
    fits = consistent_zones(
        ["UTC", "Europe/Prague", "Europe/London", "Africa/Lagos"],
        [(datetime(2025, 5, 24, 13, 0), 1748088000)],
    )
    assert fits == ["Europe/London", "Africa/Lagos"]
    winter = [datetime(2022, 11, 15, 12, 0), datetime(2025, 5, 24, 13, 0)]
    assert most_telling_row(fits, winter) == 0  # London (UTC+0) and Lagos (UTC+1) differ in November
    assert choose_zone(fits, preferred="Africa/Lagos") == "Africa/Lagos"
    assert choose_zone(["UTC", "Etc/UTC"]) == "UTC"


def test_completion_time_follows_the_aggregation() -> None:
    criteria = [{"timecompleted": 300}, {"timecompleted": 100}, {"timecompleted": None}]
    assert completion_time(1, criteria) == 300
    assert completion_time(2, criteria) == 100
    assert completion_time(1, [{"timecompleted": None}]) is None


class _CannedClient:
    """Answers by function name; enough to drive calibration's decisions without a server."""

    def __init__(self, lang: str, completed_at: int) -> None:
        self.lang = lang
        self.completed_at = completed_at

    def call(self, function: str, params: object = None) -> object:
        if function == "core_webservice_get_site_info":
            return {"lang": self.lang, "userid": 9, "username": "ws", "functions": []}
        if function == "core_user_get_users_by_field":
            return [{"id": 9, "timezone": "99"}]
        if function == "core_reportbuilder_retrieve_report":
            row = [
                '<a href="https://m/course/view.php?id=2">C</a>',
                '<a href="https://m/user/profile.php?id=3">U</a>',
                "u001",
                "ITSEC-CZ",
                "Saturday, 24 May 2025, 1:00 PM",
            ]
            headers = [
                "Course full name with link",
                "Full name with link",
                "Username",
                "Course ID number",
                "Time completed",
            ]
            return {"data": {"headers": headers, "rows": [{"columns": row}], "totalrowcount": 1}}
        if function == "core_completion_get_course_completion_status":
            completion = {"timecompleted": self.completed_at, "complete": True}
            return {
                "completionstatus": {"completed": True, "aggregation": 1, "completions": [completion]},
                "warnings": [],
            }
        raise AssertionError(function)


def test_calibration_refuses_a_non_english_site() -> None:
    api = MoodleApi(_CannedClient("cs", 1748088000))  # type: ignore[arg-type]
    with pytest.raises(MoodleProtocolError) as raised:
        api.calibrate_report(1)
    assert "English" in str(raised.value) and "'ws'" in str(raised.value)


def test_calibration_fails_clearly_when_no_zone_fits() -> None:
    api = MoodleApi(_CannedClient("en", 1748088000 + 17 * 60))  # type: ignore[arg-type]  # no zone is 17 min off
    with pytest.raises(MoodleProtocolError) as raised:
        api.calibrate_report(1)
    assert "no time zone" in str(raised.value)


def test_calibration_with_one_summer_row_prefers_the_given_zone() -> None:
    api = MoodleApi(_CannedClient("en", 1748088000))  # type: ignore[arg-type]
    assert api.calibrate_report(1, preferred="Europe/London").zone == ZoneInfo("Europe/London")
    assert api.calibrate_report(1, preferred="Europe/Prague").zone != ZoneInfo(
        "Europe/Prague"
    )  # does not fit


# ----- inactive enrolments, report conditions, deleted accounts ----------------------------------
@pytest.mark.parametrize("moodle", ["4.1", "4.5"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_report_conditions_are_read_from_the_editor_view(moodle: str, fmt: str) -> None:
    with Emulator(demo_scenario(ANCHOR), tokens={"full-token-123": "full"}, moodle=moodle) as emu:
        api = api_for(emu.url, format=fmt)
        assert api.report_conditions(1).hides_inactive_enrolments is False  # the demo: removed
        emu.add_report_condition()
        conditions = api.report_conditions(1)
    assert conditions.hides_inactive_enrolments is True
    status = conditions.condition("enrolment:status")
    assert status is not None
    assert (status.heading, status.operator_text, status.value_text) == (
        "Enrolment • Status",
        "Is equal to",
        "Active",
    )


def test_only_active_leaves_out_suspended_and_ended_enrolments() -> None:
    with Emulator(demo_scenario(ANCHOR), tokens={"full-token-123": "full"}) as emu:
        emu.suspend_enrolment(3, 2)
        emu.end_enrolment(7, 2)
        api = api_for(emu.url)
        everyone = {u.person.id for u in api.enrolled_users(2)}
        active = {u.person.id for u in api.enrolled_users(2, only_active=True, userfields=["id"])}
    assert everyone - active == {3, 7}


def test_a_deleted_account_is_recognised_by_its_rename() -> None:
    with Emulator(demo_scenario(ANCHOR), tokens={"full-token-123": "full"}) as emu:
        emu.delete_user(3, at=1_795_715_679)
        api = api_for(emu.url)
        people = {p.id: p for p in api.users_by_field("id", [3, 4])}
    assert people[3].deleted and people[3].username == "u001@example.org.1795715679"
    assert not people[4].deleted and people[4].username == "u002"
