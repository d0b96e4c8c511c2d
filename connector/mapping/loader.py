"""Reading and validating mapping files: every problem of every file, each with where and what to do.

Each file is parsed by tomllib; each entry is checked against its schema (unknown keys with the
closest known one suggested, types, durations, ids, time zones), then the merged whole is checked
across files (duplicate ids, unknown parents, cycles, unknown departments and courses, ambiguous
placement rules). Only when nothing is wrong are the models built. Nothing is ever written.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.durations import HINT as DURATION_HINT
from connector.durations import Duration, parse_duration
from connector.errors import MappingError, Problem
from connector.i18n import N_, _
from connector.mapping.models import (
    AppliesTo,
    CourseField,
    CourseRef,
    Department,
    Exemption,
    MappedCourse,
    Mappings,
    Requirement,
    Target,
    normalise,
)
from connector.suggest import did_you_mean

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_ID_HINT = N_("use lower-case letters, digits, '.', '-' and '_', starting with a letter or digit")
_NEVER = {"never", "forever", "none"}
_PERCENT = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*%\s*$")
_TOML_POSITION = re.compile(r"at line (\d+), column (\d+)")
# A sync adds durations to dates (Python's end in year 9999); no rule needs more than 100 years.
_LONGEST = {"days": 36525, "weeks": 5218, "months": 1200, "years": 100}
_LONGEST_HINT = N_("at most 100 years (1200 months, 5218 weeks, 36525 days)")
_MAX_SQLITE_INT = 2**63 - 1  # the ledger stores course ids as SQLite integers

_TOP_KEYS = ("settings", "department", "course", "requirement")
_SETTINGS_KEYS = ("timezone", "position_field", "start_date_field", "language")
_LANGUAGES = ("cs", "sl", "en")
_DEPARTMENT_KEYS = (
    "id",
    "name",
    "parent",
    "timezone",
    "institution",
    "institution_aliases",
    "department",
    "department_aliases",
    "cohorts",
    "profile_field",
    "profile_values",
)
_COURSE_FIELDS: tuple[CourseField, ...] = ("idnumber", "shortname", "id")
_COURSE_KEYS = (*_COURSE_FIELDS, "title")
_REQUIREMENT_KEYS = (
    "id",
    "title",
    "title_cs",
    "title_sl",
    "title_en",
    "courses",
    "require",
    "valid_for",
    "warn_before",
    "grace",
    "applies_to",
    "exemption",
    "target",
    "needs_areas",
)
_APPLIES_KEYS = ("departments", "positions", "cohorts")
_EXEMPTION_KEYS = ("username", "idnumber", "reason", "until")
_TARGET_KEYS = (
    "kind",
    "min",
    "period",
    "judged_at",
    "years",
    "among",
    "positions",
    "by",
    "departments",
    "of",
    "counts",
)


# -- where a value lives: the key path for people, and a best-effort line -------------------------
@dataclass(frozen=True)
class _Where:
    file: str
    text: str
    path: str = ""
    steps: tuple[tuple[str, int | None], ...] = ()  # (key, n-th array item) for line search

    def key(self, name: str) -> _Where:
        path = f"{self.path}.{name}" if self.path else name
        return _Where(self.file, self.text, path, self.steps + ((name, None),))

    def item(self, array: str, index: int, label: str | None) -> _Where:
        shown = label if label else f"#{index + 1}"
        path = f"{self.path}.{array}[{shown}]" if self.path else f"{array}[{shown}]"
        return _Where(self.file, self.text, path, self.steps + ((array, index),))

    def line(self) -> int | None:
        return _find_line(self.text.splitlines(), self.steps)


def _find_line(lines: list[str], steps: tuple[tuple[str, int | None], ...]) -> int | None:
    """Scan forward for each step's header or ``key =`` line; the last line found wins."""
    position, found = 0, None
    for name, index in steps:
        hit = (
            _find_array_item(lines, name, index, position)
            if index is not None
            else _find_key(lines, name, position)
        )
        if hit is None:
            return found
        position, found = hit, hit + 1  # [course.x] holds two steps on one line
    return found


