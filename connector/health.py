"""`connector check`: the ledger's health as a Nagios/Icinga plugin sees it.

Plugin convention, not the connector's own exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
and one line ``CONNECTOR <STATE> - <what> | <performance data>``. Everything comes from the
ledger, opened read-only (no Moodle call, no write), so a monitoring user in the ledger's readers'
group can run it.

What is judged, in this order on the line:
* the age of the last good sync: WARNING past ``warn_age``, CRITICAL past ``max_age`` (and when
  the ledger holds no good sync at all);
* the last finished run failed: WARNING (a retry may still fix it; the age turns it CRITICAL);
* the share of active people in no department: WARNING past ``max_unplaced``;
* mapped courses missing from the course list the last good sync read: WARNING.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.config import Config
from connector.errors import ConnectorError
from connector.ledger import Ledger
from connector.mapping import Mappings, load_mappings
from connector.reports.unplaced import unplaced_counts
from connector.shares import format_share, parse_share

log = logging.getLogger("connector.check")

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$", re.IGNORECASE)
_AGE_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> float:
    """ "36h", "90m", "2d", "3600s" or "3600" (seconds) -> seconds; ValueError says what to write."""
    match = _AGE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"'{text}' is not an age; write e.g. 36h, 90m, 2d or 3600s")
    return float(match.group(1)) * _AGE_UNITS[(match.group(2) or "s").lower()]


@dataclass(frozen=True)
class Thresholds:
    warn_age_s: float = 26 * 3600  # a nightly job missed once
    max_age_s: float = 36 * 3600
    max_unplaced: float = 0.05


@dataclass(frozen=True)
class Verdict:
    state: int
    line: str


def unknown(message: str) -> Verdict:
    return Verdict(UNKNOWN, f"CONNECTOR UNKNOWN - {_shorten(message, 300)}")


def check_ledger(
    load_config: Callable[[], Config],
    *,
    warn_age: str,
    max_age: str,
    max_unplaced: str | None,
    now: datetime,
) -> Verdict:
    """The verdict on the configured ledger; whatever goes wrong is UNKNOWN, never a traceback.

    ``max_unplaced`` None: the config's ``[sync] max_unplaced``, the share a sync warns about;
    ``now``: the moment ages are measured from (the CLI's clock).
    """
    try:
        limits_ages = parse_age(warn_age), parse_age(max_age)
        share = parse_share(max_unplaced) if max_unplaced is not None else None
        config = load_config()
        limits = Thresholds(*limits_ages, config.max_unplaced if share is None else share)
        with Ledger.open_readonly(config.ledger_path) as ledger:
            return assess(ledger, load_mappings(config.mappings_dir), now, limits)
    except ValueError as exc:
        return unknown(f"--max-age, --warn-age or --max-unplaced: {exc}")
    except ConnectorError as exc:
        return unknown(exc.message)
    except Exception as exc:  # the plugin contract: one line and exit 3, even for a bug
        log.debug("check failed", exc_info=True)
        return unknown(f"{type(exc).__name__}: {exc}")


def assess(ledger: Ledger, mappings: Mappings, at: datetime, limits: Thresholds) -> Verdict:
    states: list[int] = []
    facts: list[str] = []
    perf: list[str] = []

    last_ok = ledger.runs.last("ok")
    if last_ok is None:
        states.append(CRITICAL)
        facts.append("no successful sync in the ledger yet")
        perf.append(f"age=U;{limits.warn_age_s:.0f};{limits.max_age_s:.0f};0")
    else:
        age = max(0.0, (at - _when(last_ok)).total_seconds())
        text = f"last good sync {_ago(age)} (#{last_ok['id']}, {last_ok['mode']})"
        if age > limits.max_age_s:
            states.append(CRITICAL)
            text += f", more than {_ago(limits.max_age_s, suffix=False)}"
        elif age > limits.warn_age_s:
            states.append(WARNING)
            text += f", more than {_ago(limits.warn_age_s, suffix=False)}"
        facts.append(text)
        perf.append(f"age={age:.0f}s;{limits.warn_age_s:.0f};{limits.max_age_s:.0f};0")

    failed = _last_finished_failed(ledger)
    if failed is not None:
        states.append(WARNING)
        error = (failed["error"] or "no reason recorded").splitlines()[0]
        facts.append(f"last run #{failed['id']} failed: {_shorten(error, 100)}")
    perf.append(f"last_failed={1 if failed else 0};0;;0;1")

    unplaced, active = unplaced_counts(ledger)  # counted as the sync's warning counts them
    share = unplaced / active if active else 0.0
    text = f"{unplaced} of {active} active people in no department ({format_share(share)})"
    if share > limits.max_unplaced:
        states.append(WARNING)
        text += f", more than {format_share(limits.max_unplaced)}"
    facts.append(text)
    perf.append(f"unplaced={round(share, 4):g};{limits.max_unplaced:g};;0;1")

    if last_ok is not None:
        refs = mappings.course_refs()
        courses = ledger.courses.seen_since(last_ok["id"])  # every run records the whole list
        missing = [str(ref) for ref in refs if not any(ref.matches(c) for c in courses)]
        if missing:
            states.append(WARNING)
            names = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            facts.append(f"{len(missing)} of {len(refs)} mapped courses missing in Moodle: {names}")
        else:
            facts.append(f"all {len(refs)} mapped courses in Moodle")
        perf.append(f"missing_courses={len(missing)};0;;0;{len(refs)}")

    state = max(states, default=OK)
    return Verdict(state, f"CONNECTOR {STATE_NAMES[state]} - {'; '.join(facts)} | {' '.join(perf)}")


def _last_finished_failed(ledger: Ledger) -> dict[str, Any] | None:
    run = ledger.runs.last_finished()
    return run if run is not None and run["outcome"] == "failed" else None


def _when(run: dict[str, Any]) -> datetime:
    stamp = datetime.fromisoformat(run["finished_at"] or run["started_at"])
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _ago(seconds: float, *, suffix: bool = True) -> str:
    if seconds < 7200:
        text = f"{int(seconds // 60)} min"
    elif seconds < 72 * 3600:
        text = f"{int(seconds // 3600)} h"
    else:
        text = f"{int(seconds // 86400)} days"
    return text + " ago" if suffix else text


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split()).replace("|", "/")  # '|' would start the performance data
    return text if len(text) <= limit else text[: limit - 3] + "..."
