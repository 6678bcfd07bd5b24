"""Which session a message belongs to, by the wiring's session mode, creating the session on first use.

- `shared`: one session per (messaging group, agent group); threads are ignored.
- `per-thread`: one per (messaging group, agent group, thread).
- `agent-shared`: one per agent group, whatever the channel (also where other
  agents' messages to the group land).
A threaded platform makes every mode but `agent-shared` per-thread: there a
thread is the conversation. A non-threaded one has no threads at all.
"""

from __future__ import annotations

from typing import NamedTuple

import sessiondb
from actors.admin import create_session
from config.settings import Settings
from events.log import EventLog
from events.model import AgentGroup, Session, SessionMode
from events.store import Store


class Resolved(NamedTuple):
    session: Session
    created: bool


def effective_mode(mode: SessionMode, threaded: bool) -> SessionMode:
    """The mode that applies on a platform with (or without) threads."""
    if threaded and mode != "agent-shared":
        return "per-thread"
    return mode


def session_thread(mode: SessionMode, thread_id: str | None) -> str | None:
    """The thread a session of this mode is keyed by (only per-thread sessions have one)."""
    return thread_id if mode == "per-thread" else None


def _newest(sessions: list[Session]) -> Session | None:
    return max(sessions, key=lambda s: (s.created_at, s.id)) if sessions else None


def find_for_mode(
    store: Store, agent_group_id: str, messaging_group_id: str | None, thread_id: str | None, mode: SessionMode
) -> Session | None:
    """The active session of this group and mode for a conversation, if there is one.

    The indexed lookups answer the common case; a session they return that was
    opened under another mode (the wiring's mode changed) is skipped by a scan
    of the group's sessions, so modes never share a session by accident.
    """
    if mode == "agent-shared":
        candidate = store.find_session_for_group(agent_group_id)
    else:
        candidate = store.find_session(agent_group_id, messaging_group_id, session_thread(mode, thread_id))
    if candidate is not None and candidate.mode == mode:
        return candidate
    if candidate is None:
        return None
    wanted_thread = session_thread(mode, thread_id)
    return _newest(
        [
            s
            for s in store.sessions_for_group(agent_group_id)
            if s.status == "active"
            and s.mode == mode
            and (mode == "agent-shared" or (s.messaging_group_id, s.thread_id) == (messaging_group_id, wanted_thread))
        ]
    )


def resolve_session(
    log: EventLog,
    settings: Settings,
    group: AgentGroup,
    messaging_group_id: str | None,
    thread_id: str | None,
    mode: SessionMode,
) -> Resolved:
    """The session for this conversation and mode; a new one (folder included) when none is active."""
    found = find_for_mode(log.store, group.id, messaging_group_id, thread_id, mode)
    if found is not None:
        return Resolved(found, False)
    session = create_session(
        log, group, messaging_group_id=messaging_group_id, thread_id=session_thread(mode, thread_id), mode=mode
    )
    sessiondb.create_session_folder(sessiondb.session_dir(settings.sessions_dir, group.id, session.id))
    return Resolved(session, True)
