"""Report-builder cells -> facts: visible text, ids from links, Moodle's English date text.

``core_reportbuilder_retrieve_report`` returns cells formatted for a person: names as HTML links
(``<a href=".../user/profile.php?id=3">Kateřina Veselý</a>``), HTML entities, and times as English
text such as ``Saturday, 24 May 2025, 1:00 PM`` in the *token user's* time zone, to the minute.

Parsing is locale-independent: month and weekday names are matched against English tables here,
never through ``strptime`` (whose %B/%p depend on the process locale).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from connector.errors import MoodleProtocolError
from connector.i18n import _

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
    if "<" not in cell and "&" not in cell:  # most cells (usernames, idnumbers): nothing to undo
        return cell.strip()
    return html.unescape(_TAG.sub("", cell)).strip()


@lru_cache(maxsize=4096)
def link_id(cell: str | None, path: str) -> int | None:
    """The ``id`` query value of the first link in ``cell`` whose path ends with ``path``.

    A link as Moodle writes it (``https://site/user/profile.php?id=3``) is read by one precompiled
    pattern; anything else (entities, ``id`` not first, odd forms) by the general reading, so the
    answer is the same either way. Remembered: a course's link cell repeats on every row of it."""
    if not cell:
        return None
    plain = _plain_link(path)
    for match in _HREF.finditer(cell):
        raw = match.group(1) if match.group(1) is not None else match.group(2)
        fast = plain.fullmatch(raw)
        if fast is not None:
            return int(fast.group(1))
        found = _general_link_id(raw, path)
        if found is not None:
            return found
    return None


@lru_cache(maxsize=8)
def _plain_link(path: str) -> re.Pattern[str]:
    # Exactly the hrefs whose general reading is certain: http(s)://host (plain ASCII) or a path
    # starting with one "/", then a path without entities, whitespace, backslashes or colons ending
    # in ``path``, then ``?id=<digits>`` ending the href or followed by a fragment or "&amp;".
    return re.compile(
        r"(?:https?://[A-Za-z0-9._~:@%+-]*|(?=/(?!/)))[^?#&\s\\:]*?"
        + re.escape(path)
        + r"\?id=([0-9]+)(?:#.*|&amp;.*)?",
        re.DOTALL,
    )


def _general_link_id(raw: str, path: str) -> int | None:
    parts = urlsplit(html.unescape(raw))
    if not parts.path.endswith(path):
        return None
    values = parse_qs(parts.query).get("id", [])
    if values and values[0].isdigit():
        return int(values[0])
    return None


def parse_report_datetime(text: str) -> datetime | None:
    """A naive local datetime (minute precision) from Moodle's English date text; None if empty."""
    if not text:  # not completed: most rows of a report
        return None
    text = cell_text(text)
    if not text or text == "-":
        return None
    match = _DATETIME.match(text)
    if match is None:
        raise ReportTimeError(_("time {text!r} is not in Moodle's English date format").format(text=text))
    month = _MONTHS.get(match["month"].lower())
    if month is None:
        raise ReportTimeError(
            _("time {text!r}: unknown month name {month!r} (not English?)").format(
                text=text, month=match["month"]
            )
        )
    hour = int(match["hour"])
    if match["ampm"]:
        if not 1 <= hour <= 12:
            raise ReportTimeError(_("time {text!r}: hour {hour} with AM/PM").format(text=text, hour=hour))
        hour = hour % 12 + (12 if match["ampm"][0] in "Pp" else 0)
    try:
        moment = datetime(int(match["year"]), month, int(match["day"]), hour, int(match["minute"]))
    except ValueError:
        raise ReportTimeError(_("time {text!r} is not a real date").format(text=text)) from None
    weekday = match["weekday"]
    if weekday and _WEEKDAYS[moment.weekday()] != weekday.lower():
        raise ReportTimeError(
            _("time {text!r}: {weekday} does not fall on that date (not English?)").format(
                text=text, weekday=weekday
            )
        )
    return moment


def column_index(headers: Sequence[str], columns: ReportColumns, report_id: int) -> dict[str, int]:
    """Role -> position of each configured column; a protocol error naming what is missing."""
    missing = columns.missing_from(headers)
    if missing:
        raise MoodleProtocolError(
            _("report {report_id} lacks the columns {join}; it has {join2}").format(
                report_id=report_id,
                join=", ".join(repr(m) for m in missing),
                join2=", ".join(repr(h) for h in headers),
            ),
            function="core_reportbuilder_retrieve_report",
            hint=_(
                "add to the custom report: 'Full name with link', 'Username', 'Course "
                "full name with link', 'Course ID number' and 'Time completed' (or "
                "configure the header names)"
            ),
        )
    wanted = {
        "user": columns.user,
        "username": columns.username,
        "course": columns.course,
        "course_idnumber": columns.course_idnumber,
        "time_completed": columns.time_completed,
    }
    return {role: list(headers).index(name) for role, name in wanted.items() if name is not None}


def cell(row: Sequence[str], index: Mapping[str, int], role: str) -> str:
    position = index.get(role)
    return row[position] if position is not None and position < len(row) else ""


def row_time(row: Sequence[str], index: Mapping[str, int], report_id: int) -> datetime | None:
    """The row's completion time as naive local wall clock; a protocol error if unreadable."""
    try:
        return parse_report_datetime(cell(row, index, "time_completed"))
    except ReportTimeError as error:
        raise MoodleProtocolError(
            _("report {report_id}: {error}").format(report_id=report_id, error=error),
            function="core_reportbuilder_retrieve_report",
            hint=_("set the web-service user's language to English so dates are written in English"),
        ) from None


def user_id_of(row: Sequence[str], index: Mapping[str, int]) -> int | None:
    return link_id(cell(row, index, "user"), "/user/profile.php")


def course_id_of(row: Sequence[str], index: Mapping[str, int]) -> int | None:
    return link_id(cell(row, index, "course"), "/course/view.php")
