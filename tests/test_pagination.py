"""The paginators and the one paging loop (connector/moodle/pagination.py), against a table in memory
whose rows can grow while it is read (what a live Moodle does)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from connector.moodle.pagination import (
    FanOutPages,
    PageInfo,
    PageRequest,
    ThroughLastPage,
    UntilShortPage,
    UntilTotal,
    batched,
    paginate,
)


class Table:
    """Rows 0..n-1, answered page by page like retrieve_report (with a total) or a plain list."""

    def __init__(self, rows: int, *, grow_after: int | None = None, grow_by: int = 0) -> None:
        self.rows = list(range(rows))
        self.asked: list[tuple[int, int]] = []
        self.grow_after, self.grow_by = grow_after, grow_by

    def fetch(self, request: PageRequest) -> tuple[list[int], PageInfo]:
        self.asked.append((request.number, request.size))
        page = self.rows[request.offset : request.offset + request.size]
        if self.grow_after is not None and len(self.asked) == self.grow_after:
            self.rows += range(len(self.rows), len(self.rows) + self.grow_by)
        return page, PageInfo(len(page), len(self.rows))


def fan_out_recorder(batches: list[int]) -> Any:
    """A sequential stand-in for the thread pool that records each batch's size."""

    def fan_out(fetch: Callable[[PageRequest], Any], requests: Iterable[PageRequest]) -> Iterator[Any]:
        wanted = list(requests)
        batches.append(len(wanted))
        return map(fetch, wanted)

    return fan_out


def rows(pages: Iterator[list[int]]) -> list[int]:
    return [row for page in pages for row in page]


def test_until_short_page_reads_fixed_pages_until_one_is_short() -> None:
    table = Table(25)
    assert rows(paginate(table.fetch, UntilShortPage(10))) == list(range(25))
    assert table.asked == [(0, 10), (1, 10), (2, 10)]


def test_until_short_page_asks_once_more_after_an_exactly_full_page() -> None:
    table = Table(20)
    assert rows(paginate(table.fetch, UntilShortPage(10))) == list(range(20))
    assert table.asked == [(0, 10), (1, 10), (2, 10)]


def test_until_total_stops_when_the_total_is_read() -> None:
    table = Table(20)
    assert rows(paginate(table.fetch, UntilTotal(10))) == list(range(20))
    assert table.asked == [(0, 10), (1, 10)]


def test_through_last_page_reads_the_pages_the_total_implies() -> None:
    table = Table(20)
    assert rows(paginate(table.fetch, ThroughLastPage(10))) == list(range(20))
    assert table.asked == [(0, 10), (1, 10)]  # no extra call after an exactly full last page


def test_through_last_page_stops_at_an_empty_page() -> None:
    asked: list[int] = []

    def fetch(request: PageRequest) -> tuple[list[int], PageInfo]:
        asked.append(request.number)
        return [], PageInfo(0, 30)  # the total says more than the pages hold

    assert rows(paginate(fetch, ThroughLastPage(10))) == []
    assert asked == [0]


def test_fan_out_probes_then_reads_one_equal_page_per_worker_side_by_side() -> None:
    table, batches = Table(10), list[int]()
    pages = paginate(table.fetch, FanOutPages(1000, workers=4, probe=1), fan_out=fan_out_recorder(batches))
    assert rows(pages) == list(range(10))  # the probe's row is not yielded twice
    assert table.asked == [(0, 1), (0, 3), (1, 3), (2, 3), (3, 3)]
    assert batches == [4]


def test_fan_out_never_asks_for_pages_larger_than_the_page_size() -> None:
    table = Table(10)
    assert rows(
        paginate(table.fetch, FanOutPages(2, workers=2, probe=1), fan_out=fan_out_recorder([]))
    ) == list(range(10))
    assert table.asked[1:] == [(n, 2) for n in range(5)]


def test_fan_out_reads_rows_added_while_reading_after_the_planned_pages() -> None:
    table = Table(8, grow_after=3, grow_by=5)  # five rows appear while the planned pages are read
    assert rows(
        paginate(table.fetch, FanOutPages(1000, workers=4, probe=1), fan_out=fan_out_recorder([]))
    ) == list(range(13))
    assert table.asked == [(0, 1), (0, 2), (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2)]


def test_fan_out_of_a_small_report_is_the_probe_alone() -> None:
    """A nightly's delta of a few dozen rows: one call, not a probe and a page per worker."""
    table, batches = Table(40), list[int]()
    assert rows(
        paginate(table.fetch, FanOutPages(5000, workers=4), fan_out=fan_out_recorder(batches))
    ) == list(range(40))
    assert (table.asked, batches) == ([(0, 250)], [])


def test_fan_out_pages_are_never_thinner_than_the_probe() -> None:
    table = Table(600)
    assert rows(paginate(table.fetch, FanOutPages(5000, workers=4), fan_out=fan_out_recorder([]))) == list(
        range(600)
    )
    assert table.asked == [(0, 250), (0, 250), (1, 250), (2, 250)]  # not four pages of 150


def test_fan_out_of_an_empty_report_yields_the_probe_alone() -> None:
    table = Table(0)
    assert list(paginate(table.fetch, FanOutPages(1000, workers=4, probe=1))) == [[]]
    assert table.asked == [(0, 1)]


def test_batched_slices_in_order() -> None:
    assert batched([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert batched([], 2) == []
