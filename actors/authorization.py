"""Who may send where, decided on the host from the log's grants (the container's map is only advisory).

An agent group may send to a channel conversation or to another agent group
only when it holds a destination for it (`destination.granted`). A container
can write any routing it likes into outbound.db; these checks are what stop it.
"""

from __future__ import annotations

from events.model import Destination
from events.store import Store


def channel_grant(store: Store, agent_group_id: str, channel_type: str, platform_id: str) -> Destination | None:
    """The source group's destination for a chat, matched by messaging group or by platform address."""
    messaging_group = store.messaging_group_by_platform(channel_type, platform_id)
    for destination in store.destinations(agent_group_id):
        if destination.type != "channel":
            continue
        if messaging_group is not None and destination.messaging_group_id == messaging_group.id:
            return destination
        if (destination.channel_type, destination.platform_id) == (channel_type, platform_id):
            return destination
    return None


def agent_grant(store: Store, agent_group_id: str, target_group_id: str) -> Destination | None:
    """The source group's destination for another agent group, if it holds one."""
    return next(
        (
            destination
            for destination in store.destinations(agent_group_id)
            if destination.type == "agent" and destination.target_agent_group_id == target_group_id
        ),
        None,
    )
