"""Each event's effect on the tables the host reads, seen through the Store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from events import types as ev
from events.log import EventLog
from events.model import GroupConfig, TriggerRules
from events.projections import HANDLERS
from tests.unit.event_samples import CONFIG


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    opened = EventLog.open(tmp_path / "hermitcrab.db")
    opened.append("group:g1", [ev.GroupCreated(group_id="g1", name="Main", folder="main", is_admin=True)])
    opened.append(
        "messaging_group:m1", [ev.MessagingGroupCreated(messaging_group_id="m1", channel_type="tg", platform_id="42")]
    )
    opened.append("session:s1", [ev.SessionCreated(session_id="s1", agent_group_id="g1", messaging_group_id="m1")])
    yield opened
    opened.close()


def _recorded_at(log: EventLog) -> str:
    """The plain-form time of the newest event."""
    (newest,) = log.read(after=log.last_position() - 1)
    return newest.recorded_at[:19]


def test_every_event_type_has_a_projection_handler() -> None:
    assert set(HANDLERS) == {ev.type_name(t) for t in ev.ALL_EVENT_TYPES}


def test_group_created_initialized_and_reconfigured(log: EventLog) -> None:
    group = log.store.agent_group("g1")
    assert group is not None
    assert (group.name, group.folder, group.is_admin, group.initialized, group.config) == (
        "Main",
        "main",
        True,
        False,
        GroupConfig(),
    )
    log.append("group:g1", [ev.GroupInitialized(group_id="g1", steps=["claude_md", "skills"])])
    log.append("group:g1", [ev.GroupInitialized(group_id="g1", steps=["skills", "runner"])])
    log.append("group:g1", [ev.GroupConfigChanged(group_id="g1", config=CONFIG)])
    group = log.store.agent_group_by_folder("main")
    assert group is not None
    assert group.initialized
    assert group.init_steps == ["claude_md", "skills", "runner"]
    assert group.config == CONFIG
    assert [g.id for g in log.store.agent_groups()] == ["g1"]


def test_an_initialization_that_ran_no_step_still_marks_the_group(log: EventLog) -> None:
    log.append("group:g1", [ev.GroupInitialized(group_id="g1", steps=[])])
    group = log.store.agent_group("g1")
    assert group is not None
    assert group.initialized
    assert group.init_steps == []


def test_agent_created_records_the_parent(log: EventLog) -> None:
    log.append(
        "group:g2",
        [
            ev.GroupCreated(group_id="g2", name="Worker", folder="worker"),
            ev.AgentCreated(group_id="g2", parent_group_id="g1", name="Worker", folder="worker"),
        ],
    )
    child = log.store.agent_group("g2")
    assert child is not None
    assert child.parent_group_id == "g1"


def test_group_deleted_removes_the_group_its_wirings_and_destinations(log: EventLog) -> None:
    log.append("group:g2", [ev.GroupCreated(group_id="g2", name="Other", folder="other")])
    log.append("wiring:w1", [ev.WiringCreated(wiring_id="w1", messaging_group_id="m1", agent_group_id="g2")])
    log.append(
        "group:g2", [ev.DestinationGranted(agent_group_id="g2", name="boss", kind="agent", target_agent_group_id="g1")]
    )
    log.append(
        "group:g1",
        [ev.DestinationGranted(agent_group_id="g1", name="worker", kind="agent", target_agent_group_id="g2")],
    )
    log.append(
        "group:g1", [ev.DestinationGranted(agent_group_id="g1", name="chat", kind="channel", messaging_group_id="m1")]
    )
    log.append("group:g2", [ev.GroupDeleted(group_id="g2")])
    assert log.store.agent_group("g2") is None
    assert log.store.wirings("m1") == []
    assert log.store.destinations("g2") == []
    assert [d.name for d in log.store.destinations("g1")] == ["chat"]
    assert log.store.agent_group("g1") is not None


def test_messaging_groups_and_wirings_by_priority(log: EventLog) -> None:
    log.append("group:g2", [ev.GroupCreated(group_id="g2", name="Two", folder="two")])
    log.append("group:g3", [ev.GroupCreated(group_id="g3", name="Three", folder="three")])
    rules = TriggerRules(pattern="^hi", mention_only=True)
    log.append(
        "wiring:w1", [ev.WiringCreated(wiring_id="w1", messaging_group_id="m1", agent_group_id="g1", priority=1)]
    )
    log.append(
        "wiring:w2",
        [
            ev.WiringCreated(
                wiring_id="w2",
                messaging_group_id="m1",
                agent_group_id="g2",
                priority=5,
                trigger_rules=rules,
                session_mode="per-thread",
                response_scope="thread",
            )
        ],
    )
    log.append(
        "wiring:w3", [ev.WiringCreated(wiring_id="w3", messaging_group_id="m1", agent_group_id="g3", priority=1)]
    )
    wirings = log.store.wirings("m1")
    assert [w.id for w in wirings] == ["w2", "w1", "w3"]
    assert (wirings[0].trigger_rules, wirings[0].session_mode, wirings[0].response_scope) == (
        rules,
        "per-thread",
        "thread",
    )
    assert [w.id for w in log.store.wirings_for_group("g2")] == ["w2"]
    log.append("wiring:w2", [ev.WiringRemoved(wiring_id="w2")])
    assert [w.id for w in log.store.wirings("m1")] == ["w1", "w3"]
    assert log.store.wiring("w2") is None
    chat = log.store.messaging_group_by_platform("tg", "42")
    assert chat is not None
    assert chat.id == "m1"
    assert log.store.messaging_group_by_platform("tg", "43") is None
    assert [m.id for m in log.store.messaging_groups()] == ["m1"]


def test_destinations_granted_regranted_and_revoked(log: EventLog) -> None:
    log.append(
        "group:g1",
        [
            ev.DestinationGranted(
                agent_group_id="g1",
                name="home",
                kind="channel",
                display_name="Home",
                channel_type="tg",
                platform_id="42",
                messaging_group_id="m1",
            ),
            ev.DestinationGranted(agent_group_id="g1", name="boss", kind="agent", target_agent_group_id="g9"),
        ],
    )
    first = log.store.destination("g1", "boss")
    assert first is not None
    assert (first.type, first.target_agent_group_id, first.messaging_group_id) == ("agent", "g9", None)
    home = log.store.destination("g1", "home")
    assert home is not None
    assert (home.type, home.messaging_group_id, home.channel_type, home.platform_id, home.display_name) == (
        "channel",
        "m1",
        "tg",
        "42",
        "Home",
    )
    log.append(
        "group:g1", [ev.DestinationGranted(agent_group_id="g1", name="boss", kind="agent", target_agent_group_id="g8")]
    )
    regranted = log.store.destination("g1", "boss")
    assert regranted is not None
    assert regranted.target_agent_group_id == "g8"
    log.append("group:g1", [ev.DestinationRevoked(agent_group_id="g1", name="home")])
    assert [d.name for d in log.store.destinations("g1")] == ["boss"]


@pytest.mark.parametrize(
    ("events", "status", "container_id"),
    [
        ([ev.ContainerStarting(session_id="s1", container_name="n")], "starting", None),
        (
            [ev.ContainerSpawned(session_id="s1", container_id="c1", container_name="n", image="i", mounts_digest="d")],
            "running",
            "c1",
        ),
        ([ev.ContainerIdle(session_id="s1", container_id="c1")], "idle", None),
        (
            [
                ev.ContainerIdle(session_id="s1", container_id="c1"),
                ev.ContainerBusy(session_id="s1", container_id="c1"),
            ],
            "running",
            None,
        ),
        ([ev.ContainerStopping(session_id="s1", container_id="c1", reason="idle")], "stopping", None),
        ([ev.ContainerAdopted(session_id="s1", container_id="c7", container_name="n")], "running", "c7"),
        (
            [
                ev.ContainerSpawned(
                    session_id="s1", container_id="c1", container_name="n", image="i", mounts_digest="d"
                ),
                ev.ContainerStopped(session_id="s1", container_id="c1", reason="idle", exit_code=0),
            ],
            "stopped",
            None,
        ),
    ],
    ids=["starting", "spawned", "idle", "busy", "stopping", "adopted", "stopped"],
)
def test_container_status_follows_the_container_events(
    log: EventLog, events: list[ev.Event], status: str, container_id: str | None
) -> None:
    session = log.store.session("s1")
    assert session is not None
    assert (session.container_status, session.container_id) == ("stopped", None)
    log.append("session:s1", events)
    session = log.store.session("s1")
    assert session is not None
    assert (session.container_status, session.container_id) == (status, container_id)


@pytest.mark.parametrize(
    "event",
    [
        ev.MessageRouted(message_id="i", session_id="s1", kind="chat", seq=2),
        ev.MessageDelivered(session_id="s1", message_out_id="o"),
        ev.ContainerSpawned(session_id="s1", container_id="c", container_name="n", image="i", mounts_digest="d"),
        ev.ContainerAdopted(session_id="s1", container_id="c", container_name="n"),
    ],
    ids=lambda e: ev.type_name(type(e)),
)
def test_last_active_is_the_recorded_time_of_activity(log: EventLog, event: ev.Event) -> None:
    session = log.store.session("s1")
    assert session is not None
    assert session.last_active is None
    log.append("session:s1", [event])
    session = log.store.session("s1")
    assert session is not None
    assert session.last_active == _recorded_at(log)


def test_idle_and_wake_do_not_count_as_activity(log: EventLog) -> None:
    log.append("session:s1", [ev.WakeRequested(session_id="s1"), ev.ContainerIdle(session_id="s1", container_id="c")])
    session = log.store.session("s1")
    assert session is not None
    assert session.last_active is None


def test_sessions_found_listed_and_closed(log: EventLog) -> None:
    log.append(
        "session:s2",
        [
            ev.SessionCreated(
                session_id="s2", agent_group_id="g1", messaging_group_id="m1", thread_id="t", mode="per-thread"
            )
        ],
    )
    found = log.store.find_session("g1", "m1", None)
    assert found is not None
    assert found.id == "s1"
    threaded = log.store.find_session("g1", "m1", "t")
    assert threaded is not None
    assert (threaded.id, threaded.mode) == ("s2", "per-thread")
    assert log.store.find_session("g1", "m2", None) is None
    newest = log.store.find_session_for_group("g1")
    assert newest is not None
    assert newest.id in {"s1", "s2"}
    log.append("session:s1", [ev.SessionClosed(session_id="s1", reason="done")])
    assert log.store.find_session("g1", "m1", None) is None
    assert [s.id for s in log.store.sessions()] == ["s2"]
    assert [s.id for s in log.store.sessions(status="closed")] == ["s1"]
    assert sorted(s.id for s in log.store.sessions(status=None)) == ["s1", "s2"]
    assert sorted(s.id for s in log.store.sessions_for_group("g1")) == ["s1", "s2"]


def test_questions_asked_and_answered(log: EventLog) -> None:
    log.append(
        "question:q1",
        [ev.QuestionAsked(question_id="q1", session_id="s1", message_out_id="o1", channel_type="tg", platform_id="42")],
    )
    question = log.store.pending_question("q1")
    assert question is not None
    assert (question.session_id, question.message_out_id, question.channel_type, question.platform_id) == (
        "s1",
        "o1",
        "tg",
        "42",
    )
    assert question.created_at == _recorded_at(log)
    log.append("question:q2", [ev.QuestionAsked(question_id="q2", session_id="s9", message_out_id="o2")])
    assert [q.question_id for q in log.store.pending_questions("s1")] == ["q1"]
    assert [q.question_id for q in log.store.pending_questions()] == ["q1", "q2"]
    log.append("question:q1", [ev.QuestionAnswered(question_id="q1", answer="yes")])
    assert log.store.pending_question("q1") is None
    assert [q.question_id for q in log.store.pending_questions()] == ["q2"]


def test_approvals_requested_carded_and_resolved(log: EventLog) -> None:
    log.append(
        "approval:a1",
        [
            ev.ApprovalRequested(
                approval_id="a1", request_id="r1", action="install_packages", payload="{}", session_id="s1"
            )
        ],
    )
    approval = log.store.pending_approval("a1")
    assert approval is not None
    assert (approval.status, approval.platform_message_id, approval.action) == ("pending", None, "install_packages")
    log.append("approval:a1", [ev.ApprovalCardSent(approval_id="a1", platform_message_id="pm")])
    carded = log.store.pending_approval("a1")
    assert carded is not None
    assert carded.platform_message_id == "pm"
    assert [a.approval_id for a in log.store.pending_approvals()] == ["a1"]
    log.append("approval:a1", [ev.ApprovalResolved(approval_id="a1", status="rejected")])
    assert log.store.pending_approvals() == []
    assert [a.approval_id for a in log.store.pending_approvals(status="rejected")] == ["a1"]
    assert len(log.store.pending_approvals(status=None)) == 1


def test_delivery_attempts_count_failures_until_delivered(log: EventLog) -> None:
    assert log.store.delivery_attempts("o1") == 0
    for attempt in (1, 2):
        log.append("session:s1", [ev.DeliveryFailed(session_id="s1", message_out_id="o1", attempt=attempt, error="e")])
    assert log.store.delivery_attempts("o1") == 2
    assert log.store.delivery_attempts("o1", session_id="s1") == 2
    assert log.store.delivery_attempts("o1", session_id="s2") == 0
    log.append("session:s1", [ev.MessageDelivered(session_id="s1", message_out_id="o1")])
    assert log.store.delivery_attempts("o1") == 0


def test_tasks_scheduled_paused_resumed_and_cancelled(log: EventLog) -> None:
    log.append("task:t1", [ev.TaskScheduled(task_id="t1", session_id="s1", process_after="2030-01-01 09:00:00")])
    task = log.store.task("t1")
    assert task is not None
    assert (task.status, task.process_after, task.recurrence) == ("scheduled", "2030-01-01 09:00:00", None)
    log.append("task:t1", [ev.TaskPaused(task_id="t1", session_id="s1")])
    assert [t.task_id for t in log.store.tasks(status="paused")] == ["t1"]
    log.append("task:t1", [ev.TaskResumed(task_id="t1", session_id="s1")])
    assert [t.task_id for t in log.store.tasks(session_id="s1", status="scheduled")] == ["t1"]
    log.append("task:t1", [ev.TaskScheduled(task_id="t1", session_id="s1", recurrence="0 9 * * *")])
    rescheduled = log.store.task("t1")
    assert rescheduled is not None
    assert (rescheduled.recurrence, rescheduled.created_at <= rescheduled.updated_at) == ("0 9 * * *", True)
    log.append("task:t1", [ev.TaskCancelled(task_id="t1", session_id="s1")])
    assert log.store.tasks(status="scheduled") == []
    assert [t.status for t in log.store.tasks()] == ["cancelled"]


def test_audit_only_events_change_no_table(log: EventLog) -> None:
    before = log.store.session("s1")
    log.append(
        "session:s1",
        [
            ev.WakeRequested(session_id="s1"),
            ev.MessageDropped(message_id="m", reason="no wiring"),
            ev.SessionActorCrashed(session_id="s1", error="boom"),
        ],
    )
    assert log.store.session("s1") == before


def test_the_store_reads_from_many_threads(log: EventLog) -> None:
    seen: list[str] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(50):
                session = log.store.session("s1")
                assert session is not None
                seen.append(session.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for thread in threads:
        thread.start()
    for i in range(20):
        log.append("session:s1", [ev.MessageRouted(message_id=str(i), session_id="s1", kind="chat", seq=2 * i)])
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(seen) == 400


def test_an_append_is_visible_to_the_store_at_once(log: EventLog) -> None:
    log.append("session:s1", [ev.ContainerStarting(session_id="s1", container_name="n")])
    session = log.store.session("s1")
    assert session is not None
    assert session.container_status == "starting"
