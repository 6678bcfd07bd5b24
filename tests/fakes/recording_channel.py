"""An in-process channel adapter for tests: records every call, can fail on request, and injects traffic.

It implements the real `ChannelAdapter` contract, so the host drives it exactly
as it drives a platform. A test tells it to fail the next N deliveries, sends
messages and button presses "from users", and waits for deliveries to arrive.
With `dedupe=True` it behaves like a platform that honours idempotency keys.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from channels.adapter import (
    Capabilities,
    CardAction,
    ChannelAdapter,
    Conversation,
    DeliveryError,
    HostCallbacks,
    InboundChat,
    OutboundDelivery,
)


class Delivered:
    """A delivery as the platform saw it; files are read at call time (the host removes its copies after)."""

    def __init__(self, delivery: OutboundDelivery, at: float) -> None:
        self.delivery = delivery
        self.at = at
        self.file_bytes = {f.filename: Path(f.path).read_bytes() for f in delivery.files}

    @property
    def text(self) -> str:
        return self.delivery.text


class RecordingChannel(ChannelAdapter):
    def __init__(
        self,
        channel_type: str = "test",
        capabilities: Capabilities | None = None,
        *,
        dedupe: bool = False,
    ) -> None:
        self.channel_type = channel_type
        self.capabilities = capabilities or Capabilities(cards=True, files=True, typing=True)
        self.dedupe = dedupe
        self.host: HostCallbacks | None = None
        self.conversations: list[Conversation] = []
        self.deliveries: list[Delivered] = []
        self.attempts: list[OutboundDelivery] = []
        self.typing: list[tuple[str, str | None]] = []
        self.torn_down = False
        self._fail_next = 0
        self._fail_retryable = True
        self._seen: dict[str, str] = {}
        self._cond = threading.Condition()

    # -- the contract ---------------------------------------------------------------------------------

    def setup(self, host: HostCallbacks, conversations: Sequence[Conversation]) -> None:
        self.host = host
        self.conversations = list(conversations)

    def deliver(self, delivery: OutboundDelivery) -> str | None:
        with self._cond:
            self.attempts.append(delivery)
            if self._fail_next > 0:
                self._fail_next -= 1
                self._cond.notify_all()
                raise DeliveryError("the test platform is down", retryable=self._fail_retryable)
            if self.dedupe and delivery.idempotency_key in self._seen:
                return self._seen[delivery.idempotency_key]
            platform_id = f"pm-{len(self.deliveries) + 1}"
            self._seen[delivery.idempotency_key] = platform_id
            self.deliveries.append(Delivered(delivery, time.perf_counter()))
            self._cond.notify_all()
            return platform_id

    def set_typing(self, platform_id: str, thread_id: str | None, typing: bool) -> None:
        with self._cond:
            self.typing.append((platform_id, thread_id))

    def update_conversations(self, conversations: Sequence[Conversation]) -> None:
        self.conversations = list(conversations)

    def teardown(self) -> None:
        self.torn_down = True

    # -- test controls ----------------------------------------------------------------------------------

    def fail_next(self, count: int, *, retryable: bool = True) -> None:
        with self._cond:
            self._fail_next = count
            self._fail_retryable = retryable

    def say(
        self,
        platform_id: str,
        text: str,
        *,
        sender_id: str = "u1",
        sender_name: str = "Ana",
        thread_id: str | None = None,
        is_mention: bool = False,
        message_id: str | None = None,
    ) -> str:
        """A user writes `text` in a conversation; returns the message id."""
        assert self.host is not None, "the host has not set this channel up"
        message_id = message_id or f"m-{uuid.uuid4().hex[:12]}"
        self.host.on_inbound(
            self.channel_type,
            InboundChat(
                platform_id=platform_id,
                message_id=message_id,
                sender_id=sender_id,
                sender_name=sender_name,
                text=text,
                thread_id=thread_id,
                is_mention=is_mention,
            ),
        )
        return message_id

    def press(self, card_id: str, option_id: str, platform_id: str, *, user_id: str = "u1") -> None:
        assert self.host is not None, "the host has not set this channel up"
        self.host.on_card_action(
            self.channel_type,
            CardAction(card_id=card_id, option_id=option_id, user_id=user_id, platform_id=platform_id),
        )

    def wait_for(self, predicate: Callable[[list[Delivered]], bool], timeout_s: float, what: str) -> list[Delivered]:
        """Block until `predicate(deliveries)` holds; returns a copy of the deliveries then."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not predicate(self.deliveries):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    texts = [d.text for d in self.deliveries]
                    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; delivered: {texts}")
                self._cond.wait(remaining)
            return list(self.deliveries)

    def texts(self, platform_id: str | None = None) -> list[str]:
        with self._cond:
            return [d.text for d in self.deliveries if platform_id is None or d.delivery.platform_id == platform_id]
