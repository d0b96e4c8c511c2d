"""A Moodle-compatible web-service server on loopback, with cost, worker limits and faults."""

from __future__ import annotations

import logging
import random
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connector.emulator.functions import (
    CORE_EXCEPTIONS,
    MOODLE_VERSIONS,
    SERVICE_FUNCTIONS,
    Call,
    Grant,
    dispatch,
    invalid_token,
)
from connector.emulator.scenario import Scenario
from connector.emulator.wire import (
    JSON_TYPE,
    XML_TYPE,
    WsException,
    decode_form,
    render_exception,
    render_json,
    render_xml,
)

log = logging.getLogger("connector.emulator")


class LoopbackServer(ThreadingHTTPServer):
    """A threading HTTP server that reports a failed request through logging, not by printing a
    traceback to whatever ``sys.stderr`` is at that moment (a test reading a command's stderr
    would read the server's too). A client that went away mid-answer (a deadline, a killed sync)
    is routine: debug. Anything else is a server bug: an error with its traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # reset, broken pipe, timeout, a TLS handshake cut short
            log.debug("client %s went away: %s", client_address, error)
        else:
            log.error("request from %s failed", client_address, exc_info=True)


REST_PATH = "/webservice/rest/server.php"
FAULT_KINDS = ("http_503", "http_429", "drop", "slow", "maintenance_html", "truncated")
DEFAULT_FAULTS = ("http_503", "drop", "maintenance_html", "truncated")
TOKEN_KINDS = ("full", "weak")
PROTOCOL_FIELDS = ("wstoken", "wsfunction", "moodlewsrestformat")
MAINTENANCE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Site maintenance</title></head>\n"
    b"<body><h1>Site maintenance</h1>\n"
    b"<p>This site is undergoing maintenance and is currently not available.</p></body></html>\n"
)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ScriptedFault:
    call_number: int
    kind: str
    function: str | None


def _check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(kinds)
    unknown = [k for k in chosen if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault kind(s) {unknown}; known: {', '.join(FAULT_KINDS)}")
    return chosen


class Emulator:
    """Serve a Scenario over Moodle's REST protocol on 127.0.0.1.

    Use as a context manager, or start()/stop(); ``url`` is the site root to give a client.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        tokens: Mapping[str, str] | None = None,
        latency_ms: float = 0.0,
        report_row_ms: float = 0.0,
        enrolled_row_ms: float = 0.0,
        workers: int | None = None,
        error_rate: float = 0.0,
        fault_kinds: Sequence[str] = DEFAULT_FAULTS,
        slow_s: float = 5.0,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        moodle: str = "4.1",
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError("workers must be at least 1 (or None for no limit)")
        if moodle not in MOODLE_VERSIONS:
            raise ValueError(f"moodle must be one of {', '.join(MOODLE_VERSIONS)}")
        self.moodle = MOODLE_VERSIONS[moodle]
        self.scenario = scenario
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        for token, kind in (tokens or {"emulator-token": "full", "emulator-weak": "weak"}).items():
            self.add_token(token, kind)
        self._latency_s = latency_ms / 1000
        self._report_row_s = report_row_ms / 1000
        self._enrolled_row_s = enrolled_row_ms / 1000
        self._workers = threading.BoundedSemaphore(workers) if workers else None
        self._error_rate = error_rate
        self._fault_kinds = _check_kinds(fault_kinds)
        self._slow_s = slow_s
        self._rng = random.Random(seed)
        self._host = host
        self._port = port
        self._counts: dict[str, int] = {}
        self._total = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._scripted: list[ScriptedFault] = []
        self._stopping = threading.Event()
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never the tokens
        return f"Emulator(scenario={self.scenario.name!r}, url={self.url!r})"

    # ----- tokens --------------------------------------------------------------------------------
    def add_token(
        self,
        token: str,
        kind: str = "full",
        functions: Iterable[str] | None = None,
        *,
        lacking: Iterable[str] = (),
    ) -> None:
        """Grant a token; ``functions`` limits its service to those (others: accessexception);
        ``lacking`` names capabilities its role does not have (e.g. ``mod/feedback:viewreports``)."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"token kind must be one of {TOKEN_KINDS}")
        allowed = frozenset(SERVICE_FUNCTIONS if functions is None else functions)
        with self._lock:
            self._grants[token] = Grant(kind=kind, functions=allowed, lacking=frozenset(lacking))

    @property
    def token(self) -> str:
        """The first full token (handy in tests)."""
        return next(t for t, g in self._grants.items() if g.kind == "full")

    @property
    def weak_token(self) -> str:
        return next(t for t, g in self._grants.items() if g.kind == "weak")

    # ----- life cycle ----------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is not None:
            return self
        handler = type("BoundHandler", (_Handler,), {"emulator": self})
        server = LoopbackServer((self._host, self._port), handler)
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="moodle-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve until KeyboardInterrupt (the CLI's `connector emulator`)."""
        self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @property
    def url(self) -> str:
        port = self._server.server_address[1] if self._server is not None else self._port
        return f"http://{self._host}:{port}"

    # ----- knobs ---------------------------------------------------------------------------------
    def set_latency(self, ms: float) -> None:
        self._latency_s = ms / 1000

    def set_error_rate(self, rate: float, kinds: Sequence[str] | None = None) -> None:
        with self._lock:
            self._error_rate = rate
            if kinds is not None:
                self._fault_kinds = _check_kinds(kinds)

    def script_fault(self, call_number: int, kind: str, function: str | None = None) -> None:
        """The ``call_number``-th call (1-based; overall, or of ``function``) gets ``kind``."""
        _check_kinds([kind])
        with self._lock:
            self._scripted.append(ScriptedFault(call_number, kind, function))

    # ----- counters ------------------------------------------------------------------------------
    def call_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    @property
    def total_calls(self) -> int:
        with self._lock:
            return self._total

    @property
    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._total = 0
            self._max_in_flight = self._in_flight

    # ----- scenario mutations --------------------------------------------------------------------
    def reset_course(self, course_id: int) -> None:
        self.scenario.reset_course(course_id)

    def complete(self, user_id: int, course_id: int, at: int, *, by_teacher: bool = False) -> None:
        self.scenario.complete(user_id, course_id, at, by_teacher=by_teacher)

    def visit(self, user_id: int, course_id: int, at: int) -> None:
        self.scenario.visit(user_id, course_id, at)

    def suspend(self, user_id: int) -> None:
        self.scenario.suspend(user_id)

    def delete_user(self, user_id: int, at: int | None = None) -> None:
        self.scenario.delete_user(user_id, at)

    def suspend_enrolment(self, user_id: int, course_id: int) -> None:
        self.scenario.suspend_enrolment(user_id, course_id)

    def end_enrolment(self, user_id: int, course_id: int) -> None:
        self.scenario.end_enrolment(user_id, course_id)

    def remove_report_condition(self) -> None:
        self.scenario.set_report_condition(False)

    def add_report_condition(self) -> None:
        self.scenario.set_report_condition(True)

    def add_report_time_filter(self) -> None:
        """The admin adds "Course completion > Time completed" on the report's Filters tab."""
        self.scenario.set_report_time_filter(True)

    def remove_report_time_filter(self) -> None:
        self.scenario.set_report_time_filter(False)

    def delete_course(self, course_id: int) -> None:
        self.scenario.delete_course(course_id)

    # ----- one request ---------------------------------------------------------------------------
    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _count_and_pick_fault(self, function: str) -> str | None:
        with self._lock:
            self._total += 1
            self._counts[function] = self._counts.get(function, 0) + 1
            for fault in self._scripted:
                number = (
                    self._total
                    if fault.function is None
                    else (self._counts[function] if fault.function == function else -1)
                )
                if number == fault.call_number:
                    return fault.kind
            if self._error_rate > 0 and self._rng.random() < self._error_rate:
                return self._rng.choice(self._fault_kinds)
        return None

    def _answer(self, form: list[tuple[str, str]]) -> tuple[Reply, float]:
        """The reply to a call and the seconds of server work it costs."""
        fields = dict((k, v) for k, v in form if k in PROTOCOL_FIELDS)
        xml = fields.get("moodlewsrestformat", "xml") != "json"
        grant = self._grants.get(fields.get("wstoken", ""))
        call = Call(scenario=self.scenario, grant=grant or Grant(), site_url=self.url, moodle=self.moodle)
        try:
            if grant is None:
                raise invalid_token()
            params = decode_form([(k, v) for k, v in form if k not in PROTOCOL_FIELDS])
            result = dispatch(call, fields.get("wsfunction", ""), params)
            body = render_xml(result) if xml else render_json(result)
        except WsException as error:
            if self.moodle.namespaced_exceptions and error.exception in CORE_EXCEPTIONS:
                error = WsException(f"core\\exception\\{error.exception}", error.errorcode, error.message)
            body = render_exception(error, xml)
        cost = (
            self._latency_s
            + call.report_rows * self._report_row_s
            + call.enrolled_rows * self._enrolled_row_s
        )
        return Reply(200, XML_TYPE if xml else JSON_TYPE, body), cost

    def _handle(self, handler: _Handler, query: str, body: bytes) -> None:
        form = parse_qsl(query, keep_blank_values=True)
        form += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        function = next((v for k, v in form if k == "wsfunction"), "")
        fault = self._count_and_pick_fault(function)
        if fault in ("http_503", "http_429", "maintenance_html", "drop"):
            self._send_fault(handler, fault)
            return
        if self._workers is not None:
            self._workers.acquire()
        try:
            started = time.monotonic()
            reply, cost = self._answer(form)
            if fault == "slow":
                cost += self._slow_s
            # the cost model is what a call takes on a real Moodle, its answer's rendering included
            # (the fixtures' "Cost at scale"): the emulator's own work counts toward it
            left = cost - (time.monotonic() - started)
            if left > 0:
                self._stopping.wait(left)
        finally:
            if self._workers is not None:
                self._workers.release()
        handler.send_reply(reply, truncate=fault == "truncated")

    def _send_fault(self, handler: _Handler, fault: str) -> None:
        if fault == "drop":
            handler.drop()
        elif fault == "http_429":
            handler.send_reply(
                Reply(429, "text/plain; charset=utf-8", b"Too Many Requests\n", (("Retry-After", "1"),))
            )
        elif fault == "maintenance_html":
            handler.send_reply(Reply(503, "text/html; charset=utf-8", MAINTENANCE_PAGE))
        else:
            handler.send_reply(Reply(503, "text/plain; charset=utf-8", b"Service Unavailable\n"))


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms a call on Linux loopback). Apache and nginx set TCP_NODELAY too.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length) if length > 0 else b"")

    def _serve(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        if parts.path != REST_PATH:
            self.send_reply(Reply(404, "text/plain; charset=utf-8", b"Not Found\n"))
            return
        emulator = self.emulator
        emulator._enter()
        try:
            emulator._handle(self, parts.query, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            emulator._leave()

    def send_reply(self, reply: Reply, *, truncate: bool = False) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
        self.wfile.flush()

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # The request line of a GET carries the token in its query string: log the path only.
        log.debug("%s %s", self.command, urlsplit(self.path).path)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("emulator: HTTP error on %s", urlsplit(self.path or "").path)
