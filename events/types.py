"""Every event type hermitcrab records, one tagged union.

Rules that keep old logs readable forever: only add fields, always with a
default; never change a field's type; never rename a tag. `schema` is the
version of an event's shape, bumped when fields are added.
"""

from __future__ import annotations

from typing import TypeAlias, get_args

import msgspec

from events.model import GroupConfig, SessionMode, TriggerRules


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of all events; the tag is the stable type name stored in the log."""

    schema: int = 1


# -- agent groups -----------------------------------------------------------


class GroupCreated(Event, tag="group.created", frozen=True):
    group_id: str
    name: str
    folder: str
    is_admin: bool = False
    agent_provider: str | None = None
    instructions: str | None = None
    config: GroupConfig = GroupConfig()


class GroupInitialized(Event, tag="group.initialized", frozen=True):
    group_id: str
    steps: list[str]


class GroupConfigChanged(Event, tag="group.config_changed", frozen=True):
    group_id: str
    config: GroupConfig
    reason: str = ""


class GroupDeleted(Event, tag="group.deleted", frozen=True):
    group_id: str


class AgentCreated(Event, tag="agent.created", frozen=True):
    """An agent created another (create_agent): the child group and who asked."""

    group_id: str
    parent_group_id: str
    name: str
    folder: str


# -- messaging groups and wiring -----------------------------------------------


class MessagingGroupCreated(Event, tag="messaging_group.created", frozen=True):
    messaging_group_id: str
    channel_type: str
    platform_id: str
    name: str | None = None
    is_group: bool = False
    admin_user_id: str | None = None


class WiringCreated(Event, tag="wiring.created", frozen=True):
    wiring_id: str
    messaging_group_id: str
    agent_group_id: str
    session_mode: SessionMode = "shared"
    trigger_rules: TriggerRules = TriggerRules()
    response_scope: str = "all"
    priority: int = 0


class WiringRemoved(Event, tag="wiring.removed", frozen=True):
    wiring_id: str


class DestinationGranted(Event, tag="destination.granted", frozen=True):
    agent_group_id: str
    name: str
    kind: str  # "channel" | "agent"
    display_name: str | None = None
    channel_type: str | None = None
    platform_id: str | None = None
    target_agent_group_id: str | None = None
    messaging_group_id: str | None = None


class DestinationRevoked(Event, tag="destination.revoked", frozen=True):
    agent_group_id: str
    name: str


# -- sessions and their containers ------------------------------------------------


class SessionCreated(Event, tag="session.created", frozen=True):
    session_id: str
    agent_group_id: str
    messaging_group_id: str | None = None
    thread_id: str | None = None
    mode: SessionMode = "shared"
    agent_provider: str | None = None


class SessionClosed(Event, tag="session.closed", frozen=True):
    session_id: str
    reason: str = ""


class MessageRouted(Event, tag="message.routed", frozen=True):
    """A message entered a session's inbound.db (never its content)."""

    message_id: str
    session_id: str
    kind: str
    seq: int
    messaging_group_id: str | None = None


class MessageDropped(Event, tag="message.dropped", frozen=True):
    """A message that reached no session, and why (never silently)."""

    message_id: str
    reason: str
    channel_type: str | None = None
    platform_id: str | None = None


class SessionActorCrashed(Event, tag="session.actor_crashed", frozen=True):
    """A SessionActor died of a bug; it is restarted from the log unless it crashed too often."""

    session_id: str
    error: str
    restarts: int = 1
    quarantined: bool = False


class WakeRequested(Event, tag="session.wake_requested", frozen=True):
    session_id: str
    reason: str = ""


class ContainerStarting(Event, tag="container.starting", frozen=True):
    session_id: str
    container_name: str


class ContainerSpawned(Event, tag="container.spawned", frozen=True):
    session_id: str
    container_id: str
    container_name: str
    image: str
    mounts_digest: str


class ContainerIdle(Event, tag="container.idle", frozen=True):
    session_id: str
    container_id: str


class ContainerBusy(Event, tag="container.busy", frozen=True):
    """An idle container took work again (running <-> idle)."""

    session_id: str
    container_id: str


class ContainerStopping(Event, tag="container.stopping", frozen=True):
    session_id: str
    container_id: str
    reason: str


class ContainerStopped(Event, tag="container.stopped", frozen=True):
    session_id: str
    container_id: str | None
    reason: str
    exit_code: int | None = None


class ContainerAdopted(Event, tag="container.adopted", frozen=True):
    """A host restart found this session's container still running and kept it."""

    session_id: str
    container_id: str
    container_name: str


# -- delivery ------------------------------------------------------------------------


