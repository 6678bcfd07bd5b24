"""The host's second check of agents' system actions: every field, every refusal naming its problem."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from actors.system_payloads import (
    AddMcpServer,
    CreateAgent,
    InstallPackages,
    InvalidRequest,
    RequestRebuild,
    ScheduleTask,
    TaskControl,
    action_of,
    normalize_agent_name,
    parse_action,
    validate_cron,
)

ZONE = "Pacific/Auckland"


def parse(fields: dict[str, Any]) -> Any:
    action, _, checked = action_of(json.dumps({"requestId": "sys-1", **fields}))
    return parse_action(action, checked, ZONE)


def schedule(**overrides: Any) -> dict[str, Any]:
    return {
        "action": "schedule_task",
        "taskId": "task-1",
        "prompt": "water the plants",
        "script": None,
        "processAfter": "2030-01-02 03:04:05",
        "recurrence": None,
        "platformId": "tty-1",
        "channelType": "terminal",
        "threadId": None,
        **overrides,
    }


def test_schedule_task_reads_utc_time_and_routing() -> None:
    task = parse(schedule(recurrence="0  9 * * 1-5"))
    assert isinstance(task, ScheduleTask)
    assert task.process_after == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert task.recurrence == "0 9 * * 1-5"
    assert (task.channel_type, task.platform_id, task.thread_id) == ("terminal", "tty-1", None)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"processAfter": "2030-01-02T03:04:05Z"}, "processAfter must be a UTC time"),
        ({"processAfter": "2030-02-30 03:04:05"}, "not a real time"),
        ({"processAfter": None}, "processAfter"),
        ({"prompt": ""}, "prompt must be a non-empty string"),
        ({"taskId": "../etc"}, "not a task id"),
        ({"recurrence": "61 * * * *"}, "not a 5-field cron"),
        ({"recurrence": "* * * * * */2"}, "not a 5-field cron"),
        ({"recurrence": "0 0 30 2 *"}, "never fires"),
    ],
)
def test_schedule_task_refusals_name_the_problem(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidRequest, match=problem):
        parse(schedule(**overrides))


def test_an_invalid_cron_is_refused_when_scheduled() -> None:
    with pytest.raises(InvalidRequest, match="every day"):
        validate_cron("every day", ZONE)
    assert validate_cron(" 30\t7 * * * ", ZONE) == "30 7 * * *"


def test_task_controls_carry_their_task() -> None:
    assert parse({"action": "pause_task", "taskId": "task-9"}) == TaskControl(action="pause_task", task_id="task-9")


def test_create_agent_normalizes_the_destination_name() -> None:
    request = parse({"action": "create_agent", "name": "  Research Bot_2 ", "instructions": "Be terse."})
    assert request == CreateAgent(name="Research Bot_2", local_name="research-bot-2", instructions="Be terse.")
    assert normalize_agent_name("--A  b--") == "a-b"


@pytest.mark.parametrize("name", ["../evil", "a/b", "", " ", "x" * 65, "-leading"])
def test_create_agent_refuses_names_that_could_not_be_folders(name: str) -> None:
    with pytest.raises(InvalidRequest):
        parse({"action": "create_agent", "name": name})


def test_install_packages_checks_names_counts_and_duplicates() -> None:
    ok = parse({"action": "install_packages", "apt": ["jq"], "pip": ["httpx"], "reason": "parse json"})
    assert isinstance(ok, InstallPackages)
    assert (ok.packages.apt, ok.packages.pip, ok.reason) == (["jq"], ["httpx"], "parse json")
    for bad, problem in [
        ({"apt": []}, "names no package"),
        ({"apt": ["jq; rm -rf /"]}, "not a Debian package name"),
        ({"apt": ["jq", "jq"]}, "twice"),
        ({"pip": ["httpx==1.0"]}, "without versions"),
        ({"pip": ["git+https://x"]}, "not a PyPI project name"),
        ({"apt": [f"pkg{i}" for i in range(21)]}, "at most 20"),
    ]:
        with pytest.raises(InvalidRequest, match=problem):
            parse({"action": "install_packages", **bad})


def test_add_mcp_server_keeps_command_args_and_env() -> None:
    request = parse(
        {"action": "add_mcp_server", "name": "calc", "command": "npx", "args": ["-y", "calc"], "env": {"KEY": "v"}}
    )
    assert isinstance(request, AddMcpServer)
    assert (request.server.command, request.server.args, request.server.env) == ("npx", ["-y", "calc"], {"KEY": "v"})
    for bad in [
        {"name": "hermitcrab"},
        {"name": "bad name"},
        {"env": {"1BAD": "x"}},
        {"env": {"OK": "line\nbreak"}},
        {"args": ["a\nb"]},
        {"command": ""},
    ]:
        with pytest.raises(InvalidRequest):
            parse({"action": "add_mcp_server", "name": "calc", "command": "npx", **bad})


def test_request_rebuild_and_unknown_or_malformed_requests() -> None:
    assert parse({"action": "request_rebuild", "reason": "jq"}) == RequestRebuild(reason="jq")
    with pytest.raises(InvalidRequest, match="unknown system action"):
        action_of(json.dumps({"action": "format_disk", "requestId": "sys-1"}))
    with pytest.raises(InvalidRequest, match="not JSON"):
        action_of("{")
    with pytest.raises(InvalidRequest, match="requestId"):
        action_of(json.dumps({"action": "request_rebuild"}))
