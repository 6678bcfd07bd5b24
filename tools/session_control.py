"""Stopping and closing sessions from the CLI, a process separate from the host.

How the running host is asked, without any extra channel into it:
- close: the CLI records `SessionClosed`; the host's reconciler removes the
  container of every closed session on its next tick (a few seconds).
- stop: the CLI records `ContainerStopping` with the reason "admin request"
  and stops the session's container through Docker; the host sees the exit on
  its Docker event stream and records it under that reason, and the session
  starts a new container on its next message, exactly as after an idle stop.
When no host runs, nobody would record those exits, so the CLI removes the
container itself and records `ContainerStopped`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import docker.errors
import msgspec

from actors.docker_runtime import ContainerRuntime
from config.settings import Settings
from events import types as ev
from events.log import EventLog
from events.model import Session
from tools.host_process import running_pid

DOCKER_TIMEOUT_S = 30
STOP_TIMEOUT_S = 5
ADMIN_STOP = "admin request: hermitcrab sessions stop"

ClientFactory = Callable[[], docker.DockerClient]


class SessionOutcome(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    action: str
    host_running: bool
    containers: list[str] = []
    note: str = ""


def _docker_client() -> docker.DockerClient:
    return docker.from_env(timeout=DOCKER_TIMEOUT_S)


def _containers_of(runtime: ContainerRuntime, session_id: str) -> list[str]:
    return [c.id for c in runtime.list_ours() if c.session_id == session_id]


def stop_session(
    log: EventLog, settings: Settings, session: Session, client_factory: ClientFactory = _docker_client
) -> SessionOutcome:
    """Stop the session's container; the session stays open and wakes again on its next message."""
    host_running = running_pid(settings) is not None
    outcome = SessionOutcome(session_id=session.id, action="stop", host_running=host_running)
    try:
        runtime = ContainerRuntime(client_factory(), settings.instance_id)
        try:
            stopped = _containers_of(runtime, session.id)
            for container_id in stopped:
                if host_running:
                    log.append(
                        f"session:{session.id}",
                        [ev.ContainerStopping(session_id=session.id, container_id=container_id, reason=ADMIN_STOP)],
                    )
                runtime.stop(container_id, STOP_TIMEOUT_S)
                if not host_running:
                    runtime.remove(container_id)
        finally:
            runtime.close()
    except docker.errors.DockerException as exc:
        return msgspec.structs.replace(outcome, note=f"Docker does not answer: {exc}")
    if not host_running and session.container_id is not None:
        _record_stopped(log, session, ADMIN_STOP)
    return msgspec.structs.replace(outcome, containers=stopped, note="" if stopped else "it had no container")


def close_session(
    log: EventLog,
    settings: Settings,
    session: Session,
    reason: str,
    *,
    wait_s: float = 15.0,
    client_factory: ClientFactory = _docker_client,
) -> SessionOutcome:
    """Close the session for good: record it, then make sure its container goes (see the module docstring)."""
    host_running = running_pid(settings) is not None
    log.append(f"session:{session.id}", [ev.SessionClosed(session_id=session.id, reason=reason)])
    outcome = SessionOutcome(session_id=session.id, action="close", host_running=host_running)
    try:
        runtime = ContainerRuntime(client_factory(), settings.instance_id)
        try:
            found = _containers_of(runtime, session.id)
            if not host_running:
                for container_id in found:
                    runtime.remove(container_id)
            left = _wait_until_gone(runtime, session.id, wait_s) if host_running else []
        finally:
            runtime.close()
    except docker.errors.DockerException as exc:
        note = f"Docker does not answer ({exc}); the host removes the container when it next starts"
        return msgspec.structs.replace(outcome, note=note)
    if not host_running and session.container_id is not None:
        _record_stopped(log, session, f"session closed: {reason}")
    note = f"the host has not removed {len(left)} container(s) yet; it will on a later tick" if left else ""
    return msgspec.structs.replace(outcome, containers=found, note=note)


def _wait_until_gone(runtime: ContainerRuntime, session_id: str, wait_s: float) -> list[str]:
    """Give the running host's reconciler time to remove the containers; those still there after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while (left := _containers_of(runtime, session_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _record_stopped(log: EventLog, session: Session, reason: str) -> None:
    log.append(
        f"session:{session.id}",
        [ev.ContainerStopped(session_id=session.id, container_id=session.container_id, reason=reason)],
    )
