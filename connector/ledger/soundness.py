"""Whether the ledger file is sound: SQLite's ``PRAGMA quick_check``, now or beside other work.

SQLite pages carry no checksum, so a damaged page can be read as wrong numbers without any error;
the check reads every page (0.8 s on a ledger of 100,000 people). A read command can run it on a
connection of its own while it computes, and wait for the verdict before it shows anything: the
check releases Python's lock while SQLite works, so it takes the second core instead of adding
its time to the command's. A command may check only the tables it reads (``status`` reads
neither the status history nor, without ``--as-of``, the statuses). Such a check walks each of
those tables and its indexes; what it cannot see is a page claimed by one of them and by a table
it left out as well (SQLite checks that only over the whole file). The sync checks the whole file
before every write.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from connector.ledger.files import readonly_uri


def quick_check(conn: sqlite3.Connection, tables: Sequence[str] | None = None) -> list[str]:
    """[] when the file is sound, else what SQLite found (at most a few lines).

    ``tables``: check only these (each with its indexes), the tables a command reads; None: the
    whole file."""
    if tables is None:
        return _found(conn, "PRAGMA quick_check(5)")
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for name in [t for t in tables if t in present]:
        found = _found(conn, f'PRAGMA quick_check("{name}")')
        if found:
            return found
    return []


def _found(conn: sqlite3.Connection, pragma: str) -> list[str]:
    found = [
        line.strip()
        for row in conn.execute(pragma)
        for line in str(row[0]).splitlines()
        if line.strip() and not line.startswith("***")
    ]
    return [] if found == ["ok"] else found[:5]


CHECK_NICENESS = 10
# How long the check waits for another program's lock: as long as the command's own connection.
READ_WAIT_S = 30.0


class BackgroundCheck:
    """``quick_check`` of the tables asked for (``add`` asks for more while it runs) on read-only
    connections in threads of their own, two tables at a time: the command waits for the verdict
    after its own work, and then both cores can check."""

    WORKERS = 2

    def __init__(self, path: Path, tables: Sequence[str]) -> None:
        self._path = path
        self.tables: list[str] = []  # asked for, in order
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._found: list[str] = []
        self._failure: BaseException | None = None
        self._stopped = False
        self.add(tables)
        self._threads = [
            threading.Thread(target=self._check, name="ledger-quick-check", daemon=True)
            for _ in range(self.WORKERS)
        ]
        for thread in self._threads:
            thread.start()

    def add(self, tables: Sequence[str]) -> None:
        """Check these tables too (before the verdict), in the order given: the largest first, so
        that no worker is left alone on one at the end."""
        for name in tables:
            if name not in self.tables:
                self.tables.append(name)
                self._queue.put(name)

    def _check(self) -> None:
        # The command's own work comes first: the check takes what CPU it leaves (a Linux thread
        # has a nice value of its own; 60 days after a sync, status took 1.84 s with the check at
        # the same priority and 1.51 s with it niced, the day after 0.91 s and 0.89 s).
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), CHECK_NICENESS)
        except (OSError, AttributeError):  # not Linux: the same priority
            pass
        with self._lock:
            if self._stopped:
                return
            try:
                conn = sqlite3.connect(
                    readonly_uri(self._path), uri=True, timeout=READ_WAIT_S, check_same_thread=False
                )
            except sqlite3.Error as exc:
                self._failure = self._failure or exc
                return
            self._conns.append(conn)
        try:
            while (name := self._queue.get()) is not None and not (self._found or self._stopped):
                found = quick_check(conn, [name])
                with self._lock:
                    self._found = self._found or found
        except BaseException as exc:  # a file too damaged to walk, ``cancel``'s interrupt, a bug:
            with self._lock:  # the verdict must not be "sound" for a table nobody checked
                self._failure = self._failure or exc
        finally:
            conn.close()

    def result(self) -> list[str]:
        """Wait for the verdict: [] when sound, else what was found; raises what the check raised."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        if self._found:
            return self._found
        if self._failure is not None:
            raise self._failure
        return []

    def cancel(self) -> None:
        """Stop a check nobody will wait for (the command failed before it needed the verdict)."""
        with self._lock:
            self._stopped = True
            for conn in self._conns:
                try:
                    conn.interrupt()
                except sqlite3.ProgrammingError:  # closed in the meantime: finished
                    pass
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
