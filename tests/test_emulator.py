"""The emulator's behaviour over real loopback HTTP: paging, workers, faults, mutations, counts,
and the scenarios behind it."""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import xmltodict

from connector.emulator import Emulator, demo_scenario, generated_scenario, scenario_by_name
from connector.emulator.functions import format_report_time
from connector.emulator.wire import decode_form
from tests.helpers import REPO

ANCHOR = date(2026, 1, 15)
TOKEN = "test-full-token-0123456789"
WEAK = "test-weak-token-0123456789"
PATH = "/webservice/rest/server.php"


@pytest.fixture()
def emulator() -> Iterator[Emulator]:
    with Emulator(demo_scenario(ANCHOR), tokens={TOKEN: "full", WEAK: "weak"}) as emu:
        yield emu


def call(emu: Emulator, function: str, token: str = TOKEN, **params: Any) -> Any:
    form = {"wstoken": token, "wsfunction": function, "moodlewsrestformat": "json", **params}
    reply = requests.post(emu.url + PATH, data=form, timeout=10)
    reply.raise_for_status()
    return reply.json()


def paging_options(start: int, size: int) -> dict[str, Any]:
    return {
        "options[0][name]": "limitfrom",
        "options[0][value]": start,
        "options[1][name]": "limitnumber",
        "options[1][value]": size,
    }


def days_ago_10utc(days: int) -> int:
    return int(datetime(2026, 1, 15, 10, tzinfo=UTC).timestamp()) - days * 86400


# ----- protocol ----------------------------------------------------------------------------------
def test_nested_form_fields_decode_like_php() -> None:
    decoded = decode_form(
        [
            ("options[0][name]", "limitfrom"),
            ("options[0][value]", "5"),
            ("options[ids][0]", "2"),
            ("values[1]", "b"),
            ("values[0]", "a"),
            ("context[contextlevel]", "system"),
            ("query", ""),
        ]
    )
    assert decoded == {
        "options": {"0": {"name": "limitfrom", "value": "5"}, "ids": ["2"]},
        "values": ["a", "b"],
        "context": {"contextlevel": "system"},
        "query": "",
    }


def test_paging_returns_every_enrolled_user_once_and_empty_past_the_end(emulator: Emulator) -> None:
    everyone = [u["id"] for u in call(emulator, "core_enrol_get_enrolled_users", courseid=2)]
    paged: list[int] = []
    start = 0
    while page := call(emulator, "core_enrol_get_enrolled_users", courseid=2, **paging_options(start, 7)):
        assert len(page) <= 7
        paged += [u["id"] for u in page]
        start += 7
    assert paged == everyone == sorted(everyone)
    expected = sorted(e.user_id for e in emulator.scenario.enrolments if e.course_id == 2)
    assert everyone == expected
    assert call(emulator, "core_enrol_get_enrolled_users", courseid=2, **paging_options(10_000, 5)) == []


def test_enrolled_users_never_carry_suspended_and_onlyactive_keeps_a_suspended_account(
    emulator: Emulator,
) -> None:
    users = call(emulator, "core_enrol_get_enrolled_users", courseid=2)
    assert all("suspended" not in u for u in users)
    assert 19 in [u["id"] for u in users]
    active = call(
        emulator,
        "core_enrol_get_enrolled_users",
        courseid=2,
        **{"options[0][name]": "onlyactive", "options[0][value]": 1},
    )
    # onlyactive looks at the enrolment, not the account (4.5 capture: "onlyactive" lists u017)
    assert 19 in [u["id"] for u in active] and len(active) == len(users)
    by_field = call(emulator, "core_user_get_users_by_field", field="username", **{"values[0]": "u017"})
    assert by_field[0]["suspended"] is True


