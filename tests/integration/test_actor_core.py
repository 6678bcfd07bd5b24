"""The actor core against the real Docker engine and the real agent image."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import docker
import pytest

from actors import messages as m
from actors.host import Host
from events import types as ev
from events.model import AdditionalMount, GroupConfig
from tests.integration.host_support import (
    containers_of,
    create_group,
    create_session,
    creates_since,
    running_count,
    wait_for,
)
from tools.session_control import ADMIN_STOP, stop_session

pytestmark = pytest.mark.integration


def session_state(host: Host, session_id: str) -> str:
    assert host.log is not None
    session = host.log.store.session(session_id)
    assert session is not None
    return session.container_status


def is_up(host: Host, session_id: str) -> bool:
    """Running or idle: the container is there either way (idle only means it has no work)."""
    return session_state(host, session_id) in ("running", "idle")


def test_100_concurrent_wakes_start_exactly_one_container(make_host, docker_client) -> None:  # type: ignore[no-untyped-def]
    host: Host = make_host()
    assert host.log is not None
    session_id = create_session(host.log, create_group(host.log, "solo"))
    since = time.time()
    barrier = threading.Barrier(20)

    def wake_five() -> None:
        barrier.wait()
        for _ in range(5):
            host.wake(session_id, "test")

    threads = [threading.Thread(target=wake_five) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: is_up(host, session_id), 30, "the container to run")
    time.sleep(1.0)
    assert creates_since(docker_client, host.settings, since, session_id) == 1
    [container] = containers_of(docker_client, host.settings, session_id)
    limits = docker_client.api.inspect_container(container["Id"])["HostConfig"]
    assert (limits["Memory"], limits["NanoCpus"], limits["PidsLimit"]) == (2 * 1024**3, 1_000_000_000, 512)
    assert limits["Init"] is True and limits["NetworkMode"] == "none"


def _exec(client: docker.DockerClient, container_id: str, script: str) -> tuple[int, str]:
    result = client.containers.get(container_id).exec_run(["sh", "-c", script], user="")
    return result.exit_code, result.output.decode()


def test_mounts_seen_from_inside_real_containers(make_host, docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    allowed = tmp_path / "shared-notes"
    allowed.mkdir()
    (allowed / "note.txt").write_text("hello")
    secret = tmp_path / "shared-notes-ssh" / ".ssh"
    secret.mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    host: Host = make_host()
    assert host.log is not None
    host.settings.mount_allowlist.parent.mkdir(parents=True, exist_ok=True)
    host.settings.mount_allowlist.write_text(
        json.dumps(
            {
                "allowedRoots": [
                    {"path": str(allowed), "allowReadWrite": False},
                    {"path": str(secret.parent), "allowReadWrite": False},
                ],
                "blockedPatterns": [],
                "nonMainReadOnly": True,
            }
        )
    )
    worker = create_group(host.log, "worker")
    host.log.append(
        f"group:{worker}",
        [
            ev.GroupConfigChanged(
                group_id=worker,
                config=GroupConfig(
                    additional_mounts=[
                        AdditionalMount(host_path=str(allowed), container_path="notes"),
                        AdditionalMount(host_path=str(secret), container_path="keys"),
                        AdditionalMount(host_path=str(outside), container_path="outside"),
                    ]
                ),
            )
        ],
    )
    admin = create_group(host.log, "main", is_admin=True)
    worker_session = create_session(host.log, worker)
    admin_session = create_session(host.log, admin)
    host.wake(worker_session, "test")
    host.wake(admin_session, "test")
    wait_for(lambda: is_up(host, worker_session), 30, "worker container")
    wait_for(lambda: is_up(host, admin_session), 30, "admin container")
    store = host.log.store
    worker_cid = store.session(worker_session).container_id  # type: ignore[union-attr]
    admin_cid = store.session(admin_session).container_id  # type: ignore[union-attr]

    code, output = _exec(docker_client, worker_cid, "id -u; touch /workspace/global/x 2>&1; echo rc=$?")
    assert output.splitlines()[0] != "0"
    assert "rc=0" not in output, "a non-admin group must not write the global memory"
    code, output = _exec(docker_client, worker_cid, "cat /workspace/extra/notes/note.txt; ls /workspace/extra")
    assert "hello" in output
    assert "keys" not in output and "outside" not in output, output
    code, _ = _exec(docker_client, worker_cid, "test -e /workspace/project")
    assert code != 0, "only the admin group sees the project"

    code, output = _exec(docker_client, admin_cid, "touch /workspace/project/x 2>&1; echo rc=$?")
    assert "rc=0" not in output, "the admin sees the project read-only"
    code, output = _exec(docker_client, admin_cid, "wc -c < /workspace/project/.env")
    assert code == 0 and output.strip() == "0", "the admin sees an empty .env"
    code, output = _exec(docker_client, admin_cid, "touch /workspace/global/admin-was-here; echo rc=$?")
    assert "rc=0" in output


def test_idle_tick_stops_an_idle_container_and_activity_resets_the_deadline(make_host) -> None:  # type: ignore[no-untyped-def]
    host: Host = make_host(IDLE_TIMEOUT="2s")
    assert host.log is not None and host.manager is not None
    session_id = create_session(host.log, create_group(host.log, "sleepy"))
    host.wake(session_id, "test")
    wait_for(lambda: is_up(host, session_id), 30, "the container to run")
    started = time.monotonic()
    while time.monotonic() - started < 4.0:
        host.manager.tell(m.SessionActivity(session_id))
        time.sleep(0.3)
    assert is_up(host, session_id), "activity must keep the container alive"
    quiet_since = time.monotonic()
    wait_for(lambda: session_state(host, session_id) == "stopped", 10, "the idle stop")
    assert time.monotonic() - quiet_since >= 1.5
    stops = [e.event for e in host.log.read(stream=f"session:{session_id}", types=["container.stopped"])]
    assert [s.reason for s in stops] == ["idle timeout"]  # type: ignore[attr-defined]


def test_a_container_that_exits_by_itself_is_noticed_within_two_seconds(make_host, docker_client) -> None:  # type: ignore[no-untyped-def]
    host: Host = make_host(HERMITCRAB_TICK_INTERVAL="30s")
    assert host.log is not None
    session_id = create_session(host.log, create_group(host.log, "mortal"))
    host.wake(session_id, "test")
    wait_for(lambda: is_up(host, session_id), 30, "the container to run")
    container_id = host.log.store.session(session_id).container_id  # type: ignore[union-attr]
    docker_client.api.kill(container_id, signal="SIGKILL")
    killed = time.monotonic()
    wait_for(lambda: session_state(host, session_id) == "stopped", 5, "the exit to be recorded", every_s=0.01)
    assert time.monotonic() - killed < 2.0
    stops = [e.event for e in host.log.read(stream=f"session:{session_id}", types=["container.stopped"])]
    assert len(stops) == 1 and stops[0].exit_code == 137  # type: ignore[attr-defined]


def test_concurrency_limit_holds_and_every_wake_eventually_runs(make_host, docker_client) -> None:  # type: ignore[no-untyped-def]
    host: Host = make_host(MAX_CONCURRENT_CONTAINERS="2", IDLE_TIMEOUT="1s")
    assert host.log is not None
    group = create_group(host.log, "crowd")
    sessions = [create_session(host.log, group) for _ in range(5)]
    for session_id in sessions:
        host.wake(session_id, "test")
    peak = 0
    deadline = time.monotonic() + 90
    spawned: set[str] = set()
    while time.monotonic() < deadline and len(spawned) < 5:
        peak = max(peak, running_count(docker_client, host.settings))
        spawned = {e.stream.split(":", 1)[1] for e in host.log.read(types=["container.spawned"])}
        time.sleep(0.05)
    assert spawned == set(sessions)
    assert 1 <= peak <= 2


def test_closing_a_running_session_stops_its_container_once(make_host, docker_client) -> None:  # type: ignore[no-untyped-def]
    host: Host = make_host()
    assert host.log is not None
    session_id = create_session(host.log, create_group(host.log, "closing"))
    host.wake(session_id, "test")
    wait_for(lambda: is_up(host, session_id), 30, "the container to run")
    host.log.append(f"session:{session_id}", [ev.SessionClosed(session_id=session_id, reason="test")])
    wait_for(lambda: not containers_of(docker_client, host.settings, session_id), 15, "the container to go")
    time.sleep(1.0)  # a few more ticks: nothing may record the stop a second time
    stops = [e.event for e in host.log.read(stream=f"session:{session_id}", types=["container.stopped"])]
    assert [s.reason for s in stops] == ["session closed"]  # type: ignore[attr-defined]


def test_a_stopped_session_gives_up_its_thread(make_host) -> None:  # type: ignore[no-untyped-def]
    host: Host = make_host(IDLE_TIMEOUT="1s")
    assert host.log is not None and host.manager is not None
    group = create_group(host.log, "dormant")
    dormant = [create_session(host.log, group) for _ in range(200)]
    session_id = create_session(host.log, group)
    host.wake(session_id, "test")
    wait_for(lambda: is_up(host, session_id), 30, "the container to run")
    assert host.manager.ask(m.QueryState(), timeout=5)["live_sessions"] == [session_id]
    wait_for(lambda: session_state(host, session_id) == "stopped", 15, "the idle stop")
    wait_for(lambda: host.manager.ask(m.QueryState(), timeout=5)["live_sessions"] == [], 5, "passivation")
    assert all(session_state(host, sid) == "stopped" for sid in dormant)
    host.wake(session_id, "again")
    wait_for(lambda: is_up(host, session_id), 30, "the reactivated session's container")


def test_a_crashing_session_actor_is_restarted_from_the_log_and_others_are_unaffected(
    make_host, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from actors.session_actor import SessionActor

    host: Host = make_host()
    assert host.log is not None and host.manager is not None
    group = create_group(host.log, "fragile")
    victim, bystander = create_session(host.log, group), create_session(host.log, group)
    for session_id in (victim, bystander):
        host.wake(session_id, "test")
    wait_for(lambda: is_up(host, victim) and is_up(host, bystander), 30, "both containers")
    victim_container = host.log.store.session(victim).container_id  # type: ignore[union-attr]
    original = SessionActor._on_tick

    def buggy_tick(self: SessionActor, now: float) -> None:
        if self._session_id == victim:
            raise ZeroDivisionError("a bug in the tick")
        original(self, now)

    monkeypatch.setattr(SessionActor, "_on_tick", buggy_tick)
    wait_for(
        lambda: any(True for _ in host.log.read(stream=f"session:{victim}", types=["session.actor_crashed"])),  # type: ignore[union-attr]
        10,
        "the crash to be recorded",
    )
    monkeypatch.setattr(SessionActor, "_on_tick", original)
    time.sleep(1.0)
    live = host.manager.ask(m.QueryState(), timeout=5)["live_sessions"]
    assert victim in live and bystander in live, "the crashed actor is restarted; the other one never stopped"
    assert host.log.store.session(victim).container_id == victim_container, "its container kept running"
    assert is_up(host, bystander)


def test_an_admin_stop_from_the_cli_is_recorded_with_its_reason(make_host) -> None:  # type: ignore[no-untyped-def]
    host: Host = make_host()
    assert host.log is not None
    session_id = create_session(host.log, create_group(host.log, "stoppable"))
    host.wake(session_id, "test")
    wait_for(lambda: is_up(host, session_id), 30, "the container to run")
    session = host.log.store.session(session_id)
    assert session is not None
    outcome = stop_session(host.log, host.settings, session)
    assert outcome.host_running and len(outcome.containers) == 1
    wait_for(lambda: session_state(host, session_id) == "stopped", 10, "the exit to be recorded")
    stops = [e.event for e in host.log.read(stream=f"session:{session_id}", types=["container.stopped"])]
    assert [s.reason for s in stops] == [ADMIN_STOP]  # type: ignore[attr-defined]


def test_a_runner_that_refuses_to_start_is_recorded_with_its_reason(make_host) -> None:  # type: ignore[no-untyped-def]
    host: Host = make_host()
    assert host.log is not None
    group_id = create_group(host.log, "misconfigured")
    session_id = f"sess-{group_id[3:]}"
    host.log.append(
        f"session:{session_id}",
        [ev.SessionCreated(session_id=session_id, agent_group_id=group_id, agent_provider="gpt-9")],
    )
    host.wake(session_id, "test")

    def stops() -> list[ev.ContainerStopped]:
        assert host.log is not None
        found = host.log.read(stream=f"session:{session_id}", types=["container.stopped"])
        return [e.event for e in found if isinstance(e.event, ev.ContainerStopped)]

    wait_for(lambda: stops(), 30, "the runner to give up")
    [stop] = stops()
    assert stop.exit_code not in (0, None)
    assert "unknown AGENT_PROVIDER 'gpt-9'" in stop.reason
