"""Values passed in and out of the session-DB API; times are aware UTC datetimes here, text only in the files."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from events.model import Destination

DestinationType = Literal["channel", "agent"]


class InboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A row to add to messages_in. `content` is JSON text; attachments in it may carry base64 `data`."""

    id: str
    kind: str
    content: str
    timestamp: datetime | None = None  # None: the moment of insertion
    platform_id: str | None = None
    channel_type: str | None = None
    thread_id: str | None = None
    process_after: datetime | None = None  # None: due at once
    recurrence: str | None = None  # a cron expression, for recurring tasks
    on_wake: bool = False  # only a freshly started container may take it


class OutboundMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A messages_out row as the container wrote it; times it wrote unreadably come back as None."""

    id: str
    seq: int | None
    kind: str
    content: str
    timestamp: datetime | None
    in_reply_to: str | None = None
    deliver_after: datetime | None = None
    recurrence: str | None = None
    platform_id: str | None = None
    channel_type: str | None = None
    thread_id: str | None = None


class DestinationRow(msgspec.Struct, frozen=True, kw_only=True):
    """One named target the session's agent may send to: a channel conversation or another agent group."""

    name: str
    type: DestinationType
    display_name: str | None = None
    channel_type: str | None = None
    platform_id: str | None = None
    agent_group_id: str | None = None


def destination_row(destination: Destination) -> DestinationRow:
    """The session-DB row for a destination the central store granted to the session's group."""
    return DestinationRow(
        name=destination.name,
        type=destination.type,
        display_name=destination.display_name,
        channel_type=destination.channel_type,
        platform_id=destination.platform_id,
        agent_group_id=destination.target_agent_group_id,
    )


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """A message a container acked as 'processing' and has not finished, with the time of that ack.

    An ack time the container wrote unreadably comes back as the epoch: unknown, so treated as long ago.
    """

    message_id: str
    seq: int | None
    kind: str
    tries: int
    claimed_at: datetime
    channel_type: str | None = None  # where the message came from, to tell its sender if it fails for good
    platform_id: str | None = None
    thread_id: str | None = None


class RetryOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What reset_for_retry left behind. `changed` is False when the call was a repeat or had nothing to do."""

    message_id: str
    status: str
    tries: int
    retry_at: datetime | None
    changed: bool


class RecurringTask(msgspec.Struct, frozen=True, kw_only=True):
    """A finished row whose recurrence still has to produce its next occurrence."""

    message_id: str
    kind: str
    recurrence: str
    status: str
    process_after: datetime | None


class Occurrence(msgspec.Struct, frozen=True, kw_only=True):
    """The row schedule_next_recurrence inserted."""

    message_id: str
    seq: int
    process_after: datetime
