"""What several benchmarks share. Imported as `bench_support`: a script's own folder is on sys.path."""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from actors.host import Host


def print_measurement(description: str, measure: Callable[[Path], Mapping[str, object]]) -> None:
    """The `--json` entry point of a benchmark that works in a temporary directory: one JSON object on stdout."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", action="store_true", help="print one JSON object (the only output mode)")
    parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hermitcrab-bench-") as tmp:
        print(json.dumps(measure(Path(tmp))))


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0.5 = median, 0.99 = p99) of the samples."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def container_status(host: Host, session_id: str) -> str:
    """The session's recorded container status ("missing" for an unknown session)."""
    assert host.log is not None
    session = host.log.store.session(session_id)
    return session.container_status if session else "missing"
