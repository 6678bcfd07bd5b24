"""Deciding how to bring up an unreachable Docker engine, with the host's facts injected."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from config.settings import Settings
from tools.docker_engine import EngineUnavailable, HostFacts, Step, ensure_engine, plan_engine_start

LINUX_ROOT = HostFacts(
    system="Linux", is_root=True, has_apt=True, has_dockerd=True, dockerd_running=False, remote_docker_host=None
)


def _facts(**changes: Any) -> HostFacts:
    return dataclasses.replace(LINUX_ROOT, **changes)


def test_root_with_dockerd_installed_starts_it_without_installing() -> None:
    assert plan_engine_start(_facts(), "socket missing") == (Step.START, Step.WAIT)


def test_root_with_apt_but_no_dockerd_installs_docker_io_first() -> None:
    assert plan_engine_start(_facts(has_dockerd=False), "socket missing") == (Step.INSTALL, Step.START, Step.WAIT)


def test_a_dockerd_that_is_already_running_is_waited_for_not_started_twice() -> None:
    assert plan_engine_start(_facts(dockerd_running=True), "connection refused") == (Step.WAIT,)


@pytest.mark.parametrize(
    ("facts", "message_part", "hint_part"),
    [
        (_facts(system="Darwin"), "no Docker engine answers (boom)", "Docker Desktop"),
        (_facts(is_root=False), "no Docker engine answers (boom)", "sudo systemctl start docker"),
        (_facts(is_root=False, has_dockerd=False), "no Docker engine answers (boom)", "apt-get install docker.io"),
        (_facts(has_dockerd=False, has_apt=False), "neither dockerd nor apt-get", "package manager"),
        (_facts(remote_docker_host="tcp://10.0.0.5:2375"), "DOCKER_HOST=tcp://10.0.0.5:2375", "unset DOCKER_HOST"),
    ],
)
def test_where_we_cannot_fix_it_the_error_says_what_is_missing_and_how_to_fix_it(
    facts: HostFacts, message_part: str, hint_part: str
) -> None:
    with pytest.raises(EngineUnavailable) as caught:
        plan_engine_start(facts, "boom")

    assert message_part in str(caught.value)
    assert hint_part in caught.value.hint


def test_an_answering_engine_needs_nothing(settings: Settings) -> None:
    def facts() -> HostFacts:
        raise AssertionError("the host is only probed when the engine does not answer")

    ensure_engine(settings, ping=lambda: None, facts=facts)


def test_a_running_dockerd_that_never_answers_times_out_with_the_log_path(settings: Settings) -> None:
    with pytest.raises(EngineUnavailable) as caught:
        ensure_engine(
            settings, ping=lambda: "connection refused", facts=lambda: _facts(dockerd_running=True), timeout_s=0.0
        )

    assert "did not answer within 0 s (connection refused)" in str(caught.value)
    assert str(settings.data_dir / "dockerd.log") in caught.value.hint


def test_waiting_ends_as_soon_as_the_engine_answers(settings: Settings) -> None:
    answers = iter(["starting", "starting", None])
    reported: list[str] = []

    ensure_engine(
        settings, ping=lambda: next(answers), facts=lambda: _facts(dockerd_running=True), report=reported.append
    )

    assert reported == [Step.WAIT.value]
