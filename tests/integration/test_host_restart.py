"""Killing the host never kills its agents: a restarted host adopts the running containers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import pytest

import sessiondb
from events.log import EventLog
from tests.integration.host_support import (
    containers_of,
    create_group,
    create_session,
    creates_since,
    env_of,
    host_settings,
    remove_instance_containers,
    wait_for,
)

pytestmark = pytest.mark.integration

HERMITCRAB = str(Path(sys.executable).parent / "hermitcrab")


def start_host(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as sink:
        return subprocess.Popen([HERMITCRAB, "up"], env=env, stdout=sink, stderr=subprocess.STDOUT)


def running_ids(client: docker.DockerClient, settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        c["Labels"]["hermitcrab.session"]: c["Id"] for c in containers_of(client, settings) if c["State"] == "running"
    }


def test_sigkilled_host_adopts_all_five_running_containers(
    tmp_path: Path, docker_client: docker.DockerClient, agent_image: str
) -> None:
    settings = host_settings(tmp_path, CONTAINER_IMAGE=agent_image)
    env = {**os.environ, **env_of(settings), "CONTAINER_IMAGE": agent_image, "HERMITCRAB_LOG_FORMAT": "json"}
    log = EventLog.open(settings.central_db)
    group = create_group(log, "busy")
    sessions = [create_session(log, group) for _ in range(5)]
    for session_id in sessions:
        folder = sessiondb.session_dir(settings.sessions_dir, group, session_id)
        sessiondb.create_session_folder(folder)
        sessiondb.insert_message(
            folder,
            sessiondb.InboundMessage(
                id=f"m-{uuid.uuid4().hex[:8]}", kind="chat", content=json.dumps({"text": "hello", "sender": "ann"})
            ),
        )
    log.close()
    since = time.time()
    host_log = tmp_path / "host.log"
    first = start_host(env, host_log)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: len(running_ids(docker_client, settings)) == 5, 60, "five running containers", every_s=0.2)
        before = running_ids(docker_client, settings)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        time.sleep(0.5)
        assert running_ids(docker_client, settings) == before, "killing the host must not kill its agents"

        second = start_host(env, host_log)

        def adopted() -> set[str]:
            result = subprocess.run(
                [HERMITCRAB, "events", "--type", "container.adopted", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            return {json.loads(line)["event"]["container_id"] for line in result.stdout.splitlines() if line}

        wait_for(lambda: adopted() == set(before.values()), 30, "five adoption events", every_s=0.5)
        assert running_ids(docker_client, settings) == before, "adopted containers keep their ids"
        for session_id in sessions:
            assert creates_since(docker_client, settings, since, session_id) == 1, "no container was restarted"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
        remove_instance_containers(docker_client, settings)
