"""Every query of connector/ledger/ over a populated ledger: none reads a whole table of evidence,
enrolments, people or statuses unless it must by design (listed below with the reason).

The statements are the ones the ledger really runs (SQLite's trace, parameters bound), so a new
query is checked the moment a concern method runs it; a public method no entry below calls fails
the test too.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from connector.ledger import Ledger, StatusRow
from connector.ledger.imports import ImportedRow, Provenance
from connector.ledger.needs import AnalysisRow, DeclaredNeed
from connector.moodle.records import Completion, Course

AS_OF = date(2026, 6, 1)
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
PEOPLE, COURSES, REQUIREMENTS = 1500, 6, 3
WATCHED = ("evidence", "enrolments", "people", "statuses")

# (method, table) -> why that method must read the whole table.
WHOLE_TABLE_BY_DESIGN = {
    ("People.rows", "people"): "the evaluation streams every person",
    ("People.present_ids", "people"): "a sync asks Moodle about everyone not known to be deleted",
    ("People.cohorts_of_present", "people"): "a delta night compares every known cohort membership",
    ("Evidence.by_user", "evidence"): "the evaluation streams all evidence, by person (index order)",
    ("Evidence.per_course", "evidence"): "the vanished-course guard counts completions of every course",
    ("Evidence.course_and_time", "evidence"): "an export names the deciding evidence of every status",
    ("Evidence.deciding", "statuses"): "roll-ups rebuilt after an erasure read every stored status",
    ("Enrolments.state", "enrolments"): "an incremental sync compares every known enrolment",
    ("Enrolments.spans", "enrolments"): 'a target that counts "enrolled" reads when every place was given',
    ("Statuses.write", "statuses"): "a sync replaces every status and compares old with new",
    ("Statuses.current", "statuses"): "export and erasure read every stored status (but a "
    "department's needs: test_one_departments_held_statuses_are_looked_up_person_by_person)",
    ("Statuses.held", "statuses"): "`due` reads every stored status that holds on its day (but a "
    "department's: test_one_departments_held_statuses_are_looked_up_person_by_person)",
    ("Statuses.current_for_export", "statuses"): "an export streams every stored status",
    ("Statuses.per_requirement", "statuses"): "the dropped-requirement guard counts every status",
    ("Statuses.count", "statuses"): "a run reports how many statuses the ledger holds",
    ("Rollups.positions", "people"): "appointed targets count the active people per department and position",
    ("Queries.placement_counts", "people"): "counts over all active people",
    ("People.empty_fields_not_kept", "people"): "every sync makes sure a field left out of "
    "[privacy] personal_fields is empty for everyone, people Moodle deleted included",
    ("Queries.unplaced_spellings", "people"): "lists every active person in no department",
    ("Queries.course_counts", "enrolments"): "counts per course over all present enrolments",
    ("Imports.user_ids", "people"): "an import checks every line's person against everyone known",
}


def populated(path: Path) -> Ledger:
    """A few thousand rows of every kind, written through the ledger's own API (under a second)."""
    ledger = Ledger.open(path)
    run = ledger.runs.start("full", AS_OF, now=NOW)
    with ledger.transaction():
        ledger.courses.upsert(
            [Course(c, f"C{c}", f"c{c}", f"Course {c}", True, True) for c in range(1, 7)], run
        )
        ledger.people.upsert(
            [
                {
                    "user_id": u,
                    "username": f"u{u}",
                    "idnumber": str(u),
                    "fullname": f"Person {u}",
                    "institution": "Town",
                    "department_text": "Office" if u % 10 else "Nowhere",
                    "position": None,
                    "cohorts": "[]",
                    "department_id": f"d{u % 7}" if u % 10 else None,
                    "placement_conflicts": None,
                    "start_date": None,
                    "lastaccess": None,
                    "active": 1,
                    "suspended": 0,
                }
                for u in range(1, PEOPLE + 1)
            ],
            run,
            AS_OF,
        )
        enrolments = [
            (c, u, 1000 + u) for u in range(1, PEOPLE + 1) for c in range(1, COURSES + 1) if (u + c) % 2
        ]
        ledger.enrolments.upsert(enrolments, run)
        ledger.enrolments.record_checks([(c, u, True, a) for c, u, a in enrolments], run)
        ledger.evidence.record(
            [Completion(u, c, 1_700_000_000 + u * 60 + c) for c, u, _ in enrolments], run, now=NOW
        )
        ledger.statuses.write(
            [
                StatusRow(u, f"r{r}", "compliant", None, None, None, None, None, "")
                for u in range(1, PEOPLE + 1)
                for r in range(REQUIREMENTS)
            ],
            run,
            AS_OF,
        )
        ledger.rollups.write([_rollup(f"d{d}", f"r{r}") for d in range(7) for r in range(REQUIREMENTS)], run)
        ledger.runs.finish(run, "ok", now=NOW)
    return ledger


