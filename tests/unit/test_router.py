"""The RouterActor against a real event log and real session folders (the manager and hub are recorders)."""

from __future__ import annotations

import base64
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka
import pytest

import sessiondb
from actors import messages as m
from actors.router import RouterActor
from actors.services import HostServices
from channels.adapter import Attachment, Capabilities, CardAction, InboundChat
from config.settings import Settings
from events import types as ev
from events.log import EventLog
from events.model import Session, TriggerRules
from tests.unit.flow_support import Recorder, chat, group, told, wire


@dataclass
class Rig:
    log: EventLog
    settings: Settings
    router: pykka.ActorRef[Any]
    manager: pykka.ActorRef[Any]
    hub: pykka.ActorRef[Any]
    system: pykka.ActorRef[Any]

    def say(self, text: str, *, platform_id: str = "room", channel: str = "test", **fields: Any) -> str:
        message_id = fields.pop("message_id", f"m-{uuid.uuid4().hex[:8]}")
        chat_ = InboundChat(
            platform_id=platform_id,
            message_id=message_id,
            sender_id=fields.pop("sender_id", "u1"),
            sender_name=fields.pop("sender_name", "Ana"),
            text=text,
            **fields,
        )
        self.router.ask(m.RouteInbound(channel, chat_), timeout=10)
        return message_id

    def sessions_of(self, group_id: str) -> list[Session]:
        return [s for s in self.log.store.sessions_for_group(group_id)]

    def rows(self, session: Session) -> list[tuple[str, str, str | None, dict[str, Any]]]:
        folder = sessiondb.session_dir(self.settings.sessions_dir, session.agent_group_id, session.id)
        conn = sqlite3.connect(sessiondb.inbound_path(folder))
        try:
            rows = conn.execute("SELECT id, kind, thread_id, content FROM messages_in ORDER BY seq").fetchall()
        finally:
            conn.close()
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def dropped(self) -> list[ev.MessageDropped]:
        return [r.event for r in self.log.read(types=["message.dropped"])]  # type: ignore[misc]


CAPS = {"test": Capabilities(typing=True), "threads": Capabilities(threads=True)}


@pytest.fixture
def rig(tmp_path: Path, settings: Settings) -> Iterator[Rig]:
    log = EventLog.open(tmp_path / "central.db")
    manager, hub, system = Recorder.start(), Recorder.start(), Recorder.start()
    router = RouterActor.start(HostServices(settings=settings, log=log), manager, hub, CAPS, system)
    yield Rig(log, settings, router, manager, hub, system)
    pykka.ActorRegistry.stop_all()
    log.close()


def test_a_message_reaches_the_wired_groups_session(rig: Rig) -> None:
    crab = group(rig.log, rig.settings, "crab")
    wire(rig.log, chat(rig.log, "test", "room"), crab)
    message_id = rig.say("hello there", message_id="m-1")
    [session] = rig.sessions_of(crab.id)
    [(row_id, kind, _, content)] = rig.rows(session)
    assert (row_id, kind) == ("m-1", "chat")
    assert content == {"text": "hello there", "sender": "Ana", "senderId": "u1"}
    routed = [r.event for r in rig.log.read(types=["message.routed"])]
    assert [(e.message_id, e.session_id) for e in routed] == [(message_id, session.id)]  # type: ignore[attr-defined]
    assert [w.session_id for w in told(rig.manager, m.WakeSession)] == [session.id]
    assert [a.session_id for a in told(rig.manager, m.SessionActivity)] == [session.id]
    assert told(rig.hub, m.ShowTyping) == [m.ShowTyping("test", "room", None)]


def test_an_unwired_conversation_is_dropped_and_recorded(rig: Rig) -> None:
    rig.say("anyone?", platform_id="new-room", message_id="m-9")
    [dropped] = rig.dropped()
    assert (dropped.message_id, dropped.platform_id) == ("m-9", "new-room")
    assert "no agent group is wired" in dropped.reason
    assert rig.log.store.messaging_group_by_platform("test", "new-room") is not None  # created on first sight
    assert told(rig.manager, m.WakeSession) == []