def _find_array_item(lines: list[str], name: str, index: int, start: int) -> int | None:
    header = re.compile(r"^\s*\[\[\s*(?:[^\]]*\.)?" + re.escape(name) + r"\s*\]\]")
    seen = -1
    for number in range(start, len(lines)):
        if header.match(lines[number]):
            seen += 1
            if seen == index:
                return number
    return None


def _find_key(lines: list[str], name: str, start: int) -> int | None:
    quoted = r'(?:"' + re.escape(name) + r'"|' + re.escape(name) + r")"
    assignment = re.compile(r"^\s*" + quoted + r"\s*[=.]")
    header = re.compile(r"^\s*\[\s*(?:[^\]]*\.)?" + quoted + r"\s*[\].]")  # [course] or [course.x]
    for number in range(start, len(lines)):
        if assignment.match(lines[number]) or header.match(lines[number]):
            return number
    return None


# -- collecting problems --------------------------------------------------------------------------
class _Problems:
    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, where: _Where, message: str, hint: str | None = None) -> None:
        self.items.append(Problem(where.file, where.path, message, hint, where.line()))

    def unknown_keys(self, table: dict[str, Any], known: tuple[str, ...], where: _Where) -> None:
        for key in table:
            if key not in known:
                hint = did_you_mean(key, known, _("known keys: {join}").format(join=", ".join(known)))
                self.add(where.key(key), "unknown key", hint)


def _type_name(value: Any) -> str:
    return {
        str: "text",
        int: "a whole number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
        date: "a date",
    }.get(type(value), type(value).__name__)


class _Reader:
    """Typed reads of one TOML table; a wrong or missing value becomes a problem and None."""

    def __init__(self, table: dict[str, Any], where: _Where, problems: _Problems) -> None:
        self.table, self.where, self.problems = table, where, problems

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.table.get(key)
        if value is None:
            if required:
                self.problems.add(self.where.key(key), _("missing"), _('add {key} = "..."').format(key=key))
            return None
        if not isinstance(value, str) or not value.strip():
            self.problems.add(
                self.where.key(key),
                _("must be non-empty text, not {type_name}").format(type_name=_type_name(value)),
            )
            return None
        return value.strip()

    def texts(self, key: str) -> tuple[str, ...]:
        """A list of texts; a single text is accepted as a list of one."""
        value = self.table.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.problems.add(
                self.where.key(key),
                _("must be a list of non-empty texts"),
                _('e.g. {key} = ["first", "second"]').format(key=key),
            )
            return ()
        return tuple(v.strip() for v in value)

    def identifier(self, key: str) -> str | None:
        value = self.text(key, required=True)
        if value is not None and not _ID.match(value):
            self.problems.add(
                self.where.key(key), _("{value!r} is not a valid id").format(value=value), _(_ID_HINT)
            )
            return None
        return value

    def duration(self, key: str) -> Duration | None:
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problems.add(
                self.where.key(key),
                _('must be text like "24 months", not {type_name}').format(type_name=_type_name(value)),
                _(DURATION_HINT),
            )
            return None
        try:
            duration = parse_duration(value)
        except ValueError as exc:
            self.problems.add(self.where.key(key), str(exc), _(DURATION_HINT))
            return None
        if duration.amount > _LONGEST[duration.unit]:
            self.problems.add(
                self.where.key(key),
                _("{value!r} is too long to compute dates with").format(value=value),
                _("write {limit}").format(limit=_(_LONGEST_HINT))
                + (
                    _("; leave valid_for out for a completion that never expires")
                    if key == "valid_for"
                    else ""
                ),
            )
            return None
        return duration

    def zone(self, key: str) -> str | None:
        value = self.text(key)
        if value is not None and not _valid_zone(value):
            self.problems.add(
                self.where.key(key),
                _("unknown time zone {value!r}").format(value=value),
                _('use an IANA name such as "Europe/Prague" or "Europe/Ljubljana"'),
            )
            return None
        return value

    def table_list(self, key: str) -> list[dict[str, Any]]:
        value = self.table.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problems.add(
                self.where.key(key),
                _("must be an array of tables"),
                _("write [[...{key}]] sections").format(key=key),
            )
            return []
        return value


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# -- raw entries as read from the files, with where they came from --------------------------------
@dataclass
class _Entries:
    settings: list[tuple[dict[str, Any], _Where]]
    departments: list[tuple[Department, _Where]]
    courses: list[tuple[MappedCourse, _Where]]
    requirements: list[tuple[Requirement, _Where, tuple[str, ...]]]  # + course names as written
    invalid_courses: set[str] = field(default_factory=set)  # defined, but with problems of their own


