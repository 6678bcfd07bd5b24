"""System actions, approvals, tasks and retries through a real host, real containers and the echo agent.

The echo agent calls its tools through the `!tool <name> <json>` directive, so
every request here starts as a real `kind='system'` row written by a real
runner in a real container, and is carried out by the in-process host.
Thresholds are shortened through settings only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import docker
import msgspec
import pytest

import sessiondb
from actors import admin, tasks
from actors.host import Host
from actors.system_payloads import ScheduleTask
from events.log import EventLog
from events.model import AgentGroup, Session
from tests.fakes.recording_channel import RecordingChannel
from tests.integration.host_support import MakeHost, remove_instance_containers, wait_for

pytestmark = pytest.mark.integration

ADMIN_ROOM = "admin-room"
WORKER_ROOM = "worker-room"
ADMIN_USER = "u-admin"
FAST_SWEEP = {"HERMITCRAB_SWEEP_INTERVAL": "500ms"}  # due tasks and expiries are found quickly


def log_of(host: Host) -> EventLog:
    assert host.log is not None
    return host.log


def wired_group(host: Host, name: str, room: str, *, is_admin: bool = False) -> AgentGroup:
    """A group with its own conversation on the test channel (the admin one names its admin user)."""
    log = log_of(host)
    group = admin.create_group(log, host.settings, name=name, is_admin=is_admin)
    channel = admin.ensure_messaging_group(log, "test", room, name=room, admin_user_id=ADMIN_USER if is_admin else None)
    admin.wire(log, channel, group)
    return group


def tool(tool_name: str, **args: Any) -> str:
    """An echo directive: the agent calls one of its tools with these arguments."""
    return f"!tool {tool_name} {json.dumps(args)}"


def events(host: Host, type_name: str) -> list[dict[str, Any]]:
    return [msgspec.structs.asdict(e.event) for e in log_of(host).read(types=[type_name])]


def session_of(host: Host, group: AgentGroup) -> Session:
    session = log_of(host).store.find_session_for_group(group.id)
    assert session is not None
    return session


def inbound_rows(host: Host, session: Session) -> list[tuple[str, str, str, str]]:
    folder = sessiondb.session_dir(host.settings.sessions_dir, session.agent_group_id, session.id)
    with sqlite3.connect(f"file:{sessiondb.inbound_path(folder)}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT id, kind, status, content FROM messages_in ORDER BY seq").fetchall()


def has_text(channel: RecordingChannel, room: str, fragment: str) -> Callable[[Any], bool]:
    return lambda _: any(fragment in text for text in channel.texts(room))


def test_create_agent_end_to_end_the_child_answers_its_parent(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel, **FAST_SWEEP)
    parent = wired_group(host, "Main", ADMIN_ROOM, is_admin=True)

    channel.say(ADMIN_ROOM, tool("create_agent", name="Helper", instructions="You help."), sender_id=ADMIN_USER)
    channel.wait_for(has_text(channel, ADMIN_ROOM, 'Agent "Helper" is ready'), 60, "the creator to be told")
    store = log_of(host).store
    child = store.agent_group_by_folder("helper")
    assert child is not None and child.parent_group_id == parent.id
    assert (host.settings.groups_dir / "helper" / "CLAUDE.md").read_text().rstrip().endswith("You help.")
    assert [e["group_id"] for e in events(host, "agent.created")] == [child.id]
    grants = {(e["agent_group_id"], e["name"]) for e in events(host, "destination.granted")}
    assert {(parent.id, "helper"), (child.id, "parent")} <= grants

    # Parent -> child -> parent -> the admin room. Each hop is a real container calling send_message; the
    # trailing `!silent` keeps each echo agent from answering the message it got (two echoes would chat forever).
    to_room = tool("send_message", to=ADMIN_ROOM, text="relayed: the child says hi") + "\n!silent"
    to_parent = tool("send_message", to="parent", text=to_room) + "\n!silent"
    channel.say(ADMIN_ROOM, tool("send_message", to="helper", text=to_parent), sender_id=ADMIN_USER)
    channel.wait_for(
        lambda _: "relayed: the child says hi" in channel.texts(ADMIN_ROOM), 90, "the child's answer via the parent"
    )
    child_session = session_of(host, child)
    assert child_session.mode == "agent-shared"
    from_parent = [row for row in inbound_rows(host, child_session) if "send_message" in row[3]]
    assert from_parent, "the child received its parent's message in its own session"


def test_an_approval_survives_a_host_restart_and_a_rebuild_yields_a_container_of_the_group_image(
    make_host: MakeHost, docker_client: docker.DockerClient
) -> None:
    first_channel = RecordingChannel()
    host = make_host(first_channel, **FAST_SWEEP)
    wired_group(host, "Main", ADMIN_ROOM, is_admin=True)
    worker = wired_group(host, "Worker", WORKER_ROOM)

    first_channel.say(WORKER_ROOM, tool("install_packages", apt=["jq"], reason="read JSON"))
    cards = first_channel.wait_for(
        lambda ds: any(d.delivery.card is not None for d in ds), 60, "the approval card in the admin room"
    )
    [card_delivery] = [d.delivery for d in cards if d.delivery.card is not None]
    assert card_delivery.platform_id == ADMIN_ROOM and card_delivery.card is not None
    assert "jq" in card_delivery.card.body and "read JSON" in card_delivery.card.body
    card_id = card_delivery.card.card_id
    host.stop()

    channel = RecordingChannel()
    host = make_host(channel, **FAST_SWEEP)
    channel.press(card_id, "approve", WORKER_ROOM, user_id=ADMIN_USER)
    channel.press(card_id, "approve", ADMIN_ROOM, user_id="u-guest")
    wait_for(lambda: len(events(host, "approval.answer_refused")) == 2, 10, "both wrong clicks refused")
    assert log_of(host).store.agent_group(worker.id).config.packages.apt == []  # type: ignore[union-attr]
    channel.press(card_id, "approve", ADMIN_ROOM, user_id=ADMIN_USER)
    wait_for(
        lambda: log_of(host).store.agent_group(worker.id).config.packages.apt == ["jq"],  # type: ignore[union-attr]
        10,
        "the approved package in the group's config",
    )
    changes = [e for e in events(host, "group.config_changed") if e["group_id"] == worker.id]
    assert changes and changes[-1]["reason"].startswith("install_packages approved")

    channel.say(WORKER_ROOM, tool("request_rebuild", reason="jq"))
    channel.wait_for(
        lambda ds: sum(d.delivery.card is not None for d in ds) == 1, 60, "the rebuild card in the admin room"
    )
    [rebuild_card] = [d.delivery.card for d in channel.deliveries if d.delivery.card is not None]
    assert rebuild_card is not None
    channel.press(rebuild_card.card_id, "approve", ADMIN_ROOM, user_id=ADMIN_USER)
    tag = f"hermitcrab-agent:{worker.id.lower()}"
    session = session_of(host, worker)

    def spawned_from_group_image() -> bool:
        images = [e["image"] for e in events(host, "container.spawned") if e["session_id"] == session.id]
        return bool(images) and images[-1] == tag and log_of(host).store.session(session.id).container_id is not None  # type: ignore[union-attr]

    wait_for(spawned_from_group_image, 600, "a container from the rebuilt group image")
    container_id = log_of(host).store.session(session.id).container_id  # type: ignore[union-attr]
    container = docker_client.containers.get(container_id)
    assert tag in container.image.tags
    assert container.exec_run(["jq", "--version"]).exit_code == 0, "the approved package is in the container"
    stops = [e["reason"] for e in events(host, "container.stopping") if e["session_id"] == session.id]
    assert "rebuild applied" in stops
    host.stop()
    remove_instance_containers(docker_client, host.settings)
    docker_client.images.remove(tag)  # per-group images carry a fresh group id each run


def test_a_task_scheduled_two_seconds_ahead_runs(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel, **FAST_SWEEP)
    wired_group(host, "Worker", WORKER_ROOM)
    when = datetime.now(UTC) + timedelta(seconds=2)
    channel.say(WORKER_ROOM, tool("schedule_task", prompt="ring the bell", processAfter=f"{when:%Y-%m-%dT%H:%M:%S}Z"))
    delivered = channel.wait_for(has_text(channel, WORKER_ROOM, "ring the bell"), 60, "the task's run")
    assert any("SCHEDULED TASK" in d.text and "ring the bell" in d.text for d in delivered)
    [scheduled] = events(host, "task.scheduled")
    assert scheduled["process_after"] == f"{when:%Y-%m-%d %H:%M:%S}"
    session = log_of(host).store.session(scheduled["session_id"])
    assert session is not None
    folder = sessiondb.session_dir(host.settings.sessions_dir, session.agent_group_id, session.id)
    with sqlite3.connect(f"file:{sessiondb.outbound_path(folder)}?mode=ro", uri=True) as conn:
        [(answered_at,)] = conn.execute(
            "SELECT timestamp FROM messages_out WHERE in_reply_to = ?", (scheduled["task_id"],)
        ).fetchall()
    assert answered_at >= scheduled["process_after"], "the task ran when due, not before"


def test_a_recurring_task_recurs_twice(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(channel, **FAST_SWEEP)
    worker = wired_group(host, "Worker", WORKER_ROOM)
    channel.say(WORKER_ROOM, "hello")
    channel.wait_for(has_text(channel, WORKER_ROOM, "echo: hello"), 60, "the session to exist")
    session = session_of(host, worker)
    # Agents schedule 5-field crons (minutes); croniter's seconds field makes the host recur within the test.
    first = datetime.now(UTC) + timedelta(seconds=1)
    task = ScheduleTask(
        task_id="task-recurring",
        prompt="tick tock",
        script=None,
        process_after=first,
        recurrence="* * * * * */3",
        channel_type="test",
        platform_id=WORKER_ROOM,
        thread_id=None,
    )
    tasks.schedule(host.settings, log_of(host), session, task)
    channel.wait_for(lambda _: sum("tick tock" in t for t in channel.texts(WORKER_ROOM)) >= 3, 60, "three runs")
    runs = [row for row in inbound_rows(host, session) if row[1] == "task"]
    assert len(runs) >= 3 and len({row[0] for row in runs}) == len(runs), "each occurrence is its own row"
    assert all(row[2] == "completed" for row in runs[:2])
    occurrences = [e for e in events(host, "task.scheduled") if e["task_id"] != "task-recurring"]
    times = [datetime.fromisoformat(e["process_after"]) for e in occurrences[:2]]
    assert len(times) == 2 and all(t.second % 3 == 0 for t in times) and times[1] > times[0]


def test_a_stale_containers_message_is_retried_with_backoff_and_fails_after_five_tries(make_host: MakeHost) -> None:
    channel = RecordingChannel()
    host = make_host(
        channel,
        **FAST_SWEEP,
        HERMITCRAB_STUCK_TIMEOUT="2s",
        HERMITCRAB_HARD_CEILING="3s",
        HERMITCRAB_RETRY_BASE_DELAY="500ms",
    )
    worker = wired_group(host, "Worker", WORKER_ROOM)
    message_id = channel.say(WORKER_ROOM, "!sleep 60")
    channel.wait_for(has_text(channel, WORKER_ROOM, "could not be processed"), 180, "the sender to be told")
    retried = [e for e in events(host, "message.retried") if e["message_id"] == message_id]
    assert [(e["tries"], e["status"]) for e in retried] == [
        (1, "pending"),
        (2, "pending"),
        (3, "pending"),
        (4, "pending"),
        (5, "failed"),
    ]
    assert all(e["reason"].startswith("stuck") for e in retried)
    recorded = [e.recorded_at for e in log_of(host).read(types=["message.retried"])]
    delays = [
        (datetime.fromisoformat(e["retry_at"]) - datetime.fromisoformat(at[:19])).total_seconds()
        for e, at in zip(retried[:4], recorded[:4], strict=True)
    ]
    assert delays == sorted(delays) and delays[-1] >= 4, f"backoff doubles from 0.5 s: {delays}"
    session = session_of(host, worker)
    [(_, _, status, _)] = [row for row in inbound_rows(host, session) if row[0] == message_id]
    assert status == "failed"
    assert sum("could not be processed" in t for t in channel.texts(WORKER_ROOM)) == 1
