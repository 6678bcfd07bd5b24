"""The central database's schema: the events table and the projection tables, as versioned migrations.

Each migration runs once, inside the transaction that records it in
`migrations`, so a crash mid-migration leaves the previous version intact and
two processes opening the same file never apply one twice. A later migration
that changes what a projection holds clears the projection tables and sets the
checkpoint back to 0; the catch-up that `EventLog.open` runs then re-derives
them from the log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, get_args

import sqlite_utils

from events.clock import plain, recorded_now

BUSY_TIMEOUT_MS = 10_000
IN_STEP = -1
"""The checkpoint's value while the projections reflect the whole log: the normal state, since every
append applies its events in its own transaction. Only a migration that resets the tables sets a
position (0), after which `EventLog.open` applies the rest and puts IN_STEP back. Appends therefore
never write the checkpoint row: one page less to fsync per durable append."""
WRITER_CACHE_KIB = 64 * 1024
"""The writer's page cache: appends touch the tail of the (stream, version) index for every
stream they write, and keeping those pages cached measured ~20% faster batches at 1M events."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite_utils.Database], None]


def _refuse_changes_to_events(db: sqlite_utils.Database) -> None:
    for action in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER events_refuse_{action.lower()} BEFORE {action} ON events "
            f"BEGIN SELECT RAISE(ABORT, 'the event log is append-only: {action} is refused'); END"
        )


def _create_event_log(db: sqlite_utils.Database) -> None:
    """The append-only log: position is the rowid, so reads after a position are index seeks."""
    db.table("events").create(
        {"position": int, "stream": str, "version": int, "type": str, "payload": str, "recorded_at": str},
        pk="position",
        not_null={"stream", "version", "type", "payload", "recorded_at"},
    )
    db.table("events").create_index(["stream", "version"], index_name="events_stream_version", unique=True)
    _refuse_changes_to_events(db)
    db.table("projection_checkpoint").create({"id": int, "position": int}, pk="id", not_null={"position"})
    db.table("projection_checkpoint").insert({"id": 1, "position": 0})


