"""SessionActor: one per active session; its mailbox is the only thing that serializes a session.

State machine: stopped -> starting -> running <-> idle -> stopping -> stopped.
Every transition is appended to the event log before the actor acts on the
next message, so a restarted host can replay where each session stood. Any
number of wakes from any thread start at most one container: a wake while
starting, running or stopping is a no-op (or, while stopping, a note to start
again afterwards).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import docker.errors
import msgspec
import pykka

import sessiondb
from actors import messages as m
from actors.claim_retry import is_failure, retry_claims
from actors.container_spec import build_container_spec
from actors.docker_runtime import ContainerRuntime, RuntimeError_
from actors.group_fs import give_to_agent
from actors.group_messages import EnsureInitialized
from actors.services import HostServices
from actors.session_liveness import Limits, Observation, Verdict, judge
from config.logs import get_logger
from events import types as ev
from events.model import AgentGroup, ContainerStatus, Session

log = get_logger("session")

DOCKER_STOP_TIMEOUT_S = 5
QUIET_FILE_S = 1.0
_DOMAIN_ERRORS = (RuntimeError_, docker.errors.DockerException, OSError, sqlite3.Error, pykka.Timeout, ValueError)


def _file_key(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever SQLite commits to a file (DELETE journal: written in place)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class SessionSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A read-only view of a session actor, for status displays and tests."""

    session_id: str
    status: ContainerStatus
    container_id: str | None
    started_at: float | None
    last_activity: float
    wants_slot: bool


