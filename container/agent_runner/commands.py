"""Slash commands in chat messages, sorted into what the runner does with them.

- admin: only the admin user may run them (`/clear` is handled here; the others
  go to the provider, raw when it understands slash commands natively);
- filtered: interactive or host-level commands that make no sense in a chat
  (`/login` would print a prompt nobody can answer): dropped silently;
- passthrough: any other command, handed to the provider;
- none: not a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from agent_runner.db import InboundMessage

ADMIN_COMMANDS = frozenset({"/clear", "/compact", "/context", "/cost", "/files", "/remote-control"})
FILTERED_COMMANDS = frozenset({"/help", "/login", "/logout", "/doctor", "/config"})
# A command word: `/name`, `/plugin:name`. A path such as `/usr/bin/env` is not one.
COMMAND_RE = re.compile(r"^/[A-Za-z][\w:-]*$")


class Category(Enum):
    ADMIN = "admin"
    FILTERED = "filtered"
    PASSTHROUGH = "passthrough"
    NONE = "none"


@dataclass(frozen=True)
class CommandInfo:
    category: Category
    command: str
    text: str
    sender_id: str | None


def sender_id(message: InboundMessage) -> str | None:
    payload = message.payload
    author = payload.get("author")
    value = payload.get("senderId") or (author.get("userId") if isinstance(author, dict) else None)
    return str(value) if value else None


def categorize(message: InboundMessage) -> CommandInfo:
    """Classify a message; only chat messages can be commands."""
    text = str(message.payload.get("text") or "").strip()
    sender = sender_id(message)
    word = text.split()[0] if text else ""
    if not message.is_chat or not COMMAND_RE.match(word):
        return CommandInfo(Category.NONE, "", text, sender)
    command = word.lower()
    if command in ADMIN_COMMANDS:
        category = Category.ADMIN
    elif command in FILTERED_COMMANDS:
        category = Category.FILTERED
    else:
        category = Category.PASSTHROUGH
    return CommandInfo(category, command, text, sender)


def is_command(message: InboundMessage) -> bool:
    return categorize(message).category is not Category.NONE
