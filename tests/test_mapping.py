"""Mapping files: the shipped examples, placement of people, and validation of broken files."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from connector.durations import Duration, parse_duration, shift_months
from connector.errors import MappingError, Problem
from connector.mapping import DEMO_MAPPINGS, CourseRef, Department, Mappings, load_mappings, normalise
from connector.moodle.records import Course, Person

SHIPPED = DEMO_MAPPINGS

GOOD_DEPARTMENTS = """
[[department]]
id = "org"
name = "Organisation"
institution = "Město"

[[department]]
id = "org.it"
parent = "org"
name = "IT"
department = "IT"
"""
# a directory without any requirement is refused, so department-only tests add this one
ONE_REQUIREMENT = """
[course.c]
idnumber = "C"

[[requirement]]
id = "r"
title = "R"
courses = ["c"]
"""


def write(directory: Path, **files: str) -> Path:
    for name, text in files.items():
        (directory / f"{name}.toml").write_text(text, encoding="utf-8")
    return directory


def problems_of(directory: Path) -> list[Problem]:
    with pytest.raises(MappingError) as caught:
        load_mappings(directory)
    return caught.value.problems


def find(problems: list[Problem], key: str, words: str) -> Problem:
    matching = [p for p in problems if p.key == key and words in p.message]
    assert matching, f"no problem at {key!r} saying {words!r} in:\n" + "\n".join(map(str, problems))
    return matching[0]


# -- the shipped example mappings -----------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped() -> Mappings:
    return load_mappings(SHIPPED)


def test_shipped_mappings_load(shipped: Mappings) -> None:
    assert shipped.timezone == "Europe/Prague"
    assert shipped.position_field == "position"
    assert {r.id for r in shipped.requirements} == {
        "itsec-cz",
        "digvar-si",
        "advisor-appointed-si",
        "digital-advisor",
        "ai-ured",
    }
    assert shipped.course_refs() == {
        CourseRef("idnumber", v) for v in ("ITSEC-CZ", "DIGVAR-SI", "DIGSVET", "AI-URED")
    }
    assert shipped.department("ljubljana.kultura").parent_id == "ljubljana"
    assert shipped.timezone_of("ljubljana.kultura") == "Europe/Ljubljana"
    assert shipped.timezone_of("jablonec.financi") == "Europe/Prague"
    itsec = shipped.requirement("itsec-cz")
    assert itsec.valid_for == Duration(24, "months") and itsec.warn_before == Duration(60, "days")
    assert shipped.requirement("digital-advisor").valid_for is None


@pytest.mark.parametrize(
    ("institution", "department", "expected"),
    [
        ("Magistrát města Jablonec nad Nisou", "Odbor informatiky", "jablonec.informatika"),
        ("MM Jablonec n. N.", "  odbor  INFORMATIKY ", "jablonec.informatika"),  # u058: alias + normalisation
        ("Městský úřad Česká Lípa", "Odbor informatiky", "ceska-lipa.informatika"),
        ("Obec Janov nad Nisou", "Vedení obce", "janov.vedeni"),
        ("Obec Lučany nad Nisou", "Vedení obce", "lucany.vedeni"),
        ("Mestna občina Ljubljana", "Služba za digitalizacijo", "ljubljana.digitalizacija"),
        ("", "", None),  # u060: unplaced, never dropped silently
        ("Magistrát města Jablonec nad Nisou", "", None),  # an institution alone places nobody
        ("Magistrát města Jablonec nad Nisou", "Odbor neexistující", None),
    ],
)
def test_shipped_placement(
    shipped: Mappings, institution: str, department: str, expected: str | None
) -> None:
    person = Person(60, "u058", institution=institution, department=department)
    placement = shipped.place(person, frozenset())
    assert placement.department_id == expected
    assert placement.conflicts == ()


def test_normalisation_nfc_case_and_spaces() -> None:
    decomposed = "Odbor financi\u0301"  # "í" as i + combining acute
    assert normalise(decomposed) == normalise("ODBOR   FINANCÍ ")


def test_cohort_and_profile_field_placement_deepest_wins_and_conflicts(tmp_path: Path) -> None:
    write(
        tmp_path,
        r=ONE_REQUIREMENT,
        d=GOOD_DEPARTMENTS
        + """
[[department]]
id = "org.hr"
parent = "org"
name = "HR"
cohorts = ["COH-HR"]
profile_field = "orgunit"
profile_values = ["HR-01"]

