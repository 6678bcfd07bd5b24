"""The liveness rules that upstream learned through bugs that killed fresh containers."""

from __future__ import annotations

from actors.session_liveness import Limits, Observation, Verdict, judge

LIMITS = Limits(idle_timeout_s=1800, stuck_timeout_s=600, hard_ceiling_s=4 * 3600, grace_s=5)
T0 = 1_000_000.0


def seen(
    now: float, *, heartbeat: float | None = None, claims: tuple[float, ...] = (), active: float = T0
) -> Observation:
    return Observation(now=now, started_at=T0, last_activity=active, heartbeat_at=heartbeat, claim_times=claims)


def test_fresh_container_without_heartbeat_is_judged_by_spawn_time() -> None:
    assert judge(seen(T0 + 60, claims=(T0 + 1,)), LIMITS) is Verdict.BUSY
    assert judge(seen(T0 + 700, claims=(T0 + 1,)), LIMITS) is Verdict.STUCK


def test_heartbeat_progress_keeps_a_long_tool_call_alive() -> None:
    assert judge(seen(T0 + 3000, heartbeat=T0 + 2900, claims=(T0 + 1,)), LIMITS) is Verdict.BUSY


def test_claims_of_a_predecessor_are_ignored() -> None:
    old_claim = T0 - 5000
    assert judge(seen(T0 + 700, claims=(old_claim,)), LIMITS) is Verdict.IDLE


def test_the_tick_that_started_a_container_never_judges_it() -> None:
    tiny = Limits(idle_timeout_s=0.001, stuck_timeout_s=0.001, hard_ceiling_s=0.001, grace_s=5)
    assert judge(seen(T0 + 1, claims=(T0,)), tiny) is Verdict.BUSY
    assert judge(seen(T0 + 1), tiny) is Verdict.IDLE


def test_idle_expires_after_the_timeout_without_claims() -> None:
    assert judge(seen(T0 + 1799), LIMITS) is Verdict.IDLE
    assert judge(seen(T0 + 1801), LIMITS) is Verdict.IDLE_EXPIRED


def test_recent_activity_pushes_the_idle_deadline() -> None:
    assert judge(seen(T0 + 2500, active=T0 + 1000), LIMITS) is Verdict.IDLE


def test_hard_ceiling_stops_a_claim_that_never_ends() -> None:
    now = T0 + 5 * 3600
    assert judge(seen(now, heartbeat=now - 1, claims=(T0 + 10,)), LIMITS) is Verdict.CEILING
