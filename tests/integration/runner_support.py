"""Driving a real container's runner through its session folder, as the host does."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

import sessiondb
from actors import admin
from actors.host import Host
from events.model import Session


def chat_session(host: Host, name: str) -> tuple[Session, Path]:
    """A group wired to a test conversation, with a session and its folder ready for messages."""
    assert host.log is not None
    group = admin.create_group(host.log, host.settings, name=name)
    conversation = admin.ensure_messaging_group(host.log, "test", f"chat-{name}", name=f"chat-{name}")
    admin.wire(host.log, conversation, group)
    session = admin.create_session(host.log, group, messaging_group_id=conversation.id)
    folder = sessiondb.session_dir(host.settings.sessions_dir, group.id, session.id)
    sessiondb.create_session_folder(folder)
    return session, folder


def send_chat(folder: Path, text: str, sender: str = "ann") -> str:
    message_id = f"in-{uuid.uuid4().hex[:10]}"
    sessiondb.insert_message(
        folder,
        sessiondb.InboundMessage(
            id=message_id,
            kind="chat",
            content=json.dumps({"text": text, "sender": sender, "senderId": f"user-{sender}"}),
        ),
    )
    return message_id


def replies(folder: Path) -> list[sqlite3.Row]:
    """Every row the container wrote to outbound.db, in seq order (read-only; the host never writes it)."""
    path = sessiondb.outbound_path(folder)
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM messages_out ORDER BY seq").fetchall()
    except sqlite3.OperationalError:  # the container is creating its schema right now
        return []
    finally:
        conn.close()


def reply_to(folder: Path, message_id: str, timeout_s: float, poll_s: float = 0.0005) -> sqlite3.Row:
    """Wait for the container's answer to one message; polls the file's mtime, queries only when it moved."""
    path = sessiondb.outbound_path(folder)
    deadline = time.monotonic() + timeout_s
    seen_mtime = -1
    while time.monotonic() < deadline:
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = -1
        if mtime != seen_mtime:
            seen_mtime = mtime
            for row in replies(folder):
                if row["in_reply_to"] == message_id:
                    return row
        time.sleep(poll_s)
    raise AssertionError(f"no reply to {message_id} within {timeout_s}s")
