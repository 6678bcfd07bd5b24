"""From an outbound row to platform calls, and the outbox files that go with it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import sessiondb
from actors.outbound_plan import Undeliverable, declared_files, parse_content, plan_deliveries, question_id
from actors.outbox_files import OutboxError, clear_staging, remove_outbox, stage_files, staging_dir
from channels.adapter import Capabilities, OutboundFile

CAPS = Capabilities(cards=True, files=True, edits=True, reactions=True, max_text_length=20)
PLAIN = Capabilities(max_text_length=20)


def _row(content: dict[str, object], kind: str = "chat", row_id: str = "out-1") -> sessiondb.OutboundMessage:
    return sessiondb.OutboundMessage(id=row_id, seq=3, kind=kind, content=json.dumps(content), timestamp=None)


def _plan(
    content: dict[str, object], kind: str = "chat", caps: Capabilities = CAPS, files: list[OutboundFile] | None = None
):  # type: ignore[no-untyped-def]
    row = _row(content, kind)
    return plan_deliveries(
        row, parse_content(row), session_id="s1", platform_id="p1", thread_id="t1", capabilities=caps, files=files or []
    )


def test_a_long_text_becomes_parts_with_stable_keys() -> None:
    parts = _plan({"text": "first paragraph\n\nsecond one here\n\nthird"})
    assert [p.text for p in parts] == ["first paragraph", "second one here", "third"]
    assert [p.idempotency_key for p in parts] == ["out-1", "out-1#2", "out-1#3"]
    assert {(p.platform_id, p.thread_id) for p in parts} == {("p1", "t1")}


def test_files_ride_on_the_first_part_or_are_named_when_the_platform_has_none() -> None:
    files = [OutboundFile(filename="a.txt", path="/tmp/a.txt")]
    parts = _plan({"text": "see file", "files": ["a.txt"]}, files=files)
    assert parts[0].files == files
    plain = _plan({"text": "see", "files": ["a.txt"]}, caps=Capabilities(max_text_length=200), files=files)
    assert plain[0].files == [] and "a.txt" in plain[0].text


def test_question_becomes_a_card_or_numbered_text() -> None:
    content = {"type": "ask_question", "questionId": "q-1", "question": "Pick?", "options": ["Red", "Blue"]}
    card = _plan(content, kind="chat-sdk")[0].card
    assert card is not None and card.card_id == "question:q-1"
    assert [(o.id, o.label) for o in card.options] == [("Red", "Red"), ("Blue", "Blue")]
    text = _plan(content, kind="chat-sdk", caps=Capabilities(max_text_length=200))[0]
    assert text.card is None and text.text == "Pick?\n\n1. Red\n2. Blue"
    assert question_id(_row(content, "chat-sdk"), content) == "q-1"
    assert question_id(_row({"text": "x"}), {"text": "x"}) is None


def test_agent_card_and_its_fallback() -> None:
    content = {
        "type": "card",
        "card": {
            "title": "Build",
            "description": "done",
            "fields": [{"label": "time", "value": "3s"}],
            "actions": [{"label": "Rerun", "value": "rerun"}],
        },
        "fallbackText": "Build done",
    }
    card = _plan(content, kind="chat-sdk")[0].card
    assert card is not None and card.card_id == "card:s1:out-1"
    assert card.body == "done\ntime: 3s" and card.options[0].id == "rerun"
    assert _plan(content, kind="chat-sdk", caps=PLAIN)[0].text == "Build done"


def test_edits_and_reactions_use_the_platform_when_it_can() -> None:
    edit = _plan({"operation": "edit", "messageId": "pm-7", "text": "fixed"})[0]
    assert (edit.edit_of, edit.text) == ("pm-7", "fixed")
    as_new = _plan({"operation": "edit", "messageId": "pm-7", "text": "fixed"}, caps=PLAIN)[0]
    assert as_new.edit_of is None and as_new.text == "fixed"
    reaction = _plan({"operation": "reaction", "messageId": "pm-7", "emoji": "thumbs_up"})[0]
    assert (reaction.reaction, reaction.edit_of) == ("thumbs_up", "pm-7")
    with pytest.raises(Undeliverable, match="reactions"):
        _plan({"operation": "reaction", "messageId": "pm-7", "emoji": "x"}, caps=PLAIN)


@pytest.mark.parametrize(
    ("content", "kind", "problem"),
    [
        ("not json", "chat", "not JSON"),
        ('["a list"]', "chat", "not a JSON object"),
        ('{"text": ""}', "chat", "nothing to show"),
        ('{"text": "x"}', "webhook", "kind 'webhook'"),
        ('{"type": "ask_question", "question": "q", "options": []}', "chat-sdk", "at least one option"),
        ('{"type": "mystery"}', "chat-sdk", "not understood"),
    ],
)
def test_rows_that_cannot_be_shown(content: str, kind: str, problem: str) -> None:
    row = sessiondb.OutboundMessage(id="o", seq=1, kind=kind, content=content, timestamp=None)
    with pytest.raises(Undeliverable, match=problem):
        plan_deliveries(
            row, parse_content(row), session_id="s", platform_id="p", thread_id=None, capabilities=CAPS, files=[]
        )


# -- outbox files -----------------------------------------------------------------------------------


@pytest.fixture
def session(tmp_path: Path) -> Path:
    folder = tmp_path / "sessions" / "g" / "s"
    sessiondb.create_session_folder(folder)
    return folder


def test_files_are_copied_out_of_the_outbox_and_the_folder_removed(session: Path, tmp_path: Path) -> None:
    (session / "outbox" / "out-1").mkdir()
    (session / "outbox" / "out-1" / "report.txt").write_text("numbers")
    assert declared_files({"files": ["report.txt", 3]}) == ["report.txt"]
    staging = staging_dir(tmp_path / "data", "s", "out-1")
    files = stage_files(session, "out-1", ["report.txt"], staging)
    assert [f.filename for f in files] == ["report.txt"]
    assert Path(files[0].path).read_text() == "numbers"
    assert Path(files[0].path).is_relative_to(staging)
    remove_outbox(session, "out-1")
    assert not (session / "outbox" / "out-1").exists()
    remove_outbox(session, "out-1")  # already gone: fine
    clear_staging(tmp_path / "data")  # what the hub does at start, for copies of an interrupted attempt
    assert not staging.exists()


def test_links_planted_by_the_container_are_refused(session: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    folder = session / "outbox" / "out-1"
    folder.mkdir()
    os.symlink(secret, folder / "leak.txt")
    staging = staging_dir(tmp_path / "data", "s", "out-1")
    with pytest.raises(OutboxError, match="symlink"):
        stage_files(session, "out-1", ["leak.txt"], staging)
    os.symlink(tmp_path, session / "outbox" / "out-2")
    with pytest.raises(OutboxError, match="real directory"):
        stage_files(session, "out-2", ["secret.txt"], staging)
    remove_outbox(session, "out-2")  # removes the link, never what it points to
    assert secret.exists() and not (session / "outbox" / "out-2").exists()


@pytest.mark.parametrize("name", ["../secret.txt", ".hidden", "a/b"])
def test_bad_names_are_refused(session: Path, tmp_path: Path, name: str) -> None:
    (session / "outbox" / "out-1").mkdir()
    with pytest.raises(OutboxError, match="refused"):
        stage_files(session, "out-1", [name], staging_dir(tmp_path, "s", "out-1"))


def test_missing_file_and_hostile_ids_are_refused(session: Path, tmp_path: Path) -> None:
    (session / "outbox" / "out-1").mkdir()
    with pytest.raises(OutboxError, match="cannot be read"):
        stage_files(session, "out-1", ["absent.txt"], staging_dir(tmp_path, "s", "out-1"))
    with pytest.raises(OutboxError, match="message id"):
        stage_files(session, "../..", ["x"], staging_dir(tmp_path, "s", "../.."))
    assert staging_dir(tmp_path, "s", "../../etc").parent == tmp_path / "delivery-staging"
