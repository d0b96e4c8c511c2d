"""Report-builder cells -> facts, and finding the time zone the report's times are written in.

``core_reportbuilder_retrieve_report`` returns cells formatted for a person: names as HTML links
(``<a href=".../user/profile.php?id=3">Kateřina Veselý</a>``), HTML entities, and times as English
text such as ``Saturday, 24 May 2025, 1:00 PM`` in the *token user's* time zone, to the minute.

Parsing is locale-independent: month and weekday names are matched against English tables here,
never through ``strptime`` (whose %B/%p depend on the process locale).

Time-zone calibration (used by ``MoodleApi.calibrate_report_timezone``)
----------------------------------------------------------------------
The report does not say which zone it used, and a wrong guess shifts every completion by hours.
Exact times are available one at a time from ``core_completion_get_course_completion_status``
(epoch seconds). So:

1. Take the report rows that show a completion time (their local wall-clock minute).
2. Read the exact time of one of them; keep every IANA zone in which that instant, truncated to
   the minute, reads as the row's text (:func:`consistent_zones`).
3. Zones that agree at one instant may disagree at another (summer vs. winter time). Find the row
   whose local time the remaining zones turn into the most different instants
   (:func:`most_telling_row`), read its exact time, and filter again. Repeat until no row tells
   the candidates apart (typically one or two calls in all).
4. Of the zones left (which give identical results for every row seen), pick the preferred zone
   if it is among them, else UTC, else the first in a stable order (Area/City names
   alphabetically, then the rest) (:func:`choose_zone`). When the caller names no preferred
   zone, the token user's profile time zone is used as the preference if it is set.

No zone left means the report disagrees with the completion status: a clear error, never a guess.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, available_timezones

_MONTHS = {
    name: number
    for number, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        start=1,
    )
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# "Saturday, 24 May 2025, 1:00 PM" (Moodle's English strftimedatetime); the weekday and the
# AM/PM marker are optional so 24-hour variants parse too.
_DATETIME = re.compile(
    r"^\s*(?:(?P<weekday>[A-Za-z]+),\s*)?(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]+)\s+(?P<year>\d{4}),?\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?\s*$"
)
_TAG = re.compile(r"<[^>]*>")
_HREF = re.compile(r"""href\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


@dataclass(frozen=True)
class ReportColumns:
    """Headers of the report's columns. ``user``/``course`` are the "with link" columns carrying ids.

    A column may be None when the report does not have it, as long as each row can still name a
    user (``user`` or ``username``) and a course (``course`` or ``course_idnumber``).
    """

    user: str | None = "Full name with link"
    username: str | None = "Username"
    course: str | None = "Course full name with link"
    course_idnumber: str | None = "Course ID number"
    time_completed: str = "Time completed"

    def missing_from(self, headers: Sequence[str]) -> list[str]:
        """Names of configured columns that the report lacks, plus any role left uncovered."""
        present = set(headers)
        wanted = [self.user, self.username, self.course, self.course_idnumber, self.time_completed]
        missing = [name for name in wanted if name is not None and name not in present]
        if self.user is None and self.username is None:
            missing.append("a user column (user or username)")
        if self.course is None and self.course_idnumber is None:
            missing.append("a course column (course or course_idnumber)")
        return missing


class ReportTimeError(ValueError):
    """A time cell that is not Moodle's English date format."""


def cell_text(cell: str | None) -> str:
    """The visible text of a formatted cell: markup stripped, entities unescaped."""
    if not cell:
        return ""
    return html.unescape(_TAG.sub("", cell)).strip()


def link_id(cell: str | None, path: str) -> int | None:
    """The ``id`` query value of the first link in ``cell`` whose path ends with ``path``."""
    if not cell:
        return None
    for match in _HREF.finditer(cell):
        href = html.unescape(match.group(1) or match.group(2) or "")
        parts = urlsplit(href)
        if not parts.path.endswith(path):
            continue
        values = parse_qs(parts.query).get("id", [])
        if values and values[0].isdigit():
            return int(values[0])
    return None


