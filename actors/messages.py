"""The messages actors send each other. Plain frozen values: nothing mutable crosses a mailbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from channels.adapter import CardAction, InboundChat, OutboundDelivery

# -- to the SessionManager ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WakeSession:
    """Someone (router, sweep, delivery, CLI) wants this session's agent running."""

    session_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SessionActivity:
    """Input arrived or output was delivered: push the session's idle deadline back."""

    session_id: str


@dataclass(frozen=True, slots=True)
class StopSession:
    """Stop the session's container, recording why (admin request, rebuild, config change)."""

    session_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Tick:
    """The periodic liveness/idle check; `now` is wall-clock UNIX time."""

    now: float


@dataclass(frozen=True, slots=True)
class ContainerExited:
    """Docker reported that one of our containers died."""

    session_id: str
    container_id: str
    exit_code: int | None


@dataclass(frozen=True, slots=True)
class AdoptContainer:
    """A running container of ours was found for this session: keep it, do not restart it."""

    session_id: str
    container_id: str
    container_name: str
    started_at: float


@dataclass(frozen=True, slots=True)
class RequestSlot:
    """A session wants to start a container and needs one of the concurrency slots."""

    session_id: str


@dataclass(frozen=True, slots=True)
class ReleaseSlot:
    """A session's container is gone (or never started): its slot is free again."""

    session_id: str


@dataclass(frozen=True, slots=True)
class PassivateMe:
    """A stopped session with nothing to do offers to give up its thread.

    `handled` is how many messages it has processed; the manager only agrees
    when it has sent no more than that, so nothing in flight is lost.
    """

    session_id: str
    handled: int


@dataclass(frozen=True, slots=True)
class SessionCrashed:
    """A SessionActor died of a bug; the manager restarts it from recorded state."""

    session_id: str
    error: str


# -- from the SessionManager to a SessionActor -----------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotGranted:
    """The manager reserved a concurrency slot for this session's next start."""


@dataclass(frozen=True, slots=True)
class QueryState:
    """Ask: the session's current state, for status displays and tests."""


@dataclass(frozen=True, slots=True)
class SessionRefQuery:
    """Ask the manager: the live SessionActor ref of a session, or None when it is passivated."""

    session_id: str


@dataclass(frozen=True, slots=True)
class GroupRefQuery:
    """Ask the manager: the GroupActor ref of an agent group (started if needed), the one owner of its builds."""

    group_id: str


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Compare Docker's containers with the recorded sessions and fix whatever drifted."""

    reason: str


@dataclass(frozen=True, slots=True)
class Sweep:
    """The slow periodic pass over every active session (acks, due messages, retries, recurrence)."""

    now: float


# -- channels: hub -> router -> session, and delivery back out -----------------------------------


@dataclass(frozen=True, slots=True)
class RouteInbound:
    """A user's message arrived on a channel: find its agent and session, store it, wake the session."""

    channel_type: str
    chat: InboundChat


@dataclass(frozen=True, slots=True)
class ChannelMetadata:
    """A channel learned a conversation's name (and whether it is a group)."""

    channel_type: str
    platform_id: str
    name: str | None
    is_group: bool


@dataclass(frozen=True, slots=True)
class CardPressed:
    """A user pressed a button on a card the host delivered (question, approval or an agent's card)."""

    channel_type: str
    action: CardAction


@dataclass(frozen=True, slots=True)
class ShowTyping:
    """To the hub, which passes it to the channel's DeliveryActor: show the typing indicator in a conversation."""

    channel_type: str
    platform_id: str
    thread_id: str | None


@dataclass(frozen=True, slots=True)
class DrainSession:
    """To a DeliveryActor: send whatever of this session's outbound rows is due and belongs to its lane."""

    session_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeliverySweep:
    """The slow pass: every DeliveryActor drains every active session (stragglers the fast path missed)."""

    now: float


@dataclass(frozen=True, slots=True)
class PostToChannel:
    """To the hub, then the channel's DeliveryActor: a host-originated message (an approval card, a failure notice).

    One attempt; `done(platform_message_id, error)` is called from the delivering actor and must only tell.
    """

    channel_type: str
    delivery: OutboundDelivery
    done: Callable[[str | None, str | None], None] | None = None


@dataclass(frozen=True, slots=True)
class SystemRequest:
    """To the system-actions actor: an agent's `kind='system'` row, handed over exactly once per delivery record."""

    session_id: str
    message_out_id: str
    content: str


@dataclass(frozen=True, slots=True)
class ApprovalAnswer:
    """To the system-actions actor: someone pressed a button on an approval card (`approval:<id>`)."""

    approval_id: str
    option_id: str
    user_id: str
    channel_type: str
    platform_id: str
