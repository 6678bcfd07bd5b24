"""Dispatching the agent's text: `<message to>` blocks, scratchpad, the single-destination shortcut."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runner.db import SessionDb
from agent_runner.dispatch import dispatch_reply, parse_reply
from agent_runner.routes import Route
from tests.unit.runner_support import add_message, create_inbound, outbound_rows, set_destinations, set_routing

FAMILY = ("family", "Family", "channel", "telegram", "-100", None)
WORK = ("work", "Work", "channel", "slack", "C1", None)
HELPER = ("helper", "helper", "agent", None, None, "ag-helper")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SessionDb]:
    create_inbound(tmp_path / "inbound.db")
    session_db = SessionDb(tmp_path / "inbound.db", tmp_path / "outbound.db").open()
    yield session_db
    session_db.close()


def sent(tmp_path: Path) -> list[tuple[str | None, str | None, str | None, str]]:
    return [(r["channel_type"], r["platform_id"], r["thread_id"], r["body"]["text"]) for r in outbound_rows(tmp_path)]


def test_parse_separates_blocks_and_strips_internal() -> None:
    parsed = parse_reply('<internal>plan</internal>hi <message to="a">one</message> <message to="b" >\ntwo\n</message>')
    assert parsed.blocks == [("a", "one"), ("b", "two")]
    assert parsed.scratchpad == "hi"


def test_blocks_go_to_their_destinations(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY, WORK, HELPER])
    text = '<message to="family">dinner at 7</message><message to="helper">summarise</message>notes'
    dispatch_reply(db, text, Route("telegram", "-100", "th-1"), "m2")
    assert sent(tmp_path) == [
        ("telegram", "-100", "th-1", "dinner at 7"),  # same channel as the origin: keeps the thread
        ("agent", "ag-helper", None, "summarise"),
    ]
    assert {r["in_reply_to"] for r in outbound_rows(tmp_path)} == {"m2"}


def test_unknown_destination_is_dropped(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY, WORK])
    dispatch_reply(db, '<message to="nobody">secret</message><message to="work">ok</message>', None, None)
    assert sent(tmp_path) == [("slack", "C1", None, "ok")]


def test_thread_not_carried_into_another_channel(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY, WORK])
    dispatch_reply(db, '<message to="work">fyi</message>', Route("telegram", "-100", "th-1"), None)
    assert sent(tmp_path) == [("slack", "C1", None, "fyi")]


def test_plain_text_returns_to_the_origin(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY, WORK])
    dispatch_reply(db, "<internal>thinking</internal>Sure thing.", Route("slack", "C1", "t9"), "m4")
    assert sent(tmp_path) == [("slack", "C1", "t9", "Sure thing.")]


def test_plain_text_without_origin_uses_session_routing(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY, WORK])
    set_routing(tmp_path, "slack", "C1", "t1")
    dispatch_reply(db, "task done", None, None)
    assert sent(tmp_path) == [("slack", "C1", "t1", "task done")]


def test_single_destination_shortcut(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY])
    dispatch_reply(db, "just text", None, None)
    assert sent(tmp_path) == [("telegram", "-100", None, "just text")]


def test_plain_text_with_several_destinations_and_no_route_is_not_sent(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY, WORK])
    assert dispatch_reply(db, "to whom?", None, None) == []
    assert sent(tmp_path) == []


def test_text_around_blocks_is_scratchpad(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY])
    dispatch_reply(
        db, 'Thinking out loud <message to="family">hello</message> more musing', Route("telegram", "-100"), None
    )
    assert sent(tmp_path) == [("telegram", "-100", None, "hello")]


def test_only_internal_sends_nothing(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY])
    dispatch_reply(db, "<internal>nothing to say</internal>", Route("telegram", "-100"), None)
    assert sent(tmp_path) == []


def test_replies_get_odd_seqs_above_both_files(db: SessionDb, tmp_path: Path) -> None:
    set_destinations(tmp_path, [FAMILY])
    add_message(tmp_path, "m1", {"text": "a"})  # seq 2
    add_message(tmp_path, "m2", {"text": "b"})  # seq 4
    dispatch_reply(db, "one", None, None)
    add_message(tmp_path, "m3", {"text": "c"})  # seq 6
    dispatch_reply(db, "two", None, None)
    dispatch_reply(db, "three", None, None)
    assert [r["seq"] for r in outbound_rows(tmp_path)] == [5, 7, 9]
