"""Shared test fixtures: the demo emulator on loopback and a connector.toml pointing at it."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from connector.mapping import DEMO_MAPPINGS

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = DEMO_MAPPINGS
ANCHOR = date(2026, 6, 15)  # the demo scenario's "today" in tests: statuses are deterministic
# Folders beside the checkout (a CI machine keeps steering material there): no test may need them.
SIBLINGS = (
    ()
    if REPO.parent == REPO.parent.parent
    else tuple(str(p) for p in REPO.parent.iterdir() if p.name != REPO.name)
)
_touched_outside: list[str] = []


def _refuse_outside_reads(event: str, args: tuple[object, ...]) -> None:
    """Record every file or folder a test opens beside the repository (the suite is self-contained)."""
    if event not in {"open", "os.listdir", "os.scandir"} or not args:
        return
    target = args[0]
    if not isinstance(target, (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(target))
    if any(path == sibling or path.startswith(sibling + os.sep) for sibling in SIBLINGS):
        _touched_outside.append(path)


sys.addaudithook(_refuse_outside_reads)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _touched_outside:
        sys.stderr.write(f"\nerror: tests read outside the repository: {sorted(set(_touched_outside))[:5]}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _no_machine_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config search must not find this machine's ~/.config or /etc connector.toml."""
    empty = tmp_path_factory.mktemp("no-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(empty))
    monkeypatch.setattr("connector.config.SYSTEM_CONFIG", empty / "etc-connector.toml")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


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


@pytest.fixture
def demo_site(tmp_path: Path) -> Iterator[Site]:
    from connector.emulator import Emulator, demo_scenario

    token = secrets.token_hex(16)
    (tmp_path / "token").write_text(token + "\n", encoding="utf-8")
    (tmp_path / "token").chmod(0o600)
    with Emulator(demo_scenario(ANCHOR), tokens={token: "full"}) as emu:
        site = Site(emu, token, tmp_path / "connector.toml", tmp_path / "ledger.sqlite", tmp_path)
        site.write_config(report_id=1)
        yield site