def test_report_pages_cover_every_enrolment_with_prague_times(emulator: Emulator) -> None:
    rows: list[list[str]] = []
    page = 0
    while True:
        answer = call(emulator, "core_reportbuilder_retrieve_report", reportid=1, page=page, perpage=25)
        if not answer["data"]["rows"]:
            break
        rows += [r["columns"] for r in answer["data"]["rows"]]
        page += 1
    assert len(rows) == answer["data"]["totalrowcount"]
    # the demo report has no "Enrolment status" condition: it also lists each course's unused
    # enrolment method, with empty user cells
    people_rows = [r for r in rows if r[3]]
    assert len(people_rows) == emulator.scenario.enrolment_count()
    assert len(rows) - len(people_rows) == len([c for c in emulator.scenario.courses])
    u001_itsec = next(r for r in rows if r[3] == "u001" and r[6] == "ITSEC-CZ")
    at = days_ago_10utc(180)  # 10:00 UTC in July = 12:00 in Prague (CEST)
    assert u001_itsec[7] == format_report_time(at, __import__("zoneinfo").ZoneInfo("Europe/Prague"))
    assert u001_itsec[7].endswith(", 12:00 PM")
    assert u001_itsec[2].startswith(f'<a href="{emulator.url}/user/profile.php?id=3">')
    u003 = next(r for r in rows if r[3] == "u003")
    assert u003[7] == ""


def test_report_time_format_matches_moodle() -> None:
    from zoneinfo import ZoneInfo

    assert format_report_time(1748088000, ZoneInfo("Europe/London")) == "Saturday, 24 May 2025, 1:00 PM"
    assert format_report_time(1748088000, ZoneInfo("Europe/Prague")) == "Saturday, 24 May 2025, 2:00 PM"


def test_named_people_completion_status(emulator: Emulator) -> None:
    done = call(emulator, "core_completion_get_course_completion_status", courseid=2, userid=3)
    assert done["completionstatus"]["completed"] is True
    assert done["completionstatus"]["completions"][0]["timecompleted"] == days_ago_10utc(180)
    latest = call(emulator, "core_completion_get_course_completion_status", courseid=2, userid=7)
    assert latest["completionstatus"]["completions"][0]["timecompleted"] == days_ago_10utc(100)
    missing = call(emulator, "core_completion_get_course_completion_status", courseid=2, userid=5)
    assert missing["completionstatus"]["completed"] is False
    error = call(emulator, "core_completion_get_course_completion_status", courseid=5, userid=9)
    assert error["errorcode"] == "usernotenroled"


def test_xml_is_moodles_default_format(emulator: Emulator) -> None:
    form = {"wstoken": TOKEN, "wsfunction": "core_webservice_get_site_info"}
    reply = requests.post(emulator.url + PATH, data=form, timeout=10)
    tree = xmltodict.parse(reply.content)
    keys = {k["@name"]: k for k in tree["RESPONSE"]["SINGLE"]["KEY"]}
    assert keys["userid"]["VALUE"] == "63"
    assert keys["userissiteadmin"]["VALUE"] == "0"
    assert keys["usersessionscount"]["VALUE"] == {"@null": "null"}


def test_tokens_and_services(emulator: Emulator) -> None:
    assert call(emulator, "core_webservice_get_site_info", token="nope")["errorcode"] == "invalidtoken"
    assert call(emulator, "core_webservice_get_site_info", token=WEAK)["username"] == "wsweak"
    assert call(emulator, "core_enrol_get_enrolled_users", token=WEAK, courseid=2)["errorcode"] == (
        "errorcoursecontextnotvalid"
    )
    emulator.add_token("narrow", functions=["core_webservice_get_site_info"])
    info = call(emulator, "core_webservice_get_site_info", token="narrow")
    assert [f["name"] for f in info["functions"]] == ["core_webservice_get_site_info"]
    assert call(emulator, "core_course_get_courses", token="narrow")["errorcode"] == "accessexception"
    assert call(emulator, "core_no_such_function")["errorcode"] == "invalidrecord"


