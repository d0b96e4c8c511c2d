"""Active people the mappings place in no department: how many, under which spellings, and the
alias line that would place them (`connector unplaced`, and the sync's warning).

A spelling is the pair of Moodle profile fields ``institution`` + ``department``, normalised as the
mapping matcher compares them (NFC, case-folded, white space collapsed). Placement is read from the
ledger, i.e. as the last sync decided it; people who match departments on different branches
(conflicts) are not counted here: `connector sync` names them one by one.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connector.i18n import _
from connector.ledger import Ledger
from connector.mapping import Department, Mappings, normalise
from connector.shares import format_share


@dataclass(frozen=True)
class Fix:
    """One line to put in one ``[[department]]`` entry (it replaces that entry's line of the same key)."""

    file: Path | None
    department: str  # the id of the entry to edit
    key: str  # "department_aliases" or "institution_aliases"
    line: str


@dataclass
class Spelling:
    institution: str
    department: str
    people: int
    closest: str | None = None  # the id of the most similar department
    fixes: list[Fix] = field(default_factory=list)
    note: str | None = None  # why no line can help


def unplaced_counts(ledger: Ledger) -> tuple[int, int]:
    """(active people in no department, active people)."""
    unplaced, _conflicts, active = ledger.queries.placement_counts()
    return unplaced, active


def unplaced_warning(ledger: Ledger, max_share: float) -> str | None:
    """The sync's warning when more than ``max_share`` of the active people are in no department."""
    unplaced, active = unplaced_counts(ledger)
    if not active or unplaced / active <= max_share:
        return None
    return _(
        "{unplaced} of {active} active people ({share}) are in no department (more than [sync] "
        "max_unplaced = {limit}); run `connector unplaced` for their spellings and the alias lines "
        "that place them"
    ).format(
        unplaced=unplaced, active=active, share=format_share(unplaced / active), limit=format_share(max_share)
    )


def unplaced_spellings(ledger: Ledger, mappings: Mappings, mappings_dir: Path) -> list[Spelling]:
    """Every spelling that leaves active people unplaced, most people first, each with its fixes."""
    counts: Counter[tuple[str, str]] = Counter(
        (normalise(institution or ""), normalise(department or ""))
        for institution, department in ledger.queries.unplaced_spellings()
    )
    spellings = [Spelling(inst, dept, n) for (inst, dept), n in counts.items()]
    spellings.sort(key=lambda s: (-s.people, s.institution, s.department))
    wanted: dict[tuple[str, str], list[str]] = {}  # (entry id, key) -> new spellings, in order
    for spelling in spellings:
        _diagnose(spelling, mappings, wanted)
    files = _files_by_department(mappings_dir)
    for spelling in spellings:  # one line per entry and key, holding every new spelling it needs
        spelling.fixes = [
            Fix(
                files.get(f.department),
                f.department,
                f.key,
                _line(mappings.department(f.department), f.key, wanted[(f.department, f.key)]),
            )
            for f in spelling.fixes
        ]
    return spellings


def _line(entry: Department, key: str, new: list[str]) -> str:
    existing = (entry.department if key == "department_aliases" else entry.institution)[1:]
    return f"{key} = [{', '.join(json.dumps(v, ensure_ascii=False) for v in [*existing, *new])}]"


def spelling_rows(spellings: list[Spelling], mappings: Mappings) -> list[dict[str, Any]]:
    """One object per spelling, its fixes nested (for JSON)."""
    from connector.reports.views import display_name

    return [
        {
            "people": s.people,
            "institution": s.institution,
            "department": s.department,
            "closest": s.closest,
            "closest_name": display_name(mappings, s.closest) if s.closest else None,
            "fixes": [
                {"file": str(f.file) if f.file else None, "entry": f.department, "key": f.key, "line": f.line}
                for f in s.fixes
            ],
            "note": s.note,
        }
        for s in spellings
    ]


def fix_rows(spellings: list[Spelling]) -> list[dict[str, Any]]:
    """One flat row per line to add (or per note), ``first`` marking a spelling's first row."""
    rows: list[dict[str, Any]] = []
    for s in spellings:
        base = {
            "people": s.people,
            "institution": s.institution,
            "department": s.department,
            "closest": s.closest,
            "note": s.note,
        }
        fixes: list[Fix | None] = list(s.fixes) or [None]
        for i, fix in enumerate(fixes):
            rows.append(
                dict(
                    base,
                    first=i == 0,
                    file=str(fix.file) if fix and fix.file else None,
                    entry=fix.department if fix else None,
                    line=fix.line if fix else None,
                )
            )
    return rows


def _diagnose(spelling: Spelling, mappings: Mappings, wanted: dict[tuple[str, str], list[str]]) -> None:
    """The closest department and which of the two spellings it does not know yet."""
    if not spelling.department:
        spelling.note = (
            _("no department in Moodle: fill in the person's department profile field")
            if spelling.institution
            else _("no institution or department in Moodle: fill in the person's profile fields")
        )
        return
    best: tuple[float, Department, Department | None, bool, bool] | None = None
    for dept in mappings.departments:
        if not dept.department:
            continue
        declaring = _institution_owner(mappings, dept)
        institutions = [normalise(i) for i in declaring.institution] if declaring else []
        inst_ok = not institutions or spelling.institution in institutions
        dept_ok = spelling.department in {normalise(s) for s in dept.department}
        score = max(_similar(spelling.department, normalise(s)) for s in dept.department)
        score += 1.0 if inst_ok else max(_similar(spelling.institution, i) for i in institutions)
        if best is None or score > best[0]:
            best = (score, dept, declaring, inst_ok, dept_ok)
    if best is None:
        spelling.note = _("no department in the mappings is placed by institution + department")
        return
    _score, dept, declaring, inst_ok, dept_ok = best
    spelling.closest = dept.id
    if not dept_ok:
        _want(spelling, wanted, dept.id, "department_aliases", spelling.department)
    if not inst_ok and declaring is not None:
        if spelling.institution:
            _want(spelling, wanted, declaring.id, "institution_aliases", spelling.institution)
        else:
            spelling.note = _("no institution in Moodle: fill in the person's institution profile field")


def _want(
    spelling: Spelling, wanted: dict[tuple[str, str], list[str]], entry: str, key: str, value: str
) -> None:
    values = wanted.setdefault((entry, key), [])
    if value not in values:
        values.append(value)
    spelling.fixes.append(Fix(None, entry, key, ""))  # the line is written once every spelling is known


def _institution_owner(mappings: Mappings, dept: Department) -> Department | None:
    """The department whose institution spellings apply to ``dept`` (itself or its nearest ancestor)."""
    for node in (dept.id, *mappings.ancestors(dept.id)):
        if mappings.department(node).institution:
            return mappings.department(node)
    return None


def _similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _files_by_department(directory: Path) -> dict[str, Path]:
    """Which mapping file defines each department (the loader merges them and forgets)."""
    found: dict[str, Path] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        entries = data.get("department", [])
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                found.setdefault(entry["id"], path)
    return found
