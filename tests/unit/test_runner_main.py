"""`python -m agent_runner` as a process: bad provider, answering, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent_runner.config import load_config
from tests.unit.runner_support import (
    MAIN_CHAT,
    add_message,
    chat,
    create_inbound,
    outbound_rows,
    runner_env,
    set_destinations,
    wait_for,
)

CONTAINER_DIR = Path(__file__).resolve().parents[2] / "container"


def spawn(workspace: Path, **env: str) -> subprocess.Popen[str]:
    full_env = {**os.environ, **runner_env(workspace, **env), "PYTHONPATH": str(CONTAINER_DIR)}
    return subprocess.Popen(
        [sys.executable, "-m", "agent_runner"], env=full_env, stderr=subprocess.PIPE, text=True, cwd=workspace
    )


def test_unknown_provider_exits_with_a_clear_message(tmp_path: Path) -> None:
    process = spawn(tmp_path, AGENT_PROVIDER="gpt-9")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "unknown AGENT_PROVIDER 'gpt-9': expected one of claude, echo" in stderr
    assert not (tmp_path / "outbound.db").exists()


def test_answers_then_stops_fast_on_sigterm(tmp_path: Path) -> None:
    create_inbound(tmp_path / "inbound.db")
    set_destinations(tmp_path, [("main", "Main", "channel", *MAIN_CHAT, None)])
    add_message(tmp_path, "m1", chat("ping"))
    process = spawn(tmp_path)
    try:
        wait_for(lambda: outbound_rows(tmp_path), timeout=20, what="reply from the process")
        assert outbound_rows(tmp_path)[0]["body"] == {"text": "echo: ping"}
        assert (tmp_path / ".heartbeat").exists()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert time.monotonic() - started < 2
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()  # type: ignore[union-attr]


def test_config_defaults_follow_the_container_layout() -> None:
    config = load_config({"AGENT_PROVIDER": "Echo", "HERMITCRAB_IS_ADMIN": "1", "TZ": "Europe/Paris"})
    assert config.provider == "echo" and config.is_admin
    assert str(config.inbound_db) == "/workspace/inbound.db"
    assert str(config.outbound_db) == "/workspace/outbound.db"
    assert str(config.heartbeat) == "/workspace/.heartbeat"
    assert str(config.agent_dir) == "/workspace/agent"
    assert str(config.timezone) == "Europe/Paris"
    assert load_config({"TZ": "Mars/Olympus"}).timezone.tzname(None) == "UTC"
