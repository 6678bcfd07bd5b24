"""ask_user_question: show the user a choice and wait for the button they press.

The card goes out as a `chat-sdk` row whose id is the question id. The host
records a pending question when it delivers the card; the user's choice comes
back as a `kind='system'` row in inbound.db with content
`{"type": "question_response", "questionId": ..., "selectedOption": ...}`.
The tool waits for that row (woken by inbound changes), acks it, and returns
the choice. While it waits, the poll loop leaves the answer to it; an answer
arriving after the timeout reaches the agent as a system note instead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from agent_runner.db import new_id
from agent_runner.tools.base import (
    ToolContext,
    ToolInputError,
    ToolResult,
    ToolSpec,
    number_arg,
    ok,
    schema,
    string_list,
    text_arg,
)
from agent_runner.tools.targets import current_route

MAX_OPTIONS = 10
DEFAULT_TIMEOUT_S = 300.0
MAX_TIMEOUT_S = 3600.0
RECHECK_S = 1.0


def ask_user_question(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    question = text_arg(args, "question", max_len=2000)
    options = [o.strip() for o in string_list(args, "options", max_items=MAX_OPTIONS, max_len=100)]
    if not options:
        raise ToolInputError("options needs at least one choice")
    if len(set(options)) != len(options):
        raise ToolInputError("options must be different from each other")
    timeout = number_arg(args, "timeout", default=DEFAULT_TIMEOUT_S, minimum=1, maximum=MAX_TIMEOUT_S)
    route = current_route(ctx)
    if route is None:
        raise ToolInputError("there is no conversation to ask in")

    question_id = new_id("q")
    ctx.questions.add(question_id)
    try:
        ctx.db.write_message(
            kind="chat-sdk",
            content={"type": "ask_question", "questionId": question_id, "question": question, "options": options},
            route=route,
            message_id=question_id,
        )
        answer = _wait_for_answer(ctx, question_id, time.monotonic() + timeout)
    finally:
        ctx.questions.discard(question_id)
    if answer is None:
        return ToolResult(
            f"Error: no answer within {timeout:g} s. If the user answers later, the answer reaches you as a "
            "system message.",
            True,
        )
    return ok(answer)


def _wait_for_answer(ctx: ToolContext, question_id: str, deadline: float) -> str | None:
    while True:
        seen = ctx.signal.generation
        for message in ctx.db.pending_system_messages():
            payload = message.payload
            if payload.get("type") == "question_response" and payload.get("questionId") == question_id:
                ctx.db.mark([message.id], "completed")
                return str(payload.get("selectedOption") or "")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ctx.signal.wait(seen, min(remaining, RECHECK_S))


TOOLS = [
    ToolSpec(
        "ask_user_question",
        "Ask the user a multiple-choice question in the current conversation and wait for their choice. "
        "Blocks until they answer or the timeout passes; returns the chosen option.",
        schema(
            {
                "question": {"type": "string", "description": "The question."},
                "options": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": f"The choices shown as buttons (1 to {MAX_OPTIONS}).",
                },
                "timeout": {
                    "type": "number",
                    "description": f"Seconds to wait (default {DEFAULT_TIMEOUT_S:g}, at most {MAX_TIMEOUT_S:g}).",
                },
            },
            ["question", "options"],
        ),
        ask_user_question,
    ),
]
