"""The system actions an agent can ask for, parsed and checked again on the host.

A `kind='system'` row is written by the container, so it is untrusted input:
the runner's own checks are advisory, and every field is validated here with
the same rules before the host acts (docs/agent-runner.md, "System actions").
A refusal is an `InvalidRequest` whose message is fit to show the agent.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from croniter import croniter

from actors.image_recipe import InvalidPackageError, validate_packages
from events.model import McpServer, Packages

AGENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")
MCP_SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
TASK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
DB_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
BUILTIN_MCP_SERVER = "hermitcrab"
MAX_MCP_ARGS = 50
MAX_TEXT = 50_000
CRON_FIELDS = 5

TASK_ACTIONS = ("schedule_task", "cancel_task", "pause_task", "resume_task")
APPROVAL_ACTIONS = ("install_packages", "add_mcp_server", "request_rebuild")
ACTIONS = (*TASK_ACTIONS, "create_agent", *APPROVAL_ACTIONS)


class InvalidRequest(ValueError):
    """A system action the host refuses; the message tells the agent what was wrong."""


class ScheduleTask(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    prompt: str
    script: str | None
    process_after: datetime
    recurrence: str | None
    channel_type: str | None
    platform_id: str | None
    thread_id: str | None


class TaskControl(msgspec.Struct, frozen=True, kw_only=True):
    """cancel_task, pause_task or resume_task."""

    action: str
    task_id: str


class CreateAgent(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    local_name: str
    instructions: str | None


class InstallPackages(msgspec.Struct, frozen=True, kw_only=True):
    packages: Packages
    reason: str


class AddMcpServer(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    server: McpServer


class RequestRebuild(msgspec.Struct, frozen=True, kw_only=True):
    reason: str


SystemAction = ScheduleTask | TaskControl | CreateAgent | InstallPackages | AddMcpServer | RequestRebuild


def normalize_agent_name(name: str) -> str:
    """The creator's destination name for a new agent: lower case, other runs of characters as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def validate_cron(expression: str, timezone: str) -> str:
    """A 5-field cron expression, whitespace normalized; InvalidRequest when croniter cannot use it in the zone."""
    normalized = " ".join(expression.split())
    if len(normalized.split(" ")) != CRON_FIELDS or not croniter.is_valid(normalized):
        raise InvalidRequest(
            f"recurrence {expression!r} is not a 5-field cron expression (minute hour day-of-month month day-of-week)"
        )
    try:
        croniter(normalized, datetime.now(ZoneInfo(timezone))).get_next(datetime)
    except (ValueError, KeyError) as exc:  # e.g. "0 0 30 2 *": valid syntax, but no such day ever comes
        raise InvalidRequest(f"recurrence {expression!r} never fires: {exc}") from None
    return normalized


def action_of(content: str) -> tuple[str, str, dict[str, Any]]:
    """(action, requestId, fields) of a system row's JSON content; InvalidRequest for anything malformed."""
    try:
        fields = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the system request is not JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise InvalidRequest("the system request must be a JSON object")
    action = fields.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise InvalidRequest(f"unknown system action {action!r}; known: {', '.join(ACTIONS)}")
    request_id = fields.get("requestId")
    if not isinstance(request_id, str) or not TASK_ID_RE.match(request_id):
        raise InvalidRequest(f"{action}: requestId must be an id of letters, digits and ._:-")
    return action, request_id, fields


def parse_action(action: str, fields: dict[str, Any], timezone: str) -> SystemAction:
    """The typed action for `fields`, every value checked; InvalidRequest naming the first problem."""
    if action == "schedule_task":
        return _schedule_task(fields, timezone)
    if action in TASK_ACTIONS:
        return TaskControl(action=action, task_id=_task_id(fields, "taskId"))
    if action == "create_agent":
        return _create_agent(fields)
    if action == "install_packages":
        return _install_packages(fields)
    if action == "add_mcp_server":
        return _add_mcp_server(fields)
    return RequestRebuild(reason=_optional_text(fields, "reason", 2000) or "")


def _text(fields: dict[str, Any], key: str, max_len: int) -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{key} must be a non-empty string")
    if len(value) > max_len:
        raise InvalidRequest(f"{key} is too long ({len(value)} characters, at most {max_len})")
    return value


