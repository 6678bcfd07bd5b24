"""Attachments from outside land in inbox/<message id>/ and nowhere else."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import pytest

from sessiondb import AttachmentError, InboundMessage, create_session_folder, insert_message, session_dir
from sessiondb.attachments import inbox_folder_name, sanitize_attachment_name


def _content(*attachments: dict[str, str]) -> str:
    return json.dumps({"text": "see attached", "attachments": list(attachments)})


def _att(name: str, data: bytes = b"payload") -> dict[str, str]:
    return {"name": name, "type": "file", "data": base64.b64encode(data).decode()}


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.fixture
def session(tmp_path: Path) -> Path:
    folder = session_dir(tmp_path / "sessions", "ag", "s1")
    create_session_folder(folder)
    return folder


def _stored_attachments(session: Path, message_id: str) -> list[dict[str, str]]:
    with sqlite3.connect(session / "inbound.db") as conn:
        row = conn.execute("SELECT content FROM messages_in WHERE id = ?", (message_id,)).fetchone()
    assert row is not None
    attachments: list[dict[str, str]] = json.loads(row[0])["attachments"]
    return attachments


def test_attachment_is_saved_and_replaced_by_its_path(session: Path) -> None:
    insert_message(session, InboundMessage(id="m1", kind="chat", content=_content(_att("photo.png", b"\x89PNG"))))
    [attachment] = _stored_attachments(session, "m1")
    assert "data" not in attachment
    assert attachment["localPath"] == "inbox/m1/photo.png"
    assert (session / "inbox" / "m1" / "photo.png").read_bytes() == b"\x89PNG"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("../../x", "x"), ("/etc/passwd", "passwd"), ("a/../../b", "b"), ("C:\\Users\\me\\doc.pdf", "doc.pdf")],
)
def test_directories_are_stripped_and_the_file_stays_inside(
    tmp_path: Path, session: Path, raw: str, expected: str
) -> None:
    before = _all_files(tmp_path) - _all_files(session)
    insert_message(session, InboundMessage(id="m1", kind="chat", content=_content(_att(raw))))
    assert sanitize_attachment_name(raw) == expected
    assert (session / "inbox" / "m1" / expected).read_bytes() == b"payload"
    assert _all_files(tmp_path) - _all_files(session) == before
    assert not Path("/etc/passwd").read_bytes().startswith(b"payload")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("..", "dot"), ("a/..", "dot"), (".bashrc", "dot"), ("a\x00b", "NUL"), ("bell\x07", "control"), ("dir/", "empty")],
)
def test_unsafe_names_refuse_the_message_and_write_nothing(session: Path, raw: str, reason: str) -> None:
    with pytest.raises(AttachmentError, match=reason):
        insert_message(session, InboundMessage(id="m1", kind="chat", content=_content(_att("ok.txt"), _att(raw))))
    assert _all_files(session / "inbox") == set()
    with sqlite3.connect(session / "inbound.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM messages_in").fetchone()[0] == 0


def test_invalid_base64_is_refused(session: Path) -> None:
    bad = {"name": "x.bin", "data": "not base64!!"}
    with pytest.raises(AttachmentError, match="base64"):
        insert_message(session, InboundMessage(id="m1", kind="chat", content=_content(bad)))


def test_planted_symlink_file_is_not_followed(tmp_path: Path, session: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"original")
    folder = session / "inbox" / "m1"
    folder.mkdir(parents=True)
    (folder / "x").symlink_to(outside)
    insert_message(session, InboundMessage(id="m1", kind="chat", content=_content(_att("x", b"evil"))))
    assert outside.read_bytes() == b"original"
    [attachment] = _stored_attachments(session, "m1")
    assert attachment["localPath"] == "inbox/m1/x-2"
    assert (folder / "x-2").read_bytes() == b"evil"
    assert not (folder / "x-2").is_symlink()


@pytest.mark.parametrize("planted", ["inbox/m1", "inbox"])
def test_planted_symlink_directory_refuses_with_a_clear_error(tmp_path: Path, session: Path, planted: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = session / planted
    if target.exists():
        target.rmdir()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(outside, target_is_directory=True)
    with pytest.raises(AttachmentError, match="symlink"):
        insert_message(session, InboundMessage(id="m1", kind="chat", content=_content(_att("x"))))
    assert list(outside.iterdir()) == []


def test_two_attachments_with_one_name_both_survive(session: Path) -> None:
    insert_message(
        session, InboundMessage(id="m1", kind="chat", content=_content(_att("a.txt", b"1"), _att("a.txt", b"2")))
    )
    folder = session / "inbox" / "m1"
    assert (folder / "a.txt").read_bytes() == b"1"
    assert (folder / "a-2.txt").read_bytes() == b"2"


def test_unsafe_message_id_gets_a_safe_unique_folder(tmp_path: Path, session: Path) -> None:
    insert_message(session, InboundMessage(id="../../escape", kind="chat", content=_content(_att("f.txt"))))
    [folder] = (session / "inbox").iterdir()
    assert folder.name == inbox_folder_name("../../escape")
    assert "/" not in folder.name and not folder.name.startswith(".")
    assert inbox_folder_name("../../escape") != inbox_folder_name("__/__/escape")
    assert not (tmp_path / "escape").exists()
    assert inbox_folder_name("6037840640:42") == "6037840640:42"


def test_a_failed_store_removes_the_files_it_wrote(session: Path) -> None:
    with sqlite3.connect(session / "inbound.db") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON messages_in BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="disk says no"):
        insert_message(session, InboundMessage(id="m1", kind="chat", content=_content(_att("a.txt"))))
    assert _all_files(session / "inbox") == set()


def test_content_without_attachment_data_is_stored_verbatim(session: Path) -> None:
    content = '{"text":"plain",  "attachments":[{"name":"x","url":"https://example.invalid/x"}]}'
    insert_message(session, InboundMessage(id="m1", kind="chat", content=content))
    with sqlite3.connect(session / "inbound.db") as conn:
        assert conn.execute("SELECT content FROM messages_in").fetchone()[0] == content
