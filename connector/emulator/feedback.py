"""The Feedback activity (``mod_feedback``) as the emulator serves it: the yearly needs survey.

Written from the 4.5 capture (tests/fixtures/moodle-4.5, the ``mod_feedback_*`` cases and the
README's quirks 12-17): answers stored as Moodle stores them (multi-select ``1|2|3``, text
escaped with ``s()``), the paging of ``get_responses_analysis`` ordered by surname only (people
sharing one come back in a different order on each page, so pages lose and repeat attempts),
anonymous surveys without user ids, and the two capabilities: without ``mod/feedback:view`` the
activity is invisible (``requireloginerror``, or left out of the course's list), without
``mod/feedback:viewreports`` the answers are refused.

The demo's surveys sit on the site's front page (course 1), where every person may answer: no
course, enrolment or completion of the demo changes for them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from connector.emulator.scenario import completion_instant, seeded
from connector.emulator.wire import Param, WsException, invalid_parameter, missing_record, require_login

if TYPE_CHECKING:
    from connector.emulator.functions import Call

VIEW = "mod/feedback:view"
VIEW_REPORTS = "mod/feedback:viewreports"
FEEDBACK_SERVICE_FUNCTIONS = (
    "mod_feedback_get_feedbacks_by_courses",
    "mod_feedback_get_items",
    "mod_feedback_get_responses_analysis",
    "mod_feedback_get_analysis",
    "mod_feedback_get_non_respondents",
    "mod_feedback_get_feedback_access_information",
)
NON_RESPONDENTS_PAGE = 20  # perpage 0 means 20 here, not "all" (quirk 16)
TYPE_SEPARATOR = ">>>>>"  # multichoice presentation: "<c|r|d>>>>>>option|option|..."
ADJUST_SEPARATOR = "<<<<<"  # an optional display suffix after the options


@dataclass(frozen=True, slots=True)
class ItemDef:
    """One question, in Moodle's own encoding (``presentation`` as the item stores it)."""

    id: int
    label: str
    name: str
    typ: str  # "multichoice" | "textarea" | ...
    presentation: str
    required: bool
    options: str = ""

    def choices(self) -> list[str]:
        if self.typ not in ("multichoice", "multichoicerated"):
            return []
        listed = self.presentation.partition(TYPE_SEPARATOR)[2].partition(ADJUST_SEPARATOR)[0]
        return [option.rpartition("####")[2] for option in listed.split("|")]


@dataclass(frozen=True, slots=True)
class AttemptDef:
    """One submitted answer sheet (``feedback_completed``); ``values`` only for answered items."""

    id: int
    user_id: int
    timemodified: int
    values: tuple[tuple[int, str], ...]  # (item id, stored value)
    number: int = 0  # random_response: what an anonymous survey shows instead of the person

    def value(self, item_id: int) -> str | None:
        return next((v for i, v in self.values if i == item_id), None)


@dataclass(frozen=True, slots=True)
class FeedbackDef:
    id: int
    course_id: int
    cmid: int
    name: str
    intro: str
    anonymous: bool
    items: tuple[ItemDef, ...]
    attempts: tuple[AttemptDef, ...]


# ----- access ------------------------------------------------------------------------------------
def _feedback(call: Call, feedback_id: int) -> FeedbackDef:
    feedback = call.scenario.feedbacks.get(feedback_id)
    if feedback is None:
        raise missing_record("feedback")
    if not call.can(VIEW):  # the activity is not accessible to the token's user at all
        raise require_login()
    return feedback


def _require_reports(call: Call) -> None:
    if not call.can(VIEW_REPORTS):
        raise WsException(
            "required_capability_exception",
            "nopermissions",
            "Sorry, but you do not currently have permissions to do that (View reports).",
        )


def _author(call: Call, attempt: AttemptDef) -> tuple[str, str] | None:
    """(fullname, lastname) of the attempt's author, None when the account is gone."""
    index = call.scenario.person_index(attempt.user_id)
    if index is None:
        return None
    person = call.scenario.person(index)
    return person.fullname, person.lastname


