"""The REST transport: encoding, settings, typed errors, retries per fault kind, concurrency, secrecy.

A small scripted loopback server stands in for Moodle here: each request takes the next scripted
answer (a fault or a good body), so every transient fault kind can be produced exactly once.
Waits between retries go through an injected sleep that records instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from itertools import count, islice
from typing import Any
from urllib.parse import parse_qsl

import pytest

from connector.errors import (
    ConfigError,
    MoodleAuthError,
    MoodleError,
    MoodleFunctionNotFound,
    MoodleNotFound,
    MoodlePermissionError,
    MoodleProtocolError,
    MoodleRequestError,
    MoodleUnavailable,
)
from connector.moodle.client import MoodleClient
from connector.moodle.encoding import build_form, encode_params
from connector.moodle.errormap import error_from_payload
from connector.moodle.settings import ClientSettings
from tests.fixture_cases import VERSIONS, Case, folder, load_cases
from tests.helpers import QuietHandler

TOKEN = "f00dfeedcafe0123456789abcdef4242"
SITE_INFO_OK = json.dumps({"sitename": "Test", "release": "4.1.10", "lang": "en", "functions": []}).encode()


# --------------------------------------------------------------------------------------------
# a scripted loopback server


@dataclass
class Script:
    answers: deque[str] = field(default_factory=deque)
    forms: list[list[tuple[str, str]]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    trickled: list[bool] = field(default_factory=list)  # per trickle: did the client wait for all of it?

    def next_answer(self) -> str:
        with self.lock:
            return self.answers.popleft() if self.answers else "ok"


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qsl(self.rfile.read(length).decode("utf-8"), keep_blank_values=True)
            with script.lock:
                script.forms.append(form)
                script.paths.append(self.path)
                script.in_flight += 1
                script.max_in_flight = max(script.max_in_flight, script.in_flight)
            try:
                if script.delay_s:
                    time.sleep(script.delay_s)
                self._act(script.next_answer(), form)
            finally:
                with script.lock:
                    script.in_flight -= 1

        def _act(self, answer: str, form: list[tuple[str, str]]) -> None:
            if answer == "drop":
                self.close_connection = True
                return
            if answer == "slow":
                time.sleep(0.6)
                answer = "ok"
            if answer == "trickle":  # headers at once, then one byte every 0.2 s, for minutes
                body = b" " * 600 + SITE_INFO_OK
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    pass  # the client gave up: that is the point
                self.close_connection = True
                return
            if answer == "trickle_headers":  # the status line and headers, one byte every 0.2 s
                head = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: "
                    + b"p" * 200
                    + b"\r\n\r\n"
                )
                sent = 0
                try:
                    for byte in head:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        sent += 1
                        time.sleep(0.2)
                except OSError:
                    pass  # the client hung up
                script.trickled.append(sent == len(head))
                self.close_connection = True
                return
            if answer == "huge_unsized":  # 3 MB with no Content-Length: only reading tells the size
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(b'["' + b"x" * (3 * 2**20) + b'"]')
                except OSError:
                    pass
                self.close_connection = True
                return
            if answer == "truncated":
                body = SITE_INFO_OK
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) + 50))
                self.end_headers()
                self.wfile.write(body[:20])
                self.close_connection = True
                return
            status, headers, body = self._answer(answer, form)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        @staticmethod
        def _answer(answer: str, form: list[tuple[str, str]]) -> tuple[int, dict[str, str], bytes]:
            json_type = {"Content-Type": "application/json"}
            if answer == "ok":
                echo = {k: v for k, v in form if k not in ("wstoken",)}
                return 200, json_type, json.dumps({**json.loads(SITE_INFO_OK), "echo": echo}).encode()
            if answer == "huge":
                return 200, json_type, b'["' + b"x" * (3 * 2**20) + b'"]'
            if answer == "nested":
                return 200, json_type, b"[" * 100_000 + b"]" * 100_000
            if answer == "http_429_hour":
                return 429, {"Retry-After": "3600", "Content-Type": "text/plain"}, b"come back in an hour"
            if answer == "lone_surrogate":  # valid JSON, invalid text
                return (
                    200,
                    json_type,
                    b'[{"id": 7, "firstname": "Ann\\ud800a", "lastname": "Pair \\ud83d\\ude00"}]',
                )
            if answer == "http_503":
                return 503, {"Content-Type": "text/plain"}, b"busy"
            if answer == "http_429":
                return 429, {"Retry-After": "7", "Content-Type": "text/plain"}, b"slow down"
            if answer == "http_404":
                return 404, {"Content-Type": "text/html"}, b"<html><body>Not found</body></html>"
            if answer == "maintenance_html":
                page = (
                    b"<!DOCTYPE html><html><head><title>Maintenance</title></head>"
                    b"<body>Site is under maintenance</body></html>"
                )
                return 200, {"Content-Type": "text/html; charset=utf-8"}, page
            if answer == "cut_json":
                return 200, json_type, SITE_INFO_OK[:15]
            if answer.startswith("error:"):
                code = answer.removeprefix("error:")
                payload = {
                    "exception": "moodle_exception",
                    "errorcode": code,
                    "message": f"text for {code} {TOKEN}",
                }
                return 200, json_type, json.dumps(payload).encode()
            raise AssertionError(answer)

    return Handler


@pytest.fixture()
def server(http_server: Callable[..., str]) -> tuple[str, Script]:
    script = Script()
    return http_server(_handler(script)), script


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_client(url: str, sleep: RecordingSleep | None = None, **overrides: Any) -> MoodleClient:
    settings = ClientSettings(url=url, token=TOKEN, **{"timeout_s": 5.0, "retry_attempts": 4, **overrides})
    return MoodleClient(settings, sleep=sleep or RecordingSleep())


# --------------------------------------------------------------------------------------------
# encoding


def test_encode_params_nests_like_moodle() -> None:
    params = {
        "courseid": 3,
        "options": [{"name": "limitfrom", "value": 0}, {"name": "onlyactive", "value": True}],
        "criteria": {"ids": [2, 4]},
        "context": {"contextlevel": "system"},
        "flag": False,
        "skipped": None,
    }
    assert encode_params(params) == [
        ("courseid", "3"),
        ("options[0][name]", "limitfrom"),
        ("options[0][value]", "0"),
        ("options[1][name]", "onlyactive"),
        ("options[1][value]", "1"),
        ("criteria[ids][0]", "2"),
        ("criteria[ids][1]", "4"),
        ("context[contextlevel]", "system"),
        ("flag", "0"),
    ]
    assert encode_params(None) == [] and encode_params({}) == []
    with pytest.raises(TypeError):
        encode_params({"x": object()})


@pytest.mark.parametrize("case", load_cases(), ids=lambda c: c.id)
def test_form_reproduces_every_fixture_body_exactly(case: Case) -> None:
    recorded = case.request
    form = build_form(
        recorded["function"], recorded["params"], token=recorded["token"], fmt=recorded["format"]
    )
    assert form == [(key, str(value)) for key, value in recorded["form_body"]]


# --------------------------------------------------------------------------------------------
# settings


@pytest.mark.parametrize(
    "url", ["http://moodle.example.org", "http://10.0.0.5", "ftp://x", "moodle.example.org", "https://x/?a=1"]
)
def test_unsafe_or_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ClientSettings(url=url, token=TOKEN)
    assert TOKEN not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765",
        "http://127.3.4.5",
        "http://localhost:80/moodle",
        "http://[::1]:9000",
        "https://moodle.example.org",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert ClientSettings(url=url, token=TOKEN).endpoint.endswith("/webservice/rest/server.php")


def test_plain_http_elsewhere_needs_an_explicit_opt_in() -> None:
    assert (
        ClientSettings(url="http://moodle.lan", token=TOKEN, allow_insecure_http=True).url
        == "http://moodle.lan"
    )


def test_bad_values_are_all_listed() -> None:
    with pytest.raises(ConfigError) as raised:
        ClientSettings(url="https://m.example.org", token=" ", max_concurrency=0, retry_attempts=0)
    text = str(raised.value)
    assert "token is empty" in text and "max_concurrency" in text and "retry_attempts" in text
    assert "Manage tokens" in text


def test_token_is_not_in_any_repr() -> None:
    settings = ClientSettings(url="https://moodle.example.org", token=TOKEN)
    client = MoodleClient(settings)
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    assert TOKEN not in repr(client) and "moodle.example.org" in repr(client)
    client.close()


# --------------------------------------------------------------------------------------------
# error payloads


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("invalidtoken", "Invalid token - token not found", MoodleAuthError),
        ("invalidtimedtoken", "Invalid token - token expired", MoodleAuthError),
        ("invalidiptoken", "Invalid token - IP not supported", MoodleAuthError),
        ("accessexception", "Access control exception", MoodlePermissionError),
        (
            "invalidrecord",
            "Can't find data record in database table external_functions.",
            MoodleFunctionNotFound,
        ),
        ("invalidrecord", "Can't find data record in database table course.", MoodleNotFound),
        (
            "nopermissions",
            "Sorry, but you do not currently have permissions to do that",
            MoodlePermissionError,
        ),
        ("requireloginerror", "Course or activity not accessible.", MoodlePermissionError),
        (
            "errorcoursecontextnotvalid",
            "You cannot execute functions in the course context",
            MoodlePermissionError,
        ),
        ("invalidparameter", "Invalid parameter value detected", MoodleRequestError),
        ("usernotenroled", "User is not enrolled in this course", MoodleRequestError),
        ("nocriteriaset", "No criteria set", MoodleRequestError),
        ("cannotviewreport", "You cannot view this report", MoodleRequestError),
        ("sitemaintenance", "The site is undergoing maintenance", MoodleUnavailable),
        ("somethingelse", "?", MoodleError),
    ],
)
def test_error_payloads_map_to_typed_errors(code: str, message: str, expected: type[MoodleError]) -> None:
    error = error_from_payload("core_x", {"exception": "e", "errorcode": code, "message": message})
    assert type(error) is expected
    assert error.function == "core_x" and error.errorcode == code


def test_errors_tell_what_to_do() -> None:
    auth = error_from_payload(
        "core_webservice_get_site_info", {"exception": "e", "errorcode": "invalidtoken", "message": "m"}
    )
    assert "Site administration > Server > Web services > Manage tokens" in str(auth)
    access = error_from_payload(
        "core_user_create_users", {"exception": "e", "errorcode": "accessexception", "message": "m"}
    )
    assert "core_user_create_users" in str(access) and "external service" in str(access)
    caps = error_from_payload(
        "core_completion_get_course_completion_status",
        {"exception": "e", "errorcode": "requireloginerror", "message": "m"},
    )
    assert "report/completion:view" in str(caps) and "webservice/rest:use" in str(caps)
    unknown = error_from_payload(
        "core_nope", {"exception": "e", "errorcode": "invalidrecord", "message": "table external_functions."}
    )
    assert "unknown on this Moodle version" in str(unknown)


# --------------------------------------------------------------------------------------------
# transport over loopback


def test_post_form_and_decoded_json(server: tuple[str, Script]) -> None:
    url, script = server
    with make_client(url) as client:
        result = client.call("core_webservice_get_site_info", {"options": [{"name": "a", "value": True}]})
    assert result["echo"] == {
        "wsfunction": "core_webservice_get_site_info",
        "moodlewsrestformat": "json",
        "options[0][name]": "a",
        "options[0][value]": "1",
    }
    assert script.paths == ["/webservice/rest/server.php"]
    assert ("wstoken", TOKEN) in script.forms[0]


@pytest.mark.parametrize(
    "fault",
    [
        "http_503",
        "http_429",
        "drop",
        "maintenance_html",
        "truncated",
        "cut_json",
        "slow",
        "error:sitemaintenance",
    ],
)
def test_each_transient_fault_is_retried(server: tuple[str, Script], fault: str) -> None:
    url, script = server
    script.answers.extend([fault, "ok"])
    sleep = RecordingSleep()
    with make_client(url, sleep, timeout_s=0.3) as client:
        assert client.call("core_webservice_get_site_info")["sitename"] == "Test"
        assert client.calls_by_function() == {"core_webservice_get_site_info": 2}
    assert len(script.forms) == 2
    assert len(sleep.waits) == 1 and sleep.waits[0] > 0


def test_retry_after_is_honoured_and_capped(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers.extend(["http_429", "http_429", "ok"])
    sleep = RecordingSleep()
    with make_client(url, sleep, retry_max_wait_s=30.0) as client:
        client.call("core_webservice_get_site_info")
    assert all(wait >= 7 for wait in sleep.waits) and len(sleep.waits) == 2
    script.answers.extend(["http_429", "ok"])
    capped = RecordingSleep()
    with make_client(url, capped, retry_max_wait_s=2.0) as client:
        client.call("core_webservice_get_site_info")
    assert capped.waits == [2.0]


def test_backoff_grows_and_stays_bounded(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers.extend(["http_503"] * 6)
    sleep = RecordingSleep()
    with make_client(url, sleep, retry_attempts=6, retry_max_wait_s=3.0) as client:
        with pytest.raises(MoodleUnavailable) as raised:
            client.call("core_webservice_get_site_info")
    assert len(script.forms) == 6  # bounded by retry_attempts
    assert len(sleep.waits) == 5 and all(0 < w <= 3.0 for w in sleep.waits)
    assert sleep.waits[-1] > sleep.waits[0]
    assert "503" in str(raised.value) and raised.value.function == "core_webservice_get_site_info"


def test_total_retry_time_is_bounded(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers.extend(["http_503"] * 10)
    with make_client(url, RecordingSleep(), retry_attempts=10, retry_total_s=0.0) as client:
        with pytest.raises(MoodleUnavailable):
            client.call("core_webservice_get_site_info")
    assert len(script.forms) == 1


@pytest.mark.parametrize(
    "answer", ["error:invalidtoken", "error:accessexception", "error:invalidparameter", "http_404"]
)
def test_permanent_errors_are_not_retried(server: tuple[str, Script], answer: str) -> None:
    url, script = server
    script.answers.extend([answer, "ok"])
    sleep = RecordingSleep()
    with make_client(url, sleep) as client:
        with pytest.raises(MoodleError) as raised:
            client.call("core_webservice_get_site_info")
    assert not isinstance(raised.value, MoodleUnavailable)
    assert len(script.forms) == 1 and sleep.waits == []
    if answer == "http_404":
        assert isinstance(raised.value, MoodleProtocolError)


def test_connection_refused_is_unavailable_after_retries() -> None:
    with make_client("http://127.0.0.1:9", RecordingSleep(), retry_attempts=2) as client:
        with pytest.raises(MoodleUnavailable) as raised:
            client.call("core_webservice_get_site_info")
    assert TOKEN not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize("version", VERSIONS)
def test_xml_format_sends_no_format_field_and_decodes_xml(
    version: str, http_server: Callable[..., str]
) -> None:
    body = (folder(version) / "core_webservice_get_site_info" / "site_info_xml.response.xml").read_bytes()

    class XmlHandler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            self.send_response(200 if "moodlewsrestformat" not in form else 500)
            self.send_header("Content-Type", "application/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with make_client(http_server(XmlHandler), format="xml", retry_attempts=1) as client:
        info = client.call("core_webservice_get_site_info")
    release = {"4.1": "4.1.10 (Build: 20240422)", "4.5": "4.5.11+ (Build: 20260501)"}[version]
    assert info["release"] == release and info["userid"] == "63"


# --------------------------------------------------------------------------------------------
# concurrency


def test_map_keeps_order_and_stays_within_max_concurrency(server: tuple[str, Script]) -> None:
    url, script = server
    script.delay_s = 0.03
    with make_client(url, max_concurrency=3) as client:
        results = list(
            client.map(
                lambda i: (i, client.call("core_webservice_get_site_info", {"i": i})["echo"]["i"]), range(24)
            )
        )
    assert results == [(i, str(i)) for i in range(24)]
    assert script.max_in_flight <= 3
    assert script.max_in_flight >= 2  # it did run concurrently


def test_the_client_bounds_concurrency_even_outside_map(server: tuple[str, Script]) -> None:
    url, script = server
    script.delay_s = 0.03
    with make_client(url, max_concurrency=2) as client:
        threads = [
            threading.Thread(target=client.call, args=("core_webservice_get_site_info",)) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert script.max_in_flight <= 2
    assert len(script.forms) == 8


def test_map_streams_an_endless_input() -> None:
    settings = ClientSettings(url="http://127.0.0.1:1", token=TOKEN, max_concurrency=2)
    with MoodleClient(settings) as client:
        assert list(islice(client.map(lambda i: i * i, count()), 5)) == [0, 1, 4, 9, 16]


def test_map_propagates_the_first_exception() -> None:
    settings = ClientSettings(url="http://127.0.0.1:1", token=TOKEN, max_concurrency=2)

    def boom(i: int) -> int:
        if i == 3:
            raise MoodleAuthError("no", function="f")
        return i

    with MoodleClient(settings) as client:
        got: list[int] = []
        with pytest.raises(MoodleAuthError):
            for value in client.map(boom, range(10)):
                got.append(value)
    assert got == [0, 1, 2]


# --------------------------------------------------------------------------------------------
# the token stays secret


def test_token_absent_from_logs_and_errors(
    server: tuple[str, Script], caplog: pytest.LogCaptureFixture
) -> None:
    url, script = server
    script.answers.extend(
        [
            "http_503",
            "drop",
            "truncated",
            "maintenance_html",
            "ok",
            "error:invalidtoken",
            "error:nopermissions",
        ]
    )
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with make_client(url, timeout_s=2.0, retry_attempts=6) as client:
        client.call("core_webservice_get_site_info", {"secretparam": "xyz-param-value"})
        for _ in range(2):
            with pytest.raises(MoodleError) as raised:
                client.call("core_webservice_get_site_info")
            texts += [str(raised.value), repr(raised.value), raised.value.message, str(raised.value.hint)]
    assert caplog.records, "the client logs its calls"
    logged = [record.getMessage() for record in caplog.records] + [
        repr(record.args) for record in caplog.records
    ]
    assert any("core_webservice_get_site_info" in line and "attempt" in line for line in logged)
    for line in logged + texts:
        assert TOKEN not in line
        assert "xyz-param-value" not in line  # params are not logged either
    assert "***" in texts[0]  # Moodle's message echoed the token: redacted


# --------------------------------------------------------------------------------------------
# bounded time and memory


def test_a_trickling_answer_cannot_outlast_the_timeout(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers.append("trickle")
    with make_client(url, timeout_s=1.0, retry_attempts=1) as client:
        with pytest.raises(MoodleUnavailable) as raised:
            client.call("core_webservice_get_site_info")
    assert raised.value.message == "core_webservice_get_site_info: no answer within 1s"


def test_trickling_headers_cannot_outlast_the_timeout(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers.extend(["trickle_headers", "ok"])
    with make_client(url, timeout_s=1.0, retry_attempts=1) as client:
        with pytest.raises(MoodleUnavailable) as raised:
            client.call("core_webservice_get_site_info")
        assert raised.value.message == "core_webservice_get_site_info: no answer within 1s"
        assert client.call("core_webservice_get_site_info")["sitename"] == "Test"  # the client still works
    for _ in range(200):  # the server notices the hang-up at its next byte
        if script.trickled:
            break
        time.sleep(0.05)
    assert script.trickled == [False]  # the client cut the connection before the headers were complete


@pytest.mark.parametrize("answer", ["huge", "huge_unsized"])
def test_an_answer_beyond_the_size_cap_is_refused(server: tuple[str, Script], answer: str) -> None:
    url, script = server
    script.answers.append(answer)
    with make_client(url, max_response_bytes=2**20) as client:
        with pytest.raises(MoodleProtocolError) as raised:
            client.call("core_webservice_get_site_info")
    assert str(raised.value) == (
        "core_webservice_get_site_info: the answer is larger than 1 MB; refused\n"
        "  hint: raise [moodle] max_response_mb, or lower page_size / report_per_page "
        "so each answer is smaller"
    )
    assert len(script.forms) == 1  # the same question would get the same answer: not retried


def test_a_nesting_bomb_is_a_protocol_error(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers.append("nested")
    with make_client(url) as client:
        with pytest.raises(MoodleProtocolError) as raised:
            client.call("core_course_get_courses")
    assert raised.value.message == "core_course_get_courses: the answer is nested too deeply to read"


def test_a_retry_after_beyond_the_retry_budget_fails_at_once(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers.extend(["http_429_hour", "ok"])
    sleep = RecordingSleep()
    with make_client(url, sleep, retry_total_s=120.0) as client:
        with pytest.raises(MoodleUnavailable) as raised:
            client.call("core_webservice_get_site_info")
    assert sleep.waits == [] and len(script.forms) == 1
    assert raised.value.message == (
        f"core_webservice_get_site_info: HTTP 429 from {url}; Moodle asked to retry after 3600s, "
        "beyond the call's retry budget (120s left), so the call was not retried"
    )


def test_no_call_outlasts_the_run_deadline(server: tuple[str, Script]) -> None:
    url, script = server
    script.delay_s = 1.0
    sleep = RecordingSleep()
    with make_client(url, sleep, run_deadline_s=0.3) as client:
        with pytest.raises(MoodleError) as raised:
            client.call("core_webservice_get_site_info")  # times out at the deadline, then stops
        assert str(raised.value) == (
            "core_webservice_get_site_info: the run passed its deadline of 0.005 minutes; stopped\n"
            "  hint: raise [sync] max_minutes, or find what made Moodle slow "
            "(`connector runs` shows the calls)"
        )
        assert len(script.forms) == 1 and all(wait <= 0.3 for wait in sleep.waits)
        with pytest.raises(MoodleError, match="passed its deadline"):
            client.call("core_course_get_courses")
    assert len(script.forms) == 1  # past the deadline nothing is sent


def test_a_lone_surrogate_is_replaced_with_a_warning(
    server: tuple[str, Script], caplog: pytest.LogCaptureFixture
) -> None:
    url, script = server
    script.answers.append("lone_surrogate")
    with make_client(url) as client:
        people = client.call("core_user_get_users_by_field")
    assert people == [{"id": 7, "firstname": "Ann\ufffda", "lastname": "Pair \U0001f600"}]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "core_user_get_users_by_field: record id 7: firstname held an invalid character (a lone surrogate); "
        "U+FFFD stands in its place"
    ]


# --------------------------------------------------------------------------------------------
# credentials never ride in the URL


@pytest.mark.parametrize(
    ("url", "shown", "why"),
    [
        (
            "https://admin:s3cret@moodle.example.org",
            "https://***@moodle.example.org",
            "carries a user name or password",
        ),
        (
            "https://moodle.example.org/webservice/rest/server.php?wstoken=abc",
            "https://moodle.example.org/webservice/rest/server.php?***",
            "looks like it holds a token",
        ),
        (
            f"https://moodle.example.org/{TOKEN}",
            "https://moodle.example.org/***",
            "looks like it holds a token",
        ),
    ],
)
def test_a_url_with_credentials_is_refused_and_shown_redacted(url: str, shown: str, why: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ClientSettings(url=url, token=TOKEN)
    assert raised.value.message.startswith(f"Moodle connection settings are invalid: url {shown} {why}")
    assert (
        "s3cret" not in str(raised.value)
        and "wstoken=abc" not in str(raised.value)
        and TOKEN not in str(raised.value)
    )