def load(directory: Path) -> Mappings:
    problems = _Problems()
    entries = _Entries([], [], [], [])
    files = sorted(directory.glob("*.toml")) if directory.is_dir() else []
    if not files:
        where = _("the directory does not exist") if not directory.is_dir() else _("no *.toml files in it")
        problems.items.append(
            Problem(
                str(directory),
                "",
                where,
                _(
                    "set [mappings] dir in connector.toml, or CONNECTOR_MAPPINGS, or run "
                    "`connector --mappings DIR <command>`"
                ),
            )
        )
    for path in files:
        _read_file(path, entries, problems)
    mappings = _assemble(entries, problems)
    if mappings is not None and not mappings.requirements:
        # e.g. a requirements.toml cut down to its comment header: a sync would end every status
        problems.items.append(
            Problem(
                str(directory),
                "",
                _("the directory has no requirement"),
                _(
                    "add [[requirement]] entries; if requirements.toml was truncated, restore "
                    "it from a backup or version control"
                ),
            )
        )
    if problems.items:
        raise MappingError(sorted(problems.items, key=lambda p: (p.file, p.line or 0)))
    assert mappings is not None
    return mappings


def _read_file(path: Path, entries: _Entries, problems: _Problems) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.items.append(
            Problem(str(path), "", _("cannot be read: {exc}").format(exc=exc), _("save it as UTF-8"))
        )
        return
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        position = _TOML_POSITION.search(str(exc))
        line = int(position.group(1)) if position else None
        problems.items.append(
            Problem(
                str(path),
                "",
                _("TOML syntax error: {exc}").format(exc=exc),
                _("fix the syntax at the line shown"),
                line,
            )
        )
        return
    except RecursionError:  # tomllib recurses once per nested array or inline table
        problems.items.append(
            Problem(
                str(path),
                "",
                _("values are nested too deeply to read"),
                _("mappings need a few levels at most; look for a long run of '[' or '{'"),
            )
        )
        return
    where = _Where(str(path), text)
    problems.unknown_keys(data, _TOP_KEYS, where)
    _read_sections(data, where, entries, problems)


def _read_sections(data: dict[str, Any], where: _Where, entries: _Entries, problems: _Problems) -> None:
    top = _Reader(data, where, problems)
    if "settings" in data:
        if isinstance(data["settings"], dict):
            entries.settings.append((data["settings"], where.key("settings")))
        else:
            problems.add(where.key("settings"), _("must be a table"), _("write a [settings] section"))
    for index, raw in enumerate(top.table_list("department")):
        dept = _read_department(raw, where.item("department", index, _label(raw)), problems)
        if dept is not None:
            entries.departments.append((dept, where.item("department", index, dept.id)))
    courses = data.get("course", {})
    if not isinstance(courses, dict):
        problems.add(where.key("course"), _("must be tables"), _("write [course.NAME] sections"))
        courses = {}
    for name, raw in courses.items():
        course = _read_course(name, raw, where.key("course").key(name), problems)
        if course is not None:
            entries.courses.append((course, where.key("course").key(name)))
        else:
            entries.invalid_courses.add(name)
    for index, raw in enumerate(top.table_list("requirement")):
        item = where.item("requirement", index, _label(raw))
        read = _read_requirement(raw, item, problems)
        if read is not None:
            entries.requirements.append((read[0], item, read[1]))


def _label(raw: dict[str, Any]) -> str | None:
    value = raw.get("id")
    return value if isinstance(value, str) and value else None


