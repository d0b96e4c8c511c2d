"""Shared test fixtures: the demo emulator on loopback and a connector.toml pointing at it, and a
loopback HTTP server for a handler of the test's own. Helpers and constants are in tests/helpers.py."""

from __future__ import annotations

import os
import secrets
import shutil
import ssl
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.helpers import ANCHOR, REPO, Site, loopback_http

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

_processes_started: list[str] = []


def _count_processes(event: str, args: tuple[object, ...]) -> None:
    if event == "subprocess.Popen":
        _processes_started.append(str(args[1]) if len(args) > 1 else "?")


sys.addaudithook(_count_processes)


@pytest.fixture(autouse=True)
def _a_test_starting_a_process_is_marked_slow(request: pytest.FixtureRequest) -> Iterator[None]:
    """`python -m pytest -m "not slow"` is the quick loop: it must start no process of its own.
    (Processes started by a module-scoped fixture before the test count for no test.)"""
    before = len(_processes_started)
    yield
    started = _processes_started[before:]
    if started and request.node.get_closest_marker("slow") is None:
        pytest.fail(f"this test starts a process ({started[0][:80]}): mark it @pytest.mark.slow")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _touched_outside:
        sys.stderr.write(f"\nerror: tests read outside the repository: {sorted(set(_touched_outside))[:5]}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True, scope="session")
def _temporary_files_stay_in_one_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What the code under test puts in the system's temporary folder (`connector demo`'s report,
    SQLite's staging files), in-process and in the processes tests start, lands in one folder
    removed when the session ends: the suite leaves nothing in /tmp. Like /tmp it is open to
    everyone (sticky): tests that run a command as another user (`nobody`) use it too."""
    tmp_path_factory.getbasetemp()  # pytest's own folders stay where pytest puts them
    folder = tempfile.mkdtemp(prefix="connector-tests-")
    os.chmod(folder, 0o1777)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TMPDIR", folder)
            patch.setattr(tempfile, "tempdir", folder)
            yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_machine_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The config search must not find this machine's ~/.config or /etc connector.toml."""
    empty = tmp_path_factory.mktemp("no-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(empty))
    monkeypatch.setattr("connector.config.SYSTEM_CONFIG", empty / "etc-connector.toml")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


@pytest.fixture(autouse=True)
def _english_unless_asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests read English unless they pass --lang or set a locale: the machine's locale must not decide."""
    from connector import i18n

    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    yield
    i18n.set_language("en")


@pytest.fixture
def http_server() -> Iterator[Callable[..., str]]:
    """Start a loopback HTTP(S) server for a handler class: ``url = http_server(Handler, tls=None)``.

    Every server started in the test is stopped after it (see ``helpers.loopback_http``)."""
    with ExitStack() as servers:

        def start(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> str:
            return servers.enter_context(loopback_http(handler, tls))

        yield start


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
