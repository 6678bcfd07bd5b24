"""Scheduled tasks on the host: applying the agent's task actions, and producing each next occurrence.

A task is a `kind='task'` row in the session's inbound.db (the container takes
it when due); the log records each decision (TaskScheduled, TaskPaused, ...).
Cron expressions are read in the configured time zone, so "0 9 * * *" means
09:00 where the user lives, across daylight-saving changes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from croniter import croniter

import sessiondb
from actors.system_payloads import ScheduleTask, TaskControl
from config.logs import get_logger
from config.settings import Settings
from events import types as ev
from events.log import EventLog
from events.model import Session

log = get_logger("tasks")

_CONTROL_EVENTS: dict[str, type[ev.TaskCancelled | ev.TaskPaused | ev.TaskResumed]] = {
    "cancel_task": ev.TaskCancelled,
    "pause_task": ev.TaskPaused,
    "resume_task": ev.TaskResumed,
}


def session_folder(settings: Settings, session: Session) -> Path:
    return sessiondb.session_dir(settings.sessions_dir, session.agent_group_id, session.id)


def next_occurrence(recurrence: str, after: datetime, timezone: str) -> datetime:
    """The first time strictly after `after` that the cron expression names, read in `timezone`; UTC out.

    Besides the 5-field form agents use (the only one `schedule_task` accepts),
    croniter's 6-field form with seconds last is understood, so host-side tools
    and tests can recur within seconds. ValueError when croniter cannot use it.
    """
    local = after.astimezone(ZoneInfo(timezone))
    try:
        nxt = croniter(recurrence, local).get_next(datetime)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"cannot compute the next time of {recurrence!r}: {exc}") from exc
    assert isinstance(nxt, datetime)
    return nxt.astimezone(UTC)


def schedule(settings: Settings, events: EventLog, session: Session, task: ScheduleTask) -> int:
    """Insert the task row (idempotent by task id) and record TaskScheduled; returns the row's seq."""
    folder = session_folder(settings, session)
    sessiondb.create_session_folder(folder)
    seq = sessiondb.insert_message(
        folder,
        sessiondb.InboundMessage(
            id=task.task_id,
            kind="task",
            content=json.dumps({"prompt": task.prompt, "script": task.script}),
            process_after=task.process_after,
            recurrence=task.recurrence,
            channel_type=task.channel_type,
            platform_id=task.platform_id,
            thread_id=task.thread_id,
        ),
    )
    _record_scheduled(events, session, task.task_id, task.process_after, task.recurrence)
    return seq


def _record_scheduled(
    events: EventLog, session: Session, task_id: str, process_after: datetime, recurrence: str | None
) -> None:
    scheduled = ev.TaskScheduled(
        task_id=task_id,
        session_id=session.id,
        process_after=sessiondb.to_db_time(process_after),
        recurrence=recurrence,
    )
    events.append(f"session:{session.id}", [scheduled])


def control(settings: Settings, events: EventLog, session: Session, request: TaskControl) -> bool:
    """Cancel, pause or resume a task; records the event only when something changed."""
    folder = session_folder(settings, session)
    operation = {
        "cancel_task": sessiondb.cancel_task,
        "pause_task": sessiondb.pause_task,
        "resume_task": sessiondb.resume_task,
    }[request.action]
    changed = folder.exists() and operation(folder, request.task_id)
    if changed:
        event = _CONTROL_EVENTS[request.action](task_id=request.task_id, session_id=session.id)
        events.append(f"session:{session.id}", [event])
    return changed


def schedule_recurrences(settings: Settings, events: EventLog, session: Session, now: datetime) -> int:
    """Give every finished recurring row of the session its next occurrence; returns how many were added.

    Idempotent (sessiondb hands the recurrence over in one transaction). A
    stored expression that cannot be computed ends the recurrence, recorded as
    a cancellation, instead of failing every sweep.
    """
    folder = session_folder(settings, session)
    added = 0
    for finished in sessiondb.finished_recurring(folder):
        try:
            when = next_occurrence(finished.recurrence, now, settings.timezone)
        except ValueError as exc:
            log.error("task.recurrence_invalid", session_id=session.id, task_id=finished.message_id, error=str(exc))
            sessiondb.cancel_task(folder, finished.message_id)
            events.append(
                f"session:{session.id}", [ev.TaskCancelled(task_id=finished.message_id, session_id=session.id)]
            )
            continue
        occurrence = sessiondb.schedule_next_recurrence(folder, finished.message_id, when)
        if occurrence is None:
            continue
        added += 1
        _record_scheduled(events, session, occurrence.message_id, occurrence.process_after, finished.recurrence)
    return added