# ----- records -----------------------------------------------------------------------------------
def _feedback_record(feedback: FeedbackDef) -> dict[str, Any]:
    """Without mod/feedback:edititems Moodle leaves out the optional fields (quirk 17)."""
    return {
        "id": feedback.id,
        "course": feedback.course_id,
        "name": feedback.name,
        "intro": feedback.intro,
        "introformat": 1,
        "lang": None,
        "anonymous": 1 if feedback.anonymous else 2,
        "multiple_submit": False,
        "autonumbering": True,
        "page_after_submitformat": 1,
        "publish_stats": False,
        "completionsubmit": True,
        "coursemodule": feedback.cmid,
        "introfiles": [],
    }


def _item_record(feedback: FeedbackDef, item: ItemDef, position: int) -> dict[str, Any]:
    return {
        "id": item.id,
        "feedback": feedback.id,
        "template": 0,
        "name": item.name,
        "nameformat": 1,
        "label": item.label,
        "presentation": item.presentation,
        "presentationformat": 1,
        "typ": item.typ,
        "hasvalue": 1,
        "position": position,
        "required": item.required,
        "dependitem": 0,
        "dependvalue": "",
        "options": item.options,
        "itemfiles": [],
        "itemnumber": position,
        "otherdata": None,
    }


def _printed(item: ItemDef, raw: str | None) -> str:
    if raw is None:
        return ""
    choices = item.choices()
    if not choices:
        return raw
    picked = [int(n) for n in raw.split("|") if n.isdigit()]
    return "\n".join(choices[n - 1] for n in picked if 0 < n <= len(choices))


def _responses(feedback: FeedbackDef, attempt: AttemptDef) -> list[dict[str, Any]]:
    answers = []
    for item in feedback.items:
        raw = attempt.value(item.id)
        answers.append(
            {
                "id": item.id,
                "name": f"({item.label}) {item.name}",
                "printval": _printed(item, raw),
                "rawval": raw,
            }
        )
    return answers


def _php_json(value: Any) -> str:
    """json_encode as PHP writes it: non-ASCII as \\uXXXX, "/" as "\\/"."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/")


def _ratio(count: int, total: int) -> float | int:
    """PHP's division: a whole result stays an integer."""
    if total == 0:
        return 0
    return count // total if count % total == 0 else count / total


