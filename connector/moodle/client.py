"""REST transport to Moodle web services: encoding, POST, decoding, typed errors, retries, pooling.

Every call is an HTTP POST to ``<site>/webservice/rest/server.php`` with the token, the function
name and the parameters in the form body (never in the URL: Moodle also accepts GET, and query
strings end up in access logs). Answers are JSON (``moodlewsrestformat=json``) or Moodle's default
XML, decoded to plain Python values.

Moodle answers most errors with HTTP 200 and an exception payload; :func:`error_from_payload`
maps them to the public hierarchy in :mod:`connector.errors`:

==============================================  ======================================
errorcode                                       error class
==============================================  ======================================
invalidtoken, invalidtimedtoken, invalidiptoken MoodleAuthError (never retried)
and the wsaccessuser* family
accessexception                                 MoodlePermissionError (not in service)
invalidrecord naming table external_functions   MoodleFunctionNotFound (a MoodleNotFound)
nopermissions, requireloginerror,               MoodlePermissionError (capabilities)
errorcoursecontextnotvalid
invalidparameter                                MoodleRequestError
invalidrecord (course, user, report, ...)       MoodleNotFound
sitemaintenance                                 MoodleUnavailable (retried)
usernotenroled, nocriteriaset, cannotviewreport MoodleRequestError; ``errorcode`` says
                                                which (see PER_ENROLMENT_ERRORCODES)
anything else                                   MoodleError
==============================================  ======================================

Transient failures (connection errors, timeouts, HTTP 5xx and 429, an HTML page instead of
JSON/XML, truncated or undecodable bodies, ``sitemaintenance``) raise :class:`MoodleUnavailable`
and are retried with exponential backoff and full jitter, bounded by ``retry_attempts`` and
``retry_total_s``; a ``Retry-After`` header (seconds) is honoured up to ``retry_max_wait_s``,
and asked to wait longer than the rest of ``retry_total_s`` or of the run, the call fails at once,
saying what Moodle asked (waiting could not end in time).
``calls_by_function()`` counts HTTP requests sent, retries included.

Bounds: ``timeout_s`` is the deadline of one HTTP exchange, the answer's last byte included (a
timer cuts a connection still waiting for headers at the deadline, and the body is read in pieces
against the clock, so a server trickling bytes cannot hold a call open);
an answer larger than ``max_response_bytes`` is refused as it arrives; ``run_deadline_s`` (from
``[sync] max_minutes``) counts from the client's creation: no call starts, waits or reads past it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import requests
import tenacity
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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
from connector.moodle.xmlformat import XmlFormatError, parse_xml_response
from connector.urls import redact_url, url_secret_problem

log = logging.getLogger("connector.moodle")

ENDPOINT_PATH = "/webservice/rest/server.php"

T = TypeVar("T")
R = TypeVar("R")

#: Errors that concern one (course, user) pair, not the whole sync: the API yields them.
PER_ENROLMENT_ERRORCODES = frozenset({"usernotenroled", "nocriteriaset", "cannotviewreport"})

_AUTH_ERRORCODES = frozenset(
    {
        "invalidtoken",
        "invalidtimedtoken",
        "invalidiptoken",
        "wsaccessuserdeleted",
        "wsaccessusersuspended",
        "wsaccessusernologin",
        "wsaccessuserexpired",
        "wsaccessuserunconfirmed",
        "usernotconfirmed",
        "forcepasswordchangenotice",
        "restoredaccountresetpassword",
        "enablewsdescription",
    }
)
# errorreportview/errorreportedit: Moodle 4.5's "may not view/edit this report"; "nopermission"
# (singular) is what some 4.5 functions send for the same thing.
_CAPABILITY_ERRORCODES = frozenset(
    {
        "nopermissions",
        "nopermission",
        "requireloginerror",
        "errorcoursecontextnotvalid",
        "errorreportview",
        "errorreportedit",
    }
)
_UNAVAILABLE_ERRORCODES = frozenset({"sitemaintenance"})

_TOKEN_HINT = (
    "create a web-service token for the connector's user in Moodle under Site administration > "
    "Server > Web services > Manage tokens, and set it as MOODLE_TOKEN"
)

#: What the token's user needs, per function (from the capture site's working setup).
REQUIRED_CAPABILITIES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "core_course_get_courses": ("moodle/course:view", "moodle/course:viewhiddencourses"),
        "core_course_get_courses_by_field": ("moodle/course:view", "moodle/course:viewhiddencourses"),
        "core_enrol_get_enrolled_users": (
            "moodle/course:view",
            "moodle/course:viewparticipants",
            "moodle/course:enrolreview",
            "moodle/site:accessallgroups",
            "moodle/user:viewdetails",
            "moodle/user:viewhiddendetails",
            "moodle/course:viewhiddenuserfields",
            "moodle/site:viewuseridentity",
        ),
        "core_enrol_get_users_courses": (
            "moodle/course:view",
            "moodle/user:viewdetails",
            "report/progress:view",
        ),
        "core_completion_get_course_completion_status": ("moodle/course:view", "report/completion:view"),
        "core_user_get_users_by_field": ("moodle/user:viewdetails", "moodle/user:viewalldetails"),
        "core_cohort_get_cohorts": ("moodle/cohort:view",),
        "core_cohort_get_cohort_members": ("moodle/cohort:view",),
        "core_reportbuilder_list_reports": ("moodle/reportbuilder:view",),
        "core_reportbuilder_retrieve_report": ("moodle/reportbuilder:view", "moodle/reportbuilder:editall"),
        "core_reportbuilder_reports_get": ("moodle/reportbuilder:view", "moodle/reportbuilder:editall"),
    }
)
_BASE_CAPABILITIES = ("webservice/rest:use",)
_CHUNK = 64 * 1024
# a JSON \uXXXX escape of a UTF-16 surrogate: the only way a lone one can reach a decoded answer
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


# --------------------------------------------------------------------------------------------
# a deadline for the status line and headers too
#
# The socket timeout bounds each read, not their sum: a server sending its headers a byte at a
# time would keep a call open. While waiting for the headers, a timer cuts the connection at
# the calling thread's deadline; the body is then read against the same deadline (_read_body).

_call_deadline = threading.local()


class _DeadlineMixin:
    sock: socket.socket | None

    def getresponse(self) -> Any:
        deadline: float | None = getattr(_call_deadline, "at", None)
        if deadline is None:
            return super().getresponse()  # type: ignore[misc]
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._cut)
        timer.daemon = True
        timer.start()
        try:
            return super().getresponse()  # type: ignore[misc]
        finally:
            timer.cancel()

    def _cut(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


class _DeadlineHTTPConnection(_DeadlineMixin, HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineMixin, HTTPSConnection):
    pass


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class _DeadlineAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}


# --------------------------------------------------------------------------------------------
# settings


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ClientSettings:
    """How to reach one Moodle site. The token is kept out of ``repr``."""

    url: str
    token: str = field(repr=False)
    format: Literal["json", "xml"] = "json"
    timeout_s: float = 30.0
    max_concurrency: int = 4
    retry_attempts: int = 5
    retry_max_wait_s: float = 30.0
    retry_total_s: float = 120.0
    allow_insecure_http: bool = False
    ca_bundle: str | None = None
    max_response_bytes: int = 64 * 2**20
    run_deadline_s: float | None = None  # counted from the client's creation; None: no limit

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming every bad value at once."""
        problems = [*self._url_problems(), *self._value_problems()]
        if problems:
            raise ConfigError("Moodle connection settings are invalid: " + "; ".join(problems))

    def _url_problems(self) -> list[str]:
        try:
            parts = urlsplit(self.url)
            parts.hostname  # noqa: B018 (raises on a malformed IPv6 host)
        except ValueError as exc:
            return [
                f"url {self.shown_url!r} cannot be read ({exc}); write the site root, e.g. https://moodle.example.org"
            ]
        secret = url_secret_problem(self.url)
        if secret:
            return [secret]
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return [f"url {self.shown_url!r} must be the site root, e.g. https://moodle.example.org"]
        if parts.query or parts.fragment:
            return ["url must not contain a query string or fragment"]
        if parts.scheme == "http" and not self.allow_insecure_http and not is_loopback_host(parts.hostname):
            return [
                f"plain http:// to {parts.hostname} would send the token unencrypted; use https:// "
                "or, on a trusted network only, allow_insecure_http = true"
            ]
        return []

    def _value_problems(self) -> list[str]:
        problems: list[str] = []
        if not self.token or not self.token.strip():
            problems.append("token is empty (" + _TOKEN_HINT + ")")
        if self.format not in ("json", "xml"):
            problems.append(f"format must be 'json' or 'xml', not {self.format!r}")
        if self.timeout_s <= 0:
            problems.append("timeout_s must be positive")
        if self.max_concurrency < 1:
            problems.append("max_concurrency must be at least 1")
        if self.retry_attempts < 1:
            problems.append("retry_attempts must be at least 1")
        if self.retry_max_wait_s < 0 or self.retry_total_s < 0:
            problems.append("retry waits must not be negative")
        if self.max_response_bytes < 1:
            problems.append("max_response_mb must be positive")
        if self.run_deadline_s is not None and self.run_deadline_s <= 0:
            problems.append("max_minutes must be positive")
        return problems

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + ENDPOINT_PATH

    @property
    def shown_url(self) -> str:
        """The URL as messages show it: never with credentials or token-like parts."""
        return redact_url(self.url)


