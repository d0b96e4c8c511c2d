"""Trying the connector without a Moodle: `emulator` serves the built-in one, `demo` syncs from it."""

from __future__ import annotations

import errno
import secrets
import shlex
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from connector.cli.app import completion_path_choice, format_option, main, now_of
from connector.cli.output import Progress, echo_warnings
from connector.cli.planning import print_due
from connector.cli.reports import print_status, write_report
from connector.config import Config
from connector.durations import Duration
from connector.errors import UsageError
from connector.i18n import _


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
    click.echo(
        _("Moodle emulator ({scenario}) serving {url}").format(
            scenario=scenario, url=f"{emu.url}/webservice/rest/server.php"
        )
    )
    click.echo(
        _("try: {command}").format(
            command=f"curl -s {emu.url}/webservice/rest/server.php -d wstoken=<the --token value> "
            "-d wsfunction=core_webservice_get_site_info -d moodlewsrestformat=json"
        )
    )
    sys.stdout.flush()
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()


def _port_error(port: int, exc: OSError) -> UsageError:
    reason = {errno.EADDRINUSE: _("is in use"), errno.EACCES: _("needs privileges this user lacks")}.get(
        exc.errno or 0, _("cannot be opened ({reason})").format(reason=exc.strerror)
    )
    return UsageError(
        _("port {port} on 127.0.0.1 {reason}").format(port=port, reason=reason),
        hint=_("pass --port 0 for any free port, or another port"),
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
    type=completion_path_choice,
    default="auto",
    show_default=True,
    help="Completion path to use.",
)
@format_option()
@click.pass_context
def demo(ctx: click.Context, demo_ledger: Path | None, completion_path: str, fmt: str) -> None:
    """Run a real sync against the built-in Moodle emulator and print the status.

    Starts the emulator's demo scenario (Jablonec nad Nisou, Česká Lípa, two small municipalities,
    Ljubljana) on a free loopback port, syncs into a ledger and shows compliance per department.
    """
    from connector.cli.needs import print_needs, read_survey
    from connector.emulator import Emulator, demo_scenario
    from connector.emulator.feedback import NEEDS_FEEDBACK
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
                needs_feedback_cmid=NEEDS_FEEDBACK,
            )
            click.echo(_("Moodle emulator: {url} (demo scenario)").format(url=emu.url), err=True)
            result = run_sync(config, SyncOptions(), progress=Progress(sys.stderr.isatty()), now=now_of(ctx))
            with Ledger.open(ledger_path, create=False) as ledger:  # the demo's needs survey, as a site would
                survey_line = read_survey(config, ledger, mappings, now_of(ctx).year, now_of(ctx), warn=False)
        echo_warnings(result.warnings)
        click.echo(result.summary_line(), err=True)
        report_path = (
            demo_ledger.resolve().parent
            if demo_ledger
            else Path(tempfile.mkdtemp(prefix="connector-demo-report-"))
        ) / "demo-report.html"
        with Ledger.open(ledger_path, create=False) as ledger:
            print_status(ledger, mappings, fmt)
            if fmt == "table":  # the needs analysis of this year, short: counts without the names
                click.echo(survey_line, err=True)
                click.echo()
                print_needs(ledger, mappings, now_of(ctx).year, fmt, short=True)
            if fmt == "table":  # who must act first: the next 60 days, the ten most urgent
                click.echo("")
                print_due(ledger, mappings, result.as_of, Duration(60, "days"), limit=10)
            write_report(ledger, mappings, report_path)
        click.echo(_("HTML report: {path} (open it in a browser)").format(path=report_path), err=True)
        if demo_ledger:
            # Absolute paths: the hint must run as printed from any folder, the demo mappings included.
            explore = (
                f"connector --ledger {shlex.quote(str(demo_ledger.resolve()))} "
                f"--mappings {shlex.quote(str(Path(mappings_dir).resolve()))}"
            )
            click.echo(
                _(
                    "ledger kept at {path}; try: {command} person u001 (or status, export, runs, unplaced)"
                ).format(path=demo_ledger.resolve(), command=explore),
                err=True,
            )
        else:
            click.echo(
                _(
                    "the ledger was temporary; keep one to explore: connector demo --ledger demo.sqlite "
                    "(it then prints the commands to explore it)"
                ),
                err=True,
            )