def _create_projections(db: sqlite_utils.Database) -> None:
    """The reference's central tables (same columns) plus the small ones the host needs."""
    db.table("agent_groups").create(
        {
            "id": str,
            "name": str,
            "folder": str,
            "is_admin": int,
            "agent_provider": str,
            "container_config": str,
            "created_at": str,
            "initialized": int,
            "init_steps": str,
            "parent_group_id": str,
        },
        pk="id",
        not_null={"name", "folder", "created_at", "initialized", "init_steps"},
        defaults={"is_admin": 0, "initialized": 0, "init_steps": "[]"},
    )
    db.table("agent_groups").create_index(["folder"], index_name="agent_groups_folder", unique=True)
    db.table("messaging_groups").create(
        {
            "id": str,
            "channel_type": str,
            "platform_id": str,
            "name": str,
            "is_group": int,
            "admin_user_id": str,
            "created_at": str,
        },
        pk="id",
        not_null={"channel_type", "platform_id", "created_at"},
        defaults={"is_group": 0},
    )
    db.table("messaging_groups").create_index(
        ["channel_type", "platform_id"], index_name="messaging_groups_platform", unique=True
    )
    db.table("messaging_group_agents").create(
        {
            "id": str,
            "messaging_group_id": str,
            "agent_group_id": str,
            "trigger_rules": str,
            "response_scope": str,
            "session_mode": str,
            "priority": int,
            "created_at": str,
        },
        pk="id",
        not_null={"messaging_group_id", "agent_group_id", "created_at"},
        defaults={"response_scope": "all", "session_mode": "shared", "priority": 0},
    )
    db.table("messaging_group_agents").create_index(
        ["messaging_group_id", "agent_group_id"], index_name="messaging_group_agents_pair", unique=True
    )
    db.table("messaging_group_agents").create_index(["agent_group_id"], index_name="messaging_group_agents_group")
    db.table("agent_destinations").create(
        {
            "agent_group_id": str,
            "local_name": str,
            "target_type": str,
            "target_id": str,
            "display_name": str,
            "channel_type": str,
            "platform_id": str,
            "created_at": str,
        },
        pk=("agent_group_id", "local_name"),
        not_null={"target_type", "created_at"},
    )
    db.table("agent_destinations").create_index(["target_type", "target_id"], index_name="agent_destinations_target")
    db.table("sessions").create(
        {
            "id": str,
            "agent_group_id": str,
            "messaging_group_id": str,
            "thread_id": str,
            "agent_provider": str,
            "status": str,
            "container_status": str,
            "last_active": str,
            "created_at": str,
            "container_id": str,
            "session_mode": str,
        },
        pk="id",
        not_null={"agent_group_id", "created_at"},
        defaults={"status": "active", "container_status": "stopped", "session_mode": "shared"},
    )
    db.table("sessions").create_index(["agent_group_id"], index_name="sessions_agent_group")
    db.table("sessions").create_index(["messaging_group_id", "thread_id"], index_name="sessions_lookup")
    db.table("pending_questions").create(
        {
            "question_id": str,
            "session_id": str,
            "message_out_id": str,
            "platform_id": str,
            "channel_type": str,
            "thread_id": str,
            "created_at": str,
        },
        pk="question_id",
        not_null={"session_id", "message_out_id", "created_at"},
    )
    db.table("pending_approvals").create(
        {
            "approval_id": str,
            "session_id": str,
            "request_id": str,
            "action": str,
            "payload": str,
            "created_at": str,
            "agent_group_id": str,
            "channel_type": str,
            "platform_id": str,
            "platform_message_id": str,
            "expires_at": str,
            "status": str,
        },
        pk="approval_id",
        not_null={"request_id", "action", "payload", "created_at", "status"},
        defaults={"status": "pending"},
    )
    db.table("pending_approvals").create_index(["action", "status"], index_name="pending_approvals_action_status")
    db.table("delivery_attempts").create(
        {"session_id": str, "message_out_id": str, "attempts": int, "last_error": str, "final": int, "updated_at": str},
        pk=("session_id", "message_out_id"),
        not_null={"attempts", "final", "updated_at"},
        defaults={"final": 0},
    )
    db.table("delivery_attempts").create_index(["message_out_id"], index_name="delivery_attempts_message")
    db.table("tasks").create(
        {
            "task_id": str,
            "session_id": str,
            "status": str,
            "process_after": str,
            "recurrence": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="task_id",
        not_null={"session_id", "status", "created_at", "updated_at"},
    )
    db.table("tasks").create_index(["session_id"], index_name="tasks_session")


def _create_usage(db: sqlite_utils.Database) -> None:
    """Token sums per agent group (new with `usage.recorded`, so older logs have nothing to re-derive)."""
    db.table("usage").create(
        {
            "agent_group_id": str,
            "requests": int,
            "input_tokens": int,
            "output_tokens": int,
            "cache_read_tokens": int,
            "cache_creation_tokens": int,
            "updated_at": str,
        },
        pk="agent_group_id",
        not_null={
            "requests",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_creation_tokens",
            "updated_at",
        },
    )


_RECORD_TABLE = """
CREATE TABLE events_records (
    position INTEGER PRIMARY KEY,
    record TEXT NOT NULL CHECK (json_extract(record, '$[0]') = position),
    stream TEXT NOT NULL AS (json_extract(record, '$[1]')) VIRTUAL,
    version INTEGER NOT NULL AS (json_extract(record, '$[2]')) VIRTUAL,
    type TEXT AS (json_extract(record, '$[3]')) VIRTUAL,
    recorded_at TEXT AS (json_extract(record, '$[4]')) VIRTUAL,
    payload TEXT AS (json_extract(record, '$[5]')) VIRTUAL
)"""


def _store_whole_records(db: sqlite_utils.Database) -> None:
    """Each event as one JSON record `[position, stream, version, type, recorded_at, payload]`.

    Why: a read then fetches one column per event and decodes it in one C call,
    which is what lets replay pass a million events a second (five columns cost
    Python's sqlite3 a third more per row). The other columns stay as virtual
    generated columns, so queries, the (stream, version) index and the
    append-only triggers work as before, and nothing is stored twice. The
    database itself refuses a record that is not JSON, has no stream or
    version, or whose position disagrees with its row; the rest of a record is
    checked where it is decoded (an error there names the position).
    """
    db.execute(_RECORD_TABLE)
    db.execute(
        "INSERT INTO events_records (position, record)"
        " SELECT position, json_array(position, stream, version, type, recorded_at, json(payload))"
        " FROM events ORDER BY position"
    )
    db.execute("DROP TABLE events")
    db.execute("ALTER TABLE events_records RENAME TO events")
    db.table("events").create_index(["stream", "version"], index_name="events_stream_version", unique=True)
    _refuse_changes_to_events(db)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "event-log", _create_event_log),
    Migration(2, "projections", _create_projections),
    Migration(3, "usage", _create_usage),
    Migration(4, "event-records", _store_whole_records),
)
LATEST_VERSION = MIGRATIONS[-1].version


