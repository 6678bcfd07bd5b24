"""Tools that put messages in front of people: send_message, send_file, edit_message, add_reaction, send_card."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent_runner.db import new_id
from agent_runner.tools.base import (
    ToolContext,
    ToolInputError,
    ToolResult,
    ToolSpec,
    int_arg,
    ok,
    optional_text,
    schema,
    text_arg,
)
from agent_runner.tools.targets import resolve_target

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_CARD_BYTES = 16 * 1024
TO_PROPERTY = {
    "type": "string",
    "description": "Destination name. Omit to reply in the current conversation.",
}


def send_message(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    text = text_arg(args, "text")
    route, label = resolve_target(ctx, optional_text(args, "to", max_len=200))
    ref = ctx.db.write_message(kind="chat", content={"text": text}, route=route)
    return ok(f"Message sent to {label} (id: {ref.seq})")


def send_file(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    source = _readable_file(ctx, text_arg(args, "path", max_len=4096))
    filename = _file_name(optional_text(args, "filename", max_len=255) or source.name)
    caption = optional_text(args, "text") or ""
    route, label = resolve_target(ctx, optional_text(args, "to", max_len=200))
    message_id = new_id("out")
    folder = ctx.config.outbox_dir / message_id
    folder.mkdir(parents=True)
    try:
        shutil.copyfile(source, folder / filename)
        ref = ctx.db.write_message(
            kind="chat", content={"text": caption, "files": [filename]}, route=route, message_id=message_id
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return ok(f"File {filename} sent to {label} (id: {ref.seq})")


def edit_message(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    seq = int_arg(args, "messageId")
    text = text_arg(args, "text")
    row = ctx.db.outbound_by_seq(seq)
    if row is None or row.kind == "system":
        if ctx.db.inbound_by_seq(seq) is not None:
            raise ToolInputError(f"message #{seq} was not sent by you; only your own messages can be edited")
        raise ToolInputError(f"there is no message #{seq}")
    if row.route is None:
        raise ToolInputError(f"message #{seq} has no destination to edit it in")
    platform_id = ctx.db.delivered_platform_id(row.id) or row.id
    ctx.db.write_message(
        kind="chat",
        content={"operation": "edit", "messageId": platform_id, "targetId": row.id, "targetSeq": seq, "text": text},
        route=row.route,
    )
    return ok(f"Edit of message #{seq} queued")


def add_reaction(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    seq = int_arg(args, "messageId")
    emoji = text_arg(args, "emoji", max_len=64).strip()
    if any(ch.isspace() for ch in emoji):
        raise ToolInputError("emoji must be one emoji or an emoji name such as thumbs_up, without spaces")
    inbound = ctx.db.inbound_by_seq(seq)
    if inbound is not None:
        route, target_id, platform_id = inbound.route, inbound.id, inbound.id
    else:
        row = ctx.db.outbound_by_seq(seq)
        if row is None or row.kind == "system":
            raise ToolInputError(f"there is no message #{seq}")
        route, target_id = row.route, row.id
        platform_id = ctx.db.delivered_platform_id(row.id) or row.id
    if route is None:
        raise ToolInputError(f"message #{seq} has no conversation to react in")
    ctx.db.write_message(
        kind="chat",
        content={
            "operation": "reaction",
            "messageId": platform_id,
            "targetId": target_id,
            "targetSeq": seq,
            "emoji": emoji,
        },
        route=route,
    )
    return ok(f"Reaction {emoji} on message #{seq} queued")


def send_card(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    card = args.get("card")
    if not isinstance(card, dict):
        raise ToolInputError("card must be an object with at least a 'title'")
    title = card.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ToolInputError("card.title must be a non-empty string")
    if len(json.dumps(card)) > MAX_CARD_BYTES:
        raise ToolInputError(f"card is too large (at most {MAX_CARD_BYTES} bytes of JSON)")
    fallback = optional_text(args, "fallbackText", max_len=4000) or title
    route, label = resolve_target(ctx, optional_text(args, "to", max_len=200))
    ref = ctx.db.write_message(
        kind="chat-sdk", content={"type": "card", "card": card, "fallbackText": fallback}, route=route
    )
    return ok(f"Card sent to {label} (id: {ref.seq})")


def _readable_file(ctx: ToolContext, raw: str) -> Path:
    path = Path(raw)
    if not path.is_absolute():
        path = ctx.config.agent_dir / path
    if not path.is_file():
        raise ToolInputError(f"no file at {raw} (relative paths start in {ctx.config.agent_dir})")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ToolInputError(f"{raw} is {size} bytes; files up to {MAX_FILE_BYTES // (1024 * 1024)} MiB can be sent")
    return path


def _file_name(name: str) -> str:
    """The name the recipient sees; a plain file name, never a path."""
    name = name.strip()
    if not name or name in (".", "..") or any(ch in name for ch in "/\\\0"):
        raise ToolInputError(f"filename {name!r} must be a plain file name without slashes")
    return name


TOOLS = [
    ToolSpec(
        "send_message",
        "Send a chat message now, before your final answer (an acknowledgement, progress, a result). "
        "Returns the message id, which edit_message accepts.",
        schema({"to": TO_PROPERTY, "text": {"type": "string", "description": "The message text."}}, ["text"]),
        send_message,
    ),
    ToolSpec(
        "send_file",
        "Send a file from your workspace as an attachment.",
        schema(
            {
                "to": TO_PROPERTY,
                "path": {"type": "string", "description": "File path; relative paths start in your group folder."},
                "text": {"type": "string", "description": "Optional caption."},
                "filename": {"type": "string", "description": "Name shown to the recipient (default: the file's)."},
            },
            ["path"],
        ),
        send_file,
    ),
    ToolSpec(
        "edit_message",
        "Replace the text of a message you sent earlier (by its numeric id).",
        schema(
            {
                "messageId": {"type": "integer", "description": "The id send_message returned."},
                "text": {"type": "string", "description": "The new text."},
            },
            ["messageId", "text"],
        ),
        edit_message,
    ),
    ToolSpec(
        "add_reaction",
        "React to a message (yours or one you received, by its numeric id) with an emoji.",
        schema(
            {
                "messageId": {"type": "integer", "description": "The message's id (the id attribute)."},
                "emoji": {"type": "string", "description": "An emoji or its name, e.g. thumbs_up."},
            },
            ["messageId", "emoji"],
        ),
        add_reaction,
    ),
    ToolSpec(
        "send_card",
        "Send a structured card: a title, optional description and fields. Channels without cards "
        "show fallbackText instead.",
        schema(
            {
                "to": TO_PROPERTY,
                "card": {
                    "type": "object",
                    "description": "{title, description?, fields?: [{label, value}], actions?: [{label, value}]}",
                },
                "fallbackText": {"type": "string", "description": "Plain text for channels without cards."},
            },
            ["card"],
        ),
        send_card,
    ),
]
