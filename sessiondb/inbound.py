"""Host writes into inbound.db: the session folder, new messages, the destination map, default routing, tasks.

Each function is one locked open-write-close of inbound.db (see connection.py).
"""

from __future__ import annotations

import stat
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sessiondb.attachments import plan_attachments, saved_attachments
from sessiondb.clock import db_time_after, to_db_time, utc_now, utc_now_text
from sessiondb.connection import inbound_writer
from sessiondb.errors import InvalidInput, ProtocolViolation
from sessiondb.models import DestinationRow, InboundMessage
from sessiondb.paths import inbox_dir, outbox_dir
from sessiondb.seq import next_even_seq, outbound_max_seq

# A new pending row; the one statement that adds to messages_in.
INSERT_PENDING = (
    "INSERT INTO messages_in (id, seq, kind, timestamp, status, process_after, recurrence, tries,"
    " platform_id, channel_type, thread_id, content, on_wake)"
    " VALUES (:id, :seq, :kind, :timestamp, 'pending', :process_after, :recurrence, 0,"
    " :platform_id, :channel_type, :thread_id, :content, :on_wake)"
)


def _ensure_real_dir(path: Path) -> None:
    path.mkdir(mode=0o755, exist_ok=True)
    if not stat.S_ISDIR(path.lstat().st_mode):
        raise ProtocolViolation(f"{path} is a symlink or not a directory")


def create_session_folder(session: Path) -> None:
    """Make the folder, outbox/, inbox/ and inbound.db with its schema; safe to repeat.

    outbound.db is left to the container, its only writer, which creates it.
    """
    session.mkdir(mode=0o755, parents=True, exist_ok=True)
    _ensure_real_dir(outbox_dir(session))
    _ensure_real_dir(inbox_dir(session))
    with inbound_writer(session, create=True):
        pass


class _AlreadyStored(Exception):
    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.seq = seq


def insert_message(session: Path, message: InboundMessage) -> int:
    """Store a pending message and return its (even) seq.

    Base64 attachments in the content are saved under inbox/ first; a bad one
    refuses the whole message with AttachmentError and writes nothing. Storing
    an id that is already there writes nothing and returns the stored seq, so a
    channel's redelivery is harmless.
    """
    if not message.id:
        raise InvalidInput("a message needs a non-empty id")
    if not message.kind:
        raise InvalidInput(f"message {message.id!r} needs a non-empty kind")
    timestamp = to_db_time(message.timestamp or utc_now())
    process_after = to_db_time(message.process_after) if message.process_after else None
    plan = plan_attachments(message.content)
    out_max = outbound_max_seq(session)
    try:
        with saved_attachments(session, message.id, plan) as rewritten, inbound_writer(session) as conn:
            row = conn.execute("SELECT seq FROM messages_in WHERE id = ?", (message.id,)).fetchone()
            if row is not None:
                raise _AlreadyStored(int(row[0]))
            seq = next_even_seq(conn, out_max)
            conn.execute(
                INSERT_PENDING,
                {
                    "id": message.id,
                    "seq": seq,
                    "kind": message.kind,
                    "timestamp": timestamp,
                    "process_after": process_after,
                    "recurrence": message.recurrence,
                    "platform_id": message.platform_id,
                    "channel_type": message.channel_type,
                    "thread_id": message.thread_id,
                    "content": message.content if rewritten is None else rewritten,
                    "on_wake": int(message.on_wake),
                },
            )
    except _AlreadyStored as stored:
        return stored.seq
    return seq


def _check_destinations(rows: Sequence[DestinationRow]) -> None:
    duplicates = sorted(name for name, count in Counter(row.name for row in rows).items() if count > 1)
    if duplicates:
        raise InvalidInput(f"destination names must be unique; repeated: {', '.join(duplicates)}")
    for row in rows:
        if not row.name:
            raise InvalidInput("a destination needs a non-empty name")
        if row.type == "channel" and not (row.channel_type and row.platform_id):
            raise InvalidInput(f"channel destination {row.name!r} needs channel_type and platform_id")
        if row.type == "agent" and not row.agent_group_id:
            raise InvalidInput(f"agent destination {row.name!r} needs agent_group_id")
        if row.type not in ("channel", "agent"):
            raise InvalidInput(f"destination {row.name!r} has unknown type {row.type!r}")


def write_destinations(session: Path, rows: Sequence[DestinationRow]) -> None:
    """Replace the whole destination map in one transaction (the container never sees half a map)."""
    _check_destinations(rows)
    with inbound_writer(session) as conn:
        conn.execute("DELETE FROM destinations")
        conn.executemany(
            "INSERT INTO destinations (name, display_name, type, channel_type, platform_id, agent_group_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(r.name, r.display_name, r.type, r.channel_type, r.platform_id, r.agent_group_id) for r in rows],
        )


def write_routing(session: Path, channel_type: str | None, platform_id: str | None, thread_id: str | None) -> None:
    """Set where a reply goes when the agent names no destination (the single row id=1)."""
    with inbound_writer(session) as conn:
        conn.execute(
            "INSERT INTO session_routing (id, channel_type, platform_id, thread_id) VALUES (1, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET channel_type = excluded.channel_type,"
            " platform_id = excluded.platform_id, thread_id = excluded.thread_id",
            (channel_type, platform_id, thread_id),
        )


def _change_task(session: Path, sql: str, task_id: str, now: datetime | None) -> bool:
    changed_at = to_db_time(now) if now else utc_now_text()
    with inbound_writer(session) as conn:
        return conn.execute(sql, {"id": task_id, "now": changed_at}).rowcount > 0


def cancel_task(session: Path, task_id: str, *, now: datetime | None = None) -> bool:
    """Stop a task for good: a waiting occurrence is closed and no further one will be scheduled.

    A task that is running right now finishes, but does not recur. Returns
    whether anything changed.
    """
    return _change_task(
        session,
        "UPDATE messages_in SET recurrence = NULL,"
        " status = CASE WHEN status IN ('pending', 'paused') THEN 'completed' ELSE status END,"
        " status_changed = CASE WHEN status IN ('pending', 'paused') THEN :now ELSE status_changed END"
        " WHERE id = :id AND kind = 'task' AND (status IN ('pending', 'paused') OR recurrence IS NOT NULL)",
        task_id,
        now,
    )


def pause_task(session: Path, task_id: str, *, now: datetime | None = None) -> bool:
    """Hold a waiting task (containers take only 'pending' rows). Returns whether it was waiting."""
    return _change_task(
        session,
        "UPDATE messages_in SET status = 'paused', status_changed = :now"
        " WHERE id = :id AND kind = 'task' AND status = 'pending'",
        task_id,
        now,
    )


def resume_task(session: Path, task_id: str, *, now: datetime | None = None) -> bool:
    """Release a paused task. Returns whether it was paused.

    Like a retry, it is not due before the next whole second, so a container's
    claim can never share the second of this host change (see lifecycle.py).
    """
    moment = now or utc_now()
    with inbound_writer(session) as conn:
        return (
            conn.execute(
                "UPDATE messages_in SET status = 'pending', status_changed = :now,"
                " process_after = CASE WHEN process_after IS NOT NULL AND datetime(process_after) >= :next"
                " THEN process_after ELSE :next END"
                " WHERE id = :id AND kind = 'task' AND status = 'paused'",
                {"id": task_id, "now": to_db_time(moment), "next": db_time_after(moment, 0)},
            ).rowcount
            > 0
        )