[[department]]
id = "other"
name = "Other"
cohorts = ["COH-OTHER"]
""",
    )
    mappings = load_mappings(tmp_path)
    assert mappings.cohort_idnumbers() == {"COH-HR", "COH-OTHER"}
    by_cohort = mappings.place(Person(1, "a"), frozenset({"COH-HR"}))
    assert by_cohort.department_id == "org.hr"
    by_field = mappings.place(Person(1, "a", custom_fields=(("orgunit", " hr-01 "),)), frozenset())
    assert by_field.department_id == "org.hr"
    conflict = mappings.place(Person(1, "a", institution="město", department="it"), frozenset({"COH-OTHER"}))
    assert conflict.department_id is None
    assert conflict.conflicts == ("org.it", "other")


def test_ancestor_match_is_not_a_conflict(tmp_path: Path) -> None:
    write(
        tmp_path,
        r=ONE_REQUIREMENT,
        d=GOOD_DEPARTMENTS.replace('institution = "Město"', 'institution = "Město"\ncohorts = ["ALL"]'),
    )
    placement = load_mappings(tmp_path).place(
        Person(1, "a", institution="Město", department="IT"), frozenset({"ALL"})
    )
    assert placement.department_id == "org.it" and placement.conflicts == ()


def test_position_and_start_date(tmp_path: Path) -> None:
    write(
        tmp_path,
        s='[settings]\ntimezone = "Europe/Prague"\nposition_field = "job"\nstart_date_field = "start"\n',
        d=GOOD_DEPARTMENTS,
        r=ONE_REQUIREMENT,
    )
    mappings = load_mappings(tmp_path)
    person = Person(1, "a", custom_fields=(("job", "  úředník "), ("start", "2025-09-01")))
    assert mappings.position_of(person) == "úředník"
    assert mappings.start_date_of(person) == date(2025, 9, 1)
    assert mappings.start_date_of(Person(1, "a", custom_fields=(("start", "1. 9. 2025"),))) == date(
        2025, 9, 1
    )
    # a Moodle date field: midnight of 1 Sep 2025 in Prague, as epoch seconds
    assert mappings.start_date_of(Person(1, "a", custom_fields=(("start", "1756677600"),))) == date(
        2025, 9, 1
    )
    assert mappings.start_date_of(Person(1, "a", custom_fields=(("start", "0"),))) is None
    assert mappings.start_date_of(Person(1, "a", custom_fields=(("start", "soon"),))) is None
    assert mappings.position_of(Person(1, "a")) is None


def test_course_ref_matches() -> None:
    course = Course(2, "itsec-cz", "IT bezpečnost", "ITSEC-CZ", True, True)
    assert CourseRef("idnumber", "ITSEC-CZ").matches(course)
    assert CourseRef("shortname", "itsec-cz").matches(course)
    assert CourseRef("id", "2").matches(course)
    assert not CourseRef("id", "3").matches(course)
    assert not CourseRef("idnumber", "itsec-cz").matches(course)


def test_course_refs_by_each_kind(tmp_path: Path) -> None:
    write(
        tmp_path,
        d=GOOD_DEPARTMENTS,
        c="""
[course.a]
idnumber = "A"
[course.b]
shortname = "b-short"
[course.c]
id = 7
[[requirement]]
id = "r"
title = "R"
courses = ["a", "b", "c"]
require = "all"
""",
    )
    mappings = load_mappings(tmp_path)
    assert mappings.requirements[0].courses == (
        CourseRef("idnumber", "A"),
        CourseRef("shortname", "b-short"),
        CourseRef("id", "7"),
    )
    assert mappings.requirements[0].require == "all"


# -- durations ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24 months", Duration(24, "months")),
        ("2 years", Duration(2, "years")),
        ("90 days", Duration(90, "days")),
        ("1 month", Duration(1, "months")),
        (" 6 weeks ", Duration(6, "weeks")),
        ("3 Years", Duration(3, "years")),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["24", "months", "two years", "0 days", "-3 days", "5 fortnights", "1.5 years"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_month_arithmetic_clamps_month_ends() -> None:
    assert shift_months(date(2024, 2, 29), 24) == date(2026, 2, 28)
    assert shift_months(date(2024, 2, 29), 48) == date(2028, 2, 29)
    assert shift_months(date(2025, 8, 31), 6) == date(2026, 2, 28)
    assert shift_months(date(2025, 3, 31), -1) == date(2025, 2, 28)
    assert Duration(2, "years").after(date(2024, 2, 29)) == date(2026, 2, 28)


# -- validation: every problem at once -----------------------------------------------------------
def test_every_problem_is_listed_with_file_key_line_and_hint(tmp_path: Path) -> None:
    write(
        tmp_path,
        a_departments="""[settings]
