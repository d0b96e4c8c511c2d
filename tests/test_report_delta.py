"""Nightly delta reads on the report path: only the rows completed since the last good run (minus
the look-back) are read, through the report's "Time completed" filter, and the filters are reset
after every delta read and before every whole one."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.config import load_config
from connector.emulator import Emulator
from connector.emulator.wire import WsException
from connector.errors import ConfigError, SyncRefused
from connector.ledger import Ledger
from connector.moodle.report.filters import TIME_COMPLETED
from connector.sync import SyncOptions, SyncResult, run_sync
from tests.helpers import MAPPINGS, Site

FULL_AT = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)  # the full run
NIGHT_AT = FULL_AT + timedelta(days=1)  # the nightly run after it
SET, RESET, RETRIEVE, GET = (
    "core_reportbuilder_set_filters",
    "core_reportbuilder_filters_reset",
    "core_reportbuilder_retrieve_report",
    "core_reportbuilder_reports_get",
)
TRACKED = (2, 3, 4, 5)  # the demo's mapped courses with completion tracking


def emulator_of(site: Site) -> Emulator:
    emulator = site.emulator
    assert isinstance(emulator, Emulator)
    return emulator


def sync(site: Site, now: datetime, *, full: bool = False, **moodle: object) -> SyncResult:
    if moodle:
        site.write_config(report_id=1, **moodle)
    emulator_of(site).reset_counts()
    return run_sync(load_config(site.config_path), SyncOptions(full=full, as_of=now.date()), now=now)


def not_completed(emulator: Emulator, count: int) -> list[tuple[int, int]]:
    """(user, course) of enrolments in tracked courses without a completion."""
    scenario = emulator.scenario
    found: list[tuple[int, int]] = []
    seen_users: set[int] = set()
    for position in range(len(scenario.enrol_user)):
        user, course = scenario.enrol_user[position], scenario.enrol_course[position]
        if course in TRACKED and not scenario.completed_at[position] and user not in seen_users:
            found.append((user, course))
            seen_users.add(user)
        if len(found) == count:
            return found
    raise AssertionError("the demo has too few incomplete enrolments")


def evidence(site: Site, user_id: int) -> set[tuple[int, int]]:
    """(course, completed_at) of a person's evidence still in Moodle."""
    ledger = Ledger.open_readonly(site.ledger_path)
    try:
        return {
            (row["course_id"], row["completed_at"])
            for row in ledger.evidence.for_user(user_id)
            if row["gone_since_run"] is None
        }
    finally:
        ledger.close()


@pytest.fixture
def filtered(demo_site: Site) -> Site:
    """The demo site whose report carries the "Time completed" filter, after one full run."""
    emulator_of(demo_site).add_report_time_filter()
    result = sync(demo_site, FULL_AT, full=True)
    assert result.counts["report_rows"] > 50
    return demo_site


def test_a_nightly_reads_only_recent_rows_and_finds_every_new_completion(filtered: Site) -> None:
    emulator = emulator_of(filtered)
    (new_user, new_course), (late_user, late_course) = not_completed(emulator, 2)
    fresh = int((FULL_AT + timedelta(hours=10)).timestamp())
    # completed before the full run started, but made visible by a completion task that ran
    # late: inside the look-back window
    back_dated = int((FULL_AT - timedelta(hours=20)).timestamp())
    emulator.complete(new_user, new_course, fresh)
    emulator.complete(late_user, late_course, back_dated, by_teacher=True)

    result = sync(filtered, NIGHT_AT)

    assert result.mode == "incremental"
    since = result.counts["report_delta_since"]
    assert since <= back_dated and since % 60 == 0
    assert 2 <= result.counts["report_rows"] < 20  # a handful of rows, not the report's 100
    assert result.counts["evidence_new"] == 2
    assert (new_course, fresh - fresh % 60) in evidence(filtered, new_user)
    assert (late_course, back_dated - back_dated % 60) in evidence(filtered, late_user)
    calls = emulator.call_counts()
    assert (calls[SET], calls[RESET], calls.get(GET, 0)) == (1, 1, 0)  # the full run told us
    assert emulator.scenario.report_filter_values == {}  # reset afterwards


