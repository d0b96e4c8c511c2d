"""Moodle's exception payloads -> the typed errors of :mod:`connector.errors`, each with a hint.

Moodle answers most errors with HTTP 200 and ``{"exception", "errorcode", "message"}``:

==============================================  ======================================
errorcode                                       error class
==============================================  ======================================
invalidtoken, invalidtimedtoken, invalidiptoken MoodleAuthError (never retried)
and the wsaccessuser* family
accessexception                                 MoodlePermissionError (not in service)
invalidrecord naming table external_functions   MoodleFunctionNotFound (a MoodleNotFound)
nopermissions, requireloginerror,               MoodlePermissionError (capabilities)
errorcoursecontextnotvalid
invalidparameter                                MoodleRequestError
invalidrecord (course, user, report, ...)       MoodleNotFound
sitemaintenance                                 MoodleUnavailable (retried)
usernotenroled, nocriteriaset, cannotviewreport MoodleRequestError; ``errorcode`` says
                                                which (see PER_ENROLMENT_ERRORCODES)
anything else                                   MoodleError
==============================================  ======================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.errors import (
    MoodleAuthError,
    MoodleError,
    MoodleFunctionNotFound,
    MoodleNotFound,
    MoodlePermissionError,
    MoodleRequestError,
    MoodleUnavailable,
)
from connector.i18n import _
from connector.moodle.functions import add_to_service_hint, capability_hint
from connector.moodle.settings import TOKEN_HINT

#: Errors that concern one (course, user) pair, not the whole sync: the API yields them.
PER_ENROLMENT_ERRORCODES = frozenset({"usernotenroled", "nocriteriaset", "cannotviewreport"})

_AUTH_ERRORCODES = frozenset(
    {
        "invalidtoken",
        "invalidtimedtoken",
        "invalidiptoken",
        "wsaccessuserdeleted",
        "wsaccessusersuspended",
        "wsaccessusernologin",
        "wsaccessuserexpired",
        "wsaccessuserunconfirmed",
        "usernotconfirmed",
        "forcepasswordchangenotice",
        "restoredaccountresetpassword",
        "enablewsdescription",
    }
)
# errorreportview/errorreportedit: Moodle 4.5's "may not view/edit this report"; "nopermission"
# (singular) is what some 4.5 functions send for the same thing.
_CAPABILITY_ERRORCODES = frozenset(
    {
        "nopermissions",
        "nopermission",
        "requireloginerror",
        "errorcoursecontextnotvalid",
        "errorreportview",
        "errorreportedit",
    }
)
_UNAVAILABLE_ERRORCODES = frozenset({"sitemaintenance"})


def is_exception_payload(value: Any) -> bool:
    return isinstance(value, dict) and "errorcode" in value and "exception" in value and "message" in value


def error_from_payload(function: str, payload: Mapping[str, Any]) -> MoodleError:
    """A typed error with an actionable message for one Moodle exception payload."""
    code = str(payload.get("errorcode") or "")
    text = str(payload.get("message") or "").strip()
    said = f"{function}: Moodle said {text!r} ({code})"
    if code in _AUTH_ERRORCODES:
        return MoodleAuthError(said, function=function, errorcode=code, hint=_auth_hint(code))
    if code == "accessexception":
        return MoodlePermissionError(
            _("{function} is not allowed for this token ({code})").format(function=function, code=code),
            function=function,
            errorcode=code,
            hint=add_to_service_hint([function]),
        )
    if code == "invalidrecord" and "external_functions" in text:
        return MoodleFunctionNotFound(
            _("{function} is unknown on this Moodle version ({code})").format(function=function, code=code),
            function=function,
            errorcode=code,
            hint=_(
                "check the function name and the Moodle release (site info shows it); the "
                "connector needs Moodle 4.1 or later"
            ),
        )
    if code in _CAPABILITY_ERRORCODES:
        return MoodlePermissionError(said, function=function, errorcode=code, hint=capability_hint(function))
    if code in _UNAVAILABLE_ERRORCODES:
        return MoodleUnavailable(
            said, function=function, errorcode=code, hint=_("the site is in maintenance mode")
        )
    if code in PER_ENROLMENT_ERRORCODES or code == "invalidparameter":
        return MoodleRequestError(said, function=function, errorcode=code)
    if code in ("invalidrecord", "invaliduser"):  # invaliduser: Moodle 4.5, an unknown user id
        return MoodleNotFound(said, function=function, errorcode=code)
    return MoodleError(said, function=function, errorcode=code or None)


def _auth_hint(code: str) -> str:
    if code == "invalidtimedtoken":
        return _("the token has expired; {hint}").format(hint=_(TOKEN_HINT))
    if code == "invalidiptoken":
        return _("the token is restricted to other IP addresses; edit its IP restriction or {hint}").format(
            hint=_(TOKEN_HINT)
        )
    if code == "enablewsdescription":
        return _("enable web services under Site administration > Advanced features")
    if code.startswith("wsaccessuser") or code in ("usernotconfirmed", "forcepasswordchangenotice"):
        return _(
            "the token's user account cannot log in (suspended, deleted, unconfirmed or expired); "
            "fix the account or {hint}"
        ).format(hint=_(TOKEN_HINT))
    return _(TOKEN_HINT)


def is_per_enrolment_error(error: MoodleError) -> bool:
    """Errors that concern one (course, user) pair: recorded per enrolment, the sync goes on."""
    if isinstance(error, MoodleFunctionNotFound):
        return False
    if isinstance(error, MoodleNotFound):
        return True
    return isinstance(error, MoodleRequestError) and error.errorcode in PER_ENROLMENT_ERRORCODES