class SessionActor(pykka.ThreadingActor):
    """Owns one session's container: spawn, idle/stuck judgement, stop, exit recording."""

    def __init__(
        self,
        services: HostServices,
        session: Session,
        manager: pykka.ActorRef[Any],
        group: pykka.ActorRef[Any],
    ) -> None:
        super().__init__()
        self._services = services
        self._settings = services.settings
        self._session_id = session.id
        self._group_id = session.agent_group_id
        self._stream = f"session:{session.id}"
        self._manager = manager
        self._group = group
        # A start is only ever "in progress" inside one of this actor's handlers, never across actors.
        self._status: ContainerStatus = (
            "stopped" if session.container_status == "starting" else session.container_status
        )
        self._container_id = session.container_id
        self._confirmed = False  # has this actor itself started or adopted the container?
        self._started_at: float | None = None
        self._last_activity = time.time()
        self._wants_slot = False
        self._restart_after_stop = False
        self._stop_reason: str | None = None
        self._handled = 0
        self._runtime: ContainerRuntime | None = None
        self._claims: tuple[float, ...] = ()
        self._claims_key: tuple[tuple[int, int, int] | None, tuple[int, int, int] | None] | None = None
        self._limits = Limits(
            idle_timeout_s=self._settings.idle_timeout_s,
            stuck_timeout_s=self._settings.stuck_timeout_s,
            hard_ceiling_s=self._settings.hard_ceiling_s,
            grace_s=self._settings.tick_interval_s,
        )
        self._log = log.bind(session_id=session.id, group_id=session.agent_group_id)

    # -- pykka hooks ---------------------------------------------------------------------

    def on_stop(self) -> None:
        if self._runtime is not None:
            self._runtime.close()

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self._manager.tell(m.SessionCrashed(self._session_id, repr(exception_value)))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, m.QueryState):  # asked directly, not routed: not counted for passivation
            return self._snapshot()
        self._handled += 1
        try:
            self._dispatch(message)
        except _DOMAIN_ERRORS as exc:
            self._log.error("session.error", message=type(message).__name__, error=str(exc))
        return None

    def _dispatch(self, message: Any) -> None:
        match message:
            case m.WakeSession(reason=reason):
                self._on_wake(reason)
            case m.SlotGranted():
                self._on_slot()
            case m.SessionActivity():
                self._last_activity = time.time()
            case m.Tick(now=now):
                self._on_tick(now)
            case m.ContainerExited(container_id=cid, exit_code=code):
                self._on_exit(cid, code)
            case m.StopSession(reason=reason):
                self._stop_container(reason)
            case m.AdoptContainer():
                self._on_adopt(message)
            case _:
                self._log.warning("session.unknown_message", message=repr(message))

    # -- transitions -------------------------------------------------------------------------

    def _record(self, *events: ev.Event) -> None:
        self._services.log.append(self._stream, events)

    def _on_wake(self, reason: str) -> None:
        if self._status in ("running", "starting"):
            return
        if self._status == "idle":
            self._status = "running"
            self._last_activity = time.time()
            assert self._container_id is not None
            self._record(ev.ContainerBusy(session_id=self._session_id, container_id=self._container_id))
            return
        if self._status == "stopping":
            self._restart_after_stop = True
            return
        if not self._wants_slot:
            self._wants_slot = True
            self._record(ev.WakeRequested(session_id=self._session_id, reason=reason))
            self._manager.tell(m.RequestSlot(self._session_id))

    def _on_slot(self) -> None:
        if not self._wants_slot or self._status != "stopped":
            self._manager.tell(m.ReleaseSlot(self._session_id))
            return
        self._wants_slot = False
        try:
            self._spawn()
        except _DOMAIN_ERRORS as exc:
            self._log.error("session.spawn_failed", error=str(exc))
            self._status = "stopped"
            self._container_id = None
            self._record(
                ev.ContainerStopped(
                    session_id=self._session_id, container_id=None, reason=f"spawn failed: {exc}", exit_code=None
                )
            )
            self._manager.tell(m.ReleaseSlot(self._session_id))

    def _spawn(self) -> None:
        store = self._services.log.store
        session = store.session(self._session_id)
        if session is None or session.status != "active":
            raise RuntimeError_(f"session {self._session_id} is not active")
        group = self._group.ask(EnsureInitialized(), timeout=60)
        assert isinstance(group, AgentGroup)
        messaging_group = store.messaging_group(session.messaging_group_id) if session.messaging_group_id else None
        folder = sessiondb.session_dir(self._settings.sessions_dir, group.id, session.id)
        sessiondb.create_session_folder(folder)
        give_to_agent(folder, sessiondb.outbox_dir(folder))
        sessiondb.write_destinations(folder, [sessiondb.destination_row(d) for d in store.destinations(group.id)])
        if messaging_group is not None:
            sessiondb.write_routing(
                folder, messaging_group.channel_type, messaging_group.platform_id, session.thread_id
            )
        sessiondb.remove_heartbeat(folder)
        credentials = self._services.credentials
        extra_env = credentials.env_for(session, group) if credentials is not None else None
        spec = build_container_spec(
            self._settings, group, session, messaging_group, session_dir=folder, extra_env=extra_env
        )
        self._status = "starting"
        self._record(ev.ContainerStarting(session_id=self._session_id, container_name=spec.name))
        result = self._docker().start(spec.create_kwargs())
        self._container_id = result.container_id
        self._started_at = result.started_at or time.time()
        self._last_activity = time.time()
        self._confirmed = True
        self._status = "running"
        if result.adopted:
            self._record(
                ev.ContainerAdopted(
                    session_id=self._session_id, container_id=result.container_id, container_name=spec.name
                )
            )
        else:
            self._record(
                ev.ContainerSpawned(
                    session_id=self._session_id,
                    container_id=result.container_id,
                    container_name=spec.name,
                    image=spec.image,
                    mounts_digest=spec.mounts_digest,
                )
            )
        self._log.info("container.spawned", container_id=result.container_id[:12], adopted=result.adopted)

    def _on_adopt(self, found: m.AdoptContainer) -> None:
        if self._confirmed and found.container_id == self._container_id:
            return
        if self._confirmed and self._container_id is not None and self._status != "stopped":
            self._log.warning("session.second_container", kept=self._container_id[:12], found=found.container_id[:12])
            self._docker().stop(found.container_id, DOCKER_STOP_TIMEOUT_S)
            self._docker().remove(found.container_id)
            return
        current = self._docker().inspect(found.container_id)
        if current is None or not current.running:
            return  # a stale report: the container exited after it was listed
        self._container_id = found.container_id
        self._started_at = found.started_at or time.time()
        self._last_activity = time.time()
        self._confirmed = True
        self._status = "running"
        self._wants_slot = False
        self._record(
            ev.ContainerAdopted(
                session_id=self._session_id, container_id=found.container_id, container_name=found.container_name
            )
        )
        self._log.info("container.adopted", container_id=found.container_id[:12])

    def _on_tick(self, now: float) -> None:
        if self._status == "stopped" and not self._wants_slot:
            # An earlier offer may have crossed a message in flight; offer again until the manager agrees.
            self._manager.tell(m.PassivateMe(self._session_id, self._handled))
            return
        if self._status not in ("running", "idle") or self._container_id is None:
            return
        folder = sessiondb.session_dir(self._settings.sessions_dir, self._group_id, self._session_id)
        claims = self._claim_times(folder)
        verdict = judge(
            Observation(
                now=now,
                started_at=self._started_at or now,
                last_activity=self._last_activity,
                heartbeat_at=sessiondb.heartbeat_mtime(folder),
                claim_times=claims,
            ),
            self._limits,
        )
        if verdict is Verdict.BUSY:
            self._last_activity = max(self._last_activity, now)
            if self._status == "idle":
                self._status = "running"
                self._record(ev.ContainerBusy(session_id=self._session_id, container_id=self._container_id))
        elif verdict is Verdict.IDLE:
            if self._status == "running" and sessiondb.count_due(folder) == 0:
                self._status = "idle"
                self._record(ev.ContainerIdle(session_id=self._session_id, container_id=self._container_id))
        else:
            self._stop_container(verdict.value)

    def _stop_container(self, reason: str) -> None:
        if self._status not in ("running", "idle") or self._container_id is None:
            self._wants_slot = False
            return
        container_id = self._container_id
        self._status = "stopping"
        self._stop_reason = reason
        self._record(ev.ContainerStopping(session_id=self._session_id, container_id=container_id, reason=reason))
        self._log.info("container.stopping", reason=reason)
        exit_code = self._docker().stop(container_id, DOCKER_STOP_TIMEOUT_S)
        self._on_exit(container_id, exit_code)

    def _on_exit(self, container_id: str, exit_code: int | None) -> None:
        if container_id != self._container_id or self._status == "stopped":
            return
        reason = (
            self._stop_reason
            or self._stop_requested_elsewhere(container_id)
            or self._exit_reason(container_id, exit_code)
        )
        self._record(
            ev.ContainerStopped(
                session_id=self._session_id, container_id=container_id, reason=reason, exit_code=exit_code
            )
        )
        self._log.info("container.stopped", reason=reason, exit_code=exit_code)
        self._docker().remove(container_id)
        started_at = self._started_at
        self._status = "stopped"
        self._container_id = None
        self._started_at = None
        self._stop_reason = None
        self._confirmed = False
        self._manager.tell(m.ReleaseSlot(self._session_id))
        folder = sessiondb.session_dir(self._settings.sessions_dir, self._group_id, self._session_id)
        failed = is_failure(reason, exit_code)
        if failed:  # before any new container can take the claims
            retry_claims(self._services, self._session_id, folder, started_at, reason)
        # After a failure the next start waits for the sweep: a runner that dies at once must not spin.
        waiting = not failed and folder.exists() and sessiondb.count_due(folder) > 0
        if self._restart_after_stop or waiting:
            self._restart_after_stop = False
            self._on_wake("input waiting after stop")
        else:
            self._manager.tell(m.PassivateMe(self._session_id, self._handled))

    # -- helpers -------------------------------------------------------------------------------

    def _exit_reason(self, container_id: str, exit_code: int | None) -> str:
        """Why a container ended on its own; a failing runner's last words go into the record."""
        if exit_code is None:
            return "vanished"
        if exit_code == 0:
            return "exited"
        last = self._docker().last_log_line(container_id)
        return f"exited with code {exit_code}: {last}" if last else f"exited with code {exit_code}"

    def _stop_requested_elsewhere(self, container_id: str) -> str | None:
        """The reason another process (the CLI) recorded before stopping this container, if it did."""
        found: str | None = None
        for recorded in self._services.log.read(stream=self._stream, types=["container.stopping"]):
            event = recorded.event
            if isinstance(event, ev.ContainerStopping) and event.container_id == container_id:
                found = event.reason
        return found

    def _claim_times(self, folder: Path) -> tuple[float, ...]:
        """The container's open claims, re-read only when either session DB file changed since the last tick.

        Claims change only with a commit to one of the two files, so an idle
        session's tick costs two `stat()` calls instead of opening both databases.
        """
        inbound, outbound = _file_key(sessiondb.inbound_path(folder)), _file_key(sessiondb.outbound_path(folder))
        key = (inbound, outbound)
        if key != self._claims_key:
            self._claims = tuple(claim.claimed_at.timestamp() for claim in sessiondb.claimed_messages(folder))
            # Trust this read on later ticks only when both files had been quiet for a while: mtimes are
            # coarse, so a commit right after the read could otherwise leave the key unchanged.
            newest = max((k[1] for k in key if k is not None), default=0) / 1e9
            self._claims_key = key if time.time() - newest > QUIET_FILE_S else None
        return self._claims

    def _docker(self) -> ContainerRuntime:
        if self._runtime is None:
            self._runtime = ContainerRuntime(self._services.docker_client_factory(), self._settings.instance_id)
        return self._runtime

    def _snapshot(self) -> SessionSnapshot:
        return SessionSnapshot(
            session_id=self._session_id,
            status=self._status,
            container_id=self._container_id,
            started_at=self._started_at,
            last_activity=self._last_activity,
            wants_slot=self._wants_slot,
        )
