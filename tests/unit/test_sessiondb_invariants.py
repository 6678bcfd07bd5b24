"""The protocol's invariants, checked through the host API: one writer per file, DELETE journals,
open-write-close per operation, seq parity under concurrent host writers, old files still readable."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sessiondb import (
    DestinationRow,
    InboundMessage,
    claimed_messages,
    count_due,
    create_session_folder,
    due_outbound,
    finished_recurring,
    heartbeat_mtime,
    insert_message,
    record_delivered,
    record_failed,
    remove_heartbeat,
    reset_for_retry,
    schedule_next_recurrence,
    session_dir,
    sync_processing_acks,
    write_destinations,
    write_routing,
)
from sessiondb.connection import outbound_reader, session_lock, session_view
from sessiondb.paths import lock_path
from sessiondb.schema import INBOUND_SCHEMA_VERSION
from tests.unit.sessiondb_fake_container import FakeContainer


@pytest.fixture
def session(tmp_path: Path) -> Path:
    folder = session_dir(tmp_path / "sessions", "ag", "s1")
    create_session_folder(folder)
    return folder


def _every_host_operation(session: Path) -> None:
    now = datetime.now(UTC)
    insert_message(session, InboundMessage(id="m1", kind="chat", content="{}"))
    insert_message(session, InboundMessage(id="t1", kind="task", content="{}", recurrence="0 * * * *"))
    write_destinations(session, [DestinationRow(name="home", type="agent", agent_group_id="ag-2")])
    write_routing(session, "terminal", "p1", None)
    due_outbound(session)
    record_delivered(session, "o1", "plat-1")
    record_failed(session, "o2", "boom")
    sync_processing_acks(session)
    count_due(session)
    claimed_messages(session)
    reset_for_retry(session, "m1", now=now)
    finished_recurring(session)
    schedule_next_recurrence(session, "t1", now + timedelta(hours=1))
    heartbeat_mtime(session)


def test_the_host_cannot_write_outbound_db(session: Path) -> None:
    FakeContainer(session).write_out("o1")
    with outbound_reader(session) as out:
        assert out is not None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            out.execute("DELETE FROM messages_out")
    with session_view(session) as view, pytest.raises(sqlite3.OperationalError, match="readonly"):
        view.conn.execute("INSERT INTO ob.processing_ack VALUES ('x', 'completed', datetime('now'))")


def test_host_operations_leave_outbound_db_untouched(session: Path) -> None:
    container = FakeContainer(session)
    container.write_out("o1")
    container.write_out("o2")
    container.write_out("o3")
    container.ack("m1", "processing")
    container.ack("t1", "completed")
    before = (session / "outbound.db").read_bytes()
    stamp = os.stat(session / "outbound.db").st_mtime_ns
    _every_host_operation(session)
    assert (session / "outbound.db").read_bytes() == before
    assert os.stat(session / "outbound.db").st_mtime_ns == stamp


def test_no_connection_outlives_its_operation(session: Path) -> None:
    FakeContainer(session).write_out("o1")
    _every_host_operation(session)
    open_files = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
    assert not {str(session / "inbound.db"), str(session / "outbound.db")} & open_files


def test_both_files_stay_in_delete_journal_mode(session: Path) -> None:
    FakeContainer(session).write_out("o1")
    _every_host_operation(session)
    for name in ("inbound.db", "outbound.db"):
        with sqlite3.connect(session / name) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert (session / name).read_bytes()[18:20] == b"\x01\x01"
    assert not [p.name for p in session.iterdir() if p.name.endswith(("-wal", "-shm", "-journal"))]


def test_the_host_lock_lives_outside_the_container_mount(session: Path) -> None:
    insert_message(session, InboundMessage(id="m1", kind="chat", content="{}"))
    assert lock_path(session).exists()
    assert lock_path(session).parent == session.parent


def test_concurrent_host_writers_in_threads_keep_seqs_unique_and_even(session: Path) -> None:
    container = FakeContainer(session)
    container.start()
    errors: list[BaseException] = []

    def host_writer(worker: int) -> None:
        try:
            for n in range(25):
                insert_message(session, InboundMessage(id=f"w{worker}-{n}", kind="chat", content="{}"))
        except BaseException as exc:
            errors.append(exc)

    def container_writer() -> None:
        try:
            for n in range(25):
                container.write_out(f"o{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=host_writer, args=(w,)) for w in range(6)]
    threads.append(threading.Thread(target=container_writer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sqlite3.connect(session / "inbound.db") as conn:
        host = [r[0] for r in conn.execute("SELECT seq FROM messages_in")]
    with sqlite3.connect(session / "outbound.db") as conn:
        container_seqs = [r[0] for r in conn.execute("SELECT seq FROM messages_out")]
    assert len(host) == 150 and all(s % 2 == 0 for s in host)
    assert len(container_seqs) == 25 and all(s % 2 == 1 for s in container_seqs)
    assert len(set(host) | set(container_seqs)) == 175


REFERENCE_INBOUND = """
CREATE TABLE messages_in (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, kind TEXT NOT NULL, timestamp TEXT NOT NULL,
  status TEXT DEFAULT 'pending', process_after TEXT, recurrence TEXT, tries INTEGER DEFAULT 0, platform_id TEXT,
  channel_type TEXT, thread_id TEXT, content TEXT NOT NULL);
