"""ChannelHub: starts the channel adapters, the router and one DeliveryActor per lane, and stops them.

Adapters come from the registry (the `hermitcrab.channels` entry points,
filtered by HERMITCRAB_CHANNELS), or are handed in directly (tests, the
benchmark). A registry factory that takes an argument gets the host's
settings, so an adapter never guesses its data directory from the environment.

The adapters' callbacks only tell the router; the outbound watcher only tells
the delivery actors (those with new rows, see `outbound_changes`). The hub
itself handles the slow things: adapter set-up and tear-down, the periodic
delivery sweep, and telling adapters which conversations are wired.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import pykka

from actors import messages as m
from actors.channel_courier import ChannelCourier
from actors.delivery import INTERNAL_LANE, DeliveryActor
from actors.file_watch import SessionFolderWatcher
from actors.internal_courier import InternalCourier
from actors.outbound_changes import OutboundChanges
from actors.outbox_files import clear_staging
from actors.router import RouterActor
from actors.services import HostServices
from channels.adapter import CardAction, ChannelAdapter, Conversation, InboundChat
from channels.registry import AdapterFactory, discover
from config.logs import get_logger
from config.settings import Settings

log = get_logger("channels")

STOP_TIMEOUT_S = 30.0


class HubCallbacks:
    """The `HostCallbacks` adapters call, from their own threads: each call is one tell to the router."""

    def __init__(self, router: pykka.ActorRef[Any]) -> None:
        self._router = router

    def _tell(self, message: Any) -> None:
        try:
            self._router.tell(message)
        except pykka.ActorDeadError:
            log.warning("channel.host_stopping", message=type(message).__name__)

    def on_inbound(self, channel_type: str, message: InboundChat) -> None:
        self._tell(m.RouteInbound(channel_type, message))

    def on_metadata(self, channel_type: str, platform_id: str, name: str | None, is_group: bool) -> None:
        self._tell(m.ChannelMetadata(channel_type, platform_id, name, is_group))

    def on_card_action(self, channel_type: str, action: CardAction) -> None:
        self._tell(m.CardPressed(channel_type, action))


def _instantiate(factory: AdapterFactory, settings: Settings) -> ChannelAdapter:
    takes_settings = bool(inspect.signature(factory).parameters)
    return factory(settings) if takes_settings else factory()  # type: ignore[call-arg]


def discover_enabled(settings: Settings) -> list[ChannelAdapter]:
    """An adapter for every enabled channel that is installed; an enabled one that is not is logged."""
    factories = discover()
    adapters = []
    for name in settings.channels:
        factory = factories.get(name)
        if factory is None:
            log.warning("channel.not_installed", channel=name, installed=sorted(factories))
            continue
        adapters.append(_instantiate(factory, settings))
    return adapters


class ChannelHub(pykka.ThreadingActor):
    def __init__(
        self,
        services: HostServices,
        manager: pykka.ActorRef[Any],
        system_actions: pykka.ActorRef[Any] | None = None,
        adapters: Sequence[ChannelAdapter] | None = None,
    ) -> None:
        super().__init__()
        self._services = services
        self._manager = manager
        self._system_actions = system_actions
        self._given = list(adapters) if adapters is not None else None
        self._adapters: dict[str, ChannelAdapter] = {}
        self._deliveries: dict[str, pykka.ActorRef[Any]] = {}
        self._router: pykka.ActorRef[Any] | None = None
        self._watcher: SessionFolderWatcher | None = None
        self._conversations: dict[str, list[Conversation]] = {}

    # -- lifecycle ----------------------------------------------------------------------------------

    def on_start(self) -> None:
        services = self._services
        candidates = self._given if self._given is not None else discover_enabled(services.settings)
        capabilities = {adapter.channel_type: adapter.capabilities for adapter in candidates}
        self._router = RouterActor.start(services, self._manager, self.actor_ref, capabilities, self._system_actions)
        callbacks = HubCallbacks(self._router)
        for adapter in candidates:
            conversations = self._wired_conversations(adapter.channel_type)
            try:
                adapter.setup(callbacks, conversations)
            except Exception as exc:  # one broken channel must not keep the others (or the host) down
                log.error("channel.setup_failed", channel=adapter.channel_type, error=repr(exc))
                continue
            self._adapters[adapter.channel_type] = adapter
            self._conversations[adapter.channel_type] = conversations
        lanes = frozenset(self._adapters)
        clear_staging(services.settings.data_dir)
        for channel_type, adapter in self._adapters.items():
            courier = ChannelCourier(services, adapter)
            self._deliveries[channel_type] = DeliveryActor.start(services, self._manager, channel_type, courier, lanes)
        internal = InternalCourier(services, self._manager, self._system_actions)
        self._deliveries[INTERNAL_LANE] = DeliveryActor.start(services, self._manager, INTERNAL_LANE, internal, lanes)
        changes = OutboundChanges(self._deliveries, lanes)
        self._watcher = SessionFolderWatcher(services.settings.sessions_dir, changes).start()
        for ref in self._deliveries.values():
            ref.tell(m.DeliverySweep(0.0))
        log.info("channels.ready", channels=sorted(self._adapters), inotify=self._watcher.using_inotify)

    def on_stop(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        if self._router is not None:
            self._router.stop(block=True, timeout=STOP_TIMEOUT_S)
        for ref in self._deliveries.values():
            ref.stop(block=True, timeout=STOP_TIMEOUT_S)
        for adapter in self._adapters.values():
            try:
                adapter.teardown()
            except Exception as exc:  # tear the others down regardless
                log.error("channel.teardown_failed", channel=adapter.channel_type, error=repr(exc))

    # -- messages -------------------------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case m.ShowTyping(channel_type=channel_type):
                ref = self._deliveries.get(channel_type)
                if ref is not None:
                    ref.tell(message)
            case m.DeliverySweep():
                self._refresh_conversations()
                for ref in self._deliveries.values():
                    ref.tell(message)
            case m.QueryState():
                return {
                    "channels": sorted(self._adapters),
                    "inotify": self._watcher is not None and self._watcher.using_inotify,
                }
            case m.PostToChannel(channel_type=channel_type, done=done):
                lane = self._deliveries.get(channel_type) if channel_type in self._adapters else None
                if lane is not None:
                    lane.tell(message)
                elif done is not None:
                    done(None, f"no {channel_type!r} channel is running on this host")
            case _:
                log.warning("hub.unknown_message", message=repr(message))
        return None

    def _wired_conversations(self, channel_type: str) -> list[Conversation]:
        store = self._services.log.store
        return [
            Conversation(platform_id=group.platform_id, name=group.name)
            for group in store.messaging_groups()
            if group.channel_type == channel_type and store.wirings(group.id)
        ]

    def _refresh_conversations(self) -> None:
        for channel_type, adapter in self._adapters.items():
            current = self._wired_conversations(channel_type)
            if current == self._conversations.get(channel_type):
                continue
            self._conversations[channel_type] = current
            try:
                adapter.update_conversations(current)
            except Exception as exc:  # the adapter keeps its old list; the next sweep tries again
                log.error("channel.update_failed", channel=channel_type, error=repr(exc))
                self._conversations.pop(channel_type, None)
