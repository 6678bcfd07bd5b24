"""Benchmark of the event log: durable appends, replay of 1M events, restart with the checkpoint.

Run: `python bench/eventlog.py --json` (one JSON object on stdout). Everything
happens in a temporary directory. Timed phases:

- single appends: one event per `append`, each its own durable (fsynced)
  transaction, after a warm-up that grows the WAL to its working size;
  the median of five rounds of 2,000. For context, the same loop with a bare
  INSERT + COMMIT into the same (migrated) events table gives the disk's floor
  for a record and its stream-index entry, and the same into a plain two-column
  table (one page per commit) the floor the issue's target was set against (the
  design notes' ~8,700/s); the rounds of all three alternate, so each sees the
  same moments of the disk.
- batched appends: the 1M-event history itself, written by `append_batch` in
  transactions of 1,000 events (turns of ten events for each of 100 sessions),
  projections applied in the same transactions.
- replay: read and decode every event (`EventLog.read`); median of three.
- restart: `EventLog.open` on the 1M-event file (tables in step with the log); median of three.
- rebuild: `events.replay.rebuild`, every projection re-derived from 1M events.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench_support import print_measurement

from events import types as ev
from events.clock import recorded_now
from events.log import EventLog
from events.replay import rebuild
from events.schema import connect, migrate

TOTAL_EVENTS = 1_000_000
GROUPS = 10
SESSIONS = 1_000
BATCH = 1_000
SINGLE_WARMUP = 2_000
SINGLE_ROUND = 2_000
SINGLE_ROUNDS = 5
ROUNDS = 3


def setup_events() -> list[tuple[str, list[ev.Event]]]:
    """Groups, a chat per group, and SESSIONS sessions spread over them."""
    items: list[tuple[str, list[ev.Event]]] = []
    for g in range(GROUPS):
        items.append((f"group:g{g}", [ev.GroupCreated(group_id=f"g{g}", name=f"Group {g}", folder=f"group-{g}")]))
        items.append(
            (
                f"messaging_group:m{g}",
                [ev.MessagingGroupCreated(messaging_group_id=f"m{g}", channel_type="terminal", platform_id=f"p{g}")],
            )
        )
    for s in range(SESSIONS):
        items.append(
            (
                f"session:s{s}",
                [
                    ev.SessionCreated(
                        session_id=f"s{s}", agent_group_id=f"g{s % GROUPS}", messaging_group_id=f"m{s % 10}"
                    )
                ],
            )
        )
    return items


def _session_events(n: int) -> Iterator[tuple[str, list[ev.Event]]]:
    """A realistic mix in turns of ten events per session: routed and delivered messages,
    containers going idle and busy, a wake request and a failed delivery."""
    for i in range(n):
        sid = f"s{(i // 10) % SESSIONS}"
        kind = i % 10
        event: ev.Event
        if kind < 4:
            event = ev.MessageRouted(message_id=f"in-{i}", session_id=sid, kind="chat", seq=2 * i)
        elif kind < 6:
            event = ev.MessageDelivered(session_id=sid, message_out_id=f"out-{i}", platform_message_id=f"pm-{i}")
        elif kind == 6:
            event = ev.ContainerIdle(session_id=sid, container_id=f"c-{sid}")
        elif kind == 7:
            event = ev.ContainerBusy(session_id=sid, container_id=f"c-{sid}")
        elif kind == 8:
            event = ev.WakeRequested(session_id=sid, reason="message")
        else:
            event = ev.DeliveryFailed(session_id=sid, message_out_id=f"out-{i}", attempt=1, error="timeout")
        yield f"session:{sid}", [event]


Run = Callable[[int, int], None]
"""Makes `count` single durable commits numbered from `offset`."""


def _rates_of_interleaved_rounds(runs: list[Run]) -> list[float]:
    """Commits per second of each run: the median of SINGLE_ROUNDS rounds of SINGLE_ROUND after a warm-up.

    The runs take turns round by round, so each sees the same moments of the
    disk, whose fsync rate moves from one minute to the next.
    """
    for run in runs:
        run(0, SINGLE_WARMUP)
    rates: list[list[float]] = [[] for _ in runs]
    for r in range(SINGLE_ROUNDS):
        for run, measured in zip(runs, rates, strict=True):
            start = time.perf_counter()
            run(SINGLE_WARMUP + r * SINGLE_ROUND, SINGLE_ROUND)
            measured.append(SINGLE_ROUND / (time.perf_counter() - start))
    return [statistics.median(measured) for measured in rates]


def _single_appends(log: EventLog) -> Run:
    def run(offset: int, count: int) -> None:
        for i in range(offset, offset + count):
            log.append("session:s0", [ev.MessageRouted(message_id=f"single-{i}", session_id="s0", kind="chat", seq=i)])

    return run


def _bare_commits(db: sqlite3.Connection) -> Run:
    """The same single durable commits with nothing but an INSERT into the same (migrated) events table."""
    migrate(db)
    payload = '{"type":"message.routed","message_id":"x","session_id":"s0","kind":"chat","seq":1,"schema":1}'

    def run(offset: int, count: int) -> None:
        for i in range(offset + 1, offset + count + 1):
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO events (position, record) VALUES (?, ?)",
                (i, f'[{i},"session:s0",{i},"message.routed","{recorded_now()}",{payload}]'),
            )
            db.execute("COMMIT")

    return run


def _plain_commits(db: sqlite3.Connection) -> Run:
    """Single durable commits of one row into a plain table: how the design notes measured the disk's floor."""
    db.execute("CREATE TABLE plain (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    payload = '{"type":"message.routed","message_id":"x","session_id":"s0","kind":"chat","seq":1,"schema":1}'

    def run(offset: int, count: int) -> None:
        for _ in range(count):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO plain (payload) VALUES (?)", (payload,))
            db.execute("COMMIT")

    return run


def _fill(log: EventLog, total: int) -> tuple[int, float]:
    """Append session events in batches until the log holds `total`; returns (events written, seconds)."""
    remaining = total - log.last_position()
    start = time.perf_counter()
    stream = _session_events(remaining)
    written = 0
    while written < remaining:
        batch = [next(stream) for _ in range(min(BATCH, remaining - written))]
        log.append_batch(batch)
        written += len(batch)
    return written, time.perf_counter() - start


def _median_seconds(run: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _restart(path: Path) -> None:
    EventLog.open(path).close()


def _replay(log: EventLog) -> int:
    count = 0
    for _ in log.read():
        count += 1
    return count


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def measure(workdir: Path) -> dict[str, float | int | str]:
    path = workdir / "bench.db"
    log = EventLog.open(path)
    log.append_batch(setup_events())
    floor_db, plain_db = connect(workdir / "floor.db"), connect(workdir / "plain.db")
    single, floor, plain = _rates_of_interleaved_rounds(
        [_single_appends(log), _bare_commits(floor_db), _plain_commits(plain_db)]
    )
    floor_db.close()
    plain_db.close()
    written, fill_s = _fill(log, TOTAL_EVENTS)
    events = log.last_position()
    log.close()
    db_bytes = _db_bytes(path)

    restart_s = _median_seconds(lambda: _restart(path))
    log = EventLog.open(path)
    replayed = _replay(log)
    replay_s = _median_seconds(lambda: _replay(log))
    log.close()
    rebuild_start = time.perf_counter()
    rebuild(path)
    rebuild_s = time.perf_counter() - rebuild_start
    return {
        "append_single_per_s": round(single),
        "append_batched_per_s": round(written / fill_s),
        "batch_size": BATCH,
        "raw_single_commit_floor_per_s": round(floor),
        "append_single_share_of_floor": round(single / floor, 3),
        "raw_plain_commit_floor_per_s": round(plain),
        "events": events,
        "replayed": replayed,
        "replay_per_s": round(replayed / replay_s),
        "replay_1m_s": round(replay_s * TOTAL_EVENTS / replayed, 3),
        "restart_snapshot_s": round(restart_s, 4),
        "rebuild_1m_s": round(rebuild_s * TOTAL_EVENTS / events, 2),
        "db_bytes": db_bytes,
        "sqlite": sqlite3.sqlite_version,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count() or 0,
    }


if __name__ == "__main__":
    print_measurement(__doc__.splitlines()[0], measure)
