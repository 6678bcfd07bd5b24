"""Short-lived connections to the session files, each shaped by the protocol's invariants.

- Every operation opens, uses and closes its own connection: closing is what
  makes the other side of a container mount see fresh pages, and a long-lived
  connection would freeze its view at its first read.
- outbound.db is only ever opened with `mode=ro`, so the host cannot write it
  even by mistake; inbound.db is written only inside `inbound_writer`, which
  holds the per-session host lock, so host threads and processes take turns.
- `mmap_size=0`: mapped pages are exactly what a mount may serve stale.
- A DB file that is a symlink is refused: the folder is writable by the container,
  which could otherwise point the host at a file outside it.
- The host never opens a session DB file except through SQLite. Closing any
  other descriptor of the file drops every POSIX lock this process holds on it,
  including another thread's write lock: the container would then find the
  host's journal "hot" (its reads fail with "attempt to write a readonly
  database") or, writing, roll the host's transaction back. So checks of the
  file use lstat(), and the WAL check asks SQLite for the journal mode.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sessiondb.errors import ProtocolViolation, SessionFolderMissing
from sessiondb.paths import inbound_path, lock_path, outbound_path
from sessiondb.schema import INBOUND_EXTENSIONS, INBOUND_SCHEMA, INBOUND_SCHEMA_VERSION

BUSY_TIMEOUT_S = 5.0
_HEADER_BYTES = 20


@contextmanager
def session_lock(session: Path) -> Iterator[None]:
    """Exclusive among host writers of one session, across threads and processes (flock per open)."""
    fd = os.open(lock_path(session), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    conn = sqlite3.connect(
        f"file:{quote(str(path))}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
    )
    conn.execute("PRAGMA mmap_size=0")
    return conn


def _file_state(path: Path) -> str:
    """'missing', 'empty' (no header yet) or 'ok'; refuses symlinks. Never opens the file (see above)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "missing"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise ProtocolViolation(f"{path} is not a regular file (a symlink?); refusing to open it")
    return "empty" if info.st_size < _HEADER_BYTES else "ok"


def _refuse_wal(conn: sqlite3.Connection, path: Path, schema: str = "main") -> None:
    """WAL's shared memory does not cross a VM mount: a session DB in WAL mode breaks the protocol."""
    if conn.execute(f"PRAGMA {schema}.journal_mode").fetchone()[0] == "wal":
        raise ProtocolViolation(f"{path} is in WAL mode; session DBs must use journal_mode=DELETE")


def _checked_inbound(session: Path, *, may_be_missing: bool = False) -> Path:
    path = inbound_path(session)
    if _file_state(path) == "missing" and not may_be_missing:
        raise SessionFolderMissing(f"no inbound.db in {session}: the session folder was not created")
    return path


def _ensure_inbound_schema(conn: sqlite3.Connection) -> None:
    """Create the tables, or bring an older file up to date; a no-op (one header read) when current."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= INBOUND_SCHEMA_VERSION:
        return
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.executescript(f"BEGIN IMMEDIATE;{INBOUND_SCHEMA}")
    for ext in INBOUND_EXTENSIONS:
        if ext.column not in table_columns(conn, "main", ext.table):
            conn.execute(f"ALTER TABLE {ext.table} ADD COLUMN {ext.column} {ext.declaration}")
    conn.execute(f"PRAGMA user_version={INBOUND_SCHEMA_VERSION}")
    conn.execute("COMMIT")


@contextmanager
def inbound_writer(session: Path, *, create: bool = False) -> Iterator[sqlite3.Connection]:
    """One write transaction on inbound.db under the host lock; commits on success, rolls back on error."""
    with session_lock(session):
        path = _checked_inbound(session, may_be_missing=create)
        conn = _connect(path, "rwc" if create else "rw")
        try:
            _refuse_wal(conn, path)
            _ensure_inbound_schema(conn)
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()


@contextmanager
def outbound_reader(session: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to outbound.db, or None while the container has not created it."""
    path = outbound_path(session)
    if _file_state(path) == "missing":
        yield None
        return
    conn = _connect(path, "ro")
    try:
        _refuse_wal(conn, path)
        yield conn
    finally:
        conn.close()


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def table_columns(conn: sqlite3.Connection, schema: str, table: str) -> frozenset[str]:
    """Column names of a table (empty when the table does not exist)."""
    return frozenset(row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({table})"))


_NO_ACKS = "(SELECT NULL AS message_id, NULL AS status, NULL AS status_changed WHERE 0)"


@dataclass(frozen=True)
class SessionView:
    """A read-only look at both files through one connection.

    The attributes are SQL table expressions that hide differences between file
    versions: a missing extension column reads as its default, a missing
    outbound.db (or one without tables yet) reads as empty.
    """

    conn: sqlite3.Connection
    messages_in: str
    delivered: str
    acks: str
    messages_out: str | None


def _tolerant_source(conn: sqlite3.Connection, table: str, current: bool) -> str:
    if current:
        return table
    present = table_columns(conn, "main", table)
    missing = [ext for ext in INBOUND_EXTENSIONS if ext.table == table and ext.column not in present]
    if not missing:
        return table
    defaults = ", ".join(f"{ext.absent_value} AS {ext.column}" for ext in missing)
    return f"(SELECT *, {defaults} FROM {table})"


@contextmanager
def session_view(session: Path) -> Iterator[SessionView]:
    """inbound.db read-only, with outbound.db attached read-only as `ob` when it exists."""
    inbound = _checked_inbound(session)
    conn = _connect(inbound, "ro")
    try:
        _refuse_wal(conn, inbound)
        current = conn.execute("PRAGMA user_version").fetchone()[0] >= INBOUND_SCHEMA_VERSION
        out_tables: frozenset[str] = frozenset()
        out_path = outbound_path(session)
        if _file_state(out_path) != "missing":
            conn.execute("ATTACH DATABASE ? AS ob", (f"file:{quote(str(out_path))}?mode=ro",))
            _refuse_wal(conn, out_path, "ob")
            out_tables = frozenset(row[0] for row in conn.execute("SELECT name FROM ob.sqlite_master"))
        yield SessionView(
            conn=conn,
            messages_in=_tolerant_source(conn, "messages_in", current),
            delivered=_tolerant_source(conn, "delivered", current),
            acks="ob.processing_ack" if "processing_ack" in out_tables else _NO_ACKS,
            messages_out="ob.messages_out" if "messages_out" in out_tables else None,
        )
    finally:
        conn.close()
