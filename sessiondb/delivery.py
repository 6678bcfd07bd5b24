"""What the container wants sent, and the host's record of what it sent.

The outcome of a delivery goes into inbound.db's `delivered` table, never into
outbound.db (the container's file): a row there, delivered or failed, takes the
message out of due_outbound for good.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sessiondb.clock import parse_db_time_or_none, to_db_time, utc_now_text
from sessiondb.connection import inbound_writer, session_view
from sessiondb.models import OutboundMessage


def due_outbound(session: Path, *, now: datetime | None = None) -> list[OutboundMessage]:
    """messages_out rows with no delivery record whose deliver_after is unset or past, in seq order."""
    with session_view(session) as view:
        if view.messages_out is None:
            return []
        rows = view.conn.execute(
            "SELECT o.id, o.seq, o.kind, o.content, o.timestamp, o.in_reply_to, o.deliver_after, o.recurrence,"
            f" o.platform_id, o.channel_type, o.thread_id FROM {view.messages_out} AS o"
            " WHERE NOT EXISTS (SELECT 1 FROM delivered AS d WHERE d.message_out_id = o.id)"
            " AND (o.deliver_after IS NULL OR ifnull(datetime(o.deliver_after), '') <= :now)"
            " ORDER BY o.seq IS NULL, o.seq, o.timestamp",
            {"now": to_db_time(now) if now else utc_now_text()},
        ).fetchall()
    return [
        OutboundMessage(
            id=row[0],
            seq=row[1],
            kind=row[2],
            content=row[3],
            timestamp=parse_db_time_or_none(row[4]),
            in_reply_to=row[5],
            deliver_after=parse_db_time_or_none(row[6]),
            recurrence=row[7],
            platform_id=row[8],
            channel_type=row[9],
            thread_id=row[10],
        )
        for row in rows
    ]


def record_delivered(
    session: Path, message_out_id: str, platform_message_id: str | None, *, now: datetime | None = None
) -> bool:
    """Note a successful send. Returns False if it was already noted (the first record stands).

    Overrides an earlier 'failed' record: a message sent after all is sent.
    """
    with inbound_writer(session) as conn:
        return (
            conn.execute(
                "INSERT INTO delivered (message_out_id, platform_message_id, status, delivered_at, error)"
                " VALUES (?, ?, 'delivered', ?, NULL)"
                " ON CONFLICT(message_out_id) DO UPDATE SET platform_message_id = excluded.platform_message_id,"
                " status = 'delivered', delivered_at = excluded.delivered_at, error = NULL"
                " WHERE delivered.status != 'delivered'",
                (message_out_id, platform_message_id, to_db_time(now) if now else utc_now_text()),
            ).rowcount
            > 0
        )


def record_failed(session: Path, message_out_id: str, error: str, *, now: datetime | None = None) -> bool:
    """Give up on a message for good, with the reason. Returns False if any record already existed."""
    with inbound_writer(session) as conn:
        return (
            conn.execute(
                "INSERT OR IGNORE INTO delivered (message_out_id, platform_message_id, status, delivered_at, error)"
                " VALUES (?, NULL, 'failed', ?, ?)",
                (message_out_id, to_db_time(now) if now else utc_now_text(), error),
            ).rowcount
            > 0
        )
