"""Follows Docker's event stream so container exits are noticed without polling each container.

The stream ends silently when its connection drops and the daemon keeps only
its last 256 events, so the watcher reconnects with `since=` and asks for a
full reconcile after every reconnect: an exit missed in the gap is still found.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import docker

from actors.docker_runtime import LABEL_INSTANCE, LABEL_SESSION
from config.logs import get_logger

log = get_logger("docker-events")

ExitCallback = Callable[[str, str, int | None], None]


class DockerEventsWatcher:
    """A daemon thread turning `die` events of this install's containers into callbacks."""

    def __init__(
        self,
        client_factory: Callable[[], docker.DockerClient],
        instance_id: str,
        on_exit: ExitCallback,
        on_reconnect: Callable[[], None],
    ) -> None:
        self._client_factory = client_factory
        self._instance_id = instance_id
        self._on_exit = on_exit
        self._on_reconnect = on_reconnect
        self._stopping = threading.Event()
        self._stream: Any = None
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="docker-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_connected(self, timeout_s: float) -> bool:
        """True once the first subscription is live (tests and start-up wait for it)."""
        return self._connected.wait(timeout_s)

    def stop(self) -> None:
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        since = time.time()
        first = True
        while not self._stopping.is_set():
            try:
                client = self._client_factory()
                self._stream = client.events(
                    since=int(since) - 1,
                    decode=True,
                    filters={"type": "container", "event": ["die"], "label": f"{LABEL_INSTANCE}={self._instance_id}"},
                )
                self._connected.set()
                if not first:
                    self._on_reconnect()
                first = False
                for event in self._stream:
                    since = max(since, float(event.get("time", since)))
                    self._handle(event)
            except Exception as exc:  # the engine went away: keep trying until told to stop
                if not self._stopping.is_set():
                    log.warning("docker.events.disconnected", error=str(exc))
            if not self._stopping.is_set():
                self._stopping.wait(1.0)

    def _handle(self, event: dict[str, Any]) -> None:
        attributes = event.get("Actor", {}).get("Attributes", {})
        session_id = attributes.get(LABEL_SESSION)
        if not session_id:
            return
        raw_code = attributes.get("exitCode")
        exit_code = int(raw_code) if raw_code is not None else None
        self._on_exit(session_id, event.get("id", ""), exit_code)
