"""Guards: a run whose answer would be wrong stops before it writes (exit 1, the run recorded as
failed, one line naming what is wrong), unless the user confirms with the flag the hint names."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from connector.emulator import functions as emulator_functions
from connector.mapping import DEMO_MAPPINGS
from tests.helpers import Site, toml_value
from tests.reliability.helpers import consistent, run_cli, runs, snapshot, sync

ITSEC = 2  # the demo's ITSEC-CZ course: most of the Czech people's completions


def _evidence_on(path: Path, course_id: int) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(
            conn.execute("SELECT COUNT(*) FROM evidence WHERE course_id = ?", [course_id]).fetchone()[0]
        )
    finally:
        conn.close()


def _own_mappings(site: Site) -> Path:
    """A private copy of the demo mappings the test may break, and the config pointing at it."""
    target = site.tmp / "mappings"
    shutil.copytree(DEMO_MAPPINGS, target)
    text = site.config_path.read_text(encoding="utf-8")
    site.config_path.write_text(
        text.replace(toml_value(str(DEMO_MAPPINGS)), toml_value(str(target))), encoding="utf-8"
    )
    return target


@pytest.mark.parametrize("path", ["report", "per_user", "per_course"])
def test_a_mapped_course_vanishing_stops_the_run(demo_site: Site, path: str) -> None:
    demo_site.write_config(report_id=1, completion_path=path)
    assert sync(demo_site)[0] == 0
    held = _evidence_on(demo_site.ledger_path, ITSEC)
    before = snapshot(demo_site.ledger_path)
    demo_site.emulator.delete_course(ITSEC)  # type: ignore[attr-defined]
    code, out, err = sync(demo_site)
    assert code == 1 and out == ""
    assert err.splitlines()[0] == (
        "error: mapped courses with completions on record are no longer listed by Moodle: "
        f"idnumber:ITSEC-CZ (course id {ITSEC}, {held} completions on record); nothing was written"
    )
    assert "connector sync --allow-vanished-courses" in err.splitlines()[1]
    assert snapshot(demo_site.ledger_path) == before
    last = runs(demo_site.ledger_path)[-1]
    assert last[1] == "failed" and last[2].startswith("SyncRefused: mapped courses")
    consistent(demo_site.ledger_path)

    code, _, err = sync(demo_site, "--allow-vanished-courses")  # the user confirms: it was deleted
    assert code == 0, err
    assert "warning: mapped course idnumber=ITSEC-CZ does not exist in Moodle" in err.splitlines()
    assert _evidence_on(demo_site.ledger_path, ITSEC) == held  # evidence is never deleted
    assert sync(demo_site)[0] == 0  # confirmed once: later runs go on without the flag


@pytest.mark.parametrize("answer", [[], None], ids=["empty", "null"])
def test_an_empty_course_list_stops_the_run(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch, answer: object
) -> None:
    assert sync(demo_site)[0] == 0
    before = snapshot(demo_site.ledger_path)
    params, _ = emulator_functions.FUNCTIONS["core_course_get_courses"]
    monkeypatch.setitem(
        emulator_functions.FUNCTIONS, "core_course_get_courses", (params, lambda call, given: answer)
    )
    code, _, err = sync(demo_site)
    assert code == 1
    assert err.splitlines()[0] == (
        "error: Moodle lists none of the 4 mapped courses (it listed 0 courses); nothing was written"
    )
    assert snapshot(demo_site.ledger_path) == before


def test_an_empty_course_list_stops_even_the_first_run(
    demo_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    params, _ = emulator_functions.FUNCTIONS["core_course_get_courses"]
    monkeypatch.setitem(emulator_functions.FUNCTIONS, "core_course_get_courses", (params, lambda c, p: []))
    code, _, err = sync(demo_site)
    assert code == 1 and err.startswith("error: Moodle lists none of the 4 mapped courses")
    conn = sqlite3.connect(demo_site.ledger_path)
    assert conn.execute("SELECT COUNT(*) FROM statuses").fetchone()[0] == 0  # nobody turned missing
    conn.close()


def test_a_truncated_requirements_file_stops_before_anything_is_touched(demo_site: Site) -> None:
    mappings = _own_mappings(demo_site)
    assert sync(demo_site)[0] == 0
    before = snapshot(demo_site.ledger_path)
    runs_before = runs(demo_site.ledger_path)
    requirements = mappings / "requirements.toml"
    header = requirements.read_text(encoding="utf-8").split("[[requirement]]")[0]
    requirements.write_text(header, encoding="utf-8")  # only the comment header is left
    code, _, err = sync(demo_site)
    assert code == 2
    assert err.splitlines()[:2] == [
        "error: 1 problem found:",
        f"  - {mappings}: the directory has no requirement (add [[requirement]] entries; if "
        "requirements.toml was truncated, restore it from a backup or version control)",
    ]
    assert snapshot(demo_site.ledger_path) == before and runs(demo_site.ledger_path) == runs_before


def _username(path: Path, user_id: int) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("SELECT username FROM people WHERE user_id = ?", [user_id]).fetchone()[0])
    finally:
        conn.close()


def _drop_requirement(mappings: Path, requirement_id: str) -> None:
    path = mappings / "requirements.toml"
    head, *blocks = path.read_text(encoding="utf-8").split("[[requirement]]")
    kept = [b for b in blocks if f'id = "{requirement_id}"' not in b]
    assert len(kept) == len(blocks) - 1
    path.write_text("[[requirement]]".join([head, *kept]), encoding="utf-8")


def test_dropping_a_requirement_that_holds_statuses_needs_confirmation(demo_site: Site) -> None:
    mappings = _own_mappings(demo_site)
    assert sync(demo_site)[0] == 0
    conn = sqlite3.connect(demo_site.ledger_path)
    held = conn.execute(
        "SELECT user_id, status FROM statuses WHERE requirement_id = 'digvar-si' ORDER BY user_id"
    ).fetchall()
    conn.close()
    assert held
    before = snapshot(demo_site.ledger_path)
    _drop_requirement(mappings, "digvar-si")
    code, _, err = sync(demo_site)
    assert code == 1
    assert err.splitlines()[0] == (
        f"error: requirements that hold statuses are no longer in the mappings: "
        f"digvar-si ({len(held)} people); nothing was written"
    )
    assert snapshot(demo_site.ledger_path) == before

    code, out, err = sync(demo_site, "--allow-dropped-requirements")
    assert code == 0, err
    assert (
        f"warning: requirements removed from the mappings, their statuses end: digvar-si ({len(held)} people)"
        in err.splitlines()
    )
    conn = sqlite3.connect(demo_site.ledger_path)
    ended = conn.execute(
        "SELECT user_id, from_status, to_status, reason FROM status_history "
        "WHERE requirement_id = 'digvar-si' AND to_status = 'dropped' ORDER BY user_id"
    ).fetchall()
    left = conn.execute("SELECT COUNT(*) FROM statuses WHERE requirement_id = 'digvar-si'").fetchone()[0]
    conn.close()
    assert ended == [(u, s, "dropped", "requirement removed from the mappings") for u, s in held]
    assert left == 0
    someone = _username(demo_site.ledger_path, held[0][0])
    code, out, _ = run_cli(demo_site, "person", someone, "--format", "json")
    assert {
        "requirement": "digvar-si",
        "from": held[0][1],
        "to": "dropped",
        "reason": "requirement removed from the mappings",
    }.items() <= json.loads(out)["history"][-1].items()
    consistent(demo_site.ledger_path)
    assert sync(demo_site)[0] == 0  # once dropped, later runs go on without the flag
