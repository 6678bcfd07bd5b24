"""Turning one outbound row (what the agent wrote) into the platform calls a channel can make.

Pure: the row's kind and JSON content, the conversation and the adapter's
capabilities in, `OutboundDelivery` values out. What the platform cannot show
degrades to text (a card to its fallback, an edit to a new message); a long
text becomes several messages split at the platform's limit. Each call's
idempotency key is the row id, with `#<n>` for the n-th part of a split text,
so a retried or replayed delivery carries the same keys as the first.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors.text_split import split_text
from channels.adapter import Capabilities, Card, CardOption, OutboundDelivery, OutboundFile
from sessiondb import OutboundMessage

QUESTION_CARD_PREFIX = "question:"
AGENT_CARD_PREFIX = "card:"


class Undeliverable(Exception):
    """The row can never become a platform message here (malformed, or beyond what the platform can show)."""


def parse_content(row: OutboundMessage) -> dict[str, Any]:
    try:
        content = msgspec.json.decode(row.content)
    except msgspec.DecodeError as exc:
        raise Undeliverable(f"its content is not JSON ({exc})") from None
    if not isinstance(content, dict):
        raise Undeliverable("its content is not a JSON object")
    return content


def declared_files(content: dict[str, Any]) -> list[str]:
    """The file names the agent put into `outbox/<row id>/` for this message."""
    files = content.get("files")
    if not isinstance(files, list):
        return []
    return [name for name in files if isinstance(name, str)]


def question_id(row: OutboundMessage, content: dict[str, Any]) -> str | None:
    """The id of an ask_user_question card (the tool uses the row id), or None for anything else."""
    if row.kind != "chat-sdk" or content.get("type") != "ask_question":
        return None
    value = content.get("questionId") or row.id
    return str(value)


def agent_card_id(session_id: str, row_id: str) -> str:
    return f"{AGENT_CARD_PREFIX}{session_id}:{row_id}"


class _Parts:
    """Builds the deliveries of one row with keys `<row id>`, `<row id>#2`, …"""

    def __init__(self, row_id: str, platform_id: str, thread_id: str | None) -> None:
        self._row_id = row_id
        self._platform_id = platform_id
        self._thread_id = thread_id
        self.deliveries: list[OutboundDelivery] = []

    def add(self, **fields: Any) -> None:
        number = len(self.deliveries) + 1
        key = self._row_id if number == 1 else f"{self._row_id}#{number}"
        self.deliveries.append(
            OutboundDelivery(idempotency_key=key, platform_id=self._platform_id, thread_id=self._thread_id, **fields)
        )

    def add_text(self, text: str, limit: int, files: list[OutboundFile] | None = None) -> None:
        pieces = split_text(text, limit) or [""]
        for index, piece in enumerate(pieces):
            self.add(text=piece, files=files if files and index == 0 else [])


def plan_deliveries(
    row: OutboundMessage,
    content: dict[str, Any],
    *,
    session_id: str,
    platform_id: str,
    thread_id: str | None,
    capabilities: Capabilities,
    files: list[OutboundFile],
) -> list[OutboundDelivery]:
    """The platform calls for one row, in order; Undeliverable when there can be none."""
    parts = _Parts(row.id, platform_id, thread_id)
    if row.kind == "chat":
        _plan_chat(parts, content, capabilities, files)
    elif row.kind == "chat-sdk":
        _plan_card(parts, row, content, session_id, capabilities)
    else:
        raise Undeliverable(f"messages of kind {row.kind!r} cannot go to a chat")
    if not parts.deliveries:
        raise Undeliverable("it has nothing to show")
    return parts.deliveries


def _text(content: dict[str, Any]) -> str:
    value = content.get("text")
    return value if isinstance(value, str) else ""


def _plan_chat(parts: _Parts, content: dict[str, Any], caps: Capabilities, files: list[OutboundFile]) -> None:
    operation = content.get("operation")
    target = content.get("messageId")
    if operation == "reaction":
        emoji = content.get("emoji")
        if not caps.reactions:
            raise Undeliverable("this platform cannot show reactions")
        if not isinstance(emoji, str) or not emoji or not isinstance(target, str):
            raise Undeliverable("a reaction needs an emoji and the message it is on")
        parts.add(reaction=emoji, edit_of=target)
        return
    text = _text(content)
    if operation == "edit" and caps.edits and isinstance(target, str):
        if len(text) > caps.max_text_length:
            raise Undeliverable(f"the edited text is longer than the platform's {caps.max_text_length} characters")
        parts.add(text=text, edit_of=target)
        return
    if files and not caps.files:
        names = ", ".join(f.filename for f in files)
        text = f"{text}\n\n(files not shown on this platform: {names})".strip()
        files = []
    if not text and not files:
        return
    parts.add_text(text, caps.max_text_length, files)


def _plan_card(
    parts: _Parts, row: OutboundMessage, content: dict[str, Any], session_id: str, caps: Capabilities
) -> None:
    kind = content.get("type")
    if kind == "ask_question":
        question = str(content.get("question") or "")
        options = [str(o) for o in content.get("options") or [] if isinstance(o, str | int | float)]
        if not question or not options:
            raise Undeliverable("a question needs its text and at least one option")
        if caps.cards:
            card = Card(
                card_id=f"{QUESTION_CARD_PREFIX}{question_id(row, content)}",
                title=question,
                options=[CardOption(id=option, label=option) for option in options],
            )
            parts.add(card=card)
        else:
            listed = "\n".join(f"{n}. {option}" for n, option in enumerate(options, start=1))
            parts.add_text(f"{question}\n\n{listed}", caps.max_text_length)
        return
    if kind == "card":
        card_data = content.get("card")
        fallback = str(content.get("fallbackText") or "")
        if not isinstance(card_data, dict) or not card_data.get("title"):
            raise Undeliverable("a card needs a title")
        if caps.cards:
            parts.add(card=_agent_card(session_id, row.id, card_data), text=fallback)
        else:
            parts.add_text(fallback or str(card_data["title"]), caps.max_text_length)
        return
    text = _text(content)
    if not text:
        raise Undeliverable(f"chat-sdk content of type {kind!r} is not understood")
    parts.add_text(text, caps.max_text_length)


def _agent_card(session_id: str, row_id: str, data: dict[str, Any]) -> Card:
    """An agent's send_card card: its description and fields as the body, its actions as buttons."""
    lines = [str(data["description"])] if data.get("description") else []
    for field in data.get("fields") or []:
        if isinstance(field, dict):
            lines.append(f"{field.get('label', '')}: {field.get('value', '')}")
    options = []
    for action in data.get("actions") or []:
        if isinstance(action, dict) and action.get("label"):
            label = str(action["label"])
            options.append(CardOption(id=str(action.get("value") or label), label=label))
    return Card(
        card_id=agent_card_id(session_id, row_id), title=str(data["title"]), body="\n".join(lines), options=options
    )
