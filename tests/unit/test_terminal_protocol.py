"""The terminal chat's line protocol and its durable outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.terminal_outbox import Outbox, message_id
from channels.terminal_protocol import (
    MAX_LINE_BYTES,
    Ack,
    CardChoice,
    CardClosed,
    CardFrame,
    CardOptionFrame,
    ErrorFrame,
    Hello,
    ProtocolError,
    Reply,
    Say,
    Typing,
    UserLine,
    Welcome,
    decode_client,
    decode_host,
    downloads_dir,
    encode,
)

# -- frames -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        Hello(conversation="main", user="ann", client="laptop"),
        Say(text="hi\nthere", id="m1"),
        CardChoice(card_id="q-1", option_id="yes"),
        Ack(seq=7),
    ],
)
def test_client_frames_round_trip_as_one_line(frame: object) -> None:
    line = encode(frame)  # type: ignore[arg-type]
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode_client(line) == frame


@pytest.mark.parametrize(
    "frame",
    [
        Welcome(conversation="main", sender_id="ann", replay=2),
        Reply(seq=3, id="term-3", text="hello", files=["/tmp/a.txt"]),
        CardFrame(seq=4, id="term-4", card_id="c", title="Pick", options=[CardOptionFrame(id="1", label="One")]),
        Typing(on=True),
        UserLine(user="bob", text="hey"),
        CardClosed(card_id="c", option_id="1", user="bob"),
        ErrorFrame(message="no"),
    ],
)
def test_host_frames_round_trip(frame: object) -> None:
    assert decode_host(encode(frame)) == frame  # type: ignore[arg-type]


def test_the_type_field_names_the_frame() -> None:
    assert encode(Say(text="x")).startswith(b'{"type":"message"')
    assert decode_client(b'{"type":"hello","user":"ann"}\n') == Hello(user="ann", conversation="main")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"not json\n", "not a valid client frame"),
        (b'{"type":"shout","text":"x"}\n', "not a valid client frame"),
        (b'{"type":"message"}\n', "text"),
        (b'{"type":"hello","user":""}\n', "user"),
        (b'{"type":"hello","user":"ann","conversation":" padded "}\n', "conversation"),
        (b'{"type":"ack","seq":"three"}\n', "seq"),
    ],
)
def test_bad_client_lines_are_refused_with_a_reason(line: bytes, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        decode_client(line)


def test_a_host_frame_is_not_a_client_frame() -> None:
    with pytest.raises(ProtocolError):
        decode_client(encode(Typing(on=True)))


def test_oversized_lines_are_refused() -> None:
    with pytest.raises(ProtocolError, match="at most"):
        decode_client(b'{"type":"message","text":"' + b"x" * MAX_LINE_BYTES + b'"}\n')


def test_downloads_folder_is_one_safe_path_component(tmp_path: Path) -> None:
    assert downloads_dir(tmp_path, "main") == tmp_path / "downloads" / "main"
    assert downloads_dir(tmp_path, "../../etc").parent == tmp_path / "downloads"
    assert downloads_dir(tmp_path, "a b/c").name == "a_b_c"
    assert downloads_dir(tmp_path, "..").name == "conversation"


# -- outbox -------------------------------------------------------------------------------


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "terminal" / "outbox.db")


def test_a_delivery_gets_a_seq_and_an_id(outbox: Outbox) -> None:
    stored, created = outbox.add("main", "key-1", Reply(text="one"))
    assert created
    assert stored.seq == 1 and stored.id == message_id(1) == "term-1"
    assert isinstance(stored, Reply) and stored.text == "one"


def test_the_same_idempotency_key_is_one_delivery(outbox: Outbox) -> None:
    first, _ = outbox.add("main", "key-1", Reply(text="one"))
    again, created = outbox.add("main", "key-1", Reply(text="one, retried"))
    assert not created
    assert again == first
    assert outbox.find("key-1") == first
    assert outbox.find("key-2") is None
    unread, older = outbox.unread("main", "ann", 10)
    assert [frame.seq for frame in unread] == [1] and older == 0


def test_deliveries_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first = Outbox(path)
    first.add("main", "k1", Reply(text="kept"))
    first.add("main", "k2", CardFrame(card_id="c", title="Pick", options=[CardOptionFrame(id="a", label="A")]))
    first.ack("main", "ann", 1)
    first.close()
    reopened = Outbox(path)
    unread, _ = reopened.unread("main", "ann", 10)
    assert len(unread) == 1 and isinstance(unread[0], CardFrame) and unread[0].seq == 2
    _, created = reopened.add("main", "k1", Reply(text="retry after restart"))
    assert not created


def test_each_client_has_its_own_position(outbox: Outbox) -> None:
    for number in range(1, 4):
        outbox.add("main", f"k{number}", Reply(text=str(number)))
    assert outbox.ack("main", "ann", 2) == 2
    assert [f.seq for f in outbox.unread("main", "ann", 10)[0]] == [3]
    assert [f.seq for f in outbox.unread("main", "bob", 10)[0]] == [1, 2, 3]


def test_acks_never_move_back_nor_past_the_last_delivery(outbox: Outbox) -> None:
    outbox.add("main", "k1", Reply(text="1"))
    outbox.add("main", "k2", Reply(text="2"))
    assert outbox.ack("main", "ann", 2) == 2
    assert outbox.ack("main", "ann", 1) == 2
    assert outbox.ack("main", "ann", 99) == 2
    outbox.add("main", "k3", Reply(text="3"))
    assert [f.seq for f in outbox.unread("main", "ann", 10)[0]] == [3]


def test_conversations_are_kept_apart(outbox: Outbox) -> None:
    outbox.add("main", "k1", Reply(text="for main"))
    outbox.add("research", "k2", Reply(text="for research"))
    unread, _ = outbox.unread("research", "ann", 10)
    assert [f.text for f in unread if isinstance(f, Reply)] == ["for research"]


def test_replay_is_limited_to_the_newest_and_counts_the_rest(outbox: Outbox) -> None:
    for number in range(1, 8):
        outbox.add("main", f"k{number}", Reply(text=str(number)))
    unread, older = outbox.unread("main", "ann", 3)
    assert [f.seq for f in unread] == [5, 6, 7]
    assert older == 4


def test_the_first_answer_of_a_card_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    assert outbox.answer("q:1") is None
    outbox.record_answer("q:1", "yes", "ann")
    outbox.record_answer("q:1", "no", "bob")
    outbox.close()
    assert Outbox(path).answer("q:1") == ("yes", "ann")
