"""Messages a GroupActor understands (kept apart so SessionActors need not import the actor)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EnsureInitialized:
    """Ask: make sure the group's filesystem exists; reply with the current AgentGroup.

    `instructions` seed a new group's CLAUDE.md; they never overwrite an existing one.
    """

    instructions: str | None = None


@dataclass(frozen=True, slots=True)
class BuildGroupImage:
    """Ask: build the group's image from its configured packages; reply with the image tag."""
