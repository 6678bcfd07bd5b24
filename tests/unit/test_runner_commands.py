"""Command categories: admin, filtered, passthrough, none."""

from __future__ import annotations

import json

import pytest

from agent_runner.commands import Category, categorize
from agent_runner.db import InboundMessage


def chat(payload: dict[str, object], kind: str = "chat") -> InboundMessage:
    return InboundMessage(
        "m1", 2, kind, "2026-01-01 00:00:00", "pending", None, None, 0, "p", "c", None, json.dumps(payload)
    )


@pytest.mark.parametrize(
    "text", ["/clear", "/compact keep the todo list", "/context", "/cost", "/files", "/remote-control"]
)
def test_admin_commands(text: str) -> None:
    info = categorize(chat({"text": text, "senderId": "u1"}))
    assert info.category is Category.ADMIN
    assert info.command == text.split()[0]
    assert info.sender_id == "u1"


@pytest.mark.parametrize("text", ["/help", "/login", "/logout", "/doctor", "/config"])
def test_filtered_commands(text: str) -> None:
    assert categorize(chat({"text": text})).category is Category.FILTERED


@pytest.mark.parametrize("text", ["/my-skill go", "/plugin:tool", "  /review"])
def test_other_commands_pass_through(text: str) -> None:
    assert categorize(chat({"text": text})).category is Category.PASSTHROUGH


@pytest.mark.parametrize("text", ["hello", "/usr/bin/env is broken", "/", "a /clear in the middle", ""])
def test_not_commands(text: str) -> None:
    assert categorize(chat({"text": text})).category is Category.NONE


def test_case_insensitive_and_sender_from_author() -> None:
    info = categorize(chat({"text": "/CLEAR", "author": {"userId": "u7"}}, kind="chat-sdk"))
    assert info.category is Category.ADMIN
    assert info.command == "/clear"
    assert info.sender_id == "u7"


def test_only_chat_messages_are_commands() -> None:
    assert categorize(chat({"text": "/clear"}, kind="task")).category is Category.NONE
