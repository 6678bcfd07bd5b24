"""Benchmark of waking sessions on the real Docker engine with the real agent image.

Run: `python bench/wake.py --json` (one JSON object on stdout). A host runs in
this process on a temporary data directory, containers without networking.

- cold wake: from the wake request to the container's runner having touched
  its heartbeat file (the process is up and polling), over COLD_ROUNDS wakes
  of a stopped session; p50 and p90.
- no-op wake: a wake of a session whose container already runs, measured as
  the round trip through the manager and the session's mailbox; median.
- 100 concurrent wakes from 20 threads of one stopped session: how many
  containers Docker itself reports created (the answer must be 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test helpers drive a real host too

from bench_support import container_status, percentile

import sessiondb
from actors import messages as m
from actors.host import Host
from config.logs import configure_logging
from tests.integration.host_support import (
    create_group,
    create_session,
    creates_since,
    host_settings,
    remove_instance_containers,
    wait_for,
)

COLD_ROUNDS = 10
NOOP_ROUNDS = 2_000


def cold_wakes(host: Host, group_id: str) -> list[float]:
    assert host.log is not None and host.manager is not None
    samples: list[float] = []
    for _ in range(COLD_ROUNDS):
        session_id = create_session(host.log, group_id)
        heartbeat = sessiondb.heartbeat_path(sessiondb.session_dir(host.settings.sessions_dir, group_id, session_id))
        started = time.perf_counter()
        host.wake(session_id, "bench")
        while not heartbeat.exists():
            time.sleep(0.001)
        samples.append((time.perf_counter() - started) * 1000)
        host.manager.tell(m.StopSession(session_id, "bench"))
        wait_for(lambda sid=session_id: container_status(host, sid) == "stopped", 30, "the stop")  # type: ignore[misc]
    return samples


def noop_wakes(host: Host, group_id: str) -> list[float]:
    assert host.log is not None and host.manager is not None
    session_id = create_session(host.log, group_id)
    host.wake(session_id, "bench")
    wait_for(lambda: container_status(host, session_id) in ("running", "idle"), 60, "the container")
    host.wake(session_id, "bench")  # an idle container becomes busy once; later wakes are pure no-ops
    ref = host.manager.ask(m.SessionRefQuery(session_id), timeout=10)
    samples: list[float] = []
    for _ in range(NOOP_ROUNDS):
        started = time.perf_counter()
        host.wake(session_id, "bench")
        host.manager.ask(m.SessionRefQuery(session_id), timeout=10)
        ref.ask(m.QueryState(), timeout=10)
        samples.append((time.perf_counter() - started) * 1000)
    host.manager.tell(m.StopSession(session_id, "bench"))
    return samples


def concurrent_wakes(host: Host, group_id: str, client: docker.DockerClient) -> int:
    assert host.log is not None
    session_id = create_session(host.log, group_id)
    since = time.time()
    barrier = threading.Barrier(20)

    def wake_five() -> None:
        barrier.wait()
        for _ in range(5):
            host.wake(session_id, "bench")

    threads = [threading.Thread(target=wake_five) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: container_status(host, session_id) in ("running", "idle"), 60, "the container")
    time.sleep(1.0)
    return creates_since(client, host.settings, since, session_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    client = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="hermitcrab-bench-wake-") as tmp:
        settings = host_settings(Path(tmp), HERMITCRAB_TICK_INTERVAL="1s", HERMITCRAB_LOG_LEVEL="error")
        configure_logging(settings)
        host = Host(settings)
        host.start()
        try:
            assert host.log is not None
            group_id = create_group(host.log, "bench")
            cold = cold_wakes(host, group_id)
            noop = noop_wakes(host, group_id)
            created = concurrent_wakes(host, group_id, client)
        finally:
            host.stop(stop_containers=True)
            remove_instance_containers(client, settings)
    result = {
        "cold_wake_p50_ms": round(statistics.median(cold), 1),
        "cold_wake_p90_ms": round(percentile(cold, 0.9), 1),
        "noop_wake_median_ms": round(statistics.median(noop), 3),
        "containers_started_for_100_concurrent_wakes": created,
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
