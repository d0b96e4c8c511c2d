"""Read commands over the ledger's roll-ups and runs: `status`, `export`, `report`, `runs`."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from connector.cli.app import as_of_option, config_of, format_option, main
from connector.cli.output import Written, echo_rows, write_private
from connector.errors import UsageError
from connector.i18n import (
    LANGUAGES,
    _,
    adopt_mappings_language,
    format_day,
    language,
    ngettext,
    set_language,
    set_zone,
)
from connector.reports import columns
from connector.reports.formats import CSV_DIALECTS, csv_lines, json_lines
from connector.reports.words import run_word, target_words

if TYPE_CHECKING:
    from connector.ledger import Ledger
    from connector.mapping import Mappings


dialect_option = click.option(
    "--dialect",
    type=click.Choice(CSV_DIALECTS),
    default="plain",
    show_default=True,
    help="CSV flavour: excel-cs is UTF-8 with BOM, ';' and decimal comma, for Czech/Slovenian spreadsheets.",
)


@contextmanager
def open_for_reading(
    ctx: click.Context, *, checking: Sequence[str] | None = None, recomputing: bool | None = None
) -> Iterator[tuple[Ledger, Mappings]]:
    """The ledger read-only, checked sound, with the mappings; ledger faults as LedgerError.

    ``checking``: the tables the command reads are checked beside it (it may add more with
    ``ledger.check_in_background``), and the command must call ``ledger.require_sound()`` before
    it shows anything: a damaged page would otherwise be shown as numbers. A command that fails
    meanwhile is told the file is damaged when it is: that explains any failure better than its
    symptom. ``recomputing``: the command reads one day's roll-ups or statuses, as stored (False)
    or recomputed (True); what they are read from is checked too, with what the mappings'
    targets count once the mappings are loaded. Without either the whole file is checked first."""
    from connector.ledger import Ledger, ledger_error
    from connector.ledger.rollups import Rollups
    from connector.mapping import load_mappings

    config = config_of(ctx)
    if recomputing is not None:
        checking = (*Rollups.tables_read(recomputed=recomputing), *(checking or ()))
    try:
        ledger = Ledger.open_readonly(config.ledger_path)  # no ledger: say that first
        with ledger:
            if checking is None:
                ledger.require_sound()
            else:
                ledger.check_in_background(checking)
            try:
                mappings = load_mappings(config.mappings_dir)
                adopt_mappings_language(mappings.language)
                set_zone(mappings.timezone)
                if recomputing is not None:
                    from connector.evaluation import rollup_tables  # imported while the check runs

                    ledger.check_in_background(rollup_tables(mappings, recomputed=recomputing))
                yield ledger, mappings
            except Exception:
                ledger.require_sound()
                raise
            ledger.require_sound()
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        raise ledger_error(exc, config.ledger_path) from None


@main.command()
@click.option("--department", help="A department id or name; shows it and its subtree.")
@click.option("--requirement", help="A requirement id.")
@as_of_option
@format_option()
@dialect_option
@click.pass_context
def status(
    ctx: click.Context,
    department: str | None,
    requirement: str | None,
    as_of: date | None,
    fmt: str,
    dialect: str,
) -> None:
    """Per department x requirement: in scope, compliant, expiring, expired, missing, share, targets.

    Without --as-of it shows the last successful sync; with it, recomputes from the evidence.
    """
    with open_for_reading(ctx, recomputing=as_of is not None) as (ledger, mappings):
        from connector.reports.views import departments_named

        named = departments_named(mappings, department) if department else []
        print_status(
            ledger, mappings, fmt, dialect, as_of=as_of, department=department, requirement=requirement
        )
        if len(named) > 1:  # two towns' "Odbor informatiky": show both, each with its organisation
            click.echo(
                _(
                    "note: {count} departments are named '{name}' ({ids}); showing them all; "
                    "pass an id to see one"
                ).format(count=len(named), name=department, ids=", ".join(named)),
                err=True,
            )


def print_status(
    ledger: Ledger, mappings: Mappings, fmt: str, dialect: str = "plain", **filters: Any
) -> None:
    from connector.reports.views import placement_problems, status_rows, with_tree_names

    when, rows = status_rows(ledger, mappings, **filters)
    ledger.require_sound()
    if fmt != "table":
        echo_rows(rows, fmt, columns.STATUS, dialect)
        return
    click.echo(_("Compliance as of {date}").format(date=format_day(when)))
    for row in rows:  # "9 % of 50 %, 2026-2027"; a ledger synced before the words existed has none
        row["targets_judged"] = "; ".join(
            target_words(t["judged"]) for t in row["targets"] if t.get("judged")
        )
    titles = {r.id: r.title_in(language()) for r in mappings.requirements}
    shown = [dict(row, title=titles.get(row["requirement"], "")) for row in with_tree_names(rows, mappings)]
    echo_rows(shown, fmt, columns.STATUS)
    _echo_placement_footer(placement_problems(ledger))


def _echo_placement_footer(problems: dict[str, int]) -> None:
    if problems["unplaced"]:
        n = problems["unplaced"]
        click.echo(
            "\n"
            + ngettext(
                "{n} active person matches no department and counts in none of the rows above: "
                "`connector unplaced` lists their spellings and the alias lines that place them",
                "{n} active people match no department and count in none of the rows above: "
                "`connector unplaced` lists their spellings and the alias lines that place them",
                n,
            ).format(n=n)
        )
    if problems["conflicts"]:
        n = problems["conflicts"]
        click.echo(
            ngettext(
                "{n} active person matches departments on different branches; `connector sync` names them",
                "{n} active people match departments on different branches; `connector sync` names them",
                n,
            ).format(n=n)
        )


@main.command()
@as_of_option
@format_option(default="csv", formats=("csv", "json", "xlsx"))
@dialect_option
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
@click.pass_context
def export(ctx: click.Context, as_of: date | None, fmt: str, dialect: str, output: Path | None) -> None:
    """Every person x requirement, for HR and other tools (CSV, JSON or an Excel workbook).

    xlsx has two sheets: the statuses per person and the department summary, with typed cells.
    """
    from connector.reports.views import export_rows, status_rows

    if fmt == "xlsx" and output is None:
        raise UsageError(_("--format xlsx needs a file to write to"), hint=_("add -o FILE.xlsx"))
    with open_for_reading(ctx) as (ledger, mappings):
        rows = export_rows(ledger, mappings, as_of=as_of)[1]
        # streamed from the ledger onto the file: flat memory at any headcount
        _stream(rows, fmt, dialect, output, lambda: status_rows(ledger, mappings, as_of=as_of)[1])


def _stream(
    rows: Iterable[dict[str, Any]],
    fmt: str,
    dialect: str,
    output: Path | None,
    summary: Callable[[], list[dict[str, Any]]],
) -> None:
    """The export's rows onto ``output`` (or stdout) as they are read; xlsx adds the ``summary``
    sheet."""

    def rendered(rows: Iterable[dict[str, Any]]) -> Iterable[str] | bytes:
        if fmt == "xlsx":
            from connector.reports.xlsx import (
                EXPORT_SHEET_COLUMNS,
                STATUS_SHEET_COLUMNS,
                Sheet,
                workbook_bytes,
            )

            return workbook_bytes(
                [
                    Sheet(_("statuses"), EXPORT_SHEET_COLUMNS, rows),
                    Sheet(_("departments"), STATUS_SHEET_COLUMNS, summary()),
                ]
            )
        if fmt == "json":
            return itertools.chain(json_lines(rows), "\n")
        return csv_lines(rows, columns.EXPORT.csv, dialect)

    if output is None:
        content = rendered(rows)
        assert not isinstance(content, bytes)  # xlsx was refused without -o
        for piece in content:
            click.echo(piece, nl=False)
        return
    with Written(rows, output) as counted:
        write_private(output, rendered(counted))
    click.echo(
        ngettext("wrote {n} row to {path}", "wrote {n} rows to {path}", counted.count).format(
            n=counted.count, path=output
        ),
        err=True,
    )


@main.command()
@click.option(
    "--output", "-o", required=True, type=click.Path(path_type=Path), help="The HTML file to write."
)
@as_of_option
@click.option("--department", help="A department id or name; reports it and its subtree.")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    help="Language of the report (default: the connector's, see the global --lang).",
)
@click.pass_context
def report(
    ctx: click.Context, output: Path, as_of: date | None, department: str | None, lang: str | None
) -> None:
    """One self-contained HTML report per organisation and department, for reading and printing.

    The numbers are those of `status --format json`; charts are inline SVG, so the file needs no
    network (an e-mail attachment or a USB stick will do). Prints one department per A4 page.
    """
    from connector.ledger.needs import Needs

    if lang:
        set_language(lang, explicit=True)
    # the roll-ups, their trend, who is due and the needs analysis: checked beside the work, the
    # verdict before the file is written (`write_report`)
    with open_for_reading(ctx, checking=Needs.tables_read(), recomputing=True) as (ledger, mappings):
        write_report(ledger, mappings, output, as_of=as_of, department=department)
    click.echo(_("wrote the report to {path}").format(path=output), err=True)


def write_report(
    ledger: Ledger,
    mappings: Mappings,
    output: Path,
    *,
    as_of: date | None = None,
    department: str | None = None,
) -> None:
    from connector.reports.html import build_report, render_report

    data = build_report(ledger, mappings, as_of=as_of, department=department)
    ledger.require_sound()
    write_private(output, render_report(data))


@main.command()
@click.option("--limit", default=10, show_default=True, help="How many recent runs to show.")
@format_option()
@click.pass_context
def runs(ctx: click.Context, limit: int, fmt: str) -> None:
    """Recent sync runs with their outcome, counts and errors."""
    from connector.ledger import Ledger

    with Ledger.open_readonly(config_of(ctx).ledger_path) as ledger:
        rows = ledger.runs.recent(limit)
    for row in rows:
        row["calls"] = row["counts"].get("calls")
        row["new"] = row["counts"].get("evidence_new")
    if fmt == "table":  # the words in the reader's language; CSV and JSON keep the ledger's
        rows = [dict(row, outcome=run_word(row["outcome"]), mode=run_word(row["mode"])) for row in rows]
    echo_rows(rows, fmt, columns.RUNS)
