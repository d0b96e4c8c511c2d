"""`connector doctor`: everything a sync needs, checked one by one, each with what to do."""

from __future__ import annotations

import os
import stat
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connector.config import Config
from connector.errors import ConnectorError, ExitStatus, MoodleError, Problem
from connector.i18n import _, ngettext
from connector.moodle.functions import (
    DELTA_FUNCTIONS,
    REPORT_FUNCTION,
    REPORTS_GET,
    REQUIRED_FUNCTIONS,
    add_to_service_hint,
    optional_functions,
)

WIDTH = 100  # output is wrapped here: readable in a terminal and in a cron mail
MAX_ITEMS = 10  # problems listed under one check; `connector mappings check` lists them all

if TYPE_CHECKING:
    from connector.mapping import Mappings
    from connector.moodle.api import MoodleApi
    from connector.moodle.client import MoodleClient
    from connector.moodle.records import SiteInfo


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None
    problems: tuple[Problem, ...] = ()  # each one listed on its own line(s) under the check
    exit_code: int = ExitStatus.FAILED  # what a failure means: BAD_INPUT for configuration or mappings


def _failed(name: str, exc: ConnectorError, hint: str | None = None) -> Check:
    """A failed check from an error: its problems one by one, or its message."""
    problems = tuple(getattr(exc, "problems", ()) or ())
    if problems:
        count = len(problems)
        return Check(
            name,
            False,
            ngettext("{n} problem", "{n} problems", count).format(n=count),
            hint or exc.hint,
            problems,
            exc.exit_code,
        )
    return Check(name, False, exc.message, hint or exc.hint, (), exc.exit_code)


def format_check(check: Check, width: int = WIDTH) -> list[str]:
    """A check as wrapped lines: the verdict, then each problem and the hint indented below it."""
    mark = "ok  " if check.ok else "FAIL"
    lines = _wrap(f"{check.name}: {check.detail}", f"[{mark}] ", " " * 7, width)
    for problem in check.problems[:MAX_ITEMS]:
        lines += _wrap(problem.what(), " " * 7 + "- ", " " * 9, width)
        if problem.hint:
            lines += _wrap(problem.hint, " " * 9 + _("hint: "), " " * 15, width)
    if len(check.problems) > MAX_ITEMS:
        lines.append(" " * 7 + _("- and {n} more").format(n=len(check.problems) - MAX_ITEMS))
    if check.hint and not check.ok:
        lines += _wrap(check.hint, " " * 7 + "-> ", " " * 10, width)
    return lines


def summary(checks: Sequence[Check]) -> str:
    failed = [c.name for c in checks if not c.ok]
    if not failed:
        return _("all {n} checks passed").format(n=len(checks))
    return _("{failed} of {n} checks failed: {names}").format(
        failed=len(failed), n=len(checks), names=", ".join(failed)
    )


def exit_code(checks: Sequence[Check]) -> int:
    """0 all passed; 2 a configuration or mapping problem (fix those first); 1 anything else."""
    codes = {c.exit_code for c in checks if not c.ok}
    if not codes:
        return ExitStatus.OK
    return ExitStatus.BAD_INPUT if ExitStatus.BAD_INPUT in codes else ExitStatus.FAILED


_KEEP = "\u00a0"  # textwrap breaks only at ASCII white space


def _wrap(text: str, first: str, rest: str, width: int) -> list[str]:
    # Paths, URLs and `commands` are never split: a long one overflows rather than breaking.
    parts = " ".join(text.split()).split("`")
    text = "`".join(p.replace(" ", _KEEP) if i % 2 else p for i, p in enumerate(parts))
    lines = textwrap.wrap(
        text,
        width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]
    return [line.replace(_KEEP, " ") for line in lines]


