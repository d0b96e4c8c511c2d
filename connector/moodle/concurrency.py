"""Independent Moodle calls side by side: a bounded thread pool that yields results in input order.

Every Moodle call holds a PHP worker on the server, so the number of workers is the site's
``max_concurrency``; only a small window of items is submitted ahead, so huge inputs stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int) -> Iterator[R]:
    """fn(item) for every item, at most ``workers`` at a time, results in input order.

    The first exception raised by fn propagates (remaining queued work is cancelled).
    """
    window = workers * 2
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="moodle")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
