"""The `connector` command line: the only place that prints, formats and picks exit codes.

Exit codes (documented in the README, relied on by cron jobs):
  0  ok
  1  the run failed (Moodle unreachable, refused, ledger error...); recorded in the ledger
  2  bad configuration or mappings; nothing was written
  75 another sync holds the lock (EX_TEMPFAIL: try again later)
  130 interrupted (Ctrl-C), 143 stopped by SIGTERM (systemd stop, kill): a sync is recorded as failed
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import shlex
import signal
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from connector import __version__
from connector.config import Config, load_config
from connector.errors import EXIT_FAILED, ConnectorError, UsageError
from connector.reports.formats import FORMATS, render_csv, render_json, render_table, terminal_safe

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("connector")

STATUS_COLUMNS = [
    ("tree_name", "department"),
    ("requirement", "requirement"),
    ("in_scope", "in scope"),
    ("compliant", "compliant"),
    ("expiring", "expiring"),
    ("expired", "expired"),
    ("missing", "missing"),
    ("grace", "grace"),
    ("exempt", "exempt"),
    ("share", "share"),
    ("targets_met", "targets met"),
]


EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so a sync rolls back and records itself as failed."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Terminated("interrupted (SIGTERM)")


def handle_errors(func: F) -> F:
    """Turn ConnectorError into a one-line message and its exit code; never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConnectorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Terminated:
            click.echo("interrupted (SIGTERM)", err=True)
            sys.exit(EXIT_TERMINATED)
        except click.Abort:  # "n" or end of input at a confirmation prompt
            click.echo("aborted", err=True)
            sys.exit(EXIT_FAILED)
        except sqlite3.Error as exc:  # the ledger failed under a command: damaged, locked, read-only
            from connector.ledger import ledger_error

            error = ledger_error(exc, None)
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except BrokenPipeError:  # the reader went away (`connector status | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_FAILED)
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception as exc:  # a bug: say so plainly, keep the traceback in the debug log
            log.debug("unexpected error", exc_info=True)
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} "
                "(run with --log-level debug for details and report it)",
                err=True,
            )
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _parse_date(_ctx: Any, _param: Any, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date; use YYYY-MM-DD, e.g. 2026-06-01") from None


as_of_option = click.option(
    "--as-of",
    "as_of",
    callback=_parse_date,
    metavar="DATE",
    help="Recompute from the ledger's evidence as of this date (YYYY-MM-DD).",
)


def format_option(default: str = "table", formats: tuple[str, ...] = FORMATS) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(formats),
        default=default,
        show_default=True,
        help="Output format.",
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connector")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="connector.toml to read (default: $CONNECTOR_CONFIG, else the first of "
    "./connector.toml, ~/.config/connector/connector.toml, /etc/connector/connector.toml).",
)
@click.option(
    "--ledger", "ledger_path", type=click.Path(path_type=Path), help="Ledger file (overrides [ledger] path)."
)
@click.option(
    "--mappings",
    "mappings_dir",
    type=click.Path(path_type=Path),
    help="Mappings directory (overrides [mappings] dir).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
    help="Log verbosity on stderr. Logs never contain the token.",
)
@click.pass_context
def main(
    ctx: click.Context,
    config_path: Path | None,
    ledger_path: Path | None,
    mappings_dir: Path | None,
    log_level: str,
) -> None:
    """Moodle compliance connector: who is trained, who is due, per department.

    Reads enrolments and completions from Moodle web services, maps courses to competence
    requirements and people to departments (mappings/), and keeps the evidence and the statuses
    in a private SQLite ledger. Start with `connector demo`.
    """
    _setup_logging(log_level)
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        ctx.call_on_close(lambda: signal.signal(signal.SIGTERM, previous))
    ctx.obj = {"config_path": config_path, "ledger_path": ledger_path, "mappings_dir": mappings_dir}


def _config(ctx: click.Context) -> Config:
    config = load_config(ctx.obj["config_path"])
    updates: dict[str, Any] = {}
    if ctx.obj["ledger_path"]:
        updates["ledger_path"] = ctx.obj["ledger_path"]
    if ctx.obj["mappings_dir"]:
        updates["mappings_dir"] = ctx.obj["mappings_dir"]
    return replace(config, **updates)


def _echo_rows(
    rows: list[dict[str, Any]],
    fmt: str,
    columns: list[tuple[str, str]],
    csv_keys: tuple[str, ...] | list[str],
) -> None:
    if fmt == "json":
        click.echo(render_json(rows))
    elif fmt == "csv":
        click.echo(render_csv(rows, csv_keys))
    else:
        click.echo(render_table(rows, columns))


# -- sync ----------------------------------------------------------------------------------------
class _Progress:
    """Progress on stderr when it is a terminal: one line rewritten in place."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last = ""

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if total:
            width = 30
            filled = int(width * done / total) if total else 0
            text = f"{stage:<24} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        else:
            text = f"{stage:<24} {done if done else ''}"
        click.echo("\r" + text.ljust(len(self._last)), nl=False, err=True)
        self._last = text

    def close(self) -> None:
        if self.enabled and self._last:
            click.echo("\r" + " " * len(self._last) + "\r", nl=False, err=True)


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
    type=click.Choice(["auto", "report", "per_user", "per_course"]),
    help="Force a completion path instead of the cheapest one the site offers.",
)
@click.option(
    "--allow-mass-deletion",
    is_flag=True,
    help="Accept that more than 5 % of the known people vanished from Moodle (normally "
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
@handle_errors
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

    config = _config(ctx)
    progress = _Progress(enabled=not quiet and sys.stderr.isatty())
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
        )
    finally:
        progress.close()
    for warning in result.warnings:
        click.echo(terminal_safe(f"warning: {warning}"), err=True)
    if not quiet:
        click.echo(result.summary_line())


# -- status / export / person ------------------------------------------------------------------------
@contextmanager
def _open_for_reading(ctx: click.Context) -> Iterator[tuple[Any, Any]]:
    from connector.ledger import Ledger, ledger_error
    from connector.mapping import load_mappings

    config = _config(ctx)
    try:
        ledger = Ledger.open_readonly(config.ledger_path)  # no ledger: say that first
        with ledger:
            ledger.require_sound()  # a damaged page would otherwise be shown as numbers
            yield ledger, load_mappings(config.mappings_dir)
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        raise ledger_error(exc, config.ledger_path) from None


@main.command()
@click.option("--department", help="A department id or name; shows it and its subtree.")
@click.option("--requirement", help="A requirement id.")
@as_of_option
@format_option()
@click.pass_context
@handle_errors
def status(
    ctx: click.Context, department: str | None, requirement: str | None, as_of: date | None, fmt: str
) -> None:
    """Per department x requirement: in scope, compliant, expiring, expired, missing, share, targets.

    Without --as-of it shows the last successful sync; with it, recomputes from the evidence.
    """
    from connector.reports.views import departments_named

    with _open_for_reading(ctx) as (ledger, mappings):
        named = departments_named(mappings, department) if department else []
        if len(named) > 1:  # two towns' "Odbor informatiky": show both, each with its organisation
            click.echo(
                f"note: {len(named)} departments are named '{department}' ({', '.join(named)}); "
                "showing them all; pass an id to see one",
                err=True,
            )
        _print_status(ledger, mappings, fmt, as_of=as_of, department=department, requirement=requirement)


def _print_status(ledger: Any, mappings: Any, fmt: str, **filters: Any) -> None:
    from connector.reports.views import STATUS_KEYS, placement_problems, status_rows, with_tree_names

    when, rows = status_rows(ledger, mappings, **filters)
    if fmt != "table":
        _echo_rows(rows, fmt, STATUS_COLUMNS, STATUS_KEYS)
        return
    click.echo(f"Compliance as of {when}")
    _echo_rows(with_tree_names(rows, mappings), fmt, STATUS_COLUMNS, STATUS_KEYS)
    _echo_placement_footer(placement_problems(ledger))


def _echo_placement_footer(problems: dict[str, int]) -> None:
    if problems["unplaced"]:
        n = problems["unplaced"]
        who = "active person matches" if n == 1 else "active people match"
        count = "counts" if n == 1 else "count"
        click.echo(
            f"\n{n} {who} no department and {count} in none "
            "of the rows above: `connector unplaced` lists their spellings and the alias "
            "lines that place them"
        )
    if problems["conflicts"]:
        n = problems["conflicts"]
        who = "active person matches" if n == 1 else "active people match"
        click.echo(f"{n} {who} departments on different branches; `connector sync` names them")


@main.command()
@as_of_option
@format_option(default="csv", formats=("csv", "json"))
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write to this file instead of stdout.")
@click.pass_context
@handle_errors
def export(ctx: click.Context, as_of: date | None, fmt: str, output: Path | None) -> None:
    """Every person x requirement, for HR and other tools (CSV or JSON)."""
    from connector.reports.views import EXPORT_KEYS, export_rows

    with _open_for_reading(ctx) as (ledger, mappings):
        _, rows = export_rows(ledger, mappings, as_of=as_of)
        materialised = list(rows)
    text = render_json(materialised) if fmt == "json" else render_csv(materialised, EXPORT_KEYS)
    if output:
        _write_private(output, text + "\n")
        click.echo(f"wrote {len(materialised)} rows to {output}", err=True)
    else:
        click.echo(text)


def _write_private(path: Path, text: str) -> None:
    """Exports hold personal data: readable by the owner only, like the ledger.

    Written to a private (0600) temporary file beside the target, synced, then renamed over it:
    the result is 0600 whatever mode an older file had, a reader never sees half an export, and
    nothing is written through a symbolic link (one in the final component is refused).
    """
    if path.is_symlink():
        raise UsageError(
            f"refusing to write {path}: it is a symbolic link",
            hint="an export holds personal data; give the path of a real file",
        )
    directory = path.parent
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        with contextlib.suppress(OSError):  # the rename itself survives a crash once the folder is synced
            folder = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except OSError as exc:
        raise ConnectorError(
            f"cannot write {path}: {exc.strerror}", hint="check that the directory exists and is writable"
        ) from None


@main.command()
@click.argument("username")
@format_option()
@click.pass_context
@handle_errors
def person(ctx: click.Context, username: str, fmt: str) -> None:
    """One person's requirements, statuses, evidence and history."""
    from connector.reports.views import person_view

    with _open_for_reading(ctx) as (ledger, mappings):
        view = person_view(ledger, mappings, username)
    if fmt == "json":
        click.echo(json.dumps(view, ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        click.echo(
            render_csv(
                view["statuses"],
                [
                    "requirement",
                    "status",
                    "valid_until",
                    "since",
                    "due",
                    "decided_by",
                    "completed_at",
                    "detail",
                ],
            )
        )
        return
    state = "active" if view["active"] else ("deleted" if view["deleted"] else "suspended")
    click.echo(
        terminal_safe(
            f"{view['fullname']} ({view['username']}, {view['idnumber'] or 'no idnumber'}), {state}"
        )
    )
    where = view["department_name"] or "unplaced"
    if view["organisation"] and view["organisation"] != view["department_id"]:
        where += f" ({view['organisation_name']})"
    click.echo(terminal_safe(f"department: {where}; position: {view['position'] or '-'}"))
    click.echo("\nRequirements")
    click.echo(
        render_table(
            view["statuses"],
            [
                ("requirement", "requirement"),
                ("status", "status"),
                ("valid_until", "valid until"),
                ("since", "since"),
                ("due", "due"),
                ("decided_by", "decided by"),
                ("detail", "detail"),
            ],
        )
    )
    click.echo("\nEvidence")
    click.echo(
        render_table(
            view["evidence"],
            [
                ("course", "course"),
                ("completed_at", "completed"),
                ("source", "source"),
                ("first_seen", "first seen"),
                ("still_in_moodle", "in Moodle"),
            ],
        )
    )
    click.echo("\nHistory")
    click.echo(
        render_table(
            view["history"], [("on", "date"), ("requirement", "requirement"), ("from", "from"), ("to", "to")]
        )
    )


@main.command()
@format_option()
@click.pass_context
@handle_errors
def unplaced(ctx: click.Context, fmt: str) -> None:
    """Active people in no department: each spelling, how many use it, and the alias line to add.

    A spelling is Moodle's institution + department profile fields, compared as the mappings do
    (case, spaces and Unicode form ignored). Placement is as of the last sync.
    """
    from connector.ledger import Ledger
    from connector.mapping import load_mappings
    from connector.reports.unplaced import fix_rows, spelling_rows, unplaced_counts, unplaced_spellings
    from connector.shares import format_share

    config = _config(ctx)
    with Ledger.open_readonly(config.ledger_path) as ledger:
        mappings = load_mappings(config.mappings_dir)
        spellings = unplaced_spellings(ledger, mappings, config.mappings_dir)
        count, active = unplaced_counts(ledger)
    if fmt == "json":
        click.echo(render_json(spelling_rows(spellings, mappings)))
        return
    flat = fix_rows(spellings)
    if fmt == "csv":
        click.echo(
            render_csv(
                flat, ["people", "institution", "department", "closest", "file", "entry", "line", "note"]
            )
        )
        return
    if not spellings:
        click.echo(f"every one of the {active} active people is in a department")
        return
    click.echo(
        f"{count} of {active} active people ({format_share(count / active)}) are in no department, "
        f"under {len(spellings)} spelling{'s' if len(spellings) != 1 else ''} (as of the last sync):\n"
    )
    table = [
        {  # a spelling that needs two lines shows its counts on the first only
            "people": row["people"] if row["first"] else None,
            "institution": (row["institution"] or "(empty)") if row["first"] else "",
            "department": (row["department"] or "(empty)") if row["first"] else "",
            "closest": (row["closest"] or "-") if row["first"] else "",
            "where": f'{Path(row["file"]).name}, id = "{row["entry"]}"' if row["file"] else "",
            "line": row["line"] or f"({row['note']})",
        }
        for row in flat
    ]
    click.echo(
        render_table(
            table,
            [
                ("people", "people"),
                ("institution", "institution"),
                ("department", "department"),
                ("closest", "closest department"),
                ("where", "edit"),
                ("line", "line to put there"),
            ],
        )
    )
    click.echo(
        f"\nEach line goes in the [[department]] entry with that id in {config.mappings_dir}, "
        "replacing its line of the same key; then `connector mappings check` and the next sync "
        "places these people."
    )


# -- courses / doctor / mappings ------------------------------------------------------------------------
@main.command()
@format_option()
@click.option("--offline", is_flag=True, help="Use the ledger's copy of the course list; do not ask Moodle.")
@click.pass_context
@handle_errors
def courses(ctx: click.Context, fmt: str, offline: bool) -> None:
    """Every mapped course as Moodle sees it, the mapping problems, and courses mapped to nothing."""
    from connector.ledger import Ledger
    from connector.mapping import load_mappings
    from connector.reports.views import courses_view

    config = _config(ctx)
    mappings = load_mappings(config.mappings_dir)
    ledger = Ledger.open_readonly(config.ledger_path) if config.ledger_path.exists() else None
    try:
        if offline:
            if ledger is None:
                raise ConnectorError(
                    "--offline needs a ledger from an earlier sync",
                    hint="run `connector sync` first or drop --offline",
                )
            moodle_courses = ledger.courses()
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
        click.echo(
            render_csv(
                rows,
                [
                    "requirement",
                    "ref",
                    "id",
                    "idnumber",
                    "name",
                    "visible",
                    "completion",
                    "enrolled",
                    "completed",
                ],
            )
        )
        return
    click.echo(
        render_table(
            rows,
            [
                ("requirement", "requirement"),
                ("id", "id"),
                ("idnumber", "idnumber"),
                ("name", "name"),
                ("visible", "visible"),
                ("completion", "completion"),
                ("enrolled", "enrolled"),
                ("completed", "completed"),
            ],
        )
    )
    click.echo("\nProblems" if problems else "\nNo mapping problems.")
    for problem in problems:
        click.echo(terminal_safe(f"  - {problem}"))  # problems quote Moodle's course names
    if unmapped:
        click.echo("\nMoodle courses mapped to no requirement")
        click.echo(
            render_table(
                unmapped,
                [
                    ("id", "id"),
                    ("idnumber", "idnumber"),
                    ("name", "name"),
                    ("visible", "visible"),
                    ("completion", "completion"),
                ],
            )
        )


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
@handle_errors
def mappings_check(ctx: click.Context, mappings_dir: Path | None) -> None:
    """Validate every mapping file; list every problem with file, key and a hint. Exit 2 on any."""
    from connector.mapping import load_mappings

    root = ctx.find_root()
    directory = mappings_dir or root.obj["mappings_dir"]
    if directory is None:
        directory = _config(root).mappings_dir
    loaded = load_mappings(Path(directory))
    click.echo(
        f"{directory}: ok: {len(loaded.departments)} departments, "
        f"{len(loaded.requirements)} requirements, {len(loaded.course_refs())} courses"
    )


@main.command()
@click.pass_context
@handle_errors
def doctor(ctx: click.Context) -> None:
    """Check config, Moodle reachability, release, the token's user and missing functions.

    \b
    Exit codes: 0 every check passed, 2 a configuration or mapping problem,
    1 anything else (Moodle, the ledger).
    """
    from connector.doctor import exit_code, format_check, run_checks, summary

    checks = []
    for check in run_checks(_config(ctx)):  # printed as they come: the Moodle checks take a while
        checks.append(check)
        click.echo("\n".join(format_check(check)))
    click.echo(summary(checks))
    sys.exit(exit_code(checks))


@main.command()
@click.option("--limit", default=10, show_default=True, help="How many recent runs to show.")
@format_option()
@click.pass_context
@handle_errors
def runs(ctx: click.Context, limit: int, fmt: str) -> None:
    """Recent sync runs with their outcome, counts and errors."""
    from connector.ledger import Ledger

    with Ledger.open_readonly(_config(ctx).ledger_path) as ledger:
        rows = ledger.runs(limit)
    for row in rows:
        row["calls"] = row["counts"].get("calls")
        row["new"] = row["counts"].get("evidence_new")
    _echo_rows(
        rows,
        fmt,
        [
            ("id", "run"),
            ("started_at", "started"),
            ("outcome", "outcome"),
            ("mode", "mode"),
            ("completion_path", "path"),
            ("calls", "calls"),
            ("new", "new completions"),
            ("error", "error"),
        ],
        ["id", "started_at", "finished_at", "outcome", "mode", "completion_path", "as_of", "error"],
    )


@main.command()
@click.argument("username")
@click.option("--reason", required=True, help="Why (recorded in the audit table), e.g. a GDPR request id.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@handle_errors
def erase(ctx: click.Context, username: str, reason: str, yes: bool) -> None:
    """Erase one person's personal data from the ledger (audited; the only way evidence goes).

    The person is kept out of later syncs until `connector unsuppress --user-id N`."""
    from connector.erasure import erase as erase_person
    from connector.ledger import Ledger

    if not reason.strip():
        raise UsageError(
            "--reason is empty: say why this person's data is erased",
            hint='e.g. --reason "GDPR request 2026-17"; it is kept in the erasures table '
            "as the record of why the data went",
        )
    config = _config(ctx)
    with Ledger.open(config.ledger_path, create=False, group=config.ledger_group) as ledger:
        found = ledger.person_by_username(username)
        if found is None:
            raise ConnectorError(f"no person with username '{username}' in the ledger")
        if not yes and not click.confirm(f"Erase every row about {username} (user id {found['user_id']})?"):
            click.echo("aborted: nothing was erased", err=True)
            sys.exit(EXIT_FAILED)
        done = erase_person(ledger, found["user_id"], reason.strip(), _mappings_or_none(config))
    user_id = found["user_id"]
    click.echo(f"erased {done.rows_removed} rows about user id {user_id}; recorded in the erasures table")
    if done.rollups_pending:
        rollups = "roll-ups change at the next sync (the mappings cannot be read now)"
    elif done.rollups_departments:
        rollups = "roll-ups recomputed for " + ", ".join(done.rollups_departments)
    else:
        rollups = "no roll-up changed"
    click.echo(
        f"later syncs leave user id {user_id} out (`connector unsuppress --user-id {user_id}` "
        f"lets them back); {rollups}"
    )


def _mappings_or_none(config: Config) -> Any:
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
@handle_errors
def unsuppress(ctx: click.Context, user_id: int) -> None:
    """Let an erased person back: the next sync reads them from Moodle again, as new."""
    from connector.ledger import Ledger

    with Ledger.open(_config(ctx).ledger_path, create=False) as ledger:
        if not ledger.unsuppress(user_id):
            raise ConnectorError(
                f"user id {user_id} is not held back: no erasure of that user id is on record in this ledger"
            )
    click.echo(f"user id {user_id} may be synced again; the next sync reads them from Moodle as a new person")


# -- emulator / demo --------------------------------------------------------------------------------
@main.command()
@click.option(
    "--scenario",
    type=click.Choice(["demo", "small", "medium", "large"]),
    default="demo",
    show_default=True,
    help="The demo organisations, or a generated site of 500 / 2,000 / 20,000 people.",
)
@click.option("--port", default=8765, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option(
    "--token",
    default="demo-token",
    show_default=True,
    help="The token the emulator accepts (a made-up one: this is not a real Moodle).",
)
@click.option("--latency-ms", default=0.0, show_default=True, help="Extra latency per call.")
@click.option("--workers", type=int, default=None, help="Concurrent requests served at once (like PHP-FPM).")
@click.option("--seed", default=1, show_default=True, help="Seed for generated scenarios.")
@click.option(
    "--moodle",
    type=click.Choice(["4.1", "4.5"]),
    default="4.1",
    show_default=True,
    help="Which captured Moodle release to answer like.",
)
@handle_errors
def emulator(
    scenario: str, port: int, token: str, latency_ms: float, workers: int | None, seed: int, moodle: str
) -> None:
    """Serve a Moodle-compatible web service on 127.0.0.1 until stopped (Ctrl-C)."""
    from connector.emulator import Emulator, scenario_by_name

    data = _scenario(scenario_by_name, scenario, seed)
    emu = Emulator(
        data, tokens={token: "full"}, latency_ms=latency_ms, workers=workers, port=port, moodle=moodle
    )
    try:
        emu.start()
    except OSError as exc:
        raise _port_error(port, exc) from None
    click.echo(f"Moodle emulator ({scenario}) serving {emu.url}/webservice/rest/server.php")
    click.echo(
        f"try: curl -s {emu.url}/webservice/rest/server.php -d wstoken=<the --token value> "
        "-d wsfunction=core_webservice_get_site_info -d moodlewsrestformat=json"
    )
    sys.stdout.flush()
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()


def _port_error(port: int, exc: OSError) -> UsageError:
    reason = {errno.EADDRINUSE: "is in use", errno.EACCES: "needs privileges this user lacks"}.get(
        exc.errno or 0, f"cannot be opened ({exc.strerror})"
    )
    return UsageError(
        f"port {port} on 127.0.0.1 {reason}", hint="pass --port 0 for any free port, or another port"
    )


def _scenario(factory: Callable[..., Any], name: str, seed: int) -> Any:
    return factory(name, date.today()) if name == "demo" else factory(name, date.today(), seed=seed)


@main.command()
@click.option(
    "--ledger",
    "demo_ledger",
    type=click.Path(path_type=Path),
    help="Keep the ledger here (default: a temporary one, deleted afterwards).",
)
@click.option(
    "--path",
    "completion_path",
    type=click.Choice(["auto", "report", "per_user", "per_course"]),
    default="auto",
    show_default=True,
    help="Completion path to use.",
)
@format_option()
@click.pass_context
@handle_errors
def demo(ctx: click.Context, demo_ledger: Path | None, completion_path: str, fmt: str) -> None:
    """Run a real sync against the built-in Moodle emulator and print the status.

    Starts the emulator's demo scenario (Jablonec nad Nisou, Česká Lípa, two small municipalities,
    Ljubljana) on a free loopback port, syncs into a ledger and shows compliance per department.
    """
    from connector.emulator import Emulator, demo_scenario
    from connector.ledger import Ledger
    from connector.mapping import DEMO_MAPPINGS, load_mappings
    from connector.sync import SyncOptions, run_sync

    mappings_dir = ctx.obj["mappings_dir"] or DEMO_MAPPINGS
    mappings = load_mappings(mappings_dir)
    token = secrets.token_hex(16)
    today = date.today()
    with tempfile.TemporaryDirectory(prefix="connector-demo-") as tmp:
        ledger_path = demo_ledger or Path(tmp) / "demo.sqlite"
        with Emulator(demo_scenario(today), tokens={token: "full"}) as emu:
            config = Config(
                moodle_url=emu.url,
                token=token,
                ledger_path=ledger_path,
                mappings_dir=Path(mappings_dir),
                timezone=mappings.timezone,
                report_id=1,
                completion_path=completion_path,
            )
            click.echo(f"Moodle emulator: {emu.url} (demo scenario)", err=True)
            result = run_sync(config, SyncOptions(), progress=_Progress(sys.stderr.isatty()))
        for warning in result.warnings:
            click.echo(terminal_safe(f"warning: {warning}"), err=True)
        click.echo(result.summary_line(), err=True)
        with Ledger.open(ledger_path, create=False) as ledger:
            _print_status(ledger, mappings, fmt)
        if demo_ledger:
            # Absolute paths: the hint must run as printed from any folder, the demo mappings included.
            explore = (
                f"connector --ledger {shlex.quote(str(demo_ledger.resolve()))} "
                f"--mappings {shlex.quote(str(Path(mappings_dir).resolve()))}"
            )
            click.echo(
                f"ledger kept at {demo_ledger.resolve()}; try: {explore} person u001 "
                "(or status, export, runs, unplaced)",
                err=True,
            )
        else:
            click.echo(
                "the ledger was temporary; keep one to explore: connector demo --ledger demo.sqlite "
                "(it then prints the commands to explore it)",
                err=True,
            )


# -- operations: upgrade / backup / check ---------------------------------------------------------
@main.command()
@click.pass_context
@handle_errors
def upgrade(ctx: click.Context) -> None:
    """Upgrade the ledger to this version's schema, after a backup beside it.

    Read commands never upgrade; `sync` upgrades too. Also resets the ledger's file modes
    (0600, or 0640 for [ledger] group).
    """
    from connector.ledger import Ledger

    config = _config(ctx)
    done: list[str] = []
    with Ledger.open(
        config.ledger_path, create=False, group=config.ledger_group, on_upgrade=done.append
    ) as ledger:
        version = ledger.schema_version
    click.echo(
        done[0]
        if done
        else f"the ledger {config.ledger_path} already has schema version {version}; nothing to upgrade"
    )


@main.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace TARGET if it exists.")
@click.pass_context
@handle_errors
def backup(ctx: click.Context, target: Path, force: bool) -> None:
    """Copy the ledger to TARGET consistently, even while a sync runs, and check the copy.

    Uses SQLite's online backup API (a plain cp of a ledger in use is not a safe backup), runs
    PRAGMA integrity_check on the copy, and creates it with the ledger's mode (0600, or 0640 for
    [ledger] group). Refuses to overwrite TARGET without --force.
    """
    from connector.backup import copy_database
    from connector.ledger import Ledger

    config = _config(ctx)
    with Ledger.open_readonly(config.ledger_path, any_schema=True) as ledger:
        if target.exists() and target.resolve() == config.ledger_path.resolve():
            raise ConnectorError(f"{target} is the ledger itself", hint="name another file")
        result = copy_database(ledger.db.conn, target, group=config.ledger_group, force=force)
    click.echo(
        f"wrote {result.path} ({result.size} bytes, schema version {result.schema_version}, integrity ok)"
    )


class _PluginCommand(click.Command):
    """A usage mistake in a monitoring check is UNKNOWN (exit 3), not click's exit 2 (CRITICAL)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            click.echo(f"CONNECTOR UNKNOWN - {exc.format_message()}")
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
        lambda: _config(ctx), warn_age=warn_age, max_age=max_age, max_unplaced=max_unplaced
    )
    click.echo(verdict.line)
    sys.exit(verdict.state)


if __name__ == "__main__":  # pragma: no cover
    main()
