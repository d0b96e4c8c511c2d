"""The habits CI enforces, and the documents that teach them, stay in step."""

from __future__ import annotations

import re

from tests.helpers import REPO

LINT_COMMANDS = ["ruff check .", "ruff format --check .", "mypy --strict connector"]


def _lines(name: str) -> list[str]:
    return (REPO / name).read_text(encoding="utf-8").splitlines()


def test_ci_runs_the_readme_test_command_then_every_lint_command_on_its_own_line() -> None:
    ci = [line.strip() for line in _lines(".ci/run")]
    readme_test = next(
        line.strip() for line in _lines("README.md") if line.strip().endswith("python -m pytest -q")
    )
    assert "set -eo pipefail" in ci
    tests_at = next(i for i, line in enumerate(ci) if line.startswith(readme_test))
    # a command of its own under `set -e`: any finding fails the run
    assert [line for line in ci[tests_at + 1 :] if line in LINT_COMMANDS] == LINT_COMMANDS


def test_contributing_shows_the_lint_commands_ci_runs_and_the_quick_loop() -> None:
    shown = {line.strip().split("  #")[0].strip() for line in _lines("CONTRIBUTING.md")}
    assert set(LINT_COMMANDS) <= shown
    assert {"python -m pytest -q", 'python -m pytest -q -m "not slow"'} <= shown


def test_changelog_keeps_an_unreleased_section_grouped_as_keep_a_changelog_says() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    unreleased = text.split("## [Unreleased]", 1)[1].split("\n## ", 1)[0]
    groups = re.findall(r"^### (\w+)$", unreleased, re.MULTILINE)
    assert groups == ["Added", "Changed", "Fixed", "Security"]
