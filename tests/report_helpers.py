"""A ledger with a history, for the report tests: the demo site synced on several days."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from click.testing import CliRunner, Result

from connector.cli import main
from tests.helpers import ANCHOR, MAPPINGS, synced_demo_ledger

SYNC_DAYS = (date(2026, 3, 2), date(2026, 5, 4), ANCHOR)  # three runs: a trend to draw


def connector(folder: Path, *args: str) -> Result:
    """The CLI on the ledger and configuration in ``folder`` (see synced_demo)."""
    site = ("--config", str(folder / "connector.toml"), "--ledger", str(folder / "demo.sqlite"))
    env = {"MOODLE_URL": None, "MOODLE_TOKEN": None, "CONNECTOR_CONFIG": None, "CONNECTOR_LEDGER": None}
    return CliRunner(env=env).invoke(main, [*site, "--mappings", str(MAPPINGS), *args])


@contextmanager
def synced_demo(folder: Path) -> Iterator[Path]:
    """``folder`` holding connector.toml and demo.sqlite, synced from the demo emulator on SYNC_DAYS."""
    synced_demo_ledger(folder, SYNC_DAYS)
    yield folder