# ----- the functions -----------------------------------------------------------------------------
def get_feedbacks_by_courses(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    feedbacks: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    for course_id in params["courseids"]:
        if call.weak or course_id not in call.scenario.course_defs:
            warnings.append(
                {
                    "item": "course",
                    "itemid": course_id,
                    "warningcode": "1",
                    "message": "No access rights in course context",
                }
            )
            continue
        if not call.can(VIEW):  # the activities are simply not listed (no warning)
            continue
        feedbacks += [
            _feedback_record(f)
            for f in sorted(call.scenario.feedbacks.values(), key=lambda f: f.id)
            if f.course_id == course_id
        ]
    return {"feedbacks": feedbacks, "warnings": warnings}


def get_items(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    feedback = _feedback(call, params["feedbackid"])
    if not call.can(VIEW_REPORTS):  # no exception: an empty list and a raw string key (quirk 17)
        return {
            "items": [],
            "warnings": [
                {"item": str(feedback.id), "warningcode": "nopermission", "message": "error/nopermission"}
            ],
        }
    return {
        "items": [_item_record(feedback, item, n) for n, item in enumerate(feedback.items, 1)],
        "warnings": [],
    }


def _tie_order(attempt_id: int, page: int, perpage: int) -> bytes:
    """The order a database happens to give rows that compare equal: different for each query."""
    return hashlib.sha256(f"{attempt_id}:{page}:{perpage}".encode()).digest()


def get_responses_analysis(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    feedback = _feedback(call, params["feedbackid"])
    _require_reports(call)
    page, perpage = params["page"], params["perpage"]
    named: list[dict[str, Any]] = []
    anonymous: list[dict[str, Any]] = []
    if feedback.anonymous:
        for attempt in sorted(feedback.attempts, key=lambda a: a.number):
            anonymous.append(
                {
                    "id": attempt.id,
                    "courseid": 0,
                    "number": attempt.number,
                    "responses": _responses(feedback, attempt),
                }
            )
    else:
        listed = []
        for attempt in feedback.attempts:
            who = _author(call, attempt)
            if who is not None:
                listed.append(
                    (who[1].encode("utf-8"), _tie_order(attempt.id, page, perpage), attempt, who[0])
                )
        # ORDER BY lastname only (byte order, as the captured PostgreSQL's collation): quirk 12
        listed.sort(key=lambda row: (row[0], row[1]))
        for _, _, attempt, fullname in listed:
            named.append(
                {
                    "id": attempt.id,
                    "courseid": 0,
                    "userid": attempt.user_id,
                    "timemodified": attempt.timemodified,
                    "fullname": fullname,
                    "responses": _responses(feedback, attempt),
                }
            )
    total_named, total_anonymous = len(named), len(anonymous)
    if perpage > 0:
        named = named[page * perpage : (page + 1) * perpage]
        anonymous = anonymous[page * perpage : (page + 1) * perpage]
    return {
        "attempts": named,
        "totalattempts": total_named,
        "anonattempts": anonymous,
        "totalanonattempts": total_anonymous,
        "warnings": [],
    }


def get_analysis(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    feedback = _feedback(call, params["feedbackid"])
    if not call.can(VIEW_REPORTS):
        raise WsException("required_capability_exception", "nopermission", "error/nopermission")
    attempts = sorted(feedback.attempts, key=lambda a: a.id)
    itemsdata = []
    for position, item in enumerate(feedback.items, 1):
        values = [v for v in (a.value(item.id) for a in attempts) if v is not None]
        choices = item.choices()
        data: list[str]
        if choices:  # each element a JSON string of its own (quirk 15)
            picked = [value.split("|") for value in values]
            data = []
            for number, text in enumerate(choices, 1):
                count = sum(str(number) in chosen for chosen in picked)
                data.append(
                    _php_json(
                        {"answertext": text, "answercount": count, "quotient": _ratio(count, len(values))}
                    )
                )
        else:
            data = [v for v in values if v]
        itemsdata.append({"item": _item_record(feedback, item, position), "data": data})
    return {
        "completedcount": len(attempts),
        "itemscount": len(feedback.items),
        "itemsdata": itemsdata,
        "warnings": [],
    }


def _may_answer(call: Call, feedback: FeedbackDef) -> list[int]:
    """Person indexes who may complete: everyone on the front page, else the course's enrolled."""
    scenario = call.scenario
    if scenario.course_defs.get(feedback.course_id) is None:
        return []
    if scenario.course_defs[feedback.course_id].format == "site":
        return [p.index for p in scenario.live_people()]
    indexes = (
        scenario.person_index(scenario.enrol_user[p]) for p in scenario.course_positions(feedback.course_id)
    )
    return sorted({i for i in indexes if i is not None})


NON_RESPONDENT_SORTS: dict[str, Callable[[Call, int], Any]] = {
    "lastaccess": lambda call, index: -call.scenario.site_access(index),
    "firstname": lambda call, index: call.scenario.person(index).firstname.encode("utf-8"),
    "lastname": lambda call, index: call.scenario.person(index).lastname.encode("utf-8"),
}


def get_non_respondents(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    feedback = _feedback(call, params["feedbackid"])
    _require_reports(call)
    if feedback.anonymous:
        raise WsException("moodle_exception", "anonymous", "Anonymous")
    sort = NON_RESPONDENT_SORTS.get(params["sort"])
    if sort is None:
        raise invalid_parameter()
    answered = {a.user_id for a in feedback.attempts}
    scenario = call.scenario
    waiting = [i for i in _may_answer(call, feedback) if scenario.person_id(i) not in answered]
    waiting.sort(key=lambda index: (sort(call, index), index))
    perpage = params["perpage"] or NON_RESPONDENTS_PAGE
    shown = waiting[params["page"] * perpage : (params["page"] + 1) * perpage]
    return {
        "users": [
            {
                "courseid": 0,
                "userid": scenario.person_id(i),
                "fullname": scenario.person(i).fullname,
                "started": False,
            }
            for i in shown
        ],
        "total": len(waiting),
        "warnings": [],
    }


def get_feedback_access_information(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    feedback = _feedback(call, params["feedbackid"])
    reports = call.can(VIEW_REPORTS)
    return {
        "canviewanalysis": reports,
        "cancomplete": False,  # the token's user is not enrolled: it may submit, not complete (quirk 17)
        "cansubmit": True,
        "candeletesubmissions": False,
        "canviewreports": reports,
        "canedititems": False,
        "isempty": not feedback.items,
        "isopen": True,
        "isalreadysubmitted": False,
        "isanonymous": feedback.anonymous,
        "warnings": [],
    }


INT = Param("int")


def _optional_int(default: int = 0) -> Param:
    return Param("int", required=False, default=default)


FEEDBACK_FUNCTIONS: dict[str, tuple[dict[str, Param], Callable[[Call, dict[str, Any]], Any]]] = {
    "mod_feedback_get_feedbacks_by_courses": (
        {"courseids": Param([INT], required=False, default=[])},
        get_feedbacks_by_courses,
    ),
    "mod_feedback_get_items": ({"feedbackid": INT, "courseid": _optional_int()}, get_items),
    "mod_feedback_get_responses_analysis": (
        {
            "feedbackid": INT,
            "groupid": _optional_int(),
            "page": _optional_int(),
            "perpage": _optional_int(),
            "courseid": _optional_int(),
        },
        get_responses_analysis,
    ),
    "mod_feedback_get_analysis": (
        {"feedbackid": INT, "groupid": _optional_int(), "courseid": _optional_int()},
        get_analysis,
    ),
    "mod_feedback_get_non_respondents": (
        {
            "feedbackid": INT,
            "groupid": _optional_int(),
            "sort": Param("text", required=False, default="lastaccess"),
            "page": _optional_int(),
            "perpage": _optional_int(),
            "courseid": _optional_int(),
        },
        get_non_respondents,
    ),
    "mod_feedback_get_feedback_access_information": (
        {"feedbackid": INT, "courseid": _optional_int()},
        get_feedback_access_information,
    ),
}


# ----- the demo's surveys ------------------------------------------------------------------------
NEEDS_AREAS = (
    "Digitalna varnost / IT bezpečnost",
    "Umetna inteligenca / Umělá inteligence",
    "Digitalni svetovalec / Digitální poradce",
    "Pisarniška orodja / Kancelářské nástroje",
    "Ni potrebe / Nepotřebuji školení",
)
PRIORITIES = ("nizka / nízká", "srednja / střední", "visoka / vysoká")
SITE_COURSE = 1
NEEDS_FEEDBACK, ANONYMOUS_FEEDBACK = 1, 2

# Demo person number (uNNN) -> (areas chosen, priority, comment as typed or None). Several share a
# surname (Horvat, Golob, Krajnc, Vidmar, Novak, Potočnik), which is what makes paging lose answers.
DEMO_NEEDS: dict[int, tuple[str, str, str | None]] = {
    1: ("1|2|3", "3", None),
    2: ("2", "2", 'Potřebujeme školení: AI & "chatboty" – řeč, Žluťoučký kůň'),  # tags stripped by the form
    3: ("1", "3", "Kurz IT bezpečnosti prosím v létě."),
    5: ("1|4", "1", None),
    8: ("5", "1", None),
    12: ("2|4", "2", "Více praktických ukázek."),
    17: ("1", "2", None),  # the suspended account answered before it was suspended
    23: ("3", "3", "Jako digitální poradce potřebuji úvodní kurz."),
    24: ("1|2", "2", None),
    25: ("2", "1", "Raději prezenčně."),
    37: ("1", "2", "Več praktičnih primerov."),
    38: ("2", "2", None),
    39: ("1|2", "3", "Predlagam delavnice v živo."),
    40: ("4", "1", 'Želimo <b>&"quote"</b> več delavnic – čšž ČŠŽ đ ć'),  # sent through the API: tags kept
    41: ("1", "3", "Rad bi spletni tečaj."),
    42: ("2|3", "2", None),
    43: ("1", "2", "Brez pripomb."),
    44: ("5", "1", None),
    46: ("1|2|4", "3", "Potrebujemo več časa za usposabljanje."),
    47: ("2", "2", None),
    48: ("1", "1", "Več praktičnih primerov."),
    49: ("1", "2", None),
    50: ("4", "2", "Brez pripomb."),
    53: ("1|2", "3", "Predlagam delavnice v živo."),
    55: ("2", "2", None),
    56: ("1", "1", None),
}
ANONYMOUS_RESPONDENTS = (37, 38, 39, 40, 41)


def moodle_escaped(text: str) -> str:
    """Moodle's ``s()`` (htmlspecialchars with ENT_QUOTES): how a textarea answer is stored."""
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#039;")):
        text = text.replace(raw, entity)
    return text


def _needs_items(first_id: int) -> tuple[ItemDef, ...]:
    return (
        ItemDef(
            first_id,
            "area",
            "Na katerih področjih potrebujete usposabljanje? / Ve kterých oblastech potřebujete školení?",
            "multichoice",
            "c" + TYPE_SEPARATOR + "|".join(NEEDS_AREAS),
            required=True,
            options="h",
        ),
        ItemDef(
            first_id + 1,
            "priority",
            "Prednost / Priorita",
            "multichoice",
            "r" + TYPE_SEPARATOR + "|".join(PRIORITIES),
            required=True,
            options="h",
        ),
        ItemDef(first_id + 2, "comment", "Komentar / Komentář", "textarea", "40|5", required=False),
    )


def _values(
    items: Sequence[ItemDef], areas: str, priority: str, comment: str | None
) -> tuple[tuple[int, str], ...]:
    values = [(items[0].id, areas), (items[1].id, priority)]
    if comment:  # no comment: no value row at all
        values.append((items[2].id, moodle_escaped(comment)))
    return tuple(values)


def demo_feedbacks(anchor: date, first_person_id: int) -> tuple[FeedbackDef, ...]:
    """The demo's needs survey of the anchor's year (named answers) and an anonymous twin."""
    year = anchor.year
    intro = "<p>Letna anketa o potrebah po usposabljanju. / Roční průzkum potřeb vzdělávání.</p>"
    named_items = _needs_items(1)
    attempts = tuple(
        AttemptDef(
            id=n,
            user_id=first_person_id + number - 1,
            timemodified=completion_instant(anchor, 10, 9 * 3600 + 60 * n),
            values=_values(named_items, *DEMO_NEEDS[number]),
        )
        for n, number in enumerate(sorted(DEMO_NEEDS), 1)
    )
    anonymous_items = _needs_items(len(named_items) + 1)
    numbers = list(range(1, len(ANONYMOUS_RESPONDENTS) + 1))
    seeded(2025, "anonymous-feedback").shuffle(numbers)  # Moodle shuffles random_response
    anonymous = tuple(
        AttemptDef(
            id=len(attempts) + k + 1,
            user_id=first_person_id + number - 1,
            timemodified=completion_instant(anchor, 9, 9 * 3600 + 60 * k),
            values=_values(
                anonymous_items, str(k % len(NEEDS_AREAS) + 1), str(k % 3 + 1), f"Anonimno {k + 1}"
            ),
            number=numbers[k],
        )
        for k, number in enumerate(ANONYMOUS_RESPONDENTS)
    )
    return (
        FeedbackDef(
            NEEDS_FEEDBACK,
            SITE_COURSE,
            NEEDS_FEEDBACK,
            f"Analiza potreb {year} / Analýza potřeb {year}",
            intro,
            False,
            named_items,
            attempts,
        ),
        FeedbackDef(
            ANONYMOUS_FEEDBACK,
            SITE_COURSE,
            ANONYMOUS_FEEDBACK,
            f"Analiza potreb {year} (anonimno) / Analýza potřeb {year} (anonymně)",
            intro,
            True,
            anonymous_items,
            anonymous,
        ),
    )
