"""Telling an agent something the host noticed: a `kind='system'` row in its inbound.db, then a wake.

Used when a delivery failed for good, when agent-to-agent messages are held by
the rate limit, and for answers to questions and card buttons. Each note has an
id derived from what it is about, so writing it twice (a retry, a restart
between the write and the record) stores it once.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pykka

import sessiondb
from actors import messages as m
from config.settings import Settings
from events import types as ev
from events.log import EventLog
from events.model import Session


def write_note(
    log: EventLog,
    settings: Settings,
    session: Session,
    note_id: str,
    content: dict[str, Any],
    *,
    route: tuple[str | None, str | None, str | None] = (None, None, None),
    on_wake: bool = False,
) -> int:
    """Store a system message for the session's agent and record that it was routed; returns its seq.

    `on_wake=True` leaves it to the next container only (the current one is about to be replaced).
    """
    folder = sessiondb.session_dir(settings.sessions_dir, session.agent_group_id, session.id)
    sessiondb.create_session_folder(folder)
    channel_type, platform_id, thread_id = route
    seq = sessiondb.insert_message(
        folder,
        sessiondb.InboundMessage(
            id=note_id,
            kind="system",
            content=msgspec.json.encode(content).decode(),
            channel_type=channel_type,
            platform_id=platform_id,
            thread_id=thread_id,
            on_wake=on_wake,
        ),
    )
    log.append(
        f"session:{session.id}",
        [ev.MessageRouted(message_id=note_id, session_id=session.id, kind="system", seq=seq)],
    )
    return seq


def tell_agent(
    log: EventLog,
    settings: Settings,
    manager: pykka.ActorRef[Any],
    session: Session,
    note_id: str,
    text: str,
) -> None:
    """A plain-text note (`[SYSTEM] <text>` in the agent's prompt), and wake the session to read it."""
    write_note(log, settings, session, note_id, {"text": text})
    manager.tell(m.WakeSession(session.id, "host note"))
