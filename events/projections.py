"""How each event changes the projection tables the host reads.

Every handler is a pure function of the current tables, the event and the
event's recorded time, so applying the log in order always yields the same
tables: that is what lets `rebuild` and `verify` re-derive them. Handlers run
inside the append's transaction; a conflict (say, a second group with the same
folder) fails the whole append, so nothing half-applied is ever stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from events import types as ev
from events.clock import plain

Handler = Callable[[sqlite3.Connection, Any, str], None]
"""(writer connection, event, recorded time in `datetime('now')` form) -> None."""

_handlers: dict[type[ev.Event], Handler] = {}
F = TypeVar("F", bound=Callable[..., None])

PROJECTION_TABLES: dict[str, tuple[str, ...]] = {
    "agent_groups": ("id",),
    "messaging_groups": ("id",),
    "messaging_group_agents": ("id",),
    "agent_destinations": ("agent_group_id", "local_name"),
    "sessions": ("id",),
    "pending_questions": ("question_id",),
    "pending_approvals": ("approval_id",),
    "delivery_attempts": ("session_id", "message_out_id"),
    "tasks": ("task_id",),
    "usage": ("agent_group_id",),
}
"""Every projection table and its primary key (what rebuild clears and verify compares)."""


class ProjectionError(Exception):
    """An event contradicts the current state (e.g. a duplicate id); the append is refused whole."""


def handles(*event_types: type[ev.Event]) -> Callable[[F], F]:
    def register(handler: F) -> F:
        for event_type in event_types:
            _handlers[event_type] = handler
        return handler

    return register


def _json(value: msgspec.Struct) -> str:
    return msgspec.json.encode(value).decode()


# -- agent groups ----------------------------------------------------------------------


@handles(ev.GroupCreated)
def _group_created(db: sqlite3.Connection, e: ev.GroupCreated, at: str) -> None:
    db.execute(
        "INSERT INTO agent_groups (id, name, folder, is_admin, agent_provider, container_config, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (e.group_id, e.name, e.folder, int(e.is_admin), e.agent_provider, _json(e.config), at),
    )


@handles(ev.GroupInitialized)
def _group_initialized(db: sqlite3.Connection, e: ev.GroupInitialized, at: str) -> None:
    """Marks the group initialized and keeps the union of every step that ever ran, in order."""
    row = db.execute("SELECT init_steps FROM agent_groups WHERE id = ?", (e.group_id,)).fetchone()
    if row is None:
        return
    steps: list[str] = json.loads(row[0])
    steps.extend(step for step in e.steps if step not in steps)
    db.execute("UPDATE agent_groups SET initialized = 1, init_steps = ? WHERE id = ?", (json.dumps(steps), e.group_id))


@handles(ev.GroupConfigChanged)
def _group_config_changed(db: sqlite3.Connection, e: ev.GroupConfigChanged, at: str) -> None:
    db.execute("UPDATE agent_groups SET container_config = ? WHERE id = ?", (_json(e.config), e.group_id))


@handles(ev.GroupDeleted)
def _group_deleted(db: sqlite3.Connection, e: ev.GroupDeleted, at: str) -> None:
    """Removes the group, its wirings and every destination from or to it; sessions stay for the record."""
    db.execute("DELETE FROM agent_groups WHERE id = ?", (e.group_id,))
    db.execute("DELETE FROM messaging_group_agents WHERE agent_group_id = ?", (e.group_id,))
    db.execute(
        "DELETE FROM agent_destinations WHERE agent_group_id = ? OR (target_type = 'agent' AND target_id = ?)",
        (e.group_id, e.group_id),
    )


@handles(ev.AgentCreated)
def _agent_created(db: sqlite3.Connection, e: ev.AgentCreated, at: str) -> None:
    """Records lineage only: the child group itself comes from its own GroupCreated event."""
    db.execute("UPDATE agent_groups SET parent_group_id = ? WHERE id = ?", (e.parent_group_id, e.group_id))


# -- messaging groups, wiring, destinations ----------------------------------------------


@handles(ev.MessagingGroupCreated)
def _messaging_group_created(db: sqlite3.Connection, e: ev.MessagingGroupCreated, at: str) -> None:
    db.execute(
        "INSERT INTO messaging_groups (id, channel_type, platform_id, name, is_group, admin_user_id, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (e.messaging_group_id, e.channel_type, e.platform_id, e.name, int(e.is_group), e.admin_user_id, at),
    )


@handles(ev.WiringCreated)
def _wiring_created(db: sqlite3.Connection, e: ev.WiringCreated, at: str) -> None:
    db.execute(
        "INSERT INTO messaging_group_agents (id, messaging_group_id, agent_group_id, trigger_rules, response_scope,"
        " session_mode, priority, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            e.wiring_id,
            e.messaging_group_id,
            e.agent_group_id,
            _json(e.trigger_rules),
            e.response_scope,
            e.session_mode,
            e.priority,
            at,
        ),
    )


@handles(ev.WiringRemoved)
def _wiring_removed(db: sqlite3.Connection, e: ev.WiringRemoved, at: str) -> None:
    db.execute("DELETE FROM messaging_group_agents WHERE id = ?", (e.wiring_id,))


@handles(ev.DestinationGranted)
def _destination_granted(db: sqlite3.Connection, e: ev.DestinationGranted, at: str) -> None:
    """Granting a name again re-points it; the first grant's time is kept."""
    target_id = e.target_agent_group_id if e.kind == "agent" else e.messaging_group_id
    db.execute(
        "INSERT INTO agent_destinations (agent_group_id, local_name, target_type, target_id, display_name,"
        " channel_type, platform_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (agent_group_id, local_name) DO UPDATE SET target_type = excluded.target_type,"
        " target_id = excluded.target_id, display_name = excluded.display_name,"
        " channel_type = excluded.channel_type, platform_id = excluded.platform_id",
        (e.agent_group_id, e.name, e.kind, target_id, e.display_name, e.channel_type, e.platform_id, at),
    )


