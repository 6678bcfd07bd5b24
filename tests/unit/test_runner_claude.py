"""The Claude provider's pieces that need no CLI: SDK options, message translation, transcript archiving."""

from __future__ import annotations

import asyncio
import collections
import json
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    RateLimitEvent,
    RateLimitInfo,
    ResultMessage,
    SystemMessage,
    TaskNotificationMessage,
    TextBlock,
)

from agent_runner.providers.base import Activity, Error, Finished, Init, ProviderContext, QueryInput, Result
from agent_runner.providers.claude import (
    AUTH_HELP,
    DISALLOWED_TOOLS,
    ClaudeProvider,
    pre_compact_hook,
    translate,
)
from agent_runner.providers.transcript import parse_transcript
from tests.unit.runner_support import create_inbound, make_parts

MCP_JSON = json.dumps({"weather": {"command": "wx-mcp", "args": ["--stdio"], "env": {"WX_KEY": "k"}}})


def result(**fields: Any) -> ResultMessage:
    base: dict[str, Any] = {
        "subtype": "success",
        "duration_ms": 1,
        "duration_api_ms": 1,
        "is_error": False,
        "num_turns": 1,
        "session_id": "s-1",
    }
    return ResultMessage(**{**base, **fields})


def test_init_carries_the_session_id() -> None:
    assert translate(SystemMessage("init", {"session_id": "abc-123"})) == Init("abc-123")


def test_result_lists_the_prompts_it_covers() -> None:
    event = translate(result(result="Hi!", user_message_uuid="u2", user_message_uuids=["u1", "u2"]))
    assert event == Result("Hi!", frozenset({"u1", "u2"}))
    assert translate(result(result=None)) == Result(None, None)


def test_error_results() -> None:
    failed = translate(result(is_error=True, subtype="error_during_execution", result="API Error: 500 overloaded"))
    assert failed == Result("Error: API Error: 500 overloaded", None)
    login = translate(result(is_error=True, result="Invalid API key · Please run /login"))
    assert login == Result(AUTH_HELP, None)


def test_authentication_retries_end_the_query_with_help() -> None:
    event = translate(SystemMessage("api_retry", {"error": "authentication_failed", "error_status": 401, "attempt": 1}))
    assert isinstance(event, Finished) and event.reply == AUTH_HELP and event.classification == "auth"
    assert "ANTHROPIC_API_KEY" in AUTH_HELP and "/login" not in AUTH_HELP


def test_other_retries_rate_limits_progress_and_activity() -> None:
    retry = translate(
        SystemMessage("api_retry", {"error": "overloaded", "error_status": 529, "attempt": 2, "max_retries": 10})
    )
    assert retry == Error("API retry 2/10: overloaded", retryable=True)
    limited = translate(RateLimitEvent(RateLimitInfo(status="rejected"), "u", "s"))
    assert isinstance(limited, Error) and limited.classification == "quota" and not limited.retryable
    assert translate(RateLimitEvent(RateLimitInfo(status="allowed"), "u", "s")) == Activity()
    note = TaskNotificationMessage(
        subtype="task_notification",
        data={},
        task_id="t",
        status="completed",
        output_file="",
        summary="tests pass",
        uuid="u",
        session_id="s",
    )
    assert translate(note).__class__.__name__ == "Progress"
    compacted = translate(SystemMessage("compact_boundary", {"compact_metadata": {"pre_tokens": 150000}}))
    assert compacted == Result("Context compacted (150,000 tokens).", frozenset())
    assert translate(AssistantMessage([TextBlock("thinking")], "m")) == Activity()


def provider(tmp_path: Path, **env: str) -> ClaudeProvider:
    create_inbound(tmp_path / "inbound.db")
    parts = make_parts(tmp_path, AGENT_PROVIDER="claude", **env)
    return ClaudeProvider(ProviderContext(parts.config, parts.toolbox))


