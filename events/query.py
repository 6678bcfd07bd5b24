"""The SQL behind `EventLog.read` and `hermitcrab events`: filters over the events table.

Filters that have an index use it (position is the rowid; stream and stream
prefix use the unique (stream, version) index). The session and group filters
look into payloads with `json_extract`, which scans: they serve people reading
a timeline, not the host's hot path.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from functools import partial
from itertools import chain, islice
from typing import Any

import msgspec

from events.codec import RecordedEvent, decode_known, decode_rows

_COLUMNS = "position, stream, version, type, payload, recorded_at"
_FAST_COLUMNS = "position, stream, version, payload, recorded_at"
CHUNK = 500
"""Rows per fetch on the read path: small enough to stay in CPU caches, large enough to amortize."""
_PREFIX_END = "\U0010ffff"


def _payload_field(name: str) -> str:
    """A payload field, NULL for a payload that is not JSON (so a bad row cannot break the filter)."""
    return f"json_extract(iif(json_valid(payload), payload, '{{}}'), '$.{name}')"


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a read returns; every given field must match. `since` is a UTC log time."""

    after: int = 0
    stream: str | None = None
    stream_prefix: str | None = None
    types: Sequence[str] | None = None
    since: str | None = None
    session: str | None = None
    group: str | None = None


def select_events(conn: sqlite3.Connection, match: EventFilter) -> sqlite3.Cursor:
    """A cursor over matching rows (without the type column: see `read_events`), in log order."""
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
    sql = f"SELECT {_FAST_COLUMNS} FROM events WHERE {' AND '.join(clauses)} ORDER BY position"
    return conn.execute(sql, params)


def select_after(conn: sqlite3.Connection, after: int, limit: int) -> list[Any]:
    """At most `limit` rows after a position: the chunks catch-up and replay apply."""
    return conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?", (after, limit)
    ).fetchall()


def _decode_chunk(conn: sqlite3.Connection, rows: list[Any]) -> Iterator[RecordedEvent]:
    """One fetched chunk as events; a chunk the fast path refuses is re-read with types and decoded row by row."""
    decoded = decode_known(rows)
    if decoded is not None:
        return decoded
    positions = json.dumps([row[0] for row in rows])
    return decode_rows(
        conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE position IN (SELECT value FROM json_each(?)) ORDER BY position",
            (positions,),
        )
    )


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
    events = chain.from_iterable(map(partial(_decode_chunk, conn), chunks))
    return events if limit is None else islice(events, limit)
