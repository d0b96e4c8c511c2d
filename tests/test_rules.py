"""Table tests of the rules engine: every status and every documented edge case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from connector.durations import Duration
from connector.mapping import (
    DEMO_MAPPINGS,
    AppliesTo,
    CourseRef,
    Department,
    Exemption,
    Mappings,
    Requirement,
    Target,
    load_mappings,
)
from connector.moodle.records import Completion, Person, Subject
from connector.rules import (
    DepartmentRollup,
    RollupBuilder,
    RuleSet,
    Status,
    evaluate,
    evaluate_person,
    period_bounds,
)

A, B, C = CourseRef("idnumber", "A"), CourseRef("idnumber", "B"), CourseRef("idnumber", "C")
COURSE_IDS = {A: 10, B: 20}  # C did not resolve in Moodle
MONTHS_24, DAYS_60 = Duration(24, "months"), Duration(60, "days")

DEPARTMENTS = (
    Department("org", "Organisation"),
    Department("org.a", "A", "org"),
    Department("org.b", "B", "org"),
    Department("org.b.x", "B-X", "org.b"),
    Department("nz", "Far away", timezone="Pacific/Auckland"),
    Department("nz.one", "One", "nz"),
)


def utc(day: date, hour: int = 10, minute: int = 0) -> int:
    return int(datetime.combine(day, time(hour, minute), UTC).timestamp())


def done(
    day: date, course: int = 10, user: int = 1, hour: int = 10, minute: int = 0, **kw: Any
) -> Completion:
    return Completion(user, course, utc(day, hour, minute), **kw)


def requirement(**overrides: Any) -> Requirement:
    values: dict[str, Any] = dict(
        id="sec",
        title="Security",
        courses=(A,),
        valid_for=MONTHS_24,
        warn_before=DAYS_60,
        grace=Duration(90, "days"),
    )
    values.update(overrides)
    return Requirement(**values)


def mappings(*requirements: Requirement) -> Mappings:
    return Mappings(DEPARTMENTS, requirements or (requirement(),), timezone="Europe/Prague")


def subject(**overrides: Any) -> Subject:
    values: dict[str, Any] = dict(
        user_id=1, username="u1", department_id="org.a", position="úředník", idnumber="E1"
    )
    values.update(overrides)
    return Subject(**values)


def one(evidence: list[Completion], as_of: date, req: Requirement | None = None, **subject_kw: Any):
    statuses = evaluate_person(
        subject(**subject_kw), evidence, mappings(req or requirement()), COURSE_IDS, as_of
    )
    assert len(statuses) == 1
    return statuses[0]


# -- statuses, one edge case a row ----------------------------------------------------------------
CASES: list[tuple[str, list[Completion], date, dict[str, Any], dict[str, Any]]] = [
    (
        "never completed",
        [],
        date(2026, 1, 1),
        {},
        dict(status=Status.MISSING, valid_until=None, decided_by=None, detail="no completion"),
    ),
    (
        "recent completion",
        [done(date(2025, 6, 1))],
        date(2026, 1, 1),
        {},
        dict(
            status=Status.COMPLIANT,
            valid_until=date(2027, 6, 1),
            completed_on=date(2025, 6, 1),
            detail="one completion",
        ),
    ),
    (
        "inside the warning window",
        [done(date(2024, 2, 1))],
        date(2026, 1, 15),
        {},
        dict(status=Status.EXPIRING, valid_until=date(2026, 2, 1)),
    ),
    (
        "first day of the warning window",
        [done(date(2024, 3, 1))],
        date(2025, 12, 31),
        {},  # 1 Mar - 60 days
        dict(status=Status.EXPIRING, valid_until=date(2026, 3, 1)),
    ),
    (
        "day before the warning window",
        [done(date(2024, 3, 1))],
        date(2025, 12, 30),
        {},
        dict(status=Status.COMPLIANT),
    ),
    (
        "last valid day is still valid",
        [done(date(2024, 3, 1))],
        date(2026, 3, 1),
        {},
        dict(status=Status.EXPIRING, valid_until=date(2026, 3, 1)),
    ),
    (
        "day after validity",
        [done(date(2024, 3, 1))],
        date(2026, 3, 2),
        {},
        dict(status=Status.EXPIRED, valid_until=date(2026, 3, 1), since=date(2026, 3, 2)),
    ),
    (
        "several completions: latest wins",
        [done(date(2022, 1, 5)), done(date(2025, 8, 1)), done(date(2023, 4, 4))],
        date(2026, 1, 1),
        {},
        dict(status=Status.COMPLIANT, valid_until=date(2027, 8, 1), detail="latest of 3 completions"),
    ),
    (
        "29 February + 24 months",
        [done(date(2024, 2, 29))],
        date(2026, 2, 28),
        {},
        dict(status=Status.EXPIRING, valid_until=date(2026, 2, 28)),
    ),
    (
        "29 February + 24 months, the day after",
        [done(date(2024, 2, 29))],
        date(2026, 3, 1),
        {},
        dict(status=Status.EXPIRED, since=date(2026, 3, 1)),
    ),
    (
        "completion dated in the future is not trusted",
        [done(date(2023, 1, 1)), done(date(2026, 6, 1))],
        date(2026, 1, 1),
        {},
        dict(
            status=Status.EXPIRED,
            valid_until=date(2025, 1, 1),
            detail="one completion; 1 completion dated after as_of ignored",
        ),
    ),
    (
        "only a future completion",
        [done(date(2027, 1, 1))],
        date(2026, 1, 1),
        {},
        dict(status=Status.MISSING, detail="no completion; 1 completion dated after as_of ignored"),
    ),
    (
        "evaluating in the past ignores later evidence",
        [done(date(2023, 5, 1)), done(date(2025, 5, 1))],
        date(2024, 1, 1),
        {},
        dict(status=Status.COMPLIANT, valid_until=date(2025, 5, 1)),
    ),
    (
        "suspended: out of scope",
        [done(date(2025, 6, 1))],
        date(2026, 1, 1),
        dict(active=False),
        dict(
            status=Status.NOT_APPLICABLE, decided_by=None, detail="inactive in Moodle (suspended or deleted)"
        ),
    ),
    (
        "newcomer without evidence: grace",
        [],
        date(2026, 1, 1),
        dict(start_date=date(2025, 11, 1)),
        dict(status=Status.GRACE, due=date(2026, 1, 30)),
    ),
    (
        "newcomer with expired old evidence: grace",
        [done(date(2020, 1, 1))],
        date(2026, 1, 1),
        dict(start_date=date(2025, 11, 1)),
        dict(status=Status.GRACE, due=date(2026, 1, 30)),
    ),
    (
        "grace ends on the due date",
        [],
        date(2026, 1, 30),
        dict(start_date=date(2025, 11, 1)),
        dict(status=Status.MISSING, due=None),
    ),
    (
        "newcomer who already completed is compliant",
        [done(date(2025, 12, 1))],
        date(2026, 1, 1),
        dict(start_date=date(2025, 11, 1)),
        dict(status=Status.COMPLIANT),
    ),
    (
        "evidence of another user is ignored",
        [done(date(2025, 6, 1), user=2)],
        date(2026, 1, 1),
        {},
        dict(status=Status.MISSING),
    ),
    (
        "evidence of an unrelated course is ignored",
        [done(date(2025, 6, 1), course=99)],
        date(2026, 1, 1),
        {},
        dict(status=Status.MISSING),
    ),
]


@pytest.mark.parametrize(
    ("name", "evidence", "as_of", "subject_kw", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_status_table(
    name: str, evidence: list[Completion], as_of: date, subject_kw: dict[str, Any], expected: dict[str, Any]
) -> None:
    result = one(evidence, as_of, **subject_kw)
    for field, value in expected.items():
        assert getattr(result, field) == value, f"{name}: {field}"


def test_decided_by_is_the_deciding_completion() -> None:
    latest = done(date(2025, 8, 1))
    result = one([done(date(2022, 1, 5)), latest], date(2026, 1, 1))
    assert result.decided_by == latest
    assert result.user_id == 1 and result.requirement_id == "sec"


def test_same_instant_prefers_the_finer_precision_whatever_the_order() -> None:
    report = done(date(2025, 8, 1), source="report", precision_s=60)
    status_call = done(date(2025, 8, 1), source="completion_status", precision_s=1)
    assert one([report, status_call], date(2026, 1, 1)).decided_by == status_call
    assert one([status_call, report], date(2026, 1, 1)).decided_by == status_call


def test_no_validity_never_expires() -> None:
    result = one([done(date(2001, 1, 1))], date(2026, 1, 1), requirement(valid_for=None, warn_before=None))
    assert (result.status, result.valid_until) == (Status.COMPLIANT, None)


# -- exemptions -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exemption", "as_of", "expected"),
    [
        (Exemption("on leave", username="u1"), date(2026, 1, 1), Status.EXEMPT),
        (Exemption("on leave", idnumber="E1"), date(2026, 1, 1), Status.EXEMPT),
        (Exemption("on leave", username="u1", until=date(2026, 1, 1)), date(2026, 1, 1), Status.EXEMPT),
        (Exemption("on leave", username="u1", until=date(2025, 12, 31)), date(2026, 1, 1), Status.MISSING),
        (Exemption("someone else", username="u2"), date(2026, 1, 1), Status.MISSING),
    ],
)
def test_exemptions(exemption: Exemption, as_of: date, expected: Status) -> None:
    result = one([], as_of, requirement(exemptions=(exemption,)))
    assert result.status == expected
    if expected == Status.EXEMPT:
        assert exemption.reason in result.detail


def test_exemption_by_idnumber_does_not_match_empty_idnumbers() -> None:
    result = one([], date(2026, 1, 1), requirement(exemptions=(Exemption("x", idnumber=""),)), idnumber="")
    assert result.status == Status.MISSING


# -- all-of and unresolved courses ----------------------------------------------------------------
def test_all_of_is_valid_until_the_earliest_expiry() -> None:
    req = requirement(courses=(A, B), require="all", valid_for=Duration(12, "months"), warn_before=None)
    first_a, b = done(date(2025, 3, 1), course=10), done(date(2025, 6, 1), course=20)
    result = one([first_a, b, done(date(2024, 1, 1), course=10)], date(2025, 12, 1), req)
    assert result.status == Status.COMPLIANT
    assert result.valid_until == date(2026, 3, 1)
    assert result.decided_by == first_a


def test_all_of_with_a_course_missing_is_missing() -> None:
    req = requirement(courses=(A, B), require="all")
    result = one([done(date(2025, 3, 1), course=10)], date(2025, 12, 1), req)
    assert (result.status, result.detail) == (Status.MISSING, "1 of 2 courses completed")


def test_all_of_with_an_unresolved_course_cannot_be_met() -> None:
    req = requirement(courses=(A, C), require="all")
    result = one([done(date(2025, 3, 1), course=10)], date(2025, 12, 1), req)
    assert result.status == Status.MISSING
    assert "not in Moodle" in result.detail


def test_any_of_with_one_unresolved_course_uses_the_others() -> None:
    req = requirement(courses=(C, A))
    assert one([done(date(2025, 3, 1), course=10)], date(2025, 12, 1), req).status == Status.COMPLIANT


def test_any_of_takes_the_latest_across_courses() -> None:
    req = requirement(courses=(A, B))
    result = one(
        [done(date(2024, 3, 1), course=10), done(date(2025, 3, 1), course=20)], date(2025, 12, 1), req
    )
    assert result.decided_by is not None and result.decided_by.course_id == 20
    assert result.detail == "latest of 2 completions"


# -- time zones -----------------------------------------------------------------------------------
def test_completion_date_is_local_to_the_department() -> None:
    late = done(date(2025, 12, 31), hour=23, minute=30)  # 00:30 on 1 January in Prague
    result = one([late], date(2026, 6, 1))
    assert result.completed_on == date(2026, 1, 1)
    assert result.valid_until == date(2028, 1, 1)
    far = one([late], date(2026, 6, 1), department_id="nz.one")  # Auckland: 12:30 on 1 January
    assert far.completed_on == date(2026, 1, 1)
    early = done(date(2025, 12, 31), hour=9)  # 22:00 on 31 Dec in Auckland, 10:00 in Prague
    assert one([early], date(2026, 6, 1), department_id="nz.one").completed_on == date(2025, 12, 31)


def test_as_of_ends_at_local_midnight() -> None:
    evening = done(date(2026, 1, 1), hour=23, minute=30)  # already 2 January in Prague
    assert one([evening], date(2026, 1, 1)).status == Status.MISSING
    assert one([evening], date(2026, 1, 2)).status == Status.COMPLIANT


# -- scope ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("applies_to", "subject_kw", "in_scope"),
    [
        (AppliesTo(), {}, True),
        (AppliesTo(departments=("org",)), {}, True),  # a subtree includes its descendants
        (AppliesTo(departments=("org.b",)), {}, False),
        (AppliesTo(departments=("org.b",)), dict(department_id="org.b.x"), True),
        (AppliesTo(positions=("ÚŘEDNÍK ",)), {}, True),  # positions compared normalised
        (AppliesTo(positions=("starosta",)), {}, False),
        (AppliesTo(positions=("starosta",)), dict(position=None), False),
        (AppliesTo(cohorts=("C1",)), dict(cohorts=frozenset({"C1", "C2"})), True),
        (AppliesTo(cohorts=("C1",)), {}, False),
        (AppliesTo(departments=("org",), positions=("úředník",)), dict(department_id="nz.one"), False),
        (AppliesTo(), dict(department_id=None), True),  # unplaced: only requirements for everyone
        (AppliesTo(departments=("org",)), dict(department_id=None), False),
    ],
)
def test_applies_to(applies_to: AppliesTo, subject_kw: dict[str, Any], in_scope: bool) -> None:
    result = one([done(date(2025, 6, 1))], date(2026, 1, 1), requirement(applies_to=applies_to), **subject_kw)
    assert (result.status != Status.NOT_APPLICABLE) == in_scope
    if not in_scope:
        assert result.decided_by is not None  # evidence is still carried for holder counts


def test_every_requirement_in_mappings_order() -> None:
    reqs = (requirement(id="r1"), requirement(id="r2", courses=(B,)))
    statuses = evaluate_person(
        subject(), [done(date(2025, 6, 1))], mappings(*reqs), COURSE_IDS, date(2026, 1, 1)
    )
    assert [(s.requirement_id, s.status) for s in statuses] == [
        ("r1", Status.COMPLIANT),
        ("r2", Status.MISSING),
    ]


# -- periods and roll-ups -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("as_of", "period", "expected"),
    [
        (date(2026, 11, 24), Duration(2, "years"), (date(2026, 1, 1), date(2027, 12, 31))),
        (date(2025, 3, 1), Duration(2, "years"), (date(2024, 1, 1), date(2025, 12, 31))),  # odd year
        (date(2025, 3, 1), Duration(1, "years"), (date(2025, 1, 1), date(2025, 12, 31))),
        (date(2025, 5, 15), Duration(3, "months"), (date(2025, 4, 1), date(2025, 6, 30))),
        (date(2025, 12, 31), Duration(6, "months"), (date(2025, 7, 1), date(2025, 12, 31))),
    ],
)
def test_period_bounds(as_of: date, period: Duration, expected: tuple[date, date]) -> None:
    assert period_bounds(as_of, period) == expected


def rollups_by_key(rollups: list[DepartmentRollup]) -> dict[tuple[str, str], DepartmentRollup]:
    return {(r.department_id, r.requirement_id): r for r in rollups}


def test_rollups_aggregate_the_tree_and_judge_targets() -> None:
    share = requirement(
        id="sec",
        applies_to=AppliesTo(departments=("org",)),
        grace=None,
        targets=(Target("share", 0.5, Duration(2, "years")),),
    )
    advisor = requirement(
        id="adv",
        courses=(B,),
        valid_for=None,
        warn_before=None,
        grace=None,
        applies_to=AppliesTo(positions=("poradce",)),
        targets=(Target("holders", 1, None, "leaves"),),
    )
    as_of = date(2025, 6, 1)  # current 2-year period: 2024-2025
    people = [
        (subject(user_id=1, department_id="org.a"), [done(date(2024, 5, 1), user=1)]),  # compliant, in period
        (
            subject(user_id=2, department_id="org.a"),
            [done(date(2023, 12, 1), user=2)],
        ),  # compliant, before period
        (
            subject(user_id=3, department_id="org.b.x", position="poradce"),
            [done(date(2021, 1, 1), user=3), done(date(2020, 1, 1), course=20, user=3)],
        ),  # expired; advisor holder
        (subject(user_id=4, department_id="org.b.x", username="u4"), []),  # missing
        (
            subject(user_id=5, department_id="org.a", active=False),
            [done(date(2025, 1, 1), user=5)],
        ),  # inactive
        (subject(user_id=6, department_id=None), [done(date(2025, 1, 1), user=6)]),  # unplaced
        (subject(user_id=7, department_id="org.b", username="u7"), []),
    ]
    share = replace(share, exemptions=(Exemption("leave", username="u7"),))
    maps = mappings(share, advisor)
    evidence = [c for _, cs in people for c in cs]
    result = evaluate([s for s, _ in people], evidence, maps, COURSE_IDS, as_of)
    rollups = rollups_by_key(result.rollups)

    org = rollups[("org", "sec")]
    assert (org.in_scope, org.compliant, org.expired, org.missing, org.exempt) == (5, 2, 1, 1, 1)
    assert org.share == 0.5
    assert org.targets[0].period == "2024-01-01/2025-12-31"
    assert org.targets[0].actual == 0.25 and org.targets[0].met is False
    a = rollups[("org.a", "sec")]
    assert (a.in_scope, a.compliant, a.share) == (2, 2, 1.0)
    assert a.targets[0].actual == 0.5 and a.targets_met is True
    bx = rollups[("org.b.x", "sec")]
    assert (bx.in_scope, bx.expired, bx.missing, bx.share, bx.targets_met) == (2, 1, 1, 0.0, False)
    assert ("nz", "sec") not in rollups and ("nz.one", "sec") not in rollups  # out of the scope's reach

    assert rollups[("org.b.x", "adv")].holders == 1
    assert rollups[("org.b.x", "adv")].targets_met is True
    assert rollups[("org.a", "adv")].targets_met is False  # a leaf without an advisor
    assert rollups[("org.a", "adv")].targets[0].actual == 0
    assert rollups[("org", "adv")].targets == () and rollups[("org", "adv")].targets_met is None
    assert rollups[("nz.one", "adv")].in_scope == 0
    assert rollups[("org.b", "adv")].targets == ()  # org.b has a sub-department: not a leaf


def test_share_target_without_anyone_judged_is_undecided() -> None:
    req = requirement(targets=(Target("share", 0.5, None),))
    builder = RollupBuilder(mappings(req), date(2026, 1, 1))
    rollup = rollups_by_key(builder.build())[("org.a", "sec")]
    assert rollup.in_scope == 0 and rollup.share is None
    assert rollup.targets[0].met is None and rollup.targets_met is None


def test_target_judged_at_organisations_only() -> None:
    req = requirement(targets=(Target("share", 0.5, None, "organisations"),))
    rollups = rollups_by_key(RollupBuilder(mappings(req), date(2026, 1, 1)).build())
    assert len(rollups[("org", "sec")].targets) == 1 and rollups[("org.a", "sec")].targets == ()


def test_rule_set_matches_evaluate_person() -> None:
    maps = mappings()
    rules = RuleSet(maps, COURSE_IDS, date(2026, 1, 1))
    evidence = [done(date(2024, 2, 1))]
    assert rules.evaluate(subject(), evidence) == evaluate_person(
        subject(), evidence, maps, COURSE_IDS, date(2026, 1, 1)
    )


# -- the demo scenario with the shipped mappings ------------------------------------------------
def test_demo_people_with_the_shipped_mappings() -> None:
    maps = load_mappings(DEMO_MAPPINGS)
    anchor = date(2026, 11, 24)
    ids = {
        CourseRef("idnumber", "ITSEC-CZ"): 2,
        CourseRef("idnumber", "AI-URED"): 3,
        CourseRef("idnumber", "DIGVAR-SI"): 4,
        CourseRef("idnumber", "DIGSVET"): 5,
    }

    def ago(days: int, course: int, user: int) -> Completion:
        return done(anchor - timedelta(days=days), course=course, user=user)

    def person(
        uid: int, username: str, institution: str, department: str, position: str, active: bool = True
    ) -> Subject:
        moodle = Person(
            uid,
            username,
            institution=institution,
            department=department,
            custom_fields=(("position", position),),
        )
        return Subject(
            uid,
            username,
            maps.place(moodle, frozenset()).department_id,
            maps.position_of(moodle),
            active=active,
        )

    jbc, lj = "Magistrát města Jablonec nad Nisou", "Mestna občina Ljubljana"
    people = [
        person(3, "u001", jbc, "Odbor informatiky", "digitální poradce"),
        person(4, "u002", jbc, "Odbor financí", "úředník"),
        person(5, "u003", jbc, "Odbor informatiky", "úředník"),
        person(6, "u004", jbc, "Odbor financí", "úředník"),
        person(7, "u005", jbc, "Odbor sociálních věcí", "úředník"),
        person(19, "u017", jbc, "Odbor financí", "úředník", active=False),
        person(42, "u040", lj, "Služba za digitalizacijo", "digitalni svetovalec"),
        person(43, "u041", lj, "Oddelek za finance", "uslužbenec"),
        person(53, "u051", "Obec Janov nad Nisou", "Vedení obce", "starosta"),
        person(60, "u058", "MM Jablonec n. N.", "  odbor  INFORMATIKY ", "úředník"),
    ]
    evidence = [
        ago(180, 2, 3),
        ago(400, 5, 3),
        ago(700, 3, 3),
        ago(900, 2, 4),
        ago(700, 2, 6),
        ago(1000, 2, 7),
        ago(100, 2, 7),
        ago(1200, 2, 19),
        ago(30, 4, 42),
        ago(200, 5, 42),
        ago(800, 4, 43),
        ago(60, 3, 53),
    ]
    result = evaluate(people, evidence, maps, ids, anchor)
    status = {(s.user_id, s.requirement_id): s.status for s in result.statuses}
    assert status[(3, "itsec-cz")] == Status.COMPLIANT
    assert status[(3, "digital-advisor")] == Status.COMPLIANT
    assert status[(4, "itsec-cz")] == Status.EXPIRED
    assert status[(4, "ai-ured")] == Status.MISSING
    assert status[(5, "itsec-cz")] == Status.MISSING
    assert status[(6, "itsec-cz")] == Status.EXPIRING
    assert status[(7, "itsec-cz")] == Status.COMPLIANT
    assert all(status[(19, r.id)] == Status.NOT_APPLICABLE for r in maps.requirements)
    assert status[(42, "digvar-si")] == Status.COMPLIANT and status[(42, "itsec-cz")] == Status.NOT_APPLICABLE
    assert status[(43, "digvar-si")] == Status.EXPIRED
    assert status[(53, "ai-ured")] == Status.COMPLIANT and status[(53, "itsec-cz")] == Status.MISSING
    assert people[-1].department_id == "jablonec.informatika" and status[(60, "itsec-cz")] == Status.MISSING
    rollups = rollups_by_key(result.rollups)
    assert rollups[("jablonec.informatika", "digital-advisor")].targets_met is None  # no such duty in Czechia
    assert rollups[("ljubljana.digitalizacija", "digital-advisor")].targets_met is True
    assert rollups[("ljubljana.finance", "digital-advisor")].targets_met is False
    assert rollups[("ljubljana.digitalizacija", "digital-advisor")].holders == 1
    assert ("ljubljana", "itsec-cz") not in rollups and ("jablonec", "digvar-si") not in rollups
    assert rollups[("jablonec", "itsec-cz")].in_scope == 6  # u017 is out of scope
