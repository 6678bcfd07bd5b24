"""The agent runner in the real image, driven only through the session-DB protocol."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from actors.host import Host
from tests.integration.host_support import host_settings, remove_instance_containers, wait_for
from tests.integration.runner_support import chat_session, replies, reply_to, send_chat

pytestmark = pytest.mark.integration


@pytest.fixture
def host(tmp_path: Path, docker_client: docker.DockerClient, agent_image: str) -> Iterator[Host]:
    running = Host(host_settings(tmp_path, CONTAINER_IMAGE=agent_image))
    running.start()
    yield running
    settings = running.settings
    running.stop()
    remove_instance_containers(docker_client, settings)


def test_echo_agent_answers_with_odd_seqs_on_the_conversations_route(host: Host) -> None:
    session, folder = chat_session(host, "echoer")
    first = send_chat(folder, "hello there")
    host.wake(session.id, "test")
    answer = reply_to(folder, first, timeout_s=30)
    assert json.loads(answer["content"])["text"] == "echo: hello there"
    assert answer["seq"] % 2 == 1
    assert (answer["channel_type"], answer["platform_id"]) == ("test", "chat-echoer")
    second = send_chat(folder, "and again")
    host.wake(session.id, "test")
    later = reply_to(folder, second, timeout_s=10)
    assert later["seq"] % 2 == 1 and later["seq"] > answer["seq"]


def test_follow_ups_join_the_running_query(host: Host, docker_client: docker.DockerClient) -> None:
    session, folder = chat_session(host, "patient")
    slow = send_chat(folder, "!sleep 2\nfirst")
    host.wake(session.id, "test")
    assert host.log is not None
    wait_for(lambda: host.log.store.session(session.id).container_id is not None, 30, "the container")  # type: ignore[union-attr]
    wait_for(lambda: _log_has(docker_client, host, session.id, "query started"), 30, "the query to start")
    follow_up = send_chat(folder, "second")
    host.wake(session.id, "test")
    reply_to(folder, slow, timeout_s=30)
    answer = reply_to(folder, follow_up, timeout_s=30)
    assert json.loads(answer["content"])["text"] == "echo: second"
    logs = _container_log(docker_client, host, session.id)
    assert logs.count("query started") == 1, logs
    assert "pushed 1 follow-up message(s) into the running query" in logs
    texts = [json.loads(row["content"]).get("text") for row in replies(folder)]
    assert texts.index("echo: first") < texts.index("echo: second")


def _container_log(client: docker.DockerClient, host: Host, session_id: str) -> str:
    assert host.log is not None
    session = host.log.store.session(session_id)
    assert session is not None and session.container_id is not None
    return client.containers.get(session.container_id).logs().decode()


def _log_has(client: docker.DockerClient, host: Host, session_id: str, text: str) -> bool:
    return text in _container_log(client, host, session_id)