def test_a_no_change_nightly_reads_a_few_rows_in_few_calls(filtered: Site) -> None:
    emulator = emulator_of(filtered)
    result = sync(filtered, NIGHT_AT)
    calls = emulator.call_counts()
    assert result.counts["evidence_new"] == 0 and "report_delta_since" in result.counts
    assert result.counts["report_rows"] < 10
    # the report part: set the filter, one read (a few rows: the first read holds them all), reset
    assert {f: n for f, n in calls.items() if "reportbuilder" in f} == {SET: 1, RETRIEVE: 1, RESET: 1}
    assert "core_completion_get_course_completion_status" not in calls  # no calibration
    assert sum(calls.values()) == 6  # site info, courses, the three report calls, one batch of people


def test_a_full_run_after_a_delta_resets_the_filter_and_sees_everything(filtered: Site) -> None:
    emulator = emulator_of(filtered)
    rows = sync(filtered, NIGHT_AT).counts["report_rows"]
    # a run killed between setting the filter and resetting it leaves the filter set
    token_user = emulator.scenario.token_user_id
    emulator.scenario.report_filter_values[token_user] = {
        f"{TIME_COMPLETED}_operator": 3,
        f"{TIME_COMPLETED}_from": int(NIGHT_AT.timestamp()),
    }
    result = sync(filtered, NIGHT_AT + timedelta(days=1), full=True)
    assert result.counts["report_rows"] > 50 > rows
    assert result.counts["evidence_gone"] == 0
    assert "report_delta_since" not in result.counts
    calls = emulator.call_counts()
    assert (calls[RESET], calls.get(SET, 0), calls[GET]) == (1, 0, 1)


def test_a_report_without_the_filter_is_read_whole_at_night(demo_site: Site) -> None:
    emulator = emulator_of(demo_site)
    full = sync(demo_site, FULL_AT, full=True).counts["report_rows"]
    assert emulator.call_counts()[GET] == 1  # the full run asked whether the report carries it
    (user, course), *_ = not_completed(emulator, 1)
    emulator.complete(user, course, int((FULL_AT + timedelta(hours=3)).timestamp()))
    result = sync(demo_site, NIGHT_AT)
    assert result.counts["report_rows"] == full + 0  # the completion was of an existing enrolment
    assert "report_delta_since" not in result.counts and result.counts["evidence_new"] == 1
    calls = emulator.call_counts()
    assert (calls.get(SET, 0), calls[RESET], calls.get(GET, 0)) == (0, 1, 0)


def test_without_the_functions_in_the_service_the_nightly_reads_every_row(filtered: Site) -> None:
    emulator = emulator_of(filtered)
    narrow = "narrow-" + filtered.token
    emulator.add_token(narrow, functions=[f for f in emulator_functions() if f not in (SET, RESET)])
    (filtered.tmp / "token").write_text(narrow + "\n", encoding="utf-8")
    result = sync(filtered, NIGHT_AT)
    assert result.counts["report_rows"] > 50 and "report_delta_since" not in result.counts
    assert not {SET, RESET} & set(emulator.call_counts())


