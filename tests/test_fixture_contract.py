"""Contract: every fixture captured from a real Moodle 4.1 is parsed right by the client and API.

Each case's recorded body is served, with its recorded status and content type, by a replay HTTP
server on 127.0.0.1; the client calls it like a real site. The server records what it received, so
the tests also check the exact form body, the method and where the token travels.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest

from connector.errors import (
    MoodleAuthError,
    MoodleError,
    MoodleNotFound,
    MoodlePermissionError,
    MoodleRequestError,
)
from connector.moodle.api import MoodleApi
from connector.moodle.client import ClientSettings, MoodleClient, MoodleFunctionNotFound
from connector.moodle.records import (
    Cohort,
    CohortMembers,
    Course,
    CourseCompletion,
    EnrolledUser,
    Person,
    ReportCompletion,
    ReportPage,
    SiteInfo,
    UserCourse,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "moodle-4.1"
LONDON = ZoneInfo("Europe/London")


# --------------------------------------------------------------------------------------------
# fixture cases


@dataclass(frozen=True)
class Case:
    name: str  # "<function>/<case>"
    request: dict[str, Any]
    meta: dict[str, Any]
    body: bytes

    @property
    def function(self) -> str:
        return str(self.request["function"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.request["params"])

    @property
    def format(self) -> str:
        return str(self.request["format"])

    @property
    def token(self) -> str:
        return str(self.request["token"])

    def decoded_error(self) -> dict[str, str] | None:
        text = self.body.decode("utf-8")
        if self.format == "json":
            value = json.loads(text)
            return value if isinstance(value, dict) and "errorcode" in value else None
        if "<EXCEPTION" in text:
            code = text.split("<ERRORCODE>")[1].split("</ERRORCODE>")[0]
            message = text.split("<MESSAGE>")[1].split("</MESSAGE>")[0]
            return {"errorcode": code, "message": message}
        return None


def load_cases() -> list[Case]:
    cases = []
    for request_file in sorted(FIXTURES.glob("*/*.request.json")):
        stem = request_file.name.removesuffix(".request.json")
        folder = request_file.parent
        body_file = next(folder.glob(f"{stem}.response.*"))
        cases.append(
            Case(
                name=f"{folder.name}/{stem}",
                request=json.loads(request_file.read_text(encoding="utf-8")),
                meta=json.loads((folder / f"{stem}.meta.json").read_text(encoding="utf-8")),
                body=body_file.read_bytes(),
            )
        )
    return cases


CASES = load_cases()


def test_the_fixture_folder_is_there_and_complete() -> None:
    assert len(CASES) >= 50
    assert {c.format for c in CASES} == {"json", "xml"}


# --------------------------------------------------------------------------------------------
# the replay server


@dataclass
class Received:
    method: str
    path: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]


@dataclass
class Replay:
    """Serves one recorded answer to every request and records the requests."""

    url: str = ""
    status: int = 200
    content_type: str = "application/json"
    body: bytes = b"{}"
    received: list[Received] = field(default_factory=list)

    def serve(self, case: Case) -> None:
        self.status = int(case.meta["http_status"])
        self.content_type = str(case.meta["content_type"])
        self.body = case.body
        self.received.clear()


def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            parts = urlsplit(self.path)
            replay.received.append(
                Received(self.command, parts.path, parse_qsl(parts.query, keep_blank_values=True), parse_qsl(raw, keep_blank_values=True))
            )
            self.send_response(replay.status)
            self.send_header("Content-Type", replay.content_type)
            self.send_header("Content-Length", str(len(replay.body)))
            self.end_headers()
            self.wfile.write(replay.body)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

    return Handler


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    state = Replay()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def client_for(replay: Replay, case: Case, fmt: str | None = None) -> MoodleClient:
    settings = ClientSettings(url=replay.url, token=case.token, format=fmt or case.format, retry_attempts=1)  # type: ignore[arg-type]
    return MoodleClient(settings)


# --------------------------------------------------------------------------------------------
# the API call each function maps to, and spot checks of real values

ApiCall = Callable[[MoodleApi, dict[str, Any]], Any]

API_CALLS: dict[str, ApiCall] = {
    "core_webservice_get_site_info": lambda api, p: api.site_info(),
    "core_course_get_courses": lambda api, p: api.courses(p.get("options", {}).get("ids")),
    "core_course_get_courses_by_field": lambda api, p: api.courses_by_field(p.get("field"), p.get("value")),
    "core_enrol_get_enrolled_users": lambda api, p: list(
        api.enrolled_users(int(p["courseid"]), page_size=1000, userfields=_userfields(p))
    ),
    "core_enrol_get_users_courses": lambda api, p: api.user_courses(p["userid"]),
    "core_completion_get_course_completion_status": lambda api, p: api.course_completion(p["courseid"], p["userid"]),
    "core_user_get_users_by_field": lambda api, p: api.users_by_field(p["field"], p["values"]),
    "core_cohort_get_cohorts": lambda api, p: api.cohorts(),
    "core_cohort_get_cohort_members": lambda api, p: api.cohort_members(p["cohortids"]),
    "core_reportbuilder_list_reports": lambda api, p: api.reports(),
    "core_reportbuilder_retrieve_report": lambda api, p: next(api.report_pages(p["reportid"], per_page=p.get("perpage", 1000))),
}

RECORD_TYPES: dict[str, type] = {
    "core_webservice_get_site_info": SiteInfo,
    "core_course_get_courses": Course,
    "core_course_get_courses_by_field": Course,
    "core_enrol_get_enrolled_users": EnrolledUser,
    "core_enrol_get_users_courses": UserCourse,
    "core_completion_get_course_completion_status": CourseCompletion,
    "core_user_get_users_by_field": Person,
    "core_cohort_get_cohorts": Cohort,
    "core_cohort_get_cohort_members": CohortMembers,
    "core_reportbuilder_list_reports": tuple,
    "core_reportbuilder_retrieve_report": ReportPage,
}


def _userfields(params: dict[str, Any]) -> list[str] | None:
    for option in params.get("options", []):
        if option["name"] == "userfields":
            return str(option["value"]).split(",")
    return None


def _check_site_info(info: SiteInfo) -> None:
    assert info.release == "4.1.10 (Build: 20240422)"
    assert info.version == "2022112810"
    assert info.lang == "en"
    assert info.userid == 63 and info.username == "wsconnector"
    assert info.can_call("core_reportbuilder_retrieve_report")
    assert not info.can_call("core_user_create_users")


def _check_all_courses(courses: list[Course]) -> None:
    by_id = {c.id: c for c in courses}
    assert set(by_id) == {2, 3, 4, 5, 6, 7}  # the front page (id 1, format "site") is left out
    assert by_id[2].idnumber == "ITSEC-CZ" and by_id[2].fullname == "„IT bezpečnost pro koncové uživatele“"
    assert by_id[2].completion_enabled and by_id[2].visible and by_id[2].category_id == 2
    assert not by_id[6].completion_enabled
    assert not by_id[7].visible


def _check_course_enrolled(users: list[EnrolledUser]) -> None:
    assert len(users) == 40
    first = users[0]
    assert first.person.id == 3 and first.person.username == "u001"
    assert first.person.department == "Odbor informatiky"
    assert first.person.institution == "Magistrát města Jablonec nad Nisou"
    assert first.person.idnumber == "EMP1001"
    assert first.person.field("position") == "digitální poradce"
    assert first.person.suspended is None  # enrolled users never say
    assert first.enrolment.course_id == 2 and first.enrolment.lastcourseaccess == 0
    assert len({u.person.id for u in users}) == 40


def _check_by_username(people: list[Person]) -> None:
    by_name = {p.username: p for p in people}
    assert set(by_name) == {"u001", "u017", "u045"}
    assert by_name["u017"].suspended is True
    assert by_name["u001"].suspended is False and by_name["u045"].suspended is False
    assert by_name["u001"].id == 3 and by_name["u001"].field("position") == "digitální poradce"


def _check_report_page0(page: ReportPage) -> None:
    assert page.total_rows == 127 and len(page.rows) == 25 and page.page == 0
    assert page.headers[-1] == "Time completed"
    assert page.rows[0][-1] == "Saturday, 24 May 2025, 1:00 PM"


SPOT_CHECKS: dict[str, Callable[[Any], None]] = {
    "core_webservice_get_site_info/site_info": _check_site_info,
    "core_webservice_get_site_info/site_info_xml": _check_site_info,
    "core_webservice_get_site_info/get_token_in_query": _check_site_info,
    "core_course_get_courses/all_courses": _check_all_courses,
    "core_course_get_courses/all_courses_xml": _check_all_courses,
    "core_course_get_courses/by_ids": lambda cs: [c.id for c in cs] == [2, 4] or pytest.fail(str(cs)),
    "core_course_get_courses_by_field/by_field_all": _check_all_courses,
    "core_course_get_courses_by_field/by_idnumber": lambda cs: [(c.id, c.idnumber) for c in cs] == [(2, "ITSEC-CZ")]
    or pytest.fail(str(cs)),
    "core_enrol_get_enrolled_users/course_enrolled": _check_course_enrolled,
    "core_enrol_get_enrolled_users/course_enrolled_xml": _check_course_enrolled,
    "core_enrol_get_enrolled_users/hidden_course": lambda us: sorted(u.person.id for u in us) == [15, 28, 41, 54]
    or pytest.fail(str(us)),
    "core_enrol_get_enrolled_users/paged_0": lambda us: [u.person.id for u in us] == list(range(3, 13)) or pytest.fail(str(us)),
    "core_enrol_get_enrolled_users/paged_past_end": lambda us: us == [] or pytest.fail(str(us)),
    "core_enrol_get_enrolled_users/userfields": lambda us: (
        us[0].person.username == "u037" and us[0].person.field("position") == "uslužbenec" and us[0].person.email == ""
    )
    or pytest.fail(str(us[0])),
    "core_completion_get_course_completion_status/completion_done": lambda c: c
    == CourseCompletion(user_id=3, course_id=2, completed=True, completed_at=1748088000)
    or pytest.fail(str(c)),
    "core_completion_get_course_completion_status/completion_done_xml": lambda c: c
    == CourseCompletion(user_id=3, course_id=2, completed=True, completed_at=1748088000)
    or pytest.fail(str(c)),
    "core_completion_get_course_completion_status/completion_not_done": lambda c: c
    == CourseCompletion(user_id=9, course_id=2, completed=False, completed_at=None)
    or pytest.fail(str(c)),
    "core_enrol_get_users_courses/user_courses": lambda ucs: [(u.course_id, u.completed, u.progress) for u in ucs]
    == [(2, True, 100.0), (3, True, 100.0), (5, True, 100.0)]
    or pytest.fail(str(ucs)),
    "core_user_get_users_by_field/by_username": _check_by_username,
    "core_user_get_users_by_field/by_username_xml": _check_by_username,
    "core_cohort_get_cohorts/cohorts_all": lambda cs: (len(cs) == 5 and cs[0] == Cohort(1, "COH-8CB4C3", "Magistrát města Jablonec nad Nisou"))
    or pytest.fail(str(cs)),
    "core_cohort_get_cohort_members/members": lambda ms: ([m.cohort_id for m in ms] == [1, 2, 3, 4, 5] and ms[3].user_ids == (59, 60))
    or pytest.fail(str(ms)),
    "core_reportbuilder_list_reports/list": lambda rs: rs == [(1, "Compliance completions")] or pytest.fail(str(rs)),
    "core_reportbuilder_retrieve_report/report_page0": _check_report_page0,
    "core_reportbuilder_retrieve_report/report_page0_xml": _check_report_page0,
    "core_reportbuilder_retrieve_report/report_big_page": lambda p: (p.total_rows == 127 and len(p.rows) == 127)
    or pytest.fail(str(p.total_rows)),
}


def expected_error(case: Case) -> type[MoodleError]:
    error = case.decoded_error()
    assert error is not None
    code = error["errorcode"]
    if code == "invalidrecord":
        return MoodleFunctionNotFound if "external_functions" in error["message"] else MoodleNotFound
    return {
        "invalidtoken": MoodleAuthError,
        "accessexception": MoodlePermissionError,
        "requireloginerror": MoodlePermissionError,
        "errorcoursecontextnotvalid": MoodlePermissionError,
        "nopermissions": MoodlePermissionError,
        "invalidparameter": MoodleRequestError,
        "usernotenroled": MoodleRequestError,
        "cannotviewreport": MoodleRequestError,
        "nocriteriaset": MoodleRequestError,
    }[code]


# --------------------------------------------------------------------------------------------
# the contract


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_raw_call_sends_the_recorded_form_and_decodes_the_answer(replay: Replay, case: Case) -> None:
    replay.serve(case)
    with client_for(replay, case) as client:
        if case.decoded_error() is not None:
            with pytest.raises(expected_error(case)) as raised:
                client.call(case.function, case.params)
            assert raised.value.function == case.function
            assert raised.value.errorcode == case.decoded_error()["errorcode"]  # type: ignore[index]
            assert case.token not in str(raised.value)
        else:
            assert client.call(case.function, case.params) is not None
    (request,) = replay.received
    assert request.method == "POST"
    assert request.path == "/webservice/rest/server.php"
    assert request.query == []  # nothing, the token least of all, in the URL
    assert request.form == [(k, str(v)) for k, v in case.request["form_body"]]


@pytest.mark.parametrize("case", [c for c in CASES if c.function in API_CALLS], ids=lambda c: c.name)
def test_api_turns_each_answer_into_records_or_the_right_error(replay: Replay, case: Case) -> None:
    replay.serve(case)
    with client_for(replay, case) as client:
        api = MoodleApi(client)
        call = API_CALLS[case.function]
        if case.decoded_error() is not None:
            with pytest.raises(expected_error(case)):
                try:
                    call(api, case.params)
                except (KeyError, ValueError):  # params our API cannot even express (courseid "abc")
                    client.call(case.function, case.params)
            return
        result = call(api, case.params)
    items = result if isinstance(result, list) else [result]
    assert all(isinstance(item, RECORD_TYPES[case.function]) for item in items)
    if case.name in SPOT_CHECKS:
        SPOT_CHECKS[case.name](result)


def test_every_successful_case_of_an_api_function_has_a_spot_check_or_a_type_check() -> None:
    covered = [c.name for c in CASES if c.function in API_CALLS and c.decoded_error() is None]
    assert len([name for name in covered if name in SPOT_CHECKS]) >= 20


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.format == "xml" and c.decoded_error() is None and c.function in API_CALLS], ids=lambda c: c.name
)
def test_json_and_xml_answers_give_equal_records(replay: Replay, case: Case) -> None:
    json_case = next(c for c in CASES if c.name == case.name.removesuffix("_xml"))
    results = []
    for variant in (json_case, case):
        replay.serve(variant)
        with client_for(replay, variant) as client:
            results.append(API_CALLS[variant.function](MoodleApi(client), variant.params))
    assert results[0] == results[1]
    assert results[0]  # not trivially equal


@pytest.mark.parametrize("case", [c for c in CASES if c.function == "core_completion_get_course_completion_status"], ids=lambda c: c.name)
def test_per_enrolment_errors_are_yielded_and_the_others_raised(replay: Replay, case: Case) -> None:
    replay.serve(case)
    pair = (case.params["courseid"], case.params["userid"])
    with client_for(replay, case) as client:
        api = MoodleApi(client)
        error = case.decoded_error()
        if error is None:
            (result,) = list(api.course_completions([pair]))
            assert isinstance(result, CourseCompletion)
        elif error["errorcode"] in ("usernotenroled", "cannotviewreport", "nocriteriaset"):
            (result,) = list(api.course_completions([pair]))
            assert isinstance(result, MoodleRequestError) and result.errorcode == error["errorcode"]
        else:
            with pytest.raises(MoodlePermissionError):
                list(api.course_completions([pair]))


def test_get_fixture_the_client_never_sends_get_and_the_token_travels_in_the_body(replay: Replay) -> None:
    case = next(c for c in CASES if c.request["http_method"] == "GET")
    replay.serve(case)
    token = "s3cret-token-value-0123456789"
    with MoodleClient(ClientSettings(url=replay.url, token=token)) as client:
        MoodleApi(client).site_info()
    (request,) = replay.received
    assert request.method == "POST"
    assert token not in request.path and all(token not in v for _, v in request.query)
    assert ("wstoken", token) in request.form


def test_report_rows_become_facts_with_ids_from_links_and_times_in_the_zone(replay: Replay) -> None:
    case = next(c for c in CASES if c.name == "core_reportbuilder_retrieve_report/report_big_page")
    replay.serve(case)
    with client_for(replay, case) as client:
        rows = list(MoodleApi(client).report_completions(1, tz=LONDON, per_page=1000))
    assert len(rows) == 115  # the README's 115 enrolments; 12 rows are enrolment methods nobody uses
    assert rows[0] == ReportCompletion(user_id=3, username="u001", course_id=2, course_idnumber="ITSEC-CZ", completed_at=1748088000)
    assert sum(r.completed_at is not None for r in rows) == 82  # the README's 82 completions
    assert all(r.user_id is not None and r.course_id is not None for r in rows)


def test_report_xml_page_gives_the_same_facts_as_json(replay: Replay) -> None:
    facts = []
    for name in ("report_page0", "report_page0_xml"):
        case = next(c for c in CASES if c.name == f"core_reportbuilder_retrieve_report/{name}")
        replay.serve(case)
        with client_for(replay, case) as client:
            facts.append(list(islice(MoodleApi(client).report_completions(1, tz=LONDON, per_page=25), 25)))
    assert facts[0] == facts[1] and facts[0][0].completed_at == 1748088000
