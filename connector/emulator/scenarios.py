"""The demo site (the organisations the product is for) and a seeded generator for scale."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from connector.emulator.feedback import demo_feedbacks
from connector.emulator.scenario import (
    FOUR_YEARS_DAYS,
    Account,
    CategoryDef,
    CohortDef,
    CourseDef,
    ReportDef,
    Scenario,
    StringTable,
    add_person,
    completion_instant,
    empty_people,
    seeded,
)

JABLONEC = "Magistrát města Jablonec nad Nisou"
CESKA_LIPA = "Městský úřad Česká Lípa"
JANOV = "Obec Janov nad Nisou"
LUCANY = "Obec Lučany nad Nisou"
LJUBLJANA = "Mestna občina Ljubljana"

DEPARTMENTS = {
    JABLONEC: ("Odbor informatiky", "Odbor financí", "Odbor sociálních věcí"),
    CESKA_LIPA: ("Odbor dopravy", "Odbor informatiky"),
    JANOV: ("Vedení obce",),
    LUCANY: ("Vedení obce",),
    LJUBLJANA: ("Oddelek za finance", "Oddelek za kulturo", "Služba za digitalizacijo"),
}
PLACES = {
    JABLONEC: ("Jablonec nad Nisou", "CZ"),
    CESKA_LIPA: ("Česká Lípa", "CZ"),
    JANOV: ("Janov nad Nisou", "CZ"),
    LUCANY: ("Lučany nad Nisou", "CZ"),
    LJUBLJANA: ("Ljubljana", "SI"),
}
CZECH_FIRST = (
    "Kateřina",
    "Tomáš",
    "Eva",
    "Jan",
    "Petra",
    "Martin",
    "Lucie",
    "Radek",
    "Jana",
    "Pavel",
    "Hana",
    "Jiří",
    "Veronika",
    "Lukáš",
    "Tereza",
    "Ondřej",
)
CZECH_LAST = (
    "Veselá",
    "Němec",
    "Horáková",
    "Novák",
    "Svobodová",
    "Dvořák",
    "Černá",
    "Marek",
    "Procházková",
    "Kučera",
    "Pokorná",
    "Růžička",
    "Benešová",
    "Fiala",
    "Sedláček",
)
SLOVENE_FIRST = (
    "Nina",
    "Urška",
    "Matej",
    "Gašper",
    "Tjaša",
    "Ana",
    "Luka",
    "Blaž",
    "Maja",
    "Jure",
    "Špela",
    "Rok",
)
SLOVENE_LAST = (
    "Golob",
    "Novak",
    "Zupančič",
    "Horvat",
    "Krajnc",
    "Potočnik",
    "Kovačič",
    "Mlakar",
    "Vidmar",
    "Kos",
)

ITSEC, AI, DIGVAR, DIGSVET, ORIENT, ARCH = 2, 3, 4, 5, 6, 7
DEMO_PEOPLE = 60
FIRST_PERSON_ID = 3
COHORT_IDNUMBERS = (
    (JABLONEC, "COH-8CB4C3"),
    (CESKA_LIPA, "COH-97029A"),
    (LJUBLJANA, "COH-228DA1"),
    (LUCANY, "COH-E394A8"),
    (JANOV, "COH-C977F8"),
)


def _instant(anchor: date, days_before: int) -> int:
    return completion_instant(anchor, days_before)


def _site_created(anchor: date) -> int:
    return int(datetime.combine(anchor - timedelta(days=1700), time(9), tzinfo=UTC).timestamp())


def _demo_courses(created: int) -> list[CourseDef]:
    return [
        CourseDef(
            1,
            "ctm",
            "Compliance Test Moodle",
            "",
            0,
            1,
            completion_enabled=False,
            format="site",
            timecreated=created,
        ),
        CourseDef(
            ITSEC,
            "itsec-cz",
            "„IT bezpečnost pro koncové uživatele“",
            "ITSEC-CZ",
            2,
            20003,
            timecreated=created,
        ),
        CourseDef(
            AI,
            "ai-ured",
            "Jak může AI usnadnit a zefektivnit práci úředníka?",
            "AI-URED",
            3,
            30001,
            timecreated=created,
        ),
        CourseDef(DIGVAR, "digvar-si", "Digitalna varnost", "DIGVAR-SI", 4, 40002, timecreated=created),
        CourseDef(
            DIGSVET, "digsvet", "Digitalni svetovalec – uvod", "DIGSVET", 4, 40001, timecreated=created
        ),
        CourseDef(
            ORIENT,
            "orient",
            "Orientace pro nové zaměstnance",
            "ORIENT",
            2,
            20002,
            completion_enabled=False,
            timecreated=created,
        ),
        CourseDef(
            ARCH,
            "arch-sec19",
            "Archivní kurz bezpečnosti 2019",
            "ARCH-SEC19",
            2,
            20001,
            visible=False,
            timecreated=created,
        ),
    ]


def _demo_categories() -> list[CategoryDef]:
    return [
        CategoryDef(1, "Category 1", 10000),
        CategoryDef(2, "Kybernetická bezpečnost", 20000),
        CategoryDef(3, "Umělá inteligence", 30000),
        CategoryDef(4, "Digitalne kompetence", 40000),
    ]


def _demo_placement(number: int) -> tuple[str, str | None, str]:
    """(institution, department or None = seeded pick, position) of person uNNN."""
    named: dict[int, tuple[str, str | None, str]] = {
        1: (JABLONEC, "Odbor informatiky", "digitální poradce"),
        2: (JABLONEC, "Odbor financí", "úředník"),
        3: (JABLONEC, "Odbor informatiky", "úředník"),
        4: (JABLONEC, "Odbor financí", "úředník"),
        5: (JABLONEC, "Odbor sociálních věcí", "úředník"),
        17: (JABLONEC, "Odbor financí", "úředník"),
        23: (CESKA_LIPA, "Odbor informatiky", "digitální poradce"),
        40: (LJUBLJANA, "Služba za digitalizacijo", "digitalni svetovalec"),
        41: (LJUBLJANA, "Oddelek za finance", "uslužbenec"),
        45: (LJUBLJANA, "Služba za digitalizacijo", "digitalni svetovalec"),
        51: (JANOV, "Vedení obce", "starosta"),
        52: (LUCANY, "Vedení obce", "starosta"),
        58: ("MM Jablonec n. N.", "  odbor  INFORMATIKY ", "úředník"),
        59: (JANOV, "Vedení obce", "úředník"),
        60: ("", "", "úředník"),
    }
    if number in named:
        return named[number]
    if number <= 22:
        return JABLONEC, None, "úředník"
    if number <= 36:
        return CESKA_LIPA, None, "úředník"
    return LJUBLJANA, None, "uslužbenec"


# Named people: exactly these enrolments, (course, days before anchor of each completion).
NAMED_ENROLMENTS: dict[int, dict[int, tuple[int, ...]]] = {
    1: {ITSEC: (180,), DIGSVET: (400,), AI: (700,)},
    2: {ITSEC: (900,), AI: ()},
    3: {ITSEC: ()},
    4: {ITSEC: (700,)},
    5: {ITSEC: (1000, 100)},
    17: {ITSEC: (1200,)},
    40: {DIGVAR: (30,), DIGSVET: (200,)},
    41: {DIGVAR: (800,)},
    51: {AI: (60,), ITSEC: ()},
}
FIXED_ENROLMENTS: dict[int, dict[int, tuple[int, ...]]] = {
    7: {ITSEC: ()},  # fixture: user 9 enrolled in course 2, not completed, not in course 5
    11: {ORIENT: ()},  # fixture: user 13 in ORIENT
}
ORIENT_EXTRA = (12, 24, 30, 44)
ARCH_MEMBERS = (13, 26, 39, 47)


def _demo_enrolments(number: int, institution: str, position: str, rng: Any) -> dict[int, tuple[int, ...]]:
    if number in NAMED_ENROLMENTS:
        return dict(NAMED_ENROLMENTS[number])
    courses: list[int] = []
    czech = institution not in (LJUBLJANA,)
    if position == "starosta":
        courses = [AI]
    elif czech:
        courses = [ITSEC, AI]
    else:
        courses = [DIGVAR]
    if position in ("digitální poradce", "digitalni svetovalec"):
        courses.append(DIGSVET)
    if number in ORIENT_EXTRA:
        courses.append(ORIENT)
    if number in ARCH_MEMBERS:
        courses.append(ARCH)
    result: dict[int, tuple[int, ...]] = {}
    for course in courses:
        completed = course != ORIENT and rng.random() < 0.72
        result[course] = (rng.randint(5, FOUR_YEARS_DAYS),) if completed else ()
    for course, times in FIXED_ENROLMENTS.get(number, {}).items():
        result[course] = times
    if number == 7:
        result.pop(DIGSVET, None)
    return result


def demo_scenario(anchor: date, *, report_timezone: str = "Europe/Prague") -> Scenario:
    """The demo site: the fixture site's ids and names, named people as the shared spec says."""
    rng = seeded(2025, "demo")
    intern = StringTable()
    people = empty_people(FIRST_PERSON_ID)
    triples: list[tuple[int, int, int]] = []
    earlier: list[tuple[int, int, int]] = []
    for number in range(1, DEMO_PEOPLE + 1):
        institution, department, position = _demo_placement(number)
        if department is None:
            department = rng.choice(DEPARTMENTS[institution])
        slovene = institution == LJUBLJANA
        add_person(
            people,
            intern,
            firstname=rng.choice(SLOVENE_FIRST if slovene else CZECH_FIRST),
            lastname=rng.choice(SLOVENE_LAST if slovene else CZECH_LAST),
            institution=institution,
            department=department,
            position=position,
            suspended=number == 17,
        )
        user_id = FIRST_PERSON_ID + number - 1
        for course, days in sorted(_demo_enrolments(number, institution, position, rng).items()):
            instants = sorted(_instant(anchor, d) for d in days)
            earlier.extend((user_id, course, at) for at in instants[:-1])
            triples.append((user_id, course, instants[-1] if instants else 0))
    created = _site_created(anchor)
    return Scenario(
        name="demo",
        anchor=anchor,
        strings=intern.strings,
        people=people,
        places=PLACES,
        courses=_demo_courses(created),
        categories=_demo_categories(),
        cohorts=[CohortDef(i, inst, code, inst) for i, (inst, code) in enumerate(COHORT_IDNUMBERS, 1)],
        accounts=_accounts(FIRST_PERSON_ID + DEMO_PEOPLE),
        enrolment_triples=triples,
        earlier_completions=earlier,
        # set up as the README says: the "Enrolment status" condition removed from the report
        report=ReportDef(1, "Compliance completions", created + 3600, enrolment_status_condition=False),
        report_timezone=report_timezone,
        token_user_id=FIRST_PERSON_ID + DEMO_PEOPLE,
        weak_user_id=FIRST_PERSON_ID + DEMO_PEOPLE + 1,
        feedbacks=demo_feedbacks(anchor, FIRST_PERSON_ID),
    )