def _rollup(department: str, requirement: str) -> dict[str, Any]:
    counts = dict.fromkeys(("in_scope", "compliant", "expiring", "expired", "missing", "grace", "exempt"), 0)
    return dict(counts, department_id=department, requirement_id=requirement, holders=0, share=None,
                targets_met=None, targets="[]")  # fmt: skip


# One call of every public method of every concern, on the populated ledger.
CALLS: dict[str, Callable[[Ledger], object]] = {
    "Runs.start": lambda ld: ld.runs.start("incremental", AS_OF, now=NOW),
    "Runs.finish": lambda ld: ld.runs.finish(2, "ok", now=NOW, counts={"people": 1}),
    "Runs.fail_stale": lambda ld: ld.runs.fail_stale(now=NOW),
    "Runs.recent": lambda ld: ld.runs.recent(5),
    "Runs.last": lambda ld: (ld.runs.last("ok"), ld.runs.last("ok", mode="full")),
    "Runs.last_finished": lambda ld: ld.runs.last_finished(),
    "Runs.first_ok_as_of": lambda ld: ld.runs.first_ok_as_of(),
    "Bookmarks.get": lambda ld: ld.bookmarks.get("report_timezone"),
    "Bookmarks.set": lambda ld: ld.bookmarks.set("report_timezone", "Europe/Prague", 2),
    "Bookmarks.clear": lambda ld: ld.bookmarks.clear("full_run_wanted", "0f"),
    "Courses.upsert": lambda ld: ld.courses.upsert([Course(7, "C7", "c7", "Course 7", True, True)], 2),
    "Courses.all": lambda ld: (ld.courses.all(), ld.courses.all(latest_only=True)),
    "Courses.seen_since": lambda ld: ld.courses.seen_since(1),
    "Enrolments.state": lambda ld: ld.enrolments.state(),
    "Enrolments.spans": lambda ld: ld.enrolments.spans(),
    "Enrolments.upsert": lambda ld: ld.enrolments.upsert([(1, 2, 5)], 2),
    "Enrolments.record_checks": lambda ld: ld.enrolments.record_checks([(1, 2, False, 5)], 2),
    "Enrolments.mark_gone": lambda ld: ld.enrolments.mark_gone([1, 2], 2),
    "People.upsert": lambda ld: ld.people.upsert([dict(ld.people.by_username("u5") or {})], 2, AS_OF),
    "People.mark_deleted": lambda ld: ld.people.mark_deleted([7, 8]),
    "People.empty_fields_not_kept": lambda ld: ld.people.empty_fields_not_kept(["fullname"]),
    "People.rows": lambda ld: (
        sum(1 for _ in ld.people.rows()),
        sum(1 for _ in ld.people.rows({"d1", "d2"})),
    ),
    "People.by_username": lambda ld: ld.people.by_username("u42"),
    "People.department_of": lambda ld: ld.people.department_of(42),
    "People.by_idnumber": lambda ld: ld.people.by_idnumber("42"),
    "Needs.replace_source": lambda ld: ld.needs.replace_source(
        2027, "csv", [DeclaredNeed(u, 2027, "r0", "area", "csv") for u in range(1, 40)], now=NOW
    ),
    "Needs.declared": lambda ld: ld.needs.declared(2027),
    "Needs.save": lambda ld: ld.needs.save(
        2027, AS_OF, [AnalysisRow(u, "r0", "d1", "missing") for u in range(9)], now=NOW
    ),
    "Needs.get": lambda ld: ld.needs.get(1),
    "Needs.latest": lambda ld: ld.needs.latest(2027),
    "Needs.analyses": lambda ld: ld.needs.analyses(),
    "Needs.rows_of": lambda ld: ld.needs.rows_of(1),
    "People.present_ids": lambda ld: ld.people.present_ids(),
    "People.cohorts_of_present": lambda ld: ld.people.cohorts_of_present(),
    "Evidence.record": lambda ld: ld.evidence.record([Completion(3, 1, 1_800_000_000)], 2, now=NOW),
    "Evidence.mark_gone": lambda ld: ld.evidence.mark_gone([1, 2], 2),
    "Evidence.by_user": lambda ld: sum(1 for _ in ld.evidence.by_user()),
    "Evidence.for_user": lambda ld: ld.evidence.for_user(42),
    "Evidence.per_course": lambda ld: ld.evidence.per_course(),
    "Evidence.deciding": lambda ld: ld.evidence.deciding(),
    "Evidence.course_and_time": lambda ld: ld.evidence.course_and_time(),
    "Statuses.stage": lambda ld: ld.statuses.stage(),
    "Statuses.write": lambda ld: (
        ld.statuses.write(
            [StatusRow(u, "r0", "missing", None, None, None, None, None, "") for u in range(1, 50)], 2, AS_OF
        ),
        ld.evaluated.select(AS_OF),
        ld.statuses.write(
            [StatusRow(u, "r0", "missing", None, None, None, None, None, "", "d1") for u in range(1, 9)],
            2,
            AS_OF,
            only_reevaluated=True,
        ),
    ),
    "Statuses.count": lambda ld: ld.statuses.count(),
    "Statuses.people_counted_in": lambda ld: ld.statuses.people_counted_in({"d1", "d2"}),
    "Statuses.current": lambda ld: (
        sum(1 for _ in ld.statuses.current()),
        sum(1 for _ in ld.statuses.current(among=range(1, 40))),
    ),
    "Statuses.held": lambda ld: (
        ld.evaluated.select(AS_OF),
        sum(1 for _ in ld.statuses.held()),
        ld.evaluated.select(AS_OF, among=range(1, 40)),
        sum(1 for _ in ld.statuses.held(among=True)),
    ),
    "Statuses.current_for_export": lambda ld: sum(1 for _ in ld.statuses.current_for_export()),
    "Statuses.for_user": lambda ld: ld.statuses.for_user(42),
    "Statuses.history_for": lambda ld: ld.statuses.history_for(42),
    "Statuses.per_requirement": lambda ld: ld.statuses.per_requirement(),
    "Rollups.write": lambda ld: ld.rollups.write([_rollup("d1", "r9")], 2),
    "Rollups.for_run": lambda ld: ld.rollups.for_run(1),
    "Rollups.tables_read": lambda ld: ld.rollups.tables_read(recomputed=True),  # names, no query
    "Needs.tables_read": lambda ld: ld.needs.tables_read(),  # names, no query
    "People.tables_read_for_one": lambda ld: ld.people.tables_read_for_one(),  # names, no query
    "Rollups.replace": lambda ld: ld.rollups.replace(1, ["d1"], [_rollup("d1", "r0")]),
    "Rollups.status_counts": lambda ld: (
        ld.evaluated.select(AS_OF),
        ld.rollups.status_counts(AS_OF, [date(2026, 1, 1), date(2025, 1, 1)]),
        ld.rollups.status_counts(AS_OF, [date(2026, 1, 1)], of_reevaluated=True),
    ),
    "Rollups.positions": lambda ld: (
        ld.evaluated.select(AS_OF),
        ld.rollups.positions(AS_OF),
        ld.rollups.positions(AS_OF, without_reevaluated=True),
    ),
    "Rollups.counted_statuses": lambda ld: (
        ld.evaluated.select(AS_OF),
        list(ld.rollups.counted_statuses(AS_OF, ["r0", "r1"])),
        list(ld.rollups.counted_statuses(AS_OF, ["r0"], without_reevaluated=True)),
    ),
    "Evaluated.fingerprint": lambda ld: ld.evaluated.fingerprint(),
    "Evaluated.select": lambda ld: ld.evaluated.select(AS_OF),
    "Evaluated.people_rows": lambda ld: (ld.evaluated.select(AS_OF), list(ld.evaluated.people_rows())),
    "Evaluated.evidence_by_user": lambda ld: (
        ld.evaluated.select(AS_OF),
        list(ld.evaluated.evidence_by_user()),
    ),
    "Evaluated.imported_rows": lambda ld: (ld.evaluated.select(AS_OF), ld.evaluated.imported_rows()),
    "Evaluated.record": lambda ld: ld.evaluated.record(
        [(5, "2026-01-01", "2026-12-31"), (6, "0001-01-01", "9999-12-31")]
    ),
    "Evaluated.finish": lambda ld: ld.evaluated.finish("0" * 64),
    "Suppressions.subject_key": lambda ld: ld.suppressions.subject_key(42),
    "Suppressions.suppressed_among": lambda ld: ld.suppressions.suppressed_among([41, 42]),
    "Suppressions.erase": lambda ld: ld.suppressions.erase(42, "test", now=NOW),
    "Suppressions.lift": lambda ld: ld.suppressions.lift(42),
    "Queries.placement_counts": lambda ld: ld.queries.placement_counts(),
    "Queries.unplaced_spellings": lambda ld: ld.queries.unplaced_spellings(),
    "Queries.course_counts": lambda ld: ld.queries.course_counts(),
    "Imports.record": lambda ld: ld.imports.record(
        Provenance("HR", "a.csv", "ab" * 32, "hana"), [ImportedRow(2, 42, "c1", None, AS_OF, "KÚ")], now=NOW
    ),
    "Imports.with_sha256": lambda ld: ld.imports.with_sha256("ab" * 32),
    "Imports.all": lambda ld: ld.imports.all(),
    "Imports.rows": lambda ld: ld.imports.rows(),
    "Imports.for_user": lambda ld: ld.imports.for_user(42),
    "Imports.user_ids": lambda ld: ld.imports.user_ids(),
    "Imports.remove": lambda ld: ld.imports.remove(1, "wrong list", "hana", now=NOW),
    "Staging.end": lambda ld: ld.staging.end(),
    "Staging.begin": lambda ld: ld.staging.begin(),
    "Staging.add_enrolments": lambda ld: ld.staging.add_enrolments([(1, u, 5) for u in range(1, 99)]),
    "Staging.add_checks": lambda ld: ld.staging.add_checks([(1, 3, True, 5)]),
    "Staging.check_every_enrolment": lambda ld: ld.staging.check_every_enrolment(),
    "Staging.add_completions": lambda ld: ld.staging.add_completions([(3, 1, 1_800_000_000, "report", 60)]),
    "Staging.add_people": lambda ld: ld.staging.add_people(
        [
            (u, f"u{u}", "", "", None, "Town", "Office", None, "[]", "d1", None, None, None, 1, 0)
            for u in (3, 4)
        ]
    ),
    "Staging.add_deleted": lambda ld: ld.staging.add_deleted([7]),
    "Staging.user_ids": lambda ld: sum(1 for _ in ld.staging.user_ids()),
    "Staging.people_count": lambda ld: ld.staging.people_count(),
    "Staging.latest_completion": lambda ld: ld.staging.latest_completion(),
    "Staging.enrolment_count": lambda ld: ld.staging.enrolment_count(),
    "Staging.apply_enrolments": lambda ld: ld.staging.apply_enrolments(2, full=False),
    "Staging.apply_evidence": lambda ld: ld.staging.apply_evidence(2, now=NOW, full=True),
    "Staging.apply_people": lambda ld: ld.staging.apply_people(2, AS_OF, full=False),
    "Staging.drop_users": lambda ld: ld.staging.drop_users([4]),
    "Staging.clear_report": lambda ld: ld.staging.clear_report(),
}