def test_trigger_rules_pick_the_agent_and_unmatched_messages_are_dropped(rig: Rig) -> None:
    ops = group(rig.log, rig.settings, "ops")
    vip = group(rig.log, rig.settings, "vip")
    room = chat(rig.log, "test", "room")
    wire(rig.log, room, ops, rules=TriggerRules(pattern=r"^!ops\b"), priority=10)
    wire(rig.log, room, vip, rules=TriggerRules(include_senders=["boss"]), priority=5)
    rig.say("!ops restart the thing")
    rig.say("hi", sender_id="boss")
    rig.say("hi from a nobody")
    assert [r[3]["text"] for s in rig.sessions_of(ops.id) for r in rig.rows(s)] == ["!ops restart the thing"]
    assert [r[3]["text"] for s in rig.sessions_of(vip.id) for r in rig.rows(s)] == ["hi"]
    [dropped] = rig.dropped()
    assert "trigger rules" in dropped.reason


def test_threads_collapse_or_split_sessions_by_platform(rig: Rig) -> None:
    crab = group(rig.log, rig.settings, "crab")
    wire(rig.log, chat(rig.log, "test", "room"), crab)
    wire(rig.log, chat(rig.log, "threads", "room"), crab)
    rig.say("a", thread_id="t1")
    rig.say("b", thread_id="t2")
    [flat] = [s for s in rig.sessions_of(crab.id)]
    assert [r[2] for r in rig.rows(flat)] == [None, None]  # a platform without threads has none
    rig.say("c", channel="threads", thread_id="t1")
    rig.say("d", channel="threads", thread_id="t2")
    threaded = [s for s in rig.sessions_of(crab.id) if s.id != flat.id]
    assert sorted(s.thread_id or "" for s in threaded) == ["t1", "t2"]
    assert all(s.mode == "per-thread" for s in threaded)


def test_attachments_are_saved_into_the_session_inbox(rig: Rig) -> None:
    crab = group(rig.log, rig.settings, "crab")
    wire(rig.log, chat(rig.log, "test", "room"), crab)
    data = base64.b64encode(b"picture").decode()
    rig.say("look", message_id="m-1", attachments=[Attachment(name="p.png", data_base64=data, mime_type="image/png")])
    [session] = rig.sessions_of(crab.id)
    [(_, _, _, content)] = rig.rows(session)
    [attachment] = content["attachments"]
    assert attachment["localPath"] == "inbox/m-1/p.png" and "data" not in attachment and attachment["type"] == "image"
    folder = sessiondb.session_dir(rig.settings.sessions_dir, crab.id, session.id)
    assert (folder / "inbox" / "m-1" / "p.png").read_bytes() == b"picture"
    rig.say("bad", message_id="m-2", attachments=[Attachment(name="..", data_base64=data)])
    [dropped] = rig.dropped()
    assert dropped.message_id == "m-2" and dropped.reason.startswith("refused")


def test_metadata_names_a_new_conversation(rig: Rig) -> None:
    rig.router.ask(m.ChannelMetadata("test", "grp-1", "Family", True), timeout=10)
    found = rig.log.store.messaging_group_by_platform("test", "grp-1")
    assert found is not None and (found.name, found.is_group) == ("Family", True)


def test_a_question_answer_is_written_back_once(rig: Rig) -> None:
    crab = group(rig.log, rig.settings, "crab")
    wire(rig.log, chat(rig.log, "test", "room"), crab)
    rig.say("start")
    [session] = rig.sessions_of(crab.id)
    rig.log.append(
        f"session:{session.id}",
        [
            ev.QuestionAsked(
                question_id="q-1", session_id=session.id, message_out_id="q-1", channel_type="test", platform_id="room"
            )
        ],
    )
    press = CardAction(card_id="question:q-1", option_id="Blue", user_id="u1", platform_id="room")
    rig.router.ask(m.CardPressed("test", press), timeout=10)
    rig.router.ask(m.CardPressed("test", press), timeout=10)
    answers = [r for r in rig.rows(session) if r[1] == "system"]
    assert [a[3] for a in answers] == [
        {"type": "question_response", "questionId": "q-1", "selectedOption": "Blue", "userId": "u1"}
    ]
    assert rig.log.store.pending_question("q-1") is None
    assert [e.type for e in rig.log.read(types=["question.answered"])] == ["question.answered"]
    assert [w.reason for w in told(rig.manager, m.WakeSession)].count("question answered") == 1


def test_approval_presses_go_to_the_system_actor(rig: Rig) -> None:
    press = CardAction(card_id="approval:ap-1", option_id="approve", user_id="admin", platform_id="room")
    rig.router.ask(m.CardPressed("test", press), timeout=10)
    assert told(rig.system, m.ApprovalAnswer) == [m.ApprovalAnswer("ap-1", "approve", "admin", "test", "room")]
