"""SweepActor: the slow periodic pass over every active session's files.

It copies the containers' processing acks back into inbound.db, gives
finished recurring tasks their next occurrence (cron in the configured zone),
wakes sessions that have due messages (scheduled tasks included), and asks the
system-actions actor to expire approvals nobody answered. It never judges
liveness: that is the SessionActor's tick, the one authority.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pykka

import sessiondb
from actors import messages as m
from actors.services import HostServices
from actors.system_messages import ExpireApprovals
from actors.tasks import schedule_recurrences
from config.logs import get_logger

log = get_logger("sweep")


class SweepActor(pykka.ThreadingActor):
    def __init__(
        self, services: HostServices, manager: pykka.ActorRef[Any], system: pykka.ActorRef[Any] | None = None
    ) -> None:
        super().__init__()
        self._services = services
        self._manager = manager
        self._system = system

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, m.Sweep):
            return self._sweep(message.now)
        return None

    def _sweep(self, now: float) -> int:
        """Return how many sessions were woken."""
        settings = self._services.settings
        if self._system is not None:
            self._system.tell(ExpireApprovals(now))
        woken = 0
        for session in self._services.log.store.sessions(status="active"):
            folder = sessiondb.session_dir(settings.sessions_dir, session.agent_group_id, session.id)
            if not folder.exists():
                continue
            try:
                sessiondb.sync_processing_acks(folder)
                schedule_recurrences(settings, self._services.log, session, datetime.fromtimestamp(now, UTC))
                due = sessiondb.count_due(folder)
            except (OSError, sqlite3.Error, sessiondb.SessionDbError) as exc:
                log.error("sweep.session_failed", session_id=session.id, error=str(exc))
                continue
            if due:
                self._manager.tell(m.WakeSession(session.id, f"{due} due message(s)"))
                woken += 1
        return woken
