"""The container's side of the session-DB protocol: every SQL statement the runner runs.

- `inbound.db` belongs to the host. The runner opens it read-only, with a fresh
  connection per read and `mmap_size=0`, so no long-lived handle or mapped page
  can serve a stale view across the container mount.
- `outbound.db` belongs to the runner: replies, system actions, processing acks
  and its own key/value state. It creates the schema itself (CREATE TABLE IF NOT
  EXISTS, journal_mode=DELETE) and is its only writer; the poll loop and the tool
  threads share one connection behind a lock.
- Seqs: the runner's rows get odd seqs, the next odd number above the highest seq
  in *both* files, so one seq names one message across the pair (the edit and
  reaction tools rely on it).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from agent_runner.routes import Destination, Route

INBOUND_COLUMNS = (
    "id",
    "seq",
    "kind",
    "timestamp",
    "status",
    "process_after",
    "recurrence",
    "tries",
    "platform_id",
    "channel_type",
    "thread_id",
    "content",
)

OUTBOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages_out (
  id             TEXT PRIMARY KEY,
  seq            INTEGER UNIQUE,
  in_reply_to    TEXT,
  timestamp      TEXT NOT NULL,
  deliver_after  TEXT,
  recurrence     TEXT,
  kind           TEXT NOT NULL,
  platform_id    TEXT,
  channel_type   TEXT,
  thread_id      TEXT,
  content        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS processing_ack (
  message_id     TEXT PRIMARY KEY,
  status         TEXT NOT NULL,
  status_changed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS session_state (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
"""

AckStatus = Literal["processing", "completed", "failed"]
CHAT_KINDS = frozenset({"chat", "chat-sdk"})
_SQLITE_MAX_PARAMS = 900
LOCK_WAIT_S = 10.0
LOCK_RETRY_S = 0.0002


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def retry_busy(conn: sqlite3.Connection, sql: str) -> None:
    """Run `sql`, retrying every 0.2 ms while the other side holds a lock.

    The two sides only ever hold a lock for a moment, but SQLite's own busy
    handler sleeps 1, 2, 5, 10 ms… between tries, which costs a reply several
    milliseconds per collision. The built-in handler is switched off meanwhile.
    """
    deadline = time.monotonic() + LOCK_WAIT_S
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                conn.execute(sql)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(LOCK_RETRY_S)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")


def new_id(prefix: str) -> str:
    """A unique message id: readable prefix, millisecond clock, random tail."""
    return f"{prefix}-{int(time.time() * 1000)}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class InboundMessage:
    """A row of `messages_in` as the runner sees it."""

    id: str
    seq: int | None
    kind: str
    timestamp: str
    status: str
    process_after: str | None
    recurrence: str | None
    tries: int
    platform_id: str | None
    channel_type: str | None
    thread_id: str | None
    content: str
    on_wake: bool = False

    @property
    def route(self) -> Route | None:
        return Route.of(self.channel_type, self.platform_id, self.thread_id)

    @property
    def is_chat(self) -> bool:
        return self.kind in CHAT_KINDS

    @cached_property
    def payload(self) -> dict[str, Any]:
        """The decoded content; a body that is not a JSON object is read as plain text."""
        try:
            decoded = json.loads(self.content)
        except (json.JSONDecodeError, TypeError):
            return {"text": self.content}
        return decoded if isinstance(decoded, dict) else {"text": self.content}


@dataclass(frozen=True)
class OutboundRef:
    id: str
    seq: int


@dataclass(frozen=True)
class OutboundRow:
    id: str
    seq: int
    kind: str
    route: Route | None
    content: str