def test_unsupported_search_key_returns_everyone_with_a_warning(emulator: Emulator) -> None:
    answer = call(
        emulator, "core_user_get_users", **{"criteria[0][key]": "department", "criteria[0][value]": "x"}
    )
    assert answer["warnings"][0]["warningcode"] == "invalidfieldparameter"
    assert len(answer["users"]) == 60 + 4


def test_token_never_logged(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="connector.emulator")
    requests.get(
        emulator.url + PATH,
        params={"wstoken": TOKEN, "wsfunction": "core_webservice_get_site_info"},
        timeout=10,
    )
    assert caplog.records
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert TOKEN not in repr(emulator)


# ----- mutations and counts ----------------------------------------------------------------------
def test_course_reset_erases_completions_but_keeps_enrolments(emulator: Emulator) -> None:
    before = call(emulator, "core_enrol_get_enrolled_users", courseid=2)
    emulator.reset_course(2)
    after = call(emulator, "core_enrol_get_enrolled_users", courseid=2)
    assert [u["id"] for u in after] == [u["id"] for u in before]
    status = call(emulator, "core_completion_get_course_completion_status", courseid=2, userid=3)
    assert status["completionstatus"]["completed"] is False
    assert not [c for c in emulator.scenario.completions if c.course_id == 2]
    assert [c for c in emulator.scenario.completions if c.course_id == 3]


def test_complete_suspend_delete(emulator: Emulator) -> None:
    emulator.complete(5, 2, 1_700_000_000)  # u003 finally completes ITSEC-CZ
    status = call(emulator, "core_completion_get_course_completion_status", courseid=2, userid=5)
    assert status["completionstatus"]["completions"][0]["timecompleted"] == 1_700_000_000
    emulator.complete(5, 4, 1_700_000_100)  # not enrolled before: enrolled by completing
    assert 5 in [u["id"] for u in call(emulator, "core_enrol_get_enrolled_users", courseid=4)]
    emulator.suspend(4)
    assert call(emulator, "core_user_get_users_by_field", field="id", **{"values[0]": 4})[0]["suspended"]
    emulator.delete_user(3, at=1_795_715_679)
    (renamed,) = call(emulator, "core_user_get_users_by_field", field="id", **{"values[0]": 3})
    assert renamed["username"] == "u001@example.org.1795715679" and "deleted" not in renamed
    assert call(emulator, "core_user_get_users_by_field", field="username", **{"values[0]": "u001"}) == []
    assert call(emulator, "core_enrol_get_users_courses", userid=3) == []
    gone = call(emulator, "core_completion_get_course_completion_status", courseid=2, userid=3)
    assert gone["errorcode"] == "usernotenroled"  # the account exists, its enrolments do not
    assert 3 not in [u["id"] for u in call(emulator, "core_enrol_get_enrolled_users", courseid=2)]
    report = call(emulator, "core_reportbuilder_retrieve_report", reportid=1, perpage=1000)
    assert "u001" not in [r["columns"][3] for r in report["data"]["rows"]]
    assert len([r for r in report["data"]["rows"] if r["columns"][3]]) == emulator.scenario.enrolment_count()


def test_call_counts(emulator: Emulator) -> None:
    call(emulator, "core_webservice_get_site_info")
    call(emulator, "core_course_get_courses")
    call(emulator, "core_course_get_courses")
    assert emulator.call_counts() == {"core_webservice_get_site_info": 1, "core_course_get_courses": 2}
    assert emulator.total_calls == 3
    emulator.reset_counts()
    assert emulator.call_counts() == {} and emulator.total_calls == 0


# ----- workers and faults ------------------------------------------------------------------------
def hammer(emu: Emulator, threads: int, calls_each: int) -> list[int]:
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with requests.Session() as session:
            for _ in range(calls_each):
                reply = session.post(
                    emu.url + PATH,
                    timeout=30,
                    data={
                        "wstoken": TOKEN,
                        "wsfunction": "core_webservice_get_site_info",
                        "moodlewsrestformat": "json",
                    },
                )
                with lock:
                    statuses.append(reply.status_code)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return statuses


