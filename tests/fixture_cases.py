"""The real-Moodle captures under tests/fixtures, one folder per Moodle version, as test cases.

Every contract test runs over both versions; a case's id names its version first
(``4.5-core_course_get_courses/all_courses``) so a failure says which Moodle disagrees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VERSIONS = ("4.1", "4.5")


def folder(version: str) -> Path:
    return FIXTURES / f"moodle-{version}"


@dataclass(frozen=True)
class Case:
    version: str  # "4.1" or "4.5"
    name: str  # "<function folder>/<case>"
    path: Path  # the .request.json file

    @property
    def id(self) -> str:
        return f"{self.version}-{self.name}"

    @property
    def stem(self) -> str:
        return self.path.name.removesuffix(".request.json")

    @cached_property
    def request(self) -> dict[str, Any]:
        return dict(json.loads(self.path.read_text(encoding="utf-8")))

    @cached_property
    def meta(self) -> dict[str, Any]:
        return dict(json.loads((self.path.parent / f"{self.stem}.meta.json").read_text(encoding="utf-8")))

    @cached_property
    def body_path(self) -> Path:
        return next(self.path.parent.glob(f"{self.stem}.response.*"))

    @cached_property
    def body(self) -> bytes:
        return self.body_path.read_bytes()

    @property
    def function(self) -> str:
        return str(self.request["function"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.request["params"])

    @property
    def format(self) -> str:
        return str(self.request["format"])

    @property
    def token(self) -> str:
        return str(self.request["token"])

    def decoded_error(self) -> dict[str, str] | None:
        text = self.body.decode("utf-8")
        if self.format == "json":
            value = json.loads(text)
            return value if isinstance(value, dict) and "errorcode" in value else None
        if "<EXCEPTION" in text:
            code = text.split("<ERRORCODE>")[1].split("</ERRORCODE>")[0]
            message = text.split("<MESSAGE>")[1].split("</MESSAGE>")[0]
            return {"errorcode": code, "message": message}
        return None

    def json_body(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def load_cases(versions: tuple[str, ...] = VERSIONS) -> list[Case]:
    return [
        Case(version, f"{path.parent.name}/{path.name.removesuffix('.request.json')}", path)
        for version in versions
        for path in sorted(folder(version).glob("*/*.request.json"))
    ]


def case(version: str, name: str) -> Case:
    """One case by version and "<function>/<case>"; a KeyError names what is missing."""
    function, stem = name.split("/")
    path = folder(version) / function / f"{stem}.request.json"
    if not path.exists():
        raise KeyError(f"no fixture case {version}-{name}")
    return Case(version, name, path)
