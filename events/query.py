"""The SQL behind `EventLog.read` and `hermitcrab events`: filters over the events table.

Filters that have an index use it (position is the rowid; stream and stream
prefix use the unique (stream, version) index). The session and group filters
look into payloads with `json_extract`, which scans: they serve people reading
a timeline, not the host's hot path.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from itertools import chain, islice
from operator import itemgetter
from typing import Any

import msgspec

from events.codec import RecordedEvent, decode_carefully, decode_records

CHUNK = 500
"""Rows per fetch on the read path: small enough to stay in CPU caches, large enough to amortize."""
_PREFIX_END = "\U0010ffff"
_record_of = itemgetter(0)


def _payload_field(name: str) -> str:
    """A field of the stored payload (the record's last part)."""
    return f"json_extract(record, '$[5].{name}')"


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a read returns; every given field must match. `since` is a UTC log time."""

    after: int = 0
    stream: str | None = None
    stream_prefix: str | None = None
    types: Sequence[str] | None = None
    since: str | None = None
    session: str | None = None
    group: str | None = None


def select_events(
    conn: sqlite3.Connection, match: EventFilter, columns: str = "record", limit: int = -1
) -> sqlite3.Cursor:
    """A cursor over matching rows in log order: just the records, unless other columns are asked for."""
    clauses = ["position > ?"]
    params: list[Any] = [match.after]
    if match.stream is not None:
        clauses.append("stream = ?")
        params.append(match.stream)
    if match.stream_prefix is not None:
        clauses.append("stream >= ? AND stream < ?")
        params += [match.stream_prefix, match.stream_prefix + _PREFIX_END]
    if match.types is not None:
        clauses.append(f"type IN ({', '.join('?' * len(match.types))})")
        params += list(match.types)
    if match.since is not None:
        clauses.append("recorded_at >= ?")
        params.append(match.since)
    if match.session is not None:
        clauses.append(f"(stream = ? OR {_payload_field('session_id')} = ?)")
        params += [f"session:{match.session}", match.session]
    if match.group is not None:
        group = match.group
        fields = ("group_id", "agent_group_id", "parent_group_id")
        owners = " OR ".join(f"{_payload_field(name)} = ?" for name in fields)
        clauses.append(
            f"(stream = ? OR {owners} OR {_payload_field('session_id')}"
            " IN (SELECT id FROM sessions WHERE agent_group_id = ?))"
        )
        params += [f"group:{group}", group, group, group, group]
    params.append(limit)
    sql = f"SELECT {columns} FROM events WHERE {' AND '.join(clauses)} ORDER BY position LIMIT ?"
    return conn.execute(sql, params)


def select_after(conn: sqlite3.Connection, after: int, limit: int) -> list[tuple[int, str]]:
    """At most `limit` (position, record) rows after a position: the chunks catch-up and replay apply."""
    return conn.execute(
        "SELECT position, record FROM events WHERE position > ? ORDER BY position LIMIT ?", (after, limit)
    ).fetchall()


class _ChunkDecoder:
    """Decodes the record-only chunks of one read, remembering where the last one ended.

    The fast path needs nothing but the records. A chunk it refuses is read
    again with positions (the same filter, after the previous chunk's end,
    limited to the chunk's length: the log is append-only, so these are the
    same rows) and decoded carefully, so an error can name its position.
    """

    def __init__(self, conn: sqlite3.Connection, match: EventFilter) -> None:
        self._conn = conn
        self._match = match
        self._after = match.after

    def __call__(self, rows: list[tuple[str]]) -> Iterable[RecordedEvent]:
        decoded = decode_records(map(_record_of, rows))
        if decoded is None:
            again = msgspec.structs.replace(self._match, after=self._after)
            located = select_events(self._conn, again, "position, record", len(rows)).fetchall()
            self._after = located[-1][0]
            return decode_carefully(located)  # lazily: the events before a bad one are still read
        if decoded:
            self._after = decoded[-1].position
        return decoded


def read_events(conn: sqlite3.Connection, match: EventFilter, limit: int | None = None) -> Iterator[RecordedEvent]:
    """Matching events in log order, at most `limit` of them; unknown types are skipped with a warning.

    Built from C-level iterators (chunks of `fetchmany`, chained), so no Python
    frame runs per event; the cursor is released when the iterator is exhausted
    or dropped.
    """
    if limit is not None and limit <= 0:
        return iter(())
    cursor = select_events(conn, match)
    chunks = iter(partial(cursor.fetchmany, CHUNK), [])
    events = chain.from_iterable(map(_ChunkDecoder(conn, match), chunks))
    return events if limit is None else islice(events, limit)
