"""The time zone a report's times are written in: the zone arithmetic of the calibration.

Report times are the token user's wall clock to the minute (:mod:`.parsing`).
The procedure (:mod:`.calibration` runs it against Moodle):

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

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, available_timezones

from connector.i18n import _


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
        raise ValueError(_("no candidate zones"))
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
