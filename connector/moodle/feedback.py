"""A Moodle Feedback activity (``mod_feedback``) read as the yearly needs survey: typed records.

What the 4.5 capture shows (tests/fixtures/moodle-4.5, README quirks 12-17) and how it is read:

- ``mod_feedback_get_responses_analysis`` sorts by surname only: pages of it lose and repeat
  answers of people who share a surname. The answers are read in ONE call (``perpage`` 0 = all)
  and de-duplicated by attempt id all the same.
- A multi-select answer comes as ``rawval`` ``"1|2|3"`` (1-based option numbers); it is decoded
  to the option labels of the question (from ``mod_feedback_get_items``), never from ``printval``.
- Text answers come HTML-escaped (``&quot;``, ``&lt;b&gt;``): they are unescaped once.
- An anonymous Feedback gives no user ids: it cannot tell who needs what, so reading its
  answers raises :class:`SurveyUnusable` instead of returning nobody.
- Both ``mod/feedback:view`` and ``mod/feedback:viewreports`` are needed. Without the first the
  activity is silently missing from its course's list and every other call says
  ``requireloginerror``; without the second the items come back empty with a warning and the
  answers are refused. Either way the error here names both capabilities.

Entry point: :class:`FeedbackApi` over a :class:`~connector.moodle.client.MoodleClient`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.errors import MoodleNotFound, MoodlePermissionError, SurveyUnusable
from connector.i18n import N_, _
from connector.moodle.client import MoodleClient
from connector.moodle.coerce import as_str, dict_rows, expect_dict, to_bool, to_int
from connector.moodle.functions import ROLE_PLACE, Need, capabilities_needed, named
from connector.moodle.pagination import PageInfo, PageRequest, ThroughLastPage, paginate
from connector.moodle.records import read_record, whole_number

log = logging.getLogger("connector.moodle")

GET_FEEDBACKS = "mod_feedback_get_feedbacks_by_courses"
GET_ITEMS = "mod_feedback_get_items"
GET_RESPONSES = "mod_feedback_get_responses_analysis"
GET_ANALYSIS = "mod_feedback_get_analysis"
GET_NON_RESPONDENTS = "mod_feedback_get_non_respondents"
GET_ACCESS = "mod_feedback_get_feedback_access_information"
#: The functions the needs survey reads (doctor: all must be in the token's service).
SURVEY_FUNCTIONS = named(Need.SURVEY)
#: What the token's role needs on top of the connector's usual ones (leave-one-out, 4.5 capture).
SURVEY_CAPABILITIES = capabilities_needed(SURVEY_FUNCTIONS)
_CAPABILITY_TEXT = N_(
    "give the token's user mod/feedback:view and mod/feedback:viewreports (with moodle/course:view) "
    "in its system role ({role_place}); without "
    "mod/feedback:view Moodle hides the Feedback without saying so"
)
CAPABILITY_HINT = _CAPABILITY_TEXT.format(role_place=ROLE_PLACE)  # English, as README quotes it


def capability_hint() -> str:
    """CAPABILITY_HINT in the reader's language."""
    return _(_CAPABILITY_TEXT).format(role_place=_(ROLE_PLACE))


ANONYMOUS_HINT = N_(
    "make it non-anonymous for the needs survey: in the Feedback's settings set "
    '"Record user names" to "User\'s name will be logged and shown with answers"'
)
# Moodle's encoding of a multiple-choice question: "<c|r|d>>>>>>first|second|...[<<<<<1]";
# c = several answers allowed (checkboxes), r = radio buttons, d = drop-down list. A rated
# question writes each option as "<value>####<label>".
_TYPE_SEPARATOR = ">>>>>"
_ADJUST_SEPARATOR = "<<<<<"
_RATED_SEPARATOR = "####"
_CHOICE_KINDS = ("multichoice", "multichoicerated")
_CAPABILITY_CODES = ("nopermissions", "nopermission", "requireloginerror")
_NON_RESPONDENTS_PAGE = 1000


# --------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True, slots=True)
class Survey:
    """One Feedback activity. ``cmid`` is the number in its address (``view.php?id=<cmid>``)."""

    id: int
    course_id: int
    cmid: int
    name: str
    anonymous: bool
    multiple_submit: bool = False


@dataclass(frozen=True, slots=True)
class SurveyItem:
    """One question. ``options`` are the labels of a multiple-choice question, in order (option
    number n is ``options[n - 1]``); ``multiple`` is True when several may be ticked."""

    id: int
    label: str  # the item's short label, e.g. "area": the stable key of a question
    name: str  # the question as people read it
    kind: str  # Moodle's item type: multichoice, multichoicerated, textarea, textfield, numeric, ...
    position: int
    required: bool
    options: tuple[str, ...] = ()
    multiple: bool = False

    @property
    def is_choice(self) -> bool:
        return self.kind in _CHOICE_KINDS


