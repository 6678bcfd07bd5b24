"""Benchmark of the message flow: channel in -> router -> container (echo) -> delivery -> channel out.

Run: `python bench/flow.py --json` (one JSON object on stdout). A host runs in
this process on a temporary data directory with an in-process test channel
(`tests/fakes/recording_channel.py`) and real containers without networking.

- end to end: 200 messages sent one at a time into one conversation whose
  container is warm; from the channel's inbound callback to the channel's
  `deliver` call of the echo reply. p50 and p99.
- fast path: 200 reply rows written into a session's outbound.db the way a
  container writes them (journal_mode=DELETE, one commit each); from the commit
  to the channel's `deliver` call. p50 and p99.
- throughput: 20 conversations (20 sessions, 20 warm containers), each sending
  its next message as soon as the previous reply arrived, 20 rounds; replies
  per second over the whole run.
- idle host CPU: 100 warm sessions (100 running, idle containers); the host
  process's own CPU time (all its threads, containers excluded: they are other
  processes) over 20 s of wall time, as a percentage of one core; and the
  same split by kind of thread (which actor spends it).
"""

from __future__ import annotations

import json
import os
import re
import resource
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test channel and helpers drive a real host

from bench_support import percentile, print_measurement

import sessiondb
from actors import admin
from actors.host import Host
from config.logs import configure_logging
from config.settings import Settings
from sessiondb.schema import OUTBOUND_SCHEMA
from tests.fakes.recording_channel import Delivered, RecordingChannel
from tests.integration.host_support import host_settings, remove_instance_containers

E2E_MESSAGES = 200
FAST_PATH_ROWS = 200
TALKERS = 20
ROUNDS = 20
IDLE_SESSIONS = 100
IDLE_WINDOW_S = 20.0
REPLY_TIMEOUT_S = 120.0


def _wire(host: Host, group: admin.AgentGroup, platform_id: str) -> None:
    assert host.log is not None
    conversation = admin.ensure_messaging_group(host.log, "test", platform_id)
    admin.wire(host.log, conversation, group)


def _count(delivered: list[Delivered], platform_id: str) -> int:
    return sum(1 for x in delivered if x.delivery.platform_id == platform_id)


def _arrival(delivered: list[Delivered], platform_id: str, index: int) -> float:
    return [x for x in delivered if x.delivery.platform_id == platform_id][index].at


def _converse(channel: RecordingChannel, platform_id: str, text: str) -> float:
    """Send one message and wait for its reply; the seconds from the inbound callback to `deliver`."""
    before = len(channel.texts(platform_id))
    started = time.perf_counter()
    channel.say(platform_id, text)
    delivered = channel.wait_for(lambda d: _count(d, platform_id) > before, REPLY_TIMEOUT_S, text)
    return _arrival(delivered, platform_id, before) - started


def _end_to_end(host: Host, channel: RecordingChannel, group: admin.AgentGroup) -> list[float]:
    _wire(host, group, "e2e")
    _converse(channel, "e2e", "warm up")
    return [_converse(channel, "e2e", f"message {n}") * 1000 for n in range(E2E_MESSAGES)]


def _fast_path(host: Host, channel: RecordingChannel, group: admin.AgentGroup) -> list[float]:
    """Rows written as a container writes them, no container running: the host's own share of a reply."""
    assert host.log is not None
    _wire(host, group, "fast")
    conversation = host.log.store.messaging_group_by_platform("test", "fast")
    assert conversation is not None
    session = admin.create_session(host.log, group, messaging_group_id=conversation.id)
    folder = sessiondb.session_dir(host.settings.sessions_dir, group.id, session.id)
    sessiondb.create_session_folder(folder)
    time.sleep(0.5)  # the watcher has added the new folder
    conn = sqlite3.connect(sessiondb.outbound_path(folder), isolation_level=None)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.executescript(OUTBOUND_SCHEMA)
    latencies = []
    try:
        for n in range(FAST_PATH_ROWS):
            before = len(channel.texts("fast"))
            conn.execute(
                "INSERT INTO messages_out (id, seq, timestamp, kind, channel_type, platform_id, content)"
                " VALUES (?, ?, datetime('now'), 'chat', 'test', 'fast', ?)",
                (f"fast-{n}", 2 * n + 1, json.dumps({"text": f"row {n}"})),
            )
            written = time.perf_counter()
            delivered = channel.wait_for(lambda d, b=before: _count(d, "fast") > b, 10, f"row {n}")
            latencies.append((_arrival(delivered, "fast", before) - written) * 1000)
    finally:
        conn.close()
    return latencies


