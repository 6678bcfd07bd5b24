"""Domain commands that create the host's durable things: groups, messaging groups, wirings, sessions.

Shared by the CLI (a separate process), the router and the agents' system
actions, so every path validates the same way and records the same events.
Each command appends to the log and returns the projected row.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from typing import TypeVar

from actors.group_folder import folder_from_name, validate_folder
from actors.group_fs import init_group_filesystem
from config.settings import Settings
from events import types as ev
from events.log import EventLog
from events.model import AgentGroup, MessagingGroup, Session, SessionMode, TriggerRules, Wiring

T = TypeVar("T")

SESSION_MODES: tuple[SessionMode, ...] = ("shared", "per-thread", "agent-shared")


class AdminError(ValueError):
    """A command was refused; the message names the problem."""


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_group(
    log: EventLog,
    settings: Settings,
    *,
    name: str,
    folder: str | None = None,
    is_admin: bool = False,
    instructions: str | None = None,
    agent_provider: str | None = None,
) -> AgentGroup:
    """Record a new agent group and run its one-time filesystem init."""
    name = name.strip()
    if not name:
        raise AdminError("a group needs a non-empty name")
    existing = [group.folder for group in log.store.agent_groups()]
    chosen = validate_folder(folder, existing) if folder else folder_from_name(name, existing)
    group_id = new_id("ag")
    stream = f"group:{group_id}"
    log.append(
        stream,
        [
            ev.GroupCreated(
                group_id=group_id,
                name=name,
                folder=chosen,
                is_admin=is_admin,
                agent_provider=agent_provider,
                instructions=instructions,
            )
        ],
        expected_version=0,
    )
    group = _require(log.store.agent_group(group_id), "group", group_id)
    steps = init_group_filesystem(settings, group, instructions)
    log.append(stream, [ev.GroupInitialized(group_id=group_id, steps=steps)])
    return _require(log.store.agent_group(group_id), "group", group_id)


def find_group(log: EventLog, name_or_folder_or_id: str) -> AgentGroup:
    """A group by id, folder or (unique) name; AdminError naming what was looked for otherwise."""
    store = log.store
    found = store.agent_group(name_or_folder_or_id) or store.agent_group_by_folder(name_or_folder_or_id)
    if found is not None:
        return found
    named = [group for group in store.agent_groups() if group.name == name_or_folder_or_id]
    if len(named) == 1:
        return named[0]
    if named:
        raise AdminError(f"several groups are named {name_or_folder_or_id!r}; use the folder or the id")
    raise AdminError(f"no agent group {name_or_folder_or_id!r}")


def ensure_messaging_group(
    log: EventLog,
    channel_type: str,
    platform_id: str,
    *,
    name: str | None = None,
    is_group: bool = False,
    admin_user_id: str | None = None,
) -> MessagingGroup:
    """The messaging group of a platform conversation, created on first sight."""
    existing = log.store.messaging_group_by_platform(channel_type, platform_id)
    if existing is not None:
        return existing
    messaging_group_id = new_id("mg")
    with contextlib.suppress(sqlite3.IntegrityError):  # another process may have created it first
        log.append(
            f"messaging_group:{messaging_group_id}",
            [
                ev.MessagingGroupCreated(
                    messaging_group_id=messaging_group_id,
                    channel_type=channel_type,
                    platform_id=platform_id,
                    name=name,
                    is_group=is_group,
                    admin_user_id=admin_user_id,
                )
            ],
        )
    return _require(log.store.messaging_group_by_platform(channel_type, platform_id), "messaging group", platform_id)


def wire(
    log: EventLog,
    messaging_group: MessagingGroup,
    group: AgentGroup,
    *,
    mode: SessionMode = "shared",
    trigger_rules: TriggerRules | None = None,
    priority: int = 0,
) -> Wiring:
    """Connect a conversation to an agent group, and let the group reply to that conversation by name."""
    if mode not in SESSION_MODES:
        raise AdminError(f"session mode {mode!r} is not one of {', '.join(SESSION_MODES)}")
    for existing in log.store.wirings(messaging_group.id):
        if existing.agent_group_id == group.id:
            raise AdminError(f"{messaging_group.platform_id} is already wired to {group.folder}")
    wiring_id = new_id("wire")
    log.append(
        f"wiring:{wiring_id}",
        [
            ev.WiringCreated(
                wiring_id=wiring_id,
                messaging_group_id=messaging_group.id,
                agent_group_id=group.id,
                session_mode=mode,
                trigger_rules=trigger_rules or TriggerRules(),
                priority=priority,
            )
        ],
    )
    destination_name = messaging_group.name or f"{messaging_group.channel_type}-{messaging_group.platform_id}"
    if log.store.destination(group.id, destination_name) is None:
        log.append(
            f"group:{group.id}",
            [
                ev.DestinationGranted(
                    agent_group_id=group.id,
                    name=destination_name,
                    kind="channel",
                    channel_type=messaging_group.channel_type,
                    platform_id=messaging_group.platform_id,
                    messaging_group_id=messaging_group.id,
                )
            ],
        )
    return _require(log.store.wiring(wiring_id), "wiring", wiring_id)


def create_session(
    log: EventLog,
    group: AgentGroup,
    *,
    messaging_group_id: str | None = None,
    thread_id: str | None = None,
    mode: SessionMode = "shared",
) -> Session:
    session_id = new_id("sess")
    log.append(
        f"session:{session_id}",
        [
            ev.SessionCreated(
                session_id=session_id,
                agent_group_id=group.id,
                messaging_group_id=messaging_group_id,
                thread_id=thread_id,
                mode=mode,
            )
        ],
        expected_version=0,
    )
    return _require(log.store.session(session_id), "session", session_id)


def _require(value: T | None, what: str, key: str) -> T:
    if value is None:
        raise AdminError(f"the {what} {key} was recorded but cannot be read back")
    return value