@dataclass(frozen=True, slots=True)
class Answer:
    """One person's answer to one question: the chosen option labels, or the text."""

    item_id: int
    choices: tuple[str, ...] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class SurveyResponse:
    """One submitted answer sheet of a named person (Moodle user id)."""

    attempt_id: int
    user_id: int
    fullname: str
    submitted_at: int  # UTC epoch seconds
    answers: tuple[Answer, ...]

    def answer(self, item: SurveyItem) -> Answer | None:
        return next((a for a in self.answers if a.item_id == item.id), None)

    def choices(self, item: SurveyItem) -> tuple[str, ...]:
        found = self.answer(item)
        return found.choices if found else ()

    def text(self, item: SurveyItem) -> str:
        found = self.answer(item)
        return found.text if found else ""


@dataclass(frozen=True, slots=True)
class SurveyAnswers:
    """A named survey read whole: its questions and every answer sheet (each attempt once).

    ``moodle_total`` is the number of answer sheets Moodle counts; it differs from
    ``len(responses)`` only when Moodle listed fewer than it counted (logged as a warning)."""

    survey: Survey
    items: tuple[SurveyItem, ...]
    responses: tuple[SurveyResponse, ...]
    moodle_total: int

    def item(self, label: str) -> SurveyItem:
        """The question with this label (e.g. "area"); a clear error naming the labels there are."""
        for item in self.items:
            if item.label == label:
                return item
        there = ", ".join(repr(i.label) for i in self.items if i.label) or "none"
        raise SurveyUnusable(
            _('Feedback "{name}" (id {id}) has no question labelled {label!r}').format(
                name=self.survey.name, id=self.survey.id, label=label
            ),
            hint=_(
                "labels there: {there}; set the question's Label in the Feedback's Edit questions page"
            ).format(there=there),
        )

    def by_user(self) -> dict[int, SurveyResponse]:
        """Each person's latest answer sheet (a Feedback may allow several submissions)."""
        latest: dict[int, SurveyResponse] = {}
        for response in sorted(self.responses, key=lambda r: (r.submitted_at, r.attempt_id)):
            latest[response.user_id] = response
        return latest


@dataclass(frozen=True, slots=True)
class NonRespondent:
    user_id: int
    fullname: str


@dataclass(frozen=True, slots=True)
class SurveyAccess:
    """``mod_feedback_get_feedback_access_information`` for the token's user (doctor's check)."""

    can_view_reports: bool
    can_view_analysis: bool
    anonymous: bool
    is_open: bool
    is_empty: bool


# --------------------------------------------------------------------------------------------
# record builders (coercion: connector.moodle.coerce)


@read_record("Feedback")
def survey_from(data: Mapping[str, Any]) -> Survey:
    return Survey(
        id=to_int(data.get("id")),
        course_id=to_int(data.get("course")),
        cmid=to_int(data.get("coursemodule")),
        name=as_str(data.get("name")),
        anonymous=to_int(data.get("anonymous")) == 1,  # 1 anonymous, 2 user names recorded
        multiple_submit=to_bool(data.get("multiple_submit")),
    )


def choice_options(presentation: str) -> tuple[tuple[str, ...], bool]:
    """(option labels, several allowed) of a multiple-choice question's ``presentation``."""
    subtype, separator, listed = presentation.partition(_TYPE_SEPARATOR)
    if not separator:
        return (), False
    listed = listed.partition(_ADJUST_SEPARATOR)[0]
    labels = tuple(option.rpartition(_RATED_SEPARATOR)[2] for option in listed.split("|"))
    return labels, subtype.strip() == "c"


@read_record("Feedback question")
def item_from(data: Mapping[str, Any]) -> SurveyItem:
    kind = as_str(data.get("typ"))
    options, multiple = (
        choice_options(as_str(data.get("presentation"))) if kind in _CHOICE_KINDS else ((), False)
    )
    return SurveyItem(
        id=to_int(data.get("id")),
        label=as_str(data.get("label")),
        name=as_str(data.get("name")),
        kind=kind,
        position=to_int(data.get("position")),
        required=to_bool(data.get("required")),
        options=options,
        multiple=multiple,
    )


def decode_choices(item: SurveyItem, raw: str) -> tuple[str, ...]:
    """``"1|3"`` -> the labels of options 1 and 3. 0 (nothing chosen) is skipped; a number the
    question no longer has (an option deleted after the answers came in) is logged and skipped."""
    chosen: list[str] = []
    for part in raw.split("|"):
        number = whole_number(part) if part.strip() else 0
        if number == 0:
            continue
        if not 0 < number <= len(item.options):
            log.warning(
                "Feedback question %d (%s) has no option %d any more; answer part skipped",
                item.id,
                item.label,
                number,
            )
            continue
        chosen.append(item.options[number - 1])
    return tuple(chosen)


