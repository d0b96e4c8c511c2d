"""Which columns every table and CSV file shows: keys, headings and order, in one place.

A table column is a (row key, heading) pair; a CSV file is a list of row keys (the key is the
heading). These orders are an interface: scripts read the CSV files by position, so new CSV
columns go at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.i18n import N_, _
from connector.reports.words import STATUS_WORDS

Column = tuple[str, str]  # (row key, heading shown in a table: English, translated when shown)

# Table cells under these keys are shown as the reader writes a day, or a day and a time (CSV and
# JSON keep ISO 8601 for scripts).
DAY_KEYS = frozenset({"valid_until", "since", "due", "due_on", "on", "imported_on", "as_of"})
MOMENT_KEYS = frozenset({"started_at", "completed_at", "first_seen", "saved_at"})


@dataclass(frozen=True)
class Columns:
    """What one view shows: ``table`` as a text table, ``csv`` as CSV (either may be empty)."""

    table: tuple[Column, ...] = ()
    csv: tuple[str, ...] = ()


STATUS = Columns(
    table=(
        ("tree_name", N_("department")),
        ("requirement", N_("requirement")),
        ("title", N_("title")),
        ("in_scope", N_("in scope")),
        ("compliant", N_("compliant")),
        ("expiring", N_("expiring")),
        ("expired", N_("expired")),
        ("missing", N_("missing")),
        ("grace", N_("grace")),
        ("exempt", N_("exempt")),
        ("share", N_("share")),
        ("targets_met", N_("targets met")),
        ("targets_judged", N_("targets")),  # each target's figure in words, next to its goal
    ),
    csv=(
        "department",
        "requirement",
        "in_scope",
        "compliant",
        "expiring",
        "expired",
        "missing",
        "share",
        "targets_met",
        "organisation",
    ),
)

EXPORT = Columns(
    csv=(
        "username",
        "idnumber",
        "department_id",
        "department_name",
        "requirement",
        "status",
        "valid_until",
        "decided_by_course",
        "decided_by_completed_at",
        "organisation",
        "organisation_name",
        "decided_by_source",
        "fullname",
        "email",
    ),
)

RUNS = Columns(
    table=(
        ("id", N_("run")),
        ("started_at", N_("started")),
        ("outcome", N_("outcome")),
        ("mode", N_("mode")),
        ("completion_path", N_("path")),
        ("calls", N_("calls")),
        ("new", N_("new completions")),
        ("error", N_("error")),
    ),
    csv=("id", "started_at", "finished_at", "outcome", "mode", "completion_path", "as_of", "error"),
)

PERSON_STATUSES = Columns(
    table=(
        ("requirement", N_("requirement")),
        ("title", N_("title")),
        ("status", N_("status")),
        ("valid_until", N_("valid until")),
        ("since", N_("since")),
        ("due", N_("due")),
        ("decided_by", N_("decided by")),
        ("detail", N_("detail")),
    ),
    csv=("requirement", "status", "valid_until", "since", "due", "decided_by", "completed_at", "detail"),
)

PERSON_EVIDENCE = Columns(
    table=(
        ("course", N_("course")),
        ("completed_at", N_("completed")),
        ("source", N_("source")),
        ("first_seen", N_("first seen")),
        ("still_in_moodle", N_("in Moodle")),
    ),
)

PERSON_HISTORY = Columns(
    table=(("on", N_("date")), ("requirement", N_("requirement")), ("from", N_("from")), ("to", N_("to"))),
)

UNPLACED = Columns(
    table=(
        ("people", N_("people")),
        ("institution", N_("institution")),
        ("department", N_("department")),
        ("closest", N_("closest department")),
        ("where", N_("edit")),
        ("line", N_("line to put there")),
    ),
    csv=("people", "institution", "department", "closest", "file", "entry", "line", "note"),
)

COURSES_MAPPED = Columns(
    table=(
        ("requirement", N_("requirement")),
        ("id", N_("id")),
        ("idnumber", N_("idnumber")),
        ("name", N_("name")),
        ("visible", N_("visible")),
        ("completion", N_("completion")),
        ("enrolled", N_("enrolled")),
        ("completed", N_("completed")),
    ),
    csv=("requirement", "ref", "id", "idnumber", "name", "visible", "completion", "enrolled", "completed"),
)

COURSES_UNMAPPED = Columns(
    table=(
        ("id", N_("id")),
        ("idnumber", N_("idnumber")),
        ("name", N_("name")),
        ("visible", N_("visible")),
        ("completion", N_("completion")),
    ),
)

EVIDENCE_IMPORTS = Columns(
    table=(
        ("id", N_("import")),
        ("imported_on", N_("imported")),
        ("imported_by", N_("by")),
        ("source", N_("source")),
        ("file_name", N_("file")),
        ("rows", N_("rows")),
        ("state", N_("state")),
    ),
    csv=(
        "id",
        "imported_at",
        "imported_by",
        "source",
        "file_name",
        "sha256",
        "rows",
        "rows_held",
        "removed_at",
        "removed_by",
        "removed_reason",
    ),
)

# `connector due`: the CSV is a mail merge's data source (one row per person x requirement).
DUE = Columns(
    table=(
        ("due_on", N_("due")),
        ("fullname", N_("full name")),
        ("username", N_("username")),
        ("department_name", N_("department")),
        ("organisation_name", N_("organisation")),
        ("requirement", N_("requirement")),
        ("status", N_("status")),
        ("course", N_("course to take")),
    ),
    csv=(
        "due_on",
        "fullname",
        "username",
        "idnumber",
        "email",
        "department",
        "department_name",
        "organisation",
        "organisation_name",
        "requirement",
        "requirement_title",
        "status",
        "valid_until",
        "course",
        "course_url",
    ),
)

# `connector forecast`: the table has one "compliant/expiring/expired" column per quarter (added
# when it runs); CSV and JSON have one row per department x requirement x quarter.
FORECAST = Columns(
    table=(("tree_name", N_("department")), ("requirement", N_("requirement"))),
    csv=(
        "department",
        "requirement",
        "quarter",
        "quarter_end",
        "in_scope",
        "compliant",
        "expiring",
        "expired",
        "grace",
        "exempt",
        "share",
        "targets_met",
    ),
)

NEEDS = Columns(
    table=(
        ("department_name", N_("department")),
        ("requirement", N_("requirement")),
        ("needs", N_("needs")),
        ("missing", N_("missing")),
        ("expired", N_("expired")),
        ("expiring", N_("expiring")),
        ("grace", N_("grace")),
        ("declared", N_("declared")),
        ("course", N_("course to take")),
        ("who", N_("who")),
    ),
    # one line per person x requirement: who needs what (a mail merge, a training plan)
    csv=(
        "year",
        "department",
        "department_name",
        "username",
        "idnumber",
        "requirement",
        "reasons",
        "course",
        "organisation",
    ),
)

NEEDS_ANALYSES = Columns(
    table=(
        ("year", N_("year")),
        ("version", N_("version")),
        ("saved_at", N_("saved")),
        ("as_of", N_("statuses of")),
        ("people", N_("people")),
        ("needs", N_("needs")),
        ("supersedes", N_("supersedes")),
    ),
    csv=("year", "version", "saved_at", "as_of", "people", "needs", "supersedes"),
)
# What a person reads above a CSV key in a spreadsheet meant for people (xlsx, `--dialect excel-cs`):
# the key stays the header of plain CSV and the key of JSON (scripts read them), this is translated.
SPREADSHEET_HEADINGS: dict[str, str] = {
    "username": N_("username"),
    "idnumber": N_("idnumber"),
    "department": N_("department id"),
    "department_id": N_("department id"),
    "department_name": N_("department"),
    "organisation": N_("organisation id"),
    "organisation_name": N_("organisation"),
    "requirement": N_("requirement"),
    "requirement_title": N_("title"),
    "status": N_("status"),
    "valid_until": N_("valid until"),
    "decided_by_course": N_("decided by course"),
    "decided_by_completed_at": N_("completed (UTC)"),
    "in_scope": N_("in scope"),
    **{key: STATUS_WORDS[key] for key in ("compliant", "expiring", "expired", "missing", "grace", "exempt")},
    "holders": N_("holders"),
    "share": N_("share"),
    "targets_met": N_("targets met"),
    "decided_by_source": N_("evidence source"),
    "fullname": N_("full name"),
    "email": N_("e-mail"),
    "due_on": N_("due"),
    "course": N_("course to take"),
    "course_url": N_("course link"),
    "quarter": N_("quarter"),
    "quarter_end": N_("quarter end"),
}


def spreadsheet_heading(key: str) -> str:
    """The heading of ``key`` in the reader's language; a key without one is shown as it is."""
    return _(SPREADSHEET_HEADINGS[key]) if key in SPREADSHEET_HEADINGS else key
