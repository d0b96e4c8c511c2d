"""The report's user filters: "Time completed from T" for a nightly delta read, and their reset.

What Moodle does (read in its source; no capture has these calls, see
``tests/fixtures/moodle-4.5-source/README.md``):

* ``core_reportbuilder_set_filters(reportid, parameters, values)`` stores ``values`` (a JSON
  *string* of ``<filter>_<field>`` keys) as a user preference of the *calling* user; every later
  ``retrieve_report`` of that user applies them. It answers a bare boolean.
* ``core_reportbuilder_filters_reset(reportid)`` deletes that preference (boolean answer).
* Only the filters the report carries are applied; values for any other name are ignored
  silently. A report without the "Time completed" filter therefore answers a "filtered" read
  with every row: :class:`DeltaCheck` notices (a row completed before T, or not completed).
* The date filter's operator 3 ("range") keeps ``from <= timecompleted`` (and ``< to`` when
  ``to`` is non-zero: 0 or absent leaves the range open); not-completed rows (0 / NULL) fall out.
* ``core_reportbuilder_reports_get`` (editmode 0) renders the filters form: one control named
  ``<filter>_operator`` per filter the report carries (quirks 18-19 of the 4.5 capture).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar

from connector.errors import MoodleError, MoodleProtocolError, SyncRefused
from connector.i18n import _
from connector.moodle.coerce import to_bool
from connector.moodle.records import Completion, ReportCompletion

log = logging.getLogger("connector.moodle")
T = TypeVar("T")

SET_FILTERS = "core_reportbuilder_set_filters"
RESET_FILTERS = "core_reportbuilder_filters_reset"
REPORTS_GET = "core_reportbuilder_reports_get"
# the participants datasource's completion entity: entity "completion", filter "timecompleted"
TIME_COMPLETED = "completion:timecompleted"
DATE_RANGE = 3  # core_reportbuilder\local\filters\date::DATE_RANGE

_OPERATOR = re.compile(r'\bname="(?P<name>[^"]+)_operator"')


class Caller(Protocol):
    def call(self, function: str, params: Mapping[str, Any] | None = None) -> Any: ...


def time_completed_from(since: int) -> dict[str, int]:
    """The filter values of "Time completed: range from ``since``, no end"."""
    return {
        f"{TIME_COMPLETED}_operator": DATE_RANGE,
        f"{TIME_COMPLETED}_from": since,
        f"{TIME_COMPLETED}_to": 0,
    }


def set_time_completed_from(client: Caller, report_id: int, since: int) -> None:
    """From now on, the token user's reads of the report list only rows completed at or after
    ``since`` (until :func:`reset_filters`)."""
    values = json.dumps(time_completed_from(since), separators=(",", ":"))
    answer = client.call(SET_FILTERS, {"reportid": int(report_id), "values": values})
    _require_true(SET_FILTERS, answer)


def reset_filters(client: Caller, report_id: int) -> None:
    """The token user's filter values of the report removed: reads list every row again."""
    _require_true(RESET_FILTERS, client.call(RESET_FILTERS, {"reportid": int(report_id)}))


def filters_in_form(form: str) -> frozenset[str]:
    """The filters a report carries, from its filters form (``<filter>_operator`` controls)."""
    return frozenset(m["name"] for m in _OPERATOR.finditer(form))


def report_filters(client: Caller, report_id: int) -> frozenset[str]:
    """The filters report ``report_id`` carries (``core_reportbuilder_reports_get``, editmode 0:
    what the report's page shows its viewers; needs only view rights)."""
    form = _report_view(client, report_id).get("filtersform")
    return filters_in_form(form if isinstance(form, str) else "")


def filters_applied(client: Caller, report_id: int) -> int:
    """How many of the report's filters hold values for the calling user (``filtersapplied``)."""
    applied = _report_view(client, report_id).get("filtersapplied")
    return applied if isinstance(applied, int) and not isinstance(applied, bool) else 0


def _report_view(client: Caller, report_id: int) -> dict[str, Any]:
    function = REPORTS_GET
    data = client.call(function, {"reportid": int(report_id), "editmode": 0})
    if not isinstance(data, dict):
        raise MoodleProtocolError(
            _("{function}: expected an object").format(function=function), function=function
        )
    return data


class DeltaCheck:
    """Watches the rows of a read meant to hold only completions at or after ``since``: one that
    does not (not completed, or completed earlier) shows the filter was not applied."""

    def __init__(self, since: int) -> None:
        self.since = since
        self.rows = 0
        self.effective = True

    def watch(self, rows: Iterable[ReportCompletion]) -> Iterator[ReportCompletion]:
        for row in rows:
            self.rows += 1
            if self.effective and (row.completed_at is None or row.completed_at < self.since):
                self.effective = False
            yield row


def _require_true(function: str, answer: Any) -> None:
    if not to_bool(answer):
        raise MoodleProtocolError(
            _("{function}: Moodle answered {answer!r}, not true").format(function=function, answer=answer),
            function=function,
        )


