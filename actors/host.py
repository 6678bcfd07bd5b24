"""The host supervisor: starts the actors, recovers after a restart, ticks, and shuts down cleanly.

Recovery never kills a healthy agent: containers of active sessions that are
still running are adopted as they are; only containers of closed or unknown
sessions are removed, and sessions whose container vanished are marked stopped.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from typing import Any

import docker.errors
import pykka
from apscheduler.schedulers.background import BackgroundScheduler

from actors import messages as m
from actors.channel_hub import ChannelHub
from actors.docker_events import DockerEventsWatcher
from actors.host_lock import HostLock
from actors.outlet import HubOutlet
from actors.reconciler import START, ReconcilerActor
from actors.services import HostServices
from actors.session_manager import SessionManager
from actors.sweep import SweepActor
from actors.system_actions import SystemActor
from actors.system_messages import ResendUnsentCards
from channels.adapter import ChannelAdapter
from config.logs import get_logger
from config.settings import Settings
from credentials.proxy import CredentialProxy
from events.log import EventLog

log = get_logger("host")

ACTOR_STACK_BYTES = 256 * 1024
ASK_TIMEOUT_S = 30.0


class DockerUnavailableError(RuntimeError):
    """The Docker engine does not answer; the host cannot run agents without it."""


class Host:
    """Owns the running actor system for one data directory."""

    def __init__(self, settings: Settings, adapters: Sequence[ChannelAdapter] | None = None) -> None:
        """`adapters`: run exactly these channels (tests, benchmarks) instead of the registry's enabled ones."""
        self.settings = settings
        self._adapters = adapters
        self._lock: HostLock | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._watcher: DockerEventsWatcher | None = None
        self.log: EventLog | None = None
        self.credential_proxy: CredentialProxy | None = None
        self.manager: pykka.ActorRef[Any] | None = None
        self.reconciler: pykka.ActorRef[Any] | None = None
        self.sweeper: pykka.ActorRef[Any] | None = None
        self.system: pykka.ActorRef[Any] | None = None
        self.channels: pykka.ActorRef[Any] | None = None

    def start(self) -> None:
        threading.stack_size(ACTOR_STACK_BYTES)
        self._lock = HostLock.acquire(self.settings.data_dir)
        try:
            self._start_locked()
        except BaseException:
            self.stop()
            raise

    def _start_locked(self) -> None:
        self.log = EventLog.open(self.settings.central_db)
        services = HostServices(settings=self.settings, log=self.log)
        _require_docker(services)
        self.credential_proxy = CredentialProxy(self.settings, self.log, services.docker_client_factory).start()
        outlet = HubOutlet()
        services = dataclasses.replace(services, credentials=self.credential_proxy, outlet=outlet)
        self.manager = SessionManager.start(services)
        self.reconciler = ReconcilerActor.start(services, self.manager)
        manager, reconciler = self.manager, self.reconciler
        self._watcher = DockerEventsWatcher(
            services.docker_client_factory,
            self.settings.instance_id,
            on_exit=lambda sid, cid, code: manager.tell(m.ContainerExited(sid, cid, code)),
            on_reconnect=lambda: reconciler.tell(m.Reconcile("docker events reconnected")),
        )
        self._watcher.start()
        self._watcher.wait_connected(10.0)
        reconciler.ask(m.Reconcile(START), timeout=ASK_TIMEOUT_S)
        self.system = SystemActor.start(services, manager)
        self.sweeper = SweepActor.start(services, manager, self.system)
        self.sweep()
        self.channels = ChannelHub.start(services, manager, self.system, self._adapters)
        self.channels.ask(m.QueryState(), timeout=ASK_TIMEOUT_S)  # the adapters are set up before "ready"
        outlet.attach(self.channels)
        self.system.tell(ResendUnsentCards())
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.tick, "interval", seconds=self.settings.tick_interval_s, coalesce=True, max_instances=1
        )
        self._scheduler.add_job(
            self.sweep, "interval", seconds=self.settings.sweep_interval_s, coalesce=True, max_instances=1
        )
        self._scheduler.add_job(
            self.delivery_sweep,
            "interval",
            seconds=self.settings.delivery_sweep_interval_s,
            coalesce=True,
            max_instances=1,
        )
        self._scheduler.start()
        log.info("host.ready", data_dir=str(self.settings.data_dir), instance=self.settings.instance_id)

    def tick(self) -> None:
        """The scheduler's job body: only tells, never blocks."""
        if self.manager is not None and self.reconciler is not None:
            self.manager.tell(m.Tick(time.time()))
            self.reconciler.tell(m.Reconcile("tick"))

    def sweep(self) -> None:
        if self.sweeper is not None:
            self.sweeper.tell(m.Sweep(time.time()))

    def delivery_sweep(self) -> None:
        if self.channels is not None:
            self.channels.tell(m.DeliverySweep(time.time()))

    def wake(self, session_id: str, reason: str) -> None:
        assert self.manager is not None
        self.manager.tell(m.WakeSession(session_id, reason))

    def stop(self, *, stop_containers: bool = False) -> None:
        """Stop accepting work and stop the actors; containers keep running unless asked (they are adopted later)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self.channels is not None:  # first: no new input, no delivery racing the shutdown
            self.channels.stop(block=True, timeout=ASK_TIMEOUT_S)
            self.channels = None
        if stop_containers and self.manager is not None and self.log is not None:
            self._stop_all_containers()
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        for ref in (self.sweeper, self.system, self.reconciler, self.manager):
            if ref is not None:
                ref.stop(block=True, timeout=ASK_TIMEOUT_S)
        self.manager = self.reconciler = self.sweeper = self.system = None
        if self.credential_proxy is not None:
            self.credential_proxy.stop()
            self.credential_proxy = None
        if self.log is not None:
            self.log.close()
            self.log = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        log.info("host.stopped", stopped_containers=stop_containers)

    def _stop_all_containers(self, timeout_s: float = 30.0) -> None:
        assert self.manager is not None and self.log is not None
        running = [s for s in self.log.store.sessions(status="active") if s.container_id]
        for session in running:
            self.manager.tell(m.StopSession(session.id, "host shutdown"))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not any(s.container_id for s in self.log.store.sessions(status="active")):
                return
            time.sleep(0.1)


def _require_docker(services: HostServices) -> None:
    try:
        client = services.docker_client_factory()
        client.ping()
        client.close()
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(
            f"the Docker engine does not answer ({exc}); start it, e.g. `python -m tools.docker_engine ensure`"
        ) from exc
