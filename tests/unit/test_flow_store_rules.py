"""Rules that read the log: host-side authorization and which session a message lands in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sessiondb
from actors.authorization import agent_grant, channel_grant
from actors.session_modes import resolve_session
from config.settings import Settings
from events import types as ev
from events.log import EventLog
from tests.unit.flow_support import chat, group, wire


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    with EventLog.open(tmp_path / "central.db") as opened:
        yield opened


def test_channel_grant_comes_from_wiring_and_nothing_else(log: EventLog, settings: Settings) -> None:
    crab = group(log, settings, "crab")
    other = group(log, settings, "other")
    home = chat(log, "test", "room-1")
    wire(log, home, crab)
    assert channel_grant(log.store, crab.id, "test", "room-1") is not None
    assert channel_grant(log.store, crab.id, "test", "room-2") is None
    assert channel_grant(log.store, other.id, "test", "room-1") is None
    log.append(f"group:{crab.id}", [ev.DestinationRevoked(agent_group_id=crab.id, name="test-room-1")])
    assert channel_grant(log.store, crab.id, "test", "room-1") is None  # the wiring alone grants nothing


def test_agent_grant_is_directional(log: EventLog, settings: Settings) -> None:
    parent = group(log, settings, "parent")
    child = group(log, settings, "child")
    log.append(
        f"group:{parent.id}",
        [ev.DestinationGranted(agent_group_id=parent.id, name="kid", kind="agent", target_agent_group_id=child.id)],
    )
    grant = agent_grant(log.store, parent.id, child.id)
    assert grant is not None and grant.name == "kid"
    assert agent_grant(log.store, child.id, parent.id) is None


def test_shared_mode_is_one_session_per_chat_and_group(log: EventLog, settings: Settings) -> None:
    crab = group(log, settings, "crab")
    room = chat(log, "test", "room")
    first = resolve_session(log, settings, crab, room.id, "t1", "shared")
    again = resolve_session(log, settings, crab, room.id, "t2", "shared")
    other_room = resolve_session(log, settings, crab, chat(log, "test", "room-2").id, None, "shared")
    assert first.created and not again.created
    assert again.session.id == first.session.id
    assert other_room.session.id != first.session.id
    assert first.session.thread_id is None
    folder = sessiondb.session_dir(settings.sessions_dir, crab.id, first.session.id)
    assert sessiondb.inbound_path(folder).is_file()


def test_per_thread_mode_is_one_session_per_thread(log: EventLog, settings: Settings) -> None:
    crab = group(log, settings, "crab")
    room = chat(log, "test", "room")
    t1 = resolve_session(log, settings, crab, room.id, "t1", "per-thread").session
    t2 = resolve_session(log, settings, crab, room.id, "t2", "per-thread").session
    assert t1.id != t2.id
    assert resolve_session(log, settings, crab, room.id, "t1", "per-thread").session.id == t1.id
    assert (t1.thread_id, t2.thread_id) == ("t1", "t2")


def test_agent_shared_mode_is_one_session_per_group_across_channels(log: EventLog, settings: Settings) -> None:
    crab = group(log, settings, "crab")
    a = resolve_session(log, settings, crab, chat(log, "test", "a").id, None, "agent-shared").session
    b = resolve_session(log, settings, crab, chat(log, "slack", "b").id, None, "agent-shared").session
    assert a.id == b.id and a.mode == "agent-shared"


def test_modes_never_share_a_session(log: EventLog, settings: Settings) -> None:
    crab = group(log, settings, "crab")
    room = chat(log, "test", "room")
    agent_shared = resolve_session(log, settings, crab, room.id, None, "agent-shared").session
    shared = resolve_session(log, settings, crab, room.id, None, "shared").session
    assert shared.id != agent_shared.id
    assert resolve_session(log, settings, crab, None, None, "agent-shared").session.id == agent_shared.id
    assert resolve_session(log, settings, crab, room.id, None, "shared").session.id == shared.id


def test_a_closed_session_is_replaced(log: EventLog, settings: Settings) -> None:
    crab = group(log, settings, "crab")
    room = chat(log, "test", "room")
    old = resolve_session(log, settings, crab, room.id, None, "shared").session
    log.append(f"session:{old.id}", [ev.SessionClosed(session_id=old.id)])
    new = resolve_session(log, settings, crab, room.id, None, "shared")
    assert new.created and new.session.id != old.id
