"""What several benchmarks share. Imported as `bench_support`: a script's own folder is on sys.path."""

from __future__ import annotations

from actors.host import Host


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0.5 = median, 0.99 = p99) of the samples."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def container_status(host: Host, session_id: str) -> str:
    """The session's recorded container status ("missing" for an unknown session)."""
    assert host.log is not None
    session = host.log.store.session(session_id)
    return session.container_status if session else "missing"
