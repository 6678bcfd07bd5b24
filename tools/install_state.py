"""Does the Docker engine answer, is the agent image there, was it built from the current source?

Answered without building or pulling anything.

The image carries the hash of its build context (`hermitcrab.context-hash`);
the same hash is computed here from `container/` and the base image that a
build would use now. Only images already present are looked at, so `status`
and `doctor` stay fast and never touch a registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import docker
import docker.errors
import msgspec

from config.settings import Settings
from tools.image import (
    CONTEXT_HASH_LABEL,
    PYTHON_VERSION,
    base_image_name,
    context_hash,
    context_sources,
)

ENGINE_TIMEOUT_S = 10


class EngineState(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    detail: str


def default_client() -> docker.DockerClient:
    return docker.from_env(timeout=ENGINE_TIMEOUT_S)


def connect_engine(
    client_factory: Callable[[], docker.DockerClient] = default_client,
) -> tuple[EngineState, docker.DockerClient | None]:
    """The engine's version, or why it does not answer; the client when it does (the caller closes it)."""
    try:
        client = client_factory()
        version = client.version().get("Version", "?")
    except (docker.errors.DockerException, OSError) as exc:
        return EngineState(ok=False, detail=" ".join(str(exc).split())), None
    return EngineState(ok=True, detail=f"Docker {version}"), client


class ImageState(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    present: bool
    image_id: str | None = None
    built_from: str | None = None
    source_hash: str | None = None
    up_to_date: bool | None = None
    detail: str = ""


def _inspect(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    try:
        attrs: dict[str, Any] = client.api.inspect_image(name)
    except docker.errors.ImageNotFound:
        return None
    return attrs


def _base_id(client: docker.DockerClient, settings: Settings) -> str | None:
    """The id of the base a build would use now (None when it is not here)."""
    name = base_image_name(settings)
    found = _inspect(client, name) if name else None
    return str(found["Id"]) if found is not None else None


def image_state(client: docker.DockerClient, settings: Settings) -> ImageState:
    attrs = _inspect(client, settings.image)
    if attrs is None:
        return ImageState(name=settings.image, present=False, detail="not built")
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    built_from = labels.get(CONTEXT_HASH_LABEL)
    base_id = _base_id(client, settings)
    image_id = str(attrs["Id"])
    if base_id is None:
        return ImageState(
            name=settings.image,
            present=True,
            image_id=image_id,
            built_from=built_from,
            detail="its base image is gone, so a build would start from scratch",
        )
    source = context_hash(context_sources(settings.project_root / "container"), base_id, PYTHON_VERSION)
    fresh = built_from == source
    return ImageState(
        name=settings.image,
        present=True,
        image_id=image_id,
        built_from=built_from,
        source_hash=source,
        up_to_date=fresh,
        detail="matches container/" if fresh else "container/ changed since it was built",
    )
