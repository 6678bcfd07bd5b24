"""Benchmark: host write -> reply row in outbound.db, echo provider, real container.

Run: `python bench/reply_latency.py --json` (one JSON object on stdout).
- warm: WARM_MESSAGES messages, one at a time, to a running container; the
  clock starts before the host's insert into inbound.db and stops when the
  reply row is readable in outbound.db (the host side watches the file's
  mtime every 0.5 ms, about what a stat-based watcher costs).
- cold: COLD_ROUNDS times, the session's container is stopped, a message is
  written and the session woken; the clock stops at the reply row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test helpers drive a real host too

from bench_support import container_status, percentile

from actors import messages as m
from actors.host import Host
from config.logs import configure_logging
from tests.integration.host_support import host_settings, remove_instance_containers, wait_for
from tests.integration.runner_support import chat_session, reply_to, send_chat

WARM_MESSAGES = 200
COLD_ROUNDS = 10


def measure(host: Host) -> dict[str, float]:
    assert host.manager is not None
    session, folder = chat_session(host, "latency")
    first = send_chat(folder, "warm up")
    host.wake(session.id, "bench")
    reply_to(folder, first, timeout_s=60)
    warm: list[float] = []
    for index in range(WARM_MESSAGES):
        started = time.perf_counter()
        message_id = send_chat(folder, f"message {index}")
        reply_to(folder, message_id, timeout_s=10)
        warm.append((time.perf_counter() - started) * 1000)
    cold: list[float] = []
    for index in range(COLD_ROUNDS):
        host.manager.tell(m.StopSession(session.id, "bench"))
        wait_for(lambda: container_status(host, session.id) == "stopped", 30, "the stop")
        started = time.perf_counter()
        message_id = send_chat(folder, f"cold {index}")
        host.wake(session.id, "bench")
        reply_to(folder, message_id, timeout_s=30)
        cold.append((time.perf_counter() - started) * 1000)
    return {
        "warm_p50_ms": round(statistics.median(warm), 2),
        "warm_p99_ms": round(percentile(warm, 0.99), 2),
        "cold_p50_ms": round(statistics.median(cold), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    client = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="hermitcrab-bench-reply-") as tmp:
        settings = host_settings(Path(tmp), HERMITCRAB_LOG_LEVEL="error")
        configure_logging(settings)
        host = Host(settings)
        host.start()
        try:
            result = measure(host)
        finally:
            host.stop(stop_containers=True)
            remove_instance_containers(client, settings)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
