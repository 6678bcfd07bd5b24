"""Sample events for the event-log tests: one of every type, and random but valid histories."""

from __future__ import annotations

import random

from events import types as ev
from events.model import AdditionalMount, GroupConfig, McpServer, Packages, TriggerRules

CONFIG = GroupConfig(
    additional_mounts=[AdditionalMount(host_path="/srv/notes", container_path="notes", readonly=False)],
    packages=Packages(apt=["ripgrep"], pip=["httpx"]),
    mcp_servers={"calc": McpServer(command="calc-mcp", args=["--fast"], env={"LEVEL": "2"})},
    image_tag="hermitcrab-group-g1:latest",
    model="sonnet",
    effort="high",
    memory="1g",
    cpus=1.5,
    pids=256,
)


def one_of_each() -> list[ev.Event]:
    """Every event type once, with non-default values wherever a field allows one."""
    return [
        ev.GroupCreated(
            group_id="g1",
            name="Main",
            folder="main",
            is_admin=True,
            agent_provider="echo",
            instructions="Be brief.",
            config=CONFIG,
        ),
        ev.GroupInitialized(group_id="g1", steps=["claude_md", "skills"]),
        ev.GroupConfigChanged(group_id="g1", config=CONFIG, reason="packages added"),
        ev.GroupDeleted(group_id="g9"),
        ev.AgentCreated(group_id="g2", parent_group_id="g1", name="Worker", folder="worker"),
        ev.MessagingGroupCreated(
            messaging_group_id="m1",
            channel_type="terminal",
            platform_id="tty-1",
            name="Terminal",
            is_group=True,
            admin_user_id="u1",
        ),
        ev.WiringCreated(
            wiring_id="w1",
            messaging_group_id="m1",
            agent_group_id="g1",
            session_mode="per-thread",
            trigger_rules=TriggerRules(pattern="^@bot", mention_only=True, include_senders=["u1"]),
            response_scope="thread",
            priority=5,
        ),
        ev.WiringRemoved(wiring_id="w9"),
        ev.DestinationGranted(
            agent_group_id="g1",
            name="home",
            kind="channel",
            display_name="Home chat",
            channel_type="terminal",
            platform_id="tty-1",
            messaging_group_id="m1",
        ),
        ev.DestinationRevoked(agent_group_id="g1", name="old"),
        ev.SessionCreated(
            session_id="s1",
            agent_group_id="g1",
            messaging_group_id="m1",
            thread_id="t1",
            mode="per-thread",
            agent_provider="echo",
        ),
        ev.SessionClosed(session_id="s9", reason="idle for a week"),
        ev.SessionActorCrashed(session_id="s1", error="KeyError: 'x'", restarts=2, quarantined=True),
        ev.MessageRouted(message_id="in-1", session_id="s1", kind="chat", seq=2, messaging_group_id="m1"),
        ev.MessageDropped(message_id="in-2", reason="no wiring", channel_type="terminal", platform_id="tty-2"),
        ev.WakeRequested(session_id="s1", reason="message"),
        ev.ContainerStarting(session_id="s1", container_name="hermitcrab-abc-s1"),
        ev.ContainerSpawned(
            session_id="s1", container_id="c1", container_name="hermitcrab-abc-s1", image="img", mounts_digest="d1"
        ),
        ev.ContainerIdle(session_id="s1", container_id="c1"),
        ev.ContainerBusy(session_id="s1", container_id="c1"),
        ev.ContainerStopping(session_id="s1", container_id="c1", reason="idle"),
        ev.ContainerStopped(session_id="s1", container_id="c1", reason="idle", exit_code=137),
        ev.ContainerAdopted(session_id="s1", container_id="c2", container_name="hermitcrab-abc-s1"),
        ev.MessageDelivered(
            session_id="s1", message_out_id="out-1", platform_message_id="pm-1", channel_type="terminal"
        ),
        ev.DeliveryFailed(session_id="s1", message_out_id="out-2", attempt=2, error="timeout", final=True),
        ev.MessageHeld(session_id="s1", message_out_id="out-3", reason="rate limit", until="2026-01-01 00:01:00"),
        ev.QuestionAsked(
            question_id="q1",
            session_id="s1",
            message_out_id="out-3",
            channel_type="terminal",
            platform_id="tty-1",
            thread_id="t1",
        ),
        ev.QuestionAnswered(question_id="q9", answer="yes", user_id="u1"),
        ev.ApprovalRequested(
            approval_id="a1",
            request_id="r1",
            action="install_packages",
            payload='{"apt": ["jq"]}',
            session_id="s1",
            agent_group_id="g1",
            channel_type="terminal",
            platform_id="tty-1",
            expires_at="2030-01-01 00:00:00",
        ),
        ev.ApprovalCardSent(approval_id="a1", platform_message_id="pm-2"),
        ev.ApprovalResolved(approval_id="a1", status="approved", user_id="u1", reason="fine"),
        ev.ApprovalAnswerRefused(
            approval_id="a1", reason="not the admin", user_id="u2", channel_type="terminal", platform_id="tty-1"
        ),
        ev.SystemActionRefused(session_id="s1", request_id="r2", action="add_mcp_server", reason="not allowed"),
        ev.MessageRetried(
            session_id="s1", message_id="in-1", tries=2, status="pending", retry_at="2030-01-01 00:00:10", reason="died"
        ),
        ev.ApprovalAnswerRefused(
            approval_id="a1", reason="not the admin", user_id="u7", channel_type="terminal", platform_id="tty-1"
        ),
        ev.SystemActionRefused(session_id="s1", request_id="sys-1", action="create_agent", reason="not admin"),
        ev.MessageRetried(
            session_id="s1", message_id="m1", tries=2, status="pending", retry_at="2030-01-01 00:00:10", reason="stuck"
        ),
        ev.TaskScheduled(task_id="task1", session_id="s1", process_after="2030-01-01 09:00:00", recurrence="0 9 * * *"),
        ev.TaskPaused(task_id="task1", session_id="s1"),
        ev.TaskResumed(task_id="task1", session_id="s1"),
        ev.TaskCancelled(task_id="task1", session_id="s1"),
        ev.UsageRecorded(
            agent_group_id="g1",
            session_id="s1",
            input_tokens=120,
            output_tokens=30,
            cache_read_tokens=4,
            cache_creation_tokens=5,
            model="sonnet",
        ),
    ]


