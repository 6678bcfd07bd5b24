"""What every host actor is handed at start: settings, the event log and a way to reach Docker.

A frozen bundle rather than globals, so tests can build a host on a temp data
directory and two hosts in one process never share state by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import docker
from events.log import EventLog

from actors.docker_runtime import new_client
from config.settings import Settings


@dataclass(frozen=True)
class HostServices:
    settings: Settings
    log: EventLog
    docker_client_factory: Callable[[], docker.DockerClient] = new_client
