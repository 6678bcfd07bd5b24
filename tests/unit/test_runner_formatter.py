"""The prompt the agent reads: XML for chats, plain forms for the rest, no platform ids."""

from __future__ import annotations

import json
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from agent_runner.db import InboundMessage
from agent_runner.formatter import format_batch
from agent_runner.routes import Destination

AUCKLAND = ZoneInfo("Pacific/Auckland")
FAMILY = Destination("family", "Family group", "channel", "telegram", "-100123")
HELPER = Destination("helper", "helper", "agent", agent_group_id="ag-helper")


def message(
    content: Mapping[str, object] | str,
    *,
    kind: str = "chat",
    seq: int | None = 2,
    route: tuple[str, str] | None = ("telegram", "-100123"),
    timestamp: str = "2026-01-15 20:30:00",
) -> InboundMessage:
    return InboundMessage(
        id=f"m{seq}",
        seq=seq,
        kind=kind,
        timestamp=timestamp,
        status="pending",
        process_after=None,
        recurrence=None,
        tries=0,
        platform_id=route[1] if route else None,
        channel_type=route[0] if route else None,
        thread_id=None,
        content=content if isinstance(content, str) else json.dumps(dict(content)),
    )


def test_single_chat_names_origin_sender_and_local_time() -> None:
    prompt = format_batch([message({"text": "hi <there> & you", "sender": "Ana"})], [FAMILY], AUCKLAND)
    # 20:30 UTC in January is 09:30 the next day in Auckland (UTC+13).
    assert prompt == (
        '<message id="2" from="family" sender="Ana" time="2026-01-16 09:30">hi &lt;there&gt; &amp; you</message>'
    )


def test_platform_ids_never_reach_the_prompt() -> None:
    prompt = format_batch([message({"text": "x"}, route=("slack", "C-SECRET-42"))], [FAMILY], AUCKLAND)
    assert "C-SECRET-42" not in prompt
    assert "slack" not in prompt
    assert 'from="unknown"' in prompt


def test_agent_origin_found_by_agent_group_id() -> None:
    prompt = format_batch(
        [message({"text": "done", "sender": "helper"}, route=("agent", "ag-helper"))], [HELPER], AUCKLAND
    )
    assert 'from="helper"' in prompt


def test_several_chats_are_one_messages_batch_in_order() -> None:
    prompt = format_batch([message({"text": "one"}, seq=2), message({"text": "two"}, seq=4)], [FAMILY], AUCKLAND)
    assert prompt.startswith('<messages>\n<message id="2"')
    assert prompt.endswith("two</message>\n</messages>")
    assert prompt.index(">one<") < prompt.index(">two<")


def test_author_fields_reply_context_and_attachments() -> None:
    content = {
        "text": "look",
        "author": {"userId": "u9", "fullName": "Bo Li"},
        "replyTo": {"sender": "Ana", "text": "x" * 150},
        "attachments": [
            {"name": "a.png", "type": "image", "localPath": "inbox/m2/a.png"},
            {"name": "doc", "url": "https://e/x"},
        ],
    }
    prompt = format_batch([message(content)], [FAMILY], AUCKLAND)
    assert 'sender="Bo Li"' in prompt
    assert '<reply-to sender="Ana">' + "x" * 100 + "…</reply-to>" in prompt
    assert "[image: a.png — saved to /workspace/inbox/m2/a.png]" in prompt
    assert "[file: doc (https://e/x)]" in prompt


def test_plain_text_content_is_read_as_text() -> None:
    assert ">not json<" in format_batch([message("not json")], [], AUCKLAND)


def test_task_webhook_and_system_forms() -> None:
    task = message({"prompt": "water the plants", "scriptOutput": {"rain": False}}, kind="task", seq=4)
    hook = message({"source": "github", "event": "push", "payload": {"ref": "main"}}, kind="webhook", seq=6)
    note = message({"text": "delivery to family failed 3 times"}, kind="system", seq=8)
    prompt = format_batch([task, hook, note], [FAMILY], AUCKLAND)
    assert '[SCHEDULED TASK]\n\nScript output:\n{\n  "rain": false\n}\n\nInstructions:\nwater the plants' in prompt
    assert '[WEBHOOK: github/push]\n\n{\n  "ref": "main"\n}' in prompt
    assert "[SYSTEM] delivery to family failed 3 times" in prompt


def test_raw_commands_only_when_the_provider_handles_them() -> None:
    batch = [
        message({"text": "before"}, seq=2),
        message({"text": "/compact now"}, seq=4),
        message({"text": "after"}, seq=6),
    ]
    raw = format_batch(batch, [FAMILY], AUCKLAND, raw_commands=True)
    parts = raw.split("\n\n")
    assert parts[1] == "/compact now"
    assert parts[0].endswith("before</message>") and parts[2].endswith("after</message>")
    wrapped = format_batch(batch, [FAMILY], AUCKLAND, raw_commands=False)
    assert wrapped.startswith("<messages>") and ">/compact now</message>" in wrapped
