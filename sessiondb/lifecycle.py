"""A message's life as the host tracks it: acks copied in, due counts, claims, retries, recurrences.

The container never writes inbound.db; it records progress in
outbound.db's processing_ack (one row per message, its latest status). The host
copies those statuses into messages_in.status; it alone decides a retry (back to
'pending' after a delay) or gives up ('failed' after too many tries).

Retries make a claim go stale: after a reset, outbound.db may still hold the dead
container's 'processing' ack, and the host cannot delete it. So a 'processing'
ack only counts when it is newer than the host's last change of the row
(messages_in.status_changed, NULL until the host changes anything). At an
equal second a host change (pending, paused) wins: every host change that makes
a row pending again (retry, resume) also holds it until a later whole second, so
no fresh claim can share that second; between acks, equal seconds are normal
(claim and completion are ms apart). A finished ack ('completed', 'failed')
always counts, whatever its time: the work was done.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from sessiondb.clock import db_time_after, parse_db_time, parse_db_time_or_none, to_db_time, utc_now, utc_now_text
from sessiondb.connection import has_table, inbound_writer, outbound_reader, session_view
from sessiondb.errors import UnknownMessage
from sessiondb.inbound import INSERT_PENDING
from sessiondb.models import Claim, Occurrence, RecurringTask, RetryOutcome
from sessiondb.schema import ACK_STATUSES
from sessiondb.seq import next_even_seq, outbound_max_seq

_TERMINAL = ("completed", "failed")
# Unfinished statuses, spelled out so the status index can serve the lookups (NOT IN cannot).
_OPEN = "('pending', 'processing', 'paused')"
_UNKNOWN_TIME = datetime.fromtimestamp(0, UTC)


def ack_is_current(ack_status: str, ack_time: str, row_status: str, row_changed: str) -> str:
    """SQL: does this ack still speak for the row? (see module doc)"""
    return (
        f"({ack_status} IN ('completed', 'failed') OR {row_changed} IS NULL"
        f" OR datetime({ack_time}) > datetime({row_changed})"
        f" OR (datetime({ack_time}) = datetime({row_changed}) AND {row_status} NOT IN ('pending', 'paused')))"
    )


# The rule for an ack `a` against its row `m`, as the queries below join them.
_ACK_CURRENT = ack_is_current("a.status", "a.status_changed", "m.status", "m.status_changed")


def _now_text(now: datetime | None) -> str:
    return to_db_time(now) if now else utc_now_text()


def sync_processing_acks(session: Path, *, now: datetime | None = None) -> int:
    """Bring messages_in.status in line with the container's acks; returns the number of rows changed.

    - A current ack's status (and time) is copied in. Finished rows are never
      reopened, and a stale claim (a 'processing' ack from before a retry) is ignored.
    - A row the host saw as 'processing' whose ack has vanished was released
      by the container (a fresh one drops its predecessor's claims, a running
      one lets go of work it will take again): it is 'pending' once more, with
      status_changed cleared, since no ack for it exists that could be stale.

    Reads both files without the lock first, so the common case (nothing new) writes nothing.
    """
    statuses = ", ".join(f"'{s}'" for s in ACK_STATUSES)
    with session_view(session) as view:
        changes = view.conn.execute(
            f"SELECT a.message_id, a.status, a.status_changed FROM {view.messages_in} AS m"
            f" JOIN {view.acks} AS a ON a.message_id = m.id"
            f" WHERE m.status IN {_OPEN} AND a.status IN ({statuses})"
            f" AND m.status IS NOT a.status AND {_ACK_CURRENT}"
        ).fetchall()
        released = view.conn.execute(
            f"SELECT m.id, m.status_changed FROM {view.messages_in} AS m WHERE m.status = 'processing'"
            f" AND NOT EXISTS (SELECT 1 FROM {view.acks} AS a WHERE a.message_id = m.id)"
        ).fetchall()
    if not changes and not released:
        return 0
    fallback = _now_text(now)
    copies = []
    for message_id, status, changed in changes:
        parsed = parse_db_time_or_none(changed)
        copies.append({"id": message_id, "status": status, "t": to_db_time(parsed) if parsed else fallback})
    updated = 0
    with inbound_writer(session) as conn:
        for row in copies:
            updated += conn.execute(
                "UPDATE messages_in SET status = :status, status_changed = :t"
                " WHERE id = :id AND status NOT IN ('completed', 'failed') AND status IS NOT :status"
                f" AND {ack_is_current(':status', ':t', 'status', 'status_changed')}",
                row,
            ).rowcount
        for message_id, changed in released:
            updated += conn.execute(
                "UPDATE messages_in SET status = 'pending', status_changed = NULL"
                " WHERE id = ? AND status = 'processing' AND status_changed IS ?",
                (message_id, changed),
            ).rowcount
    return updated


def count_due(session: Path, *, now: datetime | None = None) -> int:
    """Pending messages whose time has come and that no container has taken: what a wake is for.

    `on_wake` rows are left out: they are notes for whichever container starts
    next, not work of their own, so they neither wake a session nor keep a
    running container (which will not take them) from counting as idle.
    """
    with session_view(session) as view:
        return int(
            view.conn.execute(
                f"SELECT COUNT(*) FROM {view.messages_in} AS m WHERE m.status = 'pending' AND ifnull(m.on_wake, 0) = 0"
                " AND (m.process_after IS NULL OR ifnull(datetime(m.process_after), '') <= :now)"
                f" AND NOT EXISTS (SELECT 1 FROM {view.acks} AS a WHERE a.message_id = m.id"
                f" AND {_ACK_CURRENT})",
                {"now": _now_text(now)},
            ).fetchone()[0]
        )


def claimed_messages(session: Path) -> list[Claim]:
    """Messages a container acked as 'processing' and has not finished, in seq order.

    The host judges stuck containers by these, and resets them when their
    container is gone. A claim older than the current container's spawn belongs
    to a predecessor and is the caller's to discount.
    """
    with session_view(session) as view:
        rows = view.conn.execute(
            "SELECT m.id, m.seq, m.kind, m.tries, a.status_changed, m.channel_type, m.platform_id, m.thread_id"
            f" FROM {view.messages_in} AS m JOIN {view.acks} AS a ON a.message_id = m.id"
            f" WHERE m.status IN {_OPEN} AND a.status = 'processing'"
            f" AND {_ACK_CURRENT}"
            " ORDER BY m.seq"
        ).fetchall()
    return [
        Claim(
            message_id=message_id,
            seq=seq,
            kind=kind,
            tries=tries or 0,
            claimed_at=parse_db_time_or_none(claimed_at) or _UNKNOWN_TIME,
            channel_type=channel_type,
            platform_id=platform_id,
            thread_id=thread_id,
        )
        for message_id, seq, kind, tries, claimed_at, channel_type, platform_id, thread_id in rows
    ]


def _current_ack(session: Path, message_id: str) -> tuple[str, str] | None:
    with outbound_reader(session) as out:
        if out is None or not has_table(out, "processing_ack"):
            return None
        row = out.execute(
            "SELECT status, status_changed FROM processing_ack WHERE message_id = ?", (message_id,)
        ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def reset_for_retry(
    session: Path, message_id: str, *, now: datetime, base_delay_s: float = 5.0, max_tries: int = 5
) -> RetryOutcome:
    """Give a message whose container died or was stopped another go, later; or fail it for good.

    `tries` counts failed attempts. After attempt n fails (n < max_tries) the
    message is pending again after base_delay_s * 2**(n-1) seconds (5, 10, 20,
    40 by default); when attempt max_tries fails it is marked 'failed'.

    Repeats change nothing: a second call for the same failure (the row was
    already reset after its last claim, whatever `now` says), a finished or
    paused row, or a row whose container already acked it finished.
    """
    now_text = to_db_time(now)
    ack = _current_ack(session, message_id)
    ack_status, ack_time = ack if ack else (None, None)
    with inbound_writer(session) as conn:
        row = conn.execute(
            "SELECT status, tries, status_changed, process_after,"
            f" :ack_time IS NOT NULL AND {ack_is_current(':ack_status', ':ack_time', 'status', 'status_changed')}"
            " FROM messages_in WHERE id = :id",
            {"id": message_id, "ack_status": ack_status, "ack_time": ack_time},
        ).fetchone()
        if row is None:
            raise UnknownMessage(f"no message {message_id!r} in {session}")
        status, tries, status_changed, process_after, ack_current = row
        tries = tries or 0
        unchanged = RetryOutcome(
            message_id=message_id,
            status=status,
            tries=tries,
            retry_at=parse_db_time_or_none(process_after) if status == "pending" else None,
            changed=False,
        )
        already_reset = status == "pending" and status_changed is not None and not ack_current
        if status in (*_TERMINAL, "paused") or already_reset or (ack_current and ack_status in _TERMINAL):
            return unchanged
        attempts = tries + 1
        if attempts >= max_tries:
            conn.execute(
                "UPDATE messages_in SET status = 'failed', tries = ?, status_changed = ? WHERE id = ?",
                (attempts, now_text, message_id),
            )
            return RetryOutcome(message_id=message_id, status="failed", tries=attempts, retry_at=None, changed=True)
        retry_at = db_time_after(now, base_delay_s * 2 ** (attempts - 1))
        conn.execute(
            "UPDATE messages_in SET status = 'pending', tries = ?, process_after = ?, status_changed = ? WHERE id = ?",
            (attempts, retry_at, now_text, message_id),
        )
        return RetryOutcome(
            message_id=message_id, status="pending", tries=attempts, retry_at=parse_db_time(retry_at), changed=True
        )


def finished_recurring(session: Path) -> list[RecurringTask]:
    """Finished rows that still carry a recurrence, in seq order: each needs its next occurrence scheduled.

    A failed run recurs too: one bad run of a daily task should not end it.
    """
    with session_view(session) as view:
        # `+status` and sorting here keep SQLite on the small index of recurring rows
        # instead of walking the status or seq index over the whole history.
        rows = view.conn.execute(
            f"SELECT seq, id, kind, recurrence, status, process_after FROM {view.messages_in}"
            " WHERE recurrence IS NOT NULL AND +status IN ('completed', 'failed')"
        ).fetchall()
    return [
        RecurringTask(
            message_id=message_id,
            kind=kind,
            recurrence=recurrence,
            status=status,
            process_after=parse_db_time_or_none(process_after),
        )
        for _, message_id, kind, recurrence, status, process_after in sorted(rows, key=lambda row: row[0] or 0)
    ]


def schedule_next_recurrence(
    session: Path, message_id: str, next_time: datetime, *, new_id: str | None = None, now: datetime | None = None
) -> Occurrence | None:
    """Insert the next occurrence of a finished recurring row and hand the recurrence over to it.

    The new row copies kind, routing and content, keeps the recurrence, gets an
    even seq and waits until `next_time`; the old row's recurrence is cleared in
    the same transaction, so calling again is a no-op (returns None), as is a
    call for a row that is not finished or not recurring.
    """
    process_after = to_db_time(next_time)
    out_max = outbound_max_seq(session)
    with inbound_writer(session) as conn:
        row = conn.execute(
            "SELECT kind, recurrence, status, platform_id, channel_type, thread_id, content"
            " FROM messages_in WHERE id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            raise UnknownMessage(f"no message {message_id!r} in {session}")
        kind, recurrence, status, platform_id, channel_type, thread_id, content = row
        if recurrence is None or status not in _TERMINAL:
            return None
        seq = next_even_seq(conn, out_max)
        occurrence_id = new_id or f"{kind}-{uuid.uuid4().hex}"
        conn.execute(
            INSERT_PENDING,
            {
                "id": occurrence_id,
                "seq": seq,
                "kind": kind,
                "timestamp": to_db_time(now or utc_now()),
                "process_after": process_after,
                "recurrence": recurrence,
                "platform_id": platform_id,
                "channel_type": channel_type,
                "thread_id": thread_id,
                "content": content,
                "on_wake": 0,
            },
        )
        conn.execute("UPDATE messages_in SET recurrence = NULL WHERE id = ?", (message_id,))
    return Occurrence(message_id=occurrence_id, seq=seq, process_after=parse_db_time(process_after))
