"""Rows kept compact and made into dicts only when read: `due`'s and `needs`' person rows.

At 100,000 people such lists run to 800,000 rows; as dicts of a dozen keys they took a gigabyte
and more. A subclass keeps one small entry per row and says how an entry becomes a row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

Entry = TypeVar("Entry")


class LazyRows(Sequence[dict[str, Any]], Generic[Entry]):
    """A sequence of rows over ``entries``; ``_row`` makes one entry a row."""

    def __init__(self, entries: list[Entry]) -> None:
        self._entries = entries

    def _row(self, entry: Entry) -> dict[str, Any]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._row(entry) for entry in self._entries[index]]
        return self._row(self._entries[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for entry in self._entries:
            yield self._row(entry)