class HistoryWriter:
    """Builds a random history that a real host could have written: no id or folder is created twice."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.groups: list[str] = []
        self.chats: list[str] = []
        self.sessions: list[str] = []
        self.questions: list[str] = []
        self.approvals: list[str] = []
        self.tasks: list[str] = []
        self.wired: set[tuple[str, str]] = set()
        self.counter = 0

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def step(self) -> tuple[str, list[ev.Event]]:
        """One append's worth: a stream and its events."""
        rng = self.rng
        if len(self.groups) < 3 or rng.random() < 0.03:
            gid = self._id("g")
            self.groups.append(gid)
            created: list[ev.Event] = [ev.GroupCreated(group_id=gid, name=f"Group {gid}", folder=f"folder-{gid}")]
            if len(self.groups) > 1 and rng.random() < 0.5:
                parent = rng.choice(self.groups[:-1])
                created.append(ev.AgentCreated(group_id=gid, parent_group_id=parent, name=gid, folder=f"folder-{gid}"))
            return f"group:{gid}", created
        if len(self.chats) < 2 or rng.random() < 0.03:
            mid = self._id("m")
            self.chats.append(mid)
            return f"messaging_group:{mid}", [
                ev.MessagingGroupCreated(messaging_group_id=mid, channel_type="terminal", platform_id=f"p-{mid}")
            ]
        if len(self.sessions) < 3 or rng.random() < 0.05:
            sid = self._id("s")
            self.sessions.append(sid)
            return f"session:{sid}", [
                ev.SessionCreated(
                    session_id=sid,
                    agent_group_id=rng.choice(self.groups),
                    messaging_group_id=rng.choice([*self.chats, None]),
                    thread_id=rng.choice([None, "t1", "t2"]),
                )
            ]
        return self._ordinary()

    def _ordinary(self) -> tuple[str, list[ev.Event]]:
        rng = self.rng
        roll = rng.random()
        gid, mid, sid = rng.choice(self.groups), rng.choice(self.chats), rng.choice(self.sessions)
        if roll < 0.05:
            if (mid, gid) in self.wired:
                return f"group:{gid}", [ev.GroupInitialized(group_id=gid, steps=rng.sample(["a", "b", "c"], 2))]
            self.wired.add((mid, gid))
            wid = self._id("w")
            return f"wiring:{wid}", [
                ev.WiringCreated(wiring_id=wid, messaging_group_id=mid, agent_group_id=gid, priority=rng.randint(0, 3))
            ]
        if roll < 0.07:
            return f"group:{gid}", [
                ev.GroupConfigChanged(group_id=gid, config=GroupConfig(model=rng.choice(["a", "b"])), reason="test")
            ]
        if roll < 0.1:
            name = rng.choice(["home", "boss", "log"])
            if rng.random() < 0.7:
                target = rng.choice(self.groups)
                event: ev.Event = ev.DestinationGranted(
                    agent_group_id=gid, name=name, kind="agent", target_agent_group_id=target
                )
            else:
                event = ev.DestinationRevoked(agent_group_id=gid, name=name)
            return f"group:{gid}", [event]
        if roll < 0.12:
            qid = self._id("q")
            self.questions.append(qid)
            return f"question:{qid}", [ev.QuestionAsked(question_id=qid, session_id=sid, message_out_id=f"o-{qid}")]
        if roll < 0.13 and self.questions:
            qid = self.questions.pop(rng.randrange(len(self.questions)))
            return f"question:{qid}", [ev.QuestionAnswered(question_id=qid, answer="ok")]
        if roll < 0.15:
            aid = self._id("a")
            self.approvals.append(aid)
            return f"approval:{aid}", [
                ev.ApprovalRequested(
                    approval_id=aid, request_id=f"r-{aid}", action="act", payload="{}", session_id=sid
                ),
                ev.ApprovalCardSent(approval_id=aid, platform_message_id=f"pm-{aid}"),
            ]
        if roll < 0.16 and self.approvals:
            aid = rng.choice(self.approvals)
            status = rng.choice(["approved", "rejected", "expired"])
            return f"approval:{aid}", [ev.ApprovalResolved(approval_id=aid, status=status)]
        if roll < 0.18:
            tid = self._id("task")
            self.tasks.append(tid)
            return f"task:{tid}", [ev.TaskScheduled(task_id=tid, session_id=sid, recurrence="0 9 * * *")]
        if roll < 0.2 and self.tasks:
            tid = rng.choice(self.tasks)
            change = rng.choice([ev.TaskPaused, ev.TaskResumed, ev.TaskCancelled])
            return f"task:{tid}", [change(task_id=tid, session_id=sid)]
        if roll < 0.21 and len(self.wired) > 0:
            return f"wiring:{self._id('w')}", [ev.WiringRemoved(wiring_id=f"w{rng.randint(1, self.counter)}")]
        if roll < 0.215 and len(self.groups) > 4:
            victim = self.groups.pop(rng.randrange(len(self.groups)))
            self.wired = {pair for pair in self.wired if pair[1] != victim}
            return f"group:{victim}", [ev.GroupDeleted(group_id=victim)]
        if roll < 0.22:
            return f"session:{sid}", [ev.SessionClosed(session_id=sid, reason="done")]
        return f"session:{sid}", self._session_activity(sid)

    def _session_activity(self, sid: str) -> list[ev.Event]:
        rng = self.rng
        cid = f"c-{sid}-{rng.randint(1, 3)}"
        choices: list[ev.Event] = [
            ev.MessageRouted(message_id=self._id("in"), session_id=sid, kind="chat", seq=2 * self.counter),
            ev.WakeRequested(session_id=sid, reason="message"),
            ev.ContainerStarting(session_id=sid, container_name=f"n-{sid}"),
            ev.ContainerSpawned(
                session_id=sid, container_id=cid, container_name=f"n-{sid}", image="i", mounts_digest="d"
            ),
            ev.ContainerIdle(session_id=sid, container_id=cid),
            ev.ContainerBusy(session_id=sid, container_id=cid),
            ev.ContainerStopping(session_id=sid, container_id=cid, reason="idle"),
            ev.ContainerStopped(session_id=sid, container_id=cid, reason="idle", exit_code=0),
            ev.ContainerAdopted(session_id=sid, container_id=cid, container_name=f"n-{sid}"),
            ev.MessageDelivered(session_id=sid, message_out_id=f"o{rng.randint(1, 30)}"),
            ev.DeliveryFailed(session_id=sid, message_out_id=f"o{rng.randint(1, 30)}", attempt=1, error="x"),
            ev.MessageDropped(message_id=self._id("in"), reason="no wiring"),
            ev.SessionActorCrashed(session_id=sid, error="boom"),
            ev.UsageRecorded(agent_group_id=rng.choice(self.groups), session_id=sid, input_tokens=9, output_tokens=3),
            ev.MessageRetried(session_id=sid, message_id=f"in{rng.randint(1, 30)}", tries=1, status="pending"),
        ]
        return rng.sample(choices, rng.randint(1, 3))
