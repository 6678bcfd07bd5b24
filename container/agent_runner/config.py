"""The runner's settings, read once from the environment the host gives the container.

Why one frozen object: every part of the runner (poll loop, tools, providers)
reads the same values, and a bad value is reported once at start with the
variable's name instead of failing later inside a tool call.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_WORKSPACE = "/workspace"
BUILTIN_MCP_SERVER = "hermitcrab"
EFFORT_LEVELS = ("low", "medium", "high", "xhigh", "max")
MCP_SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


class ConfigError(ValueError):
    """A variable has a value the runner cannot work with; the message names it."""


@dataclass(frozen=True)
class McpServerSpec:
    """An extra stdio MCP server the group configured (HERMITCRAB_MCP_SERVERS)."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunnerConfig:
    provider: str
    workspace: Path
    inbound_db: Path
    outbound_db: Path
    heartbeat: Path
    admin_user_id: str | None = None
    assistant_name: str = "Assistant"
    agent_group_id: str | None = None
    agent_group_name: str | None = None
    is_admin: bool = False
    mcp_servers: Mapping[str, McpServerSpec] = field(default_factory=dict)
    model: str | None = None
    effort: str | None = None
    timezone: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @property
    def agent_dir(self) -> Path:
        """The group folder: the agent's working directory and memory."""
        return self.workspace / "agent"

    @property
    def outbox_dir(self) -> Path:
        return self.workspace / "outbox"

    @property
    def extra_dir(self) -> Path:
        return self.workspace / "extra"

    @property
    def conversations_dir(self) -> Path:
        return self.agent_dir / "conversations"

    def extra_directories(self) -> list[Path]:
        """Directories mounted under extra/ (additional mounts the group was granted)."""
        if not self.extra_dir.is_dir():
            return []
        return sorted(p for p in self.extra_dir.iterdir() if p.is_dir())


def load_config(env: Mapping[str, str] | None = None) -> RunnerConfig:
    """Build the config from `env` (default: os.environ).

    A bad optional value (extra MCP servers, effort) is logged and left out rather
    than stopping the container: the agent still answers, and the log names the
    variable. The provider name is checked where providers are made.
    """
    env = os.environ if env is None else env
    workspace = Path(env.get("HERMITCRAB_WORKSPACE") or DEFAULT_WORKSPACE)
    return RunnerConfig(
        provider=(env.get("AGENT_PROVIDER") or "claude").strip().lower(),
        workspace=workspace,
        inbound_db=Path(env.get("SESSION_INBOUND_DB_PATH") or workspace / "inbound.db"),
        outbound_db=Path(env.get("SESSION_OUTBOUND_DB_PATH") or workspace / "outbound.db"),
        heartbeat=Path(env.get("SESSION_HEARTBEAT_PATH") or workspace / ".heartbeat"),
        admin_user_id=env.get("HERMITCRAB_ADMIN_USER_ID") or None,
        assistant_name=env.get("HERMITCRAB_ASSISTANT_NAME") or "Assistant",
        agent_group_id=env.get("HERMITCRAB_AGENT_GROUP_ID") or None,
        agent_group_name=env.get("HERMITCRAB_AGENT_GROUP_NAME") or None,
        is_admin=env.get("HERMITCRAB_IS_ADMIN", "0").strip().lower() in ("1", "true", "yes"),
        mcp_servers=_lenient(parse_mcp_servers, env.get("HERMITCRAB_MCP_SERVERS") or "", {}),
        model=env.get("HERMITCRAB_MODEL") or None,
        effort=_lenient(_effort, env.get("HERMITCRAB_EFFORT") or "", None),
        timezone=_timezone(env.get("TZ") or ""),
    )


def parse_mcp_servers(raw: str) -> dict[str, McpServerSpec]:
    """Decode HERMITCRAB_MCP_SERVERS: `{"name": {"command": ..., "args": [...], "env": {...}}}`."""
    if not raw.strip():
        return {}
    try:
        decoded: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"HERMITCRAB_MCP_SERVERS is not valid JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise ConfigError("HERMITCRAB_MCP_SERVERS must be a JSON object of name -> server")
    servers: dict[str, McpServerSpec] = {}
    for name, spec in decoded.items():
        if not MCP_SERVER_NAME_RE.match(name) or name == BUILTIN_MCP_SERVER:
            raise ConfigError(f"HERMITCRAB_MCP_SERVERS: invalid or reserved server name {name!r}")
        if not isinstance(spec, dict) or not isinstance(spec.get("command"), str) or not spec["command"]:
            raise ConfigError(f"HERMITCRAB_MCP_SERVERS[{name!r}] needs a non-empty string 'command'")
        args = spec.get("args", [])
        server_env = spec.get("env", {})
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ConfigError(f"HERMITCRAB_MCP_SERVERS[{name!r}].args must be a list of strings")
        if not isinstance(server_env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in server_env.items()
        ):
            raise ConfigError(f"HERMITCRAB_MCP_SERVERS[{name!r}].env must map strings to strings")
        servers[name] = McpServerSpec(command=spec["command"], args=tuple(args), env=dict(server_env))
    return servers


def _lenient(parse: Callable[[str], T], raw: str, fallback: T) -> T:
    try:
        return parse(raw)
    except ConfigError as exc:
        log.error("%s; ignoring it", exc)
        return fallback


def _effort(raw: str) -> str | None:
    value = raw.strip().lower()
    if not value:
        return None
    if value not in EFFORT_LEVELS:
        raise ConfigError(f"HERMITCRAB_EFFORT={raw!r} is invalid: expected one of {', '.join(EFFORT_LEVELS)}")
    return value


def _timezone(name: str) -> tzinfo:
    """The zone the agent's user lives in: message times are shown and task times read in it."""
    name = name.strip().lstrip(":")
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("TZ=%r is not a known zone; using UTC", name)
        return ZoneInfo("UTC")