def _answer_from(item: SurveyItem, data: Mapping[str, Any]) -> Answer:
    raw = data.get("rawval")
    if raw is None or raw == "":
        return Answer(item.id)
    if item.is_choice:
        return Answer(item.id, choices=decode_choices(item, str(raw)))
    return Answer(item.id, text=html.unescape(str(raw)))  # Moodle sends text answers escaped


@read_record("Feedback answer")
def response_from(data: Mapping[str, Any], items: Mapping[int, SurveyItem]) -> SurveyResponse:
    answers = []
    for answer in dict_rows(data.get("responses")):
        item = items.get(to_int(answer.get("id")))
        if item is not None:  # a question added after the items were read: not asked of anyone yet
            answers.append(_answer_from(item, answer))
    return SurveyResponse(
        attempt_id=to_int(data.get("id")),
        user_id=to_int(data.get("userid")),
        fullname=as_str(data.get("fullname")),
        submitted_at=to_int(data.get("timemodified")),
        answers=tuple(answers),
    )


# --------------------------------------------------------------------------------------------
# fetchers


class FeedbackApi:
    """Reads Feedback activities through the client's ``call`` (typed errors, retries included)."""

    def __init__(self, client: MoodleClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"FeedbackApi({self.client!r})"

    def _call(self, function: str, params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            answer = self.client.call(function, params)
        except MoodlePermissionError as error:
            if error.errorcode not in _CAPABILITY_CODES:
                raise  # e.g. the function is not in the token's service: its own hint says so
            raise MoodlePermissionError(
                error.message, function=function, errorcode=error.errorcode, hint=capability_hint()
            ) from None
        return expect_dict(answer, function)

    # -- finding the survey -------------------------------------------------------------------

    def surveys(self, course_ids: Iterable[int]) -> list[Survey]:
        """The Feedback activities of these courses the token's user can see (course 1 is the
        front page). A course Moodle gives no access to is an error, not an empty list."""
        ids = [int(c) for c in course_ids]
        if not ids:
            return []
        data = self._call(GET_FEEDBACKS, {"courseids": ids})
        refused = [w for w in dict_rows(data.get("warnings")) if as_str(w.get("item")) == "course"]
        if refused:
            courses = ", ".join(as_str(w.get("itemid")) for w in refused)
            raise MoodlePermissionError(
                _(
                    "{get_feedbacks}: Moodle gives the token's user no access to course {courses} ({as_str})"
                ).format(
                    get_feedbacks=GET_FEEDBACKS, courses=courses, as_str=as_str(refused[0].get("message"))
                ),
                function=GET_FEEDBACKS,
                errorcode=as_str(refused[0].get("warningcode")) or None,
                hint=_("check the course id; {hint}").format(hint=capability_hint()),
            )
        return [survey_from(f) for f in dict_rows(data.get("feedbacks"))]

    def survey(self, course_id: int, *, cmid: int | None = None, feedback_id: int | None = None) -> Survey:
        """The Feedback of this course with this ``cmid`` (the id in its address) or instance id;
        with neither, the course's only Feedback."""
        found = self.surveys([course_id])
        chosen = [
            s
            for s in found
            if (cmid is None or s.cmid == cmid) and (feedback_id is None or s.id == feedback_id)
        ]
        if len(chosen) == 1:
            return chosen[0]
        listed = "; ".join(f'"{s.name}" (view.php?id={s.cmid})' for s in found)
        if not found:
            raise MoodleNotFound(
                _("course {course_id} has no Feedback the token's user can see").format(course_id=course_id),
                function=GET_FEEDBACKS,
                hint=_("check the course id (1 is the site's front page); {hint}").format(
                    hint=capability_hint()
                ),
            )
        wanted = (
            f"view.php?id={cmid}"
            if cmid is not None
            else f"id {feedback_id}"
            if feedback_id is not None
            else ""
        )
        if wanted and not chosen:
            raise MoodleNotFound(
                _("course {course_id} has no Feedback {wanted}").format(course_id=course_id, wanted=wanted),
                function=GET_FEEDBACKS,
                hint=_("the Feedbacks there: {listed}").format(listed=listed),
            )
        raise MoodleNotFound(
            _("course {course_id} has {n} Feedbacks: say which one").format(
                course_id=course_id, n=len(found)
            ),
            function=GET_FEEDBACKS,
            hint=_("give the number after view.php?id= of one of them: {listed}").format(listed=listed),
        )

    # -- reading it ---------------------------------------------------------------------------

    def items(self, survey: Survey) -> tuple[SurveyItem, ...]:
        data = self._call(GET_ITEMS, {"feedbackid": survey.id})
        refused = [
            w for w in dict_rows(data.get("warnings")) if as_str(w.get("warningcode")) in _CAPABILITY_CODES
        ]
        if refused:  # items [] and a warning: the questions are there, the user may not see them
            raise MoodlePermissionError(
                _(
                    '{get_items}: Moodle hides the questions of Feedback "{name}" (id {id}) '
                    "from the token's user ({as_str})"
                ).format(
                    get_items=GET_ITEMS,
                    name=survey.name,
                    id=survey.id,
                    as_str=as_str(refused[0].get("warningcode")),
                ),
                function=GET_ITEMS,
                errorcode=as_str(refused[0].get("warningcode")),
                hint=capability_hint(),
            )
        return tuple(sorted((item_from(i) for i in dict_rows(data.get("items"))), key=lambda i: i.position))

    def responses(
        self, survey: Survey, items: Sequence[SurveyItem]
    ) -> tuple[tuple[SurveyResponse, ...], int]:
        """Every named answer sheet, each once, and the number Moodle counts. One call with
        ``perpage`` 0: paging by surname loses and repeats sheets (quirk 12)."""
        refuse_anonymous(survey)
        data = self._call(GET_RESPONSES, {"feedbackid": survey.id, "page": 0, "perpage": 0})
        named = dict_rows(data.get("attempts"))
        total = to_int(data.get("totalattempts"))
        if not named and (dict_rows(data.get("anonattempts")) or to_int(data.get("totalanonattempts"))):
            refuse_anonymous(survey, anonymous=True)
        by_id = {item.id: item for item in items}
        seen: dict[int, SurveyResponse] = {}
        for attempt in named:
            response = response_from(attempt, by_id)
            seen.setdefault(response.attempt_id, response)
        if len(seen) < total:
            log.warning(
                'Feedback "%s" (id %d): Moodle counts %d answer sheets but listed %d',
                survey.name,
                survey.id,
                total,
                len(seen),
            )
        return tuple(seen.values()), total

    def answers(self, survey: Survey) -> SurveyAnswers:
        """The survey read whole: refused at once when it is anonymous."""
        refuse_anonymous(survey)
        items = self.items(survey)
        responses, total = self.responses(survey, items)
        return SurveyAnswers(survey=survey, items=items, responses=responses, moodle_total=total)

    def non_respondents(self, survey: Survey) -> tuple[NonRespondent, ...]:
        """The people who may answer and have not (Moodle refuses this for an anonymous survey).
        ``perpage`` 0 means 20 here, so the pages are walked, de-duplicated by user id."""
        refuse_anonymous(survey)

        def fetch(request: PageRequest) -> tuple[list[dict[str, Any]], PageInfo]:
            params = {
                "feedbackid": survey.id,
                "sort": "lastname",
                "page": request.number,
                "perpage": request.size,
            }
            data = self._call(GET_NON_RESPONDENTS, params)
            users = dict_rows(data.get("users"))
            return users, PageInfo(len(users), to_int(data.get("total")))

        found: dict[int, NonRespondent] = {}
        for users in paginate(fetch, ThroughLastPage(_NON_RESPONDENTS_PAGE)):
            for user in users:
                user_id = to_int(user.get("userid"))
                found.setdefault(user_id, NonRespondent(user_id, as_str(user.get("fullname"))))
        return tuple(found.values())

    def access(self, survey: Survey | int) -> SurveyAccess:
        """What the token's user may do with this Feedback; ``requireloginerror`` (no
        ``mod/feedback:view``) raises a permission error naming both capabilities."""
        feedback_id = survey.id if isinstance(survey, Survey) else int(survey)
        data = self._call(GET_ACCESS, {"feedbackid": feedback_id})
        return SurveyAccess(
            can_view_reports=to_bool(data.get("canviewreports")),
            can_view_analysis=to_bool(data.get("canviewanalysis")),
            anonymous=to_bool(data.get("isanonymous")),
            is_open=to_bool(data.get("isopen")),
            is_empty=to_bool(data.get("isempty")),
        )


def refuse_anonymous(survey: Survey, *, anonymous: bool | None = None) -> None:
    """An anonymous survey cannot tell who needs what: say so instead of returning nobody."""
    if survey.anonymous if anonymous is None else anonymous:
        raise SurveyUnusable(
            _('Feedback "{name}" (view.php?id={cmid}) is anonymous: it cannot tell who needs what').format(
                name=survey.name, cmid=survey.cmid
            ),
            hint=_(ANONYMOUS_HINT),
        )
