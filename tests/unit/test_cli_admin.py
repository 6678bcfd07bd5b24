"""`hermitcrab groups`, `wire` and `sessions` on a temporary data directory (no host, no Docker needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from config.settings import Settings
from events import types as ev
from events.log import EventLog
from tools.cli import app
from tools.cli_common import UserError


@pytest.fixture
def runner(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # these commands must not need Docker
    return CliRunner()


def ok(runner: CliRunner, *args: str) -> Result:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def as_json(runner: CliRunner, *args: str) -> Any:
    return json.loads(ok(runner, *args, "--json").stdout)


def user_error(runner: CliRunner, *args: str) -> UserError:
    result = runner.invoke(app, list(args))
    assert isinstance(result.exception, UserError), (result.output, result.exception)
    return result.exception


# -- groups ----------------------------------------------------------------------------------


def test_create_list_show_a_group(runner: CliRunner, settings: Settings) -> None:
    created = as_json(runner, "groups", "create", "Research Bot", "--instructions", "You research things.")
    assert (created["name"], created["folder"], created["is_admin"]) == ("Research Bot", "research-bot", False)
    claude_md = settings.groups_dir / "research-bot" / "CLAUDE.md"
    assert "You research things." in claude_md.read_text()

    listed = as_json(runner, "groups", "list")
    assert [g["folder"] for g in listed] == ["research-bot"]
    assert listed[0]["wirings"] == [] and listed[0]["active_sessions"] == 0

    shown = as_json(runner, "groups", "show", "research-bot")
    assert shown["group"]["id"] == created["id"]
    assert shown["path"] == str(settings.groups_dir / "research-bot")
    assert shown["sessions"] == []
    table = ok(runner, "groups", "list").stdout
    assert "research-bot" in table


def test_group_names_are_checked(runner: CliRunner) -> None:
    ok(runner, "groups", "create", "alpha")
    error = user_error(runner, "groups", "create", "again", "--folder", "alpha")
    assert "already used" in str(error) and error.hint
    assert "must not contain" in str(user_error(runner, "groups", "create", "x", "--folder", "../escape"))
    assert "unknown provider" in str(user_error(runner, "groups", "create", "x", "--provider", "gpt"))
    missing = user_error(runner, "groups", "show", "nobody")
    assert "no agent group 'nobody'" in str(missing) and "groups list" in missing.hint


def test_instructions_from_a_file(runner: CliRunner, settings: Settings, tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("Be brief.\n")
    ok(runner, "groups", "create", "brief", "--instructions-file", str(notes))
    assert "Be brief." in (settings.groups_dir / "brief" / "CLAUDE.md").read_text()
    error = user_error(runner, "groups", "create", "both", "--instructions", "x", "--instructions-file", str(notes))
    assert "exclude each other" in str(error)


def test_delete_closes_sessions_and_keeps_the_folder(runner: CliRunner, settings: Settings) -> None:
    group = as_json(runner, "groups", "create", "scratch")
    with EventLog.open(settings.central_db) as log:
        log.append("session:s1", [ev.SessionCreated(session_id="s1", agent_group_id=group["id"])])
    deleted = as_json(runner, "groups", "delete", "scratch")
    assert deleted["deleted"]["id"] == group["id"]
    assert [o["session_id"] for o in deleted["closed_sessions"]] == ["s1"]
    assert as_json(runner, "groups", "list") == []
    assert (settings.groups_dir / "scratch").is_dir()
    with EventLog.open(settings.central_db) as log:
        session = log.store.session("s1")
        assert session is not None and session.status == "closed"
        types = [r.type for r in log.read()]
    assert types[-2:] == ["session.closed", "group.deleted"]


def test_the_admin_group_is_only_deleted_with_force(runner: CliRunner) -> None:
    ok(runner, "groups", "create", "main", "--admin")
    error = user_error(runner, "groups", "delete", "main")
    assert "admin group" in str(error) and "--force" in error.hint
    assert len(as_json(runner, "groups", "list")) == 1
    ok(runner, "groups", "delete", "main", "--force")
    assert as_json(runner, "groups", "list") == []


# -- wire ------------------------------------------------------------------------------------


def test_wire_a_terminal_conversation(runner: CliRunner) -> None:
    ok(runner, "groups", "create", "research")
    wiring = as_json(
        runner, "wire", "terminal", "lab", "research", "--mode", "per-thread", "--trigger", "^@crab", "--priority", "3"
    )
    assert (wiring["session_mode"], wiring["priority"]) == ("per-thread", 3)
    assert wiring["trigger_rules"] == {"pattern": "^@crab"}
    shown = as_json(runner, "groups", "show", "research")
    assert [(w["channel"], w["platform_id"], w["mode"]) for w in shown["wirings"]] == [
        ("terminal", "lab", "per-thread")
    ]
    assert [d["name"] for d in shown["destinations"]] == ["terminal-lab"]
    again = user_error(runner, "wire", "terminal", "lab", "research")
    assert "already wired" in str(again)


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["terminal", "lab", "research", "--trigger", "(unclosed"], "not a valid regular expression", "regex"),
        (["terminal", "lab", "research", "--mode", "sometimes"], "unknown session mode", "per-thread"),
        (["carrier-pigeon", "lab", "research"], "no channel adapter named 'carrier-pigeon'", "terminal"),
        (["terminal", "lab", "nobody"], "no agent group 'nobody'", "groups list"),
        (["terminal", " ", "research"], "platform id must not be empty", "main"),
    ],
)
def test_wire_refuses_bad_input_and_records_nothing(
    runner: CliRunner, settings: Settings, args: list[str], message: str, hint: str
) -> None:
    ok(runner, "groups", "create", "research")
    with EventLog.open(settings.central_db) as log:
        before = len(list(log.read()))
    error = user_error(runner, "wire", *args)
    assert message in str(error)
    assert hint in error.hint
    with EventLog.open(settings.central_db) as log:
        assert len(list(log.read())) == before


# -- sessions --------------------------------------------------------------------------------


def test_sessions_list_and_close(runner: CliRunner, settings: Settings) -> None:
    assert as_json(runner, "sessions", "list") == []
    group = as_json(runner, "groups", "create", "worker")
    with EventLog.open(settings.central_db) as log:
        log.append("session:sess-aaa111", [ev.SessionCreated(session_id="sess-aaa111", agent_group_id=group["id"])])
        log.append("session:sess-bbb222", [ev.SessionCreated(session_id="sess-bbb222", agent_group_id=group["id"])])
    listed = as_json(runner, "sessions", "list", "--group", "worker")
    assert [(s["id"], s["group"], s["status"]) for s in listed] == [
        ("sess-aaa111", "worker", "active"),
        ("sess-bbb222", "worker", "active"),
    ]
    closed = as_json(runner, "sessions", "close", "sess-a")  # a unique prefix will do
    assert (closed["session_id"], closed["action"], closed["host_running"]) == ("sess-aaa111", "close", False)
    assert "Docker does not answer" in closed["note"]
    assert [s["id"] for s in as_json(runner, "sessions", "list")] == ["sess-bbb222"]
    assert len(as_json(runner, "sessions", "list", "--all")) == 2
    assert "already closed" in str(user_error(runner, "sessions", "close", "sess-aaa111"))
    assert "start with 'sess-'" in str(user_error(runner, "sessions", "stop", "sess-"))
    assert "no session 'zzz'" in str(user_error(runner, "sessions", "stop", "zzz"))


def test_user_errors_are_one_line_and_a_hint_without_traceback(settings_env: dict[str, str], tmp_path: Path) -> None:
    env = {**settings_env, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", "from tools.cli import main; main()", "groups", "show", "nobody"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: no agent group 'nobody'", "hint: `hermitcrab groups list` shows every group"]
    assert "Traceback" not in result.stdout + result.stderr
