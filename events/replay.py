"""Re-deriving the projections from the log: catch-up, full rebuild, and verification.

`verify` is the audit: it re-derives every table from the log into a private
in-memory database and compares it with the live tables, reading the live file
inside one read transaction so a running host can keep appending meanwhile.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from events.codec import EventDecodeError, decode_chunk
from events.projections import PROJECTION_TABLES, ProjectionError, apply, clear
from events.query import select_after
from events.schema import IN_STEP, connect, migrate, transaction, unmigrated

CHUNK = 10_000
MAX_DIFFERENCES_PER_TABLE = 20


def _checkpoint(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT position FROM projection_checkpoint WHERE id = 1").fetchone()[0])


def _last_position(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COALESCE(MAX(position), 0) FROM events").fetchone()[0])


def _apply_rows(target: sqlite3.Connection, source: sqlite3.Connection, after: int) -> int:
    """Apply every event of `source` after a position to `target`'s tables; returns the last position seen."""
    while rows := select_after(source, after, CHUNK):
        for recorded in decode_chunk(rows):
            apply(target, recorded.stream, recorded.type, recorded.event, recorded.recorded_at)
        after = rows[-1][0]
    return after


def apply_log(db: sqlite3.Connection) -> int:
    """Apply whatever lies after the checkpoint and mark the tables in step (in the caller's transaction).

    Reads only after the checkpoint via the rowid, so its cost is the number of
    unapplied events, never the length of the log; in step, it reads nothing.
    Returns the position the tables now reflect.
    """
    start = _checkpoint(db)
    if start == IN_STEP:
        return _last_position(db)
    end = _apply_rows(db, db, start)
    db.execute("UPDATE projection_checkpoint SET position = ? WHERE id = 1", (IN_STEP,))
    return end


def rebuild(path: Path | str) -> int:
    """Clear every projection and re-derive it from the log, in one transaction; returns the checkpoint."""
    db = connect(path)
    try:
        migrate(db)
        with transaction(db):
            clear(db)
            return apply_log(db)
    finally:
        db.close()


def _rows_by_key(db: sqlite3.Connection, table: str, columns: list[str], key: tuple[str, ...]) -> dict[Any, Any]:
    indexes = [columns.index(name) for name in key]
    rows = db.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
    return {tuple(row[i] for i in indexes): row for row in rows}


def _key_text(key: tuple[str, ...], values: tuple[Any, ...]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in zip(key, values, strict=True))


def _compare(table: str, key: tuple[str, ...], live: sqlite3.Connection, derived: sqlite3.Connection) -> list[str]:
    """Row-by-row differences of one table, by primary key and column."""
    columns = [row[1] for row in derived.execute(f"PRAGMA table_info({table})")]
    live_rows = _rows_by_key(live, table, columns, key)
    derived_rows = _rows_by_key(derived, table, columns, key)
    found: list[str] = []
    for pk in sorted(live_rows.keys() | derived_rows.keys(), key=repr):
        where = f"{table} [{_key_text(key, pk)}]"
        live_row, derived_row = live_rows.get(pk), derived_rows.get(pk)
        if live_row is None:
            found.append(f"{where}: derived from the log but missing from the live table")
        elif derived_row is None:
            found.append(f"{where}: in the live table but not derived from the log")
        elif live_row != derived_row:
            changed = (
                f"{name} live={a!r} derived={b!r}"
                for name, a, b in zip(columns, live_row, derived_row, strict=True)
                if a != b
            )
            found.append(f"{where}: {'; '.join(changed)}")
    if len(found) > MAX_DIFFERENCES_PER_TABLE:
        hidden = len(found) - MAX_DIFFERENCES_PER_TABLE
        found = [*found[:MAX_DIFFERENCES_PER_TABLE], f"{table}: and {hidden} more differences"]
    return found


def verify(path: Path | str) -> list[str]:
    """Differences between the live projections and a fresh derivation from the log (empty: they agree).

    Never writes the live file: the derivation happens in a private in-memory
    database built by the same migrations.
    """
    live = connect(path, read_only=True)
    try:
        outdated = unmigrated(live)
        if outdated is not None:
            return [f"schema: {outdated}"]
        derived = sqlite3.connect(":memory:", isolation_level=None)
        try:
            migrate(derived)
            with transaction(live, "DEFERRED"):
                return _verify_snapshot(live, derived)
        finally:
            derived.close()
    finally:
        live.close()


def _verify_snapshot(live: sqlite3.Connection, derived: sqlite3.Connection) -> list[str]:
    """The comparison itself, inside one read transaction on the live file."""
    found: list[str] = []
    checkpoint = _checkpoint(live)
    last = _last_position(live)
    if checkpoint not in (IN_STEP, last):
        found.append(f"checkpoint: the projections reflect position {checkpoint} but the log ends at {last}")
    try:
        with transaction(derived):
            _apply_rows(derived, live, 0)
    except (EventDecodeError, ProjectionError) as exc:
        return [*found, f"log: re-deriving failed: {exc}"]
    for table, key in PROJECTION_TABLES.items():
        found += _compare(table, key, live, derived)
    return found
