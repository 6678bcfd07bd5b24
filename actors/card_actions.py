"""What a button press on a host-delivered card means, by the card id's prefix.

- `question:<id>`: an answer to ask_user_question. Written into the asking
  session as a `question_response` system message (the shape the runner's tool
  waits for), recorded as `question.answered`, and the session is woken. A press
  on a question that is no longer pending (answered already) changes nothing.
- `card:<session id>:<row id>`: a button on an agent's send_card card; the agent
  is told which one, as a system note.
- `approval:<id>`: not handled here; the router hands it to the system-actions actor.
"""

from __future__ import annotations

import uuid
from typing import Any

import pykka

from actors import messages as m
from actors.delivery_notes import write_note
from actors.outbound_plan import AGENT_CARD_PREFIX, QUESTION_CARD_PREFIX
from channels.adapter import CardAction
from config.logs import get_logger
from config.settings import Settings
from events import types as ev
from events.log import EventLog

log = get_logger("card-actions")

APPROVAL_CARD_PREFIX = "approval:"


def answer_question(
    log_: EventLog, settings: Settings, manager: pykka.ActorRef[Any], question_id: str, action: CardAction
) -> bool:
    """Deliver the answer to the waiting agent; False when the question is not pending (nothing written)."""
    store = log_.store
    pending = store.pending_question(question_id)
    session = store.session(pending.session_id) if pending is not None else None
    if pending is None or session is None:
        log.warning("question.not_pending", question_id=question_id, user_id=action.user_id)
        return False
    write_note(
        log_,
        settings,
        session,
        f"answer-{question_id}",
        {
            "type": "question_response",
            "questionId": question_id,
            "selectedOption": action.option_id,
            "userId": action.user_id,
        },
        route=(pending.channel_type, pending.platform_id, pending.thread_id),
    )
    log_.append(
        f"session:{session.id}",
        [ev.QuestionAnswered(question_id=question_id, answer=action.option_id, user_id=action.user_id)],
    )
    manager.tell(m.WakeSession(session.id, "question answered"))
    return True


def agent_card_pressed(
    log_: EventLog, settings: Settings, manager: pykka.ActorRef[Any], channel_type: str, action: CardAction
) -> bool:
    """Tell the agent which button of its card was pressed; False when the card id names no session."""
    session_id, _, row_id = action.card_id.removeprefix(AGENT_CARD_PREFIX).partition(":")
    session = log_.store.session(session_id)
    if session is None or not row_id:
        log.warning("card.unknown_session", card_id=action.card_id)
        return False
    write_note(
        log_,
        settings,
        session,
        f"card-{row_id}-{uuid.uuid4().hex[:8]}",
        {
            "type": "card_action",
            "cardMessageId": row_id,
            "option": action.option_id,
            "userId": action.user_id,
            "text": f"The user {action.user_id} pressed {action.option_id!r} on your card (message {row_id}).",
        },
        route=(channel_type, action.platform_id, action.thread_id),
    )
    manager.tell(m.WakeSession(session.id, "card button pressed"))
    return True


def card_kind(card_id: str) -> str:
    """`question`, `approval`, `card` or `unknown`."""
    for prefix in (QUESTION_CARD_PREFIX, APPROVAL_CARD_PREFIX, AGENT_CARD_PREFIX):
        if card_id.startswith(prefix):
            return prefix.rstrip(":")
    return "unknown"
