"""The few Docker operations the host needs, each safe to repeat after a crash.

A container's name is deterministic per session, so it doubles as an
idempotency key: a create that hits 409 means a container for this session
already exists, and we inspect it and adopt or replace it instead of starting
a second one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import docker
import docker.errors
import msgspec

LABEL_SESSION = "hermitcrab.session"
LABEL_GROUP = "hermitcrab.group"
LABEL_INSTANCE = "hermitcrab.instance"


class ContainerInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the host needs to know about one of its containers."""

    id: str
    name: str
    session_id: str
    group_id: str
    running: bool
    exited: bool
    exit_code: int | None
    started_at: float


class StartResult(msgspec.Struct, frozen=True, kw_only=True):
    container_id: str
    adopted: bool
    started_at: float


class RuntimeError_(Exception):
    """Docker refused an operation; the message says which and why."""


def new_client() -> docker.DockerClient:
    """One client per actor that talks to Docker (a shared one crashed under load)."""
    return docker.from_env(timeout=60)


def _parse_started(value: str | None) -> float:
    if not value or value.startswith("0001-"):
        return 0.0
    trimmed = value.rstrip("Z")
    if "." in trimmed:
        head, frac = trimmed.split(".", 1)
        trimmed = f"{head}.{frac[:6]}"
    return datetime.fromisoformat(trimmed + "+00:00").timestamp()


def _info(attrs: Mapping[str, Any]) -> ContainerInfo:
    labels = attrs.get("Config", {}).get("Labels") or {}
    state = attrs.get("State", {})
    return ContainerInfo(
        id=attrs["Id"],
        name=attrs.get("Name", "").lstrip("/"),
        session_id=labels.get(LABEL_SESSION, ""),
        group_id=labels.get(LABEL_GROUP, ""),
        running=bool(state.get("Running")),
        exited=state.get("Status") in ("exited", "dead"),
        exit_code=None if state.get("Running") else state.get("ExitCode"),
        started_at=_parse_started(state.get("StartedAt")),
    )


_EXIT_STATUS = re.compile(r"Exited \((-?\d+)\)")


def _summary_info(summary: Mapping[str, Any]) -> ContainerInfo:
    labels = summary.get("Labels") or {}
    running = summary.get("State") == "running"
    exit_match = _EXIT_STATUS.search(summary.get("Status", ""))
    names = summary.get("Names") or [""]
    return ContainerInfo(
        id=summary["Id"],
        name=names[0].lstrip("/"),
        session_id=labels.get(LABEL_SESSION, ""),
        group_id=labels.get(LABEL_GROUP, ""),
        running=running,
        exited=summary.get("State") in ("exited", "dead"),
        exit_code=None if running or not exit_match else int(exit_match.group(1)),
        started_at=float(summary.get("Created", 0)),
    )


class ContainerRuntime:
    """Creates, starts, inspects and stops hermitcrab's containers through the docker SDK."""

    def __init__(self, client: docker.DockerClient, instance_id: str) -> None:
        self._client = client
        self._instance_id = instance_id

    def start(self, create_kwargs: Mapping[str, Any]) -> StartResult:
        """Start the container described by `create_kwargs`, or adopt the one already running under its name."""
        name = str(create_kwargs["name"])
        try:
            container = self._client.containers.create(**create_kwargs)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise RuntimeError_(f"docker refused to create {name}: {exc.explanation or exc}") from exc
            existing = self.inspect(name)
            if existing is not None and existing.running:
                return StartResult(container_id=existing.id, adopted=True, started_at=existing.started_at)
            self.remove(name)
            container = self._client.containers.create(**create_kwargs)
        try:
            container.start()
        except docker.errors.APIError as exc:
            self.remove(container.id)
            raise RuntimeError_(f"docker could not start {name}: {exc.explanation or exc}") from exc
        info = self.inspect(container.id)
        return StartResult(container_id=container.id, adopted=False, started_at=info.started_at if info else 0.0)

    def inspect(self, name_or_id: str) -> ContainerInfo | None:
        try:
            attrs = self._client.api.inspect_container(name_or_id)
        except docker.errors.NotFound:
            return None
        return _info(attrs)

    def stop(self, name_or_id: str, timeout_s: int = 5) -> int | None:
        """Stop (SIGTERM, then SIGKILL after the timeout) and return the exit code, None if it was gone."""
        try:
            self._client.api.stop(name_or_id, timeout=timeout_s)
        except docker.errors.NotFound:
            return None
        info = self.inspect(name_or_id)
        return info.exit_code if info else None

    def remove(self, name_or_id: str) -> None:
        try:
            self._client.api.remove_container(name_or_id, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise

    def last_log_line(self, name_or_id: str) -> str:
        """The container's last non-empty output line (why a crashed runner gave up), or "" if none."""
        try:
            output = self._client.api.logs(name_or_id, stdout=True, stderr=True, tail=5)
        except docker.errors.NotFound:
            return ""
        lines = [line.strip() for line in output.decode(errors="replace").splitlines() if line.strip()]
        return lines[-1][:500] if lines else ""

    def list_ours(self) -> list[ContainerInfo]:
        """Every container of this install, running or not, from one listing call (no per-container inspect).

        `started_at` is the creation time here; inspect a container when its exact start matters.
        """
        summaries = self._client.api.containers(all=True, filters={"label": f"{LABEL_INSTANCE}={self._instance_id}"})
        return [_summary_info(summary) for summary in summaries]

    def close(self) -> None:
        self._client.close()