# -- one entry of each kind -----------------------------------------------------------------------
def _read_department(raw: dict[str, Any], where: _Where, problems: _Problems) -> Department | None:
    problems.unknown_keys(raw, _DEPARTMENT_KEYS, where)
    read = _Reader(raw, where, problems)
    dept_id, name = read.identifier("id"), read.text("name", required=True)
    parent = read.text("parent")
    zone = read.zone("timezone")
    institution = _spellings(read, "institution")
    department = _spellings(read, "department")
    cohorts = read.texts("cohorts")
    profile_field, profile_values = read.text("profile_field"), read.texts("profile_values")
    if bool(profile_field) != bool(profile_values):
        problems.add(
            where.key("profile_values" if profile_field else "profile_field"),
            _("profile_field and profile_values go together"),
            _('e.g. profile_field = "orgunit" and profile_values = ["OI"]'),
        )
    if dept_id is None:  # other problems still leave enough to check parents and duplicates
        return None
    return Department(
        dept_id, name or "", parent, zone, institution, department, cohorts, profile_field, profile_values
    )


def _spellings(read: _Reader, key: str) -> tuple[str, ...]:
    main = read.text(key)
    aliases = read.texts(f"{key}_aliases")
    if aliases and main is None:
        read.problems.add(
            read.where.key(f"{key}_aliases"),
            _("aliases without {key}").format(key=key),
            _('add {key} = "the official spelling"').format(key=key),
        )
    return ((main,) if main else ()) + aliases


def _read_course(name: str, raw: Any, where: _Where, problems: _Problems) -> MappedCourse | None:
    if not isinstance(raw, dict):
        problems.add(
            where, _("must be a table"), _('write [course.{name}] with idnumber = "..."').format(name=name)
        )
        return None
    problems.unknown_keys(raw, _COURSE_KEYS, where)
    given = [key for key in _COURSE_FIELDS if key in raw]
    if len(given) != 1:
        problems.add(
            where,
            _("needs exactly one of idnumber, shortname or id (found {keys})").format(keys=", ".join(given))
            if given
            else _("needs exactly one of idnumber, shortname or id"),
            _("idnumber is the most stable way to name a course"),
        )
        return None
    by = given[0]
    value = raw[by]
    if by == "id":
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            problems.add(
                where.key("id"),
                _("must be a positive whole number, not {type_name}").format(type_name=_type_name(value)),
            )
            return None
        if value > _MAX_SQLITE_INT:
            problems.add(
                where.key("id"),
                _("{value} is larger than any Moodle course id can be").format(value=value),
                _("a course id is at most {max_sqlite_int}; copy it from the course's URL (id=...)").format(
                    max_sqlite_int=_MAX_SQLITE_INT
                ),
            )
            return None
    elif not isinstance(value, str) or not value.strip():
        problems.add(
            where.key(by), _("must be non-empty text, not {type_name}").format(type_name=_type_name(value))
        )
        return None
    title = _Reader(raw, where, problems).text("title") or ""
    return MappedCourse(name, CourseRef(by, str(value).strip()), title)


def _read_requirement(
    raw: dict[str, Any], where: _Where, problems: _Problems
) -> tuple[Requirement, tuple[str, ...]] | None:
    problems.unknown_keys(raw, _REQUIREMENT_KEYS, where)
    read = _Reader(raw, where, problems)
    req_id = read.identifier("id")
    title, titles = _read_titles(raw, where, problems)
    courses = read.texts("courses")
    if "courses" not in raw:
        problems.add(where.key("courses"), _("missing"), _('add courses = ["name of a [course.NAME] entry"]'))
    elif not courses and isinstance(raw.get("courses"), list):
        listed = raw.get("target")
        kinds = {t.get("kind") for t in listed if isinstance(t, dict)} if isinstance(listed, list) else set()
        if kinds != {"appointed"}:  # an appointment-only duty names no course; any other needs one
            problems.add(
                where.key("courses"),
                _("is empty"),
                _(
                    "name at least one course (only a requirement whose targets are all kind = "
                    '"appointed" may have none)'
                ),
            )
    require = raw.get("require", "any")
    if require not in ("any", "all"):
        problems.add(
            where.key("require"),
            _('must be "any" or "all", not {require!r}').format(require=require),
            _('"any": one of the courses is enough; "all": every course is needed'),
        )
    valid_for = _validity(read)
    warn_before, grace = read.duration("warn_before"), read.duration("grace")
    if warn_before is not None and valid_for is None and "valid_for" not in raw:
        problems.add(
            where.key("warn_before"),
            _("a warning window needs a validity"),
            _('add valid_for = "24 months" or remove warn_before'),
        )
    applies_to = _read_applies_to(raw.get("applies_to"), where.key("applies_to"), problems)
    exemptions = tuple(
        _read_exemption(e, where.item("exemption", i, None), problems)
        for i, e in enumerate(read.table_list("exemption"))
    )
    targets = tuple(
        _read_target(t, where.item("target", i, None), problems)
        for i, t in enumerate(read.table_list("target"))
    )
    if req_id is None:  # other problems still leave enough to check references across files
        return None
    requirement = Requirement(
        req_id,
        title or "",
        (),
        "all" if require == "all" else "any",
        valid_for,
        warn_before,
        grace,
        applies_to,
        tuple(e for e in exemptions if e is not None),
        tuple(t for t in targets if t is not None),
        read.texts("needs_areas"),
        titles,
    )
    return requirement, courses


