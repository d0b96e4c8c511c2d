"""`connector sync`: read Moodle, record evidence, evaluate and commit, all or nothing."""

from __future__ import annotations

import sys
from datetime import date

import click

from connector.cli.app import as_of_option, completion_path_choice, config_of, main, now_of
from connector.cli.output import Progress, echo_warnings


@main.command()
@click.option(
    "--full",
    is_flag=True,
    help="Re-read everything and reconcile (reports completions "
    "Moodle no longer has; they stay in the ledger as evidence).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print nothing unless something is wrong (for cron).")
@click.option(
    "--path",
    "completion_path",
    type=completion_path_choice,
    help="Force a completion path instead of the cheapest one the site offers.",
)
@click.option(
    "--allow-mass-deletion",
    is_flag=True,
    help="Accept that more than 5 percent of the known people vanished from Moodle (normally "
    "a sign the token's user lost a capability, so the run stops instead).",
)
@click.option(
    "--allow-vanished-courses",
    is_flag=True,
    help="Accept that mapped courses holding completions are no longer listed by Moodle "
    "(their holders may turn missing; normally the run stops instead).",
)
@click.option(
    "--allow-dropped-requirements",
    is_flag=True,
    help="Accept ending the statuses of requirements removed from the mappings (each "
    "gets a history row; normally the run stops instead).",
)
@as_of_option
@click.pass_context
def sync(
    ctx: click.Context,
    full: bool,
    quiet: bool,
    completion_path: str | None,
    allow_mass_deletion: bool,
    allow_vanished_courses: bool,
    allow_dropped_requirements: bool,
    as_of: date | None,
) -> None:
    """Read Moodle, record evidence, evaluate and commit, all or nothing.

    \b
    Exit codes: 0 ok, 1 failed (recorded in the ledger with its reason),
    2 bad config or mappings (nothing written), 75 another sync holds the lock.
    """
    from connector.sync import SyncOptions, run_sync

    config = config_of(ctx)
    progress = Progress(enabled=not quiet and sys.stderr.isatty())
    try:
        result = run_sync(
            config,
            SyncOptions(
                full=full,
                as_of=as_of,
                completion_path=completion_path,
                allow_mass_deletion=allow_mass_deletion,
                allow_vanished_courses=allow_vanished_courses,
                allow_dropped_requirements=allow_dropped_requirements,
            ),
            progress=progress,
            now=now_of(ctx),
        )
    finally:
        progress.close()
    echo_warnings(result.warnings)
    if not quiet:
        click.echo(result.summary_line())
