"""Planning commands: `due` (who must train, by when, in which course) and `forecast` (the
roll-ups at the end of each coming quarter if nobody trains)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from connector.cli.app import as_of_option, config_of, format_option, main, now_of
from connector.cli.output import Written, echo_rows, write_private
from connector.cli.reports import dialect_option, open_for_reading
from connector.durations import HINT, Duration, parse_duration
from connector.errors import UsageError
from connector.i18n import _, format_day, ngettext
from connector.reports import columns
from connector.reports.formats import csv_lines, json_lines, render_csv
from connector.reports.words import duration_words, status_word

if TYPE_CHECKING:
    from connector.ledger import Ledger
    from connector.mapping import Mappings


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> Duration:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; {HINT} (or 60d)") from None


def _today(ctx: click.Context, mappings: Mappings) -> date:
    return now_of(ctx).astimezone(ZoneInfo(mappings.timezone)).date()


@main.command()
@click.option(
    "--within",
    default="60d",
    show_default=True,
    callback=_duration,
    help='How far ahead: "60d", "90 days", "3 months".',
)
@click.option("--department", help="A department id or name; shows it and its subtree.")
@click.option("--requirement", help="A requirement id.")
@click.option("--limit", type=click.IntRange(min=1), help="Show only the first N rows (the most urgent).")
@as_of_option
@format_option(formats=("table", "csv", "json", "xlsx"))
@dialect_option
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
@click.pass_context
def due(
    ctx: click.Context,
    within: Duration,
    department: str | None,
    requirement: str | None,
    limit: int | None,
    as_of: date | None,
    fmt: str,
    dialect: str,
    output: Path | None,
) -> None:
    """Who must complete which requirement by when: missing, expired, in grace, or valid only
    until a day within the window; sorted by due date, with the course to take.

    The CSV (with full names and e-mail addresses as far as [privacy] personal_fields lets the
    ledger keep them) is ready for a mail merge. Recomputed from the ledger's evidence for today
    (or --as-of), imported evidence included.
    """
    from connector.due import due_rows
    from connector.reports.views import _check_as_of, _check_requirement, _department_filter

    if fmt == "xlsx" and output is None:
        raise UsageError(_("--format xlsx needs a file to write to"), hint=_("add -o FILE.xlsx"))
    config = config_of(ctx)
    # the statuses of a day come from what its roll-ups are recomputed from: those tables are
    # checked beside the work (the verdict comes before any row is shown: `open_for_reading`)
    with open_for_reading(ctx, recomputing=True) as (ledger, mappings):
        when = as_of or _today(ctx, mappings)
        _check_as_of(ledger, when)
        departments = _department_filter(mappings, department)
        _check_requirement(mappings, requirement)
        rows = due_rows(
            ledger,
            mappings,
            when,
            within,
            departments=departments,
            requirement=requirement,
            moodle_url=config.moodle_url,
        )
    shown = rows[:limit] if limit else rows
    if output is not None or fmt == "xlsx":
        _write(output, fmt, dialect, shown)
        return
    if fmt != "table":
        echo_rows(shown, fmt, columns.DUE, dialect)
        return
    echo_due_table(rows, shown, when, within)


def print_due(ledger: Ledger, mappings: Mappings, when: date, within: Duration, limit: int) -> None:
    """The due table as `connector due --limit N` prints it (`connector demo` ends with it)."""
    from connector.due import due_rows

    rows = due_rows(ledger, mappings, when, within)
    echo_due_table(rows, rows[:limit], when, within)


def echo_due_table(
    rows: Sequence[dict[str, Any]], shown: Sequence[dict[str, Any]], when: date, within: Duration
) -> None:
    horizon = within.after(when)
    if not rows:
        click.echo(
            _("nobody is due by {horizon} (within {within} of {when})").format(
                horizon=format_day(horizon), within=duration_words(within), when=format_day(when)
            )
        )
        return
    people = len({r["username"] for r in rows})
    more = _("; the first {n} shown").format(n=len(shown)) if len(shown) < len(rows) else ""
    click.echo(
        _("Due by {horizon} (within {within} of {when}): {requirements} of {persons}{more}").format(
            horizon=format_day(horizon),
            within=duration_words(within),
            when=format_day(when),
            requirements=ngettext("{n} requirement", "{n} requirements", len(rows)).format(n=len(rows)),
            persons=ngettext("{n} person", "{n} people", people).format(n=people),
            more=more,
        )
    )
    table = [dict(r, status=status_word(r["status"])) for r in shown]
    echo_rows(table, "table", columns.DUE)


def _write(output: Path | None, fmt: str, dialect: str, due: Sequence[dict[str, Any]]) -> None:
    assert output is not None
    content: str | bytes | Iterator[str]
    with Written(due, output, len(due)) as rows:
        if fmt == "xlsx":
            from connector.reports.xlsx import Column, Sheet, workbook_bytes

            kinds = {"due_on": "date", "valid_until": "date"}
            sheet_columns = [Column(key, kinds.get(key, "text")) for key in columns.DUE.csv]  # type: ignore[arg-type]
            content = workbook_bytes([Sheet(_("due"), sheet_columns, rows, len(due))])
        elif fmt == "json":
            content = itertools.chain(json_lines(rows), "\n")
        else:
            content = csv_lines(rows, columns.DUE.csv, dialect)
        write_private(output, content)
    click.echo(
        ngettext("wrote {n} row to {path}", "wrote {n} rows to {path}", len(due)).format(
            n=len(due), path=output
        ),
        err=True,
    )


@main.command()
@click.option(
    "--quarters", type=click.IntRange(1, 12), default=4, show_default=True, help="How many quarter ends."
)
@click.option("--department", help="A department id or name; shows it and its subtree.")
@as_of_option
@format_option()
@dialect_option
@click.pass_context
def forecast(
    ctx: click.Context, quarters: int, department: str | None, as_of: date | None, fmt: str, dialect: str
) -> None:
    """Per department x requirement: compliant/expiring/expired at the end of each coming quarter
    if nobody trains, and the targets that will fail first (the training budget's planning view).

    Expired counts the missing too. Recomputed from the ledger's evidence (imported included)."""
    from connector.forecast import forecast as compute
    from connector.forecast import quarter_label, wide_rows
    from connector.reports.views import _check_as_of, _department_filter, with_tree_names
    from connector.shares import format_share

    # each quarter end's roll-ups are recomputed: those tables are checked beside the work
    with open_for_reading(ctx, recomputing=True) as (ledger, mappings):
        when = as_of or _today(ctx, mappings)
        _check_as_of(ledger, when)
        departments = _department_filter(mappings, department)
        ends, rows, failures = compute(ledger, mappings, when, quarters, departments)
    order = {d.id: i for i, d in enumerate(mappings.departments)}
    rows = [r for r in rows if departments is None or r["department"] in departments]
    rows.sort(key=lambda r: (order.get(r["department"], 10**9), r["requirement"], r["quarter_end"]))
    failures = [f for f in failures if departments is None or f.department in departments]
    if fmt != "table":
        if fmt == "json":
            click.echo(
                json.dumps(
                    {
                        "as_of": when.isoformat(),
                        "quarters": rows,
                        "fails_first": [
                            {
                                "department": f.department,
                                "requirement": f.requirement,
                                "kind": f.target.kind,
                                "required": f.target.required,
                                "actual_now": f.target.actual,
                                "fails_at": f.fails_at.isoformat(),
                                "quarter": quarter_label(f.fails_at),
                                "actual_then": f.then.actual,
                            }
                            for f in failures
                        ],
                    },
                    ensure_ascii=False,
                    indent=2,
                    default=str,
                )
            )
        else:
            click.echo(render_csv(rows, columns.FORECAST.csv, dialect))
        return
    labels = [quarter_label(end) for end in ends]
    names = {d.id: d.name for d in mappings.departments}
    depth = {d.id: len(mappings.ancestors(d.id)) for d in mappings.departments}
    wide = [
        dict(
            row,
            department_name=names[row["department"]],
            organisation=mappings.organisation_of(row["department"]),
            depth=depth[row["department"]],
        )
        for row in wide_rows(rows, ends)
    ]
    click.echo(
        _(
            "Forecast as of {date} if nobody trains: compliant/expiring/expired (missing included) "
            "at the end of {first}"
        ).format(date=format_day(when), first=labels[0])
        + (f" .. {labels[-1]}" if len(labels) > 1 else "")
    )
    table = columns.Columns(table=(*columns.FORECAST.table, *((q, q) for q in labels)))
    echo_rows(with_tree_names(wide, mappings), "table", table)
    click.echo("")
    if not failures:
        click.echo(_("No target met today fails by the end of {value}.").format(value=labels[-1]))
        return
    click.echo(_("Targets met today that fail first:"))
    for f in failures:
        today = _target_words(f.target.kind, f.target.required, f.target.actual, format_share)
        then = _actual(f.then.kind, f.then.actual, format_share)
        click.echo(
            _(
                "  {quarter_label} ({fails_at}): {value} ({department}), {requirement}: "
                "{today} today, {then} then"
            ).format(
                quarter_label=quarter_label(f.fails_at),
                fails_at=f.fails_at,
                value=names[f.department],
                department=f.department,
                requirement=f.requirement,
                today=today,
                then=then,
            )
        )


def _target_words(kind: str, required: float, actual: float | None, fmt_share: Any) -> str:
    if kind == "share":
        return f"share {_actual(kind, actual, fmt_share)} of {fmt_share(required)} needed"
    return f"{_actual(kind, actual, fmt_share)} holders of {int(required)} needed"


def _actual(kind: str, actual: float | None, fmt_share: Any) -> str:
    if actual is None:
        return "not decidable"
    return str(fmt_share(actual)) if kind == "share" else str(int(actual))
