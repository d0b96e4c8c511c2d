"""Declared needs, from the two places people declare them: a CSV file and the Feedback survey.

Both resolve a declared *area* to requirements through the mappings (``Mappings.requirements_for_area``:
a requirement id, or one of a requirement's ``needs_areas``) and to people through the ledger.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from connector.errors import ImportFileError, Problem
from connector.i18n import _
from connector.ledger.needs import DeclaredNeed
from connector.mapping import Mappings
from connector.moodle.feedback import SurveyAnswers

CSV_COLUMNS = ("username", "idnumber", "area", "year", "source")
_YEARS = range(2000, 2101)

# who -> the ledger's person row (None: not in the ledger)
PersonLookup = Callable[[str], Mapping[str, Any] | None]


def read_csv(
    path: Path,
    mappings: Mappings,
    by_username: PersonLookup,
    by_idnumber: PersonLookup,
    *,
    default_source: str | None,
) -> list[DeclaredNeed]:
    """Every line of the file as declared needs, or ImportFileError listing every problem with its
    line: the whole file or nothing. Columns: ``username`` or ``idnumber`` (one is enough),
    ``area`` (a requirement id or one of its needs_areas), ``year``, ``source`` (optional when
    ``default_source`` is given)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ImportFileError(Problem(name, "", _("cannot read: {reason}").format(reason=reason))) from None
    sample = text[:4096]
    dialect: type[csv.Dialect] | csv.Dialect = csv.excel
    if sample.count(";") > sample.count(","):  # Czech and Slovenian spreadsheets save with ';'
        dialect = _Semicolon
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    reader.fieldnames = header
    problems = _header_problems(name, header, default_source)
    if problems:
        raise ImportFileError(problems)
    needs: list[DeclaredNeed] = []
    for row in reader:
        line = reader.line_num
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        found = _line(name, line, cells, mappings, by_username, by_idnumber, default_source, problems)
        needs.extend(found)
    if problems:
        raise ImportFileError(
            problems, hint=_("fix these lines and import the file again; nothing was imported")
        )
    if not needs:
        raise ImportFileError(Problem(name, "", _("has no lines to import")))
    return needs


class _Semicolon(csv.excel):
    delimiter = ";"


def _header_problems(name: str, header: list[str], default_source: str | None) -> list[Problem]:
    problems = []
    if "username" not in header and "idnumber" not in header:
        problems.append(Problem(name, "", _("needs a username or an idnumber column"), line=1))
    for column in ("area", "year"):
        if column not in header:
            problems.append(Problem(name, "", _("has no {column} column").format(column=column), line=1))
    if "source" not in header and not default_source:
        problems.append(
            Problem(
                name, "", _("has no source column"), _('add one, or pass --source "interviews 2027"'), line=1
            )
        )
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        problems.append(
            Problem(
                name,
                "",
                _("unknown column {join}").format(join=", ".join(unknown)),
                _("columns: {join}").format(join=", ".join(CSV_COLUMNS)),
                1,
            )
        )
    return problems


def _line(
    name: str,
    line: int,
    cells: Mapping[str, str],
    mappings: Mappings,
    by_username: PersonLookup,
    by_idnumber: PersonLookup,
    default_source: str | None,
    problems: list[Problem],
) -> list[DeclaredNeed]:
    before = len(problems)
    person = _person(name, line, cells, by_username, by_idnumber, problems)
    area = cells.get("area", "")
    requirements = mappings.requirements_for_area(area) if area else ()
    if not area:
        problems.append(Problem(name, "area", _("is empty"), line=line))
    elif not requirements:
        known = sorted({a for r in mappings.requirements if r.courses for a in (r.id, *r.needs_areas)})
        problems.append(
            Problem(
                name,
                "area",
                _("'{area}' names no requirement").format(area=area),
                _("use one of: {join}").format(join=", ".join(known)),
                line,
            )
        )
    year_text = cells.get("year", "")
    year = int(year_text) if year_text.isdigit() and int(year_text) in _YEARS else None
    if year is None:
        problems.append(
            Problem(
                name, "year", _("'{year_text}' is not a year").format(year_text=year_text), "e.g. 2027", line
            )
        )
    source = cells.get("source") or default_source or ""
    if not source:
        problems.append(Problem(name, "source", _("is empty"), _("say where the need was found"), line))
    if len(problems) > before or person is None or year is None:
        return []
    return [DeclaredNeed(int(person["user_id"]), year, r.id, area, source) for r in requirements]


def _person(
    name: str,
    line: int,
    cells: Mapping[str, str],
    by_username: PersonLookup,
    by_idnumber: PersonLookup,
    problems: list[Problem],
) -> Mapping[str, Any] | None:
    username, idnumber = cells.get("username", ""), cells.get("idnumber", "")
    if username:
        person = by_username(username)
        if person is None:
            problems.append(
                Problem(
                    name,
                    "username",
                    _("no person '{username}' in the ledger").format(username=username),
                    line=line,
                )
            )
        return person
    if idnumber:
        person = by_idnumber(idnumber)
        if person is None:
            problems.append(
                Problem(
                    name,
                    "idnumber",
                    _("no person with idnumber '{idnumber}' in the ledger").format(idnumber=idnumber),
                    line=line,
                )
            )
        return person
    problems.append(Problem(name, "", _("names nobody (username and idnumber are empty)"), line=line))
    return None


def from_survey(
    answers: SurveyAnswers, question: str, year: int, mappings: Mappings
) -> tuple[list[DeclaredNeed], list[str]]:
    """The needs the survey's answers declare (the options of the question labelled ``question``),
    and the options that name no requirement (e.g. "no need"), for the caller to report."""
    item = answers.item(question)
    source = f"feedback cmid {answers.survey.cmid}"
    needs: list[DeclaredNeed] = []
    unmapped: set[str] = set()
    for user_id, response in sorted(answers.by_user().items()):
        for option in response.choices(item):
            requirements = mappings.requirements_for_area(option)
            if not requirements:
                unmapped.add(option)
            needs.extend(DeclaredNeed(user_id, year, r.id, option, source) for r in requirements)
    return needs, sorted(unmapped)
