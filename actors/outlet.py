"""The one way host-originated messages reach a conversation: approval cards and failure notices.

Agents' replies come from their outbound.db; these come from the host itself
(it never writes outbound.db), so they go straight to the channel's delivery.
The channel side implements `ChannelOutlet`; `post` only hands the delivery
over (a tell), and `done` is called once from the delivering thread with the
platform message id or the error, so it must itself only tell an actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pykka

from actors.messages import PostToChannel
from channels.adapter import OutboundDelivery

PostResult = Callable[[str | None, str | None], None]
"""(platform message id, error): exactly one of them is set."""


class ChannelOutlet(Protocol):
    def post(self, channel_type: str, delivery: OutboundDelivery, done: PostResult | None = None) -> None: ...


class HubOutlet:
    """The host's outlet: tells the ChannelHub, which hands the delivery to that channel's DeliveryActor.

    Actors get it at start, before the hub exists (the hub needs them first), so
    the hub is attached afterwards; a post before that, or after the hub
    stopped, reports an error through `done` instead of vanishing.
    """

    def __init__(self) -> None:
        self._hub: pykka.ActorRef[Any] | None = None

    def attach(self, hub: pykka.ActorRef[Any] | None) -> None:
        self._hub = hub

    def post(self, channel_type: str, delivery: OutboundDelivery, done: PostResult | None = None) -> None:
        hub = self._hub
        try:
            if hub is None:
                raise pykka.ActorDeadError("the channels are not running")
            hub.tell(PostToChannel(channel_type, delivery, done))
        except pykka.ActorDeadError as exc:
            if done is not None:
                done(None, f"cannot reach the {channel_type} channel: {exc}")
