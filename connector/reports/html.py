"""The HTML report for heads of department and the council: one self-contained file.

Two steps with one job each: :func:`build_report` gathers a :class:`ReportData` from the same rows
``status --format json`` prints (:func:`connector.reports.views.status_rows`), so the numbers are
the same by construction; :func:`render_report` turns it into HTML through a Jinja2 template with
autoescaping (every name from Moodle or the mappings is text, never markup). The file needs no
network: styles are inline and the charts are inline SVG, so it works from an e-mail attachment.

Every word a reader sees goes through ``_()`` (the template's gettext), backed by the catalogs of
:mod:`connector.i18n` in the active language; dates and shares are written the reader's way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

import jinja2

from connector.due import due_rows
from connector.durations import Duration
from connector.errors import LedgerError
from connector.i18n import _, format_day, format_percent, language, ngettext
from connector.ledger import Ledger
from connector.mapping import Mappings, Requirement
from connector.needs.view import current_needs, needs_rows
from connector.reports.views import _department_filter, status_rows
from connector.rules import StatusCounts

TREND_RUNS = 12  # past successful syncs drawn in a sparkline
DUE_WITHIN = Duration(60, "days")  # the people due in this window after the report's day
# Due rows a department's section lists, the most urgent first: a printed report of a department
# with thousands due would be hundreds of pages (800,000 rows at 100,000 people made a 300 MB
# file); the rest are counted, and `connector due` lists everyone.
DUE_ROWS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class JudgedTarget:
    kind: str  # "share" or "holders"
    required: float  # a fraction for share, a count for holders
    actual: float | None
    met: bool | None  # None: cannot be judged (nobody in scope)
    period: str | None = None  # "2026-01-01/2027-12-31"
    judged: str = ""  # the figure in words, as the status table shows it
    by: date | None = None  # appointed: the day a shortfall becomes a failure
    off_year: str | None = None  # share judged in "even" or "odd" years only, and not this one


@dataclass(frozen=True, slots=True)
class TrendPoint:
    as_of: date
    share: float | None


@dataclass(frozen=True, slots=True)
class RequirementStatus(StatusCounts):
    requirement: str
    title: str
    targets_met: bool | None
    targets: tuple[JudgedTarget, ...] = ()
    trend: tuple[TrendPoint, ...] = ()

    @property
    def counted(self) -> int:
        """The people the share is taken of: in scope, exempt people left out."""
        return self.compliant + self.expiring + self.grace + self.expired + self.missing


@dataclass(frozen=True, slots=True)
class DueRow:
    """One row of `connector due`: a person who must (re)complete a requirement by ``due_on``."""

    due_on: date
    name: str  # the full name where [privacy] personal_fields lets the ledger keep it, else the username
    requirement: str
    requirement_title: str
    status: str
    course: str


@dataclass(frozen=True, slots=True)
class NeedsRow:
    """One department x requirement row of `connector needs`: how many need it, and why."""

    requirement: str
    requirement_title: str
    needs: int
    missing: int
    expired: int
    expiring: int
    grace: int
    declared: int
    course: str


@dataclass(frozen=True, slots=True)
class DepartmentReport:
    id: str
    name: str
    organisation_name: str | None
    depth: int
    requirements: tuple[RequirementStatus, ...]
    due: tuple[DueRow, ...] = ()  # people of this department (not its subtree) due within DUE_WITHIN
    due_more: int = 0  # due rows beyond DUE_ROWS_SHOWN, not listed
    needs: tuple[NeedsRow, ...] = ()  # this department's rows of the year's needs analysis
    has_sub_departments: bool = False  # its people's rows stand under its departments below


@dataclass(frozen=True, slots=True)
class ReportData:
    as_of: date
    departments: tuple[DepartmentReport, ...]
    department_filter: str | None = None
    organisations: tuple[DepartmentReport, ...] = field(default=())  # the top of each tree shown
    due_until: date | None = None  # the last day of the due window
    needs_year: int | None = None  # None: no needs analysis to show
    needs_as_of: date | None = None  # the sync whose statuses the needs analysis is taken from


def build_report(
    ledger: Ledger, mappings: Mappings, *, as_of: date | None = None, department: str | None = None
) -> ReportData:
    """The report's data: status_rows (as `status --format json`) plus each row's trend over past runs."""
    when, rows = status_rows(ledger, mappings, as_of=as_of, department=department)
    trends = _trends(ledger, when)
    titles = {r.id: r.title_in(language()) for r in mappings.requirements}
    requirements = {r.id: r for r in mappings.requirements}
    departments: list[DepartmentReport] = []
    for row in rows:
        if not departments or departments[-1].id != row["department"]:
            departments.append(
                DepartmentReport(
                    row["department"], row["department_name"], row["organisation_name"], row["depth"], ()
                )
            )
        key = (row["department"], row["requirement"])
        status = RequirementStatus(
            **{f.name: row[f.name] for f in fields(StatusCounts)},
            requirement=row["requirement"],
            title=titles.get(row["requirement"], row["requirement_title"]),
            targets_met=row["targets_met"],
            targets=_judged_targets(row["targets"], requirements.get(row["requirement"]), when),
            trend=_with_current(trends.get(key, []), when, row["share"]),
        )
        last = departments[-1]
        departments[-1] = DepartmentReport(
            last.id, last.name, last.organisation_name, last.depth, last.requirements + (status,)
        )
    shown = {d.id for d in departments}
    due = _due(ledger, mappings, when, shown, titles)
    needs_as_of, needs = _needs(ledger, mappings, when.year, department, titles)
    departments = [
        replace(
            d,
            due=due.get(d.id, ((), 0))[0],
            due_more=due.get(d.id, ((), 0))[1],
            needs=needs.get(d.id, ()),
            has_sub_departments=i + 1 < len(departments) and departments[i + 1].depth > d.depth,
        )
        for i, d in enumerate(departments)
    ]
    top = min((d.depth for d in departments), default=0)
    return ReportData(
        as_of=when,
        departments=tuple(departments),
        department_filter=department,
        organisations=tuple(d for d in departments if d.depth == top),
        due_until=DUE_WITHIN.after(when),
        needs_year=when.year if needs_as_of else None,
        needs_as_of=needs_as_of,
    )


def _judged_targets(
    targets: list[dict[str, Any]], requirement: Requirement | None, as_of: date
) -> tuple[JudgedTarget, ...]:
    """The row's targets, with what the words need from the mappings: an appointment's deadline, and
    whether a share target is left unjudged because this is not one of its years."""
    appointed = [t for t in requirement.targets if t.kind == "appointed"] if requirement else []
    off = [t for t in requirement.targets if t.kind == "share" and t.years != "all"] if requirement else []
    out = []
    for t in targets:
        extra: dict[str, Any] = {}
        if t["kind"] == "appointed":
            same = [a for a in appointed if a.minimum == t["required"]]
            extra["by"] = same[0].by if same else None
        elif t["kind"] == "share" and t["actual"] is None and t["met"] is None:
            for s in off:
                if s.minimum == t["required"] and (as_of.year % 2 == 0) != (s.years == "even"):
                    extra["off_year"] = s.years
        out.append(JudgedTarget(**t, **extra))
    return tuple(out)


def _due(
    ledger: Ledger, mappings: Mappings, as_of: date, departments: set[str], titles: dict[str, str]
) -> dict[str | None, tuple[tuple[DueRow, ...], int]]:
    """`connector due`'s rows for ``as_of`` and the next DUE_WITHIN, per department: the first
    DUE_ROWS_SHOWN, and how many more."""
    due = due_rows(
        ledger, mappings, as_of, DUE_WITHIN, departments=departments, first_per_department=DUE_ROWS_SHOWN
    )
    return {
        department: (
            tuple(
                DueRow(
                    due_on=date.fromisoformat(r["due_on"]),
                    name=r["fullname"] or r["username"] or "",
                    requirement=r["requirement"],
                    requirement_title=titles.get(r["requirement"], r["requirement_title"]),
                    status=r["status"],
                    course=r["course"],
                )
                for r in shown
            ),
            more,
        )
        for department, (shown, more) in due.by_department(DUE_ROWS_SHOWN).items()
    }


def _needs(
    ledger: Ledger, mappings: Mappings, year: int, department: str | None, titles: dict[str, str]
) -> tuple[date | None, dict[str, tuple[NeedsRow, ...]]]:
    """`connector needs --year YEAR`'s rows per department (None and nothing before the first sync)."""
    try:
        as_of, found = current_needs(ledger, mappings, year, _department_filter(mappings, department))
    except LedgerError:
        return None, {}
    groups, _ = needs_rows(ledger, mappings, year, found, as_of, department, people_named=False)
    out: dict[str, list[NeedsRow]] = {}
    for g in groups:
        row = NeedsRow(
            requirement=g["requirement"],
            requirement_title=titles.get(g["requirement"], g["requirement_title"]),
            needs=g["needs"],
            missing=g["missing"],
            expired=g["expired"],
            expiring=g["expiring"],
            grace=g["grace"],
            declared=g["declared"],
            course=g["course"],
        )
        out.setdefault(g["department"] or "", []).append(row)
    return as_of, {k: tuple(v) for k, v in out.items()}


