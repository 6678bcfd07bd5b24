"""`hermitcrab up --detach` and `down` without a Docker engine: failures are reported, nothing is left running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from actors.host_lock import HostLock, lock_owner
from config.settings import Settings
from events import types as ev
from events.connections import ReadConnections
from events.log import EventLog
from events.store import Store
from tools.cli import app
from tools.cli_common import UserError
from tools.cli_host import status_line
from tools.host_process import ReadyNotifier, ReadyReport, _read_line, _report_decoder, pid_file, stop_host

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def hermitcrab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from tools.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )


def test_a_detached_start_that_fails_says_why_and_leaves_nothing_running(
    settings_env: dict[str, str], settings: Settings
) -> None:
    env = {**settings_env, "PATH": os.environ["PATH"], "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = hermitcrab(env, "up", "--detach")
    assert result.returncode == 2
    error, hint = result.stderr.strip().splitlines()
    assert error.startswith("error: the Docker engine does not answer")
    assert "docker_engine ensure" in hint
    assert lock_owner(settings.data_dir) is None
    log_text = (settings.data_dir / "logs" / "host.log").read_text()
    assert "the Docker engine does not answer" in log_text  # the child's own words, in its log file


def test_down_without_a_host(settings_env: dict[str, str], settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    pid_file(settings).parent.mkdir(parents=True)
    pid_file(settings).write_text("999999\n")  # left by a host that crashed
    result = CliRunner().invoke(app, ["down"])
    assert result.exit_code == 0
    assert "hermitcrab is not running" in result.stdout
    assert not pid_file(settings).exists()


def test_stop_host_waits_for_the_lock_to_be_released(settings: Settings) -> None:
    """A child holding the data directory's lock stands in for a host: SIGTERM ends it, the lock goes with it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from actors.host_lock import HostLock;"
            " HostLock.acquire(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
            str(settings.data_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert lock_owner(settings.data_dir) == holder.pid
        assert stop_host(settings, timeout_s=10) == holder.pid
        assert lock_owner(settings.data_dir) is None
    finally:
        holder.kill()
        holder.wait()
    assert stop_host(settings) is None


def test_the_ready_report_crosses_the_pipe() -> None:
    read_end, write_end = os.pipe()
    report = ReadyReport(
        pid=42, data_dir="/d", provider="echo", has_credentials=False, created_group=True, created_wiring=True
    )
    ReadyNotifier(write_end).ready(report)
    line = _read_line(read_end, 5)
    os.close(read_end)
    assert _report_decoder.decode(line) == report
    assert msgspec.json.decode(line)["type"] == "ready"


def test_a_closed_pipe_is_an_empty_answer() -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    assert _read_line(read_end, 5) == b""
    os.close(read_end)


def test_the_status_line_counts_sessions_and_containers(settings: Settings) -> None:
    with EventLog.open(settings.central_db) as log:
        log.append("session:s1", [ev.SessionCreated(session_id="s1", agent_group_id="g")])
        log.append("session:s2", [ev.SessionCreated(session_id="s2", agent_group_id="g")])
        log.append(
            "session:s1",
            [ev.ContainerSpawned(session_id="s1", container_id="c", container_name="n", image="i", mounts_digest="d")],
        )
    connections = ReadConnections(settings.central_db)
    try:
        text = status_line(Store(connections), 77).plain
    finally:
        connections.close()
    assert "pid 77" in text and "2 active session(s)" in text and "1 container(s), 1 busy" in text


def test_up_refuses_when_a_host_already_runs(
    settings_env: dict[str, str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    lock = HostLock.acquire(settings.data_dir)
    try:
        result = CliRunner().invoke(app, ["up", "--detach"])
    finally:
        lock.release()
    assert isinstance(result.exception, UserError)
    assert str(result.exception) == f"hermitcrab is already running (pid {os.getpid()})"
    assert "hermitcrab down" in result.exception.hint