def _accounts(ws_user_id: int) -> list[Account]:
    return [
        Account(1, "guest", "Guest user", " ", "root@localhost"),
        Account(2, "admin", "Admin", "User", "admin@example.org"),
        Account(ws_user_id, "wsconnector", "Compliance", "Connector", "wsconnector@example.org"),
        Account(ws_user_id + 1, "wsweak", "Weak", "Token", "weak@example.org"),
    ]


GENERATED_POSITIONS = (
    "úředník",
    "úředník",
    "úředník",
    "uslužbenec",
    "digitální poradce",
    "digitalni svetovalec",
    "starosta",
)


def generated_scenario(
    *,
    users: int,
    courses: int,
    enrolments_per_user: float,
    completion_rate: float,
    seed: int,
    anchor: date,
    with_report: bool = True,
    report_time_filter: bool = True,
    departments: int = 20,
    report_timezone: str = "Europe/Prague",
) -> Scenario:
    """A seeded site of any size: the same arguments always give the same facts."""
    if users < 1 or courses < 1:
        raise ValueError("a generated scenario needs at least one user and one course")
    rng = seeded(seed, "generated")
    intern = StringTable()
    institutions = [f"Organizace {k + 1:02d}" for k in range(max(1, departments // 5))]
    department_names = [f"Odbor {k + 1:03d}" for k in range(max(1, departments))]
    places = {name: (f"Město {k + 1}", "CZ") for k, name in enumerate(institutions)}
    people = empty_people(FIRST_PERSON_ID)
    created = _site_created(anchor)
    course_defs = [
        CourseDef(
            1,
            "site",
            "Generated Moodle",
            "",
            0,
            1,
            completion_enabled=False,
            format="site",
            timecreated=created,
        )
    ]
    course_defs += [
        CourseDef(
            2 + k,
            f"course-{k + 1:03d}",
            f"Kurz {k + 1:03d}",
            f"C{k + 1:03d}",
            1 + k % 4,
            (1 + k % 4) * 10000 + k + 1,
            timecreated=created,
        )
        for k in range(courses)
    ]
    course_ids = [c.id for c in course_defs[1:]]
    base = int(enrolments_per_user)
    fraction = enrolments_per_user - base
    first_names = [intern(n) for n in CZECH_FIRST]
    last_names = [intern(n) for n in CZECH_LAST]
    institution_ids = [intern(n) for n in institutions]
    department_ids = [intern(n) for n in department_names]
    position_ids = [intern(n) for n in GENERATED_POSITIONS]

    def triples() -> Iterator[tuple[int, int, int]]:
        for index in range(users):
            count = min(len(course_ids), base + (1 if rng.random() < fraction else 0))
            for course in sorted(rng.sample(course_ids, count)):
                at = 0
                if rng.random() < completion_rate:
                    days = rng.randint(1, FOUR_YEARS_DAYS)
                    at = completion_instant(anchor, days, rng.randint(6 * 3600, 18 * 3600))
                yield FIRST_PERSON_ID + index, course, at

    for _ in range(users):
        department = rng.randrange(len(department_ids))
        people.firstnames.append(rng.choice(first_names))
        people.lastnames.append(rng.choice(last_names))
        people.institutions.append(institution_ids[department % len(institution_ids)])
        people.departments.append(department_ids[department])
        people.positions.append(rng.choice(position_ids))
        people.flags.append(1 if rng.random() < 0.01 else 0)
    return Scenario(
        name=f"generated-{users}",
        anchor=anchor,
        strings=intern.strings,
        people=people,
        places=places,
        courses=course_defs,
        categories=[CategoryDef(k, f"Kategorie {k}", k * 10000) for k in range(1, 5)],
        cohorts=[CohortDef(k + 1, name, f"COH-{k + 1:04d}", name) for k, name in enumerate(institutions)],
        accounts=_accounts(FIRST_PERSON_ID + users),
        enrolment_triples=triples(),
        # the report as the README's setup makes it, "Time completed" filter included (nightly
        # delta reads); report_time_filter=False is a report without it
        report=ReportDef(
            1, "Compliance completions", created + 3600, time_completed_filter=report_time_filter
        )
        if with_report
        else None,
        report_timezone=report_timezone,
        site_name="Generated Moodle",
        token_user_id=FIRST_PERSON_ID + users,
        weak_user_id=FIRST_PERSON_ID + users + 1,
    )


NAMED_SIZES: dict[str, dict[str, Any]] = {
    "small": {"users": 500, "courses": 10, "enrolments_per_user": 4.0},
    "medium": {"users": 2_000, "courses": 20, "enrolments_per_user": 4.0},
    "large": {"users": 20_000, "courses": 40, "enrolments_per_user": 4.0},
    "xl": {"users": 100_000, "courses": 40, "enrolments_per_user": 4.0},  # a national deployment
}
SCENARIO_NAMES = ("demo", *NAMED_SIZES)


def scenario_by_name(name: str, anchor: date, **params: Any) -> Scenario:
    """For the CLI: "demo", "small", "medium", "large" or "xl"; params override the generator's."""
    if name == "demo":
        return demo_scenario(anchor, **params)
    if name not in NAMED_SIZES:
        raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIO_NAMES)}")
    settings: dict[str, Any] = {"completion_rate": 0.6, "seed": 1, **NAMED_SIZES[name], **params}
    return generated_scenario(anchor=anchor, **settings)
