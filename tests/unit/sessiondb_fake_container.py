"""The container's half of the session-DB protocol, done with plain sqlite3, for host-side tests.

It follows docs/session-protocol.md as the real runner must: it alone writes
outbound.db (DELETE journal, the shared OUTBOUND_SCHEMA text), gives its rows odd
seqs above the largest seq in both files, and reads inbound.db read-only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sessiondb.paths import inbound_path, outbound_path
from sessiondb.schema import OUTBOUND_SCHEMA


class FakeContainer:
    def __init__(self, session: Path) -> None:
        self.session = session

    def _outbound(self) -> sqlite3.Connection:
        conn = sqlite3.connect(outbound_path(self.session), timeout=5.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.executescript(OUTBOUND_SCHEMA)
        return conn

    def _max_inbound_seq(self) -> int:
        conn = sqlite3.connect(f"file:{inbound_path(self.session)}?mode=ro", uri=True, timeout=5.0)
        try:
            return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages_in").fetchone()[0])
        finally:
            conn.close()

    def start(self) -> None:
        """Create outbound.db as a starting container does, and drop a dead predecessor's claims."""
        conn = self._outbound()
        try:
            conn.execute("DELETE FROM processing_ack WHERE status = 'processing'")
        finally:
            conn.close()

    def write_out(
        self,
        message_id: str,
        *,
        content: str = '{"text": "hi"}',
        kind: str = "chat",
        deliver_after: str | None = None,
        timestamp: str | None = None,
        route: tuple[str | None, str | None, str | None] = (None, None, None),
    ) -> int:
        """Write a messages_out row; `route` is its (channel_type, platform_id, thread_id)."""
        conn = self._outbound()
        try:
            conn.execute("BEGIN IMMEDIATE")
            highest = max(
                int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages_out").fetchone()[0]),
                self._max_inbound_seq(),
            )
            seq = highest + 1 if highest % 2 == 0 else highest + 2
            conn.execute(
                "INSERT INTO messages_out (id, seq, timestamp, deliver_after, kind, content,"
                " channel_type, platform_id, thread_id) VALUES (?, ?, COALESCE(?, datetime('now')), ?, ?, ?, ?, ?, ?)",
                (message_id, seq, timestamp, deliver_after, kind, content, *route),
            )
            conn.execute("COMMIT")
            return seq
        finally:
            conn.close()

    def ack(self, message_id: str, status: str, at: str | None = None) -> None:
        conn = self._outbound()
        try:
            conn.execute(
                "INSERT OR REPLACE INTO processing_ack (message_id, status, status_changed)"
                " VALUES (?, ?, COALESCE(?, datetime('now')))",
                (message_id, status, at),
            )
        finally:
            conn.close()
