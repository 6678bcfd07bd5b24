"""The Claude provider end to end, without internet.

The real claude-agent-sdk and its bundled Claude Code CLI drive the real agent
runner (`python -m agent_runner`, run here as a host process), pointed by
`ANTHROPIC_BASE_URL` at a local fake of the Anthropic Messages API that plays
scripted model turns: a call of our `send_message` MCP tool, a call of Claude
Code's own `Write` tool, then a final answer. The test checks what a user and
the host would see: the rows in outbound.db, the file in the group folder, the
stored continuation, and a second runner resuming the same conversation.

Claude Code refuses `bypassPermissions` as root, so when the tests run as root
the runner runs as an unprivileged user (uid 1000 by default, as in the image),
with its own HOME, through an interpreter that user can execute.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent_runner.db import SessionDb
from tests.fakes.anthropic_server import (
    ErrorReply,
    FakeAnthropicServer,
    Reply,
    message_texts,
    text_reply,
    tool_reply,
)
from tests.unit.runner_support import (
    MAIN_CHAT,
    acks,
    add_message,
    chat,
    create_inbound,
    outbound_rows,
    set_destinations,
    set_routing,
    state,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RUNNER_UID = int(os.environ.get("HERMITCRAB_TEST_AGENT_UID", "1000"))
REPLY_TIMEOUT_S = 90.0
STALE_ID = "0b7e7d8e-1111-4222-8333-944444444444"


@dataclass(frozen=True)
class Account:
    uid: int
    gid: int


def runner_account() -> Account | None:
    """Who runs the runner: None means "as this process" (already not root)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwuid(RUNNER_UID)
    except KeyError:
        return Account(RUNNER_UID, RUNNER_UID)
    return Account(entry.pw_uid, entry.pw_gid)


def as_account(account: Account | None) -> dict[str, Any]:
    return {} if account is None else {"user": account.uid, "group": account.gid, "extra_groups": []}


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copy2(source, target)


@pytest.fixture(scope="module")
def python_path() -> Iterator[str]:
    """The runner's import path (its package and this venv's packages), readable by the runner's user.

    A clone may sit in a folder only root can enter (`mktemp -d` makes them
    0700), so both are mirrored, as hard links where the filesystem allows
    (~0.25 s for the SDK's 8,000 files), into a folder anyone can read.
    """
    mirror = Path(tempfile.mkdtemp(prefix="hermitcrab-claude-imports-"))
    os.chmod(mirror, 0o755)
    sources = {"runner": REPO / "container" / "agent_runner", "packages": Path(sysconfig.get_paths()["purelib"])}
    shutil.copytree(sources["runner"], mirror / "runner" / "agent_runner", copy_function=_link_or_copy)
    shutil.copytree(sources["packages"], mirror / "packages", copy_function=_link_or_copy)
    for folder, _, _ in os.walk(mirror):
        os.chmod(folder, 0o755)
    yield os.pathsep.join([str(mirror / "runner"), str(mirror / "packages")])
    shutil.rmtree(mirror, ignore_errors=True)