def run_checks(config: Config) -> Iterator[Check]:
    from connector.mapping import load_mappings

    yield Check(_("config"), True, config.describe_source())
    try:
        mappings = load_mappings(config.mappings_dir)
        yield Check(
            _("mappings"),
            True,
            _("{mappings_dir}: {n} requirements").format(
                mappings_dir=config.mappings_dir, n=len(mappings.requirements)
            ),
        )
    except ConnectorError as exc:
        mappings = None
        yield _failed(
            _("mappings"),
            exc,
            _("run `connector mappings check --mappings {directory}` for every problem").format(
                directory=config.mappings_dir
            ),
        )
    yield _ledger_check(config)
    exposure = config.token_file_exposure()
    if exposure:  # shown only when wrong: a private token file is the normal case
        yield Check(
            _("token file"),
            False,
            exposure.split(";")[0],
            _("chmod 600 {token_file}").format(token_file=config.token_file),
        )
    try:
        settings = config.client_settings()
    except ConnectorError as exc:
        yield _failed(_("moodle settings"), exc)
        return
    from connector.moodle.api import MoodleApi
    from connector.moodle.client import MoodleClient

    try:
        with MoodleClient(settings) as client:
            api = MoodleApi(client)
            site = api.site_info()
            yield Check(_("reachable"), True, _("{shown_url} answered").format(shown_url=settings.shown_url))
            yield Check(
                _("moodle release"),
                True,
                _("{release} (version {version})").format(release=site.release, version=site.version),
            )
            yield Check(
                _("token user"),
                True,
                _("{username} (id {userid}), language {lang}").format(
                    username=site.username, userid=site.userid, lang=site.lang
                ),
                None,
            )
            missing = [f for f in REQUIRED_FUNCTIONS if not site.can_call(f)]
            yield Check(
                _("required functions"),
                not missing,
                _("all present") if not missing else _("missing: {names}").format(names=", ".join(missing)),
                add_to_service_hint(missing),
            )
            for optional in optional_functions():
                if not site.can_call(optional.name):
                    yield Check(
                        _("optional {name}").format(name=optional.name),
                        True,
                        _("not in the service; {used_for} needs it").format(used_for=optional.used_for),
                    )
            if mappings is not None and not missing:
                yield _capability_probe(api, mappings)
            if config.report_id is not None:
                if site.lang != "en":
                    yield Check(
                        _("report"),
                        False,
                        _("the token user's language is '{lang}'").format(lang=site.lang),
                        _("set that user's preferred language to English so report dates can be read"),
                    )
                elif site.can_call(REPORT_FUNCTION):
                    page = next(iter(api.report_pages(config.report_id, per_page=1)), None)
                    yield Check(
                        _("report"),
                        True,
                        _("report {report_id}: {value} rows, columns {value2}").format(
                            report_id=config.report_id,
                            value=page.total_rows if page else 0,
                            value2=list(page.headers) if page else [],
                        ),
                    )
                    yield report_filter_check(client, site, config.report_id)
                    yield report_conditions_check(api, site, config.report_id)
            if config.needs_feedback_cmid is not None:
                yield needs_survey_check(client, site, config)
    except ConnectorError as exc:
        yield Check(_("moodle"), False, exc.message, exc.hint)


def needs_survey_check(client: MoodleClient, site: SiteInfo, config: Config) -> Check:
    """The configured needs survey: its functions in the service, both capabilities (the survey is
    found, its questions shown, the answers reportable), named and holding the configured question."""
    from connector.moodle.feedback import CAPABILITY_HINT, SURVEY_FUNCTIONS, FeedbackApi

    missing = [f for f in SURVEY_FUNCTIONS if not site.can_call(f)]
    if missing:
        return Check(
            _("needs survey"),
            False,
            _("missing: {names}").format(names=", ".join(missing)),
            add_to_service_hint(missing),
        )
    api = FeedbackApi(client)
    where = f"course {config.needs_feedback_course}, view.php?id={config.needs_feedback_cmid}"
    try:
        survey = api.survey(config.needs_feedback_course, cmid=config.needs_feedback_cmid)
        access = api.access(survey)
        if not access.can_view_reports:
            return Check(
                _("needs survey"),
                False,
                _('the token\'s user may not read the answers of "{name}" ({where})').format(
                    name=survey.name, where=where
                ),
                CAPABILITY_HINT,
            )
        answers = api.answers(survey)
        answers.item(config.needs_feedback_question)
    except ConnectorError as exc:
        return Check(_("needs survey"), False, exc.message, exc.hint)
    return Check(
        _("needs survey"),
        True,
        _('"{name}" ({where}): {n} answers').format(name=survey.name, where=where, n=len(answers.responses)),
    )


def _capability_probe(api: MoodleApi, mappings: Mappings) -> Check:
    """Read one enrolment and its completion: a token lacking capabilities fails here, not at 2 am."""
    from connector.evaluation import resolve_courses
    from connector.moodle.errormap import is_per_enrolment_error

    try:
        courses = api.courses()
    except ConnectorError as exc:
        return Check(_("capabilities"), False, exc.message, exc.hint)
    resolved = resolve_courses(mappings, courses)
    tracked = [c for c in courses if c.id in set(resolved.values()) and c.completion_enabled]
    if not tracked:
        return Check(
            _("capabilities"),
            False,
            _("no mapped course with completion tracking exists in Moodle"),
            _("run `connector courses` to see which mapped courses are missing or not tracked"),
        )
    course = tracked[0]
    try:
        first = next(iter(api.enrolled_users(course.id, page_size=1)), None)
        if first is not None:
            try:
                api.course_completion(course.id, first.person.id)
            except ConnectorError as exc:
                if not (isinstance(exc, MoodleError) and is_per_enrolment_error(exc)):
                    raise
    except ConnectorError as exc:
        return Check(_("capabilities"), False, exc.message, exc.hint)
    return Check(
        _("capabilities"),
        True,
        _("read enrolments and a completion of course {id} ({value})").format(
            id=course.id, value=course.idnumber or course.shortname
        ),
    )