def test_options(tmp_path: Path) -> None:
    (tmp_path / "extra" / "photos").mkdir(parents=True)
    (tmp_path / "extra" / "notes.txt").write_text("not a dir")
    claude = provider(tmp_path, HERMITCRAB_MCP_SERVERS=MCP_JSON, HERMITCRAB_MODEL="claude-x", HERMITCRAB_EFFORT="low")
    options = claude.options(
        QueryInput("hi", "t", "resume-me", "## How your replies are delivered"), collections.deque()
    )
    assert options.cwd == str(tmp_path / "agent")
    assert options.add_dirs == [str(tmp_path / "extra" / "photos")]
    assert options.resume == "resume-me"
    assert options.permission_mode == "bypassPermissions"
    assert options.setting_sources == ["project", "user"]
    assert options.system_prompt == {
        "type": "preset",
        "preset": "claude_code",
        "append": "## How your replies are delivered",
    }
    assert {"Bash", "Write", "Skill", "mcp__hermitcrab__*", "mcp__weather__*"} <= set(options.allowed_tools)
    assert {"AskUserQuestion", "EnterPlanMode", "ExitPlanMode", "EnterWorktree", "CronCreate"} <= set(DISALLOWED_TOOLS)
    assert options.disallowed_tools == list(DISALLOWED_TOOLS)
    assert options.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert options.env["ENABLE_TOOL_SEARCH"] == "false"
    assert (options.model, options.effort) == ("claude-x", "low")
    assert isinstance(options.mcp_servers, dict)
    assert options.mcp_servers["weather"] == {
        "type": "stdio",
        "command": "wx-mcp",
        "args": ["--stdio"],
        "env": {"WX_KEY": "k"},
    }
    ours = options.mcp_servers["hermitcrab"]
    assert ours["type"] == "sdk" and ours["name"] == "hermitcrab"
    assert options.hooks is not None and "PreCompact" in options.hooks


def test_bad_optional_settings_are_left_out(tmp_path: Path) -> None:
    claude = provider(tmp_path, HERMITCRAB_MCP_SERVERS="{not json", HERMITCRAB_EFFORT="extreme")
    options = claude.options(QueryInput("hi", "t", None, ""), collections.deque())
    assert isinstance(options.mcp_servers, dict) and set(options.mcp_servers) == {"hermitcrab"}
    assert options.effort is None and options.resume is None


def test_stale_session_errors() -> None:
    claude = ClaudeProvider.__new__(ClaudeProvider)
    assert claude.is_session_invalid("Claude Code returned an error result: No conversation found with session ID: x")
    assert not claude.is_session_invalid("API Error: 500")


def transcript_lines() -> str:
    entries = [
        {"type": "user", "message": {"role": "user", "content": "What is on today?"}},
        {"type": "assistant", "message": {"content": [{"type": "tool_use", "name": "Read"}]}},
        {"type": "assistant", "message": {"content": [{"type": "text", "text": "Dentist at 3."}]}},
        {"type": "summary", "summary": "x"},
    ]
    return "\n".join(json.dumps(e) for e in entries) + "\nnot json\n"


def test_transcript_parsing_keeps_only_conversation_text() -> None:
    assert [(t.role, t.text) for t in parse_transcript(transcript_lines())] == [
        ("user", "What is on today?"),
        ("assistant", "Dentist at 3."),
    ]


def test_pre_compact_hook_archives_markdown(tmp_path: Path) -> None:
    claude = provider(tmp_path)
    transcript = tmp_path / "projects" / "s-1.jsonl"
    transcript.parent.mkdir()
    transcript.write_text(transcript_lines())
    (transcript.parent / "sessions-index.json").write_text(
        json.dumps({"entries": [{"sessionId": "s-1", "summary": "Daily plans & dentist"}]})
    )
    hook = pre_compact_hook(claude.config)
    hook_input: Any = {
        "hook_event_name": "PreCompact",
        "session_id": "s-1",
        "transcript_path": str(transcript),
        "cwd": "/",
    }
    assert asyncio.run(hook(hook_input, None, {"signal": None})) == {}
    [archived] = (tmp_path / "agent" / "conversations").iterdir()
    assert archived.name.endswith("-daily-plans-dentist.md")
    text = archived.read_text()
    assert text.startswith("# Daily plans & dentist")
    assert "**User**: What is on today?" in text and "**Crab**: Dentist at 3." in text
