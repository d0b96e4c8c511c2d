"""Calendar durations as administrators write them: "24 months", "2 years", "90 days", "6 weeks".

Months and years are calendar arithmetic, not a fixed number of days: 10 March + 24 months is
10 March two years later. A day that does not exist in the target month is clamped to the last
day of that month (31 August + 6 months = 28/29 February, 29 February 2024 + 24 months =
28 February 2026), so adding a duration never extends a validity beyond what was written.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

from connector.i18n import N_, _

Unit = Literal["days", "weeks", "months", "years"]

_UNIT_SPELLINGS: dict[str, Unit] = {
    "day": "days",
    "days": "days",
    "d": "days",
    "week": "weeks",
    "weeks": "weeks",
    "w": "weeks",
    "month": "months",
    "months": "months",
    "m": "months",
    "year": "years",
    "years": "years",
    "y": "years",
}
_DURATION = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")
HINT = N_('write a whole number and a unit, e.g. "24 months", "2 years", "90 days" or "6 weeks"')


@dataclass(frozen=True, slots=True)
class Duration:
    amount: int
    unit: Unit

    def __str__(self) -> str:
        unit = self.unit[:-1] if self.amount == 1 else self.unit
        return f"{self.amount} {unit}"

    def after(self, start: date) -> date:
        """The date this duration after ``start`` (month ends clamped)."""
        if self.unit == "days":
            return start + timedelta(days=self.amount)
        if self.unit == "weeks":
            return start + timedelta(weeks=self.amount)
        months = self.amount * 12 if self.unit == "years" else self.amount
        return shift_months(start, months)

    def before(self, end: date) -> date:
        """The date this duration before ``end`` (month ends clamped)."""
        if self.unit == "days":
            return end - timedelta(days=self.amount)
        if self.unit == "weeks":
            return end - timedelta(weeks=self.amount)
        months = self.amount * 12 if self.unit == "years" else self.amount
        return shift_months(end, -months)


@lru_cache(maxsize=1 << 16)  # an evaluation shifts the same few thousand days over and over
def shift_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months; a missing day becomes the month's last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def parse_duration(text: str) -> Duration:
    """Parse "24 months" and friends; raises ValueError with a message a person can act on."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(_("{text!r} is not a duration").format(text=text))
    amount, unit_text = int(match.group(1)), match.group(2).lower()
    unit = _UNIT_SPELLINGS.get(unit_text)
    if unit is None:
        raise ValueError(_("unknown unit {group!r} in {text!r}").format(group=match.group(2), text=text))
    if amount <= 0:
        raise ValueError(_("{text!r} must be longer than zero").format(text=text))
    return Duration(amount, unit)
