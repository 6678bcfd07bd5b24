"""Writing event records past the API: what another version of hermitcrab, or a hand edit, might leave in a log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from events.schema import IN_STEP, MIGRATIONS, connect

OLD_TIME = "2026-01-01 00:00:00.000000"


def insert_raw_event(
    conn: sqlite3.Connection, stream: str, version: int, type_: str, payload: str, recorded_at: str = OLD_TIME
) -> int:
    """Store one record after the log's end, its payload given as JSON text; returns its position.

    Nothing applied it, so the checkpoint (if the tables were in step) is set
    just before it, as a migration would: the next `EventLog.open` applies it.
    """
    position: int = conn.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM events").fetchone()[0]
    conn.execute(
        "INSERT INTO events (position, record) VALUES (?, json_array(?, ?, ?, ?, ?, json(?)))",
        (position, position, stream, version, type_, recorded_at, payload),
    )
    conn.execute("UPDATE projection_checkpoint SET position = ? WHERE position = ?", (position - 1, IN_STEP))
    return position


_OLD_HISTORY: list[tuple[str, int, str, str]] = [
    ("group:g", 1, "group.created", '{"type":"group.created","group_id":"g","name":"G","folder":"g","schema":1}'),
    ("session:s", 1, "session.created", '{"type":"session.created","session_id":"s","agent_group_id":"g"}'),
    ("future:1", 1, "future.thing", '{"type":"future.thing","whatever":[1,2]}'),
    ("session:s", 2, "container.idle", '{"type":"container.idle","session_id":"s","container_id":"c"}'),
]


def database_of_version_3(path: Path) -> None:
    """The file as the first three migrations left it, with events in the old columns and nothing applied yet."""
    conn = connect(path)
    db = sqlite_utils.Database(conn)
    db.table("migrations").create({"version": int, "name": str, "applied_at": str}, pk="version")
    for migration in MIGRATIONS[:3]:
        migration.apply(db)
        db.table("migrations").insert({"version": migration.version, "name": migration.name, "applied_at": "old"})
    conn.executemany(
        "INSERT INTO events (stream, version, type, payload, recorded_at) VALUES (?, ?, ?, ?, ?)",
        [(*row, f"2026-01-0{n} 00:00:00.000000") for n, row in enumerate(_OLD_HISTORY, start=1)],
    )
    conn.close()
