"""Messages of the system-actions actor and its rebuild worker (the public ones, SystemRequest and
ApprovalAnswer, live in actors.messages beside the delivery messages that carry them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExpireApprovals:
    """From the sweep: resolve as expired every pending approval whose time ran out (`now` is UNIX time)."""

    now: float


@dataclass(frozen=True, slots=True)
class ResendUnsentCards:
    """From the host at start, once channels are up: post again every pending approval's card that no
    record says was sent (a crash between recording the approval and posting its card)."""


@dataclass(frozen=True, slots=True)
class CardPosted:
    """The approval card reached the admin's conversation (or could not: `error`)."""

    approval_id: str
    platform_message_id: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BuildImage:
    """To the rebuild worker: build the group's image for an approved rebuild."""

    approval_id: str
    group_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class BuildFinished:
    """From the rebuild worker: the image tag built, or why it failed."""

    approval_id: str
    user_id: str
    tag: str | None
    error: str | None = None
