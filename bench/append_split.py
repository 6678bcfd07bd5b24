"""Where the time of one durable append goes: the commit (WAL write + fsync) versus the work inside the transaction.

Run: `python bench/append_split.py --json` (one JSON object on stdout, ~10 s).
The single-append rate of `bench/eventlog.py` is bound by the disk; this
splits it so a change can be judged on its own part:

- `append_us`, `commit_us`, `begin_us`, `work_us`: one `EventLog.append` of
  one event, each its own durable transaction, on a log that already holds
  the groups and 1,000 sessions of `eventlog.py`, averaged over APPENDS after a
  warm-up; `work_us` is everything outside `BEGIN` and `COMMIT` (timed by a
  connection subclass given to the writer, which adds ~0.3 µs per statement).
- `work_unsynced_us`: the same appends with `synchronous=OFF`, i.e. the work
  when no fsync wait precedes it (the vCPU resumes cold after each wait).
- `floor_commit_us`: a bare `BEGIN` + `INSERT` + `COMMIT` of one record into
  the same migrated events table: the disk's own cost of a durable commit.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

from bench_support import print_measurement
from eventlog import setup_events

from events import types as ev
from events.clock import recorded_now
from events.log import EventLog
from events.schema import connect, migrate

APPENDS = 6_000
WARMUP = 2_000


class _TimedConnection(sqlite3.Connection):
    """A connection that adds up the time its BEGIN and COMMIT statements take (a few hundred ns per call)."""

    begin_s = 0.0
    commit_s = 0.0

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if not sql.startswith(("BEGIN", "COMMIT")):
            return super().execute(sql, parameters)
        start = time.perf_counter()
        cursor = super().execute(sql, parameters)
        spent = time.perf_counter() - start
        if sql.startswith("BEGIN"):
            _TimedConnection.begin_s += spent
        else:
            _TimedConnection.commit_s += spent
        return cursor


_plain_connect = sqlite3.connect


def _timed_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    """`sqlite3.connect` for the log's writer, patched in while the log opens."""
    return _plain_connect(*args, factory=_TimedConnection, **kwargs)


def _appends(log: EventLog, tag: str, count: int) -> None:
    for i in range(count):
        log.append("session:s0", [ev.MessageRouted(message_id=f"{tag}-{i}", session_id="s0", kind="chat", seq=i)])


def _split(workdir: Path, synchronous: str) -> dict[str, float]:
    with patch("sqlite3.connect", _timed_connect):
        log = EventLog.open(workdir / f"split-{synchronous}.db")
    log._writer.execute(f"PRAGMA synchronous = {synchronous}")
    log.append_batch(setup_events())  # the same 1,020 streams the single appends of eventlog.py find
    _appends(log, "warm", WARMUP)
    _TimedConnection.begin_s = _TimedConnection.commit_s = 0.0
    start = time.perf_counter()
    _appends(log, "timed", APPENDS)
    total = time.perf_counter() - start
    log.close()
    begin_s, commit_s = _TimedConnection.begin_s, _TimedConnection.commit_s
    return {
        "append_us": total / APPENDS * 1e6,
        "begin_us": begin_s / APPENDS * 1e6,
        "commit_us": commit_s / APPENDS * 1e6,
        "work_us": (total - begin_s - commit_s) / APPENDS * 1e6,
    }


def _floor_commit_us(workdir: Path) -> float:
    db = connect(workdir / "floor.db")
    migrate(db)
    payload = '{"type":"message.routed","message_id":"x","session_id":"s0","kind":"chat","seq":1,"schema":1}'
    spent = 0.0
    for i in range(1, WARMUP + APPENDS + 1):
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "INSERT INTO events (position, record) VALUES (?, ?)",
            (i, f'[{i},"session:s0",{i},"message.routed","{recorded_now()}",{payload}]'),
        )
        start = time.perf_counter()
        db.execute("COMMIT")
        if i > WARMUP:
            spent += time.perf_counter() - start
    db.close()
    return spent / APPENDS * 1e6


def measure(workdir: Path) -> dict[str, float]:
    durable = _split(workdir, "FULL")
    unsynced = _split(workdir, "OFF")
    figures = {**durable, "work_unsynced_us": unsynced["work_us"], "floor_commit_us": _floor_commit_us(workdir)}
    return {key: round(value, 1) for key, value in figures.items()}


if __name__ == "__main__":
    print_measurement(__doc__.splitlines()[0], measure)