def _trends(ledger: Ledger, until: date) -> dict[tuple[str, str], list[TrendPoint]]:
    """Share per (department, requirement) in the last successful syncs on or before ``until``."""
    runs = [r for r in ledger.runs.recent(10 * TREND_RUNS) if r["outcome"] == "ok"]
    runs = [r for r in runs if date.fromisoformat(r["as_of"]) <= until][:TREND_RUNS]
    trends: dict[tuple[str, str], list[TrendPoint]] = {}
    for run in reversed(runs):  # oldest first
        for r in ledger.rollups.for_run(run["id"]):
            point = TrendPoint(date.fromisoformat(run["as_of"]), r["share"])
            trends.setdefault((r["department_id"], r["requirement_id"]), []).append(point)
    return trends


def _with_current(points: list[TrendPoint], when: date, share: float | None) -> tuple[TrendPoint, ...]:
    """The stored runs, the report's own day last (a recomputed --as-of day replaces that day's run)."""
    earlier = [p for p in points if p.as_of < when]
    return tuple(earlier[-(TREND_RUNS - 1) :] + [TrendPoint(when, share)])


# -- rendering --------------------------------------------------------------------------------------
def percent(value: float | None) -> str:
    """A share in the active language, kept on one line: "42 %" (cs, sl), "42%" (en)."""
    if value is None:
        return "–"
    return format_percent(value, nbsp=True)


