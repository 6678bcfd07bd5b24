"""The terminal channel's durable outbox: every delivery, and how far each client has read.

Why durable: a chat client may be closed when the agent answers. Each delivery
is committed here before `deliver` returns, so the reply waits for the client
and is replayed when it reconnects, across host restarts too. The
idempotency key is unique, so a delivery retried after a host crash is
recognised and answered with the message id it got the first time.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import msgspec

from channels.terminal_protocol import StoredFrame, decode_stored

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation    TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    frame           TEXT NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS deliveries_by_conversation ON deliveries (conversation, seq);
CREATE TABLE IF NOT EXISTS card_answers (
    card_id     TEXT PRIMARY KEY,
    option_id   TEXT NOT NULL,
    user        TEXT NOT NULL,
    answered_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS cursors (
    conversation TEXT NOT NULL,
    client       TEXT NOT NULL,
    acked_seq    INTEGER NOT NULL,
    updated_at   TEXT NOT NULL DEFAULT (datetime('now')),
    PRIMARY KEY (conversation, client)
);
"""

_encoder = msgspec.json.Encoder()


def message_id(seq: int) -> str:
    """The platform message id of a delivery: stable, since its seq never changes."""
    return f"term-{seq}"


class Outbox:
    """One SQLite file; safe to use from the adapter's threads (one connection behind a lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def find(self, idempotency_key: str) -> StoredFrame | None:
        """The delivery already recorded under this key, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, frame FROM deliveries WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
        return _frame(row) if row else None

    def add(self, conversation: str, idempotency_key: str, frame: StoredFrame) -> tuple[StoredFrame, bool]:
        """Record a delivery; returns it with its seq and id, and whether it was new (False: a retry)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT seq, frame FROM deliveries WHERE idempotency_key = ?", (idempotency_key,)
                ).fetchone()
                if row is None:
                    payload = _encoder.encode(frame).decode()
                    cursor = self._db.execute(
                        "INSERT INTO deliveries (conversation, idempotency_key, frame) VALUES (?, ?, ?)",
                        (conversation, idempotency_key, payload),
                    )
                    assert cursor.lastrowid is not None
                    row = (cursor.lastrowid, payload)
                    created = True
                else:
                    created = False
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return _frame(row), created

    def unread(self, conversation: str, client: str, limit: int) -> tuple[list[StoredFrame], int]:
        """The newest `limit` deliveries the client has not acknowledged (oldest first) and how many older ones wait."""
        with self._lock:
            acked = self._acked(conversation, client)
            total = self._db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE conversation = ? AND seq > ?", (conversation, acked)
            ).fetchone()[0]
            rows = self._db.execute(
                "SELECT seq, frame FROM deliveries WHERE conversation = ? AND seq > ? ORDER BY seq DESC LIMIT ?",
                (conversation, acked, limit),
            ).fetchall()
        return [_frame(row) for row in reversed(rows)], max(0, total - len(rows))

    def ack(self, conversation: str, client: str, seq: int) -> int:
        """Move the client's position forward (never back, never past the last delivery); returns it."""
        with self._lock:
            last = self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM deliveries WHERE conversation = ?", (conversation,)
            ).fetchone()[0]
            self._db.execute(
                "INSERT INTO cursors (conversation, client, acked_seq) VALUES (?, ?, ?)"
                " ON CONFLICT (conversation, client) DO UPDATE"
                " SET acked_seq = MAX(acked_seq, excluded.acked_seq), updated_at = datetime('now')",
                (conversation, client, min(seq, last)),
            )
            return self._acked(conversation, client)

    def record_answer(self, card_id: str, option_id: str, user: str) -> None:
        """Remember the first choice made on a card, so a replayed card shows as answered."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO card_answers (card_id, option_id, user) VALUES (?, ?, ?)",
                (card_id, option_id, user),
            )

    def answer(self, card_id: str) -> tuple[str, str] | None:
        """(option id, user) of the card's recorded choice, or None while it is open."""
        with self._lock:
            row = self._db.execute("SELECT option_id, user FROM card_answers WHERE card_id = ?", (card_id,)).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def acked(self, conversation: str, client: str) -> int:
        with self._lock:
            return self._acked(conversation, client)

    def _acked(self, conversation: str, client: str) -> int:
        row = self._db.execute(
            "SELECT acked_seq FROM cursors WHERE conversation = ? AND client = ?", (conversation, client)
        ).fetchone()
        return int(row[0]) if row else 0


def _frame(row: tuple[int, str]) -> StoredFrame:
    seq = int(row[0])
    return msgspec.structs.replace(decode_stored(row[1].encode()), seq=seq, id=message_id(seq))