def _optional_text(fields: dict[str, Any], key: str, max_len: int) -> str | None:
    return None if fields.get(key) in (None, "") else _text(fields, key, max_len)


def _string_list(fields: dict[str, Any], key: str, max_items: int, max_len: int) -> list[str]:
    value = fields.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > max_items:
        raise InvalidRequest(f"{key} must be a list of at most {max_items} strings")
    for item in value:
        if not isinstance(item, str) or not item or len(item) > max_len or "\0" in item or "\n" in item:
            raise InvalidRequest(f"{key} must hold strings of 1 to {max_len} characters without NUL or newlines")
    return list(value)


def _task_id(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str) or not TASK_ID_RE.match(value):
        raise InvalidRequest(f"{key} {value!r} is not a task id")
    return value


def _schedule_task(fields: dict[str, Any], timezone: str) -> ScheduleTask:
    task_id = _task_id(fields, "taskId")
    when = fields.get("processAfter")
    if not isinstance(when, str) or not DB_TIME_RE.match(when):
        raise InvalidRequest("processAfter must be a UTC time in the form YYYY-MM-DD HH:MM:SS")
    try:
        process_after = datetime.fromisoformat(when + "+00:00")
    except ValueError:
        raise InvalidRequest(f"processAfter {when!r} is not a real time") from None
    recurrence = _optional_text(fields, "recurrence", 200)
    routing = {key: _optional_text(fields, key, 500) for key in ("channelType", "platformId", "threadId")}
    return ScheduleTask(
        task_id=task_id,
        prompt=_text(fields, "prompt", 20_000),
        script=_optional_text(fields, "script", 20_000),
        process_after=process_after,
        recurrence=validate_cron(recurrence, timezone) if recurrence is not None else None,
        channel_type=routing["channelType"],
        platform_id=routing["platformId"],
        thread_id=routing["threadId"],
    )


def _create_agent(fields: dict[str, Any]) -> CreateAgent:
    name = _text(fields, "name", 64).strip()
    if not AGENT_NAME_RE.match(name):
        raise InvalidRequest(f"agent name {name!r} may use letters, digits, spaces, '-' and '_' (1 to 64 characters)")
    return CreateAgent(
        name=name, local_name=normalize_agent_name(name), instructions=_optional_text(fields, "instructions", MAX_TEXT)
    )


def _install_packages(fields: dict[str, Any]) -> InstallPackages:
    apt = _string_list(fields, "apt", 20, 100)
    pip = _string_list(fields, "pip", 20, 100)
    if not apt and not pip:
        raise InvalidRequest("install_packages names no package")
    if len(set(apt)) != len(apt) or len({name.lower() for name in pip}) != len(pip):
        raise InvalidRequest("install_packages lists a package twice")
    if any("==" in name for name in pip):
        raise InvalidRequest("install_packages takes package names only, without versions")
    try:
        packages = validate_packages(Packages(apt=apt, pip=pip))
    except InvalidPackageError as exc:
        raise InvalidRequest(str(exc)) from None
    return InstallPackages(packages=packages, reason=_optional_text(fields, "reason", 2000) or "")


def _add_mcp_server(fields: dict[str, Any]) -> AddMcpServer:
    name = _text(fields, "name", 40).strip()
    if not MCP_SERVER_NAME_RE.match(name) or name == BUILTIN_MCP_SERVER:
        raise InvalidRequest(f"MCP server name {name!r} must be 1-40 letters, digits, '-' or '_' and not 'hermitcrab'")
    command = _text(fields, "command", 500).strip()
    if "\0" in command or "\n" in command:
        raise InvalidRequest("the MCP server command may not contain NUL or newline characters")
    env = fields.get("env") or {}
    if not isinstance(env, dict):
        raise InvalidRequest("env must be an object of NAME -> value strings")
    for key, value in env.items():
        if (
            not ENV_NAME_RE.match(key)
            or not isinstance(value, str)
            or len(value) > 4000
            or "\0" in value
            or "\n" in value
        ):
            raise InvalidRequest(f"env entry {key!r} must be NAME -> one-line string (names: letters, digits, '_')")
    args = _string_list(fields, "args", MAX_MCP_ARGS, 1000)
    return AddMcpServer(name=name, server=McpServer(command=command, args=args, env=dict(env)))
