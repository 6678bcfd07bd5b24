"""Helpers for the agent-runner tests: real session DB files written the way the host writes them.

inbound.db is created here with plain sqlite3 (the reference schema plus the
`on_wake` extension), so the runner is tested against files, not mocks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_runner.config import RunnerConfig, load_config
from agent_runner.db import SessionDb
from agent_runner.heartbeat import Heartbeat
from agent_runner.poll_loop import PollLoop
from agent_runner.providers.base import Provider, ProviderContext
from agent_runner.providers.factory import create_provider
from agent_runner.tools import build_toolbox
from agent_runner.tools.base import ToolBox, ToolContext
from agent_runner.wake import ChangeSignal, InboundWatcher

INBOUND_SCHEMA = """
CREATE TABLE messages_in (
  id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
  status TEXT DEFAULT 'pending', process_after TEXT, recurrence TEXT, tries INTEGER DEFAULT 0,
  platform_id TEXT, channel_type TEXT, thread_id TEXT, content TEXT NOT NULL{extra}
);
CREATE TABLE delivered (
  message_out_id TEXT PRIMARY KEY, platform_message_id TEXT,
  status TEXT NOT NULL DEFAULT 'delivered', delivered_at TEXT NOT NULL
);
CREATE TABLE destinations (
  name TEXT PRIMARY KEY, display_name TEXT, type TEXT NOT NULL,
  channel_type TEXT, platform_id TEXT, agent_group_id TEXT
);
CREATE TABLE session_routing (
  id INTEGER PRIMARY KEY CHECK (id = 1), channel_type TEXT, platform_id TEXT, thread_id TEXT
);
"""

MAIN_CHAT = ("terminal", "tty-main")
MAIN_DEST = ("main", "Main", "channel", *MAIN_CHAT, None)
OTHER_DEST = ("other", "Other chat", "channel", "slack", "C-other", None)


@contextmanager
def host_write(path: Path) -> Iterator[sqlite3.Connection]:
    """Open, write, commit, close: the host's per-operation discipline on inbound.db."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def create_inbound(path: Path, *, on_wake_column: bool = True) -> None:
    extra = ",\n  on_wake INTEGER DEFAULT 0, status_changed TEXT" if on_wake_column else ""
    with host_write(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.executescript(INBOUND_SCHEMA.format(extra=extra))


def create_session(workspace: Path) -> Path:
    """inbound.db with two channel destinations (`main`, `other`) and `main` as the default route."""
    create_inbound(workspace / "inbound.db")
    set_destinations(workspace, [MAIN_DEST, OTHER_DEST])
    set_routing(workspace, *MAIN_CHAT)
    return workspace


def next_even_seq(workspace: Path) -> int:
    top = 0
    for name, table in (("inbound.db", "messages_in"), ("outbound.db", "messages_out")):
        path = workspace / name
        if path.exists():
            conn = sqlite3.connect(path)
            try:
                top = max(top, conn.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {table}").fetchone()[0])
            except sqlite3.OperationalError:
                pass
            finally:
                conn.close()
    return top + 2 if top % 2 == 0 else top + 1


def add_message(
    workspace: Path,
    message_id: str,
    content: dict[str, Any] | str,
    *,
    kind: str = "chat",
    route: tuple[str, str] | None = MAIN_CHAT,
    thread_id: str | None = None,
    process_after: str | None = None,
    status: str = "pending",
    on_wake: bool = False,
    timestamp: str | None = None,
) -> int:
    seq = next_even_seq(workspace)
    body = content if isinstance(content, str) else json.dumps(content)
    columns = "id, seq, kind, timestamp, status, process_after, platform_id, channel_type, thread_id, content"
    values: list[Any] = [message_id, seq, kind, timestamp, status, process_after]
    values += [route[1] if route else None, route[0] if route else None, thread_id, body]
    if on_wake:
        columns += ", on_wake"
        values.append(1)
    marks = ", ".join(["?", "?", "?", "COALESCE(?, datetime('now'))"] + ["?"] * (len(values) - 4))
    with host_write(workspace / "inbound.db") as conn:
        conn.execute(f"INSERT INTO messages_in ({columns}) VALUES ({marks})", values)
    return seq


def record_delivery(workspace: Path, message_out_id: str, platform_message_id: str) -> None:
    with host_write(workspace / "inbound.db") as conn:
        conn.execute(
            "INSERT INTO delivered VALUES (?, ?, 'delivered', datetime('now'))", (message_out_id, platform_message_id)
        )


def chat(text: str, sender: str = "Alice", sender_id: str = "user-alice", **extra: Any) -> dict[str, Any]:
    return {"text": text, "sender": sender, "senderId": sender_id, **extra}


def set_destinations(workspace: Path, rows: list[tuple[str, str, str, str | None, str | None, str | None]]) -> None:
    """(name, display_name, type, channel_type, platform_id, agent_group_id) rows; replaces the map."""
    with host_write(workspace / "inbound.db") as conn:
        conn.execute("DELETE FROM destinations")
        conn.executemany("INSERT INTO destinations VALUES (?, ?, ?, ?, ?, ?)", rows)


def set_routing(
    workspace: Path, channel_type: str | None, platform_id: str | None, thread_id: str | None = None
) -> None:
    with host_write(workspace / "inbound.db") as conn:
        conn.execute(
            "INSERT OR REPLACE INTO session_routing VALUES (1, ?, ?, ?)", (channel_type, platform_id, thread_id)
        )


def read_outbound(workspace: Path, sql: str) -> list[sqlite3.Row]:
    """Rows from outbound.db as the host reads it: missing file or tables read as empty."""
    path = workspace / "outbound.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


def outbound_rows(workspace: Path) -> list[dict[str, Any]]:
    rows = [dict(r) for r in read_outbound(workspace, "SELECT * FROM messages_out ORDER BY seq")]
    for row in rows:
        row["body"] = json.loads(row["content"])
    return rows


def acks(workspace: Path) -> dict[str, str]:
    return {r[0]: r[1] for r in read_outbound(workspace, "SELECT message_id, status FROM processing_ack")}


def state(workspace: Path) -> dict[str, str]:
    return {r[0]: r[1] for r in read_outbound(workspace, "SELECT key, value FROM session_state")}


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def runner_env(workspace: Path, **overrides: str) -> dict[str, str]:
    env = {
        "AGENT_PROVIDER": "echo",
        "HERMITCRAB_WORKSPACE": str(workspace),
        "HERMITCRAB_ADMIN_USER_ID": "user-admin",
        "HERMITCRAB_ASSISTANT_NAME": "Crab",
        "HERMITCRAB_IS_ADMIN": "1",
        "TZ": "Pacific/Auckland",
    }
    env.update(overrides)
    return env


@dataclass
class Parts:
    config: RunnerConfig
    db: SessionDb
    signal: ChangeSignal
    context: ToolContext
    toolbox: ToolBox


def make_parts(workspace: Path, **env: str) -> Parts:
    """A config, an opened SessionDb and a tool context over `workspace`."""
    config = load_config(runner_env(workspace, **env))
    db = SessionDb(config.inbound_db, config.outbound_db).open()
    signal = ChangeSignal()
    context = ToolContext(db=db, config=config, signal=signal)
    return Parts(config, db, signal, context, build_toolbox(context))


class RunningLoop:
    """A PollLoop with the echo provider, in a thread, as the container would run it."""

    def __init__(self, workspace: Path, provider: Provider | None = None, **env: str) -> None:
        self.workspace = workspace
        self.parts = make_parts(workspace, **env)
        parts = self.parts
        self.provider = provider or create_provider(parts.config.provider, ProviderContext(parts.config, parts.toolbox))
        self.watcher = InboundWatcher(parts.config.inbound_db, parts.signal).start()
        self.loop = PollLoop(
            parts.config,
            parts.db,
            self.provider,
            parts.context,
            parts.signal,
            Heartbeat(parts.config.heartbeat),
            self.watcher,
            idle_poll_s=0.2,
        )
        self.thread = threading.Thread(target=self.loop.run, name="poll-loop", daemon=True)

    def __enter__(self) -> RunningLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.loop.stop()
        self.thread.join(timeout=10)
        self.watcher.stop()
        self.parts.db.close()
        assert not self.thread.is_alive(), "poll loop did not stop"

    def replies(self) -> list[dict[str, Any]]:
        return [r for r in outbound_rows(self.workspace) if r["kind"] != "system"]

    def wait_replies(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = wait_for(
            lambda: (r := self.replies()) and len(r) >= count and r, timeout, f"{count} replies"
        )
        return rows