def _validity(read: _Reader) -> Duration | None:
    value = read.table.get("valid_for")
    if isinstance(value, str) and value.strip().lower() in _NEVER:
        return None
    return read.duration("valid_for")


def _read_applies_to(raw: Any, where: _Where, problems: _Problems) -> AppliesTo:
    if raw is None:
        return AppliesTo()
    if not isinstance(raw, dict):
        problems.add(where, _("must be a table"), _("write a [requirement.applies_to] section"))
        return AppliesTo()
    problems.unknown_keys(raw, _APPLIES_KEYS, where)
    read = _Reader(raw, where, problems)
    return AppliesTo(read.texts("departments"), read.texts("positions"), read.texts("cohorts"))


def _read_exemption(raw: dict[str, Any], where: _Where, problems: _Problems) -> Exemption | None:
    problems.unknown_keys(raw, _EXEMPTION_KEYS, where)
    read = _Reader(raw, where, problems)
    username, idnumber = read.text("username"), read.text("idnumber")
    reason = read.text("reason", required=True)
    if (username is None) == (idnumber is None) and ("username" in raw) == ("idnumber" in raw):
        problems.add(
            where,
            _("needs exactly one of username or idnumber"),
            _('e.g. username = "u036" or idnumber = "EMP1036"'),
        )
        return None
    until = _date(raw.get("until"), where.key("until"), problems)
    if reason is None or (username is None and idnumber is None):
        return None
    return Exemption(reason, username, idnumber, until)


def _date(value: Any, where: _Where, problems: _Problems) -> date | None:
    if value is None:
        return None
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    problems.add(
        where, _("{value!r} is not a date").format(value=value), _("write a TOML date like 2026-06-30")
    )
    return None


