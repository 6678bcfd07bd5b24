"""The messages actors send each other. Plain frozen values: nothing mutable crosses a mailbox."""

from __future__ import annotations

from dataclasses import dataclass

# -- to the SessionManager ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WakeSession:
    """Someone (router, sweep, delivery, CLI) wants this session's agent running."""

    session_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SessionActivity:
    """Input arrived or output was delivered: push the session's idle deadline back."""

    session_id: str


@dataclass(frozen=True, slots=True)
class StopSession:
    """Stop the session's container, recording why (admin request, rebuild, config change)."""

    session_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Tick:
    """The periodic liveness/idle check; `now` is wall-clock UNIX time."""

    now: float


@dataclass(frozen=True, slots=True)
class ContainerExited:
    """Docker reported that one of our containers died."""

    session_id: str
    container_id: str
    exit_code: int | None


@dataclass(frozen=True, slots=True)
class AdoptContainer:
    """A running container of ours was found for this session: keep it, do not restart it."""

    session_id: str
    container_id: str
    container_name: str
    started_at: float


@dataclass(frozen=True, slots=True)
class RequestSlot:
    """A session wants to start a container and needs one of the concurrency slots."""

    session_id: str


@dataclass(frozen=True, slots=True)
class ReleaseSlot:
    """A session's container is gone (or never started): its slot is free again."""

    session_id: str


@dataclass(frozen=True, slots=True)
class PassivateMe:
    """A stopped session with nothing to do offers to give up its thread.

    `handled` is how many messages it has processed; the manager only agrees
    when it has sent no more than that, so nothing in flight is lost.
    """

    session_id: str
    handled: int


@dataclass(frozen=True, slots=True)
class SessionCrashed:
    """A SessionActor died of a bug; the manager restarts it from recorded state."""

    session_id: str
    error: str


# -- from the SessionManager to a SessionActor -----------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotGranted:
    """The manager reserved a concurrency slot for this session's next start."""


@dataclass(frozen=True, slots=True)
class QueryState:
    """Ask: the session's current state, for status displays and tests."""


@dataclass(frozen=True, slots=True)
class SessionRefQuery:
    """Ask the manager: the live SessionActor ref of a session, or None when it is passivated."""

    session_id: str


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Compare Docker's containers with the recorded sessions and fix whatever drifted."""

    reason: str


@dataclass(frozen=True, slots=True)
class Sweep:
    """The slow periodic pass over every active session (acks, due messages, retries, recurrence)."""

    now: float
