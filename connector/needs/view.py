"""Rows of `connector needs`: the year's analysis read from the ledger, grouped for people to read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from connector.errors import LedgerError
from connector.i18n import _
from connector.ledger import Ledger
from connector.mapping import Mappings
from connector.needs.analysis import REASONS, Need, course_to_take, group, needs_of_year
from connector.reports.lazy_rows import LazyRows
from connector.reports.views import _department_filter, display_name, organisation

_WHO_SHOWN = 6  # usernames in a table cell; the rest as "+N" (CSV and JSON list everyone)


def current_needs(
    ledger: Ledger, mappings: Mappings, year: int, departments: set[str] | None = None
) -> tuple[date, list[Need]]:
    """The needs of ``year`` from the last successful sync's statuses and the declared needs;
    ``departments``: of the people placed in these only (their statuses read alone)."""
    run = ledger.runs.last("ok")
    if run is None:
        raise LedgerError(
            _("the ledger has no successful sync yet"),
            hint=_("run `connector sync` (or `connector demo` to try it out)"),
        )
    # what the analysis reads of a person: 100,000 whole rows took 86 MB more
    people = {
        int(p["user_id"]): {"active": p["active"], "department_id": p["department_id"]}
        for p in ledger.people.rows(departments)
    }
    statuses = ledger.statuses.current(None if departments is None else people)
    needs = needs_of_year(year, statuses, ledger.needs.declared(year), people, mappings)
    return date.fromisoformat(run["as_of"]), needs


def needs_rows(
    ledger: Ledger,
    mappings: Mappings,
    year: int,
    needs: list[Need],
    as_of: date,
    department: str | None = None,
    *,
    people_named: bool = True,
    people_listed: bool = True,
) -> tuple[list[dict[str, Any]], Sequence[dict[str, Any]]]:
    """(department x requirement rows, person x requirement rows), filtered to a department subtree.

    ``people_named`` false: the counts only (the HTML report's summary), without the rows, lists
    and "who" cells naming people (at 100,000 people, 800,000 dictionaries nobody reads);
    ``people_listed`` false: without each group's list of its people (only JSON shows them). The
    person rows are made when read."""
    selected = _department_filter(mappings, department)
    if selected is not None:
        needs = [n for n in needs if n.department_id in selected]
    people: dict[int, tuple[str, str | None]] = (
        {int(p["user_id"]): (p["username"], p["idnumber"]) for p in ledger.people.rows()}
        if people_named
        else {}
    )
    names = {d.id: display_name(mappings, d.id) for d in mappings.departments}
    titles = {r.id: r.title for r in mappings.requirements}
    courses = {r.id: course_to_take(mappings, r.id) for r in mappings.requirements}
    listed = people_named and people_listed
    reasons = {(n.user_id, n.requirement_id): n.reasons for n in needs} if listed else {}
    groups = []
    for g in group(needs, mappings):
        shown = ", ".join(people[u][0] for u in g.user_ids[:_WHO_SHOWN]) if people_named else ""
        if people_named and len(g.user_ids) > _WHO_SHOWN:
            shown += f" +{len(g.user_ids) - _WHO_SHOWN}"
        groups.append(
            {
                "year": year,
                "as_of": as_of.isoformat(),
                "department": g.department_id,
                "department_name": names.get(g.department_id or "", "(no department)"),
                "organisation": organisation(mappings, g.department_id)[0],
                "requirement": g.requirement_id,
                "requirement_title": titles[g.requirement_id],
                "course": courses[g.requirement_id],
                "needs": len(g.user_ids),
                **g.counts,
                "who": shown,
                "people": [
                    {"username": people[u][0], "reasons": list(reasons[(u, g.requirement_id)])}
                    for u in (g.user_ids if listed else ())
                ],
            }
        )
    persons = NeedRows(year, needs if people_named else [], people, names, courses, mappings)
    return groups, persons


class NeedRows(LazyRows[Need]):
    """The person x requirement rows of a needs analysis, each a dict when read (at 100,000
    people, 800,000 of them held at once took most of a gigabyte)."""

    def __init__(
        self,
        year: int,
        needs: list[Need],
        people: dict[int, tuple[str, str | None]],
        names: dict[str, str],
        courses: dict[str, str],
        mappings: Mappings,
    ) -> None:
        super().__init__(needs)
        self._year = year
        self._people = people
        self._names = names
        self._courses = courses
        self._mappings = mappings
        self._organisations: dict[str | None, str | None] = {}

    def _row(self, n: Need) -> dict[str, Any]:
        username, idnumber = self._people[n.user_id]
        department = n.department_id
        if department not in self._organisations:
            self._organisations[department] = organisation(self._mappings, department)[0]
        return {
            "year": self._year,
            "username": username,
            "idnumber": idnumber,
            "department": department,
            "department_name": self._names.get(department or "", None),
            "requirement": n.requirement_id,
            "reasons": ", ".join(n.reasons),
            "course": self._courses[n.requirement_id],
            "organisation": self._organisations[department],
        }


def totals(groups: list[dict[str, Any]]) -> dict[str, int]:
    return {"needs": sum(g["needs"] for g in groups), **{r: sum(g[r] for g in groups) for r in REASONS}}
