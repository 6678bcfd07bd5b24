"""RebuildWorker: waits out per-group image builds so the system-actions actor never does.

A build runs `apt-get`/`pip` and can take minutes. The worker asks the group's
one GroupActor (through the SessionManager, which owns the refs) to build, and
tells the result back; meanwhile schedule_task and other requests keep flowing.
Asks go only downward: worker -> manager (answers from its own map) and
worker -> GroupActor (asks nobody).
"""

from __future__ import annotations

from typing import Any

import docker.errors
import pykka

from actors import messages as m
from actors.group_actor import GroupNotFoundError, ImageBuildError
from actors.group_messages import BuildGroupImage
from actors.system_messages import BuildFinished, BuildImage
from config.logs import get_logger

log = get_logger("rebuild")

BUILD_TIMEOUT_S = 1800.0
REF_TIMEOUT_S = 10.0
_BUILD_ERRORS = (ImageBuildError, GroupNotFoundError, ValueError, OSError, docker.errors.DockerException, pykka.Timeout)


class RebuildWorker(pykka.ThreadingActor):
    def __init__(self, manager: pykka.ActorRef[Any], reply_to: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self._manager = manager
        self._reply_to = reply_to

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, BuildImage):
            self._build(message)
        return None

    def _build(self, request: BuildImage) -> None:
        try:
            group = self._manager.ask(m.GroupRefQuery(request.group_id), timeout=REF_TIMEOUT_S)
            assert isinstance(group, pykka.ActorRef)
            tag = group.ask(BuildGroupImage(), timeout=BUILD_TIMEOUT_S)
        except _BUILD_ERRORS as exc:
            log.error("rebuild.failed", group_id=request.group_id, approval_id=request.approval_id, error=str(exc))
            self._reply_to.tell(BuildFinished(request.approval_id, request.user_id, None, str(exc) or repr(exc)))
            return
        log.info("rebuild.done", group_id=request.group_id, tag=tag)
        self._reply_to.tell(BuildFinished(request.approval_id, request.user_id, str(tag)))
