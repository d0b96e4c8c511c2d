"""Rows of `connector needs`: the year's analysis read from the ledger, grouped for people to read."""

from __future__ import annotations

from datetime import date
from typing import Any

from connector.errors import LedgerError
from connector.i18n import _
from connector.ledger import Ledger
from connector.mapping import Mappings
from connector.needs.analysis import REASONS, Need, course_to_take, group, needs_of_year
from connector.reports.views import _department_filter, display_name, organisation

_WHO_SHOWN = 6  # usernames in a table cell; the rest as "+N" (CSV and JSON list everyone)


def current_needs(ledger: Ledger, mappings: Mappings, year: int) -> tuple[date, list[Need]]:
    """The needs of ``year`` from the last successful sync's statuses and the declared needs."""
    run = ledger.runs.last("ok")
    if run is None:
        raise LedgerError(
            _("the ledger has no successful sync yet"),
            hint=_("run `connector sync` (or `connector demo` to try it out)"),
        )
    people = {int(p["user_id"]): p for p in ledger.people.rows()}
    needs = needs_of_year(year, ledger.statuses.current(), ledger.needs.declared(year), people, mappings)
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
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(department x requirement rows, person x requirement rows), filtered to a department subtree.

    ``people_named`` false: the counts only (the HTML report's summary), without the rows, lists
    and "who" cells naming people (at 100,000 people, 800,000 dictionaries nobody reads)."""
    selected = _department_filter(mappings, department)
    if selected is not None:
        needs = [n for n in needs if n.department_id in selected]
    people = {int(p["user_id"]): p for p in ledger.people.rows()} if people_named else {}
    names = {d.id: display_name(mappings, d.id) for d in mappings.departments}
    titles = {r.id: r.title for r in mappings.requirements}
    courses = {r.id: course_to_take(mappings, r.id) for r in mappings.requirements}
    reasons = {(n.user_id, n.requirement_id): n.reasons for n in needs} if people_named else {}
    groups = []
    for g in group(needs, mappings):
        shown = ", ".join(people[u]["username"] for u in g.user_ids[:_WHO_SHOWN]) if people_named else ""
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
                    {"username": people[u]["username"], "reasons": list(reasons[(u, g.requirement_id)])}
                    for u in (g.user_ids if people_named else ())
                ],
            }
        )
    persons = [
        {
            "year": year,
            "username": people[n.user_id]["username"],
            "idnumber": people[n.user_id]["idnumber"],
            "department": n.department_id,
            "department_name": names.get(n.department_id or "", None),
            "requirement": n.requirement_id,
            "reasons": ", ".join(n.reasons),
            "course": courses[n.requirement_id],
            "organisation": organisation(mappings, n.department_id)[0],
        }
        for n in (needs if people_named else ())
    ]
    return groups, persons


def totals(groups: list[dict[str, Any]]) -> dict[str, int]:
    return {"needs": sum(g["needs"] for g in groups), **{r: sum(g[r] for g in groups) for r in REASONS}}
