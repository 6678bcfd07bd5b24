"""End to end, as a person would: `hermitcrab up` on a fresh data directory, then `hermitcrab chat` in a terminal.

Everything is real: the host runs as its own process, the echo agent answers
from a real container (no network), the chat runs in a pseudo-terminal. A
second path speaks the socket protocol directly to check what the screen
cannot show: acknowledgements and replay across disconnects.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from actors.host_lock import lock_owner
from channels.terminal_client import TerminalClient
from channels.terminal_protocol import Ack, Hello, Reply, Say, Welcome, socket_path
from config.settings import Settings, load_settings
from tests.integration.host_support import containers_of, remove_instance_containers, wait_for
from tests.integration.pty_terminal import PtyProcess

pytestmark = pytest.mark.integration

HERMITCRAB = str(Path(sys.executable).parent / "hermitcrab")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
REPLY_TIMEOUT_S = 90.0


@dataclass
class Install:
    env: dict[str, str]
    settings: Settings
    cwd: Path

    def run(self, *args: str, timeout_s: float = 240.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [HERMITCRAB, *args], env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout_s
        )

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def chat(self, *args: str) -> PtyProcess:
        return PtyProcess([HERMITCRAB, "chat", *args], self.env, self.cwd)


@pytest.fixture
def install(tmp_path: Path, docker_client: docker.DockerClient, agent_image: str) -> Iterator[Install]:
    """A fresh data directory and the environment of a user without any model credential."""
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")}
    env.update(
        {
            "HOME": str(tmp_path / "home"),
            "HERMITCRAB_DATA_DIR": str(tmp_path / "d"),  # short: a Unix socket path has at most 107 bytes
            "HERMITCRAB_MOUNT_ALLOWLIST": str(tmp_path / "home" / "allowlist.json"),
            "HERMITCRAB_PROVIDER": "echo",
            "HERMITCRAB_CONTAINER_NETWORK": "none",
            "HERMITCRAB_TICK_INTERVAL": "500ms",
            "HERMITCRAB_LOG_LEVEL": "info",
            "CONTAINER_IMAGE": agent_image,
            "TZ": "Pacific/Auckland",
        }
    )
    settings = load_settings(env=env)
    work = tmp_path / "work"
    work.mkdir()
    install = Install(env=env, settings=settings, cwd=work)
    yield install
    install.run("down", timeout_s=90)
    remove_instance_containers(docker_client, settings)
    # shown by pytest only when the test failed: what the host recorded and logged
    print(install.run("events", timeout_s=60).stdout)
    log_file = settings.data_dir / "logs" / "host.log"
    if log_file.is_file():
        print("\n".join(log_file.read_text(errors="replace").splitlines()[-80:]))


def test_a_person_chats_with_the_echo_agent(install: Install, docker_client: docker.DockerClient) -> None:
    settings = install.settings
    started = install.run("up", "--detach")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "created the admin group main and wired it to the terminal chat" in started.stdout
    assert "hermitcrab chat" in started.stdout
    assert "No model credential is set, so the echo agent answers" in started.stdout
    host_pid = lock_owner(settings.data_dir)
    assert host_pid is not None
    assert (settings.data_dir / "host.pid").read_text().strip() == str(host_pid)
    assert (settings.data_dir / "logs" / "host.log").is_file()
    assert oct(socket_path(settings.data_dir).stat().st_mode & 0o777) == "0o600"

    notes = settings.groups_dir / "main" / "notes.txt"
    notes.write_text("remember the milk\n")

    chat = install.chat()
    try:
        chat.expect(r"connected to main as " + getpass.getuser(), 30)
        chat.type("hello crab")
        chat.expect(r"Crab › echo: hello crab", REPLY_TIMEOUT_S)

        chat.type('!tool ask_user_question {"question": "Pick a colour", "options": ["red", "blue"]}')
        chat.expect(r"Pick a colour", REPLY_TIMEOUT_S)
        chat.expect(r"1\. red", 10)
        chat.expect(r"2\. blue", 10)
        chat.type("2")
        chat.expect(r"Crab › echo: tool ask_user_question: blue", REPLY_TIMEOUT_S)

        chat.type('!tool send_file {"path": "notes.txt", "text": "your notes"}')
        saved = chat.expect(r"file saved: (\S+)", REPLY_TIMEOUT_S).group(1)
        chat.expect(r"echo: tool send_file: File notes.txt sent", REPLY_TIMEOUT_S)
        chat.type("/quit")
        assert chat.wait(30) == 0
    finally:
        chat.close()
    assert Path(saved) == settings.data_dir / "downloads" / "main" / "notes.txt"
    assert Path(saved).read_text() == "remember the milk\n"

    # the replies came from a real container of this install
    [session] = install.json("sessions", "list")
    assert session["group"] == "main" and session["conversation"] == "terminal/main"
    running = [c for c in containers_of(docker_client, settings, session["id"]) if c["State"] == "running"]
    assert [c["Id"] for c in running] == [session["container_id"]]
    status = install.json("status")
    assert status["host_running"] and status["pid"] == host_pid
    assert [s["id"] for s in status["sessions"]] == [session["id"]]

    # the chat acknowledged everything it showed; another reader still gets the whole conversation
    path = socket_path(settings.data_dir)
    same_user = TerminalClient.connect(path)
    same_user.send(Hello(user=getpass.getuser()))
    assert same_user.next_frame(10) == Welcome(conversation="main", sender_id=getpass.getuser(), replay=0)
    same_user.close()
    other_device = TerminalClient.connect(path)
    other_device.send(Hello(user=getpass.getuser(), client="tablet"))
    welcome = other_device.next_frame(10)
    assert isinstance(welcome, Welcome) and welcome.replay >= 5
    other_device.close()

    # a reply that arrives while no chat is open is shown when the chat comes back
    away = TerminalClient.connect(path)
    away.send(Hello(user="script", client="script"))
    away.send(Say(text="!sleep 2\nwhile you were away"))
    away.close()
    wait_for(lambda: _delivered(install, "echo: while you were away"), REPLY_TIMEOUT_S, "the reply to be delivered")
    back = install.chat()
    try:
        back.expect(r"1 message\(s\) you have not seen yet", 30)
        back.expect(r"Crab › echo: while you were away", 10)
        back.type("/quit")
        assert back.wait(30) == 0
    finally:
        back.close()

    stopped = install.run("down", timeout_s=90)
    assert stopped.returncode == 0 and f"hermitcrab stopped (pid {host_pid})" in stopped.stdout
    assert lock_owner(settings.data_dir) is None
    assert not socket_path(settings.data_dir).exists()

    # the second run reuses everything
    again = install.run("up", "--detach")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "created the admin group" not in again.stdout
    assert [g["folder"] for g in install.json("groups", "list")] == ["main"]
    assert install.run("down", timeout_s=90).returncode == 0


def _delivered(install: Install, text: str) -> bool:
    """Whether the terminal outbox holds a reply with this text (read through a throwaway client)."""
    probe = TerminalClient.connect(socket_path(install.settings.data_dir))
    try:
        probe.send(Hello(user="probe", client=f"probe-{time.monotonic_ns()}"))
        frames = []
        while (frame := probe.next_frame(1.0)) is not None:
            frames.append(frame)
        return any(isinstance(f, Reply) and f.text == text for f in frames)
    finally:
        probe.close()


def test_up_in_the_foreground_shows_a_status_line_and_stops_on_ctrl_c(install: Install) -> None:
    host = PtyProcess([HERMITCRAB, "up"], install.env, install.cwd)
    try:
        host.expect(r"hermitcrab is running", 120)
        host.expect(r"chat with it in another terminal: +\S*hermitcrab chat", 10)
        host.expect(r"hermitcrab running \(pid \d+\) · 0 active session\(s\)", 30)
        chat = TerminalClient.connect(socket_path(install.settings.data_dir))
        chat.send(Hello(user="ann"))
        chat.send(Say(text="wake up"))
        host.expect(r"· 1 active session\(s\) · 1 container\(s\)", REPLY_TIMEOUT_S)
        while (frame := chat.next_frame(REPLY_TIMEOUT_S)) is not None:
            if isinstance(frame, Reply):
                assert frame.text == "echo: wake up"
                chat.send(Ack(seq=frame.seq))
                break
        chat.close()
        host.interrupt()
        host.expect(r"hermitcrab stopping", 30)
        assert host.wait(60) == 0
    finally:
        host.close()
    assert lock_owner(install.settings.data_dir) is None