@handles(ev.DestinationRevoked)
def _destination_revoked(db: sqlite3.Connection, e: ev.DestinationRevoked, at: str) -> None:
    db.execute("DELETE FROM agent_destinations WHERE agent_group_id = ? AND local_name = ?", (e.agent_group_id, e.name))


# -- sessions and containers --------------------------------------------------------------


@handles(ev.SessionCreated)
def _session_created(db: sqlite3.Connection, e: ev.SessionCreated, at: str) -> None:
    db.execute(
        "INSERT INTO sessions (id, agent_group_id, messaging_group_id, thread_id, agent_provider, session_mode,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (e.session_id, e.agent_group_id, e.messaging_group_id, e.thread_id, e.agent_provider, e.mode, at),
    )


@handles(ev.SessionClosed)
def _session_closed(db: sqlite3.Connection, e: ev.SessionClosed, at: str) -> None:
    db.execute("UPDATE sessions SET status = 'closed' WHERE id = ?", (e.session_id,))


@handles(ev.MessageRouted)
def _message_routed(db: sqlite3.Connection, e: ev.MessageRouted, at: str) -> None:
    db.execute("UPDATE sessions SET last_active = ? WHERE id = ?", (at, e.session_id))


def _set_container_status(status: str) -> Handler:
    def handler(db: sqlite3.Connection, e: Any, at: str) -> None:
        db.execute("UPDATE sessions SET container_status = ? WHERE id = ?", (status, e.session_id))

    return handler


_handlers[ev.ContainerStarting] = _set_container_status("starting")
_handlers[ev.ContainerIdle] = _set_container_status("idle")
_handlers[ev.ContainerBusy] = _set_container_status("running")
_handlers[ev.ContainerStopping] = _set_container_status("stopping")


@handles(ev.ContainerSpawned, ev.ContainerAdopted)
def _container_running(db: sqlite3.Connection, e: ev.ContainerSpawned | ev.ContainerAdopted, at: str) -> None:
    db.execute(
        "UPDATE sessions SET container_status = 'running', container_id = ?, last_active = ? WHERE id = ?",
        (e.container_id, at, e.session_id),
    )


@handles(ev.ContainerStopped)
def _container_stopped(db: sqlite3.Connection, e: ev.ContainerStopped, at: str) -> None:
    db.execute("UPDATE sessions SET container_status = 'stopped', container_id = NULL WHERE id = ?", (e.session_id,))


# -- delivery -------------------------------------------------------------------------------


@handles(ev.MessageDelivered)
def _message_delivered(db: sqlite3.Connection, e: ev.MessageDelivered, at: str) -> None:
    """A delivered message needs no retry count any more, so its row goes."""
    db.execute("UPDATE sessions SET last_active = ? WHERE id = ?", (at, e.session_id))
    db.execute(
        "DELETE FROM delivery_attempts WHERE session_id = ? AND message_out_id = ?", (e.session_id, e.message_out_id)
    )


@handles(ev.DeliveryFailed)
def _delivery_failed(db: sqlite3.Connection, e: ev.DeliveryFailed, at: str) -> None:
    db.execute(
        "INSERT INTO delivery_attempts (session_id, message_out_id, attempts, last_error, final, updated_at)"
        " VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (session_id, message_out_id) DO UPDATE SET"
        " attempts = attempts + 1, last_error = excluded.last_error, final = excluded.final,"
        " updated_at = excluded.updated_at",
        (e.session_id, e.message_out_id, e.error, int(e.final), at),
    )


# -- questions and approvals -------------------------------------------------------------------


@handles(ev.QuestionAsked)
def _question_asked(db: sqlite3.Connection, e: ev.QuestionAsked, at: str) -> None:
    db.execute(
        "INSERT INTO pending_questions (question_id, session_id, message_out_id, platform_id, channel_type,"
        " thread_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (e.question_id, e.session_id, e.message_out_id, e.platform_id, e.channel_type, e.thread_id, at),
    )