class SessionDb:
    """Both session files of one session, from the container's side."""

    def __init__(self, inbound_path: Path, outbound_path: Path) -> None:
        self.inbound_path = inbound_path
        self.outbound_path = outbound_path
        self._lock = threading.RLock()
        self._depth = 0
        self._out: sqlite3.Connection | None = None
        # Inbound ids acked here (any status), so a poll rarely has to ask outbound.db.
        self._acked: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------

    def open(self) -> SessionDb:
        self.outbound_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.outbound_path, isolation_level=None, check_same_thread=False, timeout=LOCK_WAIT_S)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.executescript(f"BEGIN IMMEDIATE;{OUTBOUND_SCHEMA}COMMIT;")  # all tables appear at once
        columns = {row[1] for row in conn.execute("PRAGMA table_info(session_state)")}
        if "updated_at" not in columns:
            conn.execute("ALTER TABLE session_state ADD COLUMN updated_at TEXT NOT NULL DEFAULT ''")
        self._out = conn
        return self

    def close(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None

    @property
    def out(self) -> sqlite3.Connection:
        if self._out is None:
            raise RuntimeError("SessionDb.open() was not called")
        return self._out

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One outbound transaction; nested uses join the outer one (one commit, one fsync)."""
        with self._lock:
            conn = self.out
            if self._depth == 0:
                retry_busy(conn, "BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield conn
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    conn.execute("ROLLBACK")
                    self._acked.clear()  # it may hold ids whose acks were just rolled back
                raise
            self._depth -= 1
            if self._depth == 0:
                try:
                    retry_busy(conn, "COMMIT")  # waits for the host's readers to let go
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    self._acked.clear()
                    raise

    @contextmanager
    def read_inbound(self) -> Iterator[sqlite3.Connection]:
        """A fresh read-only connection to inbound.db, closed after use.

        The reads run in one transaction, so several statements see one state of
        the file, and the shared lock is taken with fine-grained retries.
        """
        uri = self.inbound_path.absolute().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=LOCK_WAIT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA mmap_size=0")
            conn.execute("BEGIN")
            retry_busy(conn, "SELECT count(*) FROM sqlite_master")
            yield conn
        finally:
            conn.close()

    # -- inbound reads ---------------------------------------------------------------

    def pending_messages(self, *, include_on_wake: bool) -> list[InboundMessage]:
        """Due pending rows not yet acked here, oldest first.

        `on_wake` rows (resume notes the host leaves for the *next* container) are
        taken only when `include_on_wake` is set: by a freshly started runner.
        """
        if not self.inbound_path.exists():
            return []
        with self.read_inbound() as conn:
            has_on_wake = "on_wake" in _columns(conn, "messages_in")
            sql = (
                f"SELECT {', '.join(INBOUND_COLUMNS)}{', on_wake' if has_on_wake else ''} FROM messages_in"
                " WHERE status = 'pending' AND (process_after IS NULL OR process_after <= datetime('now'))"
            )
            if has_on_wake and not include_on_wake:
                sql += " AND COALESCE(on_wake, 0) = 0"
            rows = conn.execute(sql + " ORDER BY timestamp, seq").fetchall()
        # Rows this runner finished stay 'pending' until the host's next sync: skip them cheaply.
        rows = [row for row in rows if row[0] not in self._acked]
        if not rows:
            return []
        acked = self.acked_ids(row[0] for row in rows)
        return [_inbound(row) for row in rows if row[0] not in acked]

    def inbound_by_seq(self, seq: int) -> InboundMessage | None:
        if not self.inbound_path.exists():
            return None
        with self.read_inbound() as conn:
            row = conn.execute(f"SELECT {', '.join(INBOUND_COLUMNS)} FROM messages_in WHERE seq = ?", (seq,)).fetchone()
        return _inbound(row) if row else None

    def delivered_platform_id(self, message_out_id: str) -> str | None:
        """The platform's id for one of our delivered messages (the host records it in `delivered`)."""
        if not self.inbound_path.exists():
            return None
        with self.read_inbound() as conn:
            try:
                row = conn.execute(
                    "SELECT platform_message_id FROM delivered WHERE message_out_id = ?", (message_out_id,)
                ).fetchone()
            except sqlite3.OperationalError:
                return None
        return str(row[0]) if row and row[0] else None

    def tasks(self, status: str | None) -> list[InboundMessage]:
        """Scheduled tasks (kind='task'); all but completed ones unless a status is given."""
        if not self.inbound_path.exists():
            return []
        sql = f"SELECT {', '.join(INBOUND_COLUMNS)} FROM messages_in WHERE kind = 'task'"
        params: tuple[str, ...] = ()
        if status:
            sql += " AND status = ?"
            params = (status,)
        else:
            sql += " AND status NOT IN ('completed', 'failed')"
        with self.read_inbound() as conn:
            rows = conn.execute(sql + " ORDER BY process_after, seq", params).fetchall()
        return [_inbound(row) for row in rows]

    def pending_system_messages(self) -> list[InboundMessage]:
        """Pending `kind='system'` rows not yet acked (answers the tools wait for)."""
        if not self.inbound_path.exists():
            return []
        with self.read_inbound() as conn:
            rows = conn.execute(
                f"SELECT {', '.join(INBOUND_COLUMNS)} FROM messages_in"
                " WHERE kind = 'system' AND status = 'pending' ORDER BY seq"
            ).fetchall()
        messages = [_inbound(row) for row in rows]
        acked = self.acked_ids(m.id for m in messages)
        return [m for m in messages if m.id not in acked]

    def destinations(self) -> list[Destination]:
        """The live destination map (the host rewrites it whenever wiring changes)."""
        if not self.inbound_path.exists():
            return []
        with self.read_inbound() as conn:
            try:
                rows = conn.execute(
                    "SELECT name, display_name, type, channel_type, platform_id, agent_group_id"
                    " FROM destinations ORDER BY name"
                ).fetchall()
            except sqlite3.OperationalError:
                return []
        return [
            Destination(
                name=row[0],
                display_name=row[1] or row[0],
                type="agent" if row[2] == "agent" else "channel",
                channel_type=row[3],
                platform_id=row[4],
                agent_group_id=row[5],
            )
            for row in rows
        ]

    def session_routing(self) -> Route | None:
        """The session's default reply route (single row id=1), if the host wrote one."""
        if not self.inbound_path.exists():
            return None
        with self.read_inbound() as conn:
            try:
                row = conn.execute(
                    "SELECT channel_type, platform_id, thread_id FROM session_routing WHERE id = 1"
                ).fetchone()
            except sqlite3.OperationalError:
                return None
        return Route.of(row[0], row[1], row[2]) if row else None

    def max_inbound_seq(self) -> int:
        if not self.inbound_path.exists():
            return 0
        with self.read_inbound() as conn:
            row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages_in").fetchone()
        return int(row[0])

    # -- outbound writes -------------------------------------------------------------

    def write_message(
        self,
        *,
        kind: str,
        content: dict[str, Any],
        route: Route | None,
        in_reply_to: str | None = None,
        message_id: str | None = None,
        deliver_after: str | None = None,
    ) -> OutboundRef:
        """Append one row to messages_out with the next odd seq."""
        message_id = message_id or new_id("out")
        with self.transaction() as conn:
            max_out = int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM messages_out").fetchone()[0])
            top = max(max_out, self.max_inbound_seq())
            seq = top + 1 if top % 2 == 0 else top + 2
            conn.execute(
                "INSERT INTO messages_out (id, seq, in_reply_to, timestamp, deliver_after, recurrence, kind,"
                " platform_id, channel_type, thread_id, content)"
                " VALUES (?, ?, ?, datetime('now'), ?, NULL, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    seq,
                    in_reply_to,
                    deliver_after,
                    kind,
                    route.platform_id if route else None,
                    route.channel_type if route else None,
                    route.thread_id if route else None,
                    json.dumps(content, ensure_ascii=False),
                ),
            )
        return OutboundRef(message_id, seq)

    def outbound_by_seq(self, seq: int) -> OutboundRow | None:
        with self._lock:
            row = self.out.execute(
                "SELECT id, seq, kind, channel_type, platform_id, thread_id, content FROM messages_out WHERE seq = ?",
                (seq,),
            ).fetchone()
        if row is None:
            return None
        return OutboundRow(row[0], row[1], row[2], Route.of(row[3], row[4], row[5]), row[6])

    # -- processing acks -------------------------------------------------------------

    def mark(self, ids: Iterable[str], status: AckStatus) -> None:
        ids = list(ids)
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO processing_ack (message_id, status, status_changed)"
                " VALUES (?, ?, datetime('now'))",
                [(message_id, status) for message_id in ids],
            )
            self._acked.update(ids)

    def forget_acks(self, ids: Iterable[str]) -> None:
        """Drop acks so the rows are taken again (a follow-up that could not be delivered)."""
        ids = list(ids)
        with self.transaction() as conn:
            conn.executemany("DELETE FROM processing_ack WHERE message_id = ?", [(i,) for i in ids])
            self._acked.difference_update(ids)

    def clear_stale_processing(self) -> int:
        """Forget 'processing' acks a crashed predecessor left, so those rows are processed again."""
        self._acked.clear()
        with self.transaction() as conn:
            return conn.execute("DELETE FROM processing_ack WHERE status = 'processing'").rowcount

    def acked_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` have an ack (any status) in outbound.db."""
        ids = list(ids)
        found = {i for i in ids if i in self._acked}
        wanted = [i for i in ids if i not in found]
        with self._lock:
            for start in range(0, len(wanted), _SQLITE_MAX_PARAMS):
                chunk = wanted[start : start + _SQLITE_MAX_PARAMS]
                marks = ", ".join("?" * len(chunk))
                found.update(
                    row[0]
                    for row in self.out.execute(
                        f"SELECT message_id FROM processing_ack WHERE message_id IN ({marks})", chunk
                    )
                )
            self._acked.update(found)
        return found

    def ack_status(self, message_id: str) -> str | None:
        with self._lock:
            row = self.out.execute("SELECT status FROM processing_ack WHERE message_id = ?", (message_id,)).fetchone()
        return str(row[0]) if row else None

    # -- key/value state -------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        with self._lock:
            row = self.out.execute("SELECT value FROM session_state WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_state(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO session_state (key, value, updated_at) VALUES (?, ?, datetime('now'))",
                (key, value),
            )

    def delete_state(self, key: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM session_state WHERE key = ?", (key,))

    def delete_state_prefix(self, prefix: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM session_state WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _inbound(row: tuple[Any, ...]) -> InboundMessage:
    return InboundMessage(
        id=str(row[0]),
        seq=row[1],
        kind=str(row[2]),
        timestamp=str(row[3]),
        status=str(row[4] or "pending"),
        process_after=row[5],
        recurrence=row[6],
        tries=int(row[7] or 0),
        platform_id=row[8],
        channel_type=row[9],
        thread_id=row[10],
        content=str(row[11]),
        on_wake=bool(row[12]) if len(row) > 12 else False,
    )
