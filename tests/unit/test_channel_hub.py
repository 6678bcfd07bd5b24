"""The ChannelHub wiring without Docker: adapter in, router, fast-path delivery out, clean tear-down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

import sessiondb
from actors import messages as m
from actors.channel_hub import ChannelHub, _instantiate
from actors.delivery import INTERNAL_LANE
from actors.outbound_changes import OutboundChanges
from actors.services import HostServices
from channels.adapter import ChannelAdapter
from config.settings import Settings
from events.log import EventLog
from tests.fakes.recording_channel import RecordingChannel
from tests.unit.flow_support import Recorder, chat, eventually, group, told, wire
from tests.unit.sessiondb_fake_container import FakeContainer


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    with EventLog.open(tmp_path / "central.db") as opened:
        yield opened
    pykka.ActorRegistry.stop_all()


def test_inbound_goes_to_the_router_and_a_reply_comes_back_by_the_fast_path(log: EventLog, settings: Settings) -> None:
    crab = group(log, settings, "crab")
    wire(log, chat(log, "test", "room"), crab)
    channel = RecordingChannel()
    manager = Recorder.start()
    hub = ChannelHub.start(HostServices(settings=settings, log=log), manager, None, [channel])
    try:
        assert hub.ask(m.QueryState(), timeout=10) == {"channels": ["test"], "inotify": True}
        assert [c.platform_id for c in channel.conversations] == ["room"]
        channel.say("room", "hi", message_id="m-1")
        eventually(lambda: told(manager, m.WakeSession), what="the wake")
        [wake] = told(manager, m.WakeSession)
        session = log.store.session(wake.session_id)
        assert session is not None
        eventually(lambda: channel.typing == [("room", None)], what="the typing indicator")
        folder = sessiondb.session_dir(settings.sessions_dir, crab.id, session.id)
        container = FakeContainer(folder)
        container.start()
        time.sleep(0.2)  # the watcher has seen the new session folder
        written = time.perf_counter()
        container.write_out("out-1", content='{"text": "echo: hi"}', route=("test", "room", None))
        [delivered] = channel.wait_for(lambda d: len(d) == 1, 5, "the reply")
        assert delivered.text == "echo: hi"
        assert delivered.at - written < 0.5  # no sweep involved: the change notification did it
    finally:
        hub.stop()
    assert channel.torn_down


def test_a_channel_whose_setup_fails_is_left_out(log: EventLog, settings: Settings) -> None:
    class Broken(RecordingChannel):
        def setup(self, host: Any, conversations: Any) -> None:
            raise ConnectionError("platform unreachable")

    good, bad = RecordingChannel("good"), Broken("bad")
    hub = ChannelHub.start(HostServices(settings=settings, log=log), Recorder.start(), None, [good, bad])
    try:
        assert hub.ask(m.QueryState(), timeout=10)["channels"] == ["good"]
        assert good.host is not None and bad.host is None
    finally:
        hub.stop()
    assert good.torn_down and not bad.torn_down


def test_registry_factories_get_the_hosts_settings_when_they_take_them(settings: Settings) -> None:
    seen: list[Settings] = []

    def with_settings(given: Settings) -> ChannelAdapter:
        seen.append(given)
        return RecordingChannel()

    assert isinstance(_instantiate(with_settings, settings), RecordingChannel)
    assert seen == [settings]
    assert isinstance(_instantiate(RecordingChannel, settings), RecordingChannel)


@pytest.fixture
def actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()  # actor threads are not daemons: one left running keeps pytest from exiting


def test_only_lanes_with_new_rows_are_told_to_drain(tmp_path: Path, actors: None) -> None:
    folder = tmp_path / "sessions" / "g" / "s1"
    sessiondb.create_session_folder(folder)
    lanes = {"test": Recorder.start(), INTERNAL_LANE: Recorder.start()}
    changes = OutboundChanges(lanes, frozenset({"test"}))

    def drained() -> dict[str, int]:
        return {lane: len(told(ref, m.DrainSession)) for lane, ref in lanes.items()}

    container = FakeContainer(folder)
    container.start()
    changes(folder)  # nothing written yet
    container.write_out("out-1", route=("test", "room", None))
    changes(folder)
    container.ack("in-1", "completed")
    changes(folder)  # an ack alone carries nothing to send
    assert drained() == {"test": 1, INTERNAL_LANE: 0}
    container.write_out("sys-1", kind="system", content='{"action": "x"}')
    container.write_out("out-2", route=("agent", "ag-2", None))
    changes(folder)
    assert drained() == {"test": 1, INTERNAL_LANE: 1}
    container.write_out("out-3")  # no routing: the session's own channel decides, every lane looks
    changes(folder)
    assert drained() == {"test": 2, INTERNAL_LANE: 2}