def _ledger_check(config: Config) -> Check:
    path = config.ledger_path
    if not path.exists():
        parent = path.parent if str(path.parent) else None
        writable = os.access(parent or ".", os.W_OK)
        return Check(
            _("ledger"),
            writable,
            _("{path} does not exist yet; the first sync creates it (mode 0600)").format(path=path),
            None
            if writable
            else _("make {parent} writable for the connector's user").format(parent=path.parent),
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    allowed = 0o640 if config.ledger_group else 0o600  # what every writing open sets
    private = mode & ~allowed == 0
    return Check(
        _("ledger"),
        private,
        _("{path} (mode {mode:o})").format(path=path, mode=mode),
        None
        if private
        else _("it holds personal data: chmod {allowed:o} {path} (`connector upgrade` resets it)").format(
            allowed=allowed, path=path
        ),
    )


_REPORT_EDITOR = "Site administration > Reports > Report builder > Custom reports"


def report_conditions_check(api: MoodleApi, site: SiteInfo, report_id: int) -> Check:
    """Does the report still hide suspended and ended enrolments (the default "Enrolment status =
    Active" condition of a "Course participants" report)? Their completions would be missing.

    Read from the report editor's view (core_reportbuilder_reports_get, editmode 1), never from
    retrieve_report's conditiondata, which keeps its old value after the condition is deleted."""
    name = _("report conditions")
    if not site.can_call(REPORTS_GET):
        return Check(
            name,
            False,
            _(
                "cannot tell whether report {report_id} hides suspended and ended enrolments: "
                "{reports_get} is not in the web service"
            ).format(report_id=report_id, reports_get=REPORTS_GET),
            add_to_service_hint([REPORTS_GET]),
        )
    try:
        conditions = api.report_conditions(report_id)
    except ConnectorError as exc:
        return Check(
            name,
            False,
            _("cannot read the conditions of report {report_id}: {message}").format(
                report_id=report_id, message=exc.message
            ),
            _("the token's user needs edit rights on the report (moodle/reportbuilder:editall)"),
        )
    hides = conditions.hides_inactive_enrolments
    if hides is False:
        return Check(
            name,
            True,
            _("report {report_id} lists inactive enrolments too (no 'Enrolment status' condition)").format(
                report_id=report_id
            ),
        )
    remove = _(
        "in Moodle open {editor}, edit report {report_id}, open the 'Conditions' panel "
        "and delete the condition 'Enrolment • Status' (trash icon); then run `connector sync --full`"
    ).format(editor=_REPORT_EDITOR, report_id=report_id)
    if hides is None:
        return Check(
            name,
            False,
            _(
                "report {report_id}: the editor's view is contradictory about the 'Enrolment "
                "status' condition"
            ).format(report_id=report_id),
            remove,
        )
    status = conditions.condition("enrolment:status")
    rule = f": {status.operator_text.lower()} {status.value_text}".rstrip() if status else ""
    return Check(
        name,
        False,
        _(
            "report {report_id} hides suspended and ended enrolments (condition 'Enrolment • "
            "Status'{rule}); the completions behind them are missed"
        ).format(report_id=report_id, rule=rule),
        remove,
    )


def report_filter_check(client: MoodleClient, site: SiteInfo, report_id: int) -> Check:
    """Can nightly runs read only recent completions? Both filter functions in the service and
    the report's "Time completed" filter (seen in the filters form its viewers get). Never a
    failure: without them a nightly run reads every row, correct and only slower."""
    from connector.moodle.report.filters import TIME_COMPLETED, report_filters

    name = _("report delta reads")
    add_filter = _(
        "to read only recent completions at night, open {place}, edit report {report_id} and on "
        "its 'Filters' tab add 'Course completion > Time completed'"
    ).format(place=_REPORT_EDITOR, report_id=report_id)
    missing = [f for f in DELTA_FUNCTIONS if not site.can_call(f)]
    carried: bool | None = None
    problem: str | None = None
    if not site.can_call(REPORTS_GET):
        problem = _(
            "cannot tell whether report {report_id} carries the 'Time completed' filter: "
            "{reports_get} is not in the web service"
        ).format(report_id=report_id, reports_get=REPORTS_GET)
    else:
        try:
            carried = TIME_COMPLETED in report_filters(client, report_id)
        except ConnectorError as exc:
            problem = _("cannot read the filters of report {report_id}: {message}").format(
                report_id=report_id, message=exc.message
            )
    if missing:
        what = add_to_service_hint(missing)
        if not carried:
            what += _(", and the report needs its 'Time completed' filter")
        return Check(
            name,
            True,
            _(
                "nightly runs read every row of report {report_id}: {names} not in the web service; {what}"
            ).format(report_id=report_id, names=", ".join(missing), what=what),
        )
    if problem is not None:
        return Check(name, True, problem)
    if carried:
        return Check(
            name,
            True,
            _(
                "report {report_id} carries the 'Time completed' filter: nightly runs read only "
                "the completions since the last run"
            ).format(report_id=report_id),
        )
    return Check(
        name,
        True,
        _("report {report_id} has no 'Time completed' filter, so nightly runs read every row; {what}").format(
            report_id=report_id, what=add_filter
        ),
    )
