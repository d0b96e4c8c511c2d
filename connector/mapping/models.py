"""The mapping models: the department tree, the mapped courses and the requirements.

Every ``*.toml`` file of the directory is read and merged (in file-name order). Four kinds of entry:

``[settings]`` (at most once)
    ``timezone`` (IANA name, default "UTC"), ``position_field`` (custom profile field shortname,
    default "position"), ``start_date_field`` (custom profile field with the start date; optional).
``[[department]]``
    ``id`` (stable: lower-case letters, digits, ``.``, ``-``, ``_``), ``name``, ``parent`` (absent:
    a top-level organisation), ``timezone`` (inherited by the subtree), and how people are placed:
    ``institution`` + ``institution_aliases`` (inherited by the subtree), ``department`` +
    ``department_aliases``, ``cohorts`` (cohort idnumbers), ``profile_field`` + ``profile_values``.
``[course.<name>]``
    exactly one of ``idnumber``, ``shortname`` or ``id`` (Moodle's numeric id), and a ``title``.
``[[requirement]]``
    ``id``, ``title``, ``courses`` (names of ``[course.*]`` entries), ``require`` ("any" or "all"),
    ``valid_for`` (a duration or absent: never expires), ``warn_before``, ``grace``,
    ``[requirement.applies_to]`` (``departments``, ``positions``, ``cohorts``),
    ``[[requirement.exemption]]`` (``username`` or ``idnumber``, ``reason``, ``until``) and
    ``[[requirement.target]]`` (``kind`` "share" or "holders", ``min``, ``period``, ``judged_at``),
    ``needs_areas`` (the needs survey's options and CSV area names that declare a need for it).

Placement: the profile fields ``institution`` and ``department`` are compared after Unicode NFC,
case folding, trimming and collapsing white space. A department with ``department`` spellings
matches people whose department is one of them and whose institution is one of the spellings
declared by the department or its nearest ancestor that declares any (no ancestor declares one:
any institution). An institution alone places no one. Cohort and profile-field matches place too.
When a person matches several departments on one path of the tree, the deepest wins; matches on
different branches are a conflict that names every department (the person stays unplaced).

``load_mappings`` reports every problem of every file at once, as ``MappingError(problems)``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from connector.durations import Duration
from connector.moodle.records import Course, Person

CourseField = Literal["idnumber", "shortname", "id"]
TargetKind = Literal["share", "holders", "appointed"]
TargetYears = Literal["all", "even", "odd"]
JudgedAt = Literal["all", "leaves", "organisations"]


# -- models ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CourseRef:
    """How the mappings name a Moodle course: by its idnumber, shortname or numeric id."""

    by: CourseField
    value: str

    def matches(self, course: Course) -> bool:
        if self.by == "id":
            return str(course.id) == self.value
        return (course.idnumber if self.by == "idnumber" else course.shortname) == self.value

    def __str__(self) -> str:
        return f"{self.by}:{self.value}"


@dataclass(frozen=True, slots=True)
class MappedCourse:
    name: str
    ref: CourseRef
    title: str = ""


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    name: str
    parent_id: str | None = None
    timezone: str | None = None
    institution: tuple[str, ...] = ()  # the spelling first, then the aliases
    department: tuple[str, ...] = ()
    cohorts: tuple[str, ...] = ()
    profile_field: str | None = None
    profile_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AppliesTo:
    """Who a requirement applies to: every listed dimension must match (empty: everyone)."""

    departments: tuple[str, ...] = ()  # subtrees
    positions: tuple[str, ...] = ()
    cohorts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Exemption:
    reason: str
    username: str | None = None
    idnumber: str | None = None
    until: date | None = None  # inclusive; None: open-ended

    def covers(self, username: str, idnumber: str, as_of: date) -> bool:
        if self.until is not None and as_of > self.until:
            return False
        if self.username is not None:
            return self.username == username
        return bool(idnumber) and self.idnumber == idnumber


@dataclass(frozen=True, slots=True)
class Target:
    """A department-level target; ``minimum`` is a fraction for "share", a count for "holders" and
    "appointed" (people whose position matches ``positions``, whatever they completed)."""

    kind: TargetKind
    minimum: float
    period: Duration | None = None  # share only: calendar blocks (see rules.period_bounds)
    judged_at: JudgedAt = "all"
    years: TargetYears = "all"  # share: judged only in even (or odd) years; the others "not judged"
    among: Literal["all", "in_scope"] = "all"  # holders: count only people the requirement applies to
    positions: tuple[str, ...] = ()  # appointed: the positions that count
    by: date | None = None  # appointed: a shortfall is a failure only after this day
    departments: tuple[str, ...] = ()  # judged only in these subtrees (empty: where it applies)
    of: Literal["in_scope", "needs"] = "in_scope"  # share: over whom (needs: the year's saved analysis)
    counts: Literal["completed", "enrolled"] = "completed"  # share: a completion, or a place given


@dataclass(frozen=True, slots=True)
class Requirement:
    id: str
    title: str
    courses: tuple[CourseRef, ...]
    require: Literal["any", "all"] = "any"
    valid_for: Duration | None = None
    warn_before: Duration | None = None
    grace: Duration | None = None
    applies_to: AppliesTo = AppliesTo()
    exemptions: tuple[Exemption, ...] = ()
    targets: tuple[Target, ...] = ()
    # what a declared need is called where people declare it (the survey's options, a CSV's area)
    needs_areas: tuple[str, ...] = ()
    titles: tuple[tuple[str, str], ...] = ()  # (language, title): title_cs, title_sl, [requirement.title]

    def title_in(self, language: str) -> str:
        """The title in this language when the mappings give one, else ``title``."""
        return dict(self.titles).get(language) or self.title


@dataclass(frozen=True, slots=True)
class Placement:
    department_id: str | None
    conflicts: tuple[str, ...] = ()  # every department matched on different branches


@lru_cache(maxsize=65536)  # a site's people share a few hundred department and institution spellings
def normalise(text: str) -> str:
    """The form profile values are compared in: NFC, case-folded, trimmed, inner spaces collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


