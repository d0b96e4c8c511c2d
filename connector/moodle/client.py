"""The REST client to Moodle web services: one call = encode, POST, decode, map errors, retry.

Every call is an HTTP POST to ``<site>/webservice/rest/server.php`` with the token, the function
name and the parameters in the form body (never in the URL: Moodle also accepts GET, and query
strings end up in access logs). Answers are JSON (``moodlewsrestformat=json``) or Moodle's default
XML, decoded to plain Python values. The jobs live in their own modules:

* :mod:`~connector.moodle.settings`: :class:`ClientSettings` and the URL policy;
* :mod:`~connector.moodle.encoding`: the form body;
* :mod:`~connector.moodle.transport`: one HTTP exchange (deadline, size cap, pooled session);
* :mod:`~connector.moodle.decoding`: status, HTML, JSON/XML -> values;
* :mod:`~connector.moodle.errormap`: Moodle's exception payloads -> typed errors;
* :mod:`~connector.moodle.concurrency`: the bounded, ordered thread pool.

This module holds what spans calls: retries, the run's deadline, call counts, redaction.

Transient failures (connection errors, timeouts, HTTP 5xx and 429, an HTML page instead of
JSON/XML, truncated or undecodable bodies, ``sitemaintenance``) raise :class:`MoodleUnavailable`
and are retried with exponential backoff and full jitter, bounded by ``retry_attempts`` and
``retry_total_s``; a ``Retry-After`` header (seconds) is honoured up to ``retry_max_wait_s``,
and asked to wait longer than the rest of ``retry_total_s`` or of the run, the call fails at once,
saying what Moodle asked (waiting could not end in time).
``calls_by_function()`` counts HTTP requests sent, retries included.

Bounds: ``timeout_s`` is the deadline of one HTTP exchange (see :mod:`~connector.moodle.transport`);
``run_deadline_s`` (from ``[sync] max_minutes``) counts from the client's creation: no call starts,
waits or reads past it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import requests
import tenacity

from connector.errors import MoodleError, MoodleUnavailable
from connector.i18n import _
from connector.moodle.concurrency import ordered_map
from connector.moodle.decoding import decode
from connector.moodle.encoding import build_form
from connector.moodle.errormap import error_from_payload, is_exception_payload
from connector.moodle.settings import ClientSettings
from connector.moodle.transport import Body, Transport

__all__ = ["MoodleClient"]

log = logging.getLogger("connector.moodle")

T = TypeVar("T")
R = TypeVar("R")


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
        self._transport = Transport(settings, session)
        self._in_flight = threading.BoundedSemaphore(settings.max_concurrency)
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._run_ends = (
            None if settings.run_deadline_s is None else time.monotonic() + settings.run_deadline_s
        )

    def __repr__(self) -> str:
        return f"MoodleClient(url={self.settings.shown_url!r}, format={self.settings.format!r})"

    def __enter__(self) -> MoodleClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

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
                _("{function}: the run passed its deadline of {minutes:g} minutes; stopped").format(
                    function=function, minutes=minutes
                ),
                function=function,
                hint=_(
                    "raise [sync] max_minutes, or find what made Moodle slow (`connector "
                    "runs` shows the calls)"
                ),
            )
        return left

    def _wait_before_retry(self, state: tenacity.RetryCallState) -> float:
        """Exponential backoff with full jitter; a Retry-After that does not fit fails the call now."""
        cap = self.settings.retry_max_wait_s
        exponential = min(cap, 0.5 * 2 ** (state.attempt_number - 1))
        wait = self._rng.uniform(exponential / 2, exponential)
        error = state.outcome.exception() if state.outcome else None
        function = error.function if isinstance(error, MoodleError) and error.function else _("the call")
        budget = self.settings.retry_total_s - (state.seconds_since_start or 0.0)
        run_left = self._run_time_left(function)
        if isinstance(error, MoodleUnavailable) and error.retry_after is not None:
            asked = error.retry_after
            # asked for longer than the call or the run may still last: retrying cannot succeed in time
            for limit, name in ((budget, _("the call's retry budget")), (run_left, _("the run's deadline"))):
                if limit is not None and asked > limit:
                    raise MoodleUnavailable(
                        _(
                            "{message}; Moodle asked to retry after {asked:g}s, beyond {name} "
                            "({max:.0f}s left), so the call was not retried"
                        ).format(message=error.message, asked=asked, name=name, max=max(limit, 0)),
                        function=error.function,
                        hint=_("try again later; the site is overloaded or in maintenance"),
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
        settings = self.settings
        value = decode(
            function, body, fmt=settings.format, shown_url=settings.shown_url, endpoint=settings.endpoint
        )
        if is_exception_payload(value):
            raise self._redacted(error_from_payload(function, value))
        return value

    def _post(self, function: str, form: list[tuple[str, str]]) -> Body:
        run_left = self._run_time_left(function)
        timeout = self.settings.timeout_s if run_left is None else min(self.settings.timeout_s, run_left)
        return self._transport.post(function, form, timeout)

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
        return ordered_map(fn, items, workers=self.settings.max_concurrency)