# --------------------------------------------------------------------------------------------
# parameter encoding


def encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Moodle's nested form encoding: ``options[0][name]``, ``values[0]``, ``context[x]``.

    Booleans become "1"/"0"; None values are left out (Moodle then applies its default).
    """
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        _encode_into(pairs, str(key), value)
    return pairs


def _encode_into(pairs: list[tuple[str, str]], name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _encode_into(pairs, f"{name}[{key}]", item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _encode_into(pairs, f"{name}[{index}]", item)
    elif isinstance(value, bool):
        pairs.append((name, "1" if value else "0"))
    elif isinstance(value, (int, float, str)):
        pairs.append((name, str(value)))
    else:
        raise TypeError(f"cannot encode parameter {name} of type {type(value).__name__}")


def build_form(
    function: str, params: Mapping[str, Any] | None, *, token: str, fmt: str
) -> list[tuple[str, str]]:
    """The whole POST body in the order Moodle's own clients send it."""
    form = [("wstoken", token), ("wsfunction", function)]
    if fmt == "json":
        form.append(("moodlewsrestformat", "json"))  # XML is the server's default
    return form + encode_params(params)


# --------------------------------------------------------------------------------------------
# error payloads


def is_exception_payload(value: Any) -> bool:
    return isinstance(value, dict) and "errorcode" in value and "exception" in value and "message" in value