timezone = "Europe/Prag"
posiiton_field = "position"

[[department]]
id = "org"
name = "Org"
institution = "Město"

[[department]]
id = "org.it"
parent = "orgg"
name = "IT"
department = "IT"

[[department]]
id = "Bad Id"
name = 5
""",
        b_more="""
[[department]]
id = "org"
name = "Org again"

[[department]]
id = "x"
parent = "y"
name = "X"

[[department]]
id = "y"
parent = "x"
name = "Y"

[course.itsec]
idnumber = "ITSEC"

[[requirement]]
id = "sec"
title = "Security"
courses = ["itsek"]
valid_for = "24 monts"
warn_befor = "60 days"
grace = 90

[requirement.applies_to]
departments = ["org", "nowhere"]

[[requirement.target]]
kind = "share"
min = 50
period = "5 months"

[[requirement]]
id = "sec"
title = "Duplicate"
courses = ["itsec"]
""",
    )
    problems = problems_of(tmp_path)
    first = str(tmp_path / "a_departments.toml")
    second = str(tmp_path / "b_more.toml")
    tz = find(problems, "settings.timezone", "unknown time zone")
    assert tz.file == first and tz.line == 2
    typo = find(problems, "settings.posiiton_field", "unknown key")
    assert typo.hint == "did you mean 'position_field'?" and typo.line == 3
    parent = find(problems, "department[org.it].parent", "unknown department 'orgg'")
    assert parent.hint == "did you mean 'org'?" and parent.line == 12
    find(problems, "department[Bad Id].id", "not a valid id")
    find(problems, "department[Bad Id].name", "must be non-empty text")
    duplicate = find(problems, "department[org].id", "duplicate department id 'org'")
    assert duplicate.file == second
    assert "x -> y -> x" in find(problems, "department[x].parent", "cycle").message
    course = find(problems, "requirement[sec].courses", "unknown course 'itsek'")
    assert course.hint == "did you mean 'itsec'?" and course.file == second
    find(problems, "requirement[sec].valid_for", "unknown unit")
    warn = find(problems, "requirement[sec].warn_befor", "unknown key")
    assert warn.hint == "did you mean 'warn_before'?"
    find(problems, "requirement[sec].grace", "must be text")
    find(problems, "requirement[sec].applies_to.departments", "unknown department 'nowhere'")
    find(problems, "requirement[sec].target[#1].min", "must be a share")
    find(problems, "requirement[sec].target[#1].period", "does not divide the calendar")
    find(problems, "requirement[sec].id", "duplicate requirement id 'sec'")
    assert all(p.file in (first, second) for p in problems)
    assert len(problems) == 15  # each problem once, nothing spurious


def test_problems_in_one_file_do_not_hide_those_in_another(tmp_path: Path) -> None:
    write(tmp_path, a="this is = = not toml\n", b='[[department]]\nid = "d"\n')
    problems = problems_of(tmp_path)
    syntax = next(p for p in problems if "TOML syntax error" in p.message)
    assert syntax.file.endswith("a.toml") and syntax.line == 1
    missing = find(problems, "department[d].name", "missing")
    assert missing.file.endswith("b.toml")


def test_line_of_a_key_in_a_later_array_item(tmp_path: Path) -> None:
    write(
        tmp_path,
        d=GOOD_DEPARTMENTS,
        r="""[course.a]
idnumber = "A"

[[requirement]]
id = "first"
title = "First"
courses = ["a"]

[[requirement]]
id = "second"
title = "Second"
courses = ["a"]

[[requirement.exemption]]
username = "u1"
reason = "on leave"
until = "someday"

