"""The one catalogue of Moodle functions (connector/moodle/functions.py) and what is derived from it:
the README's setup lists, the sync's and doctor's missing-function lines, the hints, the emulator."""

from __future__ import annotations

import ast
import re

from click.testing import CliRunner

from connector.cli import main
from connector.emulator.functions import FUNCTIONS, SERVICE_FUNCTIONS
from connector.moodle import functions as catalogue
from connector.moodle.errormap import error_from_payload
from connector.moodle.functions import CATALOGUE, Need
from connector.suggest import did_you_mean
from tests.helpers import ANCHOR, REPO, Site

SETUP_STEP = re.compile(r"^(\d)\. (.*?)(?=^\d\. |\Z)", re.MULTILINE | re.DOTALL)
CAPABILITY = re.compile(r"`([a-z]+/[a-z]+:[a-z]+)`")
FUNCTION = re.compile(r"`(core_[a-z_]+)`")


def setup_steps() -> dict[int, str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Setting up the Moodle side", 1)[1].split("\n## ", 1)[0]
    return {int(number): text for number, text in SETUP_STEP.findall(section)}


def run_cli(site: Site, *args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["--config", str(site.config_path), *args], catch_exceptions=False)
    return result.exit_code, (result.stdout + result.stderr).splitlines()


def narrow_token(site: Site, functions: tuple[str, ...]) -> None:
    narrow = "narrow" + site.token[6:]
    site.emulator.add_token(narrow, kind="full", functions=functions)  # type: ignore[attr-defined]
    (site.tmp / "token").write_text(narrow + "\n", encoding="utf-8")


# -- the README follows the catalogue ------------------------------------------------------------
def test_readme_setup_step_2_names_exactly_the_capabilities_of_the_catalogue() -> None:
    assert sorted(set(CAPABILITY.findall(setup_steps()[2]))) == sorted(catalogue.role_capabilities())


def test_readme_setup_step_3_names_exactly_the_functions_a_sync_may_call() -> None:
    assert sorted(set(FUNCTION.findall(setup_steps()[3]))) == sorted(catalogue.setup_functions())


def test_readme_names_the_functions_only_doctor_uses_with_their_capabilities() -> None:
    step_5 = setup_steps()[5]
    for function in (f for f in CATALOGUE if f.need is Need.DOCTOR):
        assert f"`{function.name}`" in step_5


def test_readme_survey_section_names_exactly_the_survey_functions_and_their_capabilities() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The yearly needs survey", 1)[1].split("\n#", 1)[0]
    survey = [f for f in CATALOGUE if f.need is Need.SURVEY]
    assert sorted(set(re.findall(r"`(mod_feedback_[a-z_]+)`", section))) == sorted(f.name for f in survey)
    named = set(CAPABILITY.findall(section))
    assert {c for f in survey for c in f.capabilities} - named == set()


# -- the code follows the catalogue --------------------------------------------------------------
def test_every_function_the_moodle_package_calls_is_in_the_catalogue_and_no_other() -> None:
    called: set[str] = set()
    for path in (REPO / "connector" / "moodle").rglob("*.py"):
        if path.name == "functions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                called.update(re.findall(r"\b(?:core|mod)_[a-z]+_[a-z_]+\b", node.value))
    assert called - {f.name for f in CATALOGUE} == set()
    named_here = {f.name for f in CATALOGUE}
    assert named_here == called | {catalogue.REPORTS_GET, catalogue.REPORT_FUNCTION}


def test_the_emulator_implements_and_grants_every_catalogue_function() -> None:
    names = {f.name for f in CATALOGUE}
    assert names - set(FUNCTIONS) == set()
    assert names - set(SERVICE_FUNCTIONS) == set()


# -- the hints, written once ---------------------------------------------------------------------
def test_a_function_missing_from_the_service_names_where_to_add_it() -> None:
    error = error_from_payload(
        "core_cohort_get_cohorts",
        {"exception": "webservice_access_exception", "errorcode": "accessexception", "message": "Access"},
    )
    assert str(error) == (
        "core_cohort_get_cohorts is not allowed for this token (accessexception)\n"
        "  hint: add core_cohort_get_cohorts to the external service (Site administration > Server > "
        "Web services > External services > (your service) > Functions)"
    )


def test_a_capability_error_names_the_measured_and_working_capabilities_of_the_function() -> None:
    error = error_from_payload(
        "core_cohort_get_cohorts",
        {"exception": "required_capability_exception", "errorcode": "nopermissions", "message": "No"},
    )
    assert error.hint == (
        "the token's user lacks capabilities; give it a system role with webservice/rest:use, "
        "moodle/cohort:view (Site administration > Users > Permissions > Define roles)"
    )


def test_sync_without_a_required_function_says_which_and_where_to_add_it(demo_site: Site) -> None:
    narrow_token(
        demo_site, tuple(f for f in catalogue.REQUIRED_FUNCTIONS if f != "core_user_get_users_by_field")
    )
    code, lines = run_cli(demo_site, "sync", "--as-of", ANCHOR.isoformat(), "--quiet")
    assert code == 1
    assert lines[-2:] == [
        "error: the token's web service lacks core_user_get_users_by_field",
        "  hint: add core_user_get_users_by_field to the external service (Site administration > Server > "
        "Web services > External services > (your service) > Functions); `connector doctor` lists all",
    ]


def test_doctor_lists_missing_required_and_absent_optional_functions(demo_site: Site) -> None:
    narrow_token(demo_site, tuple(f for f in catalogue.REQUIRED_FUNCTIONS if f != "core_course_get_courses"))
    code, lines = run_cli(demo_site, "doctor")
    assert code == 1
    start = lines.index("[FAIL] required functions: missing: core_course_get_courses")
    assert lines[start:] == [
        "[FAIL] required functions: missing: core_course_get_courses",
        "       -> add core_course_get_courses to the external service (Site administration > Server > Web",
        "          services > External services > (your service) > Functions)",
        "[ok  ] optional core_reportbuilder_retrieve_report: not in the service; the report path (the fewest",
        "       calls) needs it",
        "[ok  ] optional core_enrol_get_users_courses: not in the service; the per-user completion path needs",  # noqa: E501
        "       it",
        "[ok  ] optional core_cohort_get_cohorts: not in the service; placement or scope by cohort needs it",
        "[ok  ] optional core_cohort_get_cohort_members: not in the service; placement or scope by cohort",
        "       needs it",
        "[ok  ] optional core_reportbuilder_set_filters: not in the service; nightly delta reads of the",
        "       report needs it",
        "[ok  ] optional core_reportbuilder_filters_reset: not in the service; nightly delta reads of the",
        "       report needs it",
        "1 of 13 checks failed: required functions",
    ]


# -- one "did you mean" ----------------------------------------------------------------------------
def test_did_you_mean_offers_the_closest_name_or_the_fallback() -> None:
    assert (
        did_you_mean("pagesize", ["page_size", "url"], "known: page_size, url") == "did you mean 'page_size'?"
    )
    assert did_you_mean("zzz", ["page_size", "url"], "known: page_size, url") == "known: page_size, url"


def test_no_other_module_matches_names_by_itself() -> None:
    users = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "connector").rglob("*.py")
        if "get_close_matches" in path.read_text(encoding="utf-8")
    ]
    assert users == ["connector/suggest.py"]
