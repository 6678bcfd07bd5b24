"""ReconcilerActor: makes the recorded session states and Docker's containers agree.

It runs at start (adoption after a host restart), after every reconnect of
the Docker event stream (exits may have been missed) and on each tick (a
container that died unseen or appeared without a live actor). It owns its own
Docker client so the SessionManager never blocks on Docker.
"""

from __future__ import annotations

from typing import Any

import pykka

from actors import messages as m
from actors.docker_runtime import ContainerInfo, ContainerRuntime
from actors.services import HostServices
from config.logs import get_logger
from events import types as ev
from events.model import Session

log = get_logger("reconciler")

_HAS_CONTAINER = ("starting", "running", "idle", "stopping")
START = "host start"
ASK_TIMEOUT_S = 10.0


class ReconcilerActor(pykka.ThreadingActor):
    def __init__(self, services: HostServices, manager: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self._services = services
        self._manager = manager
        self._runtime: ContainerRuntime | None = None

    def on_start(self) -> None:
        self._runtime = ContainerRuntime(self._services.docker_client_factory(), self._services.settings.instance_id)

    def on_stop(self) -> None:
        if self._runtime is not None:
            self._runtime.close()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, m.Reconcile):
            try:
                return self._reconcile(message.reason)
            except Exception as exc:  # Docker away: the next tick tries again
                log.error("reconcile.failed", reason=message.reason, error=str(exc))
        return None

    def _reconcile(self, reason: str) -> int:
        """Return how many corrections were sent or made; at host start every running container is adopted."""
        assert self._runtime is not None
        store = self._services.log.store
        containers = self._runtime.list_ours()
        by_session: dict[str, list[ContainerInfo]] = {}
        for container in containers:
            by_session.setdefault(container.session_id, []).append(container)
        fixes = 0
        for session_id, found in by_session.items():
            session = store.session(session_id)
            for container in found:
                fixes += self._settle(session, container, adopt_all=reason == START)
        for session in store.sessions(status="active"):
            running_here = any(c.running for c in by_session.get(session.id, []))
            if reason == START and session.container_status == "starting" and not running_here:
                self._services.log.append(
                    f"session:{session.id}",
                    [
                        ev.ContainerStopped(
                            session_id=session.id, container_id=None, reason="start interrupted by a host restart"
                        )
                    ],
                )
                fixes += 1
                continue
            if session.container_status not in _HAS_CONTAINER or session.container_id is None:
                continue
            alive = [c for c in by_session.get(session.id, []) if c.id == session.container_id and c.running]
            if not alive:
                gone = next((c for c in by_session.get(session.id, []) if c.id == session.container_id), None)
                self._manager.tell(
                    m.ContainerExited(session.id, session.container_id, gone.exit_code if gone else None)
                )
                fixes += 1
        if fixes:
            log.info("reconcile.done", reason=reason, fixes=fixes)
        return fixes

    def _has_live_actor(self, session_id: str) -> bool:
        """Ask the manager (downward: it never asks us) whether a SessionActor owns this session now."""
        return self._manager.ask(m.SessionRefQuery(session_id), timeout=ASK_TIMEOUT_S) is not None

    def _settle(self, session: Session | None, container: ContainerInfo, *, adopt_all: bool) -> int:
        assert self._runtime is not None
        if session is None or session.status != "active":
            if session is not None and session.container_id == container.id and self._has_live_actor(session.id):
                # Its own actor stops it and records why; recording it here too would say it twice.
                self._manager.tell(m.StopSession(session.id, "session closed"))
                return 1
            self._runtime.remove(container.id)
            if session is not None and session.container_id == container.id:
                self._services.log.append(
                    f"session:{session.id}",
                    [
                        ev.ContainerStopped(
                            session_id=session.id,
                            container_id=container.id,
                            reason="orphan: session closed",
                            exit_code=container.exit_code,
                        )
                    ],
                )
            log.info("reconcile.removed_orphan", container=container.name, session_id=container.session_id)
            return 1
        if container.running:
            if not adopt_all and session.container_id == container.id:
                return 0
            detail = self._runtime.inspect(container.id)
            started_at = detail.started_at if detail else container.started_at
            self._manager.tell(m.AdoptContainer(session.id, container.id, container.name, started_at))
            return 1
        if container.exited and session.container_id != container.id:
            self._runtime.remove(container.id)  # a leftover; a merely "created" one may be mid-start
            return 1
        return 0