def _read_target(raw: dict[str, Any], where: _Where, problems: _Problems) -> Target | None:
    problems.unknown_keys(raw, _TARGET_KEYS, where)
    kind = raw.get("kind")
    if kind not in ("share", "holders", "appointed"):
        problems.add(
            where.key("kind"),
            _('must be "share", "holders" or "appointed", not {kind!r}').format(kind=kind),
            _(
                '"share": a minimum share of people in scope; "holders": a minimum number of '
                'holders; "appointed": a minimum number of people in the positions listed'
            ),
        )
        return None
    minimum = _target_minimum(
        "holders" if kind == "appointed" else kind, raw.get("min"), where.key("min"), problems
    )
    period = _target_period(kind, raw, where, problems)
    judged_at = raw.get("judged_at", "all" if kind == "share" else "leaves")
    if judged_at not in ("all", "leaves", "organisations"):
        problems.add(
            where.key("judged_at"),
            _('must be "all", "leaves" or "organisations", not {judged_at!r}').format(judged_at=judged_at),
            _('"leaves": departments without sub-departments; "organisations": top-level ones'),
        )
        return None
    read = _Reader(raw, where, problems)
    years = raw.get("years", "all")
    if years not in ("all", "even", "odd") or (years != "all" and kind != "share"):
        problems.add(
            where.key("years"),
            _('must be "all", "even" or "odd" on a share target, not {years!r}').format(years=years),
            _('e.g. period = "1 year" and years = "even": judged every even year'),
        )
        return None
    among = raw.get("among", "all")
    if among not in ("all", "in_scope") or (among != "all" and kind != "holders"):
        problems.add(
            where.key("among"),
            _('must be "all" or "in_scope" on a holders target, not {among!r}').format(among=among),
            _('"in_scope": only holders the requirement applies to count'),
        )
        return None
    of, counts = raw.get("of", "in_scope"), raw.get("counts", "completed")
    if of not in ("in_scope", "needs") or (of != "in_scope" and kind != "share"):
        problems.add(
            where.key("of"),
            _('must be "in_scope" or "needs" on a share target, not {of!r}').format(of=of),
            _('"needs": the people the year\'s saved needs analysis lists for this requirement'),
        )
        return None
    if counts not in ("completed", "enrolled") or (counts != "completed" and kind != "share"):
        problems.add(
            where.key("counts"),
            _('must be "completed" or "enrolled" on a share target, not {counts!r}').format(counts=counts),
            _('"enrolled": a place given (an enrolment in one of its courses during the period) counts'),
        )
        return None
    positions = read.texts("positions")
    if (kind == "appointed") != bool(positions):
        problems.add(
            where.key("positions"),
            _("an appointed target needs positions")
            if kind == "appointed"
            else _("only an appointed target has positions"),
            _('e.g. positions = ["digitalni svetovalec"]'),
        )
        return None
    by = _date(raw.get("by"), where.key("by"), problems)
    if by is not None and kind != "appointed":
        problems.add(where.key("by"), _("only an appointed target has a deadline"), _("remove by"))
        return None
    if minimum is None or period is False:
        return None
    return Target(
        kind,
        minimum,
        period or None,
        judged_at,
        years,
        among,
        positions,
        by,
        read.texts("departments"),
        of,
        counts,
    )


def _target_minimum(kind: str, value: Any, where: _Where, problems: _Problems) -> float | None:
    if kind == "holders":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return float(value)
        problems.add(
            where,
            _("must be a whole number of at least 1, not {value!r}").format(value=value),
            _("e.g. min = 1"),
        )
        return None
    share: float | None = None
    percent = _PERCENT.match(value) if isinstance(value, str) else None
    if percent:
        share = float(percent.group(1).replace(",", ".")) / 100
    elif isinstance(value, float) and not isinstance(value, bool):
        share = value
    if share is None or not 0 < share <= 1:
        problems.add(
            where,
            _("must be a share between 0 and 100 %, not {value!r}").format(value=value),
            _('write min = "50 %" or min = 0.5'),
        )
        return None
    return share


def _target_period(
    kind: str, raw: dict[str, Any], where: _Where, problems: _Problems
) -> Duration | None | Literal[False]:
    """The share target's calendar period; False marks a problem."""
    if "period" not in raw:
        return None
    if kind != "share":
        problems.add(where.key("period"), _("only a share target has a period"), _("remove period"))
        return False
    period = _Reader(raw, where, problems).duration("period")
    if period is None:
        return False
    if period.unit == "years" or (period.unit == "months" and 12 % period.amount == 0):
        return period
    problems.add(
        where.key("period"),
        _("{period} does not divide the calendar evenly").format(period=period),
        _('use "N years" or 1, 2, 3, 4, 6 or 12 months'),
    )
    return False