def long_date(day: date) -> str:
    """26. 11. 2026 (cs, sl), 26 Nov 2026 (en), kept on one line."""
    return format_day(day, nbsp=True)


def _period_words(period: str | None) -> str:
    if not period:
        return ""
    start, end = (date.fromisoformat(p) for p in period.split("/"))
    if start.year == end.year:
        return str(start.year)
    if start.month == 1 and end.month == 12:
        return f"{start.year}–{end.year}"
    return f"{long_date(start)} – {long_date(end)}"


@dataclass(frozen=True, slots=True)
class Segment:
    key: str
    count: int
    x: float  # 0..100, percent of the bar's width
    width: float


SEGMENT_KEYS = ("compliant", "expiring", "grace", "expired", "missing")


def bar_segments(status: RequirementStatus) -> list[Segment]:
    """The stacked bar: valid people first (compliant, expiring), so the target line reads against them."""
    total = status.counted
    if not total:
        return []
    segments, x = [], 0.0
    for key in SEGMENT_KEYS:
        count = getattr(status, key)
        width = 100.0 * count / total
        if count:
            segments.append(Segment(key, count, round(x, 3), round(width, 3)))
        x += width
    return segments


def sparkline_points(trend: Sequence[TrendPoint], width: float = 120, height: float = 28) -> str:
    """SVG polyline points for the shares over time (0 % at the bottom, 100 % at the top)."""
    known = [(i, p.share) for i, p in enumerate(trend) if p.share is not None]
    if not known:
        return ""
    step = width / max(len(trend) - 1, 1)
    pad = 3.0

    def xy(i: int, share: float) -> str:
        return f"{round(i * step, 2)},{round(pad + (height - 2 * pad) * (1 - share), 2)}"

    return " ".join(xy(i, s) for i, s in known)


def _environment(gettext: Callable[[str], str]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("connector.reports", "templates"),
        autoescape=True,  # every name is text: <script> in a name shows as <script>
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["percent"] = percent
    env.filters["long_date"] = long_date
    env.filters["period"] = _period_words
    env.globals.update(bar_segments=bar_segments, sparkline_points=sparkline_points)
    return env


def render_report(data: ReportData, *, gettext: Callable[[str], str] = _) -> str:
    """The report as one HTML document (UTF-8 text), in the active language (connector.i18n)."""
    template = _environment(gettext).get_template("report.html.j2")
    context: dict[str, Any] = {"data": data, "lang": language(), "segment_keys": SEGMENT_KEYS}
    return template.render(context)
