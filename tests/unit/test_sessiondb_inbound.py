"""Host writes into inbound.db: folder creation, messages and seq parity, destinations, routing, tasks."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from events.model import Destination
from sessiondb import (
    DestinationRow,
    InboundMessage,
    InvalidInput,
    SessionFolderMissing,
    cancel_task,
    create_session_folder,
    destination_row,
    insert_message,
    pause_task,
    resume_task,
    session_dir,
    write_destinations,
    write_routing,
)
from sessiondb.schema import INBOUND_SCHEMA_VERSION
from tests.unit.sessiondb_fake_container import FakeContainer


@pytest.fixture
def session(tmp_path: Path) -> Path:
    folder = session_dir(tmp_path / "sessions", "ag", "s1")
    create_session_folder(folder)
    return folder


def _rows(session: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(session / "inbound.db") as conn:
        return conn.execute(sql).fetchall()


def _msg(message_id: str, kind: str = "chat", **fields: Any) -> InboundMessage:
    return InboundMessage(id=message_id, kind=kind, content='{"text":"x"}', **fields)


def test_create_session_folder_makes_inbound_and_folders_but_not_outbound(session: Path) -> None:
    assert (session / "inbound.db").is_file()
    assert (session / "outbox").is_dir() and (session / "inbox").is_dir()
    assert not (session / "outbound.db").exists()
    tables = {r[0] for r in _rows(session, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"messages_in", "delivered", "destinations", "session_routing"}
    assert _rows(session, "PRAGMA user_version") == [(INBOUND_SCHEMA_VERSION,)]


def test_create_session_folder_is_idempotent_and_keeps_data(session: Path) -> None:
    insert_message(session, _msg("m1"))
    create_session_folder(session)
    assert _rows(session, "SELECT id FROM messages_in") == [("m1",)]


def test_writes_to_a_missing_session_say_so(tmp_path: Path) -> None:
    with pytest.raises(SessionFolderMissing, match="not created"):
        insert_message(tmp_path / "nowhere", _msg("m1"))


def test_insert_stores_a_pending_row_with_utc_times(session: Path) -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    seq = insert_message(
        session,
        InboundMessage(
            id="m1",
            kind="chat",
            content="{}",
            timestamp=datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC),
            platform_id="chat-9",
            channel_type="terminal",
            thread_id="t1",
            process_after=when,
            on_wake=True,
        ),
    )
    assert seq == 2
    assert _rows(
        session,
        "SELECT status, tries, timestamp, process_after, platform_id, channel_type, thread_id, on_wake,"
        " status_changed FROM messages_in",
    ) == [("pending", 0, "2024-06-01 12:00:00", "2030-01-02 03:04:05", "chat-9", "terminal", "t1", 1, None)]


def test_insert_refuses_naive_times(session: Path) -> None:
    with pytest.raises(ValueError, match="naive"):
        insert_message(session, _msg("m1", process_after=datetime(2030, 1, 1)))


def test_host_seqs_are_even_and_above_every_seq_in_both_files(session: Path) -> None:
    container = FakeContainer(session)
    assert insert_message(session, _msg("m1")) == 2
    assert container.write_out("o1") == 3
    assert container.write_out("o2") == 5
    assert insert_message(session, _msg("m2")) == 6
    assert container.write_out("o3") == 7
    assert insert_message(session, _msg("m3")) == 8
    assert insert_message(session, _msg("m4")) == 10
    inbound = [r[0] for r in _rows(session, "SELECT seq FROM messages_in")]
    with sqlite3.connect(session / "outbound.db") as conn:
        outbound = [r[0] for r in conn.execute("SELECT seq FROM messages_out")]
    assert all(s % 2 == 0 for s in inbound) and all(s % 2 == 1 for s in outbound)
    assert len(set(inbound) | set(outbound)) == len(inbound) + len(outbound)


def test_reinserting_an_id_returns_its_seq_and_changes_nothing(session: Path) -> None:
    first = insert_message(session, _msg("m1"))
    insert_message(session, _msg("m2"))
    assert insert_message(session, _msg("m1", kind="other")) == first
    assert _rows(session, "SELECT id, kind FROM messages_in ORDER BY seq") == [("m1", "chat"), ("m2", "chat")]


def test_write_destinations_replaces_the_whole_map(session: Path) -> None:
    write_destinations(
        session,
        [
            DestinationRow(name="home", type="channel", channel_type="terminal", platform_id="p1", display_name="Home"),
            DestinationRow(name="helper", type="agent", agent_group_id="ag-2"),
        ],
    )
    write_destinations(session, [DestinationRow(name="parent", type="agent", agent_group_id="ag-0")])
    assert _rows(session, "SELECT name, type, agent_group_id FROM destinations") == [("parent", "agent", "ag-0")]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([DestinationRow(name="a", type="agent", agent_group_id="x")] * 2, "repeated: a"),
        ([DestinationRow(name="c", type="channel", channel_type="terminal")], "platform_id"),
        ([DestinationRow(name="g", type="agent")], "agent_group_id"),
        ([DestinationRow(name="", type="agent", agent_group_id="x")], "non-empty name"),
    ],
)
def test_bad_destination_maps_are_refused_and_the_old_map_kept(
    session: Path, rows: list[DestinationRow], problem: str
) -> None:
    write_destinations(session, [DestinationRow(name="keep", type="agent", agent_group_id="ag-1")])
    with pytest.raises(InvalidInput, match=problem):
        write_destinations(session, rows)
    assert _rows(session, "SELECT name FROM destinations") == [("keep",)]


def test_write_routing_keeps_a_single_row(session: Path) -> None:
    write_routing(session, "terminal", "p1", None)
    write_routing(session, "slack", "C1", "th-7")
    assert _rows(session, "SELECT id, channel_type, platform_id, thread_id FROM session_routing") == [
        (1, "slack", "C1", "th-7")
    ]


def test_pause_resume_cancel_a_task(session: Path) -> None:
    insert_message(session, _msg("t1", kind="task", recurrence="0 9 * * *"))
    insert_message(session, _msg("c1"))
    at = datetime(2024, 1, 1, tzinfo=UTC)
    assert pause_task(session, "t1", now=at)
    assert not pause_task(session, "t1")
    assert not pause_task(session, "c1"), "only tasks can be paused"
    assert _rows(session, "SELECT status, status_changed FROM messages_in WHERE id = 't1'") == [
        ("paused", "2024-01-01 00:00:00")
    ]
    assert resume_task(session, "t1")
    assert not resume_task(session, "t1")
    assert cancel_task(session, "t1")
    assert _rows(session, "SELECT status, recurrence FROM messages_in WHERE id = 't1'") == [("completed", None)]
    assert not cancel_task(session, "t1")


def test_cancelling_a_running_recurring_task_stops_its_recurrence_only(session: Path) -> None:
    insert_message(session, _msg("t1", kind="task", recurrence="* * * * *"))
    with sqlite3.connect(session / "inbound.db") as conn:
        conn.execute("UPDATE messages_in SET status = 'processing'")
    assert cancel_task(session, "t1")
    assert _rows(session, "SELECT status, recurrence FROM messages_in") == [("processing", None)]


def test_destination_row_maps_a_granted_destination(session: Path) -> None:
    granted = [
        Destination(
            agent_group_id="ag", name="home", display_name="Home", type="channel", channel_type="t", platform_id="p"
        ),
        Destination(agent_group_id="ag", name="kid", display_name=None, type="agent", target_agent_group_id="ag-2"),
    ]
    write_destinations(session, [destination_row(d) for d in granted])
    assert _rows(session, "SELECT * FROM destinations ORDER BY name") == [
        ("home", "Home", "channel", "t", "p", None),
        ("kid", None, "agent", None, None, "ag-2"),
    ]