CREATE TABLE delivered (message_out_id TEXT PRIMARY KEY, platform_message_id TEXT,
  status TEXT NOT NULL DEFAULT 'delivered', delivered_at TEXT NOT NULL);
CREATE TABLE destinations (name TEXT PRIMARY KEY, display_name TEXT, type TEXT NOT NULL, channel_type TEXT,
  platform_id TEXT, agent_group_id TEXT);
CREATE TABLE session_routing (id INTEGER PRIMARY KEY CHECK (id = 1), channel_type TEXT, platform_id TEXT,
  thread_id TEXT);
INSERT INTO messages_in (id, seq, kind, timestamp, content) VALUES ('old-1', 2, 'chat', '2024-01-01 00:00:00', '{}');
INSERT INTO messages_in (id, seq, kind, timestamp, content, status)
  VALUES ('old-2', 4, 'chat', '2024-01-01 00:00:00', '{}', 'processing');
INSERT INTO messages_in (id, seq, kind, timestamp, content, status, recurrence)
  VALUES ('old-3', 6, 'task', '2024-01-01 00:00:00', '{}', 'completed', '0 9 * * *');
INSERT INTO delivered VALUES ('o1', 'p-1', 'delivered', '2024-01-01 00:00:00');
"""


def test_an_inbound_db_from_the_reference_schema_is_read_then_upgraded(tmp_path: Path) -> None:
    session = session_dir(tmp_path, "ag", "old")
    session.mkdir(parents=True)
    with sqlite3.connect(session / "inbound.db") as conn:
        conn.executescript(REFERENCE_INBOUND)
    container = FakeContainer(session)
    container.write_out("o1")
    container.write_out("o2")
    container.ack("old-2", "processing", at="2024-01-01 00:00:01")

    assert count_due(session) == 1
    assert [c.message_id for c in claimed_messages(session)] == ["old-2"]
    assert [m.id for m in due_outbound(session)] == ["o2"]
    assert [t.message_id for t in finished_recurring(session)] == ["old-3"]
    assert (session / "inbound.db").read_bytes()[60:64] == b"\x00\x00\x00\x00", "reading did not migrate"

    assert (
        insert_message(session, InboundMessage(id="new", kind="chat", content="{}", on_wake=True)) == 10
    )  # above o2 (9)
    assert record_failed(session, "o2", "gone")
    with sqlite3.connect(session / "inbound.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == INBOUND_SCHEMA_VERSION
        assert conn.execute("SELECT id, on_wake FROM messages_in ORDER BY seq").fetchall() == [
            ("old-1", 0),
            ("old-2", 0),
            ("old-3", 0),
            ("new", 1),
        ]
        assert conn.execute("SELECT error FROM delivered WHERE message_out_id = 'o2'").fetchone() == ("gone",)


def test_heartbeat_is_read_by_mtime_and_removed_before_a_spawn(session: Path) -> None:
    assert heartbeat_mtime(session) is None
    (session / ".heartbeat").touch()
    os.utime(session / ".heartbeat", (1_700_000_000, 1_700_000_000))
    assert heartbeat_mtime(session) == 1_700_000_000
    remove_heartbeat(session)
    remove_heartbeat(session)
    assert heartbeat_mtime(session) is None


def test_a_host_writer_waits_for_the_session_lock(session: Path) -> None:
    done = threading.Event()

    def writer() -> None:
        insert_message(session, InboundMessage(id="m1", kind="chat", content="{}"))
        done.set()

    with session_lock(session):
        thread = threading.Thread(target=writer)
        thread.start()
        assert not done.wait(0.3), "the insert ran while another host writer held the lock"
    thread.join(5)
    assert done.is_set()
