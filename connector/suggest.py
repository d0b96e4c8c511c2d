"""The one "did you mean" for every unknown name a person typed (config keys, mapping names)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from connector.i18n import _


def did_you_mean(word: str, known: Iterable[str], otherwise: str) -> str:
    """``did you mean 'x'?`` for the closest known name, else ``otherwise``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return _("did you mean {name!r}?").format(name=close[0]) if close else otherwise
