"""Finding a report's time zone against Moodle, and knowing when the remembered one still holds.

:func:`calibrate` runs the procedure of :mod:`.timezone`: sample completed rows from the first
report pages, read the exact time of a few of them (``core_completion_get_course_completion_status``)
and keep the zones in which every exact time reads as its row. The exact times it read are its
*witnesses*: the sync remembers them with the zone.

A full run re-reads the whole report anyway, so with a remembered zone and witnesses it reads in
that zone and checks each witness's row (:class:`ZoneWitness`): the zone still fits when every
witness row seen shows its exact time's minute in that zone, and at least one was seen. Only
then is the calibration (its sample pages and exact-time reads) skipped; otherwise the sync
calibrates again and re-reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from connector.errors import MoodleError, MoodleProtocolError, MoodleUnavailable
from connector.i18n import _
from connector.moodle.coerce import as_str
from connector.moodle.errormap import is_per_enrolment_error
from connector.moodle.functions import REPORT_FUNCTION
from connector.moodle.records import ReportCompletion, SiteInfo
from connector.moodle.report.parsing import ReportColumns, column_index, course_id_of, row_time, user_id_of
from connector.moodle.report.timezone import (
    choose_zone,
    consistent_zones,
    epoch_as_local_minute,
    local_to_epoch,
    most_telling_row,
    zone_order,
)

if TYPE_CHECKING:
    from connector.moodle.api import MoodleApi

log = logging.getLogger("connector.moodle")

SAMPLE_ROWS = 5000
MAX_LOOKUPS = 6


@dataclass(frozen=True)
class Witness:
    """An exact completion time read during a calibration, for the row of (course, user)."""

    course_id: int
    user_id: int
    completed_at: int


@dataclass(frozen=True)
class Calibration:
    zone: ZoneInfo
    witnesses: tuple[Witness, ...]


def witnesses_to_text(witnesses: Iterable[Witness]) -> str:
    return ",".join(f"{w.course_id}:{w.user_id}:{w.completed_at}" for w in witnesses)


def witnesses_from_text(text: str | None) -> tuple[Witness, ...]:
    """The remembered witnesses; none when the text is missing or not ours (calibrate again)."""
    found: list[Witness] = []
    for item in (text or "").split(","):
        parts = item.split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return ()
        found.append(Witness(int(parts[0]), int(parts[1]), int(parts[2])))
    return tuple(found)


class ZoneWitness:
    """Watches report rows read in ``zone``: do the remembered witnesses' rows still agree?"""

    def __init__(self, zone: ZoneInfo, witnesses: Iterable[Witness]) -> None:
        self.zone = zone
        self._expected = {
            (w.course_id, w.user_id): local_to_epoch(epoch_as_local_minute(w.completed_at, zone), zone)
            for w in witnesses
        }
        self.seen = 0
        self.disagreed = 0

    def watch(self, rows: Iterable[ReportCompletion]) -> Iterator[ReportCompletion]:
        for row in rows:
            if row.course_id is not None and row.user_id is not None:
                expected = self._expected.get((row.course_id, row.user_id))
                if expected is not None:
                    self.seen += 1
                    self.disagreed += row.completed_at != expected
            yield row

    @property
    def fits(self) -> bool:
        return self.seen > 0 and self.disagreed == 0


