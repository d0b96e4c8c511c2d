"""Properties of the rules engine that must hold for any evidence (hypothesis)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.durations import Duration
from connector.evaluation import evaluate_ledger, rollups_as_of
from connector.ledger import Ledger
from connector.mapping import AppliesTo, CourseRef, Department, Exemption, Mappings, Requirement, Target
from connector.moodle.records import Completion, Subject
from connector.rules import (
    RANK,
    PersonStatus,
    RollupBuilder,
    RuleSet,
    evaluate,
    evaluate_person,
    evaluate_sorted,
)

A, B, C = CourseRef("idnumber", "A"), CourseRef("idnumber", "B"), CourseRef("idnumber", "C")
COURSE_IDS = {A: 10, B: 20}
MAPPINGS = Mappings(
    departments=(
        Department("org", "Org"),
        Department("org.a", "A", "org"),
        Department("org.b", "B", "org"),
        Department("nz", "NZ", timezone="Pacific/Auckland"),
    ),
    requirements=(
        Requirement(
            "any24",
            "any, 24 months",
            (A, B),
            "any",
            Duration(24, "months"),
            Duration(60, "days"),
            Duration(90, "days"),
            targets=(Target("share", 0.5, Duration(2, "years")),),
        ),
        Requirement("all12", "all, 12 months", (A, B), "all", Duration(12, "months"), Duration(1, "months")),
        Requirement("forever", "never expires", (B,), targets=(Target("holders", 1, None, "leaves"),)),
        Requirement("unresolved", "C is not in Moodle", (A, C), "all", Duration(2, "years")),
        Requirement(
            "scoped",
            "org only, with an exemption",
            (A,),
            "any",
            Duration(6, "weeks"),
            applies_to=AppliesTo(departments=("org",), positions=("úředník",)),
            exemptions=(Exemption("leave", username="u1", until=date(2024, 6, 30)),),
        ),
    ),
    timezone="Europe/Prague",
)
NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
ZONES = {None: "Europe/Prague", "org.a": "Europe/Prague", "org.b": "Europe/Prague", "nz": "Pacific/Auckland"}

days = st.dates(min_value=date(2019, 6, 1), max_value=date(2027, 12, 31))
# whole hours make completions near local midnight (the edge of as_of) common
instants = st.builds(
    lambda day, hour: int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp()),
    days,
    st.integers(min_value=0, max_value=23),
)


@st.composite
def completions(draw: st.DrawFn, user_id: int = 1) -> Completion:
    source = draw(st.sampled_from([("completion_status", 1), ("report", 60)]))
    return Completion(user_id, draw(st.sampled_from([10, 20, 30])), draw(instants), source[0], source[1])


@st.composite
def subjects(draw: st.DrawFn, user_id: int = 1) -> Subject:
    return Subject(
        user_id,
        f"u{user_id}",
        draw(st.sampled_from([None, "org.a", "org.b", "nz"])),
        draw(st.sampled_from([None, "úředník", "starosta"])),
        active=draw(st.booleans()),
        start_date=draw(st.none() | days),
    )


def rank_or_self(status: PersonStatus) -> object:
    return RANK.get(status.status, status.status)


def without_detail(statuses: list[PersonStatus]) -> list[PersonStatus]:
    return [replace(s, detail="") for s in statuses]


@settings(max_examples=200, deadline=None)
@given(subjects(), st.lists(completions(), max_size=6), completions(), days)
def test_adding_a_completion_never_lowers_a_status(
    subject: Subject, evidence: list[Completion], extra: Completion, as_of: date
) -> None:
    before = evaluate_person(subject, evidence, MAPPINGS, COURSE_IDS, as_of)
    after = evaluate_person(subject, [*evidence, extra], MAPPINGS, COURSE_IDS, as_of)
    for old, new in zip(before, after, strict=True):
        if old.status in RANK:
            assert new.status in RANK and RANK[new.status] >= RANK[old.status], (old, new)
        else:
            assert new.status == old.status  # exempt / not_applicable do not depend on evidence
        if old.status in RANK and new.status in RANK and old.valid_until and new.valid_until:
            assert new.valid_until >= old.valid_until


@settings(max_examples=200, deadline=None)
@given(
    subjects(),
    st.lists(completions(), max_size=8).flatmap(lambda cs: st.tuples(st.just(cs), st.permutations(cs))),
    days,
)
def test_results_do_not_depend_on_evidence_order(
    subject: Subject, orders: tuple[list[Completion], list[Completion]], as_of: date
) -> None:
    original, shuffled = orders
    assert evaluate_person(subject, original, MAPPINGS, COURSE_IDS, as_of) == evaluate_person(
        subject, shuffled, MAPPINGS, COURSE_IDS, as_of
    )


@settings(max_examples=300, deadline=None)
@given(subjects(), st.lists(completions(), min_size=1, max_size=8), st.data())
def test_evaluating_at_d_uses_no_evidence_dated_after_d(
    subject: Subject, evidence: list[Completion], data: st.DataObject
) -> None:
    zone = ZoneInfo(ZONES[subject.department_id])
    # D is often the day before or of a completion: the edge that matters
    near = [
        datetime.fromtimestamp(c.completed_at, zone).date() - timedelta(days=k)
        for c in evidence
        for k in (0, 1)
    ]
    as_of = data.draw(st.sampled_from(near) | days)
    up_to_d = [
        c for c in evidence if datetime.fromtimestamp(c.completed_at, UTC).astimezone(zone).date() <= as_of
    ]
    with_all = evaluate_person(subject, evidence, MAPPINGS, COURSE_IDS, as_of)
    assert without_detail(with_all) == without_detail(
        evaluate_person(subject, up_to_d, MAPPINGS, COURSE_IDS, as_of)
    )
    for status in with_all:
        if status.completed_on is not None:
            assert status.completed_on <= as_of


def numbered(people: list[tuple[Subject, list[Completion]]]) -> list[tuple[Subject, list[Completion]]]:
    """Give every drawn person their own user id (and their evidence with it)."""
    return [
        (replace(s, user_id=i + 1, username=f"u{i + 1}"), [replace(c, user_id=i + 1) for c in cs])
        for i, (s, cs) in enumerate(people)
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(subjects(), st.lists(completions(), max_size=3)), min_size=1, max_size=8)
    .map(numbered)
    .flatmap(lambda people: st.tuples(st.just(people), st.permutations(people))),
    days,
)
def test_statuses_and_rollups_do_not_depend_on_the_order_of_people(
    orders: tuple[list[tuple[Subject, list[Completion]]], list[tuple[Subject, list[Completion]]]], as_of: date
) -> None:
    def run(people: list[tuple[Subject, list[Completion]]]) -> tuple[list[PersonStatus], list[object]]:
        evidence = [c for _, cs in people for c in cs][::-1]
        result = evaluate([s for s, _ in people], evidence, MAPPINGS, COURSE_IDS, as_of)
        return sorted(result.statuses, key=lambda s: (s.user_id, s.requirement_id)), list(result.rollups)

    original, shuffled = orders
    assert run(original) == run(shuffled)


# -- one evaluation path --------------------------------------------------------------------------
@st.composite
def sparse_people(draw: st.DrawFn) -> tuple[list[tuple[Subject, list[Completion]]], list[Completion]]:
    """People with user ids that leave gaps, and evidence of users who are not among them (erased,
    never placed): the merge-join must give each subject exactly their own evidence."""
    ids = sorted(draw(st.sets(st.integers(min_value=1, max_value=60), min_size=1, max_size=8)))
    people = [
        (replace(draw(subjects()), user_id=u, username=f"u{u}"), [replace(c, user_id=u) for c in cs])
        for u, cs in zip(
            ids,
            draw(st.lists(st.lists(completions(), max_size=3), min_size=len(ids), max_size=len(ids))),
            strict=True,
        )
    ]
    strangers = [
        replace(c, user_id=u)
        for u, c in draw(
            st.lists(st.tuples(st.integers(min_value=0, max_value=61), completions()), max_size=5)
        )
        if u not in ids
    ]
    return people, strangers


@settings(max_examples=100, deadline=None)
@given(sparse_people(), days, st.randoms(use_true_random=False))
def test_the_merge_join_gives_each_subject_exactly_their_own_evidence(
    drawn: tuple[list[tuple[Subject, list[Completion]]], list[Completion]], as_of: date, rng: Any
) -> None:
    people, strangers = drawn
    evidence = [c for _, cs in people for c in cs] + strangers
    rng.shuffle(evidence)
    shuffled = [s for s, _ in people]
    rng.shuffle(shuffled)
    result = evaluate(shuffled, evidence, MAPPINGS, COURSE_IDS, as_of)  # through rules.evaluate_sorted
    one_by_one = [st_ for s, cs in people for st_ in evaluate_person(s, cs, MAPPINGS, COURSE_IDS, as_of)]
    assert result.statuses == one_by_one


def test_the_merge_join_refuses_subjects_out_of_order() -> None:
    people = [Subject(2, "u2", None, None), Subject(1, "u1", None, None)]
    rules, rollups = (
        RuleSet(MAPPINGS, COURSE_IDS, date(2026, 6, 1)),
        RollupBuilder(MAPPINGS, date(2026, 6, 1)),
    )
    with pytest.raises(ValueError, match="ordered by user id"):
        list(evaluate_sorted(people, [], lambda c: c, rules, rollups))


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


@settings(max_examples=25, deadline=None)
@given(sparse_people(), days)
def test_production_evaluation_of_a_ledger_is_the_path_the_properties_hold_for(
    drawn: tuple[list[tuple[Subject, list[Completion]]], list[Completion]], as_of: date
) -> None:
    """The sync's evaluate_ledger over a real ledger file equals rules.evaluate over the same data."""
    people, strangers = drawn
    evidence = list(
        {(c.user_id, c.course_id, c.completed_at // 60): c for _, cs in people for c in cs}.values()
    )
    evidence += strangers  # the ledger would hold these for people it no longer has
    expected = evaluate([s for s, _ in people], evidence, MAPPINGS, COURSE_IDS, as_of)
    with tempfile.TemporaryDirectory() as tmp, Ledger.open(Path(tmp) / "l.sqlite") as ledger:
        run = ledger.runs.start("full", as_of, now=NOW)
        with ledger.transaction():
            ledger.people.upsert([_person_row(s) for s, _ in people], run, date(2019, 1, 1))
            ledger.evidence.record(evidence, run, now=NOW)
        rows, builder = evaluate_ledger(ledger, MAPPINGS, COURSE_IDS, as_of)
        got = [
            (r.user_id, r.requirement_id, r.status, r.valid_until, r.since, r.due, r.completed_on, r.detail)
            for r in rows
        ]
        fast = rollups_as_of(ledger, MAPPINGS, COURSE_IDS, as_of).build()  # `status --as-of`'s path
    assert got == [
        (s.user_id, s.requirement_id, str(s.status), _iso(s.valid_until), _iso(s.since), _iso(s.due),
         _iso(s.completed_on), s.detail)
        for s in expected.statuses
    ]  # fmt: skip
    assert builder.build() == expected.rollups
    assert fast == expected.rollups


def _person_row(subject: Subject) -> dict[str, Any]:
    return {
        "user_id": subject.user_id,
        "username": subject.username,
        "idnumber": subject.idnumber,
        "fullname": subject.username,
        "institution": None,
        "department_text": None,
        "position": subject.position,
        "cohorts": json.dumps(sorted(subject.cohorts)),
        "department_id": subject.department_id,
        "placement_conflicts": None,
        "start_date": _iso(subject.start_date),
        "lastaccess": None,
        "active": int(subject.active),
        "suspended": 0,
    }
