"""Hostile values at every door: mapping files, Moodle's answers, and output read by people."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.mapping import DEMO_MAPPINGS


def _mappings(tmp_path: Path, edit: str, old: str, new: str) -> Path:
    """A copy of the shipped mappings with one text replaced in one file (the first match)."""
    folder = tmp_path / "mappings"
    shutil.copytree(DEMO_MAPPINGS, folder)
    path = folder / edit
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def _check(folder: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["mappings", "check", "--mappings", str(folder)])
    return result.exit_code, result.output.splitlines()


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if text in line)


# -- item 2: mappings check refuses what a sync cannot use -----------------------------------------
@pytest.mark.parametrize("key", ["valid_for", "warn_before", "grace"])
def test_a_duration_beyond_100_years_is_refused(tmp_path: Path, key: str) -> None:
    old = {"valid_for": 'valid_for = "24 months"', "warn_before": 'warn_before = "60 days"',
           "grace": 'grace = "90 days"'}[key]
    new = f'{key} = "999999999 years"'
    folder = _mappings(tmp_path, "requirements.toml", old, new)
    path = folder / "requirements.toml"
    code, lines = _check(folder)
    hint = "write at most 100 years (1200 months, 5218 weeks, 36525 days)"
    if key == "valid_for":
        hint += "; leave valid_for out for a completion that never expires"
    assert code == 2
    assert lines == ["error: 1 problem found:",
                     f"  - {path}:{_line_of(path, new)}: requirement[itsec-cz].{key}: "
                     f"'999999999 years' is too long to compute dates with ({hint})"]


def test_100_years_is_still_accepted(tmp_path: Path) -> None:
    folder = _mappings(tmp_path, "requirements.toml", 'valid_for = "24 months"', 'valid_for = "100 years"')
    assert _check(folder)[0] == 0


def test_a_share_above_100_percent_is_refused(tmp_path: Path) -> None:
    folder = _mappings(tmp_path, "requirements.toml", '\nmin = "50 %"', '\nmin = "150 %"')
    path = folder / "requirements.toml"
    code, lines = _check(folder)
    assert code == 2
    assert lines == ["error: 1 problem found:",
                     f"  - {path}:{_line_of(path, '150 %')}: requirement[itsec-cz].target[#1].min: "
                     "must be a share between 0 and 100 %, not '150 %' (write min = \"50 %\" or min = 0.5)"]


@pytest.mark.parametrize(("written", "message"), [
    ("100000000000000000000000", "100000000000000000000000 is larger than any Moodle course id can be "
     "(a course id is at most 9223372036854775807; copy it from the course's URL (id=...))"),
    ("1e23", "must be a positive whole number, not a number"),
    ("-4", "must be a positive whole number, not a whole number"),
])
def test_a_course_id_outside_sqlites_range_is_refused(tmp_path: Path, written: str, message: str) -> None:
    folder = _mappings(tmp_path, "courses.toml", 'idnumber = "ITSEC-CZ"', f"id = {written}")
    path = folder / "courses.toml"
    code, lines = _check(folder)
    assert code == 2
    assert lines == ["error: 1 problem found:",
                     f"  - {path}:{_line_of(path, f'id = {written}')}: course.itsec-cz.id: {message}"]


def test_a_toml_nesting_bomb_is_a_mapping_problem(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(DEMO_MAPPINGS, folder)
    bomb = folder / "zz-bomb.toml"
    bomb.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    code, lines = _check(folder)
    assert code == 2
    assert lines == ["error: 1 problem found:",
                     f"  - {bomb}: values are nested too deeply to read "
                     "(mappings need a few levels at most; look for a long run of '[' or '{')"]


def test_a_truncated_requirements_file_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(DEMO_MAPPINGS, folder)
    requirements = folder / "requirements.toml"
    header = requirements.read_text(encoding="utf-8").split("[[requirement]]")[0]
    requirements.write_text(header, encoding="utf-8")  # only the comment header is left
    code, lines = _check(folder)
    assert code == 2
    assert lines == ["error: 1 problem found:",
                     f"  - {folder}: the directory has no requirement (add [[requirement]] entries; if "
                     "requirements.toml was truncated, restore it from a backup or version control)"]
