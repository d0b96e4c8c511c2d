"""What tests share besides fixtures: constants, the demo site's shape, and a loopback HTTP server.

Tests import from here, never from a conftest (pytest loads conftest files itself; importing one
as a module loads it twice). Fixtures stay in tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from connector.emulator.server import LoopbackServer
from connector.mapping import DEMO_MAPPINGS

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = DEMO_MAPPINGS
ANCHOR = date(2026, 6, 15)  # the demo scenario's "today" in tests: statuses are deterministic


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a valid TOML basic string


@dataclass
class Site:
    """A running demo emulator plus a config directory for the connector."""

    emulator: object
    token: str
    config_path: Path
    ledger_path: Path
    tmp: Path

    def write_config(self, **moodle: object) -> Path:
        lines = ["[moodle]", f'url = "{self.emulator.url}"', 'token_file = "token"']  # type: ignore[attr-defined]
        for key, value in moodle.items():
            lines.append(f"{key} = {toml_value(value)}")
        lines += [
            "[ledger]",
            'path = "ledger.sqlite"',
            "[mappings]",
            f"dir = {toml_value(str(MAPPINGS))}",
            "[sync]",
            "full_every_days = 7",
        ]
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self.config_path


def demo_today() -> date:
    """The day `connector demo` syncs as of: today in the demo mappings' time zone, else the
    configuration's default (near midnight UTC, Prague is already a day ahead)."""
    from zoneinfo import ZoneInfo

    from connector.config import Config
    from connector.mapping import load_mappings

    zone = load_mappings(DEMO_MAPPINGS).timezone or Config().timezone
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


def synced_demo_ledger(folder: Path, days: Sequence[date] = (ANCHOR,)) -> Path:
    """One real sync of the demo site (emulator over loopback) as of ANCHOR into folder/demo.sqlite,
    for read-only tests: statuses and dates do not depend on the day the tests run. More ``days``:
    a sync as of each, in order (a ledger with a history of runs)."""
    from click.testing import CliRunner

    from connector.cli import main
    from connector.emulator import Emulator, demo_scenario

    ledger = folder / "demo.sqlite"
    (folder / "token").write_text("t0ken\n", encoding="utf-8")
    with Emulator(demo_scenario(ANCHOR), tokens={"t0ken": "full"}) as emu:
        (folder / "connector.toml").write_text(
            f'[moodle]\nurl = "{emu.url}"\ntoken_file = "token"\nreport_id = 1\n', encoding="utf-8"
        )
        config = ("--config", str(folder / "connector.toml"), "--ledger", str(ledger))
        for day in days:
            result = CliRunner().invoke(
                main, [*config, "--mappings", str(MAPPINGS), "sync", "--as-of", day.isoformat()]
            )
            assert result.exit_code == 0, result.stderr
    return ledger


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean (no access log on stderr)."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def move_in_and_out(ledger: Path, department: str, other: str, *, deactivate: bool = False) -> None:
    """Since the last sync: the first active person of ``department``'s subtree moved to ``other``,
    the first of ``other``'s subtree into ``department`` (and, ``deactivate``, the second of the
    subtree left), as a sync reading their new profiles writes it."""
    with sqlite3.connect(ledger) as conn:

        def first(subtree: str, count: int = 1) -> list[int]:
            return [
                row[0]
                for row in conn.execute(
                    "SELECT user_id FROM people WHERE active AND department_id LIKE ? "
                    "ORDER BY user_id LIMIT ?",
                    [f"{subtree}%", count],
                )
            ]

        leaving, *left = first(department, 2)
        (arriving,) = first(other)
        conn.execute("UPDATE people SET department_id = ? WHERE user_id = ?", [other, leaving])
        conn.execute("UPDATE people SET department_id = ? WHERE user_id = ?", [department, arriving])
        if deactivate:
            conn.execute("UPDATE people SET active = 0 WHERE user_id = ?", left)


@contextmanager
def loopback_http(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port, one thread per request) and yield its base URL.

    With ``tls`` (a server-side context) it speaks HTTPS. Stopped and closed on exit. The
    ``http_server`` fixture (tests/conftest.py) is this, scoped to one test.
    """
    server = LoopbackServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def sync_process(site: Site, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The CLI in its own process (to kill it, or to give it another environment)."""
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connector.cli",
            "--config",
            str(site.config_path),
            "sync",
            "--as-of",
            ANCHOR.isoformat(),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )
