"""`connector evidence import|list|remove`: evidence from outside Moodle, with its provenance."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from connector.cli.app import config_of, format_option, main, now_of
from connector.cli.output import echo_rows
from connector.errors import UsageError
from connector.i18n import _, format_moment, ngettext
from connector.reports import columns


def os_user() -> str:
    """Who runs this command, as the operating system knows them (the import's "imported by")."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER: a bare container
        return f"uid {os.getuid()}"


@main.group()
def evidence() -> None:
    """Evidence from outside Moodle: attendance lists and outside certificates (CSV files)."""


@evidence.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--source", required=True, help='Where the file comes from, e.g. "HR attendance list 2026-10".')
@click.option("--force", is_flag=True, help="Import a file with the same content as an earlier import again.")
@click.pass_context
def import_(ctx: click.Context, file: Path, source: str, force: bool) -> None:
    """Import FILE: columns username or idnumber, course (a course key) or requirement, date,
    provider, optional expiry. The whole file is checked first: every problem is listed with its
    line and column, and then nothing is imported (exit 2)."""
    from connector.imports import file_sha256, parse_import, read_file
    from connector.ledger import Ledger
    from connector.ledger.imports import Provenance
    from connector.mapping import load_mappings

    if not source.strip():
        raise UsageError(
            _("--source is empty: say where the file comes from"), hint=_('e.g. --source "HR, Liberec"')
        )
    config = config_of(ctx)
    now = now_of(ctx)
    content = read_file(file)
    sha256 = file_sha256(content)
    mappings = load_mappings(config.mappings_dir)
    today = now.astimezone(ZoneInfo(mappings.timezone)).date()
    with Ledger.open(config.ledger_path, create=False, group=config.ledger_group) as ledger:
        earlier = ledger.imports.with_sha256(sha256)
        if earlier is not None and not force:
            raise UsageError(
                _(
                    "{name} was imported already (import {id} on {value}, same content): nothing was imported"
                ).format(name=file.name, id=earlier["id"], value=earlier["imported_at"][:10]),
                hint=_("`connector evidence list` shows it; --force imports it again"),
            )
        rows = parse_import(content, file.name, mappings, ledger.imports.user_ids(), today)
        import_id = ledger.imports.record(
            Provenance(source.strip(), file.name, sha256, os_user()), rows, now=now
        )
    click.echo(
        ngettext(
            "imported {n} row from {name} as import {import_id} (sha256 {value}); the next "
            "sync counts them, `connector status --as-of {isoformat}` shows them now",
            "imported {n} rows from {name} as import {import_id} (sha256 {value}); the next "
            "sync counts them, `connector status --as-of {isoformat}` shows them now",
            len(rows),
        ).format(
            n=len(rows), name=file.name, import_id=import_id, value=sha256[:12], isoformat=today.isoformat()
        )
    )


def _state(row: dict[str, Any], *, for_people: bool) -> str:
    """Counted, or removed when, by whom and why: in the reader's words in a table; JSON keeps
    the English words and the ISO day scripts already read."""
    if not row["removed_at"]:
        return _("counted") if for_people else "counted"
    if not for_people:
        return f"removed {row['removed_at'][:10]} by {row['removed_by']}: {row['removed_reason']}"
    return _("removed {day} by {who}: {why}").format(
        day=format_moment(row["removed_at"]), who=row["removed_by"], why=row["removed_reason"]
    )


@evidence.command("list")
@format_option()
@click.pass_context
def list_(ctx: click.Context, fmt: str) -> None:
    """Every import: source, file, who imported it and when, rows; removed ones with why."""
    from connector.ledger import Ledger

    with Ledger.open_readonly(config_of(ctx).ledger_path) as ledger:
        rows = ledger.imports.all()
    for row in rows:
        row["state"] = _state(row, for_people=fmt == "table")
        row["imported_on"] = row["imported_at"][:10]
    if fmt == "table" and not rows:
        click.echo(_("no evidence has been imported"))
        return
    echo_rows(rows, fmt, columns.EVIDENCE_IMPORTS)


@evidence.command("remove")
@click.option(
    "--import", "import_id", type=int, required=True, help="The import's id (`connector evidence list`)."
)
@click.option("--reason", required=True, help="Why (kept with the import as the record of the removal).")
@click.pass_context
def remove(ctx: click.Context, import_id: int, reason: str) -> None:
    """Remove every row of one import; who removed it, when and why stay recorded."""
    from connector.ledger import Ledger

    if not reason.strip():
        raise UsageError(
            _("--reason is empty: say why this import is removed"),
            hint=_('e.g. --reason "wrong session list"; it is kept with the import'),
        )
    config = config_of(ctx)
    with Ledger.open(config.ledger_path, create=False, group=config.ledger_group) as ledger:
        removed = ledger.imports.remove(import_id, reason.strip(), os_user(), now=now_of(ctx))
    if removed is None:
        raise UsageError(
            _("no import {import_id} to remove").format(import_id=import_id),
            hint=_("`connector evidence list` shows the imports and their ids"),
        )
    click.echo(
        ngettext(
            "removed {removed} row of import {import_id}; the removal is recorded with the "
            "import, and the next sync counts without them",
            "removed {removed} rows of import {import_id}; the removal is recorded with the "
            "import, and the next sync counts without them",
            removed,
        ).format(removed=removed, import_id=import_id)
    )
