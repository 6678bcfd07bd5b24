"""Finds channel adapters through the `hermitcrab.channels` entry-point group.

A new channel is a package that declares an entry point there; the host
enumerates the group at start and never names an adapter in its own code.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from channels.adapter import ChannelAdapter

ENTRY_POINT_GROUP = "hermitcrab.channels"

AdapterFactory = Callable[[], ChannelAdapter]


class UnknownChannelError(LookupError):
    """No installed adapter has this channel type."""


def discover() -> dict[str, AdapterFactory]:
    """Every installed adapter factory by channel type."""
    found: dict[str, AdapterFactory] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        factory = entry.load()
        found[entry.name] = factory
    return found


def factory_for(channel_type: str) -> AdapterFactory:
    factories = discover()
    if channel_type not in factories:
        known = ", ".join(sorted(factories)) or "none"
        raise UnknownChannelError(f"no channel adapter named {channel_type!r} is installed (installed: {known})")
    return factories[channel_type]
