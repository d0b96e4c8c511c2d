"""Which conditions a custom report applies, read from the report editor's answer.

A "Course participants" report is created with the condition "Enrolment status = Active", which
hides every suspended or ended enrolment, and the completion behind it. Only the report editor's
view tells whether the condition is in force: ``core_reportbuilder_reports_get`` with
``editmode`` 1 lists the conditions *not* in the report under ``conditions.availableconditions``
and renders the active ones as a form (``conditions.activeconditionsform``, one
``data-region="active-condition"`` block each, with ``<select name="<condition>_operator">``).
``details.conditiondata`` of ``retrieve_report`` is not reliable: it keeps its old value after the
condition is deleted in the editor (the 4.5 capture's README, quirk 19).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENROLMENT_STATUS = "enrolment:status"
ANY_VALUE = "0"  # the operator "Is any value": the condition is there but filters nothing

_BLOCK = re.compile(r'data-region="active-condition"')
_SELECT = re.compile(r'<select\b[^>]*?\bname="(?P<name>[^"]+)"[^>]*>(?P<options>.*?)</select>', re.S)
_SELECTED = re.compile(
    r'<option\b[^>]*?\bvalue="(?P<value>[^"]*)"[^>]*?\bselected\b[^>]*>(?P<text>[^<]*)<', re.S
)
_HEADING = re.compile(r"<small\b[^>]*>(?P<text>[^<]*)</small>")


@dataclass(frozen=True, slots=True)
class ActiveCondition:
    identifier: str  # "enrolment:status"
    heading: str  # "Enrolment • Status", as the editor shows it
    operator: str  # the selected operator's value ("0" = Is any value)
    operator_text: str  # "Is equal to"
    value_text: str  # "Active" ("" when the condition has no value field)


@dataclass(frozen=True, slots=True)
class ReportConditions:
    report_id: int
    active: tuple[ActiveCondition, ...]
    available: frozenset[str]  # identifiers of conditions not in the report

    def condition(self, identifier: str) -> ActiveCondition | None:
        return next((c for c in self.active if c.identifier == identifier), None)

    @property
    def hides_inactive_enrolments(self) -> bool | None:
        """True while "Enrolment status" filters rows; None when the two signals disagree."""
        active = self.condition(ENROLMENT_STATUS)
        if active is None:
            return None if ENROLMENT_STATUS not in self.available else False
        if ENROLMENT_STATUS in self.available:
            return None
        return active.operator != ANY_VALUE


def parse_active_conditions(form: str) -> tuple[ActiveCondition, ...]:
    """The active-condition blocks of the editor's form, in order."""
    found: list[ActiveCondition] = []
    for block in _BLOCK.split(form)[1:]:
        selects = {m["name"]: m["options"] for m in _SELECT.finditer(block)}
        operator_name = next((name for name in selects if name.endswith("_operator")), None)
        if operator_name is None:
            continue
        identifier = operator_name.removesuffix("_operator")
        operator = _SELECTED.search(selects[operator_name])
        value = _SELECTED.search(selects.get(f"{identifier}_value", ""))
        heading = _HEADING.search(block)
        found.append(
            ActiveCondition(
                identifier=identifier,
                heading=_text(heading["text"]) if heading else identifier,
                operator=operator["value"] if operator else "",
                operator_text=_text(operator["text"]) if operator else "",
                value_text=_text(value["text"]) if value else "",
            )
        )
    return tuple(found)


def report_conditions_from(report_id: int, data: Mapping[str, Any]) -> ReportConditions | None:
    """The conditions of a ``reports_get`` answer; None when it has no editor part (editmode 0)."""
    conditions = data.get("conditions")
    if not isinstance(conditions, dict):
        return None
    available = {
        str(value.get("value"))
        for group in conditions.get("availableconditions") or []
        if isinstance(group, dict) and isinstance(group.get("optiongroup"), dict)
        for value in group["optiongroup"].get("values") or []
        if isinstance(value, dict)
    }
    form = conditions.get("activeconditionsform")
    return ReportConditions(
        report_id, parse_active_conditions(form if isinstance(form, str) else ""), frozenset(available)
    )


def _text(raw: str) -> str:
    return " ".join(html.unescape(raw).split())