OWN_TRANSACTION = (
    "Runs.start",
    "Runs.fail_stale",
    "Suppressions.lift",
    "Imports.record",
    "Imports.remove",
)  # they commit on their own
_NOT_QUERIES = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PRAGMA|CREATE|DROP)\b", re.I)
_LITERALS = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")
_ALIASES = re.compile(r"\b(?:FROM|JOIN)\s+(?:temp\.)?(\w+)(?:\s+(?:AS\s+)?(\w+))?", re.I)
_KEYWORDS = {"where", "on", "left", "join", "order", "group", "limit", "inner", "as", "set", "values"}


def concern_methods(ledger: Ledger) -> set[str]:
    """Every public method of every concern object a Ledger exposes (its attributes but these)."""
    concerns = [
        obj
        for name, obj in vars(ledger).items()
        if name not in ("db", "path", "writable") and not name.startswith("_")
    ]
    return {
        f"{type(obj).__name__}.{name}"
        for obj in concerns
        for name, _ in inspect.getmembers(type(obj), inspect.isfunction)
        if not name.startswith("_")
    }


def traced(ledger: Ledger) -> Iterator[tuple[str, str]]:
    """(method, statement) for every statement each CALLS entry runs, one per statement shape."""
    seen: set[tuple[str, str]] = set()
    for method, call in CALLS.items():
        statements: list[str] = []
        ledger.db.conn.set_trace_callback(statements.append)
        try:
            if method in OWN_TRANSACTION:
                call(ledger)
            else:
                with ledger.transaction():
                    call(ledger)
        finally:
            ledger.db.conn.set_trace_callback(None)
        for statement in statements:
            shape = _LITERALS.sub("?", statement)
            if not _NOT_QUERIES.match(statement) and (method, shape) not in seen:
                seen.add((method, shape))
                yield method, statement


