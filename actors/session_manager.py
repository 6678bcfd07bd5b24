"""SessionManager: the single owner of `session id -> SessionActor` and of the concurrency slots.

Sessions are virtual actors: one is started on demand from the projection when
a message arrives for it, and gives up its thread (passivates) when its
container has stopped and nothing is in flight, so thousands of dormant
sessions cost no threads. Every message for a session passes through here,
which is what makes passivation safe: the manager knows how many messages it
sent to each actor and only lets one go when all of them were handled.

The manager never blocks on Docker or the network; it only routes, counts and
starts actors. It never asks a SessionActor (which asks its GroupActor), so no
ask cycle can form.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import pykka

from actors import messages as m
from actors.group_actor import GroupActor
from actors.services import HostServices
from actors.session_actor import SessionActor
from config.logs import get_logger
from events import types as ev

log = get_logger("session-manager")

RESTARTS_ALLOWED = 3
RESTART_WINDOW_S = 60.0

_SESSION_MESSAGES = (
    m.WakeSession,
    m.SessionActivity,
    m.StopSession,
    m.ContainerExited,
    m.AdoptContainer,
)


class _Live:
    """Bookkeeping for one running SessionActor."""

    __slots__ = ("ref", "sent")

    def __init__(self, ref: pykka.ActorRef[Any]) -> None:
        self.ref = ref
        self.sent = 0


class SessionManager(pykka.ThreadingActor):
    def __init__(self, services: HostServices) -> None:
        super().__init__()
        self._services = services
        self._limit = services.settings.max_concurrent_containers
        self._live: dict[str, _Live] = {}
        self._groups: dict[str, pykka.ActorRef[Any]] = {}
        self._holders: set[str] = set()
        self._waiting: deque[str] = deque()
        self._crashes: dict[str, list[float]] = {}

    def on_stop(self) -> None:
        for live in self._live.values():
            live.ref.stop(block=False)
        for group in self._groups.values():
            group.stop(block=False)

    def on_receive(self, message: Any) -> Any:
        match message:
            case _ if isinstance(message, _SESSION_MESSAGES):
                if isinstance(message, m.AdoptContainer):
                    self._holders.add(message.session_id)
                self._send(message.session_id, message)
            case m.Tick():
                for live in self._live.values():
                    live.sent += 1
                    live.ref.tell(message)
            case m.RequestSlot(session_id=sid):
                self._request_slot(sid)
            case m.ReleaseSlot(session_id=sid):
                self._release_slot(sid)
            case m.PassivateMe(session_id=sid, handled=handled):
                self._passivate(sid, handled)
            case m.SessionCrashed(session_id=sid, error=error):
                self._on_crash(sid, error)
            case m.QueryState():
                return self._status()
            case m.SessionRefQuery(session_id=sid):
                return self._live[sid].ref if sid in self._live else None
            case m.GroupRefQuery(group_id=gid):
                return self._group(gid)
            case _:
                log.warning("manager.unknown_message", message=repr(message))
        return None

    # -- routing -------------------------------------------------------------------------------------

    def _send(self, session_id: str, message: Any) -> None:
        live: _Live | None = self._live.get(session_id) or self._activate(session_id)
        if live is None:
            log.warning(
                "manager.dropped", session_id=session_id, message=type(message).__name__, reason="no active session"
            )
            return
        live.sent += 1
        live.ref.tell(message)

    def _activate(self, session_id: str) -> _Live | None:
        session = self._services.log.store.session(session_id)
        if session is None or session.status != "active":
            return None
        ref = SessionActor.start(self._services, session, self.actor_ref, self._group(session.agent_group_id))
        live = _Live(ref)
        self._live[session_id] = live
        return live

    def _group(self, group_id: str) -> pykka.ActorRef[Any]:
        """The group's one GroupActor, started on first need."""
        group = self._groups.get(group_id)
        if group is None:
            group = GroupActor.start(self._services, group_id)
            self._groups[group_id] = group
        return group

    def _passivate(self, session_id: str, handled: int) -> None:
        live = self._live.get(session_id)
        if live is None or live.sent != handled or session_id in self._holders:
            return
        del self._live[session_id]
        live.ref.stop(block=False)

    def _on_crash(self, session_id: str, error: str) -> None:
        self._live.pop(session_id, None)
        self._release_slot(session_id)
        now = time.monotonic()
        recent = [t for t in self._crashes.get(session_id, []) if now - t < RESTART_WINDOW_S]
        recent.append(now)
        self._crashes[session_id] = recent
        quarantined = len(recent) > RESTARTS_ALLOWED
        self._services.log.append(
            f"session:{session_id}",
            [ev.SessionActorCrashed(session_id=session_id, error=error, restarts=len(recent), quarantined=quarantined)],
        )
        log.error("session.crashed", session_id=session_id, error=error, quarantined=quarantined)
        if not quarantined:
            self._activate(session_id)

    # -- concurrency slots ------------------------------------------------------------------------------

    def _request_slot(self, session_id: str) -> None:
        if session_id in self._holders:
            self._grant(session_id)
        elif len(self._holders) < self._limit:
            self._holders.add(session_id)
            self._grant(session_id)
        elif session_id not in self._waiting:
            self._waiting.append(session_id)
            log.info("slot.queued", session_id=session_id, waiting=len(self._waiting))

    def _grant(self, session_id: str) -> None:
        live = self._live.get(session_id)
        if live is None:
            self._holders.discard(session_id)
            return
        live.sent += 1
        live.ref.tell(m.SlotGranted())

    def _release_slot(self, session_id: str) -> None:
        self._holders.discard(session_id)
        if session_id in self._waiting:
            self._waiting.remove(session_id)
        while self._waiting and len(self._holders) < self._limit:
            next_id = self._waiting.popleft()
            if next_id in self._live:
                self._holders.add(next_id)
                self._grant(next_id)

    def _status(self) -> dict[str, Any]:
        return {
            "live_sessions": sorted(self._live),
            "slot_holders": sorted(self._holders),
            "waiting": list(self._waiting),
            "limit": self._limit,
        }
