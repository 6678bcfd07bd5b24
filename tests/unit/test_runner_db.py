"""The container's side of the session DBs: schema, claims, locks."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runner.db import SessionDb
from tests.unit.runner_support import add_message, chat, create_session


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SessionDb]:
    create_session(tmp_path)
    session_db = SessionDb(tmp_path / "inbound.db", tmp_path / "outbound.db").open()
    yield session_db
    session_db.close()


def test_outbound_schema_and_journal_mode(db: SessionDb, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "outbound.db")
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"messages_out", "processing_ack", "session_state"}
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()
    SessionDb(tmp_path / "inbound.db", tmp_path / "outbound.db").open().close()  # reopening is harmless


def test_pending_skips_acked_rows_and_forgotten_acks_come_back(db: SessionDb, tmp_path: Path) -> None:
    for message_id in ("a", "b", "c"):
        add_message(tmp_path, message_id, chat(message_id))
    db.mark(["a"], "completed")
    db.mark(iter(["b"]), "processing")
    assert [m.id for m in db.pending_messages(include_on_wake=True)] == ["c"]
    db.forget_acks(["b"])
    assert [m.id for m in db.pending_messages(include_on_wake=True)] == ["b", "c"]


def test_acks_written_by_a_predecessor_are_honoured(db: SessionDb, tmp_path: Path) -> None:
    add_message(tmp_path, "done-before", chat("x"))
    add_message(tmp_path, "held-before", chat("y"))
    previous = SessionDb(tmp_path / "inbound.db", tmp_path / "outbound.db").open()
    previous.mark(["done-before"], "completed")
    previous.mark(["held-before"], "processing")
    previous.close()
    assert db.pending_messages(include_on_wake=True) == []
    assert db.clear_stale_processing() == 1
    assert [m.id for m in db.pending_messages(include_on_wake=True)] == ["held-before"]


def test_on_wake_rows_need_the_flag(db: SessionDb, tmp_path: Path) -> None:
    add_message(tmp_path, "note", chat("resume"), on_wake=True)
    assert db.pending_messages(include_on_wake=False) == []
    [note] = db.pending_messages(include_on_wake=True)
    assert note.on_wake


def test_commit_waits_for_a_reader_and_then_goes_through(db: SessionDb, tmp_path: Path) -> None:
    reader = sqlite3.connect(tmp_path / "outbound.db", isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM messages_out").fetchone()  # holds a shared lock
    threading.Timer(0.3, lambda: reader.execute("COMMIT")).start()
    started = time.monotonic()
    ref = db.write_message(kind="chat", content={"text": "hi"}, route=None)
    waited = time.monotonic() - started
    assert 0.25 < waited < 0.5
    assert ref.seq % 2 == 1
    reader.close()


def test_reads_see_one_state_of_inbound(db: SessionDb, tmp_path: Path) -> None:
    add_message(tmp_path, "m1", chat("x"))
    with db.read_inbound() as conn:
        first = conn.execute("SELECT count(*) FROM messages_in").fetchone()[0]
        writer = threading.Thread(target=add_message, args=(tmp_path, "m2", chat("y")))
        writer.start()
        writer.join(0.2)
        assert writer.is_alive()  # the host waits for the read to finish
        assert conn.execute("SELECT count(*) FROM messages_in").fetchone()[0] == first
    writer.join(5)
    assert [m.id for m in db.pending_messages(include_on_wake=False)] == ["m1", "m2"]
