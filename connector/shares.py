"""Shares written the way people write them: "5 %", "12.5%", "5,5 %", or a fraction such as 0.05."""

from __future__ import annotations

import re

from connector.i18n import _, language

_PERCENT = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*%\s*$")


def parse_share(value: str | int | float) -> float:
    """The share as a fraction between 0 and 1; ValueError says how to write it."""
    if isinstance(value, bool):
        raise ValueError(_('must be a share such as "5 %"'))
    if isinstance(value, (int, float)):
        share = float(value)
    else:
        match = _PERCENT.match(value)
        if not match:
            raise ValueError(_('{value!r} is not a share; write it like "5 %"').format(value=value))
        share = float(match.group(1).replace(",", ".")) / 100
    if not 0 <= share <= 1:
        raise ValueError(_('{value!r} is not between 0 and 100 %; write it like "5 %"').format(value=value))
    return share


def format_share(share: float) -> str:
    """42 / 42 -> "100 %", 1 / 300 -> "0.3 %" ("0,3 %" in Czech and Slovenian): whole percents,
    one decimal below 10 %."""
    percent = round(share * 100, 1)
    if percent >= 10 or percent == round(percent):
        return f"{percent:.0f} %"
    text = f"{percent:.1f} %"
    return text if language() == "en" else text.replace(".", ",")