def error_from_payload(function: str, payload: Mapping[str, Any]) -> MoodleError:
    """A typed error with an actionable message for one Moodle exception payload."""
    code = str(payload.get("errorcode") or "")
    text = str(payload.get("message") or "").strip()
    said = f"{function}: Moodle said {text!r} ({code})"
    if code in _AUTH_ERRORCODES:
        return MoodleAuthError(said, function=function, errorcode=code, hint=_auth_hint(code))
    if code == "accessexception":
        return MoodlePermissionError(
            f"{function} is not allowed for this token ({code})",
            function=function,
            errorcode=code,
            hint=f"add {function} to the external service of the token under Site administration > "
            "Server > Web services > External services > Functions",
        )
    if code == "invalidrecord" and "external_functions" in text:
        return MoodleFunctionNotFound(
            f"{function} is unknown on this Moodle version ({code})",
            function=function,
            errorcode=code,
            hint="check the function name and the Moodle release (site info shows it); the connector "
            "needs Moodle 4.1 or later",
        )
    if code in _CAPABILITY_ERRORCODES:
        return MoodlePermissionError(said, function=function, errorcode=code, hint=_capability_hint(function))
    if code in _UNAVAILABLE_ERRORCODES:
        return MoodleUnavailable(
            said, function=function, errorcode=code, hint="the site is in maintenance mode"
        )
    if code in PER_ENROLMENT_ERRORCODES or code == "invalidparameter":
        return MoodleRequestError(said, function=function, errorcode=code)
    if code in ("invalidrecord", "invaliduser"):  # invaliduser: Moodle 4.5, an unknown user id
        return MoodleNotFound(said, function=function, errorcode=code)
    return MoodleError(said, function=function, errorcode=code or None)