@dataclass(frozen=True)
class Mappings:
    departments: tuple[Department, ...]
    requirements: tuple[Requirement, ...]
    courses: tuple[MappedCourse, ...] = ()
    timezone: str = "UTC"
    position_field: str = "position"
    start_date_field: str | None = None
    language: str | None = None  # [settings] language: cs, sl or en (--lang overrides it)
    _by_id: dict[str, Department] = field(init=False, repr=False, compare=False)
    _ancestors: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _children: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _zones: dict[str, str] = field(init=False, repr=False, compare=False)
    _by_profile: dict[tuple[str, str], tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _by_cohort: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _by_field: dict[tuple[str, str], tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _field_names: frozenset[str] = field(init=False, repr=False, compare=False)
    _placements: dict[object, Placement] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {d.id: d for d in self.departments}
        ancestors = {d.id: _ancestor_chain(d.id, by_id) for d in self.departments}
        children: dict[str, list[str]] = {d.id: [] for d in self.departments}
        for dept in self.departments:
            if dept.parent_id in children:
                children[dept.parent_id].append(dept.id)
        zones = {d.id: self._zone_for(d.id, by_id, ancestors) for d in self.departments}
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_ancestors", ancestors)
        object.__setattr__(self, "_children", {k: tuple(v) for k, v in children.items()})
        object.__setattr__(self, "_zones", zones)
        object.__setattr__(self, "_by_profile", _index_profile_matches(self.departments, by_id, ancestors))
        object.__setattr__(self, "_by_cohort", _index((c, d.id) for d in self.departments for c in d.cohorts))
        object.__setattr__(
            self,
            "_by_field",
            _index(
                ((d.profile_field, normalise(v)), d.id)
                for d in self.departments
                if d.profile_field
                for v in d.profile_values
            ),
        )
        names = frozenset(d.profile_field for d in self.departments if d.profile_field)
        object.__setattr__(self, "_field_names", names)
        object.__setattr__(self, "_placements", {})

    def _zone_for(
        self, dept_id: str, by_id: dict[str, Department], ancestors: dict[str, tuple[str, ...]]
    ) -> str:
        for node in (dept_id, *ancestors[dept_id]):
            zone = by_id[node].timezone
            if zone:
                return zone
        return self.timezone

    # -- the tree ---------------------------------------------------------------------------------
    def department(self, id: str) -> Department:
        """The department with this id; KeyError when there is none."""
        return self._by_id[id]

    def has_department(self, id: str) -> bool:
        return id in self._by_id

    def ancestors(self, id: str) -> tuple[str, ...]:
        """Parent first, organisation last; empty for an organisation."""
        return self._ancestors[id]

    def children(self, id: str) -> tuple[str, ...]:
        return self._children[id]

    def organisation_of(self, id: str) -> str:
        chain = self._ancestors[id]
        return chain[-1] if chain else id

    def subtree(self, id: str) -> frozenset[str]:
        """The department and everything below it."""
        return frozenset(d for d, chain in self._ancestors.items() if d == id or id in chain)

    def timezone_of(self, department_id: str | None) -> str:
        """The IANA zone of a department (its own, an ancestor's, or the default)."""
        if department_id is None:
            return self.timezone
        return self._zones.get(department_id, self.timezone)

    def requirements_for_area(self, area: str) -> tuple[Requirement, ...]:
        """The requirements a declared need names: by requirement id or one of their needs_areas
        (training needs: an appointment-only requirement, without courses, is never one)."""
        wanted = normalise(area)
        return tuple(
            r
            for r in self.requirements
            if r.courses and (normalise(r.id) == wanted or wanted in {normalise(a) for a in r.needs_areas})
        )

    def requirement(self, id: str) -> Requirement:
        for req in self.requirements:
            if req.id == id:
                return req
        raise KeyError(id)

    # -- what a sync must fetch -------------------------------------------------------------------
    def course_refs(self) -> frozenset[CourseRef]:
        """Every course any requirement names."""
        return frozenset(ref for req in self.requirements for ref in req.courses)

    def cohort_idnumbers(self) -> frozenset[str]:
        """Cohorts that placement or an applies_to uses (their members must be fetched)."""
        placed = {c for d in self.departments for c in d.cohorts}
        scoped = {c for r in self.requirements for c in r.applies_to.cohorts}
        return frozenset(placed | scoped)

    # -- people -----------------------------------------------------------------------------------
    def place(self, person: Person, cohorts: frozenset[str] = frozenset()) -> Placement:
        """Which department a person belongs to (see the module docstring for the rules).

        People share a few hundred spellings of institution and department: the answer for one
        spelling (with the same cohorts and placing fields) is worked out once."""
        key = (person.institution, person.department, cohorts, self._placing_fields(person))
        placed = self._placements.get(key)
        if placed is None:
            placed = self._placements[key] = self._place(person, cohorts)
        return placed

    def _placing_fields(self, person: Person) -> tuple[tuple[str, str], ...]:
        if not self._field_names:
            return ()
        return tuple((n, v) for n, v in person.custom_fields if n in self._field_names)

    def _place(self, person: Person, cohorts: frozenset[str]) -> Placement:
        matched: set[str] = set()
        department = normalise(person.department)
        if department:
            institution = normalise(person.institution)
            matched.update(self._by_profile.get((institution, department), ()))
            matched.update(self._by_profile.get(("", department), ()))
        for cohort in cohorts:
            matched.update(self._by_cohort.get(cohort, ()))
        for name, value in person.custom_fields:
            matched.update(self._by_field.get((name, normalise(value)), ()))
        return self._decide(matched)

    def _decide(self, matched: set[str]) -> Placement:
        if len(matched) == 1:  # most people: one department matched, nothing to weigh
            return Placement(next(iter(matched)))
        implied = {a for d in matched for a in self._ancestors[d]}
        deepest = sorted(matched - implied)
        if len(deepest) == 1:
            return Placement(deepest[0])
        return Placement(None, tuple(deepest))

    def position_of(self, person: Person) -> str | None:
        value = person.field(self.position_field)
        if value is None:
            return None
        value = " ".join(value.split())
        return value or None

    def start_date_of(self, person: Person) -> date | None:
        """The start date from ``start_date_field``: ISO date, d.m.yyyy or Moodle epoch seconds."""
        if not self.start_date_field:
            return None
        value = (person.field(self.start_date_field) or "").strip()
        return parse_start_date(value, self.timezone)


def parse_start_date(value: str, zone: str) -> date | None:
    if not value:
        return None
    if value.isdigit():
        seconds = int(value)
        if seconds == 0:  # Moodle's "not set"
            return None
        return datetime.fromtimestamp(seconds, UTC).astimezone(ZoneInfo(zone)).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        pass
    match = re.fullmatch(r"(\d{1,2})\.\s*(\d{1,2})\.\s*(\d{4})", value)
    if match:
        try:
            return date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
        except ValueError:
            return None
    return None


def _ancestor_chain(dept_id: str, by_id: Mapping[str, Department]) -> tuple[str, ...]:
    chain: list[str] = []
    parent = by_id[dept_id].parent_id
    while parent is not None and parent in by_id and parent not in chain and parent != dept_id:
        chain.append(parent)
        parent = by_id[parent].parent_id
    return tuple(chain)


def _index(pairs: Iterable[tuple[Any, str]]) -> dict[Any, tuple[str, ...]]:
    index: dict[Any, list[str]] = {}
    for key, dept_id in pairs:
        if dept_id not in index.setdefault(key, []):
            index[key].append(dept_id)
    return {k: tuple(v) for k, v in index.items()}


def _inherited_institutions(
    dept_id: str, by_id: Mapping[str, Department], ancestors: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    for node in (dept_id, *ancestors[dept_id]):
        if by_id[node].institution:
            return by_id[node].institution
    return ()


def _profile_keys(
    dept: Department, by_id: Mapping[str, Department], ancestors: Mapping[str, tuple[str, ...]]
) -> set[tuple[str, str]]:
    institutions = _inherited_institutions(dept.id, by_id, ancestors) or ("",)
    return {(normalise(i), normalise(d)) for i in institutions for d in dept.department}


def _index_profile_matches(
    departments: Iterable[Department],
    by_id: Mapping[str, Department],
    ancestors: Mapping[str, tuple[str, ...]],
) -> dict[tuple[str, str], tuple[str, ...]]:
    return _index((key, d.id) for d in departments for key in _profile_keys(d, by_id, ancestors))