def test_worker_limit_queues_extra_requests() -> None:
    peak_executing = 0
    executing = 0
    lock = threading.Lock()
    with Emulator(demo_scenario(ANCHOR), tokens={TOKEN: "full"}, workers=2, latency_ms=20) as emu:
        original = emu._answer

        def observed(form: Any) -> Any:
            nonlocal executing, peak_executing
            with lock:
                executing += 1
                peak_executing = max(peak_executing, executing)
            try:
                return original(form)
            finally:
                with lock:
                    executing -= 1

        emu._answer = observed  # type: ignore[method-assign]
        statuses = hammer(emu, threads=6, calls_each=3)
        assert statuses == [200] * 18
        assert emu.max_in_flight > 2  # requests queued beyond the two workers
        assert emu.max_in_flight <= 6
        assert peak_executing <= 2


def raw_post(emu: Emulator, function: str = "core_webservice_get_site_info") -> http.client.HTTPResponse:
    parts = urlsplit(emu.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    body = f"wstoken={TOKEN}&wsfunction={function}&moodlewsrestformat=json"
    connection.request("POST", PATH, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    return connection.getresponse()


def test_each_fault_kind_is_observable() -> None:
    with Emulator(demo_scenario(ANCHOR), tokens={TOKEN: "full"}, slow_s=0.3) as emu:
        for number, kind in enumerate(
            ("http_503", "http_429", "maintenance_html", "drop", "truncated", "slow"), start=1
        ):
            emu.script_fault(number, kind)
        reply = raw_post(emu)
        assert reply.status == 503 and b"Service Unavailable" in reply.read()
        reply = raw_post(emu)
        assert reply.status == 429 and reply.getheader("Retry-After") == "1"
        reply = raw_post(emu)
        assert reply.status == 503 and reply.getheader("Content-Type").startswith("text/html")
        assert b"maintenance" in reply.read()
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            raw_post(emu)
        reply = raw_post(emu)
        with pytest.raises(http.client.IncompleteRead):
            reply.read()
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(
                emu.url + PATH,
                timeout=0.1,
                data={"wstoken": TOKEN, "wsfunction": "core_webservice_get_site_info"},
            )
        assert raw_post(emu).status == 200
        assert emu.total_calls == 7


def test_scripted_fault_for_one_function_and_error_rate() -> None:
    with Emulator(demo_scenario(ANCHOR), tokens={TOKEN: "full"}, seed=3) as emu:
        emu.script_fault(2, "http_503", function="core_course_get_courses")
        assert raw_post(emu, "core_course_get_courses").status == 200
        assert raw_post(emu).status == 200
        assert raw_post(emu, "core_course_get_courses").status == 503
        emu.set_error_rate(1.0, kinds=["http_429"])
        assert raw_post(emu).status == 429
        emu.set_error_rate(0.0)
        assert raw_post(emu).status == 200


# ----- scenarios ---------------------------------------------------------------------------------
def test_demo_scenario_matches_the_shared_spec() -> None:
    scenario = demo_scenario(ANCHOR)
    people = {p.username: p for p in scenario.users}
    assert len(people) == 60 and people["u001"].id == 3 and people["u060"].id == 62
    assert people["u017"].suspended and not people["u001"].suspended
    assert people["u058"].institution == "MM Jablonec n. N."
    assert people["u058"].department == "  odbor  INFORMATIKY "
    assert people["u060"].institution == "" and people["u060"].department == ""
    assert people["u051"].field("position") == "starosta"
    assert 95 <= sum(1 for _ in scenario.enrolments) <= 130
    assert 65 <= sum(1 for _ in scenario.completions) <= 95
    history = [c for c in scenario.completion_history if c.user_id == 7 and c.course_id == 2]
    assert sorted(c.completed_at for c in history) == [days_ago_10utc(1000), days_ago_10utc(100)]
    assert {c.id for c in scenario.courses} == {2, 3, 4, 5, 6, 7}


def test_generator_is_deterministic_and_near_the_requested_size() -> None:
    def build(seed: int) -> Any:
        return generated_scenario(
            users=3000, courses=12, enrolments_per_user=2.5, completion_rate=0.4, seed=seed, anchor=ANCHOR
        )

    first, again, other = build(7), build(7), build(8)
    assert list(first.users) == list(again.users)
    assert list(first.completions) == list(again.completions)
    assert list(first.completions) != list(other.completions)
    enrolments = sum(1 for _ in first.enrolments)
    assert 3000 * 2.5 * 0.95 <= enrolments <= 3000 * 2.5 * 1.05
    completions = sum(1 for _ in first.completions)
    assert enrolments * 0.35 <= completions <= enrolments * 0.45
    assert sum(1 for _ in first.users) == 3000 and sum(1 for _ in first.courses) == 12


def test_named_sizes_and_a_generated_site_over_http() -> None:
    small = scenario_by_name("small", ANCHOR)
    assert sum(1 for _ in small.users) == 500
    assert 1900 <= small.enrolment_count() <= 2100
    with pytest.raises(ValueError):
        scenario_by_name("huge", ANCHOR)
    with Emulator(small, tokens={TOKEN: "full"}) as emu:
        answer = call(emu, "core_reportbuilder_retrieve_report", reportid=1, perpage=5000)
        assert len(answer["data"]["rows"]) == small.enrolment_count()
    no_report = generated_scenario(
        users=10,
        courses=2,
        enrolments_per_user=1,
        completion_rate=1,
        seed=1,
        anchor=ANCHOR,
        with_report=False,
    )
    with Emulator(no_report, tokens={TOKEN: "full"}) as emu:
        assert call(emu, "core_reportbuilder_list_reports")["reports"] == []
        assert call(emu, "core_reportbuilder_retrieve_report", reportid=1)["errorcode"] == "invalidrecord"


@pytest.mark.slow
def test_connector_emulator_answers_as_moodle_45_when_asked() -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connector.cli",
            "emulator",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--moodle",
            "4.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Moodle emulator (demo) serving http://127.0.0.1:"), first
        url = first.split("serving ")[1].removesuffix("/webservice/rest/server.php\n")
        info = requests.post(
            url + PATH,
            data={
                "wstoken": TOKEN,
                "wsfunction": "core_webservice_get_site_info",
                "moodlewsrestformat": "json",
            },
            timeout=10,
        ).json()
        assert (info["release"], info["version"]) == ("4.5.11+ (Build: 20260501)", "2024100711.02")
        refused = requests.post(
            url + PATH,
            data={
                "wstoken": TOKEN,
                "wsfunction": "core_course_get_courses_by_field",
                "field": "bogus",
                "moodlewsrestformat": "json",
            },
            timeout=10,
        ).json()
        assert refused["exception"] == "core\\exception\\invalid_parameter_exception"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("error", "level"),
    [(ConnectionResetError("reset by peer"), logging.DEBUG), (ValueError("bug"), logging.ERROR)],
)
def test_a_failed_request_is_logged_not_printed_over_a_commands_stderr(
    error: Exception, level: int, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A client gone mid-answer is routine; a server bug is an error. Neither writes to stderr."""
    import urllib.error
    import urllib.request
    from http.server import BaseHTTPRequestHandler

    from tests.helpers import loopback_http

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            raise error

    caplog.set_level(logging.DEBUG, logger="connector.emulator")
    with loopback_http(Failing) as url:
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.RemoteDisconnected)):
            urllib.request.urlopen(url, timeout=5)
    assert capfd.readouterr().err == ""
    [record] = [r for r in caplog.records if r.name == "connector.emulator"]
    assert record.levelno == level and (record.exc_info is not None) == (level == logging.ERROR)
