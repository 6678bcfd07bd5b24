"""Turning inbound rows into the prompt text the agent reads.

Chat messages become `<message>` elements carrying the sender, the local time
and `from="<destination name>"` (found by reverse lookup in the destination
map), so the agent can answer with `<message to="...">` using the same name.
Routing fields never reach the prompt: the agent sees names, not platform ids.
Several chat messages in a row are wrapped in one `<messages>` batch; tasks,
webhooks and system notes each have their own plain form.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import tzinfo
from html import escape
from typing import Any

from agent_runner.clock import local_label
from agent_runner.commands import Category, categorize
from agent_runner.db import InboundMessage
from agent_runner.routes import Destination

REPLY_PREVIEW_CHARS = 100


def format_batch(
    messages: Sequence[InboundMessage],
    destinations: Sequence[Destination],
    zone: tzinfo,
    *,
    raw_commands: bool = False,
    attachments_root: str = "/workspace",
) -> str:
    """The prompt for `messages`, in their order.

    With `raw_commands`, a slash command (admin or passthrough) is passed as its
    bare text so a provider that handles commands natively can dispatch it.
    """
    parts: list[str] = []
    chats: list[str] = []

    def flush_chats() -> None:
        if len(chats) == 1:
            parts.append(chats[0])
        elif chats:
            parts.append("<messages>\n" + "\n".join(chats) + "\n</messages>")
        chats.clear()

    for message in messages:
        if message.is_chat:
            info = categorize(message)
            if raw_commands and info.category in (Category.ADMIN, Category.PASSTHROUGH):
                flush_chats()
                parts.append(info.text)
            else:
                chats.append(format_chat(message, destinations, zone, attachments_root))
            continue
        flush_chats()
        parts.append(format_other(message))
    flush_chats()
    return "\n\n".join(parts)


def format_chat(
    message: InboundMessage, destinations: Sequence[Destination], zone: tzinfo, attachments_root: str = "/workspace"
) -> str:
    content = message.payload
    author = content.get("author")
    if not isinstance(author, dict):
        author = {}
    sender = content.get("sender") or author.get("fullName") or author.get("userName") or "Unknown"
    attributes = []
    if message.seq is not None:
        attributes.append(f'id="{message.seq}"')
    origin = message.route
    if origin is not None:
        name = next((d.name for d in destinations if d.matches(origin)), "unknown")
        attributes.append(f'from="{_attr(name)}"')
    attributes.append(f'sender="{_attr(str(sender))}"')
    attributes.append(f'time="{local_label(message.timestamp, zone)}"')
    body = (
        _reply_context(content.get("replyTo"))
        + escape(str(content.get("text") or ""), quote=False)
        + _attachments(content.get("attachments"), attachments_root)
    )
    return f"<message {' '.join(attributes)}>{body}</message>"


def format_other(message: InboundMessage) -> str:
    content = message.payload
    if message.kind == "task":
        lines = ["[SCHEDULED TASK]"]
        if content.get("scriptOutput") is not None:
            lines += ["", "Script output:", json.dumps(content["scriptOutput"], indent=2, ensure_ascii=False)]
        lines += ["", "Instructions:", str(content.get("prompt") or content.get("text") or "")]
        return "\n".join(lines)
    if message.kind == "webhook":
        source = content.get("source") or "unknown"
        event = content.get("event") or "unknown"
        payload = content.get("payload", content)
        return f"[WEBHOOK: {source}/{event}]\n\n{json.dumps(payload, indent=2, ensure_ascii=False)}"
    if message.kind == "system":
        return format_system(content)
    return f"[{message.kind.upper()}]\n\n{json.dumps(content, indent=2, ensure_ascii=False)}"


def format_system(content: dict[str, Any]) -> str:
    if content.get("type") == "question_response":
        return (
            "[SYSTEM] An answer arrived for a question that is no longer waiting "
            f"(id {content.get('questionId')}): {content.get('selectedOption')}"
        )
    if isinstance(content.get("text"), str):
        return f"[SYSTEM] {content['text']}"
    if "action" in content:
        return (
            "[SYSTEM RESPONSE]\n\n"
            f"Action: {content.get('action')}\n"
            f"Status: {content.get('status', 'unknown')}\n"
            f"Result: {json.dumps(content.get('result'), ensure_ascii=False)}"
        )
    return f"[SYSTEM]\n\n{json.dumps(content, indent=2, ensure_ascii=False)}"


def _attr(value: str) -> str:
    return escape(value, quote=True)


def _reply_context(reply_to: Any) -> str:
    if not isinstance(reply_to, dict):
        return ""
    text = str(reply_to.get("text") or "")
    preview = text if len(text) <= REPLY_PREVIEW_CHARS else text[:REPLY_PREVIEW_CHARS] + "…"
    sender = str(reply_to.get("sender") or "Unknown")
    return f'\n<reply-to sender="{_attr(sender)}">{escape(preview, quote=False)}</reply-to>\n'


def _attachments(attachments: Any, root: str) -> str:
    if not isinstance(attachments, list) or not attachments:
        return ""
    lines = []
    for item in attachments:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name") or item.get("filename") or "attachment")
        kind = str(item.get("type") or "file")
        local = item.get("localPath")
        if local:
            path = local if str(local).startswith("/") else f"{root.rstrip('/')}/{local}"
            lines.append(f"[{kind}: {name} — saved to {path}]")
        elif item.get("url"):
            lines.append(f"[{kind}: {name} ({item['url']})]")
        else:
            lines.append(f"[{kind}: {name}]")
    return "\n" + escape("\n".join(lines), quote=False) if lines else ""
