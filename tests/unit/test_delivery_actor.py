"""DeliveryActors against real session files, a real event log and an in-process channel (no Docker)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka
import pytest

import sessiondb
from actors import messages as m
from actors.channel_courier import ChannelCourier
from actors.delivery import INTERNAL_LANE, DeliveryActor
from actors.internal_courier import InternalCourier
from actors.rate_limit import PairRateLimiter
from actors.services import HostServices
from actors.session_modes import resolve_session
from config.settings import Settings, load_settings
from events import types as ev
from events.log import EventLog
from events.model import AgentGroup, Session
from tests.fakes.recording_channel import RecordingChannel
from tests.unit.flow_support import Recorder, chat, eventually, group, told, wire
from tests.unit.sessiondb_fake_container import FakeContainer

ROUTE = ("test", "room", None)


@dataclass
class Rig:
    log: EventLog
    settings: Settings
    channel: RecordingChannel
    manager: pykka.ActorRef[Any]
    system: pykka.ActorRef[Any]
    crab: AgentGroup
    session: Session
    folder: Path
    container: FakeContainer
    limiter: PairRateLimiter
    actors: list[pykka.ActorRef[Any]]

    def start_lanes(self) -> None:
        services = HostServices(settings=self.settings, log=self.log)
        lanes = frozenset({"test"})
        internal = InternalCourier(services, self.manager, self.system, self.limiter)
        self.actors = [
            DeliveryActor.start(services, self.manager, "test", ChannelCourier(services, self.channel), lanes),
            DeliveryActor.start(services, self.manager, INTERNAL_LANE, internal, lanes),
        ]

    def stop_lanes(self) -> None:
        for ref in self.actors:
            ref.stop()

    def drain(self, session_id: str | None = None) -> None:
        for ref in self.actors:
            ref.ask(m.DrainSession(session_id or self.session.id, "test"), timeout=10)

    def types(self, session_id: str | None = None) -> list[str]:
        return [r.type for r in self.log.read(session=session_id or self.session.id)]

    def inbound(self, session: Session) -> list[tuple[str, str, dict[str, Any]]]:
        folder = sessiondb.session_dir(self.settings.sessions_dir, session.agent_group_id, session.id)
        conn = sqlite3.connect(sessiondb.inbound_path(folder))
        try:
            rows = conn.execute("SELECT id, kind, content FROM messages_in ORDER BY seq").fetchall()
        finally:
            conn.close()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def delivered_status(self, row_id: str) -> str | None:
        conn = sqlite3.connect(sessiondb.inbound_path(self.folder))
        try:
            row = conn.execute("SELECT status FROM delivered WHERE message_out_id = ?", (row_id,)).fetchone()
        finally:
            conn.close()
        return row[0] if row else None


@pytest.fixture
def rig(tmp_path: Path, settings_env: dict[str, str]) -> Iterator[Rig]:
    settings = load_settings(
        env={**settings_env, "HERMITCRAB_DELIVERY_RETRY_BASE": "50ms", "HERMITCRAB_AGENT_RATE_LIMIT": "2"},
        env_file=tmp_path / "absent.env",
    )
    log = EventLog.open(tmp_path / "central.db")
    crab = group(log, settings, "crab")
    wire(log, chat(log, "test", "room"), crab)
    session = resolve_session(
        log, settings, crab, log.store.messaging_group_by_platform("test", "room").id, None, "shared"
    ).session  # type: ignore[union-attr]
    folder = sessiondb.session_dir(settings.sessions_dir, crab.id, session.id)
    container = FakeContainer(folder)
    container.start()
    built = Rig(
        log=log,
        settings=settings,
        channel=RecordingChannel(),
        manager=Recorder.start(),
        system=Recorder.start(),
        crab=crab,
        session=session,
        folder=folder,
        container=container,
        limiter=PairRateLimiter(2, window_s=0.5),
        actors=[],
    )
    built.start_lanes()
    yield built
    built.stop_lanes()
    pykka.ActorRegistry.stop_all()
    log.close()


def test_a_reply_is_delivered_once_and_recorded(rig: Rig) -> None:
    rig.container.write_out("out-1", content='{"text": "hello"}', route=ROUTE)
    rig.drain()
    rig.drain()
    assert rig.channel.texts() == ["hello"]
    assert rig.channel.deliveries[0].delivery.idempotency_key == "out-1"
    assert rig.delivered_status("out-1") == "delivered"
    assert rig.types().count("message.delivered") == 1
    assert [a.session_id for a in told(rig.manager, m.SessionActivity)] == [rig.session.id]


def test_a_row_without_routing_goes_to_the_sessions_conversation(rig: Rig) -> None:
    rig.container.write_out("out-1", content='{"text": "default"}')
    rig.drain()
    assert rig.channel.deliveries[0].delivery.platform_id == "room"


def test_failing_twice_then_succeeding_is_delivered_once(rig: Rig) -> None:
    rig.channel.fail_next(2)
    rig.container.write_out("out-1", content='{"text": "persist"}', route=ROUTE)
    rig.drain()
    eventually(lambda: rig.channel.texts() == ["persist"], what="the third attempt")
    assert len(rig.channel.attempts) == 3
    failures = [r.event for r in rig.log.read(types=["message.delivery_failed"])]
    assert [(f.attempt, f.final) for f in failures] == [(1, False), (2, False)]  # type: ignore[attr-defined]
    eventually(lambda: rig.types().count("message.delivered") == 1)
    assert rig.log.store.delivery_attempts("out-1", rig.session.id) == 0


def test_later_rows_wait_behind_a_failing_one(rig: Rig) -> None:
    rig.channel.fail_next(1)
    rig.container.write_out("out-1", content='{"text": "first"}', route=ROUTE)
    rig.container.write_out("out-2", content='{"text": "second"}', route=ROUTE)
    rig.drain()
    assert rig.channel.texts() == []
    eventually(lambda: rig.channel.texts() == ["first", "second"], what="both, in order")


def test_three_failures_settle_the_row_and_tell_the_agent(rig: Rig) -> None:
    rig.channel.fail_next(3)
    rig.container.write_out("out-1", content='{"text": "doomed"}', route=ROUTE)
    rig.drain()
    eventually(lambda: told(rig.manager, m.WakeSession), what="the give-up, whose last step is the wake")
    assert rig.delivered_status("out-1") == "failed"
    assert rig.channel.texts() == [] and len(rig.channel.attempts) == 3
    notes = [c for _, kind, c in rig.inbound(rig.session) if kind == "system"]
    assert len(notes) == 1
    assert "could not be delivered after 3 attempt(s)" in notes[0]["text"] and "platform is down" in notes[0]["text"]
    assert [w.session_id for w in told(rig.manager, m.WakeSession)] == [rig.session.id]
    rig.drain()
    assert len(rig.channel.attempts) == 3  # settled: never tried again


def test_attempt_counts_survive_a_restart(rig: Rig) -> None:
    for attempt in (1, 2):
        rig.log.append(
            f"session:{rig.session.id}",
            [ev.DeliveryFailed(session_id=rig.session.id, message_out_id="out-1", attempt=attempt, error="down")],
        )
    rig.channel.fail_next(1)
    rig.container.write_out("out-1", content='{"text": "x"}', route=ROUTE)
    rig.drain()
    assert rig.delivered_status("out-1") == "failed"
    assert len(rig.channel.attempts) == 1


def test_a_non_retryable_failure_gives_up_at_once(rig: Rig) -> None:
    rig.channel.fail_next(1, retryable=False)
    rig.container.write_out("out-1", content='{"text": "x"}', route=ROUTE)
    rig.drain()
    assert rig.delivered_status("out-1") == "failed" and len(rig.channel.attempts) == 1


def test_unauthorized_destinations_are_refused_on_the_host(rig: Rig) -> None:
    rig.container.write_out("out-1", content='{"text": "leak"}', route=("test", "someone-else", None))
    rig.container.write_out("out-2", content='{"text": "sneak"}', route=("agent", "ag-unknown", None))
    rig.drain()
    assert rig.channel.attempts == []
    assert rig.delivered_status("out-1") == rig.delivered_status("out-2") == "failed"
    errors = [r.event.error for r in rig.log.read(types=["message.delivery_failed"])]  # type: ignore[attr-defined]
    assert all(e.startswith("unauthorized destination") for e in errors) and len(errors) == 2


def test_a_question_is_recorded_before_its_card_is_sent(rig: Rig) -> None:
    content = {"type": "ask_question", "questionId": "q-1", "question": "Which?", "options": ["A", "B"]}
    rig.channel.fail_next(1)
    rig.container.write_out("q-1", kind="chat-sdk", content=json.dumps(content), route=ROUTE)
    rig.drain()
    eventually(lambda: len(rig.channel.deliveries) == 1, what="the card")
    assert rig.types().count("question.asked") == 1  # the retry did not record it twice
    pending = rig.log.store.pending_question("q-1")
    assert pending is not None and pending.platform_id == "room"
    assert rig.channel.deliveries[0].delivery.card.card_id == "question:q-1"  # type: ignore[union-attr]


def test_outbox_files_are_attached_then_removed(rig: Rig) -> None:
    outbox = rig.folder / "outbox" / "out-1"
    outbox.mkdir()
    (outbox / "chart.png").write_bytes(b"\x89PNG")
    rig.container.write_out("out-1", content='{"text": "chart", "files": ["chart.png"]}', route=ROUTE)
    rig.drain()
    assert rig.channel.deliveries[0].file_bytes == {"chart.png": b"\x89PNG"}
    assert not outbox.exists()


def test_system_rows_are_handed_over_exactly_once(rig: Rig) -> None:
    rig.container.write_out("sys-1", kind="system", content='{"action": "request_rebuild", "requestId": "sys-1"}')
    rig.drain()
    rig.drain()
    requests = told(rig.system, m.SystemRequest)
    assert [(r.session_id, r.message_out_id) for r in requests] == [(rig.session.id, "sys-1")]
    assert json.loads(requests[0].content)["action"] == "request_rebuild"
    assert rig.delivered_status("sys-1") == "delivered"


def test_rows_for_a_channel_without_adapter_fail_in_the_internal_lane(rig: Rig) -> None:
    rig.log.append(
        f"group:{rig.crab.id}",
        [
            ev.DestinationGranted(
                agent_group_id=rig.crab.id, name="sl", kind="channel", channel_type="slack", platform_id="c1"
            )
        ],
    )
    rig.container.write_out("out-1", content='{"text": "x"}', route=("slack", "c1", None))
    rig.drain()
    eventually(lambda: rig.delivered_status("out-1") == "failed", what="three failed attempts")
    errors = [r.event.error for r in rig.log.read(types=["message.delivery_failed"])]  # type: ignore[attr-defined]
    assert len(errors) == 3 and "no channel adapter for 'slack'" in errors[0]


def _grant(log: EventLog, source: AgentGroup, target: AgentGroup, name: str) -> None:
    log.append(
        f"group:{source.id}",
        [ev.DestinationGranted(agent_group_id=source.id, name=name, kind="agent", target_agent_group_id=target.id)],
    )


def test_agent_to_agent_lands_in_the_targets_agent_shared_session_under_its_own_name(rig: Rig) -> None:
    helper = group(rig.log, rig.settings, "helper")
    _grant(rig.log, rig.crab, helper, "helper")
    _grant(rig.log, helper, rig.crab, "boss")
    rig.container.write_out("out-1", content='{"text": "please help"}', route=("agent", helper.id, None))
    rig.drain()
    target = rig.log.store.find_session_for_group(helper.id)
    assert target is not None and target.mode == "agent-shared" and target.messaging_group_id is None
    [(_, kind, content)] = rig.inbound(target)
    assert kind == "chat"
    assert content == {"text": "please help", "sender": "boss", "senderId": f"agent:{rig.crab.id}"}
    assert target.id in [w.session_id for w in told(rig.manager, m.WakeSession)]
    assert rig.delivered_status("out-1") == "delivered"
    assert "message.routed" in rig.types(target.id)


def test_agent_loops_are_held_past_the_rate_limit_and_released_later(rig: Rig) -> None:
    helper = group(rig.log, rig.settings, "helper")
    _grant(rig.log, rig.crab, helper, "helper")
    for n in range(1, 5):
        rig.container.write_out(f"out-{n}", content=json.dumps({"text": f"m{n}"}), route=("agent", helper.id, None))
    rig.drain()
    target = rig.log.store.find_session_for_group(helper.id)
    assert target is not None
    chats = [c["text"] for _, kind, c in rig.inbound(target) if kind == "chat"]
    assert chats == ["m1", "m2"]
    assert rig.types().count("message.held") == 2  # once per held row, however often it is re-checked
    notes_source = [c["text"] for _, kind, c in rig.inbound(rig.session) if kind == "system"]
    notes_target = [c["text"] for _, kind, c in rig.inbound(target) if kind == "system"]
    assert len(notes_source) == 1 and "held" in notes_source[0]
    assert len(notes_target) == 1 and "held" in notes_target[0] and "crab" in notes_target[0]
    eventually(
        lambda: [c["text"] for _, kind, c in rig.inbound(target) if kind == "chat"] == ["m1", "m2", "m3", "m4"],
        what="the held messages once the window allows",
    )