def calibrate(
    api: MoodleApi,
    report_id: int,
    *,
    preferred: str | None,
    per_page: int,
    columns: ReportColumns,
    site: SiteInfo,
) -> Calibration:
    """The IANA zone the report writes its times in, and the exact times that decided it."""
    if site.lang.split("_")[0] != "en":
        raise MoodleProtocolError(
            _(
                "report times are written in the token user's language {lang!r}; only English can be read"
            ).format(lang=site.lang),
            function=REPORT_FUNCTION,
            hint=_(
                "set the language of the web-service user {username!r} to English in their Moodle profile"
            ).format(username=site.username),
        )
    samples = _completed_rows(api, report_id, per_page=per_page, columns=columns)
    if not samples:
        raise MoodleProtocolError(
            _(
                "report {report_id} has no completed rows with user and course links to "
                "calibrate its time zone"
            ).format(report_id=report_id),
            function=REPORT_FUNCTION,
            hint=_(
                "calibrate once the report shows at least one completion, or configure the zone explicitly"
            ),
        )
    preferred = preferred or _token_user_timezone(api, site)
    lookups = _ExactTimes(api, samples)
    candidates = lookups.filter(zone_order(preferred), 0)
    for _lookup in range(MAX_LOOKUPS):
        index = most_telling_row(candidates, [local for _zone, _when, local in samples])
        if index is None or index in lookups.checked:
            break
        candidates = lookups.filter(candidates, index)
    if not candidates:
        raise MoodleProtocolError(
            _("no time zone makes report {report_id}'s times agree with the completion status").format(
                report_id=report_id
            ),
            function=REPORT_FUNCTION,
            hint=_("check that the report's time column is the course completion time"),
        )
    chosen = choose_zone(candidates, preferred)
    log.info("report %d: times are in %s (%d zones fit)", report_id, chosen, len(candidates))
    return Calibration(ZoneInfo(chosen), tuple(lookups.witnesses))


def _token_user_timezone(api: MoodleApi, site: SiteInfo) -> str | None:
    """The token user's own zone from their profile, when set (not "99", the server default)."""
    function = "core_user_get_users_by_field"
    try:
        rows = api.client.call(function, {"field": "id", "values": [site.userid]})
    except MoodleError as error:
        if isinstance(error, MoodleUnavailable):
            raise
        return None  # only a hint: without it the stable order decides
    zone = (
        as_str(rows[0].get("timezone"))
        if isinstance(rows, list) and rows and isinstance(rows[0], dict)
        else ""
    )
    return zone if "/" in zone or zone == "UTC" else None


def _completed_rows(
    api: MoodleApi, report_id: int, *, per_page: int, columns: ReportColumns
) -> list[tuple[int, int, datetime]]:
    """(course_id, user_id, local time) of completed rows, from the first pages."""
    samples: list[tuple[int, int, datetime]] = []
    for page in api.report_pages(report_id, per_page=per_page):
        index = column_index(page.headers, columns, report_id)
        if "user" not in index or "course" not in index:
            raise MoodleProtocolError(
                _("report {report_id}: calibration needs the linked columns {user!r} and {course!r}").format(
                    report_id=report_id, user=columns.user, course=columns.course
                ),
                function=REPORT_FUNCTION,
            )
        for row in page.rows:
            local = row_time(row, index, report_id)
            user_id = user_id_of(row, index)
            course_id = course_id_of(row, index)
            if local is not None and user_id is not None and course_id is not None:
                samples.append((course_id, user_id, local))
        if len(samples) >= SAMPLE_ROWS or (samples and len(samples) >= per_page):
            break
    return samples


class _ExactTimes:
    """Reads exact completion times of sampled rows, each row at most once."""

    def __init__(self, api: MoodleApi, samples: list[tuple[int, int, datetime]]) -> None:
        self.api = api
        self.samples = samples
        self.checked: set[int] = set()
        self.witnesses: list[Witness] = []

    def filter(self, candidates: list[str], index: int) -> list[str]:
        """Keep the zones in which the sample's exact completion time reads as its report text."""
        for position in [index, *range(len(self.samples))]:
            if position in self.checked:
                continue
            self.checked.add(position)
            course_id, user_id, local = self.samples[position]
            try:
                status = self.api.course_completion(course_id, user_id)
            except MoodleError as error:
                if is_per_enrolment_error(error):
                    continue
                raise
            if status.completed_at is None:
                continue  # reset since the report was read, or no timed criterion
            self.witnesses.append(Witness(course_id, user_id, status.completed_at))
            return consistent_zones(candidates, [(local, status.completed_at)])
        return candidates
