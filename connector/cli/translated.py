"""`--help` in the reader's language.

Click keeps help texts as written (English, built at import time); these classes translate them
when help is shown, so the language chosen by --lang (parsed after import) applies. Click's own
words ("Usage:", "Options", "Show this message and exit.", "Error: ...") go through Click's
gettext calls, which are pointed at the connector's catalogs here; the ones the catalogs
translate are listed in :mod:`connector.cli.click_words` so extraction finds them.

The help texts are found for translators by connector/babel_extract.py (command docstrings and
``help=`` arguments).
"""

from __future__ import annotations

import inspect
from typing import Any

import click
import click.core
import click.decorators
import click.exceptions
import click.formatting
import click.parser
import click.types

from connector.i18n import _, ngettext

for _module in (click.core, click.decorators, click.exceptions, click.formatting, click.parser, click.types):
    _module._ = _  # type: ignore[attr-defined]
    _module.ngettext = ngettext  # type: ignore[attr-defined]


def _translated_help(text: str | None) -> str | None:
    if not text:
        return text
    return _(inspect.cleandoc(text).partition("\f")[0])


class TranslatedCommand(click.Command):
    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _help_in_language(self, ctx):
            super().format_help_text(ctx, formatter)

    def get_short_help_str(self, limit: int = 45) -> str:
        original = self.short_help, self.help
        self.short_help, self.help = _translated_help(self.short_help), _translated_help(self.help)
        try:
            return super().get_short_help_str(limit)
        finally:
            self.short_help, self.help = original

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with _help_in_language(self, ctx):
            super().format_options(ctx, formatter)


class TranslatedGroup(TranslatedCommand, click.Group):
    command_class = TranslatedCommand
    group_class = type  # sub-groups are of this class too


class _help_in_language:
    """Swaps the command's and its options' help for their translations while click formats them."""

    def __init__(self, command: click.Command, ctx: click.Context) -> None:
        self.items: list[tuple[Any, str | None]] = [(command, command.help)]
        self.items += [(p, p.help) for p in command.get_params(ctx) if isinstance(p, click.Option)]

    def __enter__(self) -> None:
        for item, text in self.items:
            item.help = _translated_help(text)

    def __exit__(self, *_exc: object) -> None:
        for item, text in self.items:
            item.help = text