PRESENT, ABSENT = "present", "absent"  # what a run learned about the report's filter
# the sync's bookmarks (per-stream values a run leaves for the next)
FILTER_BOOKMARK = "report_time_filter"
LATEST_BOOKMARK = "report_latest_completion"


class ReportDelta:
    """One run's use of the report's "Time completed" filter.

    A delta read needs both functions in the service (a filter that could not be reset would
    narrow every later read of the token's user) and a report that carries the filter: ``known``
    is what an earlier run found out, else ``core_reportbuilder_reports_get`` is asked once.
    Whatever fails here leaves the caller to read every row; the filters are reset after every
    delta read and before every whole one."""

    def __init__(
        self,
        client: Caller,
        report_id: int,
        can_call: Callable[[str], bool],
        bookmark: Callable[[str], str | None],
    ) -> None:
        self.client = client
        self.report_id = report_id
        self.can_reset = can_call(RESET_FILTERS)
        self.available = self.can_reset and can_call(SET_FILTERS)
        self.can_probe = can_call(REPORTS_GET)
        known = bookmark(FILTER_BOOKMARK)
        self.known = known if known in (PRESENT, ABSENT) else None
        latest = bookmark(LATEST_BOOKMARK)
        self.latest = int(latest) if latest and latest.isdigit() else None
        self.since: int | None = None  # set when a delta read took effect

    @property
    def expected(self) -> bool:
        """Whether a delta read is to be expected: both functions offered and an earlier run
        found the filter on the report (it may still fall back to a whole read)."""
        return self.available and self.known == PRESENT

    def since_for(self, last_run_started: str | None, lookback_hours: float) -> int | None:
        """Where a delta read starts: the last good run's start, or the latest completion the
        report showed if that is earlier (Moodle's clock, not ours, wrote the times), minus the
        look-back; whole minutes, as the report shows them. None without a last good run."""
        if not last_run_started:
            return None
        start = int(datetime.fromisoformat(last_run_started).timestamp())
        since = min(start, self.latest if self.latest is not None else start) - int(lookback_hours * 3600)
        return since - since % 60

    def bookmarks(self, completions: Iterable[Completion]) -> dict[str, str]:
        """What the next run needs to know: the filter's presence, the latest completion seen."""
        latest = max((c.completed_at for c in completions), default=None)
        if self.latest is not None and (latest is None or latest < self.latest):
            latest = self.latest
        found = {LATEST_BOOKMARK: str(latest)} if latest is not None else {}
        if self.known is not None:
            found[FILTER_BOOKMARK] = self.known
        return found

    def probe(self) -> str | None:
        """Ask the report whether it carries the filter (one call); None when it cannot tell."""
        if not (self.available and self.can_probe):
            return self.known
        try:
            carried = TIME_COMPLETED in report_filters(self.client, self.report_id)
        except MoodleError as exc:
            log.warning("report %d: cannot read its filters (%s)", self.report_id, exc.message)
            return self.known
        self.known = PRESENT if carried else ABSENT
        return self.known

    def read(self, since: int | None, read_rows: Callable[[DeltaCheck], T]) -> T | None:
        """``read_rows`` with the report narrowed to completions from ``since`` on, the filter
        reset afterwards whatever happens; None when no delta read could be started."""
        if not self.available or since is None:
            return None
        if self.known is None:
            self.probe()
        if self.known == ABSENT:
            log.info("report %d has no 'Time completed' filter: reading every row", self.report_id)
            return None
        try:
            set_time_completed_from(self.client, self.report_id, since)
        except MoodleError as exc:
            log.warning(
                "report %d: setting its 'Time completed' filter failed (%s); reading every row",
                self.report_id,
                exc.message,
            )
            self._reset_quietly()
            return None
        check = DeltaCheck(since)
        try:
            result = read_rows(check)
        finally:
            self._reset_quietly()
        if check.effective:
            self.since = since
        else:
            log.warning(
                "report %d: the 'Time completed' filter did not narrow the rows (the report does "
                "not carry it?); this run read every row",
                self.report_id,
            )
        return result

    def before_whole_read(self, *, probe: bool) -> None:
        """Filters off before reading every row: a narrowed "whole" read would make a full run
        mark real completions as no longer in Moodle. Raises when the reset fails. ``probe``
        (full runs) asks again whether the report carries the filter, for the nights to come."""
        if probe:
            self.probe()
        if self.can_reset:
            reset_filters(self.client, self.report_id)
        elif self.can_probe and filters_applied(self.client, self.report_id):
            # a delta read killed before its reset, and the service has since lost the reset
            raise SyncRefused(
                _(
                    "report {report} still has filter values set for the token's user and the "
                    "service lacks {function}: a whole read would miss rows; nothing was written"
                ).format(report=self.report_id, function=RESET_FILTERS),
                hint=_(
                    "add {function} to the web service (or reset the report's filters in Moodle "
                    "as that user), then run the sync again"
                ).format(function=RESET_FILTERS),
            )

    def _reset_quietly(self) -> None:
        try:
            reset_filters(self.client, self.report_id)
        except MoodleError as exc:  # the next whole read resets first, or fails
            log.warning("report %d: resetting its filters failed (%s)", self.report_id, exc.message)
