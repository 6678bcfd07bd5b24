"""What every host actor is handed at start: settings, the event log and a way to reach Docker.

A frozen bundle rather than globals, so tests can build a host on a temp data
directory and two hosts in one process never share state by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import docker

from actors.docker_runtime import new_client
from actors.outlet import ChannelOutlet
from config.settings import Settings
from events.log import EventLog
from events.model import AgentGroup, Session


class ContainerCredentials(Protocol):
    """Hands a container what it needs to reach the model API without ever holding the real secret."""

    def env_for(self, session: Session, group: AgentGroup) -> dict[str, str]: ...


@dataclass(frozen=True)
class HostServices:
    settings: Settings
    log: EventLog
    docker_client_factory: Callable[[], docker.DockerClient] = new_client
    credentials: ContainerCredentials | None = None
    outlet: ChannelOutlet | None = None
    """How host-originated cards and notices reach a conversation (set once the channels are up)."""