def parse_report_datetime(text: str) -> datetime | None:
    """A naive local datetime (minute precision) from Moodle's English date text; None if empty."""
    text = cell_text(text)
    if not text or text == "-":
        return None
    match = _DATETIME.match(text)
    if match is None:
        raise ReportTimeError(f"time {text!r} is not in Moodle's English date format")
    month = _MONTHS.get(match["month"].lower())
    if month is None:
        raise ReportTimeError(f"time {text!r}: unknown month name {match['month']!r} (not English?)")
    hour = int(match["hour"])
    if match["ampm"]:
        if not 1 <= hour <= 12:
            raise ReportTimeError(f"time {text!r}: hour {hour} with AM/PM")
        hour = hour % 12 + (12 if match["ampm"][0] in "Pp" else 0)
    try:
        moment = datetime(int(match["year"]), month, int(match["day"]), hour, int(match["minute"]))
    except ValueError:
        raise ReportTimeError(f"time {text!r} is not a real date") from None
    weekday = match["weekday"]
    if weekday and _WEEKDAYS[moment.weekday()] != weekday.lower():
        raise ReportTimeError(f"time {text!r}: {weekday} does not fall on that date (not English?)")
    return moment


def local_to_epoch(local: datetime, zone: ZoneInfo) -> int:
    """Epoch seconds of a naive wall-clock time in ``zone`` (the earlier one in a DST fold)."""
    return int(local.replace(tzinfo=zone).timestamp())


def epoch_as_local_minute(epoch: int, zone: ZoneInfo) -> datetime:
    """How Moodle shows ``epoch`` in ``zone``: wall clock, seconds dropped, naive."""
    shown = datetime.fromtimestamp(epoch, tz=UTC).astimezone(zone)
    return shown.replace(second=0, microsecond=0, tzinfo=None)


@lru_cache(maxsize=1)
def ordered_zone_names() -> tuple[str, ...]:
    """Every IANA zone known here, UTC first, then Area/City names, then the rest, each sorted."""
    names = available_timezones() - {"UTC", "localtime", "posixrules", "Factory"}
    area_city = sorted(
        n for n in names if "/" in n and not n.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/"))
    )
    others = sorted(names - set(area_city))
    return ("UTC", *area_city, *others)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def consistent_zones(candidates: Iterable[str], observations: Iterable[tuple[datetime, int]]) -> list[str]:
    """Zones in which every exact epoch reads as its observed local minute; order kept."""
    observed = list(observations)
    kept = []
    for name in candidates:
        try:
            zone = _zone(name)
        except (ValueError, OSError):
            continue
        if all(epoch_as_local_minute(epoch, zone) == local for local, epoch in observed):
            kept.append(name)
    return kept


def most_telling_row(candidates: Sequence[str], locals_: Sequence[datetime]) -> int | None:
    """Index of the local time the candidates turn into the most distinct instants; None if none differ."""
    if len(candidates) < 2:
        return None
    zones = [_zone(name) for name in candidates]
    best_index, best_spread = None, 1
    seen: set[datetime] = set()
    for index, local in enumerate(locals_):
        if local in seen:
            continue
        seen.add(local)
        spread = len({local_to_epoch(local, zone) for zone in zones})
        if spread > best_spread:
            best_index, best_spread = index, spread
            if spread == len(zones):
                break
    return best_index


def choose_zone(candidates: Sequence[str], preferred: str | None = None) -> str:
    """The preferred zone when it fits, else UTC, else the first candidate in stable order."""
    if not candidates:
        raise ValueError("no candidate zones")
    if preferred and preferred in candidates:
        return preferred
    if "UTC" in candidates:
        return "UTC"
    return candidates[0]


def zone_order(preferred: str | None) -> list[str]:
    """Candidate zone names with the preferred one (when known here) first."""
    names = list(ordered_zone_names())
    if preferred and preferred in names:
        names.remove(preferred)
        names.insert(0, preferred)
    return names
