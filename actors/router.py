"""RouterActor: every inbound chat message on its way from a channel to a session's inbound.db.

Steps, each recorded: the conversation's messaging group (created on first
sight); the wired agent, by priority and trigger rules; the session, by the
wiring's mode and the platform's thread support; the message row in
inbound.db (`message.routed`). Then the typing indicator, and a wake plus an
activity note to the SessionManager. A message that reaches no session is
recorded as `message.dropped` with the reason and logged: never lost silently.

Card button presses arrive here too (they are inbound traffic): answers to
questions are written back to the asking session; approval answers go to the
system-actions actor, which owns approvals.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
import pykka

import sessiondb
from actors import messages as m
from actors.admin import AdminError, ensure_messaging_group
from actors.card_actions import APPROVAL_CARD_PREFIX, agent_card_pressed, answer_question, card_kind
from actors.outbound_plan import QUESTION_CARD_PREFIX
from actors.services import HostServices
from actors.session_modes import effective_mode, resolve_session
from actors.triggers import pick_wiring
from channels.adapter import Capabilities, CardAction, InboundChat
from config.logs import get_logger
from events import types as ev
from events.log import ProjectionError

log = get_logger("router")

_DOMAIN_ERRORS = (sessiondb.SessionDbError, sqlite3.Error, OSError, AdminError, ProjectionError, ValueError)


def chat_content(chat: InboundChat) -> str:
    """The JSON the runner's formatter reads: text, sender, sender id, attachments as base64 (saved on insert)."""
    content: dict[str, Any] = {"text": chat.text, "sender": chat.sender_name, "senderId": chat.sender_id}
    if chat.is_mention:
        content["isMention"] = True
    if chat.attachments:
        content["attachments"] = [
            {
                "name": attachment.name,
                "data": attachment.data_base64,
                "mimeType": attachment.mime_type,
                "type": "image" if (attachment.mime_type or "").startswith("image/") else "file",
            }
            for attachment in chat.attachments
        ]
    return msgspec.json.encode(content).decode()


class RouterActor(pykka.ThreadingActor):
    def __init__(
        self,
        services: HostServices,
        manager: pykka.ActorRef[Any],
        hub: pykka.ActorRef[Any],
        capabilities: Mapping[str, Capabilities],
        system_actions: pykka.ActorRef[Any] | None = None,
    ) -> None:
        super().__init__()
        self._services = services
        self._log = services.log
        self._manager = manager
        self._hub = hub
        self._capabilities = dict(capabilities)
        self._system_actions = system_actions

    def on_receive(self, message: Any) -> Any:
        try:
            match message:
                case m.RouteInbound(channel_type=channel_type, chat=chat):
                    self._route(channel_type, chat)
                case m.ChannelMetadata():
                    ensure_messaging_group(
                        self._log,
                        message.channel_type,
                        message.platform_id,
                        name=message.name,
                        is_group=message.is_group,
                    )
                case m.CardPressed(channel_type=channel_type, action=action):
                    self._card(channel_type, action)
                case _:
                    log.warning("router.unknown_message", message=repr(message))
        except _DOMAIN_ERRORS as exc:
            log.error("router.failed", message=type(message).__name__, error=str(exc))
        return None

    # -- inbound chat ------------------------------------------------------------------------------

    def _route(self, channel_type: str, chat: InboundChat) -> None:
        store = self._log.store
        caps = self._capabilities.get(channel_type, Capabilities())
        thread_id = chat.thread_id if caps.threads else None
        message_id = chat.message_id or f"in-{uuid.uuid4().hex[:16]}"
        messaging_group = ensure_messaging_group(self._log, channel_type, chat.platform_id, is_group=chat.is_group)
        wirings = store.wirings(messaging_group.id)
        wiring = pick_wiring(wirings, chat)
        if wiring is None:
            reason = (
                "no agent group is wired to this conversation"
                if not wirings
                else f"none of the {len(wirings)} wired agent group(s) has trigger rules this message matches"
            )
            self._drop(message_id, reason, channel_type, chat.platform_id, messaging_group.id)
            return
        group = store.agent_group(wiring.agent_group_id)
        if group is None:
            self._drop(message_id, "the wired agent group no longer exists", channel_type, chat.platform_id, None)
            return
        mode = effective_mode(wiring.session_mode, caps.threads)
        session, created = resolve_session(
            self._log, self._services.settings, group, messaging_group.id, thread_id, mode
        )
        folder = sessiondb.session_dir(self._services.settings.sessions_dir, group.id, session.id)
        if not created and not sessiondb.inbound_path(folder).exists():
            sessiondb.create_session_folder(folder)
        try:
            seq = sessiondb.insert_message(
                folder,
                sessiondb.InboundMessage(
                    id=message_id,
                    kind="chat",
                    content=chat_content(chat),
                    platform_id=chat.platform_id,
                    channel_type=channel_type,
                    thread_id=thread_id,
                ),
            )
        except (sessiondb.AttachmentError, sessiondb.InvalidInput) as exc:
            self._drop(message_id, f"refused: {exc}", channel_type, chat.platform_id, messaging_group.id)
            return
        self._log.append(
            f"session:{session.id}",
            [
                ev.MessageRouted(
                    message_id=message_id,
                    session_id=session.id,
                    kind="chat",
                    seq=seq,
                    messaging_group_id=messaging_group.id,
                )
            ],
        )
        if caps.typing:
            self._hub.tell(m.ShowTyping(channel_type, chat.platform_id, thread_id))
        self._manager.tell(m.WakeSession(session.id, "message"))
        self._manager.tell(m.SessionActivity(session.id))
        log.debug("message.routed", session_id=session.id, group_id=group.id, seq=seq, created=created, mode=mode)

    def _drop(
        self, message_id: str, reason: str, channel_type: str, platform_id: str, messaging_group_id: str | None
    ) -> None:
        stream = f"messaging_group:{messaging_group_id}" if messaging_group_id else f"channel:{channel_type}"
        self._log.append(
            stream,
            [
                ev.MessageDropped(
                    message_id=message_id, reason=reason, channel_type=channel_type, platform_id=platform_id
                )
            ],
        )
        log.warning(
            "message.dropped", message_id=message_id, reason=reason, channel_type=channel_type, platform_id=platform_id
        )

    # -- card buttons ------------------------------------------------------------------------------

    def _card(self, channel_type: str, action: CardAction) -> None:
        kind = card_kind(action.card_id)
        settings = self._services.settings
        if kind == "question":
            answer_question(
                self._log, settings, self._manager, action.card_id.removeprefix(QUESTION_CARD_PREFIX), action
            )
        elif kind == "card":
            agent_card_pressed(self._log, settings, self._manager, channel_type, action)
        elif kind == "approval" and self._system_actions is not None:
            self._system_actions.tell(
                m.ApprovalAnswer(
                    approval_id=action.card_id.removeprefix(APPROVAL_CARD_PREFIX),
                    option_id=action.option_id,
                    user_id=action.user_id,
                    channel_type=channel_type,
                    platform_id=action.platform_id,
                )
            )
        else:
            log.warning("card.unhandled", card_id=action.card_id, kind=kind, user_id=action.user_id)