[[requirement.target]]
kind = "holders"
min = 0
""",
    )
    problems = problems_of(tmp_path)
    assert find(problems, "requirement[second].exemption[#1].until", "not a date").line == 17
    assert find(problems, "requirement[second].target[#1].min", "whole number").line == 21


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (
            '[[department]]\nid = "a"\nname = "A"\ntimezone = "Mars/Olympus"\n',
            "department[a].timezone",
            "unknown time zone",
        ),
        (
            '[[department]]\nid = "a"\nname = "A"\ndepartment_aliases = ["x"]\n',
            "department[a].department_aliases",
            "aliases without",
        ),
        (
            '[[department]]\nid = "a"\nname = "A"\nprofile_field = "x"\n',
            "department[a].profile_values",
            "go together",
        ),
        ('[course.c]\nidnumber = "C"\nshortname = "c"\n', "course.c", "exactly one of"),
        ('[course.c]\nid = "seven"\n', "course.c.id", "positive whole number"),
        ('[course.c]\nidnumber = "C"\n[course.d]\nidnumber = "C"\n', "course.d", "already mapped"),
        (
            '[course.c]\nidnumber = "C"\n'
            '[[requirement]]\nid = "r"\ntitle = "R"\ncourses = ["c"]\nrequire = "both"\n',
            "requirement[r].require",
            'must be "any" or "all"',
        ),
        (
            '[course.c]\nidnumber = "C"\n'
            '[[requirement]]\nid = "r"\ntitle = "R"\ncourses = ["c"]\nwarn_before = "60 days"\n',
            "requirement[r].warn_before",
            "needs a validity",
        ),
        ('[[requirement]]\nid = "r"\ntitle = "R"\n', "requirement[r].courses", "missing"),
        (
            '[course.c]\nidnumber = "C"\n[[requirement]]\nid = "r"\ntitle = "R"\ncourses = ["c"]\n'
            '[[requirement.exemption]]\nreason = "x"\n',
            "requirement[r].exemption[#1]",
            "exactly one of username or idnumber",
        ),
        (
            '[course.c]\nidnumber = "C"\n[[requirement]]\nid = "r"\ntitle = "R"\ncourses = ["c"]\n'
            '[[requirement.target]]\nkind = "most"\n',
            "requirement[r].target[#1].kind",
            'must be "share", "holders" or "appointed"',
        ),
        (
            '[course.c]\nidnumber = "C"\n[[requirement]]\nid = "r"\ntitle = "R"\ncourses = ["c"]\n'
            '[[requirement.target]]\nkind = "holders"\nmin = 1\nperiod = "1 year"\n',
            "requirement[r].target[#1].period",
            "only a share",
        ),
        (
            '[[department]]\nid = "a"\nname = "A"\ndepartment = "X"\n'
            '[[department]]\nid = "b"\nname = "B"\ndepartment = " x "\n',
            "department[b]",
            "also places people in 'a'",
        ),
        ('[settings]\ntimezone = "UTC"\n', "settings", "appears again"),
        ("nonsense = 1\n", "nonsense", "unknown key"),
    ],
)
def test_single_problems(tmp_path: Path, text: str, key: str, words: str) -> None:
    files = {"d": text}
    if key == "settings":
        files["e"] = text
    write(tmp_path, **files)
    find(problems_of(tmp_path), key, words)


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    assert "does not exist" in problems_of(tmp_path / "nope")[0].message
    assert "no *.toml" in problems_of(tmp_path)[0].message


def test_loading_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path, d=GOOD_DEPARTMENTS, bad="[[department]]\nid = 3\n")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    problems_of(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before
    assert not any(name.endswith((".pyc", ".lock", ".bak")) for name in os.listdir(tmp_path))


def test_mapping_error_message_lists_every_problem(tmp_path: Path) -> None:
    write(tmp_path, d='[[department]]\nid = "a"\n[[department]]\nid = "b"\n')
    with pytest.raises(MappingError) as caught:
        load_mappings(tmp_path)
    text = str(caught.value)
    assert "2 problems found" in text and "department[a].name" in text and "department[b].name" in text
    assert caught.value.exit_code == 2


def test_department_model_defaults() -> None:
    assert Department("a", "A").timezone is None


def test_a_defined_but_invalid_course_is_reported_once(tmp_path: Path) -> None:
    shipped = DEMO_MAPPINGS
    for source in shipped.glob("*.toml"):
        (tmp_path / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    courses = tmp_path / "courses.toml"
    courses.write_text(
        courses.read_text(encoding="utf-8").replace('idnumber = "DIGSVET"', "idnumber = 5"), encoding="utf-8"
    )
    with pytest.raises(MappingError) as info:
        load_mappings(tmp_path)
    [problem] = info.value.problems  # not also "unknown course 'digsvet'" in requirements.toml
    assert problem.file.endswith("courses.toml") and problem.key == "course.digsvet.idnumber"
