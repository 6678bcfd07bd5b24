"""Scheduled tasks on the host: rows in inbound.db, events in the log, next occurrences in the user's zone."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

import sessiondb
from actors import admin, tasks
from actors.system_payloads import ScheduleTask, TaskControl
from config.settings import Settings
from events.log import EventLog
from events.model import Session
from tests.unit.sessiondb_fake_container import FakeContainer


@pytest.fixture
def log(settings: Settings) -> Iterator[EventLog]:
    with EventLog.open(settings.central_db) as opened:
        yield opened


@pytest.fixture
def session(log: EventLog, settings: Settings) -> Session:
    group = admin.create_group(log, settings, name="Planner")
    return admin.create_session(log, group)


def task(task_id: str = "task-1", *, recurrence: str | None = None) -> ScheduleTask:
    return ScheduleTask(
        task_id=task_id,
        prompt="stretch",
        script=None,
        process_after=datetime(2030, 1, 1, 20, 0, tzinfo=UTC),
        recurrence=recurrence,
        channel_type="terminal",
        platform_id="tty-1",
        thread_id=None,
    )


def rows(settings: Settings, session: Session) -> list[tuple[str, str, str, str | None, str | None]]:
    path = sessiondb.inbound_path(tasks.session_folder(settings, session))
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT id, kind, status, process_after, recurrence FROM messages_in ORDER BY seq"
        ).fetchall()


def test_next_occurrence_is_read_in_the_configured_zone_across_dst() -> None:
    # New Zealand daylight saving ends 2030-04-07 03:00 NZDT -> 02:00 NZST.
    before = datetime(2030, 4, 5, 8, 0, tzinfo=UTC)  # 2030-04-05 21:00 NZDT
    first = tasks.next_occurrence("0 9 * * *", before, "Pacific/Auckland")
    assert first == datetime(2030, 4, 5, 20, 0, tzinfo=UTC), "09:00 NZDT (+13) on the 6th"
    second = tasks.next_occurrence("0 9 * * *", first, "Pacific/Auckland")
    assert second == datetime(2030, 4, 6, 21, 0, tzinfo=UTC), "09:00 NZST (+12) on the 7th, after the change"
    assert tasks.next_occurrence("0 9 * * *", before, "UTC") == datetime(2030, 4, 5, 9, 0, tzinfo=UTC)


def test_next_occurrence_understands_croniters_seconds_field() -> None:
    after = datetime(2030, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC)
    assert tasks.next_occurrence("* * * * * */2", after, "Pacific/Auckland") == datetime(
        2030, 1, 1, 0, 0, 2, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="cannot compute"):
        tasks.next_occurrence("not cron", after, "UTC")


def test_schedule_writes_a_task_row_once_and_records_it(log: EventLog, settings: Settings, session: Session) -> None:
    tasks.schedule(settings, log, session, task(recurrence="0 9 * * *"))
    tasks.schedule(settings, log, session, task(recurrence="0 9 * * *"))  # a redelivered request
    assert rows(settings, session) == [("task-1", "task", "pending", "2030-01-01 20:00:00", "0 9 * * *")]
    recorded = log.store.task("task-1")
    assert recorded is not None and recorded.status == "scheduled" and recorded.process_after == "2030-01-01 20:00:00"


def test_pause_resume_cancel_change_the_row_and_record_only_real_changes(
    log: EventLog, settings: Settings, session: Session
) -> None:
    tasks.schedule(settings, log, session, task())
    assert tasks.control(settings, log, session, TaskControl(action="pause_task", task_id="task-1"))
    assert not tasks.control(settings, log, session, TaskControl(action="pause_task", task_id="task-1"))
    assert rows(settings, session)[0][2] == "paused"
    assert log.store.task("task-1").status == "paused"  # type: ignore[union-attr]
    assert tasks.control(settings, log, session, TaskControl(action="resume_task", task_id="task-1"))
    assert tasks.control(settings, log, session, TaskControl(action="cancel_task", task_id="task-1"))
    assert rows(settings, session)[0][2] == "completed"
    assert log.store.task("task-1").status == "cancelled"  # type: ignore[union-attr]
    assert not tasks.control(settings, log, session, TaskControl(action="resume_task", task_id="nope"))
    types = [e.type for e in log.read(session=session.id) if e.type.startswith("task.")]
    assert types == ["task.scheduled", "task.paused", "task.resumed", "task.cancelled"]


def test_a_finished_recurring_task_gets_its_next_occurrence_once(
    log: EventLog, settings: Settings, session: Session
) -> None:
    tasks.schedule(settings, log, session, task(recurrence="30 7 * * *"))
    folder = tasks.session_folder(settings, session)
    container = FakeContainer(folder)
    container.start()
    container.ack("task-1", "completed")
    sessiondb.sync_processing_acks(folder)
    now = datetime(2030, 1, 1, 20, 0, 5, tzinfo=UTC)  # 09:00:05 NZDT on 2 January
    assert tasks.schedule_recurrences(settings, log, session, now) == 1
    assert tasks.schedule_recurrences(settings, log, session, now) == 0
    (_, first), (next_id, second) = [(r[0], r) for r in rows(settings, session)]
    assert first[4] is None, "the finished row handed its recurrence over"
    assert second[1:] == ("task", "pending", "2030-01-02 18:30:00", "30 7 * * *"), "07:30 NZDT on 3 January"
    assert log.store.task(next_id).process_after == "2030-01-02 18:30:00"  # type: ignore[union-attr]


def test_an_uncomputable_stored_recurrence_ends_instead_of_failing_every_sweep(
    log: EventLog, settings: Settings, session: Session
) -> None:
    folder = tasks.session_folder(settings, session)
    sessiondb.create_session_folder(folder)
    sessiondb.insert_message(
        folder, sessiondb.InboundMessage(id="task-x", kind="task", content="{}", recurrence="0 0 30 2 *")
    )
    container = FakeContainer(folder)
    container.start()
    container.ack("task-x", "completed")
    sessiondb.sync_processing_acks(folder)
    assert tasks.schedule_recurrences(settings, log, session, datetime.now(UTC)) == 0
    assert sessiondb.finished_recurring(folder) == []
    assert [e.type for e in log.read(session=session.id) if e.type.startswith("task.")] == ["task.cancelled"]
