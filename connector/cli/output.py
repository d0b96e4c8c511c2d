"""What several commands print the same way: rows in a format, progress, warnings, private files."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import click

from connector.errors import ConnectorError, UsageError
from connector.i18n import _
from connector.reports.columns import Columns
from connector.reports.formats import csv_lines, json_lines, render_table, terminal_safe

T = TypeVar("T")


def echo_rows(rows: Sequence[dict[str, Any]], fmt: str, columns: Columns, dialect: str = "plain") -> None:
    """``rows`` as JSON (every key), CSV (``columns.csv``) or a table (``columns.table``)."""
    if fmt == "json":  # CSV and JSON a chunk of rows at a time: 800,000 due rows are never one string
        for piece in json_lines(rows):
            click.echo(piece, nl=False)
        click.echo()
    elif fmt == "csv":
        for piece in csv_lines(rows, columns.csv, dialect):
            click.echo(piece, nl=False)
    else:
        click.echo(render_table(rows, columns.table))


def echo_warnings(warnings: Iterable[str]) -> None:
    for warning in warnings:  # they quote names from Moodle
        click.echo(terminal_safe(_("warning: {message}").format(message=warning)), err=True)


class Progress:
    """Progress on stderr when it is a terminal: one line rewritten in place."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last = ""

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if total:
            width = 30
            filled = int(width * done / total) if total else 0
            text = f"{stage:<24} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        else:
            text = f"{stage:<24} {done if done else ''}"
        click.echo("\r" + text.ljust(len(self._last)), nl=False, err=True)
        self._last = text

    def close(self) -> None:
        if self.enabled and self._last:
            click.echo("\r" + " " * len(self._last) + "\r", nl=False, err=True)
            self._last = ""


class Written(Generic[T]):
    """Rows on their way into a file, counted as they pass (``count``), the count shown on stderr
    when it is a terminal: a million-row export takes a while. Used as a context manager around
    the write, so that the line is gone before any error is shown, whichever side failed."""

    EVERY = 10_000

    def __init__(self, rows: Iterable[T], path: Path, total: int | None = None) -> None:
        self._rows = rows
        self._stage = _("writing {file}").format(file=path.name)
        self._total = total
        self._progress = Progress(sys.stderr.isatty())
        self.count = 0

    def __iter__(self) -> Iterator[T]:
        try:
            for row in self._rows:
                self.count += 1
                if not self.count % self.EVERY:
                    self._progress(self._stage, self.count, self._total)
                yield row
        finally:
            self._progress.close()

    def __enter__(self) -> Written[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.close()


def write_private(path: Path, text: str | bytes | Iterable[str]) -> None:
    """Exports hold personal data: readable by the owner only, like the ledger.

    Written to a private (0600) temporary file beside the target, synced, then renamed over it:
    the result is 0600 whatever mode an older file had, a reader never sees half an export, and
    nothing is written through a symbolic link (one in the final component is refused).
    """
    if path.is_symlink():
        raise UsageError(
            _("refusing to write {path}: it is a symbolic link").format(path=path),
            hint=_("an export holds personal data; give the path of a real file"),
        )
    directory = path.parent
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(text, str | bytes):
                    out.write(text.encode("utf-8") if isinstance(text, str) else text)
                else:  # streamed in pieces (a large export)
                    for piece in text:
                        out.write(piece.encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        with contextlib.suppress(OSError):  # the rename itself survives a crash once the folder is synced
            folder = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    except OSError as exc:
        raise ConnectorError(
            _("cannot write {path}: {reason}").format(path=path, reason=exc.strerror),
            hint=_("check that the directory exists and is writable"),
        ) from None
