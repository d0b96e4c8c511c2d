"""Targets as the strategies write them (issue 11 item 2): every even year, appointed advisors,
holders among the people in scope, judged only where the duty applies; with hand-computed figures.

One organisation "town" with two departments, "a" and "b"; one course (id 10) per requirement.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connector.durations import parse_duration
from connector.errors import MappingError
from connector.mapping import load_mappings
from connector.mapping.models import AppliesTo, CourseRef, Department, Mappings, Requirement, Target
from connector.moodle.records import Completion, Subject
from connector.rules import RollupBuilder, RuleSet, Status, TargetResult, evaluate

REF = CourseRef("idnumber", "C")
COURSE_IDS = {REF: 10}
DEPARTMENTS = (Department("town", "Town"), Department("a", "A", "town"), Department("b", "B", "town"))


def on(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())


def judged(
    target: Target,
    people: list[Subject],
    done: dict[int, date],
    as_of: date,
    dept: str = "a",
    applies: AppliesTo = AppliesTo(),  # noqa: B008  (frozen: never mutated)
    courses: tuple[CourseRef, ...] = (REF,),
) -> list[TargetResult]:
    mappings = Mappings(DEPARTMENTS, (Requirement("r", "R", courses, applies_to=applies, targets=(target,)),))
    result = evaluate(
        people, [Completion(u, 10, on(d)) for u, d in done.items()], mappings, COURSE_IDS, as_of
    )
    return next(list(r.targets) for r in result.rollups if r.department_id == dept)


def staff(n: int, dept: str = "a", position: str | None = "referent", first: int = 1) -> list[Subject]:
    return [Subject(first + i, f"u{first + i}", dept, position) for i in range(n)]


EVERY_EVEN_YEAR = Target("share", 0.5, parse_duration("1 year"), years="even")


@pytest.mark.parametrize(
    ("as_of", "done", "expected"),
    [
        # 4 people; 2 trained in 2026 -> 2 / 4 = 50 % of 50 %: met
        (date(2026, 9, 1), {1: date(2026, 3, 1), 2: date(2026, 4, 1)}, (0.5, True, "50 % of 50 %, 2026")),
        # one trained in 2026, one in 2025: only 2026 counts -> 1 / 4 = 25 %: missed
        (date(2026, 9, 1), {1: date(2026, 3, 1), 2: date(2025, 4, 1)}, (0.25, False, "25 % of 50 %, 2026")),
        # 2027 is odd: not judged, whatever was done
        (date(2027, 9, 1), {1: date(2027, 3, 1)}, (None, None, "not judged in 2027 (even years only)")),
    ],
)
def test_a_share_every_even_year(as_of: date, done: dict[int, date], expected: tuple[object, ...]) -> None:
    (result,) = judged(EVERY_EVEN_YEAR, staff(4), done, as_of)
    assert (result.actual, result.met, result.judged) == expected


def test_a_share_with_nobody_to_judge_cannot_be_decided() -> None:
    (result,) = judged(EVERY_EVEN_YEAR, [], {}, date(2026, 9, 1))
    assert (result.actual, result.met, result.judged) == (None, None, "not judged, 2026: nobody in scope")


ADVISOR = Target("appointed", 1, positions=("digitalni svetovalec",), by=date(2026, 12, 31))


@pytest.mark.parametrize(
    ("people", "as_of", "expected"),
    [
        # an appointed advisor who never took a course counts: appointment is the duty
        (
            [*staff(3), Subject(9, "u9", "a", "Digitalni  Svetovalec")],
            date(2027, 1, 5),
            (1.0, True, "1 of 1 appointed"),
        ),
        # a clerk who holds the course is no advisor; after the deadline the department fails
        (staff(3), date(2027, 1, 5), (0.0, False, "0 of 1 appointed")),
        # before the deadline nobody fails yet
        (staff(3), date(2026, 6, 1), (0.0, None, "0 of 1 appointed, due by 2026-12-31")),
    ],
)  # fmt: skip
def test_an_appointed_advisor_in_every_department(
    people: list[Subject], as_of: date, expected: tuple[object, ...]
) -> None:
    (result,) = judged(ADVISOR, people, {1: date(2026, 2, 1)}, as_of, courses=())
    assert (result.kind, result.actual, result.met, result.judged) == ("appointed", *expected)


def test_an_appointment_only_requirement_asks_nobody_to_complete_anything() -> None:
    mappings = Mappings(DEPARTMENTS, (Requirement("r", "R", (), targets=(ADVISOR,)),))
    result = evaluate(staff(2), [], mappings, COURSE_IDS, date(2026, 6, 1))
    assert {s.status for s in result.statuses} == {Status.NOT_APPLICABLE}


@pytest.mark.parametrize(
    ("among", "expected"),
    [
        # u1 (in scope: a referent) and u3 (a driver, out of scope) hold the course
        ("all", (2.0, True, "2 of 2 holders")),
        ("in_scope", (1.0, False, "1 of 2 holders in scope")),
    ],
)
def test_holders_among_the_people_in_scope(among: str, expected: tuple[object, ...]) -> None:
    people = [*staff(2), Subject(3, "u3", "a", "driver")]
    target = Target("holders", 2, judged_at="leaves", among=among)  # type: ignore[arg-type]
    (result,) = judged(target, people, {1: date(2026, 2, 1), 3: date(2026, 2, 1)}, date(2026, 6, 1),
                       applies=AppliesTo(positions=("referent",)))  # fmt: skip
    assert (result.actual, result.met, result.judged) == expected


def test_a_target_is_judged_only_where_the_mapping_says() -> None:
    target = Target("appointed", 1, positions=("digitalni svetovalec",), departments=("a",))
    people = [*staff(1), *staff(1, "b", first=2)]
    assert [t.judged for t in judged(target, people, {}, date(2026, 6, 1), "a", courses=())] == [
        "0 of 1 appointed"
    ]
    assert judged(target, people, {}, date(2026, 6, 1), "b", courses=()) == []


def test_a_target_is_not_judged_where_the_requirement_does_not_apply() -> None:
    target = Target("share", 0.5)
    mappings = Mappings(
        DEPARTMENTS, (Requirement("r", "R", (REF,), applies_to=AppliesTo(("a",)), targets=(target,)),)
    )
    result = evaluate([*staff(1), *staff(1, "b", first=2)], [], mappings, COURSE_IDS, date(2026, 6, 1))
    assert {r.department_id for r in result.rollups} == {"town", "a"}  # no row, no verdict, for "b"


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ('kind = "share"\nmin = "50 %"\nyears = "even"\nperiod = "1 year"', None),
        ('kind = "holders"\nmin = 1\nyears = "even"', 'must be "all", "even" or "odd" on a share target'),
        ('kind = "appointed"\nmin = 1', "an appointed target needs positions"),
        ('kind = "share"\nmin = "50 %"\npositions = ["x"]', "only an appointed target has positions"),
        (
            'kind = "share"\nmin = "50 %"\namong = "in_scope"',
            'must be "all" or "in_scope" on a holders target',
        ),
        ('kind = "holders"\nmin = 1\nby = 2026-12-31', "only an appointed target has a deadline"),
    ],
)
def test_the_mapping_keys_of_targets(tmp_path: Path, target: str, words: str | None) -> None:
    (tmp_path / "m.toml").write_text(
        '[[department]]\nid = "a"\nname = "A"\n[course.c]\nidnumber = "C"\n'
        f'[[requirement]]\nid = "r"\ntitle = "R"\ncourses = ["c"]\n[[requirement.target]]\n{target}\n',
        encoding="utf-8",
    )
    if words is None:
        assert load_mappings(tmp_path).requirements[0].targets[0].years == "even"
        return
    with pytest.raises(MappingError) as raised:
        load_mappings(tmp_path)
    assert [words in p.message for p in raised.value.problems] == [True]


def test_only_an_appointment_only_requirement_may_name_no_course(tmp_path: Path) -> None:
    head = '[[department]]\nid = "a"\nname = "A"\n[[requirement]]\nid = "r"\ntitle = "R"\ncourses = []\n'
    (tmp_path / "m.toml").write_text(
        head + '[[requirement.target]]\nkind = "appointed"\nmin = 1\npositions = ["advisor"]\n',
        encoding="utf-8",
    )
    assert load_mappings(tmp_path).requirements[0].courses == ()
    (tmp_path / "m.toml").write_text(
        head + '[[requirement.target]]\nkind = "holders"\nmin = 1\n', encoding="utf-8"
    )
    with pytest.raises(MappingError) as raised:
        load_mappings(tmp_path)
    assert [p.message for p in raised.value.problems] == ["is empty"]


def judged_with(
    target: Target,
    done: dict[int, date],
    needs: frozenset[int] | None = frozenset(),
    enrolled: dict[int, list[tuple[int, date, date | None]]] | None = None,
    as_of: date = date(2026, 9, 1),
) -> TargetResult:
    """Four referents u1..u4 in department "a"; one requirement on course 10."""
    mappings = Mappings(DEPARTMENTS, (Requirement("r", "R", (REF,), targets=(target,)),))
    rules = RuleSet(mappings, COURSE_IDS, as_of)
    builder = RollupBuilder(
        mappings,
        as_of,
        course_ids=COURSE_IDS,
        needs=None if needs is None else {"r": needs},
        enrolled=enrolled,
    )
    for person in staff(4):
        evidence = (
            [Completion(person.user_id, 10, on(done[person.user_id]))] if person.user_id in done else []
        )
        builder.add(person, rules.evaluate(person, evidence))
    (result,) = next(r.targets for r in builder.build() if r.department_id == "a")
    return result


OF_NEEDS = Target("share", 0.5, parse_duration("1 year"), years="even", of="needs")
PLACES = Target("share", 0.5, parse_duration("1 year"), years="even", counts="enrolled")
PLACES_OF_NEEDS = Target("share", 0.5, parse_duration("1 year"), years="even", of="needs", counts="enrolled")
ENROLLED = {
    2: [(10, date(2026, 2, 1), None)],  # enrolled in 2026 and still there
    3: [(10, date(2025, 3, 1), date(2025, 12, 1))],  # a place in 2025 only
    4: [(99, date(2026, 2, 1), None)],  # another course
}


@pytest.mark.parametrize(
    ("target", "needs", "expected"),
    [
        # u1 and u2 need it; u1 completed in 2026: 1 / 2
        (OF_NEEDS, frozenset({1, 2}), (0.5, True, "50 % of 50 %, 2026 (of 2 who need it)")),
        # nobody needs it: nothing to judge
        (OF_NEEDS, frozenset(), (None, None, "not judged, 2026: nobody needs it")),
        # no analysis saved for the year: nothing to judge, and the words say why
        (OF_NEEDS, None, (None, None, "not judged, 2026: no needs analysis saved for 2026")),
        # everyone in scope; a place in 2026: u1 (completed in 2026) and u2 (enrolled): 2 / 4
        (PLACES, frozenset(), (0.5, True, "50 % of 50 %, 2026 (a place given)")),
        # those who need it (u2, u4): u2 has a place, u4 only in another course: 1 / 2
        (
            PLACES_OF_NEEDS,
            frozenset({2, 4}),
            (0.5, True, "50 % of 50 %, 2026 (of 2 who need it, a place given)"),
        ),
        # (u3, u4): u3's place and completion were in 2025, u4's place in another course: 0 / 2
        (
            PLACES_OF_NEEDS,
            frozenset({3, 4}),
            (0.0, False, "0 % of 50 %, 2026 (of 2 who need it, a place given)"),
        ),
    ],
)
def test_the_ljubljana_rule_of_those_who_need_it_a_place_every_even_year(
    target: Target, needs: frozenset[int], expected: tuple[object, ...]
) -> None:
    done = {1: date(2026, 3, 1), 3: date(2025, 5, 1)}
    result = judged_with(target, done, needs, ENROLLED)
    assert (result.actual, result.met, result.judged) == expected


def test_the_ljubljana_rule_is_not_judged_in_an_odd_year() -> None:
    result = judged_with(PLACES_OF_NEEDS, {}, frozenset({2}), ENROLLED, as_of=date(2027, 3, 1))
    assert (result.actual, result.met, result.judged) == (None, None, "not judged in 2027 (even years only)")


def test_the_shipped_mappings_write_the_ljubljana_rules_as_quoted() -> None:
    from connector.mapping import DEMO_MAPPINGS

    shipped = load_mappings(DEMO_MAPPINGS)
    (share,) = shipped.requirement("digvar-si").targets
    assert (share.minimum, share.of, share.counts, share.period, share.years) == (
        0.5, "needs", "enrolled", parse_duration("1 year"), "even",
    )  # fmt: skip
    appointed = shipped.requirement("advisor-appointed-si")
    assert appointed.courses == () and appointed.applies_to.departments == ("ljubljana",)
    assert appointed.targets == (
        Target(
            "appointed", 1, judged_at="leaves", positions=("digitalni svetovalec",), by=date(2026, 12, 31)
        ),
    )
    assert shipped.requirement("digvar-si").valid_for == parse_duration("24 months")  # "vsaj vsaki dve leti"
    text = (DEMO_MAPPINGS / "requirements.toml").read_text(encoding="utf-8")
    for quoted in (
        "je na vsakem oddelku ali v službi imenovan vsaj 1",
        "ki potrebujejo izobraževanje, se ima možnost udeležiti izobraževanja",
        "Vsako leto se pripravi/posodobi analiza potreb",
        "preverjanje kompetentnosti zaposlenih, vsaj",
        "AI jako pomocník úředníka",
        "IT bezpečnost pro koncové uživatele",
    ):
        assert quoted in text
