"""The words for statuses, chosen once and used everywhere a person reads them.

The ledger, CSV and JSON keep the English keys (``expired``); tables and reports show
``status_word(status)`` in the reader's language (CONTRIBUTING.md keeps the glossary).
"""

from __future__ import annotations

import re

from connector.durations import Duration
from connector.i18n import N_, _, format_day, format_percent, language, ngettext

STATUS_WORDS = {
    "compliant": N_("compliant"),
    "expiring": N_("expiring"),
    "expired": N_("expired"),
    "missing": N_("missing"),
    "grace": N_("grace"),
    "exempt": N_("exempt"),
    "not_applicable": N_("not applicable"),
}


# A run's outcome and mode as the ledger stores them, for the `runs` table and the sync line.
RUN_WORDS = {
    "ok": N_("ok"),
    "failed": N_("failed"),
    "running": N_("running"),
    "full": N_("full"),
    "incremental": N_("incremental"),
}


def run_word(word: str | None) -> str:
    if not word:
        return ""
    return _(RUN_WORDS.get(word, word))


def duration_words(duration: Duration) -> str:
    """60 days, 3 months, 1 year: a duration as the reader says it."""
    n = duration.amount
    forms = {
        "days": ngettext("{n} day", "{n} days", n),
        "weeks": ngettext("{n} week", "{n} weeks", n),
        "months": ngettext("{n} month", "{n} months", n),
        "years": ngettext("{n} year", "{n} years", n),
    }
    return forms[duration.unit].format(n=n)


def status_word(status: str | None) -> str:
    """``expiring`` -> "brzy vyprší" in Czech; an unknown or empty status is shown as it is."""
    if not status:
        return ""
    return _(STATUS_WORDS.get(status, status))


# The ledger keeps a status's detail in English (it is evidence, written at sync time); people read
# it translated part by part. A part no pattern knows (an exemption's reason) is shown as it is.
_IGNORED = ""  # a plural: see _ignored


def _ignored(n: int) -> str:
    return ngettext(
        "{n} completion dated after as_of ignored", "{n} completions dated after as_of ignored", n
    )


_DETAIL_PARTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), message)
    for pattern, message in (
        (r"^one completion$", N_("one completion")),
        (
            r"^an appointment: nobody must complete a course$",
            N_("an appointment: nobody must complete a course"),
        ),
        (r"^no completion$", N_("no completion")),
        (r"^latest of (?P<n>\d+) completions$", N_("latest of {n} completions")),
        (r"^all (?P<n>\d+) courses completed$", N_("all {n} courses completed")),
        (r"^the first to expire decides$", N_("the first to expire decides")),
        (r"^(?P<have>\d+) of (?P<n>\d+) courses completed$", N_("{have} of {n} courses completed")),
        (
            r"^a course of this requirement is not in Moodle$",
            N_("a course of this requirement is not in Moodle"),
        ),
        (r"^outside the requirement's applies_to$", N_("outside the requirement's applies_to")),
        (r"^inactive in Moodle \(suspended or deleted\)$", N_("inactive in Moodle (suspended or deleted)")),
        (r"^newcomer since (?P<date>\d{4}-\d{2}-\d{2})$", N_("newcomer since {date}")),
        (r"^(?P<n>\d+) completions? dated after as_of ignored$", _IGNORED),
        (r"^exempt until (?P<date>\d{4}-\d{2}-\d{2}): (?P<reason>.*)$", N_("exempt until {date}: {reason}")),
        (r"^exempt: (?P<reason>.*)$", N_("exempt: {reason}")),
    )
)


def detail_words(detail: str | None) -> str:
    """A status's detail ("outside the requirement's applies_to; one completion") in the reader's language."""
    if not detail:
        return ""
    return "; ".join(_detail_part(part) for part in detail.split("; "))


def _detail_part(part: str) -> str:
    for pattern, message in _DETAIL_PARTS:
        match = pattern.match(part)
        if match:
            values = match.groupdict()
            if "date" in values:
                values["date"] = format_day(values["date"])
            text = _ignored(int(values["n"])) if message is _IGNORED else _(message)
            return text.format(**values)
    return part


# A target's figure in words, as the rules write it in the roll-ups ("31 % of 50 %, 2026-2027",
# "1 of 1 appointed", "not judged in 2027 (even years only)"): shown translated, stored English.
_YEARS = r"(?:, (?P<years>\d{4}(?:-\d{4})?))?"
_TARGET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), message)
    for pattern, message in (
        (
            r"^(?P<n>\d+) of (?P<min>[\d.]+) appointed, due by (?P<date>\d{4}-\d{2}-\d{2})$",
            N_("{n} of {min} appointed, due by {date}"),
        ),
        (r"^(?P<n>\d+) of (?P<min>[\d.]+) appointed$", N_("{n} of {min} appointed")),
        (r"^(?P<n>\d+) of (?P<min>[\d.]+) holders in scope$", N_("{n} of {min} holders in scope")),
        (r"^(?P<n>\d+) of (?P<min>[\d.]+) holders$", N_("{n} of {min} holders")),
        (
            r"^not judged in (?P<year>\d{4}) \(even years only\)$",
            N_("not judged in {year} (even years only)"),
        ),
        (r"^not judged in (?P<year>\d{4}) \(odd years only\)$", N_("not judged in {year} (odd years only)")),
        (r"^not judged" + _YEARS + r": nobody needs it$", N_("not judged{years}: nobody needs it")),
        (
            r"^not judged" + _YEARS + r": no needs analysis saved for (?P<year>\d{4})$",
            N_("not judged{years}: no needs analysis saved for {year}"),
        ),
        (r"^not judged" + _YEARS + r": nobody in scope$", N_("not judged{years}: nobody in scope")),
        (
            r"^(?P<actual>\d+) % of (?P<goal>\d+) %"
            + _YEARS
            + r" \(of (?P<base>\d+) who need it, a place given\)$",
            N_("{actual} of {goal}{years} (of {base} who need it, a place given)"),
        ),
        (
            r"^(?P<actual>\d+) % of (?P<goal>\d+) %" + _YEARS + r" \(of (?P<base>\d+) who need it\)$",
            N_("{actual} of {goal}{years} (of {base} who need it)"),
        ),
        (
            r"^(?P<actual>\d+) % of (?P<goal>\d+) %" + _YEARS + r" \(a place given\)$",
            N_("{actual} of {goal}{years} (a place given)"),
        ),
        (r"^(?P<actual>\d+) % of (?P<goal>\d+) %" + _YEARS + r"$", N_("{actual} of {goal}{years}")),
    )
)


def target_words(words: str | None) -> str:
    """A target's judged figure ("31 % of 50 %, 2026") in the reader's language; unknown wording as is."""
    if not words or language() == "en":  # the rules write it in English already
        return words or ""
    for pattern, message in _TARGET_PATTERNS:
        match = pattern.match(words)
        if match:
            values = {k: v for k, v in match.groupdict().items() if v is not None}
            if "date" in values:
                values["date"] = format_day(values["date"])
            for key in ("actual", "goal"):  # whole percents
                if key in values:
                    values[key] = format_percent(int(values[key]) / 100)
            values["years"] = f", {values['years']}" if values.get("years") else ""
            return _(message).format(**values)
    return words
