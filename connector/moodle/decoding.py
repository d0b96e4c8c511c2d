"""What an answer means: HTTP status, HTML instead of data, JSON or XML -> plain Python values.

Transient-looking answers (HTTP 5xx/429/408, an HTML page, a body that is not UTF-8, empty, or
cut-off JSON/XML) raise :class:`MoodleUnavailable` so the client retries them; any other HTTP
status is a :class:`MoodleProtocolError` (wrong URL or REST disabled). A lone UTF-16 surrogate in
a JSON string (valid JSON, invalid text) is replaced by U+FFFD with a warning.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Literal

from connector.errors import MoodleProtocolError, MoodleUnavailable
from connector.i18n import _
from connector.moodle.transport import Body
from connector.moodle.xmlformat import XmlFormatError, parse_xml_response
from connector.urls import redact_url

log = logging.getLogger("connector.moodle")

# a JSON \uXXXX escape of a UTF-16 surrogate: the only way a lone one can reach a decoded answer
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def decode(function: str, body: Body, *, fmt: Literal["json", "xml"], shown_url: str, endpoint: str) -> Any:
    """The decoded value of one answer (an exception payload too: :mod:`errormap` reads it)."""
    if body.status == 429 or body.status >= 500 or body.status == 408:
        raise MoodleUnavailable(
            _("{function}: HTTP {status} from {shown_url}").format(
                function=function, status=body.status, shown_url=shown_url
            ),
            function=function,
            retry_after=body.retry_after,
        )
    if body.status != 200:
        raise MoodleProtocolError(
            _("{function}: HTTP {status} from {redact_url}").format(
                function=function, status=body.status, redact_url=redact_url(endpoint)
            ),
            function=function,
            hint=_(
                "check that url is the Moodle site root and that the REST protocol is "
                "enabled (Site administration > Server > Web services > Manage protocols)"
            ),
        )
    try:
        text = body.content.decode("utf-8")
    except UnicodeDecodeError:
        raise MoodleUnavailable(
            _("{function}: the answer is not valid UTF-8 (cut off?)").format(function=function),
            function=function,
        ) from None
    if _looks_like_html(text):
        raise MoodleUnavailable(
            _(
                "{function}: an HTML page came back instead of {upper} (maintenance mode, a "
                "login page or a proxy error)"
            ).format(function=function, upper=fmt.upper()),
            function=function,
            retry_after=body.retry_after,
        )
    if not text.strip():
        raise MoodleUnavailable(_("{function}: empty answer").format(function=function), function=function)
    return _parse(function, text, fmt)


def _parse(function: str, text: str, fmt: str) -> Any:
    if fmt == "json" or text.lstrip().startswith(("{", "[")):
        try:
            value = json.loads(text)
            return _mend_surrogates(function, value) if _SURROGATE_ESCAPE.search(text) else value
        except RecursionError:  # json recurses once per nested list or object
            raise MoodleProtocolError(
                _("{function}: the answer is nested too deeply to read").format(function=function),
                function=function,
            ) from None
        except ValueError:
            if fmt == "json" and text.lstrip().startswith("<?xml"):
                return _parse_xml(function, text)  # e.g. an early error before format was read
            raise MoodleUnavailable(
                _("{function}: the JSON answer is cut off or malformed").format(function=function),
                function=function,
            ) from None
    return _parse_xml(function, text)


def _parse_xml(function: str, text: str) -> Any:
    try:
        return parse_xml_response(text)
    except XmlFormatError as error:
        raise MoodleUnavailable(
            _("{function}: the XML answer is cut off or malformed ({error})").format(
                function=function, error=error
            ),
            function=function,
        ) from None


def _mend_surrogates(function: str, value: Any, where: str = "", record: Any = None) -> Any:
    """``value`` with each lone UTF-16 surrogate (valid JSON, invalid text: SQLite and UTF-8 refuse
    it) replaced by U+FFFD, one warning per field naming the record."""
    if isinstance(value, str):
        if not _LONE_SURROGATE.search(value):  # a pair decodes to one character: only lone ones match
            return value
        log.warning(
            "%s: record id %s: %s held an invalid character (a lone surrogate); U+FFFD stands in its place",
            function,
            record if record is not None else "?",
            where or "the answer",
        )
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_mend_surrogates(function, item, where, record) for item in value]
    if isinstance(value, dict):
        record = value.get("id", record) if isinstance(value.get("id"), (int, str)) else record
        return {
            key: _mend_surrogates(function, item, f"{where}.{key}" if where else str(key), record)
            for key, item in value.items()
        }
    return value


def _looks_like_html(text: str) -> bool:
    head = text.lstrip()[:200].lower()
    return (
        head.startswith("<!doctype html")
        or head.startswith("<html")
        or "<html" in head
        and not head.startswith("<?xml")
    )