def _auth_hint(code: str) -> str:
    if code == "invalidtimedtoken":
        return "the token has expired; " + _TOKEN_HINT
    if code == "invalidiptoken":
        return "the token is restricted to other IP addresses; edit its IP restriction or " + _TOKEN_HINT
    if code == "enablewsdescription":
        return "enable web services under Site administration > Advanced features"
    if code.startswith("wsaccessuser") or code in ("usernotconfirmed", "forcepasswordchangenotice"):
        return (
            "the token's user account cannot log in (suspended, deleted, unconfirmed or expired); fix the account or "
            + _TOKEN_HINT
        )
    return _TOKEN_HINT


def _capability_hint(function: str) -> str:
    capabilities = _BASE_CAPABILITIES + REQUIRED_CAPABILITIES.get(function, ())
    return (
        "the token's user lacks capabilities; give it a system role with "
        + ", ".join(capabilities)
        + " (Site administration > Users > Permissions > Define roles)"
    )


# --------------------------------------------------------------------------------------------
# the client


@dataclass(frozen=True)
class _Body:
    status: int
    content_type: str
    content: bytes
    retry_after: float | None


class MoodleClient:
    """One pooled HTTP session to one Moodle site. Thread-safe; use as a context manager."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session = session or self._new_session(settings)
        self._in_flight = threading.BoundedSemaphore(settings.max_concurrency)
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._run_ends = (
            None if settings.run_deadline_s is None else time.monotonic() + settings.run_deadline_s
        )

    @staticmethod
    def _new_session(settings: ClientSettings) -> requests.Session:
        session = requests.Session()
        adapter = _DeadlineAdapter(
            pool_connections=1, pool_maxsize=max(10, settings.max_concurrency), max_retries=0
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.trust_env = False  # no proxy or .netrc surprises; the token goes only where url says
        return session

    def __repr__(self) -> str:
        return f"MoodleClient(url={self.settings.shown_url!r}, format={self.settings.format!r})"

    def __enter__(self) -> MoodleClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def calls_by_function(self) -> dict[str, int]:
        """HTTP requests sent per web-service function, retries included."""
        with self._lock:
            return dict(self._calls)

    # -- calling ------------------------------------------------------------------------------

    def call(self, function: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call one function; return its decoded result or raise a typed MoodleError."""
        self._run_time_left(function)
        form = build_form(function, params, token=self.settings.token, fmt=self.settings.format)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.settings.retry_attempts)
            | tenacity.stop_before_delay(self.settings.retry_total_s),
            wait=self._wait_before_retry,
            retry=tenacity.retry_if_exception_type(MoodleUnavailable),
            sleep=self._sleep,
            before_sleep=lambda state: self._log_retry(function, state),
            reraise=True,
        )
        return retrying(self._call_once, function, form)

    def _run_time_left(self, function: str) -> float | None:
        """Seconds left of the run's deadline (None: no deadline); past it, a MoodleError."""
        if self._run_ends is None:
            return None
        left = self._run_ends - time.monotonic()
        if left <= 0:
            minutes = (self.settings.run_deadline_s or 0) / 60
            raise MoodleError(
                f"{function}: the run passed its deadline of {minutes:g} minutes; stopped",
                function=function,
                hint="raise [sync] max_minutes, or find what made Moodle slow (`connector runs` shows the calls)",
            )
        return left

    def _wait_before_retry(self, state: tenacity.RetryCallState) -> float:
        """Exponential backoff with full jitter; a Retry-After that does not fit fails the call now."""
        cap = self.settings.retry_max_wait_s
        exponential = min(cap, 0.5 * 2 ** (state.attempt_number - 1))
        wait = self._rng.uniform(exponential / 2, exponential)
        error = state.outcome.exception() if state.outcome else None
        function = error.function if isinstance(error, MoodleError) and error.function else "the call"
        budget = self.settings.retry_total_s - state.seconds_since_start
        run_left = self._run_time_left(function)
        if isinstance(error, MoodleUnavailable) and error.retry_after is not None:
            asked = error.retry_after
            # asked for longer than the call or the run may still last: retrying cannot succeed in time
            for limit, name in ((budget, "the call's retry budget"), (run_left, "the run's deadline")):
                if limit is not None and asked > limit:
                    raise MoodleUnavailable(
                        f"{error.message}; Moodle asked to retry after {asked:g}s, beyond {name} "
                        f"({max(limit, 0):.0f}s left), so the call was not retried",
                        function=error.function,
                        hint="try again later; the site is overloaded or in maintenance",
                    ) from None
            wait = max(wait, min(asked, cap))
        if run_left is not None:
            wait = min(wait, run_left)
        return wait

    @staticmethod
    def _log_retry(function: str, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reason = error.message if isinstance(error, MoodleError) else type(error).__name__
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s attempt %d failed (%s); retrying in %.2fs", function, state.attempt_number, reason, wait
        )

    def _call_once(self, function: str, form: list[tuple[str, str]]) -> Any:
        with self._lock:
            self._calls[function] += 1
        started = time.monotonic()
        with self._in_flight:
            body = self._post(function, form)
        log.debug(
            "%s: HTTP %d, %d bytes in %.0f ms",
            function,
            body.status,
            len(body.content),
            (time.monotonic() - started) * 1000,
        )
        value = self._decode(function, body)
        if is_exception_payload(value):
            raise self._redacted(error_from_payload(function, value))
        return value

    def _post(self, function: str, form: list[tuple[str, str]]) -> _Body:
        settings = self.settings
        verify: str | bool = settings.ca_bundle or True
        run_left = self._run_time_left(function)
        timeout = settings.timeout_s if run_left is None else min(settings.timeout_s, run_left)
        deadline = time.monotonic() + timeout
        _call_deadline.at = deadline
        try:
            try:
                response = self._session.post(
                    settings.endpoint,
                    data=form,
                    timeout=timeout,
                    verify=verify,
                    allow_redirects=False,
                    stream=True,
                )
            except requests.exceptions.ConnectionError:
                if time.monotonic() >= deadline:
                    raise TimeoutError from None  # the timer cut a connection that was too slow
                raise
            finally:
                _call_deadline.at = None
            try:
                content = self._read_body(function, response, deadline)
            finally:
                response.close()
        # Never put requests' own text into ours: wrapped exceptions carry the prepared request.
        except requests.exceptions.SSLError:
            raise MoodleError(
                f"{function}: the TLS certificate of {settings.shown_url} could not be verified",
                function=function,
                hint="install the site's CA certificate and set ca_bundle to its file",
            ) from None
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise MoodleUnavailable(f"{function}: no answer within {timeout:g}s", function=function) from None
        except requests.exceptions.ConnectionError as error:
            reason = (
                "connection dropped or refused"
                if not isinstance(error, requests.exceptions.ProxyError)
                else "proxy error"
            )
            raise MoodleUnavailable(
                f"{function}: {reason} ({settings.shown_url})", function=function
            ) from None
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            urllib3.exceptions.HTTPError,
            OSError,
        ):
            raise MoodleUnavailable(f"{function}: the answer was cut off", function=function) from None
        except requests.exceptions.RequestException as error:
            raise MoodleUnavailable(
                f"{function}: request failed ({type(error).__name__})", function=function
            ) from None
        return _Body(
            status=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
            content=content,
            retry_after=_parse_retry_after(response.headers.get("Retry-After")),
        )

    def _read_body(self, function: str, response: requests.Response, deadline: float) -> bytes:
        """The whole body, read in pieces against ``deadline`` and the size cap."""
        cap = self.settings.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise self._too_large(function)
        body = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            connection = response.raw.connection
            if connection is not None and connection.sock is not None:
                connection.sock.settimeout(left)  # no single read may outlast the deadline either
            piece = response.raw.read1(_CHUNK, decode_content=True)
            if not piece:
                return bytes(body)
            body += piece
            if len(body) > cap:
                raise self._too_large(function)

    def _too_large(self, function: str) -> MoodleProtocolError:
        megabytes = self.settings.max_response_bytes / 2**20
        return MoodleProtocolError(
            f"{function}: the answer is larger than {megabytes:g} MB; refused",
            function=function,
            hint="raise [moodle] max_response_mb, or lower page_size / report_per_page so each answer is smaller",
        )

    def _decode(self, function: str, body: _Body) -> Any:
        if body.status == 429 or body.status >= 500 or body.status == 408:
            raise MoodleUnavailable(
                f"{function}: HTTP {body.status} from {self.settings.shown_url}",
                function=function,
                retry_after=body.retry_after,
            )
        if body.status != 200:
            raise MoodleProtocolError(
                f"{function}: HTTP {body.status} from {redact_url(self.settings.endpoint)}",
                function=function,
                hint="check that url is the Moodle site root and that the REST protocol is enabled "
                "(Site administration > Server > Web services > Manage protocols)",
            )
        try:
            text = body.content.decode("utf-8")
        except UnicodeDecodeError:
            raise MoodleUnavailable(
                f"{function}: the answer is not valid UTF-8 (cut off?)", function=function
            ) from None
        if _looks_like_html(text):
            raise MoodleUnavailable(
                f"{function}: an HTML page came back instead of {self.settings.format.upper()} "
                "(maintenance mode, a login page or a proxy error)",
                function=function,
                retry_after=body.retry_after,
            )
        if not text.strip():
            raise MoodleUnavailable(f"{function}: empty answer", function=function)
        return self._parse(function, text)

    def _parse(self, function: str, text: str) -> Any:
        if self.settings.format == "json" or text.lstrip().startswith(("{", "[")):
            try:
                value = json.loads(text)
                return _mend_surrogates(function, value) if _SURROGATE_ESCAPE.search(text) else value
            except RecursionError:  # json recurses once per nested list or object
                raise MoodleProtocolError(
                    f"{function}: the answer is nested too deeply to read", function=function
                ) from None
            except ValueError:
                if self.settings.format == "json" and text.lstrip().startswith("<?xml"):
                    return self._parse_xml(function, text)  # e.g. an early error before format was read
                raise MoodleUnavailable(
                    f"{function}: the JSON answer is cut off or malformed", function=function
                ) from None
        return self._parse_xml(function, text)

    @staticmethod
    def _parse_xml(function: str, text: str) -> Any:
        try:
            return parse_xml_response(text)
        except XmlFormatError as error:
            raise MoodleUnavailable(
                f"{function}: the XML answer is cut off or malformed ({error})", function=function
            ) from None

    def _redacted(self, error: MoodleError) -> MoodleError:
        """Moodle's texts should never echo the token; make sure of it."""
        token = self.settings.token
        if token and (token in error.message or (error.hint and token in error.hint)):
            error.message = error.message.replace(token, "***")
            error.hint = error.hint.replace(token, "***") if error.hint else None
            error.args = (error.message,)
        return error

    # -- concurrency --------------------------------------------------------------------------

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """fn(item) for every item, at most max_concurrency at a time, results in input order.

        Streams: only a small window of items is submitted ahead, so huge inputs are fine.
        The first exception raised by fn propagates (remaining queued work is cancelled).
        """
        workers = self.settings.max_concurrency
        window = workers * 2
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="moodle")
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def _mend_surrogates(function: str, value: Any, where: str = "", record: Any = None) -> Any:
    """``value`` with each lone UTF-16 surrogate (valid JSON, invalid text: SQLite and UTF-8 refuse
    it) replaced by U+FFFD, one warning per field naming the record."""
    if isinstance(value, str):
        if not _LONE_SURROGATE.search(value):  # a pair decodes to one character: only lone ones match
            return value
        log.warning(
            "%s: record id %s: %s held an invalid character (a lone surrogate); U+FFFD stands in its place",
            function,
            record if record is not None else "?",
            where or "the answer",
        )
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_mend_surrogates(function, item, where, record) for item in value]
    if isinstance(value, dict):
        record = value.get("id", record) if isinstance(value.get("id"), (int, str)) else record
        return {
            key: _mend_surrogates(function, item, f"{where}.{key}" if where else str(key), record)
            for key, item in value.items()
        }
    return value


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return (
        head.startswith("<!doctype html")
        or head.startswith("<html")
        or "<html" in head
        and not head.startswith("<?xml")
    )


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: rare from Moodle's proxies; fall back to our own backoff
    return max(0.0, seconds)