def interpreter(account: Account | None, python_path: str) -> str:
    """An interpreter of this Python version that `account` can execute and import the SDK with."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": python_path, "HOME": "/tmp"}
    for candidate in dict.fromkeys(candidates):
        if not os.path.exists(candidate):
            continue
        try:
            probe = subprocess.run(
                [candidate, "-c", "import claude_agent_sdk, agent_runner"],
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
                **as_account(account),
            )
        except OSError:  # not executable by that user (e.g. under a private /root)
            continue
        if probe.returncode == 0:
            return candidate
    pytest.fail(
        f"no Python {version} that uid {account.uid if account else os.geteuid()} can run and import "
        f"claude_agent_sdk with (tried {candidates}); run the tests as a normal user or install python{version}"
    )


@dataclass
class Workspace:
    root: Path
    account: Account | None
    python_path: str

    @property
    def agent(self) -> Path:
        return self.root / "agent"


@pytest.fixture
def workspace(python_path: str) -> Iterator[Workspace]:
    """A session folder the runner's user can write (pytest's tmp_path is private to root)."""
    account = runner_account()
    root = Path(tempfile.mkdtemp(prefix="hermitcrab-claude-e2e-"))
    for sub in ("agent", "home", "outbox"):
        (root / sub).mkdir()
    create_inbound(root / "inbound.db")
    set_destinations(root, [("main", "Main chat", "channel", *MAIN_CHAT, None)])
    set_routing(root, *MAIN_CHAT)
    os.chmod(root, 0o755)
    if account is not None:
        for path in [root, *root.iterdir()]:
            os.chown(path, account.uid, account.gid)
    yield Workspace(root, account, python_path)
    shutil.rmtree(root, ignore_errors=True)


class Runner:
    def __init__(self, ws: Workspace, base_url: str, log_name: str) -> None:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(ws.root / "home"),
            "PYTHONPATH": ws.python_path,
            "AGENT_PROVIDER": "claude",
            "HERMITCRAB_WORKSPACE": str(ws.root),
            "HERMITCRAB_ADMIN_USER_ID": "user-admin",
            "HERMITCRAB_ASSISTANT_NAME": "Crab",
            "HERMITCRAB_IS_ADMIN": "1",
            "TZ": "Pacific/Auckland",
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": "capability-token-for-this-container",
        }
        self.log_path = ws.root / log_name
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [interpreter(ws.account, ws.python_path), "-m", "agent_runner"],
            env=env,
            cwd=ws.root,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **as_account(ws.account),
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> tuple[int, float]:
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode, time.monotonic() - started


def answer(ws: Workspace, base_url: str, message_id: str, log_name: str = "runner.log") -> Runner:
    """Start a runner, wait until it completed `message_id`, stop it; returns the stopped runner."""
    runner = Runner(ws, base_url, log_name)
    try:
        wait_until(runner, lambda: acks(ws.root).get(message_id) == "completed", f"{message_id} to complete")
    finally:
        runner.stop()
    return runner


def wait_until(runner: Runner, predicate: Any, what: str) -> Any:
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if runner.process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; runner log:\n{runner.log()[-6000:]}")


def chat_texts(ws: Workspace) -> list[str]:
    return [str(r["body"].get("text")) for r in outbound_rows(ws.root) if r["kind"] == "chat"]


def tool_use_names(body: dict[str, Any]) -> dict[str, str]:
    """tool_use id -> tool name, over the assistant turns the request replays."""
    names: dict[str, str] = {}
    for message in body.get("messages", []):
        if message.get("role") == "assistant" and isinstance(message.get("content"), list):
            names.update({b["id"]: b["name"] for b in message["content"] if b.get("type") == "tool_use"})
    return names


def last_tool_result(body: dict[str, Any]) -> tuple[str, str] | None:
    """(tool name, result text) when the request ends with a tool result."""
    last = (body.get("messages") or [{}])[-1]
    content = last.get("content")
    if last.get("role") != "user" or not isinstance(content, list):
        return None
    results = [b for b in content if b.get("type") == "tool_result"]
    if not results:
        return None
    block = results[-1]
    text = block.get("content")
    if isinstance(text, list):
        text = "".join(str(part.get("text", "")) for part in text)
    return tool_use_names(body).get(block.get("tool_use_id", ""), "?"), str(text)


def scripted_agent(note_path: Path) -> Any:
    def respond(body: dict[str, Any]) -> Reply | ErrorReply:
        after_tool = last_tool_result(body)
        if after_tool is not None:
            tool, _ = after_tool
            if tool == "mcp__hermitcrab__send_message":
                return tool_reply("Write", {"file_path": str(note_path), "content": "- buy milk\n"})
            if tool == "Write":
                return text_reply("Saved your note to notes/todo.md.")
            return text_reply(f"unexpected tool {tool}")
        latest = message_texts(body)[-1] if message_texts(body) else ""
        if "save a note" in latest:
            return tool_reply("mcp__hermitcrab__send_message", {"text": "On it, saving your note."})
        if "What did you save" in latest:
            remembered = any("save a note" in text for text in message_texts(body)[:-1])
            return text_reply("You asked me to save a note: buy milk." if remembered else "I do not remember.")
        return text_reply("ok")

    return respond


def stored_continuation(ws: Workspace) -> str | None:
    return state(ws.root).get("continuation:claude")


def test_claude_runs_tools_answers_and_resumes(workspace: Workspace) -> None:
    note = workspace.agent / "notes" / "todo.md"
    with FakeAnthropicServer(scripted_agent(note)) as fake:
        add_message(workspace.root, "m1", chat("Please save a note: buy milk"))
        first = Runner(workspace, fake.url, "runner-1.log")
        try:
            wait_until(first, lambda: acks(workspace.root).get("m1") == "completed", "the first message to complete")
        finally:
            code, stop_seconds = first.stop()

        assert chat_texts(workspace) == ["On it, saving your note.", "Saved your note to notes/todo.md."]
        rows = outbound_rows(workspace.root)
        assert all(r["seq"] % 2 == 1 for r in rows)
        assert all((r["channel_type"], r["platform_id"]) == MAIN_CHAT for r in rows)
        assert rows[-1]["in_reply_to"] == "m1"
        assert note.read_text() == "- buy milk\n"
        if workspace.account is not None:
            assert note.stat().st_uid == workspace.account.uid
        continuation = stored_continuation(workspace)
        assert continuation and len(continuation) == 36
        assert (code, stop_seconds < 5) == (0, True), first.log()[-3000:]

        requests = fake.message_requests()
        tool_names = {t["name"] for t in requests[0].body.get("tools", [])}
        assert {"mcp__hermitcrab__send_message", "mcp__hermitcrab__schedule_task", "Write"} <= tool_names
        assert "AskUserQuestion" not in tool_names and "CronCreate" not in tool_names
        assert requests[0].headers.get("x-api-key") == "capability-token-for-this-container"
        system = json.dumps(requests[0].body.get("system"))
        assert "How your replies are delivered" in system and "`main`" in system
        tool_result = last_tool_result(requests[1].body)
        assert tool_result is not None and tool_result[1].startswith("Message sent to the current conversation (id: ")
        first_count = len(requests)

        add_message(workspace.root, "m2", chat("What did you save?"))
        second = answer(workspace, fake.url, "m2", "runner-2.log")
        assert chat_texts(workspace)[-1] == "You asked me to save a note: buy milk."
        assert "resuming" in second.log()
        resumed = fake.message_requests()[first_count]
        assert any("Please save a note" in text for text in message_texts(resumed.body))
        assert stored_continuation(workspace)


def test_refused_credentials_get_a_helpful_reply(workspace: Workspace) -> None:
    with FakeAnthropicServer(lambda body: ErrorReply(401, "authentication_error", "invalid x-api-key")) as fake:
        add_message(workspace.root, "m1", chat("hello?"))
        started = time.monotonic()
        answer(workspace, fake.url, "m1")
        assert time.monotonic() - started < 30  # not the CLI's minutes of retries
    [reply] = chat_texts(workspace)
    assert "ANTHROPIC_API_KEY" in reply and "hermitcrab doctor" in reply


def test_an_unknown_stored_conversation_is_replaced(workspace: Workspace) -> None:
    previous = SessionDb(workspace.root / "inbound.db", workspace.root / "outbound.db").open()
    previous.set_state("continuation:claude", STALE_ID)  # a conversation the CLI has never seen
    previous.close()
    if workspace.account is not None:
        os.chown(workspace.root / "outbound.db", workspace.account.uid, workspace.account.gid)
    with FakeAnthropicServer(lambda body: text_reply("Fresh start, hello!")) as fake:
        add_message(workspace.root, "m1", chat("hi again"))
        answer(workspace, fake.url, "m1")
    assert chat_texts(workspace) == ["Fresh start, hello!"]
    assert stored_continuation(workspace) not in (None, STALE_ID)