def _throughput(host: Host, channel: RecordingChannel, group: admin.AgentGroup) -> float:
    talkers = [f"talk-{n}" for n in range(TALKERS)]
    for platform_id in talkers:
        _wire(host, group, platform_id)
    _in_parallel([lambda p=p: _converse(channel, p, "warm up") for p in talkers])
    started = time.perf_counter()
    _in_parallel([lambda p=p: [_converse(channel, p, f"round {r}") for r in range(ROUNDS)] for p in talkers])
    return TALKERS * ROUNDS / (time.perf_counter() - started)


def _in_parallel(jobs: list[Callable[[], object]]) -> None:
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _thread_cpu_s() -> dict[str, float]:
    """CPU seconds per kind of thread (pykka names threads `<ActorClass>-<n>`), from /proc/self/task."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = re.sub(r"[-_ ]?\d+$", "", (thread.name or "thread").split(" ")[0])
        totals[kind] = totals.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return totals


def _idle_cpu(host: Host, channel: RecordingChannel, group: admin.AgentGroup) -> tuple[float, int, dict[str, float]]:
    """Warm IDLE_SESSIONS sessions in all (the throughput ones count), then measure the host's CPU while idle."""
    assert host.log is not None
    extra = [f"idle-{n}" for n in range(IDLE_SESSIONS - TALKERS)]
    for platform_id in extra:
        _wire(host, group, platform_id)
    for start in range(0, len(extra), 20):
        _in_parallel([lambda p=p: _converse(channel, p, "warm up") for p in extra[start : start + 20]])
    running = sum(1 for s in host.log.store.sessions() if s.container_status in ("running", "idle"))
    time.sleep(host.settings.tick_interval_s * 2)  # let every session settle into idle
    before, threads_before = resource.getrusage(resource.RUSAGE_SELF), _thread_cpu_s()
    wall_start = time.monotonic()
    time.sleep(IDLE_WINDOW_S)
    after, threads_after = resource.getrusage(resource.RUSAGE_SELF), _thread_cpu_s()
    wall = time.monotonic() - wall_start
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    by_thread = {
        kind: round(100.0 * (spent - threads_before.get(kind, 0.0)) / wall, 2)
        for kind, spent in threads_after.items()
        if spent - threads_before.get(kind, 0.0) > 0
    }
    return 100.0 * cpu / wall, running, by_thread


def measure(workdir: Path) -> dict[str, object]:
    settings: Settings = host_settings(
        workdir,
        MAX_CONCURRENT_CONTAINERS=str(IDLE_SESSIONS + 10),
        HERMITCRAB_TICK_INTERVAL="5s",
        HERMITCRAB_CHANNELS="none",
        HERMITCRAB_LOG_LEVEL="warning",
    )
    configure_logging(settings)
    client = docker.from_env()
    client.images.get(settings.image)  # fails clearly when the agent image was never built
    channel = RecordingChannel()
    host = Host(settings, adapters=[channel])
    host.start()
    try:
        assert host.log is not None
        group = admin.create_group(host.log, settings, name="bench")
        e2e = _end_to_end(host, channel, group)
        fast = _fast_path(host, channel, group)
        throughput = _throughput(host, channel, group)
        idle_pct, running, idle_by_thread = _idle_cpu(host, channel, group)
    finally:
        host.stop(stop_containers=True)
        remove_instance_containers(client, settings)
        client.close()
    return {
        "e2e_p50_ms": round(statistics.median(e2e), 2),
        "e2e_p99_ms": round(percentile(e2e, 0.99), 2),
        "e2e_messages": len(e2e),
        "fast_path_p50_ms": round(statistics.median(fast), 3),
        "fast_path_p99_ms": round(percentile(fast, 0.99), 3),
        "throughput_msgs_per_s": round(throughput, 1),
        "throughput_sessions": TALKERS,
        "throughput_messages": TALKERS * ROUNDS,
        "idle_host_cpu_pct_100_sessions": round(idle_pct, 2),
        "idle_host_cpu_pct_by_thread": dict(sorted(idle_by_thread.items(), key=lambda kv: -kv[1])),
        "idle_running_containers": running,
        "idle_window_s": IDLE_WINDOW_S,
    }


if __name__ == "__main__":
    print_measurement(__doc__.splitlines()[0], measure)
