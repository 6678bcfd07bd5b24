"""Per-thread read connections to the central DB.

Why per thread: WAL lets any number of readers run beside the one writer, and a
connection of its own per thread means no reader ever waits on another's lock.
Each is autocommit, so every query sees the latest committed append.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from events.schema import connect


class ReadConnections:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._by_thread: dict[threading.Thread, sqlite3.Connection] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> sqlite3.Connection:
        """This thread's read-only connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("the event store is closed")
                self._release_finished_threads()
                conn = connect(self._path, read_only=True)
                self._by_thread[threading.current_thread()] = conn
            self._local.conn = conn
        return conn

    def _release_finished_threads(self) -> None:
        """Close the connections of threads that have ended, so short-lived threads never leak one each."""
        for thread in [t for t in self._by_thread if not t.is_alive()]:
            self._by_thread.pop(thread).close()

    def open_count(self) -> int:
        with self._lock:
            return len(self._by_thread)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._by_thread.values():
                conn.close()
            self._by_thread.clear()
