"""A message's life on the host side: acks copied in, due counts, claims, retries with backoff, recurrences."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sessiondb import (
    InboundMessage,
    UnknownMessage,
    claimed_messages,
    count_due,
    create_session_folder,
    finished_recurring,
    insert_message,
    parse_db_time,
    pause_task,
    reset_for_retry,
    resume_task,
    schedule_next_recurrence,
    session_dir,
    sync_processing_acks,
    to_db_time,
)
from tests.unit.sessiondb_fake_container import FakeContainer

T0 = datetime(2024, 3, 1, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def session(tmp_path: Path) -> Path:
    folder = session_dir(tmp_path / "sessions", "ag", "s1")
    create_session_folder(folder)
    return folder


def _status(session: Path, message_id: str) -> tuple[object, ...]:
    with sqlite3.connect(session / "inbound.db") as conn:
        row = conn.execute(
            "SELECT status, tries, process_after, status_changed FROM messages_in WHERE id = ?", (message_id,)
        ).fetchone()
    assert row is not None
    return tuple(row)


def _insert(session: Path, message_id: str, kind: str = "chat", **fields: Any) -> int:
    return insert_message(session, InboundMessage(id=message_id, kind=kind, content="{}", **fields))


def test_due_now_in_utc_is_counted_and_due_in_an_hour_is_not(session: Path) -> None:
    now = datetime.now(UTC)
    _insert(session, "now", process_after=now)
    _insert(session, "later", process_after=now + timedelta(hours=1))
    _insert(session, "unset")
    assert count_due(session) == 2
    assert count_due(session, now=now + timedelta(hours=1)) == 3


def test_count_due_reads_old_iso_process_after_correctly(session: Path) -> None:
    _insert(session, "m1")
    with sqlite3.connect(session / "inbound.db") as conn:
        conn.execute("UPDATE messages_in SET process_after = '2024-03-01T08:30:00Z'")
    assert count_due(session, now=T0 + timedelta(minutes=29)) == 0
    assert count_due(session, now=T0 + timedelta(minutes=30)) == 1


def test_acked_messages_are_not_due(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "m1")
    _insert(session, "m2")
    container.ack("m1", "processing")
    assert count_due(session) == 1
    container.ack("m1", "completed")
    assert count_due(session) == 1


def test_sync_copies_ack_statuses_and_their_times(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "m1")
    _insert(session, "m2")
    container.ack("m1", "processing", at="2024-03-01 08:00:00")
    container.ack("m2", "processing", at="2024-03-01 08:00:00")
    assert sync_processing_acks(session) == 2
    assert sync_processing_acks(session) == 0
    container.ack("m1", "completed", at="2024-03-01 08:00:00")
    container.ack("m2", "failed", at="2024-03-01T08:00:03Z")
    assert sync_processing_acks(session) == 2
    assert _status(session, "m1")[0::3] == ("completed", "2024-03-01 08:00:00")
    assert _status(session, "m2")[0::3] == ("failed", "2024-03-01 08:00:03")


def test_sync_never_reopens_a_finished_row_and_ignores_unknown_statuses(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "m1")
    _insert(session, "m2")
    container.ack("m1", "completed")
    sync_processing_acks(session)
    container.ack("m1", "processing")
    container.ack("m2", "weird")
    assert sync_processing_acks(session) == 0
    assert _status(session, "m1")[0] == "completed"
    assert _status(session, "m2")[0] == "pending"


def test_claims_carry_their_ack_time(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "m1")
    _insert(session, "m2")
    container.ack("m1", "processing", at="2024-03-01 08:00:00")
    container.ack("m2", "completed")
    [claim] = claimed_messages(session)
    assert (claim.message_id, claim.seq, claim.tries) == ("m1", 2, 0)
    assert claim.claimed_at == T0
    sync_processing_acks(session)
    assert [c.message_id for c in claimed_messages(session)] == ["m1"]
    container.ack("m1", "completed")
    assert claimed_messages(session) == []


def test_a_claim_whose_ack_vanished_is_pending_again_after_sync(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "m1")
    container.ack("m1", "processing", at="2024-03-01 08:00:00")
    sync_processing_acks(session)
    assert _status(session, "m1")[0] == "processing"
    container.start()  # a fresh container drops its predecessor's 'processing' acks
    assert claimed_messages(session) == []
    assert count_due(session) == 0, "the host still sees it as taken until it syncs"
    assert sync_processing_acks(session) == 1
    assert _status(session, "m1") == ("pending", 0, None, None)
    assert count_due(session) == 1
    container.ack("m1", "processing")
    assert sync_processing_acks(session) == 1
    assert [c.message_id for c in claimed_messages(session)] == ["m1"]


def test_a_claim_reset_before_its_ack_vanished_keeps_its_backoff(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "m1")
    container.ack("m1", "processing", at=to_db_time(T0))
    sync_processing_acks(session)
    outcome = reset_for_retry(session, "m1", now=T0 + timedelta(seconds=30))
    container.start()
    assert sync_processing_acks(session) == 0
    assert _status(session, "m1")[:2] == ("pending", 1)
    assert outcome.retry_at is not None
    assert count_due(session, now=outcome.retry_at - timedelta(seconds=1)) == 0


def test_retry_backoff_is_5_10_20_40_seconds_then_failed_at_try_5(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "m1")
    claim_at = T0
    delays = []
    for attempt in range(1, 6):
        container.ack("m1", "processing", at=to_db_time(claim_at))
        sync_processing_acks(session)
        failed_at = claim_at + timedelta(seconds=30)
        outcome = reset_for_retry(session, "m1", now=failed_at)
        assert outcome.changed and outcome.tries == attempt
        if attempt < 5:
            assert outcome.status == "pending" and outcome.retry_at is not None
            delays.append((outcome.retry_at - failed_at).total_seconds())
            assert count_due(session, now=outcome.retry_at - timedelta(seconds=1)) == 0
            assert count_due(session, now=outcome.retry_at) == 1
            claim_at = outcome.retry_at
        else:
            assert outcome.status == "failed" and outcome.retry_at is None
    assert delays == [5, 10, 20, 40]
    assert _status(session, "m1")[:2] == ("failed", 5)
    assert count_due(session, now=claim_at + timedelta(days=1)) == 0


def test_reset_is_idempotent_for_one_failure(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "m1")
    container.ack("m1", "processing", at=to_db_time(T0))
    first = reset_for_retry(session, "m1", now=T0 + timedelta(seconds=60))
    again = reset_for_retry(session, "m1", now=T0 + timedelta(seconds=60))
    later = reset_for_retry(session, "m1", now=T0 + timedelta(seconds=90))
    assert first.changed and not again.changed and not later.changed
    assert again.tries == later.tries == 1
    assert again.retry_at == first.retry_at


def test_a_stale_ack_after_a_reset_is_ignored_and_a_fresh_claim_is_not(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "m1")
    container.ack("m1", "processing", at=to_db_time(T0))
    sync_processing_acks(session)
    reset_at = T0 + timedelta(seconds=10)
    outcome = reset_for_retry(session, "m1", now=reset_at, base_delay_s=0.1)
    assert outcome.retry_at == reset_at + timedelta(seconds=1), "a retry never shares the reset's second"
    assert sync_processing_acks(session) == 0, "the dead container's ack predates the reset"
    assert _status(session, "m1")[0] == "pending"
    assert count_due(session, now=outcome.retry_at) == 1
    assert claimed_messages(session) == []
    container.ack("m1", "processing", at=to_db_time(outcome.retry_at))
    assert count_due(session, now=outcome.retry_at) == 0
    assert sync_processing_acks(session) == 1
    assert [c.message_id for c in claimed_messages(session)] == ["m1"]
    container.ack("m1", "completed", at=to_db_time(outcome.retry_at))
    assert sync_processing_acks(session) == 1
    assert _status(session, "m1")[0] == "completed"


def test_reset_leaves_finished_work_alone(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "done")
    container.ack("done", "completed", at=to_db_time(T0))
    outcome = reset_for_retry(session, "done", now=T0 + timedelta(minutes=5))
    assert not outcome.changed and outcome.tries == 0
    with pytest.raises(UnknownMessage, match="nope"):
        reset_for_retry(session, "nope", now=T0)


def test_recurring_task_gets_its_next_occurrence_once(session: Path) -> None:
    container = FakeContainer(session)
    insert_message(
        session,
        InboundMessage(
            id="t1",
            kind="task",
            content='{"prompt":"standup"}',
            recurrence="0 9 * * *",
            platform_id="p",
            thread_id="th",
        ),
    )
    _insert(session, "other")
    assert finished_recurring(session) == []
    assert schedule_next_recurrence(session, "t1", T0) is None, "not finished yet"
    container.ack("t1", "completed")
    sync_processing_acks(session)
    [task] = finished_recurring(session)
    assert (task.message_id, task.recurrence, task.status) == ("t1", "0 9 * * *", "completed")
    nxt = T0 + timedelta(days=1)
    occurrence = schedule_next_recurrence(session, "t1", nxt)
    assert occurrence is not None
    assert occurrence.seq == 6 and occurrence.process_after == nxt
    assert schedule_next_recurrence(session, "t1", nxt) is None
    assert finished_recurring(session) == []
    with sqlite3.connect(session / "inbound.db") as conn:
        rows = conn.execute(
            "SELECT id, seq, kind, status, process_after, recurrence, platform_id, thread_id, content"
            " FROM messages_in WHERE kind = 'task' ORDER BY seq"
        ).fetchall()
    assert rows == [
        ("t1", 2, "task", "completed", None, None, "p", "th", '{"prompt":"standup"}'),
        (
            occurrence.message_id,
            6,
            "task",
            "pending",
            "2024-03-02 08:00:00",
            "0 9 * * *",
            "p",
            "th",
            '{"prompt":"standup"}',
        ),
    ]
    assert parse_db_time(rows[1][4]) == nxt


def test_a_failed_run_of_a_recurring_task_still_recurs(session: Path) -> None:
    _insert(session, "t1", recurrence="*/5 * * * *")
    FakeContainer(session).ack("t1", "failed")
    sync_processing_acks(session)
    assert [t.status for t in finished_recurring(session)] == ["failed"]
    assert schedule_next_recurrence(session, "t1", T0, new_id="t1-next") is not None
    assert _status(session, "t1-next")[0] == "pending"


def test_on_wake_notes_are_not_work_that_wakes_a_session(session: Path) -> None:
    _insert(session, "note", on_wake=True)
    assert count_due(session) == 0
    _insert(session, "m1")
    assert count_due(session) == 1


def test_a_finished_ack_counts_even_in_the_second_of_a_host_change(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "t1", kind="task")
    pause_task(session, "t1", now=T0)
    container.ack("t1", "processing", at=to_db_time(T0))
    assert sync_processing_acks(session) == 0, "a claim in the pause's second predates the pause"
    container.ack("t1", "completed", at=to_db_time(T0))
    assert sync_processing_acks(session) == 1
    assert _status(session, "t1")[0] == "completed"


def test_a_resumed_task_is_held_to_the_next_second_so_its_claim_counts(session: Path) -> None:
    container = FakeContainer(session)
    _insert(session, "t1", kind="task")
    pause_task(session, "t1", now=T0)
    resumed_at = T0 + timedelta(seconds=30, milliseconds=200)
    assert resume_task(session, "t1", now=resumed_at)
    assert _status(session, "t1")[2] == "2024-03-01 08:00:31"
    assert count_due(session, now=resumed_at) == 0
    assert count_due(session, now=T0 + timedelta(seconds=31)) == 1
    container.ack("t1", "processing", at="2024-03-01 08:00:31")
    assert count_due(session, now=T0 + timedelta(seconds=31)) == 0
    assert sync_processing_acks(session) == 1
    assert [c.message_id for c in claimed_messages(session)] == ["t1"]


def test_resume_keeps_a_later_schedule(session: Path) -> None:
    _insert(session, "t1", kind="task", process_after=T0 + timedelta(days=1))
    pause_task(session, "t1", now=T0)
    resume_task(session, "t1", now=T0)
    assert _status(session, "t1")[2] == "2024-03-02 08:00:00"