# -- the merged whole -----------------------------------------------------------------------------
def _read_titles(
    raw: dict[str, Any], where: _Where, problems: _Problems
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """``title = "..."`` (any language), ``title_cs = "..."``, or ``[requirement.title]`` with
    ``cs``, ``sl``, ``en``: the default title and the titles per language."""
    value = raw.get("title")
    titles: dict[str, str] = {}
    if isinstance(value, dict):
        for lang, text in value.items():
            if lang not in _LANGUAGES:
                problems.add(where.key(f"title.{lang}"), _("is not a language"), _("use cs, sl or en"))
            elif not isinstance(text, str) or not text.strip():
                problems.add(
                    where.key(f"title.{lang}"),
                    _("must be non-empty text, not {type_name}").format(type_name=_type_name(text)),
                )
            else:
                titles[lang] = text.strip()
        title = titles.get("en") or next(iter(titles.values()), None)
    else:
        title = _Reader(raw, where, problems).text("title")
    read = _Reader(raw, where, problems)
    for lang in _LANGUAGES:
        text = read.text(f"title_{lang}")
        if text:
            titles[lang] = text
    if title is None and not titles and "title" not in raw:
        problems.add(where.key("title"), _("missing"), _('add title = "..."'))
    return title or next(iter(titles.values()), None), tuple(sorted(titles.items()))


def _assemble(entries: _Entries, problems: _Problems) -> Mappings | None:
    settings = _read_settings(entries.settings, problems)
    departments = _check_departments(entries.departments, problems)
    courses = _check_courses(entries.courses, problems)
    requirements = _check_requirements(
        entries.requirements, departments, courses, problems, entries.invalid_courses
    )
    if problems.items or settings is None:
        return None
    return Mappings(
        tuple(departments.values()), tuple(requirements), tuple(c for c in courses.values()), **settings
    )


def _read_settings(found: list[tuple[dict[str, Any], _Where]], problems: _Problems) -> dict[str, Any] | None:
    for _table, where in found[1:]:
        problems.add(
            where,
            _("[settings] appears again (first in {file})").format(file=found[0][1].file),
            _("keep one [settings] section"),
        )
    if not found:
        return {}
    table, where = found[0]
    problems.unknown_keys(table, _SETTINGS_KEYS, where)
    read = _Reader(table, where, problems)
    before = len(problems.items)
    values = {
        "timezone": read.zone("timezone") or "UTC",
        "position_field": read.text("position_field") or "position",
        "start_date_field": read.text("start_date_field"),
        "language": read.text("language"),
    }
    if values["language"] is not None and values["language"] not in _LANGUAGES:
        problems.add(
            where.key("language"),
            _("{language!r} is not a language").format(language=values["language"]),
            _("use cs, sl or en"),
        )
    return values if len(problems.items) == before else None


def _repeated_id(kind: str, id: str, where: _Where, seen: dict[str, _Where], problems: _Problems) -> bool:
    """Whether ``id`` came before (then it is a problem); a first one is remembered in ``seen``."""
    if id in seen:
        problems.add(
            where.key("id"),
            _("duplicate {kind} id {id!r} (first in {file})").format(kind=_(kind), id=id, file=seen[id].file),
            _("give every {kind} its own id").format(kind=_(kind)),
        )
        return True
    seen[id] = where
    return False


def _check_departments(found: list[tuple[Department, _Where]], problems: _Problems) -> dict[str, Department]:
    by_id: dict[str, Department] = {}
    where_of: dict[str, _Where] = {}
    for dept, where in found:
        if not _repeated_id("department", dept.id, where, where_of, problems):
            by_id[dept.id] = dept
    for dept in by_id.values():
        if dept.parent_id is not None and dept.parent_id not in by_id:
            problems.add(
                where_of[dept.id].key("parent"),
                _("unknown department {parent_id!r}").format(parent_id=dept.parent_id),
                did_you_mean(dept.parent_id, by_id, _("define it or fix the id")),
            )
    _report_cycles(by_id, where_of, problems)
    _report_ambiguous_placement(by_id, where_of, problems)
    return by_id


def _report_cycles(by_id: dict[str, Department], where_of: dict[str, _Where], problems: _Problems) -> None:
    reported: set[str] = set()
    for start in by_id:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in by_id and node not in path:
            path.append(node)
            node = by_id[node].parent_id
        if node is None or node not in path or node in reported:
            continue
        cycle = path[path.index(node) :]
        reported.update(cycle)
        problems.add(
            where_of[node].key("parent"),
            "parents form a cycle: " + " -> ".join(cycle + [node]),
            _("one department of the cycle must be an organisation (no parent) or have another parent"),
        )


def _report_ambiguous_placement(
    by_id: dict[str, Department], where_of: dict[str, _Where], problems: _Problems
) -> None:
    cyclic = {d for d in by_id if _in_cycle(d, by_id)}
    claims: dict[tuple[str, ...], str] = {}
    for dept in by_id.values():
        if dept.id in cyclic:
            continue
        for key, label in _placement_claims(dept, by_id):
            other = claims.setdefault(key, dept.id)
            if other != dept.id:
                problems.add(
                    where_of[dept.id],
                    _("{label} also places people in {other!r}").format(label=label, other=other),
                    _("every spelling, cohort or profile value may place people in one department only"),
                )


def _in_cycle(dept_id: str, by_id: dict[str, Department]) -> bool:
    seen: set[str] = set()
    node: str | None = dept_id
    while node is not None and node in by_id:
        if node in seen:
            return True
        seen.add(node)
        node = by_id[node].parent_id
    return False


def _placement_claims(dept: Department, by_id: dict[str, Department]) -> list[tuple[tuple[str, ...], str]]:
    institutions: tuple[str, ...] = ()
    node: Department | None = dept
    while node is not None and not institutions:
        institutions = node.institution
        node = by_id.get(node.parent_id) if node.parent_id else None
    claims: list[tuple[tuple[str, ...], str]] = [
        (("profile", normalise(i), normalise(d)), f"institution {i!r} + department {d!r}")
        for i in (institutions or ("",))
        for d in dept.department
    ]
    claims += [(("cohort", c), f"cohort {c!r}") for c in dept.cohorts]
    claims += [
        (("field", dept.profile_field or "", normalise(v)), f"{dept.profile_field} = {v!r}")
        for v in dept.profile_values
    ]
    return claims


def _check_courses(found: list[tuple[MappedCourse, _Where]], problems: _Problems) -> dict[str, MappedCourse]:
    by_name: dict[str, MappedCourse] = {}
    by_ref: dict[CourseRef, str] = {}
    for course, where in found:
        if course.name in by_name:
            problems.add(
                where,
                _("course {name!r} is defined again").format(name=course.name),
                _("keep one [course.NAME] per name"),
            )
            continue
        if course.ref in by_ref:
            problems.add(
                where,
                _("{ref} is already mapped as {value!r}").format(ref=course.ref, value=by_ref[course.ref]),
                _("name each Moodle course once and use that name in every requirement"),
            )
            continue
        by_name[course.name], by_ref[course.ref] = course, course.name
    return by_name


def _check_requirements(
    found: list[tuple[Requirement, _Where, tuple[str, ...]]],
    departments: dict[str, Department],
    courses: dict[str, MappedCourse],
    problems: _Problems,
    invalid_courses: AbstractSet[str] = frozenset(),
) -> list[Requirement]:
    seen: dict[str, _Where] = {}
    result: list[Requirement] = []
    for requirement, where, course_names in found:
        if _repeated_id("requirement", requirement.id, where, seen, problems):
            continue
        refs = _course_refs(course_names, courses, where.key("courses"), problems, invalid_courses)
        _require_known_departments(
            requirement.applies_to.departments,
            departments,
            where.key("applies_to").key("departments"),
            problems,
        )
        for index, target in enumerate(requirement.targets):
            _require_known_departments(
                target.departments,
                departments,
                where.item("target", index, None).key("departments"),
                problems,
            )
        if refs is not None:
            result.append(_with_courses(requirement, refs))
    return result


def _course_refs(
    names: tuple[str, ...],
    courses: dict[str, MappedCourse],
    where: _Where,
    problems: _Problems,
    invalid: AbstractSet[str] = frozenset(),
) -> tuple[CourseRef, ...] | None:
    missing = [n for n in names if n not in courses]
    for name in missing:
        if name in invalid:
            continue  # its own problems are listed where it is defined
        problems.add(
            where,
            _("unknown course {name!r}").format(name=name),
            did_you_mean(
                name, courses, _("define it as [course.{name}] with its idnumber").format(name=name)
            ),
        )
    if len(set(names)) != len(names):
        problems.add(where, _("names a course twice"), _("list each course once"))
    return None if missing else tuple(courses[n].ref for n in names)


def _require_known_departments(
    names: tuple[str, ...], known: dict[str, Any], where: _Where, problems: _Problems
) -> None:
    for name in names:
        if name not in known:
            problems.add(
                where,
                _("unknown department {name!r}").format(name=name),
                did_you_mean(name, known, _("define the department first")),
            )


def _with_courses(requirement: Requirement, refs: tuple[CourseRef, ...]) -> Requirement:
    return replace(requirement, courses=refs)
