"""Messages end to end: channel -> router -> session -> real container (echo) -> delivery -> channel.

Every test drives a real in-process Host with an in-process test channel
(`tests/fakes/recording_channel.py`) and real agent containers; what the host
did is checked in the event log, the session files and the channel's record.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

import sessiondb
from actors import admin
from actors.host import Host
from channels.adapter import Capabilities
from events import types as ev
from events.model import AgentGroup, Session, SessionMode, TriggerRules
from tests.fakes.recording_channel import RecordingChannel
from tests.integration.host_support import MakeHost, wait_for

pytestmark = pytest.mark.integration

REPLY_S = 60.0


def _log(host: Host) -> Any:
    assert host.log is not None
    return host.log


def new_group(host: Host, name: str) -> AgentGroup:
    return admin.create_group(_log(host), host.settings, name=name)


def wire(
    host: Host,
    group: AgentGroup,
    channel_type: str,
    platform_id: str,
    mode: SessionMode = "shared",
    rules: TriggerRules | None = None,
    priority: int = 0,
) -> None:
    conversation = admin.ensure_messaging_group(_log(host), channel_type, platform_id)
    admin.wire(_log(host), conversation, group, mode=mode, trigger_rules=rules, priority=priority)


def grant_agent(host: Host, source: AgentGroup, target: AgentGroup, name: str) -> None:
    _log(host).append(
        f"group:{source.id}",
        [ev.DestinationGranted(agent_group_id=source.id, name=name, kind="agent", target_agent_group_id=target.id)],
    )


def sessions_of(host: Host, group: AgentGroup) -> list[Session]:
    return list(_log(host).store.sessions_for_group(group.id))


def inbound_rows(host: Host, session: Session) -> list[tuple[str, dict[str, Any]]]:
    folder = sessiondb.session_dir(host.settings.sessions_dir, session.agent_group_id, session.id)
    conn = sqlite3.connect(f"file:{sessiondb.inbound_path(folder)}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT kind, content FROM messages_in ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [(kind, json.loads(content)) for kind, content in rows]


def event_types(host: Host, session_id: str) -> list[str]:
    return [recorded.type for recorded in _log(host).read(session=session_id)]


def failures(host: Host) -> list[ev.DeliveryFailed]:
    return [r.event for r in _log(host).read(types=["message.delivery_failed"])]  # type: ignore[misc]


def has_text(text: str) -> Callable[[list[Any]], bool]:
    return lambda delivered: any(text in d.text for d in delivered)


# -- the whole path ----------------------------------------------------------------------------------


def test_a_message_travels_to_its_reply_with_every_step_in_the_log(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel)
    crab = new_group(host, "crab")
    wire(host, crab, "test", "room")
    for text in ("hello", "second", "third"):
        channel.say("room", text)
        channel.wait_for(has_text(f"echo: {text}"), REPLY_S, f"the reply to {text!r}")
    assert channel.texts() == ["echo: hello", "echo: second", "echo: third"]
    assert {d.delivery.platform_id for d in channel.deliveries} == {"room"}
    assert ("room", None) in channel.typing
    [session] = sessions_of(host, crab)
    wait_for(lambda: event_types(host, session.id).count("message.delivered") == 3, 5, "the last record")
    steps = event_types(host, session.id)
    first_of = {name: steps.index(name) for name in reversed(steps)}
    assert (
        first_of["session.created"]
        < first_of["message.routed"]
        < first_of["session.wake_requested"]
        < first_of["container.starting"]
        < first_of["container.spawned"]
        < first_of["message.delivered"]
    )
    assert steps.count("message.routed") == 3 and steps.count("message.delivered") == 3
    assert steps.count("container.spawned") == 1  # the warm container took the later messages


def test_each_session_mode(make_host: MakeHost) -> None:
    flat = RecordingChannel("test")
    threaded = RecordingChannel("threads", Capabilities(threads=True, cards=True))
    host = make_host(flat, threaded)
    shared, per_thread, everywhere = new_group(host, "shared"), new_group(host, "perthread"), new_group(host, "both")
    wire(host, shared, "test", "a")
    wire(host, shared, "test", "b")
    wire(host, per_thread, "threads", "c", mode="per-thread")
    wire(host, everywhere, "test", "d", mode="agent-shared")
    wire(host, everywhere, "threads", "e", mode="agent-shared")

    # one at a time: messages arriving together are answered together, to the latest one's conversation
    sends = [
        (flat, "a", "t1", "a1"),
        (flat, "a", "t2", "a2"),
        (flat, "b", None, "b1"),
        (threaded, "c", "t1", "c1"),
        (threaded, "c", "t2", "c2"),
        (threaded, "c", "t1", "c3"),
        (flat, "d", None, "d1"),
        (threaded, "e", "t9", "e1"),
    ]
    for channel, platform_id, thread_id, text in sends:
        channel.say(platform_id, text, thread_id=thread_id)
        channel.wait_for(has_text(f"echo: {text}"), REPLY_S, f"the reply to {text}")

    assert len(sessions_of(host, shared)) == 2  # one per conversation; a flat platform has no threads
    assert sorted(s.thread_id or "" for s in sessions_of(host, per_thread)) == ["t1", "t2"]
    [one] = sessions_of(host, everywhere)
    assert one.mode == "agent-shared"
    replies = {(d.delivery.platform_id, d.delivery.thread_id, d.text) for d in flat.deliveries + threaded.deliveries}
    assert {("a", None, "echo: a1"), ("a", None, "echo: a2"), ("b", None, "echo: b1")} <= replies
    assert {("c", "t1", "echo: c1"), ("c", "t2", "echo: c2"), ("c", "t1", "echo: c3")} <= replies
    assert {("d", None, "echo: d1"), ("e", "t9", "echo: e1")} <= replies  # each reply back where it came from


def test_trigger_rules_pick_the_agent_and_an_unmatched_message_is_dropped(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel)
    ops, vip = new_group(host, "ops"), new_group(host, "vip")
    wire(host, ops, "test", "room", rules=TriggerRules(pattern=r"^ops:"), priority=10)
    wire(host, vip, "test", "room", rules=TriggerRules(include_senders=["boss"]), priority=5)
    channel.say("room", "ops: restart the thing")
    channel.say("room", "from the boss", sender_id="boss")
    unmatched = channel.say("room", "from nobody", sender_id="nobody")
    channel.wait_for(lambda d: len(d) == 2, REPLY_S, "two replies")
    [ops_session], [vip_session] = sessions_of(host, ops), sessions_of(host, vip)
    assert [c["text"] for _, c in inbound_rows(host, ops_session)] == ["ops: restart the thing"]
    assert [c["text"] for _, c in inbound_rows(host, vip_session)] == ["from the boss"]
    dropped = [r.event for r in _log(host).read(types=["message.dropped"])]
    assert [(d.message_id, "trigger rules" in d.reason) for d in dropped] == [(unmatched, True)]  # type: ignore[attr-defined]


# -- delivery failures ----------------------------------------------------------------------------------


def test_a_delivery_failing_twice_then_succeeding_is_delivered_once(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel, HERMITCRAB_DELIVERY_RETRY_BASE="200ms")
    crab = new_group(host, "crab")
    wire(host, crab, "test", "room")
    channel.fail_next(2)
    channel.say("room", "persist")
    channel.wait_for(has_text("echo: persist"), REPLY_S, "the reply after two failures")
    wait_for(lambda: len(failures(host)) == 2, 5, "both failures recorded")
    assert channel.texts() == ["echo: persist"]
    assert len(channel.attempts) == 3
    assert [(f.attempt, f.final) for f in failures(host)] == [(1, False), (2, False)]
    [session] = sessions_of(host, crab)
    wait_for(lambda: "message.delivered" in event_types(host, session.id), 5, "the delivery record")
    assert event_types(host, session.id).count("message.delivered") == 1


def test_a_delivery_failing_three_times_reaches_the_agent_as_a_system_message(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel, HERMITCRAB_DELIVERY_RETRY_BASE="200ms")
    crab = new_group(host, "crab")
    wire(host, crab, "test", "room")
    channel.fail_next(3)
    channel.say("room", "doomed")
    # the 4th call works: it carries the echo agent's answer to the failure note, proving it saw the note
    [seen] = channel.wait_for(lambda d: len(d) == 1, REPLY_S, "the agent's reaction to the failure")
    assert seen.text.startswith("echo: [SYSTEM] Your message")
    assert "could not be delivered after 3 attempt(s)" in seen.text and "platform is down" in seen.text
    assert [f.final for f in failures(host)] == [False, False, True]
    [session] = sessions_of(host, crab)
    assert [c["text"] for kind, c in inbound_rows(host, session) if kind == "system"] == [
        seen.text[len("echo: [SYSTEM] ") :]
    ]
    assert "echo: doomed" not in channel.texts()


def test_unauthorized_destinations_are_refused_even_when_the_container_asks(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel)
    crab = new_group(host, "crab")
    wire(host, crab, "test", "room")
    _log(host).append(
        f"group:{crab.id}",
        [
            ev.DestinationGranted(
                agent_group_id=crab.id, name="elsewhere", kind="channel", channel_type="test", platform_id="other"
            )
        ],
    )
    channel.say("room", "warm up")  # the container starts with "elsewhere" in its destination map
    channel.wait_for(has_text("echo: warm up"), REPLY_S, "the first reply")
    _log(host).append(f"group:{crab.id}", [ev.DestinationRevoked(agent_group_id=crab.id, name="elsewhere")])
    channel.say("room", '<message to="elsewhere">the secret</message>')
    wait_for(lambda: failures(host), REPLY_S, "the refusal")
    [refusal] = failures(host)
    assert refusal.final and refusal.error.startswith("unauthorized destination test/other")
    assert all(d.delivery.platform_id == "room" for d in channel.deliveries)
    assert [a.platform_id for a in channel.attempts] == ["room"]


# -- between agents ------------------------------------------------------------------------------------


def test_agent_to_agent_with_names_and_a_bounded_loop(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel, HERMITCRAB_AGENT_RATE_LIMIT="3")
    parent, worker = new_group(host, "parent"), new_group(host, "worker")
    wire(host, parent, "test", "room")
    grant_agent(host, parent, worker, "helper")
    grant_agent(host, worker, parent, "boss")
    channel.say("room", '<message to="helper">ping</message>')

    def agent_shared(group: AgentGroup) -> Session | None:
        return next((s for s in sessions_of(host, group) if s.mode == "agent-shared"), None)

    def chats(session: Session) -> list[dict[str, Any]]:
        return [c for kind, c in inbound_rows(host, session) if kind == "chat"]

    def notes(session: Session) -> list[str]:
        return [c.get("text", "") for kind, c in inbound_rows(host, session) if kind == "system"]

    wait_for(lambda: agent_shared(worker) and agent_shared(parent), REPLY_S, "both agent-shared sessions")
    worker_side, parent_side = agent_shared(worker), agent_shared(parent)
    assert worker_side is not None and parent_side is not None
    wait_for(lambda: chats(parent_side), REPLY_S, "the worker's answer")
    # each side sees the other under its own name for it
    assert chats(worker_side)[0] == {"text": "ping", "sender": "boss", "senderId": f"agent:{parent.id}"}
    assert chats(parent_side)[0] == {"text": "echo: ping", "sender": "helper", "senderId": f"agent:{worker.id}"}
    # two echo agents answer each other forever: the rate limit holds the loop and both agents are told
    wait_for(lambda: list(_log(host).read(types=["message.held"])), REPLY_S, "the loop to be held")
    held = next(iter(_log(host).read(types=["message.held"]))).event
    source = _log(host).store.session(held.session_id)  # type: ignore[attr-defined]
    assert source is not None
    target_side = worker_side if source.agent_group_id == parent.id else parent_side
    wait_for(lambda: any("are held" in n for n in notes(source)), REPLY_S, "the sender's note")
    wait_for(lambda: any("to you are held" in n for n in notes(target_side)), REPLY_S, "the receiver's note")
    assert len(chats(worker_side)) <= 3 and len(chats(parent_side)) <= 3  # at most 3 a minute per direction


# -- cards and files -------------------------------------------------------------------------------------


def test_a_question_card_round_trip(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel)
    crab = new_group(host, "crab")
    wire(host, crab, "test", "room")
    question = json.dumps({"question": "Which colour?", "options": ["Red", "Blue"], "timeout": 60})
    channel.say("room", f"!tool ask_user_question {question}")
    [card_delivery] = channel.wait_for(lambda d: d and d[0].delivery.card is not None, REPLY_S, "the question card")
    card = card_delivery.delivery.card
    assert card is not None and card.card_id.startswith("question:") and card.title == "Which colour?"
    question_id = card.card_id.removeprefix("question:")
    assert _log(host).store.pending_question(question_id) is not None
    channel.press(card.card_id, "Blue", "room")
    channel.wait_for(has_text("tool ask_user_question: Blue"), REPLY_S, "the agent to get the answer")
    assert _log(host).store.pending_question(question_id) is None


def test_an_agents_file_is_attached_and_its_outbox_folder_removed(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel)
    crab = new_group(host, "crab")
    wire(host, crab, "test", "room")
    (host.settings.groups_dir / crab.folder / "report.txt").write_text("42 widgets")
    channel.say("room", '!tool send_file {"path": "report.txt", "text": "the report"}')
    [with_file] = channel.wait_for(lambda d: any(x.file_bytes for x in d), REPLY_S, "the file")[:1]
    assert with_file.file_bytes == {"report.txt": b"42 widgets"} and with_file.text == "the report"
    [session] = sessions_of(host, crab)
    outbox = sessiondb.outbox_dir(sessiondb.session_dir(host.settings.sessions_dir, crab.id, session.id))
    wait_for(lambda: not any(outbox.iterdir()), 10, "the outbox folder to be removed")
