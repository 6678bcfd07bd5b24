"""Typed reads of the projection tables: what the host asks about groups, sessions and the rest.

Safe to call from any thread (each thread reads through its own connection).
Writes never happen here: the only writer of these tables is the log's append.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from events.connections import ReadConnections
from events.model import (
    AgentGroup,
    Destination,
    GroupConfig,
    MessagingGroup,
    PendingApproval,
    PendingQuestion,
    Session,
    Task,
    TriggerRules,
    UsageTotals,
    Wiring,
)
from events.schema import IN_STEP

_GROUP_COLUMNS = "id, name, folder, is_admin, agent_provider, container_config, created_at, initialized, init_steps,"
_GROUP_COLUMNS += " parent_group_id"
_MESSAGING_GROUP_COLUMNS = "id, channel_type, platform_id, name, is_group, admin_user_id, created_at"
_WIRING_COLUMNS = (
    "id, messaging_group_id, agent_group_id, trigger_rules, response_scope, session_mode, priority, created_at"
)
_DESTINATION_COLUMNS = "agent_group_id, local_name, display_name, target_type, target_id, channel_type, platform_id"
_SESSION_COLUMNS = (
    "id, agent_group_id, messaging_group_id, thread_id, agent_provider, status, container_status, container_id,"
    " last_active, created_at, session_mode"
)
_QUESTION_COLUMNS = "question_id, session_id, message_out_id, platform_id, channel_type, thread_id, created_at"
_APPROVAL_COLUMNS = (
    "approval_id, session_id, request_id, action, payload, agent_group_id, channel_type, platform_id,"
    " platform_message_id, expires_at, status, created_at"
)
_TASK_COLUMNS = "task_id, session_id, status, process_after, recurrence, created_at, updated_at"
_USAGE_COLUMNS = (
    "agent_group_id, requests, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, updated_at"
)

_group_config = msgspec.json.Decoder(GroupConfig)
_trigger_rules = msgspec.json.Decoder(TriggerRules)


def _agent_group(row: Any) -> AgentGroup:
    return AgentGroup(
        id=row[0],
        name=row[1],
        folder=row[2],
        is_admin=bool(row[3]),
        agent_provider=row[4],
        config=_group_config.decode(row[5]) if row[5] else GroupConfig(),
        created_at=row[6],
        initialized=bool(row[7]),
        init_steps=json.loads(row[8]),
        parent_group_id=row[9],
    )


def _messaging_group(row: Any) -> MessagingGroup:
    return MessagingGroup(
        id=row[0],
        channel_type=row[1],
        platform_id=row[2],
        name=row[3],
        is_group=bool(row[4]),
        admin_user_id=row[5],
        created_at=row[6],
    )


def _wiring(row: Any) -> Wiring:
    return Wiring(
        id=row[0],
        messaging_group_id=row[1],
        agent_group_id=row[2],
        trigger_rules=_trigger_rules.decode(row[3]) if row[3] else TriggerRules(),
        response_scope=row[4],
        session_mode=row[5],
        priority=row[6],
        created_at=row[7],
    )


def _destination(row: Any) -> Destination:
    is_agent = row[3] == "agent"
    return Destination(
        agent_group_id=row[0],
        name=row[1],
        display_name=row[2],
        type=row[3],
        target_agent_group_id=row[4] if is_agent else None,
        messaging_group_id=None if is_agent else row[4],
        channel_type=row[5],
        platform_id=row[6],
    )


def _session(row: Any) -> Session:
    return Session(
        id=row[0],
        agent_group_id=row[1],
        messaging_group_id=row[2],
        thread_id=row[3],
        agent_provider=row[4],
        status=row[5],
        container_status=row[6],
        container_id=row[7],
        last_active=row[8],
        created_at=row[9],
        mode=row[10],
    )


def _question(row: Any) -> PendingQuestion:
    return PendingQuestion(
        question_id=row[0],
        session_id=row[1],
        message_out_id=row[2],
        platform_id=row[3],
        channel_type=row[4],
        thread_id=row[5],
        created_at=row[6],
    )


def _approval(row: Any) -> PendingApproval:
    return PendingApproval(
        approval_id=row[0],
        session_id=row[1],
        request_id=row[2],
        action=row[3],
        payload=row[4],
        agent_group_id=row[5],
        channel_type=row[6],
        platform_id=row[7],
        platform_message_id=row[8],
        expires_at=row[9],
        status=row[10],
        created_at=row[11],
    )


def _task(row: Any) -> Task:
    return Task(
        task_id=row[0],
        session_id=row[1],
        status=row[2],
        process_after=row[3],
        recurrence=row[4],
        created_at=row[5],
        updated_at=row[6],
    )


class Store:
    """The read side of the event log."""

    def __init__(self, connections: ReadConnections) -> None:
        self._connections = connections

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._connections.get().execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        return self._connections.get().execute(sql, params).fetchall()

    def checkpoint(self) -> int:
        """The last log position the tables reflect."""
        row = self._one(
            "SELECT iif(position = ?, (SELECT COALESCE(MAX(position), 0) FROM events), position)"
            " FROM projection_checkpoint WHERE id = 1",
            (IN_STEP,),
        )
        return int(row[0])

    # -- agent groups --------------------------------------------------------------------

    def agent_group(self, group_id: str) -> AgentGroup | None:
        row = self._one(f"SELECT {_GROUP_COLUMNS} FROM agent_groups WHERE id = ?", (group_id,))
        return _agent_group(row) if row else None

    def agent_group_by_folder(self, folder: str) -> AgentGroup | None:
        row = self._one(f"SELECT {_GROUP_COLUMNS} FROM agent_groups WHERE folder = ?", (folder,))
        return _agent_group(row) if row else None

    def agent_groups(self) -> list[AgentGroup]:
        sql = f"SELECT {_GROUP_COLUMNS} FROM agent_groups ORDER BY created_at, id"
        return [_agent_group(r) for r in self._all(sql)]

    # -- messaging groups ------------------------------------------------------------------

    def messaging_group(self, messaging_group_id: str) -> MessagingGroup | None:
        row = self._one(f"SELECT {_MESSAGING_GROUP_COLUMNS} FROM messaging_groups WHERE id = ?", (messaging_group_id,))
        return _messaging_group(row) if row else None

    def messaging_group_by_platform(self, channel_type: str, platform_id: str) -> MessagingGroup | None:
        row = self._one(
            f"SELECT {_MESSAGING_GROUP_COLUMNS} FROM messaging_groups WHERE channel_type = ? AND platform_id = ?",
            (channel_type, platform_id),
        )
        return _messaging_group(row) if row else None

    def messaging_groups(self) -> list[MessagingGroup]:
        sql = f"SELECT {_MESSAGING_GROUP_COLUMNS} FROM messaging_groups ORDER BY created_at, id"
        return [_messaging_group(r) for r in self._all(sql)]

    # -- wiring and destinations -------------------------------------------------------------

    def wiring(self, wiring_id: str) -> Wiring | None:
        row = self._one(f"SELECT {_WIRING_COLUMNS} FROM messaging_group_agents WHERE id = ?", (wiring_id,))
        return _wiring(row) if row else None

    def wirings(self, messaging_group_id: str) -> list[Wiring]:
        """The agent groups wired to a messaging group, highest priority first, then oldest."""
        sql = (
            f"SELECT {_WIRING_COLUMNS} FROM messaging_group_agents WHERE messaging_group_id = ?"
            " ORDER BY priority DESC, created_at, id"
        )
        return [_wiring(r) for r in self._all(sql, (messaging_group_id,))]

    def wirings_for_group(self, agent_group_id: str) -> list[Wiring]:
        sql = (
            f"SELECT {_WIRING_COLUMNS} FROM messaging_group_agents WHERE agent_group_id = ?"
            " ORDER BY priority DESC, created_at, id"
        )
        return [_wiring(r) for r in self._all(sql, (agent_group_id,))]

    def destinations(self, agent_group_id: str) -> list[Destination]:
        sql = f"SELECT {_DESTINATION_COLUMNS} FROM agent_destinations WHERE agent_group_id = ? ORDER BY local_name"
        return [_destination(r) for r in self._all(sql, (agent_group_id,))]

    def destination(self, agent_group_id: str, name: str) -> Destination | None:
        row = self._one(
            f"SELECT {_DESTINATION_COLUMNS} FROM agent_destinations WHERE agent_group_id = ? AND local_name = ?",
            (agent_group_id, name),
        )
        return _destination(row) if row else None

    # -- sessions ------------------------------------------------------------------------------

    def session(self, session_id: str) -> Session | None:
        row = self._one(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,))
        return _session(row) if row else None

    def sessions(self, status: str | None = "active") -> list[Session]:
        """Sessions with a status (`None`: all of them), oldest first."""
        if status is None:
            return [_session(r) for r in self._all(f"SELECT {_SESSION_COLUMNS} FROM sessions ORDER BY created_at, id")]
        sql = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE status = ? ORDER BY created_at, id"
        return [_session(r) for r in self._all(sql, (status,))]

    def find_session(
        self, agent_group_id: str, messaging_group_id: str | None, thread_id: str | None
    ) -> Session | None:
        """The newest active session of a group for a chat and thread (`None` matches a missing value)."""
        row = self._one(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE agent_group_id = ? AND messaging_group_id IS ?"
            " AND thread_id IS ? AND status = 'active' ORDER BY created_at DESC, id DESC LIMIT 1",
            (agent_group_id, messaging_group_id, thread_id),
        )
        return _session(row) if row else None

    def find_session_for_group(self, agent_group_id: str) -> Session | None:
        """The newest active session of a group whatever its chat (the agent-shared mode)."""
        row = self._one(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE agent_group_id = ? AND status = 'active'"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (agent_group_id,),
        )
        return _session(row) if row else None

    def sessions_for_group(self, agent_group_id: str) -> list[Session]:
        sql = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE agent_group_id = ? ORDER BY created_at, id"
        return [_session(r) for r in self._all(sql, (agent_group_id,))]

    # -- questions, approvals, delivery, tasks ---------------------------------------------------

    def pending_question(self, question_id: str) -> PendingQuestion | None:
        row = self._one(f"SELECT {_QUESTION_COLUMNS} FROM pending_questions WHERE question_id = ?", (question_id,))
        return _question(row) if row else None

    def pending_questions(self, session_id: str | None = None) -> list[PendingQuestion]:
        if session_id is None:
            sql = f"SELECT {_QUESTION_COLUMNS} FROM pending_questions ORDER BY created_at, question_id"
            return [_question(r) for r in self._all(sql)]
        sql = f"SELECT {_QUESTION_COLUMNS} FROM pending_questions WHERE session_id = ? ORDER BY created_at, question_id"
        return [_question(r) for r in self._all(sql, (session_id,))]

    def pending_approval(self, approval_id: str) -> PendingApproval | None:
        row = self._one(f"SELECT {_APPROVAL_COLUMNS} FROM pending_approvals WHERE approval_id = ?", (approval_id,))
        return _approval(row) if row else None

    def pending_approvals(self, status: str | None = "pending") -> list[PendingApproval]:
        """Approvals with a status (`None`: all of them), oldest first."""
        if status is None:
            sql = f"SELECT {_APPROVAL_COLUMNS} FROM pending_approvals ORDER BY created_at, approval_id"
            return [_approval(r) for r in self._all(sql)]
        sql = f"SELECT {_APPROVAL_COLUMNS} FROM pending_approvals WHERE status = ? ORDER BY created_at, approval_id"
        return [_approval(r) for r in self._all(sql, (status,))]

    def delivery_attempts(self, message_out_id: str, session_id: str | None = None) -> int:
        """Failed delivery attempts of an outbound message since it was last delivered (0 if none)."""
        if session_id is None:
            row = self._one("SELECT MAX(attempts) FROM delivery_attempts WHERE message_out_id = ?", (message_out_id,))
        else:
            row = self._one(
                "SELECT attempts FROM delivery_attempts WHERE session_id = ? AND message_out_id = ?",
                (session_id, message_out_id),
            )
        return int(row[0]) if row and row[0] is not None else 0

    def task(self, task_id: str) -> Task | None:
        row = self._one(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE task_id = ?", (task_id,))
        return _task(row) if row else None

    def tasks(self, session_id: str | None = None, status: str | None = None) -> list[Task]:
        """Tasks, optionally of one session and/or with one status, oldest first."""
        clauses = [c for c, v in (("session_id = ?", session_id), ("status = ?", status)) if v is not None]
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        params = tuple(v for v in (session_id, status) if v is not None)
        sql = f"SELECT {_TASK_COLUMNS} FROM tasks{where} ORDER BY created_at, task_id"
        return [_task(r) for r in self._all(sql, params)]

    # -- model usage ------------------------------------------------------------------------------

    def usage_by_group(self) -> dict[str, UsageTotals]:
        """Token sums per agent group id, for every group the credential proxy has counted a response of."""
        rows = self._all(f"SELECT {_USAGE_COLUMNS} FROM usage ORDER BY agent_group_id")
        return {
            row[0]: UsageTotals(
                agent_group_id=row[0],
                requests=row[1],
                input_tokens=row[2],
                output_tokens=row[3],
                cache_read_tokens=row[4],
                cache_creation_tokens=row[5],
                updated_at=row[6],
            )
            for row in rows
        }
