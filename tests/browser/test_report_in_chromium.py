"""The HTML report as a reader's browser shows it: headless Chromium (Debian's `chromium` package).

Chromium loads the file, runs whatever the page would run, and hands back the DOM it built
(`--dump-dom`); the numbers read from that DOM must equal `status --format json` for the same
ledger. Console messages go to stderr (`--enable-logging=stderr`), where a script error would show.
A screenshot of the first page is kept in tests/artifacts/ for people (and CI) to look at.

Without Chromium these tests fail and say how to install it; CONNECTOR_SKIP_BROWSER=1 skips them
on purpose.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from connector.reports.html import percent
from tests.report_helpers import connector, synced_demo

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CONNECTOR_SKIP_BROWSER") == "1":
        pytest.skip("CONNECTOR_SKIP_BROWSER=1: the report is not checked in a browser")
    pytest.fail(
        "Chromium is not installed, so the HTML report cannot be checked in a browser: "
        "install it with `apt-get update && apt-get install -y chromium` (.ci/run does this as root), "
        "or set CONNECTOR_SKIP_BROWSER=1 to skip these tests on purpose",
        pytrace=False,
    )


def run_chromium(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"  # a new, empty profile each time
    return subprocess.run(
        [_chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def console_errors(stderr: str) -> list[str]:
    """Lines where Chromium reported a page's console error or an uncaught exception."""
    return [
        line for line in stderr.splitlines() if "CONSOLE" in line and re.search(r"error|Uncaught", line, re.I)
    ]


class ReportReader(HTMLParser):
    """The numbers each department's card shows: {(department, requirement): {key: text}}."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[tuple[str, str], dict[str, str]] = {}
        self.department = ""
        self.key: str | None = None
        self.card: dict[str, str] | None = None
        self.html_lang: str | None = None
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "script":
            self.scripts += 1
        if tag == "section" and a.get("data-department"):
            self.department = a["data-department"] or ""
        if tag == "div" and a.get("data-requirement"):
            self.card = self.cards.setdefault((self.department, a["data-requirement"] or ""), {})
        if tag == "td" and a.get("data-key"):
            self.key = a["data-key"]

    def handle_data(self, data: str) -> None:
        if self.key and self.card is not None:
            self.card[self.key] = self.card.get(self.key, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self.key = None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with synced_demo(tmp_path_factory.mktemp("browser")) as folder:
        result = connector(folder, "report", "-o", str(folder / "report.html"))
        assert result.exit_code == 0, result.output
        yield folder


@pytest.mark.slow
def test_chromium_shows_the_numbers_of_status_json(site: Path, tmp_path: Path) -> None:
    shown = run_chromium(tmp_path, (site / "report.html").as_uri(), "--dump-dom")
    reader = ReportReader()
    reader.feed(shown.stdout)
    status = connector(site, "status", "--format", "json")
    assert status.exit_code == 0
    expected = {
        (row["department"], row["requirement"]): {
            **{key: str(row[key]) for key in ("in_scope", "compliant", "expiring", "grace", "expired")},
            **{key: str(row[key]) for key in ("missing", "exempt")},
            "share": percent(row["share"]),
        }
        for row in json.loads(status.stdout)
    }
    assert len(expected) == 45  # every department x requirement of the demo
    assert {k: {key: v.strip() for key, v in card.items()} for k, card in reader.cards.items()} == expected
    assert reader.html_lang == "en" and reader.scripts == 0
    assert console_errors(shown.stderr) == []


@pytest.mark.slow
def test_a_script_error_would_be_caught(tmp_path: Path) -> None:
    """The console check above can fail: a page throwing an error is seen on Chromium's stderr."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html lang=en><title>x</title><script>undefinedCall()</script>", "utf-8")
    shown = run_chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert any("undefinedCall" in line for line in console_errors(shown.stderr))


@pytest.mark.slow
def test_first_page_screenshot_and_one_department_per_printed_page(site: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "report-first-page.png"
    png.unlink(missing_ok=True)
    run_chromium(tmp_path, (site / "report.html").as_uri(), "--window-size=1240,1754", f"--screenshot={png}")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    pdf = tmp_path / "report.pdf"
    run_chromium(tmp_path, (site / "report.html").as_uri(), "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    # the summary, then each of the demo's 14 departments starting a page of its own
    assert pages >= 1 + 14


def test_without_chromium_the_test_fails_and_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.delenv("CONNECTOR_SKIP_BROWSER", raising=False)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get update && apt-get install -y chromium"):
        _chromium()
    monkeypatch.setenv("CONNECTOR_SKIP_BROWSER", "1")
    with pytest.raises(pytest.skip.Exception, match="CONNECTOR_SKIP_BROWSER=1"):
        _chromium()
