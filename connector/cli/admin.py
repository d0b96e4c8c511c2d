"""Commands that change or guard the ledger itself: `erase`, `unsuppress`, `upgrade`, `backup`,
and the monitoring plugin `check`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from connector.cli.app import config_of, main, now_of
from connector.cli.translated import TranslatedCommand
from connector.config import Config
from connector.errors import ConnectorError, ExitStatus, UsageError
from connector.i18n import _

if TYPE_CHECKING:
    from connector.mapping import Mappings


@main.command()
@click.argument("username")
@click.option("--reason", required=True, help="Why (recorded in the audit table), e.g. a GDPR request id.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def erase(ctx: click.Context, username: str, reason: str, yes: bool) -> None:
    """Erase one person's personal data from the ledger (audited; the only way evidence goes).

    The person is kept out of later syncs until `connector unsuppress --user-id N`."""
    from connector.erasure import erase as erase_person
    from connector.ledger import Ledger

    if not reason.strip():
        raise UsageError(
            _("--reason is empty: say why this person's data is erased"),
            hint=_(
                'e.g. --reason "GDPR request 2026-17"; it is kept in the erasures table '
                "as the record of why the data went"
            ),
        )
    config = config_of(ctx)
    with Ledger.open(config.ledger_path, create=False, group=config.ledger_group) as ledger:
        found = ledger.people.by_username(username)
        if found is None:
            raise ConnectorError(
                _("no person with username '{username}' in the ledger").format(username=username)
            )
        question = _("Erase every row about {username} (user id {user_id})?")
        if not yes and not click.confirm(question.format(username=username, user_id=found["user_id"])):
            click.echo(_("aborted: nothing was erased"), err=True)
            sys.exit(int(ExitStatus.FAILED))
        done = erase_person(
            ledger, found["user_id"], reason.strip(), _mappings_or_none(config), now=now_of(ctx)
        )
    user_id = found["user_id"]
    click.echo(
        _("erased {n} rows about user id {user_id}; recorded in the erasures table").format(
            n=done.rows_removed, user_id=user_id
        )
    )
    if done.rollups_pending:
        rollups = _("roll-ups change at the next sync (the mappings cannot be read now)")
    elif done.rollups_departments:
        rollups = _("roll-ups recomputed for {departments}").format(
            departments=", ".join(done.rollups_departments)
        )
    else:
        rollups = _("no roll-up changed")
    click.echo(
        _(
            "later syncs leave user id {user_id} out (`connector unsuppress --user-id {user_id}` "
            "lets them back); {rollups}"
        ).format(user_id=user_id, rollups=rollups)
    )


def _mappings_or_none(config: Config) -> Mappings | None:
    """Erasure must not depend on valid mappings: without them roll-ups wait for the next sync."""
    from connector.mapping import load_mappings

    try:
        return load_mappings(config.mappings_dir)
    except ConnectorError:
        return None


@main.command()
@click.option(
    "--user-id",
    "user_id",
    type=click.IntRange(min=1),
    required=True,
    help="The Moodle user id (Site administration > Users: the id= in the profile URL).",
)
@click.pass_context
def unsuppress(ctx: click.Context, user_id: int) -> None:
    """Let an erased person back: the next sync reads them from Moodle again, as new."""
    from connector.ledger import Ledger

    with Ledger.open(config_of(ctx).ledger_path, create=False) as ledger:
        if not ledger.suppressions.lift(user_id):
            raise ConnectorError(
                _(
                    "user id {user_id} is not held back: "
                    "no erasure of that user id is on record in this ledger"
                ).format(user_id=user_id)
            )
    click.echo(
        _(
            "user id {user_id} may be synced again; the next sync reads them from Moodle as a new person"
        ).format(user_id=user_id)
    )


# -- emulator / demo --------------------------------------------------------------------------------
@main.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Upgrade the ledger to this version's schema, after a backup beside it.

    Read commands never upgrade; `sync` upgrades too. Also resets the ledger's file modes
    (0600, or 0640 for [ledger] group).
    """
    from connector.ledger import Ledger

    config = config_of(ctx)
    done: list[str] = []
    with Ledger.open(
        config.ledger_path, create=False, group=config.ledger_group, on_upgrade=done.append
    ) as ledger:
        version = ledger.schema_version
    click.echo(
        done[0]
        if done
        else _("the ledger {path} already has schema version {version}; nothing to upgrade").format(
            path=config.ledger_path, version=version
        )
    )


@main.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace TARGET if it exists.")
@click.pass_context
def backup(ctx: click.Context, target: Path, force: bool) -> None:
    """Copy the ledger to TARGET consistently, even while a sync runs, and check the copy.

    Uses SQLite's online backup API (a plain cp of a ledger in use is not a safe backup), runs
    PRAGMA integrity_check on the copy, and creates it with the ledger's mode (0600, or 0640 for
    [ledger] group). Refuses to overwrite TARGET without --force.
    """
    from connector.ledger import Ledger

    config = config_of(ctx)
    with Ledger.open_readonly(config.ledger_path, any_schema=True) as ledger:
        if target.exists() and target.resolve() == config.ledger_path.resolve():
            raise ConnectorError(
                _("{path} is the ledger itself").format(path=target), hint=_("name another file")
            )
        result = ledger.backup_to(target, group=config.ledger_group, force=force)
    click.echo(
        _("wrote {path} ({size} bytes, schema version {version}, integrity ok)").format(
            path=result.path, size=result.size, version=result.schema_version
        )
    )


class _PluginCommand(TranslatedCommand):
    """A usage mistake in a monitoring check is UNKNOWN (exit 3), not click's exit 2 (CRITICAL)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            click.echo(f"CONNECTOR UNKNOWN - {exc.format_message()}")  # monitoring output stays English
            ctx.exit(3)


@main.command(cls=_PluginCommand)
@click.option(
    "--max-age",
    default="36h",
    show_default=True,
    help="CRITICAL when the last good sync is older (s, m, h or d).",
)
@click.option(
    "--warn-age", default="26h", show_default=True, help="WARNING when the last good sync is older."
)
@click.option(
    "--max-unplaced",
    metavar="SHARE",
    help='WARNING when a larger share of active people is in no department, e.g. "5 %" '
    "[default: [sync] max_unplaced, 5 %].",
)
@click.pass_context
def check(ctx: click.Context, max_age: str, warn_age: str, max_unplaced: str | None) -> None:
    """Monitoring plugin (Nagios/Icinga): one status line with performance data, from the ledger.

    \b
    Exit codes follow the plugin convention, NOT the connector's 0/1/2/75:
    0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (no or unreadable ledger, bad option).
    WARNING: last good sync older than --warn-age, the last run failed, more than
    --max-unplaced people in no department, a mapped course missing in Moodle.
    CRITICAL: last good sync older than --max-age, or none at all.
    Reads the ledger read-only; never calls Moodle.
    """
    from connector import health

    verdict = health.check_ledger(
        lambda: config_of(ctx), warn_age=warn_age, max_age=max_age, max_unplaced=max_unplaced, now=now_of(ctx)
    )
    click.echo(verdict.line)
    sys.exit(verdict.state)
