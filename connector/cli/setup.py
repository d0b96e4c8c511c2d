"""Commands that check the setup: `courses` (the mapped courses as Moodle sees them),
`mappings check` and `doctor`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from connector.cli.app import config_of, format_option, main
from connector.errors import ConnectorError
from connector.i18n import _
from connector.reports import columns
from connector.reports.formats import render_csv, render_table, terminal_safe


@main.command()
@format_option()
@click.option("--offline", is_flag=True, help="Use the ledger's copy of the course list; do not ask Moodle.")
@click.pass_context
def courses(ctx: click.Context, fmt: str, offline: bool) -> None:
    """Every mapped course as Moodle sees it, the mapping problems, and courses mapped to nothing."""
    from connector.ledger import Ledger
    from connector.mapping import load_mappings
    from connector.reports.views import courses_view

    config = config_of(ctx)
    mappings = load_mappings(config.mappings_dir)
    ledger = Ledger.open_readonly(config.ledger_path) if config.ledger_path.exists() else None
    try:
        if offline:
            if ledger is None:
                raise ConnectorError(
                    _("--offline needs a ledger from an earlier sync"),
                    hint=_("run `connector sync` first or drop --offline"),
                )
            moodle_courses = ledger.courses.all()
        else:
            from connector.moodle.api import MoodleApi
            from connector.moodle.client import MoodleClient

            with MoodleClient(config.client_settings()) as client:
                moodle_courses = MoodleApi(client).courses()
        rows, problems, unmapped = courses_view(mappings, moodle_courses, ledger)
    finally:
        if ledger is not None:
            ledger.close()
    if fmt == "json":
        click.echo(
            json.dumps(
                {"mapped": rows, "problems": problems, "unmapped": unmapped}, ensure_ascii=False, indent=2
            )
        )
        return
    if fmt == "csv":
        click.echo(render_csv(rows, columns.COURSES_MAPPED.csv))
        return
    click.echo(render_table(rows, columns.COURSES_MAPPED.table))
    click.echo("\n" + (_("Problems") if problems else _("No mapping problems.")))
    for problem in problems:
        click.echo(terminal_safe(f"  - {problem}"))  # problems quote Moodle's course names
    if unmapped:
        click.echo("\n" + _("Moodle courses mapped to no requirement"))
        click.echo(render_table(unmapped, columns.COURSES_UNMAPPED.table))


@main.group()
def mappings() -> None:
    """Check the mapping files (departments, courses, requirements)."""


@mappings.command("check")
@click.option(
    "--mappings",
    "mappings_dir",
    type=click.Path(path_type=Path),
    help="Directory of *.toml mapping files (default: the configured one).",
)
@click.pass_context
def mappings_check(ctx: click.Context, mappings_dir: Path | None) -> None:
    """Validate every mapping file; list every problem with file, key and a hint. Exit 2 on any."""
    from connector.mapping import load_mappings

    root = ctx.find_root()
    directory = mappings_dir or root.obj["mappings_dir"]
    if directory is None:
        directory = config_of(root).mappings_dir
    loaded = load_mappings(Path(directory))
    click.echo(
        _(
            "{directory}: ok: {departments} departments, {requirements} requirements, {courses} courses"
        ).format(
            directory=directory,
            departments=len(loaded.departments),
            requirements=len(loaded.requirements),
            courses=len(loaded.course_refs()),
        )
    )


@main.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check config, Moodle reachability, release, the token's user and missing functions.

    \b
    Exit codes: 0 every check passed, 2 a configuration or mapping problem,
    1 anything else (Moodle, the ledger).
    """
    from connector.doctor import exit_code, format_check, run_checks, summary

    checks = []
    for check in run_checks(config_of(ctx)):  # printed as they come: the Moodle checks take a while
        checks.append(check)
        click.echo("\n".join(format_check(check)))
    click.echo(summary(checks))
    sys.exit(exit_code(checks))
