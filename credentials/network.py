"""Where the proxy listens, and the name containers use to reach it.

For users the containers sit on Docker's default bridge: the proxy binds the
bridge's gateway address, which only the host and its containers can reach
(never all interfaces), and containers call it `host.docker.internal` (the
container spec maps that name to the host gateway). In tests containers share
the host's network (or have none), so loopback is enough.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from config.settings import Settings

CONTAINER_HOSTNAME = "host.docker.internal"
LOOPBACK = "127.0.0.1"


class ProxyAddressError(RuntimeError):
    """No safe address to listen on could be found; the message says what to check."""


@dataclass(frozen=True)
class ListenAddress:
    bind_host: str
    container_host: str


def bridge_gateway(client: docker.DockerClient) -> str:
    """The IPv4 gateway of Docker's `bridge` network, from the engine's own IPAM record.

    An engine that records only the subnet (engine 20.10 does) uses the
    subnet's first address as the gateway, so that is the answer then.
    """
    try:
        ipam: dict[str, Any] = client.networks.get("bridge").attrs.get("IPAM") or {}
    except docker.errors.DockerException as exc:
        raise ProxyAddressError(f"cannot read Docker's bridge network ({exc}); is the engine running?") from exc
    for config in ipam.get("Config") or []:
        gateway, subnet = config.get("Gateway"), config.get("Subnet")
        try:
            if gateway and ipaddress.ip_address(gateway).version == 4:
                return str(gateway)
            if subnet and ipaddress.ip_network(subnet, strict=False).version == 4:
                return str(next(ipaddress.ip_network(subnet, strict=False).hosts()))
        except (ValueError, StopIteration):
            continue
    raise ProxyAddressError(
        "Docker's bridge network has no IPv4 gateway to bind the credential proxy to; "
        "check `docker network inspect bridge`"
    )


def listen_address(settings: Settings, docker_client_factory: Callable[[], docker.DockerClient]) -> ListenAddress:
    if settings.container_network != "bridge":
        return ListenAddress(LOOPBACK, LOOPBACK)
    client = docker_client_factory()
    try:
        return ListenAddress(bridge_gateway(client), CONTAINER_HOSTNAME)
    finally:
        client.close()