class MessageDelivered(Event, tag="message.delivered", frozen=True):
    session_id: str
    message_out_id: str
    platform_message_id: str | None = None
    channel_type: str | None = None


class DeliveryFailed(Event, tag="message.delivery_failed", frozen=True):
    session_id: str
    message_out_id: str
    attempt: int
    error: str
    final: bool = False


class MessageHeld(Event, tag="message.held", frozen=True):
    """An outbound message waits (agent-to-agent rate limit); it goes out once the window allows."""

    session_id: str
    message_out_id: str
    reason: str
    until: str | None = None


# -- questions and approvals -----------------------------------------------------------


class QuestionAsked(Event, tag="question.asked", frozen=True):
    question_id: str
    session_id: str
    message_out_id: str
    channel_type: str | None = None
    platform_id: str | None = None
    thread_id: str | None = None


class QuestionAnswered(Event, tag="question.answered", frozen=True):
    question_id: str
    answer: str
    user_id: str | None = None


class ApprovalRequested(Event, tag="approval.requested", frozen=True):
    approval_id: str
    request_id: str
    action: str
    payload: str
    session_id: str | None = None
    agent_group_id: str | None = None
    channel_type: str | None = None
    platform_id: str | None = None
    expires_at: str | None = None


class ApprovalCardSent(Event, tag="approval.card_sent", frozen=True):
    approval_id: str
    platform_message_id: str | None = None


class ApprovalResolved(Event, tag="approval.resolved", frozen=True):
    approval_id: str
    status: str  # "approved" | "rejected" | "expired"
    user_id: str | None = None
    reason: str = ""


class ApprovalAnswerRefused(Event, tag="approval.answer_refused", frozen=True):
    """A card click that did not resolve an approval: not the admin, wrong channel, too late, unknown option."""

    approval_id: str
    reason: str
    user_id: str | None = None
    channel_type: str | None = None
    platform_id: str | None = None


class SystemActionRefused(Event, tag="system.refused", frozen=True):
    """An agent's system action (a `kind='system'` row) the host did not carry out, and why; the agent is told."""

    session_id: str
    request_id: str
    action: str
    reason: str


class MessageRetried(Event, tag="message.retried", frozen=True):
    """A message whose container died or was stopped while holding it: pending again later, or failed for good."""

    session_id: str
    message_id: str
    tries: int
    status: str  # "pending" | "failed"
    retry_at: str | None = None
    reason: str = ""


# -- scheduled tasks -------------------------------------------------------------------


class TaskScheduled(Event, tag="task.scheduled", frozen=True):
    task_id: str
    session_id: str
    process_after: str | None = None
    recurrence: str | None = None


class TaskCancelled(Event, tag="task.cancelled", frozen=True):
    task_id: str
    session_id: str


class TaskPaused(Event, tag="task.paused", frozen=True):
    task_id: str
    session_id: str


class TaskResumed(Event, tag="task.resumed", frozen=True):
    task_id: str
    session_id: str


# -- model usage -------------------------------------------------------------------------------


class UsageRecorded(Event, tag="usage.recorded", frozen=True):
    """The tokens one model API response reported, as counted by the host's credential proxy."""

    agent_group_id: str
    session_id: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    model: str = ""


AnyEvent: TypeAlias = (
    GroupCreated
    | GroupInitialized
    | GroupConfigChanged
    | GroupDeleted
    | AgentCreated
    | MessagingGroupCreated
    | WiringCreated
    | WiringRemoved
    | DestinationGranted
    | DestinationRevoked
    | SessionCreated
    | SessionClosed
    | SessionActorCrashed
    | MessageRouted
    | MessageDropped
    | WakeRequested
    | ContainerStarting
    | ContainerSpawned
    | ContainerIdle
    | ContainerBusy
    | ContainerStopping
    | ContainerStopped
    | ContainerAdopted
    | MessageDelivered
    | DeliveryFailed
    | MessageHeld
    | QuestionAsked
    | QuestionAnswered
    | ApprovalRequested
    | ApprovalCardSent
    | ApprovalResolved
    | ApprovalAnswerRefused
    | SystemActionRefused
    | MessageRetried
    | TaskScheduled
    | TaskCancelled
    | TaskPaused
    | TaskResumed
    | UsageRecorded
)
"""Any event this version knows: what a stored record decodes into."""

ALL_EVENT_TYPES: tuple[type[Event], ...] = get_args(AnyEvent)


def type_name(event_type: type[Event]) -> str:
    """The stored tag of an event class."""
    tag = event_type.__struct_config__.tag
    assert isinstance(tag, str)
    return tag