def full_scans(ledger: Ledger, statement: str) -> set[str]:
    """The watched tables this statement's plan reads whole ("SCAN <table or alias>")."""
    aliases = {
        (alias or table).lower(): table.lower()
        for table, alias in _ALIASES.findall(statement)
        if not alias or alias.lower() not in _KEYWORDS
    }
    aliases.update({t: t for t in WATCHED})
    plan = [row[3] for row in ledger.db.conn.execute("EXPLAIN QUERY PLAN " + statement)]
    scanned = {m.group(1).lower() for detail in plan if (m := re.match(r"SCAN (\w+)", detail))}
    return {aliases.get(name, name) for name in scanned} & set(WATCHED)


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], set[str]]:
    ledger = populated(tmp_path_factory.mktemp("plans") / "ledger.sqlite")
    with ledger:
        assert set(CALLS) == concern_methods(ledger)  # a new method gets an entry above
        statements = list(traced(ledger))
        ledger.statuses.stage()  # the temp table Statuses.write compares in, for its statements' plans
        ledger.staging.begin()  # the TEMP tables a sync stages in, for their statements' plans
        ledger.evaluated.select(AS_OF, among=range(1, 40))  # and those `due --department` reads
        return {(method, sql): full_scans(ledger, sql) for method, sql in statements}


