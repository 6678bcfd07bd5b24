"""The SystemActor against a real event log and real session DBs, with a fake manager, group actor and channel."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import pykka
import pytest

import sessiondb
from actors import admin
from actors import messages as m
from actors.group_messages import BuildGroupImage
from actors.outlet import PostResult
from actors.services import HostServices
from actors.system_actions import SystemActor
from actors.system_messages import ExpireApprovals, ResendUnsentCards
from channels.adapter import OutboundDelivery
from config.settings import Settings
from events import types as ev
from events.log import EventLog
from events.model import Session


class FakeGroup(pykka.ThreadingActor):
    """Answers BuildGroupImage with the next scripted result: a tag, or an error to raise."""

    def __init__(self, results: list[str | Exception]) -> None:
        super().__init__()
        self._results = results

    def on_receive(self, message: Any) -> Any:
        assert isinstance(message, BuildGroupImage)
        result = self._results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


class FakeManager(pykka.ThreadingActor):
    def __init__(self, seen: list[Any], group: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self._seen = seen
        self._group = group

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, m.GroupRefQuery):
            return self._group
        self._seen.append(message)
        return None


@dataclass
class Outlet:
    posted: list[tuple[str, OutboundDelivery]] = field(default_factory=list)
    error: str | None = None

    def post(self, channel_type: str, delivery: OutboundDelivery, done: PostResult | None = None) -> None:
        self.posted.append((channel_type, delivery))
        if done is not None:
            done(None if self.error else "pm-1", self.error)


@dataclass
class World:
    log: EventLog
    settings: Settings
    outlet: Outlet
    seen: list[Any]
    builds: list[str | Exception]
    admin_session: Session
    worker_session: Session
    start: Callable[[], pykka.ActorRef[Any]]

    def notes(self, session: Session) -> list[tuple[str, int]]:
        folder = sessiondb.session_dir(self.settings.sessions_dir, session.agent_group_id, session.id)
        with sqlite3.connect(sessiondb.inbound_path(folder)) as conn:
            rows = conn.execute("SELECT content, on_wake FROM messages_in WHERE kind = 'system' ORDER BY seq")
            return [(json.loads(content)["text"], on_wake) for content, on_wake in rows]

    def events(self, type_name: str) -> list[dict[str, Any]]:
        return [msgspec.structs.asdict(e.event) for e in self.log.read(types=[type_name])]


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    actors: list[pykka.ActorRef[Any]] = []
    with EventLog.open(settings.central_db) as log:
        main = admin.create_group(log, settings, name="Main", is_admin=True)
        room = admin.ensure_messaging_group(log, "terminal", "admin-room", name="admin", admin_user_id="u-admin")
        admin.wire(log, room, main)
        worker = admin.create_group(log, settings, name="Worker")
        outlet = Outlet()
        services = HostServices(settings=settings, log=log, outlet=outlet)
        seen: list[Any] = []
        builds: list[str | Exception] = []
        group = FakeGroup.start(builds)
        manager = FakeManager.start(seen, group)
        actors += [group, manager]

        def start() -> pykka.ActorRef[Any]:
            ref = SystemActor.start(services, manager)
            actors.append(ref)
            return ref

        yield World(
            log=log,
            settings=settings,
            outlet=outlet,
            seen=seen,
            builds=builds,
            admin_session=admin.create_session(log, main, messaging_group_id=room.id),
            worker_session=admin.create_session(log, worker),
            start=start,
        )
        for ref in reversed(actors):
            ref.stop()


def request(session: Session, action: str, **fields: Any) -> m.SystemRequest:
    request_id = fields.pop("requestId", f"sys-{action}-{len(fields)}")
    content = {"action": action, "requestId": request_id, **fields}
    return m.SystemRequest(session.id, request_id, json.dumps(content))


def answer(approval_id: str, option: str, user: str = "u-admin", platform_id: str = "admin-room") -> m.ApprovalAnswer:
    return m.ApprovalAnswer(approval_id, option, user, "terminal", platform_id)


def wait_until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_schedule_task_is_stored_and_an_invalid_cron_refused_with_a_note(world: World) -> None:
    actor = world.start()
    fields = {"taskId": "task-1", "prompt": "p", "processAfter": "2030-01-01 00:00:00", "script": None}
    actor.ask(request(world.worker_session, "schedule_task", requestId="task-1", **fields))
    assert world.log.store.task("task-1") is not None
    bad = {**fields, "taskId": "task-2", "recurrence": "every monday"}
    actor.ask(request(world.worker_session, "schedule_task", requestId="task-2", **bad))
    assert world.log.store.task("task-2") is None
    [refused] = world.events("system.refused")
    assert refused["request_id"] == "task-2" and "5-field cron" in refused["reason"]
    [(note, on_wake)] = world.notes(world.worker_session)
    assert "schedule_task request was not carried out" in note and "every monday" in note and on_wake == 0
    wait_until(lambda: m.WakeSession(world.worker_session.id, "host note") in world.seen)


def test_create_agent_end_to_end_on_the_host(world: World) -> None:
    actor = world.start()
    sessiondb.create_session_folder(
        sessiondb.session_dir(world.settings.sessions_dir, world.admin_session.agent_group_id, world.admin_session.id)
    )
    actor.ask(request(world.admin_session, "create_agent", requestId="sys-a", name="Research Bot", instructions="Dig."))
    store = world.log.store
    child = store.agent_group_by_folder("research-bot")
    assert child is not None and child.parent_group_id == world.admin_session.agent_group_id
    assert (world.settings.groups_dir / "research-bot" / "CLAUDE.md").read_text().rstrip().endswith("Dig.")
    to_child = store.destination(world.admin_session.agent_group_id, "research-bot")
    to_parent = store.destination(child.id, "parent")
    assert to_child is not None and to_child.target_agent_group_id == child.id
    assert to_parent is not None and to_parent.target_agent_group_id == world.admin_session.agent_group_id
    assert world.events("agent.created")[0]["folder"] == "research-bot"
    folder = sessiondb.session_dir(
        world.settings.sessions_dir, world.admin_session.agent_group_id, world.admin_session.id
    )
    with sqlite3.connect(sessiondb.inbound_path(folder)) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM destinations")}
    assert "research-bot" in names, "the creator's running session sees the new agent without a restart"
    note = world.notes(world.admin_session)[0][0]
    assert 'destination "research-bot"' in note and "<message" not in note, "no tag an echo agent would dispatch"

    actor.ask(request(world.admin_session, "create_agent", requestId="sys-a", name="Research Bot"))
    assert len(world.log.store.agent_groups()) == 3, "a redelivered request creates nothing"
    actor.ask(request(world.admin_session, "create_agent", requestId="sys-b", name="research  bot"))
    assert "already have a destination" in world.events("system.refused")[0]["reason"]
    actor.ask(request(world.admin_session, "create_agent", requestId="sys-c", name="Research_Bot!"))
    assert "letters, digits" in world.events("system.refused")[1]["reason"]


def test_only_admin_groups_may_create_agents(world: World) -> None:
    world.start().ask(request(world.worker_session, "create_agent", name="Sneaky"))
    assert world.log.store.agent_group_by_folder("sneaky") is None
    assert "only the admin agent" in world.events("system.refused")[0]["reason"]


def test_install_packages_card_then_refused_click_then_admin_approval(world: World) -> None:
    actor = world.start()
    actor.ask(request(world.worker_session, "install_packages", requestId="sys-p", apt=["jq"], pip=["rich"]))
    actor.ask(request(world.worker_session, "install_packages", requestId="sys-p", apt=["jq"], pip=["rich"]))
    [requested] = world.events("approval.requested")
    assert requested["approval_id"] == "appr-sys-p" and json.loads(requested["payload"])["apt"] == ["jq"]
    [(channel_type, delivery)] = world.outlet.posted
    assert (channel_type, delivery.platform_id) == ("terminal", "admin-room")
    assert delivery.card is not None and delivery.card.card_id == "approval:appr-sys-p"
    assert "jq" in delivery.card.body and "rich" in delivery.card.body
    wait_until(lambda: world.log.store.pending_approval("appr-sys-p").platform_message_id == "pm-1")  # type: ignore[union-attr]

    actor.ask(answer("appr-sys-p", "approve", user="u-guest"))
    actor.ask(answer("appr-sys-p", "approve", platform_id="other-room"))
    refusals = world.events("approval.answer_refused")
    assert ["not the admin" in refusals[0]["reason"], "admin conversation" in refusals[1]["reason"]] == [True, True]
    assert world.log.store.pending_approval("appr-sys-p").status == "pending"  # type: ignore[union-attr]

    actor.ask(answer("appr-sys-p", "approve"))
    group = world.log.store.agent_group(world.worker_session.agent_group_id)
    assert group is not None and (group.config.packages.apt, group.config.packages.pip) == (["jq"], ["rich"])
    assert world.log.store.pending_approval("appr-sys-p").status == "approved"  # type: ignore[union-attr]
    assert "request_rebuild" in world.notes(world.worker_session)[-1][0]
    actor.ask(answer("appr-sys-p", "reject"))
    assert "already approved" in world.events("approval.answer_refused")[-1]["reason"]


def test_add_mcp_server_is_applied_and_running_containers_restart(world: World) -> None:
    actor = world.start()
    sid = world.worker_session.id
    world.log.append(
        f"session:{sid}",
        [ev.ContainerSpawned(session_id=sid, container_id="c1", container_name="n", image="i", mounts_digest="d")],
    )
    env = {"TOKEN": "hidden-value"}
    actor.ask(request(world.worker_session, "add_mcp_server", requestId="sys-m", name="calc", command="calc", env=env))
    assert "hidden-value" not in world.outlet.posted[0][1].text
    actor.ask(answer("appr-sys-m", "approve"))
    group = world.log.store.agent_group(world.worker_session.agent_group_id)
    assert group is not None and group.config.mcp_servers["calc"].env == env
    wait_until(lambda: m.StopSession(sid, "mcp server added") in world.seen)
    assert world.notes(world.worker_session)[-1][1] == 1, "the note waits for the restarted container"


def test_rebuild_builds_then_stops_and_tells_or_reports_a_failure(world: World) -> None:
    actor = world.start()
    actor.ask(request(world.worker_session, "request_rebuild", requestId="sys-r0"))
    assert "nothing to rebuild" in world.events("system.refused")[0]["reason"]
    actor.ask(request(world.worker_session, "install_packages", requestId="sys-p", apt=["jq"]))
    actor.ask(answer("appr-sys-p", "approve"))
    sid = world.worker_session.id
    world.log.append(
        f"session:{sid}",
        [ev.ContainerSpawned(session_id=sid, container_id="c1", container_name="n", image="i", mounts_digest="d")],
    )
    world.builds += [ValueError("apt-get says no"), "hermitcrab-agent:built"]
    actor.ask(request(world.worker_session, "request_rebuild", requestId="sys-f"))
    actor.ask(answer("appr-sys-f", "approve"))
    wait_until(lambda: world.log.store.pending_approval("appr-sys-f").status == "approved")  # type: ignore[union-attr]
    assert "the rebuild failed: apt-get says no" in world.notes(world.worker_session)[-1][0]
    assert m.StopSession(sid, "rebuild applied") not in world.seen

    actor.ask(request(world.worker_session, "request_rebuild", requestId="sys-r"))
    actor.ask(answer("appr-sys-r", "approve"))
    actor.ask(answer("appr-sys-r", "approve"))
    wait_until(lambda: world.log.store.pending_approval("appr-sys-r").status == "approved")  # type: ignore[union-attr]
    assert "already being applied" in world.events("approval.answer_refused")[-1]["reason"]
    wait_until(lambda: m.StopSession(sid, "rebuild applied") in world.seen)
    assert "hermitcrab-agent:built" in world.notes(world.worker_session)[-1][0]


def test_reject_no_admin_channel_and_undeliverable_cards_tell_the_agent(world: World) -> None:
    actor = world.start()
    actor.ask(request(world.worker_session, "install_packages", requestId="sys-1", apt=["jq"]))
    actor.ask(answer("appr-sys-1", "reject"))
    assert "rejected by the admin" in world.notes(world.worker_session)[-1][0]
    world.outlet.error = "platform down"
    actor.ask(request(world.worker_session, "install_packages", requestId="sys-2", apt=["jq"]))
    # The refusal is recorded first and the agent told right after: wait for the note, then check both.
    wait_until(lambda: "could not be delivered: platform down" in world.notes(world.worker_session)[-1][0])
    assert world.log.store.pending_approval("appr-sys-2").status == "rejected"  # type: ignore[union-attr]
    for wiring in world.log.store.wirings_for_group(world.admin_session.agent_group_id):
        world.log.append(f"wiring:{wiring.id}", [ev.WiringRemoved(wiring_id=wiring.id)])
    actor.ask(request(world.worker_session, "install_packages", requestId="sys-3", apt=["jq"]))
    assert "no admin conversation" in world.notes(world.worker_session)[-1][0]


def test_approvals_expire_and_survive_a_restart_of_the_actor(world: World) -> None:
    first = world.start()
    first.ask(request(world.worker_session, "install_packages", requestId="sys-1", apt=["jq"]))
    first.ask(request(world.worker_session, "install_packages", requestId="sys-2", apt=["rich"]))
    first.stop()
    second = world.start()
    second.ask(answer("appr-sys-1", "approve"))
    assert world.log.store.pending_approval("appr-sys-1").status == "approved"  # type: ignore[union-attr]
    later = datetime.now(UTC).timestamp() + world.settings.approval_ttl_s + 1
    assert second.ask(ExpireApprovals(later)) == 1
    assert world.log.store.pending_approval("appr-sys-2").status == "expired"  # type: ignore[union-attr]
    assert "did not answer within 24 h" in world.notes(world.worker_session)[-1][0]
    assert second.ask(ExpireApprovals(later)) == 0


def test_a_card_lost_to_a_crash_is_posted_again_once_at_start(world: World) -> None:
    first = world.start()
    world.outlet.post = lambda *args, **kwargs: None  # type: ignore[method-assign]  # the host dies before posting
    first.ask(request(world.worker_session, "install_packages", requestId="sys-1", apt=["jq"]))
    first.stop()
    assert world.log.store.pending_approval("appr-sys-1").platform_message_id is None  # type: ignore[union-attr]
    del world.outlet.post  # the real fake again: it records and confirms

    second = world.start()
    assert second.ask(ResendUnsentCards()) == 1
    [(channel_type, delivery)] = world.outlet.posted
    assert channel_type == "terminal" and delivery.card is not None and "jq" in delivery.text
    wait_until(lambda: world.log.store.pending_approval("appr-sys-1").platform_message_id == "pm-1")  # type: ignore[union-attr]
    assert second.ask(ResendUnsentCards()) == 0
