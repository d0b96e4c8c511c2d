"""The words for statuses, chosen once and used everywhere a person reads them.

The ledger, CSV and JSON keep the English keys (``expired``); tables and reports show
``status_word(status)`` in the reader's language (CONTRIBUTING.md keeps the glossary).
"""

from __future__ import annotations

from connector.i18n import N_, _

STATUS_WORDS = {
    "compliant": N_("compliant"),
    "expiring": N_("expiring"),
    "expired": N_("expired"),
    "missing": N_("missing"),
    "grace": N_("grace"),
    "exempt": N_("exempt"),
    "not_applicable": N_("not applicable"),
}


def status_word(status: str | None) -> str:
    """``expiring`` -> "brzy vyprší" in Czech; an unknown or empty status is shown as it is."""
    if not status:
        return ""
    return _(STATUS_WORDS.get(status, status))