def connect(path: Path | str, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection with the log's settings: WAL, fsync on every commit, explicit transactions.

    `synchronous=FULL` makes an acknowledged append survive power loss; WAL is
    safe here because the central DB is host-local, never shared over a mount.
    A read-only connection refuses writes and fails on a missing file instead
    of creating an empty one.
    """
    target = f"{Path(path).resolve().as_uri()}?mode=ro" if read_only else str(path)
    conn = sqlite3.connect(target, uri=read_only, isolation_level=None, check_same_thread=False, cached_statements=256)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not read_only:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
    return conn


TransactionMode = Literal["DEFERRED", "IMMEDIATE", "EXCLUSIVE"]
_BEGIN: dict[TransactionMode, str] = {mode: f"BEGIN {mode}" for mode in get_args(TransactionMode)}
"""One string object per statement: the connection's statement cache then finds it by a stored hash."""


class _Transaction:
    """The context manager behind `transaction`: a class, because a generator-based one measured a
    noticeable share of a single durable append (~1.3 µs of setup against ~0.5 µs for this)."""

    __slots__ = ("_begin", "_conn")

    def __init__(self, conn: sqlite3.Connection, mode: TransactionMode) -> None:
        self._conn = conn
        self._begin = _BEGIN[mode]

    def __enter__(self) -> None:
        self._conn.execute(self._begin)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise
            return
        self._roll_back()

    def _roll_back(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")


def transaction(conn: sqlite3.Connection, mode: TransactionMode = "IMMEDIATE") -> _Transaction:
    """A transaction committed at the end of the block and rolled back on any error.

    IMMEDIATE (the default) takes the write lock up front, so a writer never
    fails half-way through with "database is locked"; DEFERRED suits reads that
    need one consistent snapshot.
    """
    return _Transaction(conn, mode)


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    """The migration versions this file has recorded (none for a new file)."""
    db = sqlite_utils.Database(conn)
    if not db.table("migrations").exists():
        return set()
    return {row[0] for row in conn.execute("SELECT version FROM migrations")}


def unmigrated(conn: sqlite3.Connection) -> str | None:
    """Why a reader that never migrates cannot read this file yet (None: it is current)."""
    versions = applied_versions(conn)
    if LATEST_VERSION in versions:
        return None
    return (
        f"the file is at migration {max(versions, default=0)} but this version expects {LATEST_VERSION};"
        " starting the host migrates it"
    )


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply every migration this file lacks, each exactly once; returns the versions applied."""
    if applied_versions(conn) >= {m.version for m in MIGRATIONS}:
        return []
    db = sqlite_utils.Database(conn)
    with transaction(conn):
        if not db.table("migrations").exists():
            db.table("migrations").create(
                {"version": int, "name": str, "applied_at": str}, pk="version", not_null={"name", "applied_at"}
            )
        done = applied_versions(conn)
        applied = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            migration.apply(db)
            db.table("migrations").insert(
                {"version": migration.version, "name": migration.name, "applied_at": plain(recorded_now())}
            )
            applied.append(migration.version)
    return applied
