"""One HTTP exchange with Moodle: POST the form, read the answer against a deadline and a size cap.

``timeout`` is the deadline of the whole exchange, the answer's last byte included: while waiting
for the status line and headers a timer cuts the connection at the deadline (the socket timeout
bounds each read, not their sum, so a server sending its headers a byte at a time would keep a call
open), and the body is read in pieces against the same clock. An answer larger than
``max_response_bytes`` is refused as it arrives.

Failures become typed errors here (never requests' own text: its exceptions carry the prepared
request, token included): connection problems, timeouts and cut-off bodies are
:class:`MoodleUnavailable` (the client retries them), a certificate that cannot be verified is a
:class:`MoodleError`. What the body means is :mod:`connector.moodle.decoding`'s job.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from connector.errors import MoodleError, MoodleProtocolError, MoodleUnavailable
from connector.i18n import _
from connector.moodle.settings import ClientSettings

_CHUNK = 64 * 1024

_call_deadline = threading.local()


class _DeadlineMixin:
    sock: socket.socket | None

    def getresponse(self) -> Any:
        deadline: float | None = getattr(_call_deadline, "at", None)
        if deadline is None:
            return super().getresponse()  # type: ignore[misc]  # urllib3's connection, mixed in below
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._cut)
        timer.daemon = True
        timer.start()
        try:
            return super().getresponse()  # type: ignore[misc]  # urllib3's connection, mixed in below
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


def new_session(settings: ClientSettings) -> requests.Session:
    """A pooled session whose connections honour the calling thread's deadline."""
    session = requests.Session()
    adapter = _DeadlineAdapter(
        pool_connections=1, pool_maxsize=max(10, settings.max_concurrency), max_retries=0
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False  # no proxy or .netrc surprises; the token goes only where url says
    return session


@dataclass(frozen=True)
class Body:
    status: int
    content_type: str
    content: bytes
    retry_after: float | None


class Transport:
    """POSTs forms to one site's REST endpoint over one session. Thread-safe."""

    def __init__(self, settings: ClientSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.session = session or new_session(settings)

    def close(self) -> None:
        self.session.close()

    def post(self, function: str, form: list[tuple[str, str]], timeout: float) -> Body:
        """One exchange within ``timeout`` seconds, the whole body read."""
        settings = self.settings
        verify: str | bool = settings.ca_bundle or True
        deadline = time.monotonic() + timeout
        _call_deadline.at = deadline
        try:
            try:
                response = self.session.post(
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
                _("{function}: the TLS certificate of {shown_url} could not be verified").format(
                    function=function, shown_url=settings.shown_url
                ),
                function=function,
                hint=_("install the site's CA certificate and set ca_bundle to its file"),
            ) from None
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise MoodleUnavailable(
                _("{function}: no answer within {timeout:g}s").format(function=function, timeout=timeout),
                function=function,
            ) from None
        except requests.exceptions.ConnectionError as error:
            reason = (
                _("connection dropped or refused")
                if not isinstance(error, requests.exceptions.ProxyError)
                else _("proxy error")
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
            raise MoodleUnavailable(
                _("{function}: the answer was cut off").format(function=function), function=function
            ) from None
        except requests.exceptions.RequestException as error:
            raise MoodleUnavailable(
                _("{function}: request failed ({name})").format(function=function, name=type(error).__name__),
                function=function,
            ) from None
        return Body(
            status=response.status_code,
            content_type=response.headers.get("Content-Type", ""),
            content=content,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
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
            _("{function}: the answer is larger than {megabytes:g} MB; refused").format(
                function=function, megabytes=megabytes
            ),
            function=function,
            hint=_(
                "raise [moodle] max_response_mb, or lower page_size / report_per_page so "
                "each answer is smaller"
            ),
        )


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: rare from Moodle's proxies; fall back to our own backoff
    return max(0.0, seconds)
