"""The channel adapter contract: everything the host knows about a chat platform.

An adapter turns platform traffic into `InboundChat` callbacks and turns
`OutboundDelivery` values into platform calls. The host never imports an
adapter by name: the registry finds them (see `channels.registry`), so adding
a channel touches no host code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

import msgspec


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a platform can show; the host degrades gracefully for what it cannot."""

    threads: bool = False
    cards: bool = False
    reactions: bool = False
    edits: bool = False
    files: bool = False
    typing: bool = False
    max_text_length: int = 4000


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """A file coming in from a platform, carried as base64 until the host saves it into the session inbox."""

    name: str
    data_base64: str
    mime_type: str | None = None


class InboundChat(msgspec.Struct, frozen=True, kw_only=True):
    """A message a user wrote on a platform."""

    platform_id: str
    message_id: str
    sender_id: str
    sender_name: str
    text: str
    thread_id: str | None = None
    is_mention: bool = False
    is_group: bool = False
    attachments: list[Attachment] = []


class CardOption(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    label: str


class Card(msgspec.Struct, frozen=True, kw_only=True):
    """Buttons for the user: an ask_user_question, an approval, or an agent's send_card."""

    card_id: str
    title: str
    body: str = ""
    options: list[CardOption] = []


class OutboundFile(msgspec.Struct, frozen=True, kw_only=True):
    filename: str
    path: str


class OutboundDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """One message for a platform. `idempotency_key` is stable across retries and host restarts."""

    idempotency_key: str
    platform_id: str
    thread_id: str | None = None
    text: str = ""
    card: Card | None = None
    files: list[OutboundFile] = []
    edit_of: str | None = None
    reaction: str | None = None


class CardAction(msgspec.Struct, frozen=True, kw_only=True):
    """A user pressed a card's button."""

    card_id: str
    option_id: str
    user_id: str
    platform_id: str
    thread_id: str | None = None


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation the host has wired to an agent, handed to the adapter at setup."""

    platform_id: str
    name: str | None = None


class HostCallbacks(Protocol):
    """How an adapter talks back to the host. Implementations only tell actors; they never block long."""

    def on_inbound(self, channel_type: str, message: InboundChat) -> None: ...

    def on_metadata(self, channel_type: str, platform_id: str, name: str | None, is_group: bool) -> None: ...

    def on_card_action(self, channel_type: str, action: CardAction) -> None: ...


class DeliveryError(Exception):
    """The platform refused or failed a delivery; `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ChannelAdapter(ABC):
    """Base class of every channel. Subclasses set `channel_type` and `capabilities`."""

    channel_type: str
    capabilities: Capabilities = Capabilities()

    @abstractmethod
    def setup(self, host: HostCallbacks, conversations: Sequence[Conversation]) -> None:
        """Connect to the platform and start calling `host` for inbound traffic."""

    @abstractmethod
    def deliver(self, delivery: OutboundDelivery) -> str | None:
        """Send one message; return the platform's message id. Raise DeliveryError on failure.

        The same `idempotency_key` may arrive twice after a host crash between the
        platform call and its record; an adapter that can deduplicate must do so.
        """

    def set_typing(self, platform_id: str, thread_id: str | None, typing: bool) -> None:
        """Show or clear a typing indicator; a no-op for platforms without one."""
        return None

    def update_conversations(self, conversations: Sequence[Conversation]) -> None:
        """The wired conversations changed (a new wiring); adapters that filter by them refresh."""
        return None

    @abstractmethod
    def teardown(self) -> None:
        """Disconnect and release everything `setup` took."""
