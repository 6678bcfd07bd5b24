"""Helpers for tests that run a real host against the real Docker engine."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import docker
import docker.errors

from actors.docker_runtime import LABEL_INSTANCE, LABEL_SESSION
from actors.host import Host
from config.settings import Settings, load_settings
from events import types as ev
from events.log import EventLog

MakeHost = Callable[..., Host]  # the `make_host` fixture: make_host(*channels, **env_overrides)


def host_settings(tmp_path: Path, **overrides: str) -> Settings:
    """Settings for a host on a private data dir, with containers cut off from every network."""
    env: dict[str, str] = {
        "HOME": str(tmp_path / "home"),
        "HERMITCRAB_DATA_DIR": str(tmp_path / "data"),
        "HERMITCRAB_MOUNT_ALLOWLIST": str(tmp_path / "home" / "allowlist.json"),
        "TZ": "Pacific/Auckland",
        "HERMITCRAB_PROVIDER": "echo",
        "HERMITCRAB_CONTAINER_NETWORK": "none",
        "HERMITCRAB_TICK_INTERVAL": "200ms",
        "HERMITCRAB_LOG_LEVEL": "warning",
    }
    env.update(overrides)
    return load_settings(env=env, env_file=tmp_path / "absent.env")


def create_group(log: EventLog, name: str, *, is_admin: bool = False, folder: str | None = None) -> str:
    group_id = f"ag-{uuid.uuid4().hex[:10]}"
    log.append(
        f"group:{group_id}",
        [ev.GroupCreated(group_id=group_id, name=name, folder=folder or name, is_admin=is_admin)],
    )
    return group_id


def create_session(log: EventLog, group_id: str) -> str:
    session_id = f"sess-{uuid.uuid4().hex[:10]}"
    log.append(f"session:{session_id}", [ev.SessionCreated(session_id=session_id, agent_group_id=group_id)])
    return session_id


def containers_of(client: docker.DockerClient, settings: Settings, session_id: str | None = None) -> list[dict]:
    labels = [f"{LABEL_INSTANCE}={settings.instance_id}"]
    if session_id:
        labels.append(f"{LABEL_SESSION}={session_id}")
    return list(client.api.containers(all=True, filters={"label": labels}))


def running_count(client: docker.DockerClient, settings: Settings) -> int:
    return sum(1 for c in containers_of(client, settings) if c["State"] == "running")


def creates_since(client: docker.DockerClient, settings: Settings, since: float, session_id: str) -> int:
    """How many containers Docker itself says it created for a session (not our own bookkeeping)."""
    stream = client.events(
        since=int(since) - 1,
        until=int(time.time()) + 1,
        decode=True,
        filters={
            "type": "container",
            "event": ["create"],
            "label": [f"{LABEL_INSTANCE}={settings.instance_id}", f"{LABEL_SESSION}={session_id}"],
        },
    )
    return sum(1 for _ in stream)


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def remove_instance_containers(client: docker.DockerClient, settings: Settings) -> None:
    for container in containers_of(client, settings):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_container(container["Id"], force=True)


def env_of(settings: Settings) -> Mapping[str, str]:
    """The environment a host subprocess needs to reproduce these settings."""
    return {
        "HERMITCRAB_DATA_DIR": str(settings.data_dir),
        "HERMITCRAB_MOUNT_ALLOWLIST": str(settings.mount_allowlist),
        "HERMITCRAB_PROVIDER": settings.provider,
        "HERMITCRAB_CONTAINER_NETWORK": settings.container_network,
        "HERMITCRAB_TICK_INTERVAL": f"{settings.tick_interval_s}s",
        "TZ": settings.timezone,
    }
