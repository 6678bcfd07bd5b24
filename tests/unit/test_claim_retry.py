"""Claims of a dead or stuck container: retried with backoff from settings, failed at the last try, sender told."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

import sessiondb
from actors.claim_retry import is_failure, retry_claims
from actors.outlet import PostResult
from actors.services import HostServices
from channels.adapter import OutboundDelivery
from config.settings import Settings, load_settings
from events.log import EventLog
from tests.unit.sessiondb_fake_container import FakeContainer


class RecordingOutlet:
    def __init__(self) -> None:
        self.posted: list[tuple[str, OutboundDelivery]] = []

    def post(self, channel_type: str, delivery: OutboundDelivery, done: PostResult | None = None) -> None:
        self.posted.append((channel_type, delivery))


@pytest.fixture
def services(settings_env: dict[str, str], tmp_path: Path) -> Iterator[HostServices]:
    settings: Settings = load_settings(
        env={**settings_env, "HERMITCRAB_RETRY_BASE_DELAY": "2s", "HERMITCRAB_MAX_TRIES": "3"},
        env_file=tmp_path / "no.env",
    )
    with EventLog.open(settings.central_db) as log:
        yield HostServices(settings=settings, log=log, outlet=RecordingOutlet())


def test_only_stuck_crashed_or_vanished_stops_count_as_failures() -> None:
    assert is_failure("stuck: no heartbeat progress", 0)
    assert is_failure("stuck: past the hard ceiling", None)
    assert is_failure("exited", 137)
    assert is_failure("exited with code 2: agent-runner: unknown AGENT_PROVIDER 'x'", 2)
    assert is_failure("vanished", None)
    assert not is_failure("exited", 0)
    assert not is_failure("idle timeout", 0)
    assert not is_failure("rebuild applied", 0)


def test_claims_back_off_from_settings_then_fail_and_the_sender_is_told(services: HostServices, tmp_path: Path) -> None:
    folder = tmp_path / "session"
    sessiondb.create_session_folder(folder)
    sessiondb.insert_message(
        folder,
        sessiondb.InboundMessage(
            id="m1", kind="chat", content='{"text": "hi"}', channel_type="terminal", platform_id="tty-1", thread_id="t"
        ),
    )
    container = FakeContainer(folder)
    delays = []
    for attempt in range(3):
        started = time.time()
        container.start()
        container.ack("m1", "processing", sessiondb.to_db_time(datetime.now(UTC)))
        before = datetime.now(UTC)
        [outcome] = retry_claims(services, "s1", folder, started, "stuck: no heartbeat progress")
        assert outcome.tries == attempt + 1
        assert retry_claims(services, "s1", folder, started, "stuck: no heartbeat progress") == [], "idempotent"
        if outcome.status == "pending":
            assert outcome.retry_at is not None
            delays.append((outcome.retry_at - before).total_seconds())
            time.sleep(1.05)  # a fresh claim is always in a later second than the host's reset
    assert outcome.status == "failed"
    assert 2 <= delays[0] <= 3.1 and 4 <= delays[1] <= 5.1, f"base 2 s doubling, as configured: {delays}"
    retried = [msgspec.structs.asdict(e.event) for e in services.log.read(types=["message.retried"])]
    assert [(r["tries"], r["status"]) for r in retried] == [(1, "pending"), (2, "pending"), (3, "failed")]
    outlet = services.outlet
    assert isinstance(outlet, RecordingOutlet)
    [(channel_type, delivery)] = outlet.posted
    assert (channel_type, delivery.platform_id, delivery.thread_id) == ("terminal", "tty-1", "t")
    assert "3 times" in delivery.text and delivery.idempotency_key == "failed-m1"


def test_claims_older_than_the_container_are_not_its_failures(services: HostServices, tmp_path: Path) -> None:
    folder = tmp_path / "session"
    sessiondb.create_session_folder(folder)
    sessiondb.insert_message(folder, sessiondb.InboundMessage(id="old", kind="chat", content="{}"))
    container = FakeContainer(folder)
    container.start()
    container.ack("old", "processing", "2020-01-01 00:00:00")
    assert retry_claims(services, "s1", folder, time.time(), "exited") == []
    assert sessiondb.claimed_messages(folder)[0].tries == 0
