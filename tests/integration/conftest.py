"""Fixtures for tests against the real Docker engine and the real agent image.

There is no fake here: a missing engine fails the run with a message saying how to
start one, and the image is (re)built from container/ when its context changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from actors.host import Host
from channels.adapter import ChannelAdapter
from config.settings import load_settings
from tests.integration.host_support import MakeHost, host_settings, remove_instance_containers
from tools.docker_engine import ping_engine
from tools.image import BuildMode, ImageBuildError, build_agent_image

TEST_LABEL = "hermitcrab.test"


class _QuietReporter:
    """Build progress is noise in a test run; a failure's message carries the build's last lines."""

    def phase(self, text: str) -> None:
        pass

    def step(self, number: int, total: int, text: str) -> None:
        pass

    def line(self, text: str) -> None:
        pass


def _remove_test_containers(client: docker.DockerClient) -> None:
    for container in client.api.containers(all=True, filters={"label": f"{TEST_LABEL}=1"}):
        try:
            client.api.remove_container(container["Id"], force=True)
        except docker.errors.NotFound:
            continue


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of the real engine; containers labelled hermitcrab.test=1 are removed before and after the run."""
    problem = ping_engine()
    if problem is not None:
        pytest.fail(
            f"the Docker engine does not answer ({problem}); start it with `python -m tools.docker_engine ensure`",
            pytrace=False,
        )
    client = docker.from_env()
    _remove_test_containers(client)
    yield client
    _remove_test_containers(client)
    client.close()


@pytest.fixture(scope="session")
def agent_image(docker_client: docker.DockerClient) -> str:
    """The agent image the product uses (CONTAINER_IMAGE), rebuilt first if container/ changed since its build."""
    settings = load_settings()
    try:
        build_agent_image(settings, docker_client, BuildMode.IF_CHANGED, _QuietReporter())
    except ImageBuildError as exc:
        pytest.fail(f"the agent image could not be built: {exc}\nhint: {exc.hint}", pytrace=False)
    return settings.image


@pytest.fixture
def test_labels() -> dict[str, str]:
    """Labels for every container a test starts, so the session cleans up whatever a test leaves behind."""
    return {TEST_LABEL: "1"}


@pytest.fixture
def make_host(tmp_path: Path, docker_client: docker.DockerClient, agent_image: str) -> Iterator[MakeHost]:
    """Start real in-process hosts on this test's data dir; `make_host(*channels, **env_overrides)`.

    Given channels, the host runs exactly those (in-process test adapters); without, the registry's.
    Every host is stopped and its containers removed afterwards.
    """
    hosts: list[Host] = []

    def start(*channels: ChannelAdapter, **overrides: str) -> Host:
        settings = host_settings(tmp_path, CONTAINER_IMAGE=agent_image, **overrides)
        host = Host(settings, adapters=list(channels) if channels else None)
        host.start()
        hosts.append(host)
        return host

    yield start
    for host in hosts:
        settings = host.settings
        host.stop()
        remove_instance_containers(docker_client, settings)
