"""Completions behind suspended or ended enrolments, and deleted people, end to end.

A real Moodle keeps the completion of a person whose enrolment was later suspended or ended, but
shows it only through a custom report without the default "Enrolment status = Active" condition
(4.5 capture, quirk 18). The demo emulator's report is set up as the README says (condition
removed); these tests put it back where they need the default.
"""

from __future__ import annotations

import json

import pytest

from connector.emulator.functions import SERVICE_FUNCTIONS
from tests.helpers import Site
from tests.test_end_to_end import person_statuses, run_cli, sync

ITSEC = 2
U001, U005 = 3, 7  # both completed ITSEC-CZ recently: compliant while their enrolment is active


def make_inactive(site: Site) -> None:
    site.emulator.suspend_enrolment(U001, ITSEC)  # type: ignore[attr-defined]
    site.emulator.end_enrolment(U005, ITSEC)  # type: ignore[attr-defined]


def evidence_courses(site: Site, username: str) -> set[str]:
    code, out, err = run_cli(site, "person", username, "--format", "json")
    assert code == 0, err
    return {e["course"] for e in json.loads(out)["evidence"]}


def test_report_path_without_the_condition_records_completions_behind_inactive_enrolments(
    demo_site: Site,
) -> None:
    make_inactive(demo_site)
    code, out, err = sync(demo_site, "--path", "report")
    assert code == 0, err
    assert "inactive" not in out + err  # the report path reads them: nothing to warn about
    assert person_statuses(demo_site, "u001")["itsec-cz"] == "compliant"  # suspended enrolment
    assert person_statuses(demo_site, "u005")["itsec-cz"] == "compliant"  # ended enrolment


def test_the_default_condition_hides_them_as_on_a_real_moodle(demo_site: Site) -> None:
    make_inactive(demo_site)
    demo_site.emulator.add_report_condition()  # type: ignore[attr-defined]
    code, _, err = sync(demo_site, "--path", "report")
    assert code == 0, err
    assert person_statuses(demo_site, "u001")["itsec-cz"] == "missing"
    code, _, err = run_cli(demo_site, "person", "u005")  # ITSEC-CZ was their only course
    assert code == 1 and err.splitlines()[0] == "error: no person with username 'u005' in the ledger"


@pytest.mark.parametrize("path", ["per_user", "per_course"])
def test_a_fallback_sync_says_how_many_enrolments_it_cannot_read(demo_site: Site, path: str) -> None:
    make_inactive(demo_site)
    code, out, err = sync(demo_site, "--path", path)
    assert code == 0, err
    assert err.splitlines() == [
        "warning: 2 enrolments in mapped courses are suspended or have ended in Moodle; the completions "
        "behind them cannot be read on the per_user/per_course paths, only through the report path with "
        "the report's 'Enrolment status' condition removed (README: Setting up the Moodle side, step 5)"
    ]
    assert "; 2 inactive enrolments (completions unreadable on this path); " in out
    assert person_statuses(demo_site, "u001")["itsec-cz"] == "missing"  # what Moodle lets this path see


def test_a_fallback_sync_with_no_inactive_enrolment_still_gives_the_number(demo_site: Site) -> None:
    code, out, err = sync(demo_site, "--path", "per_course")
    assert code == 0, err
    assert "; 0 inactive enrolments (completions unreadable on this path); " in out


def test_a_fallback_sync_does_not_ask_for_what_moodle_refuses(demo_site: Site) -> None:
    assert sync(demo_site, "--path", "per_course")[0] == 0
    enrolled = demo_site.emulator.call_counts()["core_completion_get_course_completion_status"]  # type: ignore[attr-defined]
    demo_site.emulator.reset_counts()  # type: ignore[attr-defined]
    make_inactive(demo_site)
    assert sync(demo_site, "--path", "per_course", "--full")[0] == 0
    calls = demo_site.emulator.call_counts()  # type: ignore[attr-defined]
    assert calls["core_completion_get_course_completion_status"] == enrolled - 2


def doctor_lines(site: Site) -> tuple[int, list[str]]:
    code, out, _ = run_cli(site, "doctor")
    return code, out.splitlines()


def test_doctor_passes_a_report_without_the_condition(demo_site: Site) -> None:
    code, lines = doctor_lines(demo_site)
    assert code == 0, lines
    assert (
        "[ok  ] report conditions: report 1 lists inactive enrolments too (no 'Enrolment status' condition)"
        in lines
    )


def test_doctor_says_exactly_what_to_remove_from_a_report_that_hides_inactive_enrolments(
    demo_site: Site,
) -> None:
    demo_site.emulator.add_report_condition()  # type: ignore[attr-defined]
    code, lines = doctor_lines(demo_site)
    assert code == 1
    at = lines.index(
        "[FAIL] report conditions: report 1 hides suspended and ended enrolments (condition 'Enrolment •"
    )
    assert lines[at : at + 6] == [
        "[FAIL] report conditions: report 1 hides suspended and ended enrolments (condition 'Enrolment •",
        "       Status': is equal to Active); the completions behind them are missed",
        "       -> in Moodle open Site administration > Reports > Report builder > Custom reports, edit",
        "          report 1, open the 'Conditions' panel and delete the condition 'Enrolment • Status' (trash",
        "          icon); then run `connector sync --full`",
        "1 of 11 checks failed: report conditions",
    ]


def test_doctor_asks_for_reports_get_when_the_service_lacks_it(demo_site: Site) -> None:
    narrow = "narrow" + demo_site.token[6:]
    functions = [f for f in SERVICE_FUNCTIONS if f != "core_reportbuilder_reports_get"]
    demo_site.emulator.add_token(narrow, kind="full", functions=functions)  # type: ignore[attr-defined]
    (demo_site.tmp / "token").write_text(narrow + "\n", encoding="utf-8")
    code, lines = doctor_lines(demo_site)
    assert code == 1
    at = lines.index(
        "[FAIL] report conditions: cannot tell whether report 1 hides suspended and ended enrolments:"
    )
    assert lines[at : at + 5] == [
        "[FAIL] report conditions: cannot tell whether report 1 hides suspended and ended enrolments:",
        "       core_reportbuilder_reports_get is not in the web service",
        "       -> add core_reportbuilder_reports_get to the external service (Site administration > Server >",
        "          Web services > External services > (your service) > Functions)",
        "1 of 11 checks failed: report conditions",
    ]
