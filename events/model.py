"""Row shapes of the projection tables: what the host reads back from the log.

These are plain values (msgspec Structs); the projections in this package are
the only code that writes the tables they come from.
"""

from __future__ import annotations

from typing import Literal

import msgspec

SessionMode = Literal["shared", "per-thread", "agent-shared"]
ContainerStatus = Literal["stopped", "starting", "running", "idle", "stopping"]
SessionStatus = Literal["active", "closed"]
TaskStatus = Literal["scheduled", "paused", "cancelled"]


class AdditionalMount(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A host path the group asks to see under /workspace/extra/<container_path>."""

    host_path: str
    container_path: str | None = None
    readonly: bool = True


class McpServer(msgspec.Struct, frozen=True, kw_only=True):
    command: str
    args: list[str] = []
    env: dict[str, str] = {}


class Packages(msgspec.Struct, frozen=True, kw_only=True):
    apt: list[str] = []
    pip: list[str] = []


class GroupConfig(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """A group's container configuration (the reference's `container_config` JSON)."""

    additional_mounts: list[AdditionalMount] = []
    packages: Packages = Packages()
    mcp_servers: dict[str, McpServer] = {}
    image_tag: str | None = None
    model: str | None = None
    effort: str | None = None
    memory: str | None = None
    cpus: float | None = None
    pids: int | None = None


class AgentGroup(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    folder: str
    is_admin: bool
    agent_provider: str | None
    config: GroupConfig
    created_at: str
    initialized: bool = False
    init_steps: list[str] = []
    parent_group_id: str | None = None


class MessagingGroup(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    channel_type: str
    platform_id: str
    name: str | None
    is_group: bool
    admin_user_id: str | None
    created_at: str


class TriggerRules(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True):
    """Which messages a wiring takes: a regex, mentions only, sender include/exclude lists."""

    pattern: str | None = None
    mention_only: bool = False
    include_senders: list[str] = []
    exclude_senders: list[str] = []


class Wiring(msgspec.Struct, frozen=True, kw_only=True):
    """A messaging group <-> agent group edge (`messaging_group_agents`)."""

    id: str
    messaging_group_id: str
    agent_group_id: str
    trigger_rules: TriggerRules
    response_scope: str
    session_mode: SessionMode
    priority: int
    created_at: str


class Destination(msgspec.Struct, frozen=True, kw_only=True):
    """A name an agent group may send to: a channel or another agent (`agent_destinations`)."""

    agent_group_id: str
    name: str
    display_name: str | None
    type: Literal["channel", "agent"]
    channel_type: str | None = None
    platform_id: str | None = None
    target_agent_group_id: str | None = None
    messaging_group_id: str | None = None


class Session(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    agent_group_id: str
    messaging_group_id: str | None
    thread_id: str | None
    agent_provider: str | None
    status: SessionStatus
    container_status: ContainerStatus
    container_id: str | None
    last_active: str | None
    created_at: str
    mode: SessionMode = "shared"


class PendingQuestion(msgspec.Struct, frozen=True, kw_only=True):
    question_id: str
    session_id: str
    message_out_id: str
    platform_id: str | None
    channel_type: str | None
    thread_id: str | None
    created_at: str


class PendingApproval(msgspec.Struct, frozen=True, kw_only=True):
    approval_id: str
    session_id: str | None
    request_id: str
    action: str
    payload: str
    agent_group_id: str | None
    channel_type: str | None
    platform_id: str | None
    platform_message_id: str | None
    expires_at: str | None
    status: Literal["pending", "approved", "rejected", "expired"]
    created_at: str


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """A scheduled task's state as its events left it (its timing lives in the session's inbound.db)."""

    task_id: str
    session_id: str
    status: TaskStatus
    process_after: str | None
    recurrence: str | None
    created_at: str
    updated_at: str


class UsageTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Model tokens an agent group has used, summed over every response the credential proxy counted."""

    agent_group_id: str
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    updated_at: str
