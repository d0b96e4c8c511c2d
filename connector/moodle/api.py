"""Typed fetchers over :class:`MoodleClient`: Moodle's answers -> frozen records.

JSON and XML answers give identical records: XML carries only text, so every field is coerced by
the known shape of each function's result (:mod:`.coerce`, :mod:`.builders`). Paged reads go
through :mod:`.pagination`; report rows are read by :mod:`.report`.

Warnings are read, never ignored: where Moodle answers a question other than the one asked (an
unsupported search key returns *everything* plus a warning), the fetcher raises instead.

Per-enrolment problems in :meth:`MoodleApi.course_completions` (``usernotenroled``,
``nocriteriaset``, ``cannotviewreport``, an unknown course or user) are yielded as errors for the
caller to record; auth, permission and availability errors end the whole fetch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from connector.errors import MoodleError, MoodleProtocolError, MoodleRequestError
from connector.i18n import _
from connector.moodle.builders import (
    cohort_from,
    cohort_members_from,
    course_completion_from,
    course_from,
    enrolled_user_from,
    not_site_course,
    person_from,
    report_page_from,
    site_info_from,
    user_course_from,
    warnings_of,
)
from connector.moodle.client import MoodleClient
from connector.moodle.coerce import as_list, as_str, expect_dict, expect_list, to_int
from connector.moodle.errormap import is_per_enrolment_error
from connector.moodle.functions import REPORT_FUNCTION
from connector.moodle.pagination import (
    FanOutPages,
    PageInfo,
    PageRequest,
    Paginator,
    UntilShortPage,
    UntilTotal,
    batched,
    paginate,
)
from connector.moodle.records import (
    Cohort,
    CohortMembers,
    Course,
    CourseCompletion,
    EnrolledUser,
    Person,
    ReportCompletion,
    ReportPage,
    SiteInfo,
    UserCourse,
)
from connector.moodle.report.calibration import Calibration, calibrate
from connector.moodle.report.conditions import ReportConditions, report_conditions_from
from connector.moodle.report.parsing import (
    ReportColumns,
    cell_text,
    column_index,
    link_id,
    row_time,
)
from connector.moodle.report.timezone import local_to_epoch

__all__ = ["MoodleApi", "ReportColumns"]

log = logging.getLogger("connector.moodle")

DEFAULT_COLUMNS = ReportColumns()


class MoodleApi:
    """The functions the connector uses, returning records from :mod:`connector.moodle.records`."""

    def __init__(self, client: MoodleClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"MoodleApi({self.client!r})"

    def _warnings_are_fatal(self, function: str, data: Mapping[str, Any]) -> None:
        warnings = warnings_of(data)
        if warnings:
            said = "; ".join(f"{as_str(w.get('warningcode'))}: {as_str(w.get('message'))}" for w in warnings)
            raise MoodleRequestError(
                _("{function}: Moodle answered with warnings that change the result: {said}").format(
                    function=function, said=said
                ),
                function=function,
                errorcode=as_str(warnings[0].get("warningcode")) or None,
            )

    @staticmethod
    def _log_warnings(function: str, data: Mapping[str, Any]) -> None:
        for warning in warnings_of(data):
            log.warning("%s: Moodle warning %s", function, as_str(warning.get("warningcode")))

    # -- site and courses ---------------------------------------------------------------------

    def site_info(self) -> SiteInfo:
        function = "core_webservice_get_site_info"
        return site_info_from(expect_dict(self.client.call(function), function))

    def courses(self, ids: Sequence[int] | None = None) -> list[Course]:
        """Courses by id (all when ids is None), without the site's front page (format "site")."""
        function = "core_course_get_courses"
        params = {"options": {"ids": [int(i) for i in ids]}} if ids is not None else None
        if ids is not None and not ids:
            return []
        data = expect_list(self.client.call(function, params), function)
        return [course_from(c) for c in data if not_site_course(c)]

    def courses_by_field(self, field: str | None = None, value: str | int | None = None) -> list[Course]:
        """``core_course_get_courses_by_field`` (field: id, ids, shortname, idnumber, category)."""
        function = "core_course_get_courses_by_field"
        params: dict[str, Any] = {}
        if field is not None:
            params = {"field": field, "value": value}
        data = expect_dict(self.client.call(function, params), function)
        self._warnings_are_fatal(function, data)
        return [course_from(c) for c in as_list(data.get("courses")) if not_site_course(c)]

    # -- people -------------------------------------------------------------------------------

    def enrolled_users(
        self,
        course_id: int,
        *,
        page_size: int = 1000,
        userfields: Sequence[str] | None = None,
        only_active: bool = False,
    ) -> Iterator[EnrolledUser]:
        """Every enrolled user of a course once, paged with limitfrom/limitnumber.

        ``only_active`` leaves out suspended and ended enrolments (Moodle's ``onlyactive``; it
        looks at the enrolment, not at whether the person's account is suspended)."""
        function = "core_enrol_get_enrolled_users"
        if page_size < 1:
            raise ValueError(_("page_size must be at least 1"))
        options: list[dict[str, Any]] = []
        if userfields:
            options.append({"name": "userfields", "value": ",".join(userfields)})
        if only_active:
            options.append({"name": "onlyactive", "value": 1})

        def fetch(request: PageRequest) -> tuple[list[Any], PageInfo]:
            limits = [
                {"name": "limitfrom", "value": request.offset},
                {"name": "limitnumber", "value": request.size},
            ]
            params = {"courseid": int(course_id), "options": options + limits}
            page = expect_list(self.client.call(function, params), function)
            return page, PageInfo(len(page))

        seen: set[int] = set()
        for page in paginate(fetch, UntilShortPage(page_size)):
            for row in page:
                if isinstance(row, dict) and to_int(row.get("id")) not in seen:
                    seen.add(to_int(row.get("id")))  # a user enrolled mid-paging can shift rows
                    yield enrolled_user_from(int(course_id), row)

    def enrolled_users_of(
        self,
        course_ids: Iterable[int],
        *,
        page_size: int = 1000,
        userfields: Sequence[str] | None = None,
        only_active: bool = False,
    ) -> Iterator[tuple[int, list[EnrolledUser]]]:
        """(course_id, its enrolled users) for each course, courses read concurrently, in input order."""
        return self.client.map(
            lambda course_id: (
                course_id,
                list(
                    self.enrolled_users(
                        course_id, page_size=page_size, userfields=userfields, only_active=only_active
                    )
                ),
            ),
            course_ids,
        )

    def users_by_field(
        self, field: str, values: Iterable[str | int], *, batch_size: int = 100
    ) -> list[Person]:
        """People by id, idnumber, username or email; carries ``suspended``."""
        wanted = [str(v) for v in values]
        people: list[Person] = []
        for found in self.client.map(
            lambda batch: self.users_batch(field, list(batch)), batched(wanted, batch_size)
        ):
            people.extend(found)
        return people

    def users_batch(self, field: str, batch: Sequence[str | int]) -> list[Person]:
        """One ``core_user_get_users_by_field`` call (the caller keeps the batch within
        ``max_input_vars``)."""
        function = "core_user_get_users_by_field"
        data = expect_list(
            self.client.call(function, {"field": field, "values": [str(v) for v in batch]}), function
        )
        return [person_from(row) for row in data if isinstance(row, dict)]

    # -- completions --------------------------------------------------------------------------

    def course_completion(self, course_id: int, user_id: int) -> CourseCompletion:
        function = "core_completion_get_course_completion_status"
        data = expect_dict(
            self.client.call(function, {"courseid": int(course_id), "userid": int(user_id)}), function
        )
        self._log_warnings(function, data)
        return course_completion_from(int(course_id), int(user_id), data)

    def course_completions(
        self, pairs: Iterable[tuple[int, int]]
    ) -> Iterator[CourseCompletion | MoodleError]:
        """Completion status per (course_id, user_id), concurrently, in input order."""
        return self.client.map(self._completion_or_error, pairs)

    def _completion_or_error(self, pair: tuple[int, int]) -> CourseCompletion | MoodleError:
        course_id, user_id = pair
        try:
            return self.course_completion(course_id, user_id)
        except MoodleError as error:
            if is_per_enrolment_error(error):
                return error
            raise

    def user_courses(self, user_id: int) -> list[UserCourse]:
        function = "core_enrol_get_users_courses"
        data = expect_list(self.client.call(function, {"userid": int(user_id)}), function)
        return [user_course_from(int(user_id), row) for row in data if isinstance(row, dict)]

    def users_courses(self, user_ids: Iterable[int]) -> Iterator[tuple[int, list[UserCourse]]]:
        return self.client.map(lambda user_id: (user_id, self.user_courses(user_id)), user_ids)

    # -- cohorts ------------------------------------------------------------------------------

    def cohorts(self) -> list[Cohort]:
        function = "core_cohort_get_cohorts"
        data = expect_list(self.client.call(function), function)
        return [cohort_from(c) for c in data if isinstance(c, dict)]

    def cohort_members(self, cohort_ids: Iterable[int]) -> list[CohortMembers]:
        function = "core_cohort_get_cohort_members"
        ids = [int(i) for i in cohort_ids]
        if not ids:
            return []
        data = expect_list(self.client.call(function, {"cohortids": ids}), function)
        return [cohort_members_from(c) for c in data if isinstance(c, dict)]

    # -- report builder -----------------------------------------------------------------------

    def reports(self, *, per_page: int = 100) -> list[tuple[int, str]]:
        """(id, name) of the custom reports the token's user can see."""
        function = "core_reportbuilder_list_reports"

        def fetch(request: PageRequest) -> tuple[list[dict[str, Any]], PageInfo]:
            params = {"page": request.number, "perpage": request.size}
            data = expect_dict(self.client.call(function, params), function)
            rows = [r for r in as_list(data.get("reports")) if isinstance(r, dict)]
            return rows, PageInfo(len(rows))

        return [
            (to_int(r.get("id")), as_str(r.get("name")))
            for rows in paginate(fetch, UntilShortPage(per_page))
            for r in rows
        ]

    def report_conditions(self, report_id: int) -> ReportConditions:
        """The report's conditions as its editor shows them (``core_reportbuilder_reports_get``,
        editmode 1; needs edit rights on the report). See :mod:`connector.moodle.report.conditions`."""
        function = "core_reportbuilder_reports_get"
        data = expect_dict(self.client.call(function, {"reportid": int(report_id), "editmode": 1}), function)
        conditions = report_conditions_from(int(report_id), data)
        if conditions is None:
            raise MoodleProtocolError(
                _("{function}: report {report_id} came without its conditions").format(
                    function=function, report_id=report_id
                ),
                function=function,
            )
        return conditions

    def report_pages(self, report_id: int, *, per_page: int = 1000) -> Iterator[ReportPage]:
        """Pages of a custom report until all ``totalrowcount`` rows are read."""
        return self._report_pages(report_id, UntilTotal(per_page))

    def report_pages_concurrently(self, report_id: int, *, per_page: int = 1000) -> Iterator[ReportPage]:
        """Every row of a report, its pages read side by side (in order) up to the worker limit.

        A first read of ``PROBE_ROWS`` rows gives ``totalrowcount`` (and is the whole answer when
        it holds every row, as a nightly's delta does); the pages are then sized so that every
        worker gets one (never larger than ``per_page``): the server's cost grows with rows, so
        equal pages read in parallel finish soonest. Rows added while reading are read after.
        """
        paginator = FanOutPages(per_page, self.client.settings.max_concurrency)
        return self._report_pages(report_id, paginator, concurrent=True)

    def _report_pages(
        self, report_id: int, paginator: Paginator, *, concurrent: bool = False
    ) -> Iterator[ReportPage]:
        def fetch(request: PageRequest) -> tuple[ReportPage, PageInfo]:
            page = self.report_page(report_id, request.number, request.size)
            return page, PageInfo(len(page.rows), page.total_rows)

        return paginate(fetch, paginator, fan_out=self.client.map if concurrent else None)

    def report_page(self, report_id: int, page: int, per_page: int) -> ReportPage:
        params = {"reportid": int(report_id), "page": page, "perpage": per_page}
        return report_page_from(report_id, page, self.client.call(REPORT_FUNCTION, params), REPORT_FUNCTION)

    def report_completions(
        self,
        report_id: int,
        *,
        tz: ZoneInfo,
        per_page: int = 1000,
        columns: ReportColumns = DEFAULT_COLUMNS,
        concurrent: bool = False,
    ) -> Iterator[ReportCompletion]:
        """Report rows as facts: ids from link markup, times parsed in ``tz`` (minute precision).

        Rows without a user are skipped: the "Course participants" source also lists enrolment
        methods nobody uses (guest access, self enrolment) as rows with empty user cells.
        ``concurrent`` reads the pages side by side (:meth:`report_pages_concurrently`).
        """
        pages = self.report_pages_concurrently if concurrent else self.report_pages
        for page in pages(report_id, per_page=per_page):
            index = column_index(page.headers, columns, report_id)
            # positions looked up once a page, not per cell: hundreds of thousands of rows
            at_user, at_username, at_course, at_idnumber, at_time = (
                index.get(role, -1)
                for role in ("user", "username", "course", "course_idnumber", "time_completed")
            )
            for row in page.rows:
                width = len(row)
                user_cell = row[at_user] if 0 <= at_user < width else ""
                user_id = link_id(user_cell, "/user/profile.php") if user_cell else None
                username = cell_text(row[at_username]) if 0 <= at_username < width else ""
                if user_id is None and not username:
                    continue  # an enrolment method with nobody in it (the source joins them in)
                local = row_time(row, index, report_id) if 0 <= at_time < width and row[at_time] else None
                course_cell = row[at_course] if 0 <= at_course < width else ""
                yield ReportCompletion(
                    user_id=user_id,
                    username=username,
                    course_id=link_id(course_cell, "/course/view.php") if course_cell else None,
                    course_idnumber=cell_text(row[at_idnumber]) if 0 <= at_idnumber < width else "",
                    completed_at=None if local is None else local_to_epoch(local, tz),
                )

    def calibrate_report(
        self,
        report_id: int,
        *,
        preferred: str | None = None,
        per_page: int = 1000,
        columns: ReportColumns = DEFAULT_COLUMNS,
        site: SiteInfo | None = None,
    ) -> Calibration:
        """The IANA zone the report writes its times in, and the exact times that decided it (the
        sync remembers both); see :mod:`connector.moodle.report.calibration`. Pass ``site`` when
        the caller already read the site info, to save the call."""
        return calibrate(
            self,
            report_id,
            preferred=preferred,
            per_page=per_page,
            columns=columns,
            site=site or self.site_info(),
        )