def test_no_query_reads_a_whole_watched_table_unless_listed(plans: dict[tuple[str, str], set[str]]) -> None:
    unexpected = {
        f"{method}: {table}: {sql[:90]}"
        for (method, sql), tables in plans.items()
        for table in tables
        if (method, table) not in WHOLE_TABLE_BY_DESIGN
    }
    assert unexpected == set()


def test_every_listed_whole_table_read_still_happens(plans: dict[tuple[str, str], set[str]]) -> None:
    """A listed reason that no longer applies is removed from the list, not kept as a loophole."""
    happening = {(method, table) for (method, _), tables in plans.items() for table in tables}
    assert set(WHOLE_TABLE_BY_DESIGN) - happening == set()


BY_ONE_COURSE_OR_PERSON = (
    "Evidence.mark_gone",
    "Evidence.for_user",
    "Suppressions.erase",
    "Enrolments.mark_gone",
)


def test_the_indexes_serve_the_per_course_and_per_person_paths(
    plans: dict[tuple[str, str], set[str]],
) -> None:
    """Schema 4's indexes: a full sync's per-course marking, `person` and `erase` search, never scan."""
    scans: dict[str, set[str]] = {method: set() for method in BY_ONE_COURSE_OR_PERSON}
    ran = set()
    for (method, _), tables in plans.items():
        if method in scans:
            ran.add(method)
            scans[method] |= tables
    assert (ran, scans) == (set(BY_ONE_COURSE_OR_PERSON), dict.fromkeys(BY_ONE_COURSE_OR_PERSON, set()))


def test_one_departments_held_statuses_are_looked_up_person_by_person(
    plans: dict[tuple[str, str], set[str]],
) -> None:
    """`due --department` and `needs --department` read the stored statuses of that department's
    people only."""
    among = {(method, sql): tables for (method, sql), tables in plans.items() if "temp.among a" in sql}
    assert {method for method, _ in among} == {"Statuses.held", "Statuses.current"}
    assert set().union(*among.values()) == set()
