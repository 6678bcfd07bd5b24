"""GroupActor: one per agent group; owns its one-time filesystem init and its image builds.

Putting both behind one mailbox means two sessions of a group spawning at once
never race on creating the same folders, and two rebuild requests never run
`docker build` for the same tag concurrently. It asks nobody, so it can never
take part in an ask cycle.
"""

from __future__ import annotations

import io
from typing import Any

import msgspec
import pykka

from actors.group_fs import init_group_filesystem
from actors.group_messages import BuildGroupImage, EnsureInitialized
from actors.image_recipe import build_group_dockerfile, group_image_tag
from actors.services import HostServices
from config.logs import get_logger
from events import types as ev
from events.model import AgentGroup

log = get_logger("group")


class GroupNotFoundError(LookupError):
    """The group is gone from the projection (deleted while a request was queued)."""


class ImageBuildError(RuntimeError):
    """`docker build` of a per-group image failed; the message carries Docker's last words."""


class GroupActor(pykka.ThreadingActor):
    def __init__(self, services: HostServices, group_id: str) -> None:
        super().__init__()
        self._services = services
        self._group_id = group_id
        self._stream = f"group:{group_id}"
        self._log = log.bind(group_id=group_id)

    def on_receive(self, message: Any) -> Any:
        match message:
            case EnsureInitialized(instructions=instructions):
                return self._ensure_initialized(instructions)
            case BuildGroupImage():
                return self._build_image()
        raise TypeError(f"GroupActor cannot handle {message!r}")

    def _group(self) -> AgentGroup:
        group = self._services.log.store.agent_group(self._group_id)
        if group is None:
            raise GroupNotFoundError(f"agent group {self._group_id} does not exist")
        return group

    def _ensure_initialized(self, instructions: str | None = None) -> AgentGroup:
        """Run the idempotent init (defensively, also for groups that predate it) and record what ran."""
        group = self._group()
        steps = init_group_filesystem(self._services.settings, group, instructions)
        if steps or not group.initialized:
            self._services.log.append(self._stream, [ev.GroupInitialized(group_id=group.id, steps=steps)])
            group = self._group()
        return group

    def _build_image(self) -> str:
        group = self._ensure_initialized()
        settings = self._services.settings
        dockerfile = build_group_dockerfile(settings.image, group.config.packages)
        tag = group_image_tag(group.id)
        client = self._services.docker_client_factory()
        try:
            last_lines: list[str] = []
            for chunk in client.api.build(
                fileobj=io.BytesIO(dockerfile.encode()),
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                network_mode="host",
            ):
                if "error" in chunk:
                    raise ImageBuildError(f"building {tag} failed: {chunk['error'].strip()}")
                line = str(chunk.get("stream", "")).strip()
                if line:
                    last_lines = [*last_lines[-9:], line]
                    self._log.info("image.build", line=line)
        finally:
            client.close()
        config = msgspec.structs.replace(group.config, image_tag=tag)
        self._services.log.append(
            self._stream, [ev.GroupConfigChanged(group_id=group.id, config=config, reason=f"image {tag} built")]
        )
        return tag
