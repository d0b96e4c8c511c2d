"""Paged reads: paginator objects say which pages to ask for next; ONE loop (:func:`paginate`) asks.

A paginator hands out :class:`PageRequest` batches: one page at a time, or several read side by
side through a fan-out (the client's bounded, ordered thread pool). After each batch it is shown
what the pages held (:class:`PageInfo`) and answers with the next batch; an empty one ends the
read. The fetcher turns a request into the function's own parameters (``limitfrom``/``limitnumber``
options, ``page``/``perpage``), so one paginator serves offset and page-number APIs alike.

* :class:`UntilShortPage`: fixed-size pages until one comes back short (enrolled users, the list
  of reports);
* :class:`UntilTotal`: fixed-size pages until the server's total is read (report rows);
* :class:`ThroughLastPage`: fixed-size pages through the last the server's total implies
  (a Feedback's non-respondents);
* :class:`FanOutPages`: a one-row probe for the total, then pages sized so every worker reads
  one, side by side, then any rows added meanwhile (report rows, concurrently).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
FanOut = Callable[[Callable[["PageRequest"], T], Iterable["PageRequest"]], Iterator[T]]


@dataclass(frozen=True)
class PageInfo:
    """What one page held: its rows and, when the server says, how many there are in all."""

    rows: int
    total: int | None = None


@dataclass(frozen=True)
class PageRequest:
    """Page ``number`` (0-based) of pages of ``size`` rows."""

    number: int
    size: int
    probe: bool = False  # read to learn the total: yielded only when it holds every row

    @property
    def offset(self) -> int:
        return self.number * self.size


class Paginator(ABC):
    @abstractmethod
    def first(self) -> list[PageRequest]:
        """The first batch of pages to read."""

    @abstractmethod
    def following(self, read: Sequence[PageInfo]) -> list[PageRequest]:
        """The next batch, given what the last batch's pages held; empty when done."""


class _OnePageAtATime(Paginator):
    """Pages of one size numbered from 0, one after the other; subclasses say when to stop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._number = 0

    def first(self) -> list[PageRequest]:
        return [PageRequest(0, self.size)]

    def _next_page(self) -> list[PageRequest]:
        self._number += 1
        return [PageRequest(self._number, self.size)]


class UntilShortPage(_OnePageAtATime):
    def following(self, read: Sequence[PageInfo]) -> list[PageRequest]:
        if read[-1].rows < self.size:
            return []
        return self._next_page()


class UntilTotal(_OnePageAtATime):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self._read = 0

    def following(self, read: Sequence[PageInfo]) -> list[PageRequest]:
        last = read[-1]
        self._read += last.rows
        if not last.rows or self._read >= (last.total or 0):
            return []
        return self._next_page()


class ThroughLastPage(_OnePageAtATime):
    """Fixed-size pages through the last one the server's total implies (or an empty one)."""

    def following(self, read: Sequence[PageInfo]) -> list[PageRequest]:
        last = read[-1]
        if not last.rows or (self._number + 1) * self.size >= (last.total or 0):
            return []
        return self._next_page()


# The first read of a fanned-out report: a small answer (a nightly's delta) is all there in this one
# call; a large one learns its total from it. Pages are never split smaller than this either: a
# call costs the server about as much as fifty rows, so thinner pages buy little and cost calls.
PROBE_ROWS = 250


class FanOutPages(Paginator):
    """The server's cost grows with rows, so equal pages read in parallel finish soonest."""

    def __init__(self, size: int, workers: int, *, probe: int = PROBE_ROWS) -> None:
        self.max_size = size
        self.workers = workers
        self._probe = min(size, probe)
        self._size = 0
        self._count = 0

    def first(self) -> list[PageRequest]:
        return [PageRequest(0, self._probe, probe=True)]

    def following(self, read: Sequence[PageInfo]) -> list[PageRequest]:
        last = read[-1]
        total = last.total or 0
        if not self._count:  # after the probe
            if total <= self._probe:
                return []  # the probe held it all
            self._size = max(self._probe, min(self.max_size, math.ceil(total / self.workers)))
            self._count = math.ceil(total / self._size)
            return [PageRequest(number, self._size) for number in range(self._count)]
        if last.rows and total > self._count * self._size:  # rows added while reading
            self._count += 1
            return [PageRequest(self._count - 1, self._size)]
        return []


def paginate(
    fetch: Callable[[PageRequest], tuple[T, PageInfo]],
    paginator: Paginator,
    *,
    fan_out: FanOut[tuple[T, PageInfo]] | None = None,
) -> Iterator[T]:
    """THE paging loop: every page the paginator asks for, in order (batches through ``fan_out``)."""
    batch = paginator.first()
    while batch:
        results = fan_out(fetch, batch) if fan_out is not None and len(batch) > 1 else map(fetch, batch)
        read: list[PageInfo] = []
        for request, (page, info) in zip(batch, results, strict=True):
            read.append(info)
            if not request.probe or (info.total or 0) <= request.size:
                yield page
        batch = paginator.following(read)


def batched(values: Sequence[T], size: int) -> list[Sequence[T]]:
    """``values`` in consecutive slices of ``size`` (the last one shorter)."""
    return [values[start : start + size] for start in range(0, len(values), size)]
