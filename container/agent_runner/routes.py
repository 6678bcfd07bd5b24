"""Where a message goes: the routing triple shared by inbound rows, outbound rows and destinations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Route:
    """A channel conversation (`channel_type`, `platform_id`, optional thread), or `agent`/<group id>."""

    channel_type: str
    platform_id: str
    thread_id: str | None = None

    @classmethod
    def of(cls, channel_type: str | None, platform_id: str | None, thread_id: str | None = None) -> Route | None:
        if not channel_type or not platform_id:
            return None
        return cls(channel_type, platform_id, thread_id or None)

    def same_conversation(self, other: Route | None) -> bool:
        return other is not None and (self.channel_type, self.platform_id) == (other.channel_type, other.platform_id)


@dataclass(frozen=True)
class Destination:
    """A name the agent may send to (a row of inbound.db's `destinations`)."""

    name: str
    display_name: str
    type: Literal["channel", "agent"]
    channel_type: str | None = None
    platform_id: str | None = None
    agent_group_id: str | None = None

    def route(self, origin: Route | None) -> Route | None:
        """The route to this destination; a reply into the origin's own channel keeps its thread."""
        if self.type == "agent":
            return Route.of("agent", self.agent_group_id)
        base = Route.of(self.channel_type, self.platform_id)
        if base is None:
            return None
        if origin is not None and base.same_conversation(origin):
            return Route(base.channel_type, base.platform_id, origin.thread_id)
        return base

    def matches(self, route: Route) -> bool:
        """Whether an inbound message from `route` came from this destination (reverse lookup)."""
        if route.channel_type == "agent":
            return self.type == "agent" and self.agent_group_id == route.platform_id
        return self.type == "channel" and (self.channel_type, self.platform_id) == (
            route.channel_type,
            route.platform_id,
        )