@handles(ev.QuestionAnswered)
def _question_answered(db: sqlite3.Connection, e: ev.QuestionAnswered, at: str) -> None:
    db.execute("DELETE FROM pending_questions WHERE question_id = ?", (e.question_id,))


@handles(ev.ApprovalRequested)
def _approval_requested(db: sqlite3.Connection, e: ev.ApprovalRequested, at: str) -> None:
    db.execute(
        "INSERT INTO pending_approvals (approval_id, session_id, request_id, action, payload, created_at,"
        " agent_group_id, channel_type, platform_id, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            e.approval_id,
            e.session_id,
            e.request_id,
            e.action,
            e.payload,
            at,
            e.agent_group_id,
            e.channel_type,
            e.platform_id,
            e.expires_at,
        ),
    )


@handles(ev.ApprovalCardSent)
def _approval_card_sent(db: sqlite3.Connection, e: ev.ApprovalCardSent, at: str) -> None:
    db.execute(
        "UPDATE pending_approvals SET platform_message_id = ? WHERE approval_id = ?",
        (e.platform_message_id, e.approval_id),
    )


@handles(ev.ApprovalResolved)
def _approval_resolved(db: sqlite3.Connection, e: ev.ApprovalResolved, at: str) -> None:
    db.execute("UPDATE pending_approvals SET status = ? WHERE approval_id = ?", (e.status, e.approval_id))


# -- scheduled tasks ----------------------------------------------------------------------------


@handles(ev.TaskScheduled)
def _task_scheduled(db: sqlite3.Connection, e: ev.TaskScheduled, at: str) -> None:
    """Scheduling an existing task id again replaces its timing and makes it active."""
    db.execute(
        "INSERT INTO tasks (task_id, session_id, status, process_after, recurrence, created_at, updated_at)"
        " VALUES (?, ?, 'scheduled', ?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET"
        " session_id = excluded.session_id, status = 'scheduled', process_after = excluded.process_after,"
        " recurrence = excluded.recurrence, updated_at = excluded.updated_at",
        (e.task_id, e.session_id, e.process_after, e.recurrence, at, at),
    )


def _set_task_status(status: str) -> Handler:
    def handler(db: sqlite3.Connection, e: Any, at: str) -> None:
        db.execute("UPDATE tasks SET status = ?, updated_at = ? WHERE task_id = ?", (status, at, e.task_id))

    return handler


_handlers[ev.TaskCancelled] = _set_task_status("cancelled")
_handlers[ev.TaskPaused] = _set_task_status("paused")
_handlers[ev.TaskResumed] = _set_task_status("scheduled")


# -- model usage -------------------------------------------------------------------------------------


@handles(ev.UsageRecorded)
def _usage_recorded(db: sqlite3.Connection, e: ev.UsageRecorded, at: str) -> None:
    """Running sums per group; the events themselves keep the per-response detail (model, session)."""
    db.execute(
        "INSERT INTO usage (agent_group_id, requests, input_tokens, output_tokens, cache_read_tokens,"
        " cache_creation_tokens, updated_at) VALUES (?, 1, ?, ?, ?, ?, ?) ON CONFLICT (agent_group_id) DO UPDATE SET"
        " requests = requests + 1, input_tokens = input_tokens + excluded.input_tokens,"
        " output_tokens = output_tokens + excluded.output_tokens,"
        " cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,"
        " cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,"
        " updated_at = excluded.updated_at",
        (e.agent_group_id, e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_creation_tokens, at),
    )


# -- audit-only events: recorded for the timeline, no table holds them ----------------------------


@handles(
    ev.MessageDropped,
    ev.WakeRequested,
    ev.SessionActorCrashed,
    ev.ApprovalAnswerRefused,
    ev.SystemActionRefused,
    ev.MessageRetried,
    ev.MessageHeld,
)
def _audit_only(db: sqlite3.Connection, e: ev.Event, at: str) -> None:
    return None


HANDLERS: dict[str, Handler] = {ev.type_name(event_type): handler for event_type, handler in _handlers.items()}
"""Projection handler per stored type tag; `test_event_projections` checks every type has one."""


def apply(db: sqlite3.Connection, stream: str, tag: str, event: ev.Event, recorded_at: str) -> None:
    """Apply one event to the tables; a constraint conflict becomes a ProjectionError naming the event."""
    try:
        HANDLERS[tag](db, event, plain(recorded_at))
    except sqlite3.IntegrityError as exc:
        raise ProjectionError(f"{tag} on stream {stream!r} conflicts with the current state: {exc}") from None


def clear(db: sqlite3.Connection) -> None:
    """Empty every projection table and reset the checkpoint (inside the caller's transaction)."""
    for table in PROJECTION_TABLES:
        db.execute(f"DELETE FROM {table}")
    db.execute("UPDATE projection_checkpoint SET position = 0 WHERE id = 1")
