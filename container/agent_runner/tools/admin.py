"""Tools that change the agent's world through the host: create_agent, install_packages, add_mcp_server,
request_rebuild.

All are requests: the row says what is wanted, the host decides (create_agent
needs an admin group; the others need the admin's approval) and tells the agent
the outcome as a message. Names are checked strictly here and again on the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agent_runner.config import BUILTIN_MCP_SERVER, MCP_SERVER_NAME_RE
from agent_runner.tools.base import (
    ToolContext,
    ToolInputError,
    ToolResult,
    ToolSpec,
    ok,
    optional_text,
    schema,
    string_list,
    text_arg,
)
from agent_runner.tools.targets import request_action

AGENT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")
APT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")
PIP_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_PACKAGES = 20
MAX_ARGS = 50


def normalize_agent_name(name: str) -> str:
    """The destination name a new agent gets: lower case, runs of other characters as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def create_agent(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    if not ctx.config.is_admin:
        raise ToolInputError("only the admin agent can create agents")
    name = text_arg(args, "name", max_len=64).strip()
    if not AGENT_NAME_RE.match(name):
        raise ToolInputError("name may use letters, digits, spaces, '-' and '_' (1 to 64 characters)")
    local_name = normalize_agent_name(name)
    if any(d.name == local_name for d in ctx.db.destinations()):
        raise ToolInputError(f'you already have a destination named "{local_name}"; choose another name')
    instructions = optional_text(args, "instructions", max_len=50_000)
    request_action(ctx, "create_agent", {"name": name, "instructions": instructions})
    return ok(
        f'Creating agent "{name}". You will get a message when it is ready; then write to it with '
        f'<message to="{local_name}">...</message> or send_message(to="{local_name}").'
    )


def install_packages(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    apt = string_list(args, "apt", max_items=MAX_PACKAGES, max_len=100)
    pip = string_list(args, "pip", max_items=MAX_PACKAGES, max_len=100)
    reason = optional_text(args, "reason", max_len=2000) or ""
    if not apt and not pip:
        raise ToolInputError("name at least one package in apt or pip")
    if len(apt) + len(pip) > MAX_PACKAGES:
        raise ToolInputError(f"at most {MAX_PACKAGES} packages per request ({len(apt) + len(pip)} given)")
    for name in apt:
        if not APT_NAME_RE.match(name):
            raise ToolInputError(
                f'"{name}" is not a Debian package name (lower-case letters, digits and .+- only; no versions or flags)'
            )
    for name in pip:
        if not PIP_NAME_RE.match(name):
            raise ToolInputError(f'"{name}" is not a Python package name (no versions, extras, URLs or flags)')
    if len(set(apt)) != len(apt) or len({p.lower() for p in pip}) != len(pip):
        raise ToolInputError("a package is listed twice")
    request_action(ctx, "install_packages", {"apt": apt, "pip": pip, "reason": reason})
    return ok(
        "Package request sent for the admin's approval. You will be told the outcome; once approved, "
        "call request_rebuild so the next container has them."
    )


def add_mcp_server(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    name = text_arg(args, "name", max_len=40).strip()
    if not MCP_SERVER_NAME_RE.match(name) or name == BUILTIN_MCP_SERVER:
        raise ToolInputError(f"name {name!r} must be 1-40 letters, digits, '-' or '_' and not {BUILTIN_MCP_SERVER!r}")
    command = text_arg(args, "command", max_len=500).strip()
    server_args = string_list(args, "args", max_items=MAX_ARGS, max_len=1000)
    env = args.get("env") or {}
    if not isinstance(env, dict):
        raise ToolInputError("env must be an object of NAME -> value strings")
    for key, value in env.items():
        if not ENV_NAME_RE.match(str(key)) or not isinstance(value, str) or len(value) > 4000:
            raise ToolInputError(f"env entry {key!r} must be NAME -> string (names: letters, digits, '_')")
    if any("\0" in part or "\n" in part for part in [command, *server_args, *env.values()]):
        raise ToolInputError("command, args and env values may not contain NUL or newline characters")
    request_action(ctx, "add_mcp_server", {"name": name, "command": command, "args": server_args, "env": env})
    return ok(f"Request to add MCP server {name} sent for the admin's approval. You will be told the outcome.")


def request_rebuild(ctx: ToolContext, args: Mapping[str, Any]) -> ToolResult:
    reason = optional_text(args, "reason", max_len=2000) or ""
    request_action(ctx, "request_rebuild", {"reason": reason})
    return ok("Rebuild request sent for the admin's approval. You will be told the outcome.")


PACKAGE_LIST = {"type": "array", "items": {"type": "string"}}

TOOLS = [
    ToolSpec(
        "create_agent",
        "Create a new agent (admin only). Its name becomes your destination name for it; it calls you 'parent'.",
        schema(
            {
                "name": {"type": "string", "description": "The new agent's name."},
                "instructions": {"type": "string", "description": "Its CLAUDE.md: role, personality, rules."},
            },
            ["name"],
        ),
        create_agent,
        admin_only=True,
    ),
    ToolSpec(
        "install_packages",
        f"Ask for system (apt) or Python (pip) packages in your container image, at most {MAX_PACKAGES} per "
        "request. Needs the admin's approval; then call request_rebuild.",
        schema(
            {
                "apt": {**PACKAGE_LIST, "description": "Debian package names, no versions or flags."},
                "pip": {**PACKAGE_LIST, "description": "Python package names, no versions or extras."},
                "reason": {"type": "string", "description": "Why they are needed (shown to the admin)."},
            }
        ),
        install_packages,
    ),
    ToolSpec(
        "add_mcp_server",
        "Ask for an extra MCP server (a stdio command) in your configuration. Needs the admin's approval; "
        "your container restarts with it.",
        schema(
            {
                "name": {"type": "string", "description": "Server name."},
                "command": {"type": "string", "description": "The executable to run."},
                "args": {"type": "array", "items": {"type": "string"}, "description": "Its arguments."},
                "env": {"type": "object", "description": "Environment variables for it."},
            },
            ["name", "command"],
        ),
        add_mcp_server,
    ),
    ToolSpec(
        "request_rebuild",
        "Ask for your container image to be rebuilt (after approved package installs). Needs the admin's approval.",
        schema({"reason": {"type": "string", "description": "Why (shown to the admin)."}}),
        request_rebuild,
    ),
]
