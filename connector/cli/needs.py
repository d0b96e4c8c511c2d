"""`connector needs`: the yearly needs analysis, its saved versions, and the declared needs behind it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from connector.cli.app import config_of, format_option, main, now_of
from connector.cli.output import echo_rows, echo_warnings
from connector.cli.reports import open_for_reading
from connector.errors import UsageError
from connector.i18n import _, format_day, format_moment, ngettext
from connector.ledger.needs import Needs
from connector.reports import columns

if TYPE_CHECKING:
    from connector.config import Config
    from connector.ledger import Ledger
    from connector.mapping import Mappings


def _year_of(ctx: click.Context, year: int | None) -> int:
    return year if year is not None else now_of(ctx).year


year_option = click.option("--year", type=click.IntRange(2000, 2100), help="The year (default: this year).")


@main.group(invoke_without_command=True)
@year_option
@click.option("--department", help="A department id or name; shows it and its subtree.")
@format_option()
@click.option("--save", is_flag=True, help="Freeze the analysis in the ledger as a new version of the year.")
@click.option("--list", "list_saved", is_flag=True, help="List the saved analyses.")
@click.pass_context
def needs(
    ctx: click.Context, year: int | None, department: str | None, fmt: str, save: bool, list_saved: bool
) -> None:
    """Who needs which training in a year: per department x requirement, why, and the course.

    Needs are the gaps the last sync found (missing, expired, expiring before the end of the year,
    newcomers in grace) and the needs people declared (`connector needs survey`, `connector needs
    import`)."""
    if ctx.invoked_subcommand is not None:
        return
    if save and list_saved:
        raise UsageError(_("--save and --list do not go together"), hint=_("save first, then list"))
    if list_saved:
        with open_for_reading(ctx) as (ledger, _mappings):
            echo_rows(ledger.needs.analyses(), fmt, columns.NEEDS_ANALYSES)
        return
    wanted = _year_of(ctx, year)
    if save:
        if department:
            raise UsageError(_("--save keeps the whole analysis; leave out --department"))
        _save(ctx, wanted)
        return
    # what an analysis is read from, checked beside the work (print_needs waits for the verdict)
    with open_for_reading(ctx, checking=Needs.tables_read()) as (ledger, mappings):
        print_needs(ledger, mappings, wanted, fmt, department)


def print_needs(
    ledger: Ledger,
    mappings: Mappings,
    year: int,
    fmt: str,
    department: str | None = None,
    short: bool = False,
) -> None:
    from connector.needs.view import current_needs, needs_rows, totals
    from connector.reports.views import _department_filter

    as_of, found = current_needs(ledger, mappings, year, _department_filter(mappings, department))
    groups, persons = needs_rows(
        ledger, mappings, year, found, as_of, department, people_listed=fmt == "json"
    )
    ledger.require_sound()
    if fmt == "csv":
        echo_rows(persons, fmt, columns.NEEDS)
        return
    if fmt == "json":
        echo_rows(groups, fmt, columns.NEEDS)
        return
    click.echo(
        _("Needs analysis {year} (statuses of the sync of {as_of})").format(
            year=year, as_of=format_day(as_of)
        )
    )
    shown = columns.NEEDS if not short else columns.Columns(table=columns.NEEDS.table[:-1])
    echo_rows(groups, fmt, shown)
    total = totals(groups)
    people = len({p["username"] for p in persons})
    click.echo(
        "\n"
        + ngettext(
            "{people} person needs training: {needs} needs ({missing} missing, {expired} expired, "
            "{expiring} expiring by {year}-12-31, {grace} newcomers, {declared} declared)",
            "{people} people need training: {needs} needs ({missing} missing, {expired} expired, "
            "{expiring} expiring by {year}-12-31, {grace} newcomers, {declared} declared)",
            people,
        ).format(
            people=people,
            needs=total["needs"],
            missing=total["missing"],
            expired=total["expired"],
            expiring=total["expiring"],
            year=year,
            grace=total["grace"],
            declared=total["declared"],
        )
    )


def _open_to_write(ctx: click.Context) -> tuple[Ledger, Mappings]:
    from connector.ledger import Ledger
    from connector.mapping import load_mappings

    config = config_of(ctx)
    mappings = load_mappings(config.mappings_dir)
    return Ledger.open(config.ledger_path, create=False, group=config.ledger_group), mappings


def _save(ctx: click.Context, year: int) -> None:
    from connector.needs.analysis import as_rows
    from connector.needs.view import current_needs

    ledger, mappings = _open_to_write(ctx)
    with ledger:
        as_of, found = current_needs(ledger, mappings, year)
        previous = ledger.needs.latest(year)
        with ledger.transaction():
            saved = ledger.needs.save(year, as_of, as_rows(found), now=now_of(ctx))
    line = _(
        "saved the needs analysis of {year} as version {version}: {people} people, {needs} needs "
        "(statuses of {day})"
    ).format(
        year=year,
        version=saved["version"],
        people=saved["people"],
        needs=saved["needs"],
        day=format_day(as_of),
    )
    if previous is not None:
        line += _("; it supersedes version {version} saved {moment}, which is kept").format(
            version=previous["version"], moment=format_moment(previous["saved_at"])
        )
    click.echo(line)


@needs.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--source", help='Where the needs were found, for lines without a source column (e.g. "interviews").'
)
@click.pass_context
def import_needs(ctx: click.Context, file: Path, source: str | None) -> None:
    """Import declared needs from a CSV file: username or idnumber, area, year, source.

    The whole file or nothing: every problem is listed with its line. Importing a file again
    replaces what the same source declared for the same year."""
    from connector.needs.declared import read_csv

    ledger, mappings = _open_to_write(ctx)
    with ledger:
        found = read_csv(
            file, mappings, ledger.people.by_username, ledger.people.by_idnumber, default_source=source
        )
        keys = sorted({(n.year, n.source) for n in found})
        with ledger.transaction():
            for year, where in keys:
                ledger.needs.replace_source(
                    year, where, [n for n in found if (n.year, n.source) == (year, where)], now=now_of(ctx)
                )
    people = len({n.user_id for n in found})
    declared = len(
        {(n.user_id, n.area, n.year, n.source) for n in found}
    )  # an area may name two requirements
    years = ", ".join(sorted({str(y) for y, _ in keys}))
    click.echo(
        _("imported {declared} declared needs of {people} people for {years} from {file}").format(
            declared=declared, people=people, years=years, file=file
        )
    )


@needs.command("survey")
@year_option
@click.pass_context
def survey(ctx: click.Context, year: int | None) -> None:
    """Read the needs survey (the Moodle Feedback of [needs] feedback_cmid) into the register.

    Reading it again replaces what it said before for the same year."""
    config = config_of(ctx)
    if config.needs_feedback_cmid is None:
        raise UsageError(
            _("no needs survey configured"),
            hint=_(
                "set [needs] feedback_cmid (the number in the Feedback's address, "
                "view.php?id=N) and feedback_course in connector.toml"
            ),
        )
    year = _year_of(ctx, year)
    ledger, mappings = _open_to_write(ctx)
    with ledger:
        line = read_survey(config, ledger, mappings, year, now_of(ctx))
    click.echo(line)


def read_survey(
    config: Config, ledger: Ledger, mappings: Mappings, year: int, now: datetime, *, warn: bool = True
) -> str:
    """Read the configured needs survey into the register (replacing what it said before for the
    year); warns about options that name no requirement; returns the line that says what was read."""
    from connector.moodle.client import MoodleClient
    from connector.moodle.feedback import FeedbackApi
    from connector.needs.declared import from_survey

    assert config.needs_feedback_cmid is not None
    with MoodleClient(config.client_settings()) as client:
        api = FeedbackApi(client)
        found = api.survey(config.needs_feedback_course, cmid=config.needs_feedback_cmid)
        answers = api.answers(found)
    declared, unmapped = from_survey(answers, config.needs_feedback_question, year, mappings)
    erased = ledger.suppressions.suppressed_among({n.user_id for n in declared})
    declared = [n for n in declared if n.user_id not in erased]
    with ledger.transaction():
        ledger.needs.replace_source(year, f"feedback cmid {found.cmid}", declared, now=now)
    if warn:
        echo_warnings(
            _(
                "the survey option '{option}' names no requirement "
                "(add it to a requirement's needs_areas to count it)"
            ).format(option=option)
            for option in unmapped
        )
    people = len({n.user_id for n in declared})
    count = len({(n.user_id, n.area) for n in declared})
    return _("read '{name}': {answers} answers, {count} declared needs of {people} people for {year}").format(
        name=found.name, answers=len(answers.responses), count=count, people=people, year=year
    )
