"""The one authority on whether a session's container is idle, busy or stuck.

A pure function of what the tick observed, so every rule the reference's
successors learned the hard way is a unit test here:
- a container that has not written a heartbeat yet is judged by its spawn time;
- claims older than the container's own start belong to a predecessor and are ignored;
- the tick that started a container does not also judge it stuck.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    BUSY = "busy"
    IDLE = "idle"
    IDLE_EXPIRED = "idle timeout"
    STUCK = "stuck: no heartbeat progress"
    CEILING = "stuck: past the hard ceiling"


@dataclass(frozen=True, slots=True)
class Observation:
    now: float
    started_at: float
    last_activity: float
    heartbeat_at: float | None
    claim_times: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    idle_timeout_s: float
    stuck_timeout_s: float
    hard_ceiling_s: float
    grace_s: float


def judge(seen: Observation, limits: Limits) -> Verdict:
    """Decide what the container is doing; only the STUCK/CEILING/IDLE_EXPIRED verdicts stop it."""
    claims = [t for t in seen.claim_times if t >= seen.started_at - 1.0]
    if seen.now - seen.started_at < limits.grace_s:
        return Verdict.BUSY if claims else Verdict.IDLE
    if claims:
        progress = max(seen.started_at, seen.heartbeat_at or 0.0, max(claims))
        if seen.now - progress > limits.stuck_timeout_s:
            return Verdict.STUCK
        if seen.now - min(claims) > limits.hard_ceiling_s:
            return Verdict.CEILING
        return Verdict.BUSY
    if seen.now - max(seen.last_activity, seen.started_at) > limits.idle_timeout_s:
        return Verdict.IDLE_EXPIRED
    return Verdict.IDLE
