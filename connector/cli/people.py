"""Read commands about people: `person` (one person's statuses, evidence, history) and `unplaced`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from connector.cli.app import config_of, format_option, main
from connector.cli.reports import open_for_reading
from connector.i18n import _, format_day, language, ngettext
from connector.reports import columns
from connector.reports.formats import render_csv, render_json, render_table, terminal_safe
from connector.reports.words import detail_words, status_word


@main.command()
@click.argument("username")
@format_option()
@click.pass_context
def person(ctx: click.Context, username: str, fmt: str) -> None:
    """One person's requirements, statuses, evidence and history."""
    from connector.ledger.people import People
    from connector.reports.views import person_view

    # one person's rows: the tables they are read from are checked beside, not the whole file
    with open_for_reading(ctx, checking=People.tables_read_for_one()) as (ledger, mappings):
        view = person_view(ledger, mappings, username)
    if fmt == "json":
        click.echo(json.dumps(view, ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        click.echo(render_csv(view["statuses"], columns.PERSON_STATUSES.csv))
        return
    state = _("active") if view["active"] else (_("deleted") if view["deleted"] else _("suspended"))
    idnumber = view["idnumber"] or _("no idnumber")
    click.echo(terminal_safe(f"{view['fullname']} ({view['username']}, {idnumber}), {state}"))
    where = view["department_name"] or _("unplaced")
    if view["organisation"] and view["organisation"] != view["department_id"]:
        where += f" ({view['organisation_name']})"
    click.echo(
        terminal_safe(
            _("department: {department}; position: {position}").format(
                department=where, position=view["position"] or "-"
            )
        )
    )
    titles = {r.id: r.title_in(language()) for r in mappings.requirements}
    statuses = [
        dict(
            s,
            title=titles.get(s["requirement"], s["title"]),
            status=status_word(s["status"]),
            valid_until=format_day(s["valid_until"]),
            since=format_day(s["since"]),
            due=format_day(s["due"]),
            detail=detail_words(s["detail"]),
        )
        for s in view["statuses"]
    ]
    history = [
        dict(h, on=format_day(h["on"]), **{"from": status_word(h["from"]), "to": status_word(h["to"])})
        for h in view["history"]
    ]
    click.echo("\n" + _("Requirements"))
    click.echo(render_table(statuses, columns.PERSON_STATUSES.table))
    click.echo("\n" + _("Evidence"))
    click.echo(render_table(view["evidence"], columns.PERSON_EVIDENCE.table))
    click.echo("\n" + _("History"))
    click.echo(render_table(history, columns.PERSON_HISTORY.table))


@main.command()
@format_option()
@click.pass_context
def unplaced(ctx: click.Context, fmt: str) -> None:
    """Active people in no department: each spelling, how many use it, and the alias line to add.

    A spelling is Moodle's institution + department profile fields, compared as the mappings do
    (case, spaces and Unicode form ignored). Placement is as of the last sync.
    """
    from connector.ledger import Ledger
    from connector.mapping import load_mappings
    from connector.reports.unplaced import fix_rows, spelling_rows, unplaced_counts, unplaced_spellings
    from connector.shares import format_share

    config = config_of(ctx)
    with Ledger.open_readonly(config.ledger_path) as ledger:
        mappings = load_mappings(config.mappings_dir)
        spellings = unplaced_spellings(ledger, mappings, config.mappings_dir)
        count, active = unplaced_counts(ledger)
    if fmt == "json":
        click.echo(render_json(spelling_rows(spellings, mappings)))
        return
    flat = fix_rows(spellings)
    if fmt == "csv":
        click.echo(render_csv(flat, columns.UNPLACED.csv))
        return
    if not spellings:
        click.echo(_("every one of the {n} active people is in a department").format(n=active))
        return
    click.echo(
        ngettext(
            "{count} of {active} active people ({share}) are in no department, "
            "under {n} spelling (as of the last sync):",
            "{count} of {active} active people ({share}) are in no department, "
            "under {n} spellings (as of the last sync):",
            len(spellings),
        ).format(count=count, active=active, share=format_share(count / active), n=len(spellings))
        + "\n"
    )
    table = [
        {  # a spelling that needs two lines shows its counts on the first only
            "people": row["people"] if row["first"] else None,
            "institution": (row["institution"] or _("(empty)")) if row["first"] else "",
            "department": (row["department"] or _("(empty)")) if row["first"] else "",
            "closest": (row["closest"] or "-") if row["first"] else "",
            "where": f'{Path(row["file"]).name}, id = "{row["entry"]}"' if row["file"] else "",
            "line": row["line"] or f"({row['note']})",
        }
        for row in flat
    ]
    click.echo(render_table(table, columns.UNPLACED.table))
    click.echo(
        "\n"
        + _(
            "Each line goes in the [[department]] entry with that id in {directory}, "
            "replacing its line of the same key; then `connector mappings check` and the next sync "
            "places these people."
        ).format(directory=config.mappings_dir)
    )