def test_set_filters_failing_falls_back_to_a_whole_read(
    filtered: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from connector.emulator import functions

    description, _ = functions.FUNCTIONS[SET]

    def refuse(call: Any, params: dict[str, Any]) -> bool:
        raise WsException("moodle_exception", "errorreportview", "You cannot view this report")

    monkeypatch.setitem(functions.FUNCTIONS, SET, (description, refuse))
    emulator = emulator_of(filtered)
    (user, course), *_ = not_completed(emulator, 1)
    at = int((FULL_AT + timedelta(hours=5)).timestamp())
    emulator.complete(user, course, at)
    with caplog.at_level(logging.WARNING, logger="connector.moodle"):
        result = sync(filtered, NIGHT_AT)
    assert result.counts["report_rows"] > 50 and "report_delta_since" not in result.counts
    assert (course, at - at % 60) in evidence(filtered, user)
    assert result.counts["people"] >= 60  # no delta after all: everyone's profile was read
    assert emulator.call_counts()[RESET] == 2  # after the failed set, and before the whole read
    assert "setting its 'Time completed' filter failed" in caplog.text


def test_a_filter_that_does_not_narrow_the_rows_makes_a_whole_read(
    filtered: Site, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = emulator_of(filtered)
    emulator.remove_report_time_filter()  # after the full run saw it: the values are ignored
    with caplog.at_level(logging.WARNING, logger="connector.moodle"):
        result = sync(filtered, NIGHT_AT)
    assert result.counts["report_rows"] > 50
    assert "report_delta_since" not in result.counts
    assert caplog.text.count("did not narrow the rows") == 1


def test_a_full_run_whose_reset_fails_reads_nothing(filtered: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    from connector.emulator import functions
    from connector.errors import MoodleError

    description, _ = functions.FUNCTIONS[RESET]

    def broken(call: Any, params: dict[str, Any]) -> bool:
        raise WsException("moodle_exception", "generalexceptionmessage", "Error")

    monkeypatch.setitem(functions.FUNCTIONS, RESET, (description, broken))
    with pytest.raises(MoodleError):
        sync(filtered, NIGHT_AT, full=True)
    assert RETRIEVE not in emulator_of(filtered).call_counts()


@pytest.mark.parametrize("hours", [0, 0.5, 721, -3])
def test_the_look_back_is_checked(demo_site: Site, hours: float) -> None:
    demo_site.write_config(report_id=1, report_lookback_hours=hours)
    with pytest.raises(ConfigError) as caught:
        load_config(demo_site.config_path)
    assert "moodle.report_lookback_hours" in str(caught.value)
    assert "must be between 1 and 720 (hours)" in str(caught.value)


def test_a_longer_look_back_starts_the_delta_earlier(filtered: Site) -> None:
    day = sync(filtered, NIGHT_AT).counts["report_delta_since"]
    week = sync(filtered, NIGHT_AT + timedelta(hours=1), report_lookback_hours=168)
    assert day - week.counts["report_delta_since"] >= 6 * 24 * 3600


def emulator_functions() -> list[str]:
    from connector.emulator.functions import SERVICE_FUNCTIONS

    return list(SERVICE_FUNCTIONS)


def test_the_ledger_keeps_what_the_next_night_needs(filtered: Site) -> None:
    ledger = Ledger.open_readonly(filtered.ledger_path)
    try:
        assert ledger.bookmarks.get("report_time_filter") == "present"
        latest = ledger.bookmarks.get("report_latest_completion")
    finally:
        ledger.close()
    assert latest is not None and int(latest) <= int(FULL_AT.timestamp())


# -- doctor ----------------------------------------------------------------------------------------
def doctor_check(site: Site) -> list[str]:
    """The lines of doctor's "report delta reads" check."""
    from click.testing import CliRunner

    from connector.cli import main

    result = CliRunner().invoke(main, ["--config", str(site.config_path), "doctor"], catch_exceptions=False)
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "report delta reads:" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("["))
    return lines[start:end]


def test_doctor_says_how_to_add_the_filter(demo_site: Site) -> None:
    assert doctor_check(demo_site) == [
        "[ok  ] report delta reads: report 1 has no 'Time completed' filter, so nightly runs read every row;",
        "       to read only recent completions at night, open Site administration > Reports > Report builder",  # noqa: E501
        "       > Custom reports, edit report 1 and on its 'Filters' tab add 'Course completion > Time",
        "       completed'",
    ]


def test_doctor_says_the_nights_read_only_recent_completions(demo_site: Site) -> None:
    emulator_of(demo_site).add_report_time_filter()
    assert doctor_check(demo_site) == [
        "[ok  ] report delta reads: report 1 carries the 'Time completed' filter: nightly runs read only the",
        "       completions since the last run",
    ]


def test_doctor_names_the_functions_the_service_needs(demo_site: Site) -> None:
    emulator = emulator_of(demo_site)
    emulator.add_report_time_filter()
    narrow = "narrow-" + demo_site.token
    emulator.add_token(narrow, functions=[f for f in emulator_functions() if f != SET])
    (demo_site.tmp / "token").write_text(narrow + "\n", encoding="utf-8")
    assert doctor_check(demo_site) == [
        "[ok  ] report delta reads: nightly runs read every row of report 1: core_reportbuilder_set_filters",
        "       not in the web service; add core_reportbuilder_set_filters to the external service (Site",
        "       administration > Server > Web services > External services > (your service) > Functions)",
    ]
    emulator.remove_report_time_filter()
    assert doctor_check(demo_site)[-1] == "       the report needs its 'Time completed' filter"


# -- the client's pieces ---------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_client_sets_reads_and_resets_the_filter_in_both_formats(demo_site: Site, fmt: str) -> None:
    from connector.moodle.client import MoodleClient
    from connector.moodle.report.filters import report_filters, reset_filters, set_time_completed_from
    from connector.moodle.settings import ClientSettings

    emulator = emulator_of(demo_site)
    emulator.add_report_time_filter()
    scenario = emulator.scenario
    since = int(FULL_AT.timestamp()) - 90 * 86400
    with MoodleClient(ClientSettings(emulator.url, demo_site.token, format=fmt)) as client:  # type: ignore[arg-type]
        assert TIME_COMPLETED in report_filters(client, 1)
        set_time_completed_from(client, 1, since)
        assert scenario.report_filter_values[scenario.token_user_id] == {
            f"{TIME_COMPLETED}_operator": 3,
            f"{TIME_COMPLETED}_from": since,
            f"{TIME_COMPLETED}_to": 0,
        }
        reset_filters(client, 1)
        assert scenario.report_filter_values == {}


def test_the_delta_starts_at_the_earlier_of_the_last_run_and_the_latest_completion() -> None:
    from connector.moodle.report.filters import ReportDelta

    def delta(latest: str | None) -> ReportDelta:
        marks = {"report_latest_completion": latest}
        return ReportDelta(object(), 1, lambda name: True, marks.get)  # type: ignore[arg-type]

    started = "2026-06-16T02:00:00+00:00"
    start = int(datetime.fromisoformat(started).timestamp())
    assert delta(None).since_for(started, 24) == start - 86400
    assert delta(str(start - 3600 + 17)).since_for(started, 1) == start - 7200  # whole minutes
    assert delta(str(start + 99999)).since_for(started, 24) == start - 86400  # a date in the future
    assert delta(None).since_for(None, 24) is None


def test_a_delta_check_sees_a_row_that_the_filter_should_have_left_out() -> None:
    from connector.moodle.records import ReportCompletion
    from connector.moodle.report.filters import DeltaCheck

    def row(at: int | None) -> ReportCompletion:
        return ReportCompletion(user_id=3, username="u001", course_id=2, course_idnumber="", completed_at=at)

    for rows, effective in (([row(100), row(160)], True), ([row(100), row(None)], False), ([row(99)], False)):
        check = DeltaCheck(100)
        assert len(list(check.watch(rows))) == len(rows)
        assert check.effective is effective


def test_runs_shows_which_run_read_a_delta(filtered: Site) -> None:
    import json

    from click.testing import CliRunner

    from connector.cli import main

    since = sync(filtered, NIGHT_AT).counts["report_delta_since"]
    result = CliRunner().invoke(main, ["--config", str(filtered.config_path), "runs", "--format", "json"])
    nightly, full = json.loads(result.stdout)
    assert nightly["counts"]["report_delta_since"] == since
    assert nightly["counts"]["report_rows"] < full["counts"]["report_rows"]
    assert "report_delta_since" not in full["counts"]


def test_a_delta_read_marks_nothing_gone_the_next_full_run_does(filtered: Site) -> None:
    emulator = emulator_of(filtered)
    scenario = emulator.scenario
    holder = next(
        scenario.enrol_user[p]
        for p in range(len(scenario.enrol_user))
        if scenario.enrol_course[p] == 2 and scenario.completed_at[p]
    )
    before = evidence(filtered, holder)
    emulator.reset_course(2)  # Moodle's course reset: the completions vanish
    night = sync(filtered, NIGHT_AT)
    assert night.counts["evidence_gone"] == 0 and "report_delta_since" in night.counts
    assert evidence(filtered, holder) == before
    full = sync(filtered, NIGHT_AT + timedelta(days=1), full=True)
    assert full.counts["evidence_gone"] > 0
    assert not {c for c, _ in evidence(filtered, holder)} & {2}


def _quiet_person(site: Site) -> int:
    """An active person with no completion in the last month before the full run (no delta row
    names them)."""
    ledger = Ledger.open_readonly(site.ledger_path)
    try:
        recent = int((FULL_AT - timedelta(days=30)).timestamp())
        for person in ledger.people.rows():
            rows = ledger.evidence.for_user(person["user_id"])
            if person["active"] and all(row["completed_at"] < recent for row in rows):
                return int(person["user_id"])
    finally:
        ledger.close()
    raise AssertionError("the demo has no quiet person")


def _active(site: Site, user_id: int) -> bool:
    ledger = Ledger.open_readonly(site.ledger_path)
    try:
        return next(bool(p["active"]) for p in ledger.people.rows() if p["user_id"] == user_id)
    finally:
        ledger.close()


def test_a_delta_night_reads_only_the_profiles_its_rows_name_and_a_full_run_reads_everyone(
    filtered: Site,
) -> None:
    emulator = emulator_of(filtered)
    quiet = _quiet_person(filtered)
    emulator.suspend(quiet)  # left the office; nothing else about them changed

    night = sync(filtered, NIGHT_AT)
    assert night.counts["people"] < 10  # the people its few rows name, not the site's 60
    assert emulator.call_counts().get("core_user_get_users_by_field", 0) <= 1
    assert _active(filtered, quiet)  # seen at the next full run, not tonight

    sync(filtered, NIGHT_AT + timedelta(days=1), full=True)
    assert not _active(filtered, quiet)


def test_profiles_every_run_reads_everyone_on_a_delta_night(filtered: Site) -> None:
    emulator = emulator_of(filtered)
    quiet = _quiet_person(filtered)
    emulator.suspend(quiet)
    filtered.config_path.write_text(
        filtered.config_path.read_text(encoding="utf-8") + "profiles_every_run = true\n",  # [sync] is last
        encoding="utf-8",
    )
    night = sync(filtered, NIGHT_AT)
    assert "report_delta_since" in night.counts and night.counts["people"] >= 60
    assert not _active(filtered, quiet)


def test_profiles_every_run_must_be_true_or_false(filtered: Site) -> None:
    filtered.config_path.write_text(
        filtered.config_path.read_text(encoding="utf-8") + 'profiles_every_run = "yes"\n',  # [sync] is last
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(filtered.config_path)
    assert "sync.profiles_every_run" in str(raised.value)


def test_a_delta_night_asks_about_the_people_whose_cohorts_changed() -> None:
    from connector.sync import cohort_changes

    now = {1: frozenset({"A"}), 2: frozenset({"A", "B"}), 3: frozenset({"B"}), 5: frozenset({"A"})}
    recorded = {1: frozenset({"A"}), 2: frozenset({"A"}), 4: frozenset({"B"})}
    present = {1, 2, 4, 5}
    # 2 joined B, 3 is new, 4 left every cohort, 5 is known but had none recorded; 1 is unchanged
    assert cohort_changes(now, recorded, present) == {2, 3, 4, 5}


def test_a_person_let_back_after_an_erasure_is_read_whole_by_the_next_sync(filtered: Site) -> None:
    """README: `unsuppress` lets someone back and "the next sync reads them as new". A delta night
    would read only their recent completions (none), so the next sync is a full one."""
    emulator = emulator_of(filtered)
    quiet = _quiet_person(filtered)
    before = evidence(filtered, quiet)
    assert before  # their completions are older than the delta's window
    ledger = Ledger.open_readonly(filtered.ledger_path)
    try:
        username = next(p["username"] for p in ledger.people.rows() if p["user_id"] == quiet)
    finally:
        ledger.close()
    config = ("--config", str(filtered.config_path))
    erased = CliRunner().invoke(main, [*config, "erase", username, "--reason", "by mistake", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert not evidence(filtered, quiet)
    back = CliRunner().invoke(main, [*config, "unsuppress", "--user-id", str(quiet)])
    assert back.exit_code == 0, back.output

    night = sync(filtered, NIGHT_AT)
    assert night.mode == "full"
    assert evidence(filtered, quiet) == before
    assert _active(filtered, quiet)
    assert emulator.scenario.report_filter_values == {}
    # once read whole, the nights are delta nights again
    assert sync(filtered, NIGHT_AT + timedelta(days=1)).mode == "incremental"


def _departments(site: Site) -> dict[int, str | None]:
    ledger = Ledger.open_readonly(site.ledger_path)
    try:
        return {int(p["user_id"]): p["department_id"] for p in ledger.people.rows()}
    finally:
        ledger.close()


def test_a_delta_night_after_the_mappings_changed_places_everyone_by_the_new_mappings(
    filtered: Site,
) -> None:
    """Placement is the mappings' reading of a profile: new mappings place everyone again on the
    next night, not only the few people its rows name."""
    mappings = filtered.tmp / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    text = filtered.config_path.read_text(encoding="utf-8")
    filtered.config_path.write_text(text.replace(str(MAPPINGS), str(mappings)), encoding="utf-8")
    before = _departments(filtered)
    moved = {u for u, d in before.items() if d == "jablonec.informatika"}
    assert moved
    cz = mappings / "departments-cz.toml"
    spelled = 'department = "Odbor informatiky"\ndepartment_aliases = ["OI", "Informatika"]'
    assert spelled in cz.read_text(encoding="utf-8")
    cz.write_text(
        cz.read_text(encoding="utf-8").replace(spelled, 'department = "Odbor IT"'), encoding="utf-8"
    )

    night = sync(filtered, NIGHT_AT)
    assert "report_delta_since" in night.counts
    after = _departments(filtered)
    assert {after[u] for u in moved} == {None}  # nobody is spelled "Odbor IT": unplaced now
    assert {u: d for u, d in after.items() if u not in moved} == {
        u: d for u, d in before.items() if u not in moved
    }


def _personal(site: Site) -> set[tuple[str | None, str | None]]:
    ledger = Ledger.open_readonly(site.ledger_path)
    try:
        return {(p["fullname"], p["email"]) for p in ledger.people.rows()}
    finally:
        ledger.close()


def test_a_personal_field_left_out_is_emptied_by_the_next_delta_night(filtered: Site) -> None:
    """README: "A field left out is emptied in the ledger at the next sync" (a delta night
    otherwise rewrites only the few people its rows name)."""
    config = filtered.config_path
    text = config.read_text(encoding="utf-8")
    config.write_text(text + '[privacy]\npersonal_fields = ["fullname", "email"]\n', encoding="utf-8")
    sync(filtered, NIGHT_AT, full=True)
    assert sum(1 for _, email in _personal(filtered) if email) > 20
    config.write_text(text + '[privacy]\npersonal_fields = ["fullname"]\n', encoding="utf-8")

    night = sync(filtered, NIGHT_AT + timedelta(days=1))
    assert night.mode == "incremental" and "report_delta_since" in night.counts
    assert {email for _, email in _personal(filtered)} == {None}
    assert all(name for name, _ in _personal(filtered))
    # read everyone once: the night after is a small one again
    assert sync(filtered, NIGHT_AT + timedelta(days=2)).counts["people"] < 10


def test_a_full_run_refuses_a_report_still_filtered_when_the_service_cannot_reset_it(
    filtered: Site,
) -> None:
    emulator = emulator_of(filtered)
    sync(filtered, NIGHT_AT)
    # a delta read killed before its reset left the filter set, and the service then lost the reset
    emulator.scenario.report_filter_values[emulator.scenario.token_user_id] = {
        f"{TIME_COMPLETED}_operator": 3,
        f"{TIME_COMPLETED}_from": int(NIGHT_AT.timestamp()),
    }
    narrow = "narrow-" + filtered.token
    emulator.add_token(narrow, functions=[f for f in emulator_functions() if f != RESET])
    (filtered.tmp / "token").write_text(narrow + "\n", encoding="utf-8")
    before = {u: evidence(filtered, u) for u in range(3, 13)}

    with pytest.raises(SyncRefused) as refused:
        sync(filtered, NIGHT_AT + timedelta(days=1), full=True)
    assert refused.value.message == (
        "report 1 still has filter values set for the token's user and the service lacks "
        "core_reportbuilder_filters_reset: a whole read would miss rows; nothing was written"
    )
    assert RETRIEVE not in emulator.call_counts()  # refused before reading a row
    assert {u: evidence(filtered, u) for u in range(3, 13)} == before

    emulator.scenario.report_filter_values.clear()  # reset in Moodle by hand
    result = sync(filtered, NIGHT_AT + timedelta(days=1), full=True)
    assert result.counts["report_rows"] > 50 and result.counts["evidence_gone"] == 0
