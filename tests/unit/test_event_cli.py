"""`hermitcrab events` and `hermitcrab audit verify` on a real data directory."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from config.settings import Settings
from events import types as ev
from events.log import EventLog
from tests.unit.raw_events import database_of_version_3
from tools.cli import app
from tools.cli_common import UserError
from tools.cli_events import expand_types, parse_since


@pytest.fixture(autouse=True)
def _keep_logging_config() -> Iterator[None]:
    """The CLI configures structlog onto the runner's stderr, which is closed after each invoke: undo it."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def runner(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


@pytest.fixture
def filled(settings: Settings) -> Path:
    with EventLog.open(settings.central_db) as log:
        log.append("group:g1", [ev.GroupCreated(group_id="g1", name="Main [admin]", folder="main")])
        log.append("group:g2", [ev.GroupCreated(group_id="g2", name="Other", folder="other")])
        log.append("session:s1", [ev.SessionCreated(session_id="s1", agent_group_id="g1")])
        log.append("session:s2", [ev.SessionCreated(session_id="s2", agent_group_id="g2")])
        log.append(
            "session:s1",
            [
                ev.ContainerSpawned(
                    session_id="s1", container_id="c1", container_name="n1", image="i", mounts_digest="d"
                ),
                ev.ContainerIdle(session_id="s1", container_id="c1"),
            ],
        )
        log.append("question:q1", [ev.QuestionAsked(question_id="q1", session_id="s1", message_out_id="o1")])
    return settings.central_db


def _json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines()]


def test_events_as_json_lines(runner: CliRunner, filled: Path) -> None:
    result = runner.invoke(app, ["events", "--json"])
    assert result.exit_code == 0, result.output
    lines = _json_lines(result.stdout)
    assert [line["position"] for line in lines] == [1, 2, 3, 4, 5, 6, 7]
    assert lines[4]["type"] == "container.spawned"
    assert lines[4]["event"] == {
        "type": "container.spawned",
        "session_id": "s1",
        "container_id": "c1",
        "container_name": "n1",
        "image": "i",
        "mounts_digest": "d",
        "schema": 1,
    }


def test_events_filtered_by_session_group_and_type(runner: CliRunner, filled: Path) -> None:
    by_session = _json_lines(runner.invoke(app, ["events", "--session", "s1", "--json"]).stdout)
    assert [line["position"] for line in by_session] == [3, 5, 6, 7]
    by_group = _json_lines(runner.invoke(app, ["events", "--group", "g2", "--json"]).stdout)
    assert [line["position"] for line in by_group] == [2, 4]
    by_type = _json_lines(
        runner.invoke(app, ["events", "--type", "container.*", "--type", "group.created", "--json"]).stdout
    )
    assert [line["type"] for line in by_type] == [
        "group.created",
        "group.created",
        "container.spawned",
        "container.idle",
    ]
    limited = _json_lines(runner.invoke(app, ["events", "--limit", "2", "--json"]).stdout)
    assert [line["position"] for line in limited] == [1, 2]


def test_events_since(runner: CliRunner, filled: Path) -> None:
    recent = _json_lines(runner.invoke(app, ["events", "--since", "10m", "--json"]).stdout)
    assert len(recent) == 7
    future = runner.invoke(app, ["events", "--since", "2999-01-01", "--json"])
    assert future.exit_code == 0
    assert future.stdout == ""


def test_events_as_a_table_for_people(runner: CliRunner, filled: Path) -> None:
    result = runner.invoke(app, ["events", "--session", "s1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "container.spawned" in result.stdout
    assert "container_id=c1" in result.stdout
    assert "session:s1" in result.stdout
    assert "schema=" not in result.stdout
    names = runner.invoke(app, ["events", "--group", "g1"], env={"COLUMNS": "200"})
    assert "name=Main [admin]" in names.stdout


def test_events_with_no_match_says_so(runner: CliRunner, filled: Path) -> None:
    result = runner.invoke(app, ["events", "--session", "nobody"])
    assert result.exit_code == 0
    assert "no events match" in result.stderr


def test_events_refuses_an_unknown_type_with_a_suggestion(runner: CliRunner, filled: Path) -> None:
    with pytest.raises(UserError, match=r"unknown event type 'container\.spawn'") as raised:
        expand_types(["container.spawn"])
    assert "container.spawned" in raised.value.hint
    result = runner.invoke(app, ["events", "--type", "nonsense"])
    assert result.exit_code != 0
    assert isinstance(result.exception, UserError)


def test_events_without_a_log_is_a_user_error_and_creates_nothing(runner: CliRunner, settings: Settings) -> None:
    for command in (["events"], ["audit", "verify"]):
        result = runner.invoke(app, command)
        assert isinstance(result.exception, UserError)
        assert "no event log at" in str(result.exception)
    assert not settings.central_db.exists()


def test_events_on_an_unmigrated_log_says_how_to_migrate_it(runner: CliRunner, settings: Settings) -> None:
    settings.central_db.parent.mkdir(parents=True, exist_ok=True)
    database_of_version_3(settings.central_db)
    result = runner.invoke(app, ["events"])
    assert isinstance(result.exception, UserError)
    assert "at migration 3 but this version expects" in str(result.exception)
    assert "hermitcrab up" in result.exception.hint
    EventLog.open(settings.central_db).close()
    result = runner.invoke(app, ["events", "--json"])
    assert result.exit_code == 0, result.output
    shown = [line["type"] for line in _json_lines(result.stdout)]
    assert shown == ["group.created", "session.created", "container.idle"]


def test_parse_since_forms() -> None:
    now = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_since("30m", now) == "2026-05-01 11:30:00"
    assert parse_since("2d", now) == "2026-04-29 12:00:00"
    assert parse_since("2026-04-01") == "2026-04-01 00:00:00"
    assert parse_since("2026-04-01 08:15") == "2026-04-01 08:15:00"
    assert parse_since("2026-04-01T08:15:00Z") == "2026-04-01 08:15:00"
    assert parse_since("2026-04-01T20:15:00+12:00") == "2026-04-01 08:15:00"
    with pytest.raises(UserError, match="neither a time nor a duration"):
        parse_since("yesterday")


def test_audit_verify_passes_on_a_consistent_log(runner: CliRunner, filled: Path) -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "every projection matches the log" in result.stdout


def test_audit_verify_exits_1_and_prints_each_difference(runner: CliRunner, filled: Path) -> None:
    conn = sqlite3.connect(filled)
    with conn:
        conn.execute("UPDATE sessions SET container_status = 'running' WHERE id = 's1'")
        conn.execute("DELETE FROM pending_questions")
    conn.close()
    result = runner.invoke(app, ["audit", "verify"], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "sessions [id='s1']: container_status live='running' derived='idle'" in result.stdout
    assert "pending_questions [question_id='q1']: derived from the log but missing from the live table" in result.stdout
    assert "2 difference(s)" in result.stderr
