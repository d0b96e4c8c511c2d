"""The root `connector` group: global options, the one error path and the options commands share.

Every command runs inside :meth:`ConnectorGroup.invoke`, which turns what can go wrong into one
line on stderr and an :class:`~connector.errors.ExitStatus` (README "Exit codes"):

  0  ok
  1  the run failed (Moodle unreachable, refused, ledger error...); recorded in the ledger
  2  bad configuration or mappings; nothing was written
  75 another sync holds the lock (EX_TEMPFAIL: try again later)
  130 interrupted (Ctrl-C), 143 stopped by SIGTERM (systemd stop, kill): a sync is recorded as failed

`connector check` follows the monitoring-plugin convention instead and never lets an error out.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from connector import __version__, i18n
from connector.cli import translated
from connector.clock import utc_now
from connector.config import COMPLETION_PATHS, Config, load_config
from connector.errors import ConnectorError, ExitStatus
from connector.i18n import _
from connector.reports.formats import FORMATS

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("connector")


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so a sync rolls back and records itself as failed."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Terminated("interrupted (SIGTERM)")


def _fail(message: str, status: ExitStatus) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(int(status))


class ConnectorGroup(translated.TranslatedGroup):
    """The root group: the single place where an error becomes a message and an exit status.

    Click's own usage errors (exit 2) and explicit exits pass through untouched; everything else
    is one line (plus the error's hint), never a traceback.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:  # the locale's language until --lang (eager) or the mappings say otherwise
            i18n.start(None)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConnectorError as exc:
            _fail(_("error: {message}").format(message=exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail(_("interrupted"), ExitStatus.INTERRUPTED)
        except Terminated:
            _fail(_("interrupted (SIGTERM)"), ExitStatus.TERMINATED)
        except click.Abort:  # "n" or end of input at a confirmation prompt
            _fail(_("aborted"), ExitStatus.FAILED)
        except sqlite3.Error as exc:  # the ledger failed under a command: damaged, locked, read-only
            from connector.ledger import ledger_error

            error = ledger_error(exc, None)
            _fail(_("error: {message}").format(message=error), error.exit_code)
        except BrokenPipeError:  # the reader went away (`connector status | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(int(ExitStatus.FAILED))
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception as exc:  # a bug: say so plainly, keep the traceback in the debug log
            log.debug("unexpected error", exc_info=True)
            _fail(
                _(
                    "internal error: {kind}: {error} (run with --log-level debug for details and report it)"
                ).format(kind=type(exc).__name__, error=exc),
                ExitStatus.FAILED,
            )


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _parse_date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            _("'{value}' is not a date; use YYYY-MM-DD, e.g. 2026-06-01").format(value=value)
        ) from None


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


completion_path_choice = click.Choice(COMPLETION_PATHS)


@click.group(cls=ConnectorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="connector")
@click.option(
    "--lang",
    type=click.Choice(i18n.LANGUAGES),
    is_eager=True,  # before --help, so the help is in this language
    expose_value=False,
    callback=lambda _ctx, _param, value: i18n.set_language(value, explicit=True) if value else None,
    help="Language of everything the connector says: cs, sl or en "
    "(default: [settings] language in the mappings, else the locale, else English).",
)
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
    clock = (ctx.obj or {}).get("clock", utc_now)  # tests pass their own: CliRunner.invoke(obj=...)
    ctx.obj = {
        "config_path": config_path,
        "ledger_path": ledger_path,
        "mappings_dir": mappings_dir,
        "clock": clock,
    }


def now_of(ctx: click.Context) -> datetime:
    """The moment this command runs, from the one clock (connector/clock.py), passed on as ``now=``."""
    moment: datetime = ctx.find_root().obj["clock"]()
    return moment


def config_of(ctx: click.Context) -> Config:
    """connector.toml (or its search order) with the global --ledger and --mappings applied."""
    obj = ctx.find_root().obj
    config = load_config(obj["config_path"])
    updates: dict[str, Any] = {}
    if obj["ledger_path"]:
        updates["ledger_path"] = obj["ledger_path"]
    if obj["mappings_dir"]:
        updates["mappings_dir"] = obj["mappings_dir"]
    config = replace(config, **updates)
    i18n.set_zone(config.timezone)
    return config
