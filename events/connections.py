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
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> sqlite3.Connection:
        """This thread's read-only connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                if self._closed:
                    raise sqlite3.ProgrammingError("the event store is closed")
                conn = connect(self._path, read_only=True)
                self._all.append(conn)
            self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._all:
                conn.close()
            self._all.clear()
