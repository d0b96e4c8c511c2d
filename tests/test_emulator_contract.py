"""For every fixture captured from a real Moodle, the emulator answers the same request with the
same structure: keys, value types and nesting (values may differ), or the same error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
import xmltodict

from connector.emulator import Emulator, demo_scenario

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "moodle-4.1"
TOKEN = "contract-full-token"
WEAK = "contract-weak-token"


def fixture_cases() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.request.json"))


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(demo_scenario(date(2026, 1, 15)), tokens={TOKEN: "full", WEAK: "weak"}) as emu:
        yield emu


def send(emulator: Emulator, request: dict[str, Any]) -> requests.Response:
    replacements = {"<TOKEN>": TOKEN, "<WEAK_TOKEN>": WEAK}
    form = [(k, replacements.get(str(v), str(v))) for k, v in request["form_body"]]
    url = f"{emulator.url}/webservice/rest/server.php"
    if request["http_method"] == "GET":
        return requests.get(url, params=form, timeout=10)
    return requests.post(url, data=form, timeout=10)


def json_shape(value: Any) -> Any:
    """Keys, types and nesting; a list's shape is the merge of its elements' shapes."""
    if isinstance(value, dict):
        return {k: json_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return ["list", merge_shapes([json_shape(v) for v in value])]
    return type(value).__name__


def merge_shapes(shapes: list[Any]) -> Any:
    if not shapes:
        return "empty"
    if all(isinstance(s, dict) for s in shapes):
        keys = sorted({k for s in shapes for k in s})
        return {k: merge_shapes([s[k] for s in shapes if k in s]) for k in keys}
    if all(isinstance(s, list) for s in shapes):
        return ["list", merge_shapes([s[1] for s in shapes if s[1] != "empty"])]
    return "|".join(sorted({str(s) for s in shapes}))


def xml_shape(node: Any) -> Any:
    """The same idea for Moodle's XML: SINGLE -> keys, MULTIPLE -> merged items, VALUE -> 'value'."""
    if not isinstance(node, dict):
        return "value"
    if "SINGLE" in node:
        keys = (node["SINGLE"] or {}).get("KEY", [])
        keys = keys if isinstance(keys, list) else [keys]
        return {k["@name"]: xml_shape(k) for k in keys}
    if "MULTIPLE" in node:
        items: list[Any] = []
        for tag in ("SINGLE", "VALUE"):
            found = (node["MULTIPLE"] or {}).get(tag, [])
            items += [xml_shape({tag: i}) for i in (found if isinstance(found, list) else [found])]
        return ["list", merge_shapes(items)]
    value = node.get("VALUE")
    return "null" if isinstance(value, dict) and value.get("@null") == "null" else "value"


def nulls_as_wildcards(expected: Any, actual: Any) -> Any:
    """A null in one answer and a value in the other is a difference of values, not of shape."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {k: nulls_as_wildcards(v, actual.get(k)) for k, v in expected.items()}
    if isinstance(expected, list) and isinstance(actual, list):
        if expected[1] == "empty":  # the fixture had no element to compare with
            return actual
        if actual[1] == "empty":  # the emulator answered [] where Moodle listed elements
            return expected
        return ["list", nulls_as_wildcards(expected[1], actual[1])]
    if _has_null(expected) or _has_null(actual):
        return actual
    return expected


def _has_null(shape: Any) -> bool:
    return isinstance(shape, str) and bool({"NoneType", "null"} & set(shape.split("|")))


@pytest.mark.parametrize("request_path", fixture_cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_emulator_answers_like_the_fixture(emulator: Emulator, request_path: Path) -> None:
    request = json.loads(request_path.read_text(encoding="utf-8"))
    stem = request_path.name.removesuffix(".request.json")
    meta = json.loads((request_path.parent / f"{stem}.meta.json").read_text(encoding="utf-8"))
    reply = send(emulator, request)
    assert reply.status_code == meta["http_status"]
    assert reply.headers["Content-Type"] == meta["content_type"]
    if request["format"] == "xml":
        expected_tree = xmltodict.parse((request_path.parent / f"{stem}.response.xml").read_bytes())
        actual_tree = xmltodict.parse(reply.content)
        assert list(actual_tree) == list(expected_tree)
        if "EXCEPTION" in expected_tree:
            assert actual_tree["EXCEPTION"]["@class"] == expected_tree["EXCEPTION"]["@class"]
            assert actual_tree["EXCEPTION"]["ERRORCODE"] == expected_tree["EXCEPTION"]["ERRORCODE"]
            return
        expected = xml_shape(expected_tree["RESPONSE"])
        actual = xml_shape(actual_tree["RESPONSE"])
    else:
        expected_body = json.loads((request_path.parent / f"{stem}.response.json").read_text("utf-8"))
        actual_body = reply.json()
        if isinstance(expected_body, dict) and "exception" in expected_body:
            assert actual_body["exception"] == expected_body["exception"]
            assert actual_body["errorcode"] == expected_body["errorcode"]
            assert set(actual_body) == set(expected_body)
            return
        expected, actual = json_shape(expected_body), json_shape(actual_body)
    assert actual == nulls_as_wildcards(expected, actual)


def test_every_fixture_function_folder_is_covered() -> None:
    assert len(fixture_cases()) >= 50
