"""The Moodle Feedback activity read as the yearly needs survey (connector.moodle.feedback).

Two sources: the emulator's demo survey over real HTTP on loopback, and the answers captured from
a real Moodle 4.5 (tests/fixtures/moodle-4.5, mod_feedback_* cases) replayed by a small server
that answers each function with its recorded body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import parse_qsl

import pytest
import requests

from connector.emulator import Emulator, demo_scenario
from connector.emulator.feedback import DEMO_NEEDS
from connector.errors import MoodleNotFound, MoodlePermissionError, SurveyUnusable
from connector.moodle import feedback as feedback_module
from connector.moodle.client import ClientSettings, MoodleClient
from connector.moodle.feedback import (
    CAPABILITY_HINT,
    FeedbackApi,
    Survey,
    SurveyAnswers,
    SurveyItem,
    choice_options,
    decode_choices,
)
from tests.fixture_cases import Case, case
from tests.helpers import QuietHandler, loopback_http

FULL, WEAK, NO_VIEW, NO_REPORTS = "fb-full-token", "fb-weak-token", "fb-no-view", "fb-no-reports"
FIRST_PERSON_ID = 3  # the demo's u001


def user_id(number: int) -> int:
    return FIRST_PERSON_ID + number - 1


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(demo_scenario(date(2026, 1, 15)), tokens={FULL: "full", WEAK: "weak"}, moodle="4.5")
    emu.add_token(NO_VIEW, "full", lacking=["mod/feedback:view"])
    emu.add_token(NO_REPORTS, "full", lacking=["mod/feedback:viewreports"])
    with emu:
        yield emu


def api_for(url: str, token: str = FULL, fmt: str = "json") -> FeedbackApi:
    settings = ClientSettings(url=url, token=token, format=fmt, retry_attempts=1)  # type: ignore[arg-type]
    return FeedbackApi(MoodleClient(settings))


# --------------------------------------------------------------------------------------------
# the demo survey over loopback


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_demo_needs_survey_is_read_whole_decoded_and_unescaped(emulator: Emulator, fmt: str) -> None:
    api = api_for(emulator.url, fmt=fmt)
    survey = api.survey(1, cmid=1)
    assert survey == Survey(1, 1, 1, "Analiza potreb 2026 / Analýza potřeb 2026", anonymous=False)
    answers = api.answers(survey)
    area, priority, comment = answers.item("area"), answers.item("priority"), answers.item("comment")
    assert (area.multiple, priority.multiple, comment.kind) == (True, False, "textarea")
    assert area.options == (
        "Digitalna varnost / IT bezpečnost",
        "Umetna inteligenca / Umělá inteligence",
        "Digitalni svetovalec / Digitální poradce",
        "Pisarniška orodja / Kancelářské nástroje",
        "Ni potrebe / Nepotřebuji školení",
    )
    people = answers.by_user()
    assert len(answers.responses) == answers.moodle_total == 26
    assert set(people) == {user_id(n) for n in DEMO_NEEDS}
    u001, u002, u040, u005 = (people[user_id(n)] for n in (1, 2, 40, 5))
    assert u001.choices(area) == (
        "Digitalna varnost / IT bezpečnost",
        "Umetna inteligenca / Umělá inteligence",
        "Digitalni svetovalec / Digitální poradce",
    )
    assert u001.choices(priority) == ("visoka / vysoká",)
    assert u001.text(comment) == ""  # no comment: no value in Moodle, rawval null
    assert u005.choices(area) == (
        "Digitalna varnost / IT bezpečnost",
        "Pisarniška orodja / Kancelářské nástroje",
    )
    assert u002.text(comment) == 'Potřebujeme školení: AI & "chatboty" – řeč, Žluťoučký kůň'
    assert u040.text(comment) == 'Želimo <b>&"quote"</b> več delavnic – čšž ČŠŽ đ ć'
    assert u040.fullname == "Tjaša Vidmar"


def test_paging_by_surname_loses_an_answer_the_survey_reader_does_not(emulator: Emulator) -> None:
    """The emulator pages like Moodle (ORDER BY lastname only); the reader asks once, perpage 0."""

    def page(number: int) -> list[int]:
        form = {
            "wstoken": FULL,
            "wsfunction": "mod_feedback_get_responses_analysis",
            "moodlewsrestformat": "json",
            "feedbackid": 1,
            "page": number,
            "perpage": 10,
        }
        answer = requests.post(f"{emulator.url}/webservice/rest/server.php", data=form, timeout=10).json()
        return [a["id"] for a in answer["attempts"]]

    paged = page(0) + page(1) + page(2)
    assert len(paged) == 26 and len(set(paged)) < 26  # one repeated, one never returned

    emulator.reset_counts()
    api = api_for(emulator.url)
    answers = api.answers(api.survey(1, cmid=1))
    assert sorted(r.attempt_id for r in answers.responses) == list(range(1, 27))
    assert emulator.call_counts()["mod_feedback_get_responses_analysis"] == 1


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_anonymous_survey_is_refused_never_read_as_empty(emulator: Emulator, fmt: str) -> None:
    api = api_for(emulator.url, fmt=fmt)
    survey = api.survey(1, cmid=2)
    assert survey.anonymous
    with pytest.raises(SurveyUnusable) as raised:
        api.answers(survey)
    assert str(raised.value) == (
        'Feedback "Analiza potreb 2026 (anonimno) / Analýza potřeb 2026 (anonymně)" (view.php?id=2) is '
        "anonymous: it cannot tell who needs what\n"
        "  hint: make it non-anonymous for the needs survey: in the Feedback's settings set "
        '"Record user names" to "User\'s name will be logged and shown with answers"'
    )
    # a survey record that claims names (an old read, a hand-made one): the answer itself tells
    claimed = Survey(2, 1, 2, "stale", anonymous=False)
    with pytest.raises(SurveyUnusable, match="is anonymous: it cannot tell who needs what"):
        api.responses(claimed, api.items(claimed))


def test_a_course_with_two_surveys_needs_the_one_named(emulator: Emulator) -> None:
    api = api_for(emulator.url)
    with pytest.raises(MoodleNotFound) as several:
        api.survey(1)
    assert str(several.value) == (
        "course 1 has 2 Feedbacks: say which one\n"
        '  hint: give the number after view.php?id= of one of them: "Analiza potreb 2026 / Analýza potřeb '
        '2026" (view.php?id=1); "Analiza potreb 2026 (anonimno) / Analýza potřeb 2026 (anonymně)" '
        "(view.php?id=2)"
    )
    with pytest.raises(MoodleNotFound) as wrong:
        api.survey(1, cmid=7)
    assert str(wrong.value).splitlines()[0] == "course 1 has no Feedback view.php?id=7"
    assert api.survey(1, feedback_id=2).cmid == 2


def test_without_mod_feedback_view_the_survey_is_missing_and_the_error_names_the_capabilities(
    emulator: Emulator,
) -> None:
    api = api_for(emulator.url, NO_VIEW)
    with pytest.raises(MoodleNotFound) as missing:
        api.survey(1, cmid=1)  # Moodle leaves it out of the list without a warning
    assert str(missing.value) == (
        "course 1 has no Feedback the token's user can see\n"
        f"  hint: check the course id (1 is the site's front page); {CAPABILITY_HINT}"
    )
    known = Survey(1, 1, 1, "Analiza potreb 2026 / Analýza potřeb 2026", anonymous=False)
    for read in (api.items, api.access, api.non_respondents):
        with pytest.raises(MoodlePermissionError) as refused:
            read(known)
        assert refused.value.errorcode == "requireloginerror"
        assert refused.value.hint == CAPABILITY_HINT


def test_without_viewreports_questions_and_answers_are_refused(emulator: Emulator) -> None:
    api = api_for(emulator.url, NO_REPORTS)
    survey = api.survey(1, cmid=1)
    with pytest.raises(MoodlePermissionError) as hidden:
        api.items(survey)  # Moodle: items [] plus a warning
    assert str(hidden.value) == (
        "mod_feedback_get_items: Moodle hides the questions of Feedback "
        '"Analiza potreb 2026 / Analýza potřeb 2026" (id 1) from the token\'s user (nopermission)\n'
        f"  hint: {CAPABILITY_HINT}"
    )
    with pytest.raises(MoodlePermissionError) as refused:
        api.responses(survey, ())
    assert (refused.value.errorcode, refused.value.hint) == ("nopermissions", CAPABILITY_HINT)
    access = api.access(survey)
    assert (access.can_view_reports, access.can_view_analysis, access.anonymous) == (False, False, False)


def test_the_weak_token_gets_no_access_to_the_course(emulator: Emulator) -> None:
    with pytest.raises(MoodlePermissionError) as refused:
        api_for(emulator.url, WEAK).surveys([1])
    assert str(refused.value).splitlines()[0] == (
        "mod_feedback_get_feedbacks_by_courses: Moodle gives the token's user no access to course 1 "
        "(No access rights in course context)"
    )


def test_non_respondents_are_everyone_else_on_the_front_page(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feedback_module, "_NON_RESPONDENTS_PAGE", 7)  # walk several pages
    api = api_for(emulator.url)
    waiting = api.non_respondents(api.survey(1, cmid=1))
    assert len(waiting) == 60 - 26
    assert {p.user_id for p in waiting} == {user_id(n) for n in range(1, 61)} - {
        user_id(n) for n in DEMO_NEEDS
    }
    with pytest.raises(SurveyUnusable):
        api.non_respondents(api.survey(1, cmid=2))


# --------------------------------------------------------------------------------------------
# parsing pieces


def test_choice_questions_decode_as_moodle_encodes_them() -> None:
    assert choice_options("c>>>>>a|b|c") == (("a", "b", "c"), True)
    assert choice_options("r>>>>>nizka|srednja|visoka<<<<<1") == (("nizka", "srednja", "visoka"), False)
    assert choice_options("d>>>>>0####none|5####all") == (("none", "all"), False)
    item = SurveyItem(1, "area", "Area", "multichoice", 1, True, options=("a", "b", "c"), multiple=True)
    assert decode_choices(item, "1|3") == ("a", "c")
    assert decode_choices(item, "0") == ()
    assert decode_choices(item, "2|9") == ("b",)  # option 9 deleted after the answer: skipped


def test_a_missing_question_label_names_the_ones_there() -> None:
    answers = SurveyAnswers(
        Survey(3, 9, 11, "Analiza", False), (SurveyItem(1, "area", "A", "multichoice", 1, True),), (), 0
    )
    with pytest.raises(SurveyUnusable) as missing:
        answers.item("needs")
    assert str(missing.value) == (
        "Feedback \"Analiza\" (id 3) has no question labelled 'needs'\n"
        "  hint: labels there: 'area'; set the question's Label in the Feedback's Edit questions page"
    )


# --------------------------------------------------------------------------------------------
# the real Moodle 4.5 answers, replayed


@dataclass
class Replay:
    url: str = ""
    by_function: dict[str, Case] = field(default_factory=dict)
    received: list[list[tuple[str, str]]] = field(default_factory=list)

    def serve(self, *names: str) -> None:
        self.by_function = {}
        for name in names:
            found = case("4.5", name)
            self.by_function[found.function] = found
        self.received.clear()


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    state = Replay()

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802
            form = parse_qsl(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
            state.received.append(form)
            served = state.by_function[dict(form)["wsfunction"]]
            self.send_response(int(served.meta["http_status"]))
            self.send_header("Content-Type", str(served.meta["content_type"]))
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

    with loopback_http(Handler) as state.url:  # one server for the module (the fixture is per test)
        yield state


CAPTURED = Survey(3, 9, 11, "Analiza potreb po usposabljanju 2026", anonymous=False)


@pytest.mark.parametrize("responses", ["responses_all", "responses_all_xml"])
def test_the_captured_answers_parse(replay: Replay, responses: str) -> None:
    replay.serve(
        "mod_feedback_get_feedbacks_by_courses/needs_course",
        "mod_feedback_get_items/items",
        f"mod_feedback_get_responses_analysis/{responses}",
    )
    api = api_for(replay.url, fmt="xml" if responses.endswith("xml") else "json")
    survey = api.survey(9, cmid=11)
    assert survey == CAPTURED
    answers = api.answers(survey)
    area, comment = answers.item("area"), answers.item("comment")
    assert area.options == ("Digitalna varnost", "Umetna inteligenca", "Pisarniška orodja", "Ni potrebe")
    people = answers.by_user()
    assert len(people) == answers.moodle_total == 30
    assert people[205].choices(area) == ("Digitalna varnost", "Umetna inteligenca")  # v201: 1|2
    assert people[213].choices(area) == ("Digitalna varnost", "Umetna inteligenca", "Pisarniška orodja")
    assert people[207].text(comment) == 'Potřebujeme školení: AI & "chatboty" – řeč, Žluťoučký kůň'
    assert people[211].text(comment) == 'Želimo <b>&"quote"</b> več delavnic – čšž ČŠŽ đ ć'
    assert sum(1 for r in people.values() if not r.text(comment)) == 7
    asked = [
        dict(f) for f in replay.received if dict(f)["wsfunction"] == "mod_feedback_get_responses_analysis"
    ]
    assert len(asked) == 1 and (asked[0]["page"], asked[0]["perpage"]) == ("0", "0")


def test_the_captured_pages_show_why_the_reader_asks_once() -> None:
    """Quirk 12 in the capture itself: three pages of 10, one attempt twice, one never."""
    ids = [
        a["id"]
        for n in range(3)
        for a in case("4.5", f"mod_feedback_get_responses_analysis/responses_page{n}").json_body()["attempts"]
    ]
    assert len(ids) == 30 and len(set(ids)) == 29


@pytest.mark.parametrize("responses", ["anonymous_all", "anonymous_all_xml"])
def test_the_captured_anonymous_survey_is_refused(replay: Replay, responses: str) -> None:
    replay.serve(
        "mod_feedback_get_feedbacks_by_courses/needs_course",
        "mod_feedback_get_items/items_anonymous",
        f"mod_feedback_get_responses_analysis/{responses}",
    )
    api = api_for(replay.url, fmt="xml" if responses.endswith("xml") else "json")
    anonymous = api.survey(9, cmid=12)
    assert anonymous.anonymous
    with pytest.raises(SurveyUnusable):
        api.answers(anonymous)
    with pytest.raises(SurveyUnusable):  # even when the survey record was taken for a named one
        api.responses(Survey(4, 9, 12, anonymous.name, anonymous=False), ())


@pytest.mark.parametrize(
    "name,read,errorcode",
    [
        ("mod_feedback_get_items/without_viewreports", "items", "nopermission"),
        ("mod_feedback_get_items/without_feedback_view", "items", "requireloginerror"),
        ("mod_feedback_get_items/weak_items", "items", "requireloginerror"),
        ("mod_feedback_get_responses_analysis/without_viewreports", "responses", "nopermissions"),
        ("mod_feedback_get_responses_analysis/weak_responses_xml", "responses", "requireloginerror"),
        ("mod_feedback_get_non_respondents/without_viewreports", "non_respondents", "nopermissions"),
        ("mod_feedback_get_feedback_access_information/weak_access", "access", "requireloginerror"),
        ("mod_feedback_get_feedbacks_by_courses/weak_needs_course", "surveys", "1"),
    ],
)
def test_the_captured_refusals_name_both_capabilities(
    replay: Replay, name: str, read: str, errorcode: str
) -> None:
    replay.serve(name)
    api = api_for(replay.url, fmt=case("4.5", name).format)
    calls: dict[str, Callable[[], object]] = {
        "items": lambda: api.items(CAPTURED),
        "responses": lambda: api.responses(CAPTURED, ()),
        "non_respondents": lambda: api.non_respondents(CAPTURED),
        "access": lambda: api.access(CAPTURED),
        "surveys": lambda: api.surveys([9]),
    }
    with pytest.raises(MoodlePermissionError) as refused:
        calls[read]()
    assert refused.value.errorcode == errorcode
    assert CAPABILITY_HINT in (refused.value.hint or "")


def test_the_captured_survey_without_feedback_view_is_not_found(replay: Replay) -> None:
    replay.serve("mod_feedback_get_feedbacks_by_courses/without_feedback_view")
    with pytest.raises(MoodleNotFound) as missing:
        api_for(replay.url).survey(9, cmid=11)
    assert str(missing.value).splitlines()[0] == "course 9 has no Feedback the token's user can see"


def test_the_captured_access_and_non_respondents_parse(replay: Replay) -> None:
    replay.serve(
        "mod_feedback_get_feedback_access_information/without_viewreports",
        "mod_feedback_get_non_respondents/non_respondents",
    )
    api = api_for(replay.url)
    access = api.access(3)
    assert (access.can_view_reports, access.can_view_analysis, access.is_open) == (False, False, True)
    waiting = api.non_respondents(CAPTURED)
    assert len(waiting) == 10 and waiting[0].user_id == 234 and waiting[0].fullname == "Žiga Kos"


def test_the_emulators_analysis_counts_agree_with_the_answers_read(emulator: Emulator) -> None:
    """get_analysis (each option's count, a JSON string per option) matches the decoded answers."""
    api = api_for(emulator.url)
    answers = api.answers(api.survey(1, cmid=1))
    area = answers.item("area")
    form = {
        "wstoken": FULL,
        "wsfunction": "mod_feedback_get_analysis",
        "moodlewsrestformat": "json",
        "feedbackid": 1,
    }
    analysis = requests.post(f"{emulator.url}/webservice/rest/server.php", data=form, timeout=10).json()
    counted = {
        json.loads(d)["answertext"]: json.loads(d)["answercount"] for d in analysis["itemsdata"][0]["data"]
    }
    chosen = [label for r in answers.responses for label in r.choices(area)]
    assert counted == {label: chosen.count(label) for label in area.options}
    assert counted["Digitalna varnost / IT bezpečnost"] == 14  # u001, 003, 005, 017, 024, 037, ...: 14
    assert analysis["completedcount"] == 26
