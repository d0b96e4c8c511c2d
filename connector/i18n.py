"""The language a person reads: gettext catalogs (Czech, Slovenian; English is the source) and Babel.

``_("expired")`` translates into the active language, ``ngettext`` picks a plural form (Czech and
Slovenian have three and four). Text built at import time (click help, column headings, status
words) is marked with ``N_()``, which only marks it for extraction, and is translated where it is
shown, so a ``--lang`` given later still applies: that is this module's "lazy string".

The language comes from ``--lang``, else ``[settings] language`` in the mappings, else the locale
(``LC_ALL``, ``LC_MESSAGES``, ``LANG``, in POSIX order), else English. Catalogs live in
connector/locale/<lang>/LC_MESSAGES/connector.po with the compiled .mo beside them (CONTRIBUTING.md
says how to extract and compile).
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date as _babel_date
from babel.numbers import format_decimal as _babel_decimal
from babel.numbers import format_percent as _babel_percent

LANGUAGES = ("en", "cs", "sl")
DOMAIN = "connector"
LOCALE_DIR = Path(__file__).parent / "locale"

# dates as officials write them: 26. 11. 2026 (cs, sl), 26 Nov 2026 (en)
_DATE_PATTERNS = {"cs": "d. M. y", "sl": "d. M. y", "en": "d MMM y"}
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " "})  # Babel's no-break spaces, for terminals


class _Active:
    language = "en"
    zone = "UTC"  # instants (a run's start, a completion) are shown in the connector's time zone
    explicit = False  # --lang was given: the mappings' language does not override it


def N_(message: str) -> str:
    """Marks ``message`` for extraction without translating it (it is translated where shown)."""
    return message


@cache
def translations(language: str) -> gettext.NullTranslations:
    if language == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def _(message: str) -> str:
    return translations(_Active.language).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_Active.language).ngettext(singular, plural, n)


def language() -> str:
    return _Active.language


def supported(value: str | None) -> str | None:
    """``cs``, ``cs_CZ.UTF-8``, ``sl-SI`` -> the language we have, or None."""
    if not value:
        return None
    code = value.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else None


def from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """The language of the locale: the first of LC_ALL, LC_MESSAGES, LANG that is set decides."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(name):
            return supported(env[name])
    return None


def set_language(code: str, *, explicit: bool = False) -> None:
    _Active.language = code if code in LANGUAGES else "en"
    _Active.explicit = explicit


def start(cli_language: str | None, environ: Mapping[str, str] | None = None) -> None:
    """At the start of a command: --lang if given, else the locale, else English."""
    if cli_language:
        set_language(cli_language, explicit=True)
    else:
        set_language(from_environment(environ) or "en")


def adopt_mappings_language(setting: str | None) -> None:
    """``[settings] language`` applies unless --lang chose one."""
    if setting and not _Active.explicit:
        set_language(setting)


def format_day(day: date | str | None, *, nbsp: bool = False) -> str:
    """A date as the reader writes it; ISO text is accepted (the ledger stores dates so).
    ``nbsp``: no-break spaces in Czech and Slovenian (HTML: "26. 11. 2026" never breaks across lines)."""
    if day is None or day == "":
        return ""
    if isinstance(day, str):
        try:
            when = date.fromisoformat(day[:10])
        except ValueError:
            return day
    else:
        when = day
    lang = _Active.language
    text = _babel_date(when, _DATE_PATTERNS[lang], locale=lang)
    return text.replace(" ", "\u00a0") if nbsp and lang != "en" else text.translate(_SPACES)


def set_zone(name: str | None) -> None:
    """The time zone instants are shown in (``[organisation] timezone``, or the mappings')."""
    if name:
        _Active.zone = name


def format_moment(moment: str | int | None) -> str:
    """An instant (ISO text with its offset, or Unix seconds) as the reader writes a day and a
    time, in the connector's time zone: 26. 11. 2026 22:24. A bare day is shown as a day; text
    that is neither is shown as it is."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, int):
        try:
            when = datetime.fromtimestamp(moment, UTC)
        except (ValueError, OverflowError, OSError):  # no calendar holds it: shown as the number it is
            return str(moment)
    else:
        if len(moment) == 10:
            return format_day(moment)
        try:
            when = datetime.fromisoformat(moment)
        except ValueError:
            return moment
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # the ledger writes instants in UTC
    try:
        local = when.astimezone(ZoneInfo(_Active.zone))
    except ZoneInfoNotFoundError:
        local = when.astimezone(UTC)
    return f"{format_day(local.date())} {local:%H:%M}"


def format_percent(share: float, decimals: int = 0, *, nbsp: bool = False) -> str:
    """0.4167 -> "42 %" in Czech and Slovenian, "42%" in English; decimals=1 -> "41,7 %"."""
    pattern = "#,##0%" if decimals == 0 else "#,##0." + "0" * decimals + "%"
    if _Active.language != "en":
        pattern = pattern.replace("%", "\u00a0%")
    text = _babel_percent(share, pattern, locale=_Active.language)
    return text if nbsp else text.translate(_SPACES)


def format_number(value: float, decimals: int | None = None) -> str:
    """12.3 -> "12,3" in Czech and Slovenian; ``decimals`` fixes the number of decimals."""
    pattern = None if decimals is None else "0." + "0" * decimals if decimals else "0"
    return _babel_decimal(value, pattern, locale=_Active.language).translate(_SPACES)
