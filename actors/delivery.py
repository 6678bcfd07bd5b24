"""DeliveryActor: drains due outbound rows of one lane, with retries, attempt counts and the final give-up.

A lane is one channel adapter (so a slow or failing platform never delays
another), plus one internal lane for rows that never reach a platform: other
agents, system actions, and channels with no running adapter. Every actor sees
every session but takes only its lane's rows (`lane_of`, the same rule in every
actor), so no row has two owners; and an actor handles one message at a time,
so the fast path (a change notification) and the slow sweep go through the
same mailbox and can never send one row twice.

Per row, in seq order: the courier makes the call; success is recorded in
inbound.db (`delivered`) and in the log (`message.delivered`) and pushes the
session's idle deadline back. A failure is recorded as `message.delivery_failed`
with its attempt number (the count lives in the log, so a restart does not
reset it) and retried after `base * 2^(attempt-1)`; later rows of that session
in this lane wait behind it, keeping order. The third failure, or one that
cannot succeed, settles the row as failed and tells the agent, which can react.
A crash between the platform call and the record repeats the call on restart
with the same idempotency key (docs/delivery.md).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec
import pykka

import sessiondb
from actors import messages as m
from actors.delivery_notes import tell_agent
from actors.services import HostServices
from channels.adapter import DeliveryError, OutboundDelivery
from config.logs import get_logger
from events import types as ev
from events.log import ProjectionError
from events.model import Session

log = get_logger("delivery")

INTERNAL_LANE = "internal"
MAX_ATTEMPTS = 3
_DOMAIN_ERRORS = (sessiondb.SessionDbError, sqlite3.Error, OSError, ProjectionError, ValueError, msgspec.MsgspecError)


@dataclass(frozen=True, slots=True)
class Job:
    """One row to deliver, with the address it resolved to (its own routing, or the session's default)."""

    session: Session
    folder: Path
    row: sessiondb.OutboundMessage
    channel_type: str | None
    platform_id: str | None
    thread_id: str | None


@dataclass(frozen=True, slots=True)
class Sent:
    platform_message_id: str | None
    channel_type: str | None


@dataclass(frozen=True, slots=True)
class Held:
    """Not now, and not a failure: try again at `until` (UNIX time)."""

    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Never: settled as failed with the reason, without an attempt count (e.g. an unauthorized destination)."""

    reason: str


Outcome = Sent | Held | Refused


class Courier(Protocol):
    """How one lane reaches its recipients. `send` raises DeliveryError for a failed attempt."""

    def send(self, job: Job) -> Outcome: ...

    def after_delivery(self, job: Job) -> None: ...

    def show_typing(self, platform_id: str, thread_id: str | None) -> None: ...

    def post(self, delivery: OutboundDelivery) -> str | None:
        """Send a host-originated message (no outbound row); raises DeliveryError."""
        ...


def lane_of(kind: str, channel_type: str | None, channel_lanes: frozenset[str]) -> str:
    """Which lane owns a row (`channel_type` resolved to the session's own when the row names none).

    Its channel's lane, or the internal one: system rows, agents, channels with no running adapter.
    """
    if kind == "system" or channel_type is None or channel_type not in channel_lanes:
        return INTERNAL_LANE
    return channel_type


def retry_delay(base_s: float, attempt: int) -> float:
    return base_s * 2.0 ** (attempt - 1)


class DeliveryActor(pykka.ThreadingActor):
    def __init__(
        self,
        services: HostServices,
        manager: pykka.ActorRef[Any],
        lane: str,
        courier: Courier,
        channel_lanes: frozenset[str],
    ) -> None:
        super().__init__()
        self._services = services
        self._log = services.log
        self._settings = services.settings
        self._manager = manager
        self._lane = lane
        self._courier = courier
        self._channel_lanes = channel_lanes
        self._routes: dict[str, tuple[str | None, str | None, str | None]] = {}
        self._not_before: dict[str, float] = {}  # row id -> when its next attempt may run
        self._held: set[str] = set()
        self._timers: dict[str, tuple[float, threading.Timer]] = {}
        self._logger = log.bind(lane=lane)

    def on_stop(self) -> None:
        for _, timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def on_receive(self, message: Any) -> Any:
        try:
            match message:
                case m.DrainSession(session_id=session_id):
                    self._drain_id(session_id)
                case m.DeliverySweep():
                    for session in self._log.store.sessions(status="active"):
                        self._drain(session)
                case m.ShowTyping(platform_id=platform_id, thread_id=thread_id):
                    self._courier.show_typing(platform_id, thread_id)
                case m.PostToChannel(delivery=delivery, done=done):
                    self._post(delivery, done)
                case _:
                    self._logger.warning("delivery.unknown_message", message=repr(message))
        except _DOMAIN_ERRORS as exc:
            self._logger.error("delivery.failed", message=type(message).__name__, error=str(exc))
        return None

    def _post(self, delivery: OutboundDelivery, done: Callable[[str | None, str | None], None] | None) -> None:
        """One attempt at a host-originated message; the outcome goes to `done` (the sender decides what next)."""
        try:
            platform_message_id, error = self._courier.post(delivery), None
        except DeliveryError as exc:
            platform_message_id, error = None, str(exc)
            self._logger.warning("delivery.post_failed", key=delivery.idempotency_key, error=error)
        if done is not None:
            done(platform_message_id, error)

    # -- draining ------------------------------------------------------------------------------------

    def _drain_id(self, session_id: str) -> None:
        session = self._log.store.session(session_id)
        if session is not None:
            self._drain(session)

    def _drain(self, session: Session) -> None:
        folder = sessiondb.session_dir(self._settings.sessions_dir, session.agent_group_id, session.id)
        if not sessiondb.inbound_path(folder).exists():
            return
        now = time.monotonic()
        for row in sessiondb.due_outbound(folder):
            channel_type, platform_id, thread_id = self._address(session, row)
            if lane_of(row.kind, channel_type, self._channel_lanes) != self._lane:
                continue
            if self._not_before.get(row.id, 0.0) > now:
                return
            job = Job(session, folder, row, channel_type, platform_id, thread_id)
            if not self._deliver(job):
                return

    def _address(self, session: Session, row: sessiondb.OutboundMessage) -> tuple[str | None, str | None, str | None]:
        """The row's own routing, or the session's conversation when the agent named none."""
        if row.channel_type and row.platform_id:
            return row.channel_type, row.platform_id, row.thread_id
        if session.id not in self._routes:
            group = self._log.store.messaging_group(session.messaging_group_id) if session.messaging_group_id else None
            self._routes[session.id] = (
                (group.channel_type, group.platform_id, session.thread_id) if group else (None, None, None)
            )
        return self._routes[session.id]

    def _deliver(self, job: Job) -> bool:
        """Deliver one row; False when the session's later rows in this lane must wait (a retry is pending)."""
        row, session = job.row, job.session
        attempts = self._log.store.delivery_attempts(row.id, session.id)
        if attempts >= MAX_ATTEMPTS:  # the final failure was recorded, the settling was interrupted
            self._give_up(job, f"it failed {attempts} times", attempts)
            return True
        try:
            outcome = self._courier.send(job)
        except DeliveryError as exc:
            return self._failed(job, attempts + 1, str(exc), exc.retryable)
        except _DOMAIN_ERRORS as exc:
            return self._failed(job, attempts + 1, f"{type(exc).__name__}: {exc}", True)
        match outcome:
            case Sent():
                self._delivered(job, outcome)
            case Held(until=until, reason=reason):
                self._hold(job, until, reason)
            case Refused(reason=reason):
                self._refuse(job, reason, attempts + 1)
        return True

    def _delivered(self, job: Job, sent: Sent) -> None:
        row, session = job.row, job.session
        sessiondb.record_delivered(job.folder, row.id, sent.platform_message_id)
        self._log.append(
            f"session:{session.id}",
            [
                ev.MessageDelivered(
                    session_id=session.id,
                    message_out_id=row.id,
                    platform_message_id=sent.platform_message_id,
                    channel_type=sent.channel_type,
                )
            ],
        )
        self._not_before.pop(row.id, None)
        self._held.discard(row.id)
        self._courier.after_delivery(job)
        self._manager.tell(m.SessionActivity(session.id))

    def _failed(self, job: Job, attempt: int, error: str, retryable: bool) -> bool:
        row, session = job.row, job.session
        final = not retryable or attempt >= MAX_ATTEMPTS
        self._log.append(
            f"session:{session.id}",
            [
                ev.DeliveryFailed(
                    session_id=session.id, message_out_id=row.id, attempt=attempt, error=error[:2000], final=final
                )
            ],
        )
        self._logger.warning("delivery.attempt_failed", session_id=session.id, row=row.id, attempt=attempt, error=error)
        if final:
            self._give_up(job, error, attempt)
            return True
        delay = retry_delay(self._settings.delivery_retry_base_s, attempt)
        self._not_before[row.id] = time.monotonic() + delay
        self._schedule(session.id, time.time() + delay)
        return False

    def _give_up(self, job: Job, error: str, attempts: int) -> None:
        """Settle the row as failed and tell the agent what did not go out and why (idempotent)."""
        row, session = job.row, job.session
        sessiondb.record_failed(job.folder, row.id, error)
        self._not_before.pop(row.id, None)
        where = f"{job.channel_type}/{job.platform_id}" if job.channel_type else "its destination"
        label = f"#{row.seq}" if row.seq is not None else row.id
        tell_agent(
            self._log,
            self._settings,
            self._manager,
            session,
            f"delivery-failed-{row.id}",
            f"Your message {label} to {where} could not be delivered after {attempts} attempt(s) and was not sent. "
            f"Reason: {error}",
        )
        self._logger.error("delivery.gave_up", session_id=session.id, row=row.id, attempts=attempts, error=error)

    def _refuse(self, job: Job, reason: str, attempt: int) -> None:
        row, session = job.row, job.session
        self._log.append(
            f"session:{session.id}",
            [
                ev.DeliveryFailed(
                    session_id=session.id, message_out_id=row.id, attempt=attempt, error=reason, final=True
                )
            ],
        )
        sessiondb.record_failed(job.folder, row.id, reason)
        self._logger.warning("delivery.refused", session_id=session.id, row=row.id, reason=reason)

    def _hold(self, job: Job, until: float, reason: str) -> None:
        row, session = job.row, job.session
        if row.id not in self._held:
            self._held.add(row.id)
            self._log.append(
                f"session:{session.id}",
                [
                    ev.MessageHeld(
                        session_id=session.id,
                        message_out_id=row.id,
                        reason=reason,
                        until=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(until)),
                    )
                ],
            )
        self._schedule(session.id, until)

    # -- timers -----------------------------------------------------------------------------------

    def _schedule(self, session_id: str, at: float) -> None:
        """Drain the session again at `at` (UNIX time); an earlier pending timer wins."""
        current = self._timers.get(session_id)
        if current is not None and current[0] <= at and current[1].is_alive():
            return
        if current is not None:
            current[1].cancel()
        timer = threading.Timer(max(at - time.time(), 0.0), self._wake, args=(session_id,))
        timer.daemon = True
        self._timers[session_id] = (at, timer)
        timer.start()

    def _wake(self, session_id: str) -> None:
        try:
            self.actor_ref.tell(m.DrainSession(session_id, "retry"))
        except pykka.ActorDeadError:
            return
