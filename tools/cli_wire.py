"""`hermitcrab wire`: connect a conversation on a channel to an agent group."""

from __future__ import annotations

import re

import typer

from actors.admin import SESSION_MODES, ensure_messaging_group, wire
from channels.registry import discover
from events.model import SessionMode, TriggerRules
from tools.cli_common import UserError, err, out, settings_or_exit
from tools.cli_store import group_or_error, open_log, print_json

_MODES: dict[str, SessionMode] = {mode: mode for mode in SESSION_MODES}


def _checked_mode(mode: str) -> SessionMode:
    if mode not in _MODES:
        raise UserError(f"unknown session mode {mode!r}", f"use one of: {', '.join(SESSION_MODES)}")
    return _MODES[mode]


def _checked_trigger(trigger: str | None) -> str | None:
    if trigger is None:
        return None
    try:
        re.compile(trigger)
    except re.error as exc:
        raise UserError(
            f"--trigger {trigger!r} is not a valid regular expression: {exc}",
            "Python regex syntax; quote it for your shell, e.g. --trigger '^@crab\\b'",
        ) from None
    return trigger


def _checked_channel(channel: str) -> None:
    installed = sorted(discover())
    if channel not in installed:
        raise UserError(
            f"no channel adapter named {channel!r} is installed",
            f"installed channels: {', '.join(installed) or 'none'}",
        )


def wire_command(
    channel: str = typer.Argument(..., help="The channel type, e.g. terminal."),
    platform_id: str = typer.Argument(..., help="The conversation's id on that channel (terminal: its name)."),
    group: str = typer.Argument(..., help="The agent group (name, folder or id)."),
    mode: str = typer.Option(
        "shared", "--mode", help="Sessions: shared (one per conversation), per-thread, or agent-shared."
    ),
    trigger: str | None = typer.Option(None, "--trigger", help="Only messages matching this regex reach the group."),
    priority: int = typer.Option(0, "--priority", help="Higher wins when several groups are wired to one chat."),
    name: str | None = typer.Option(
        None, "--name", help="The conversation's display name (also the destination name the agent uses)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the new wiring as JSON."),
) -> None:
    """Wire a conversation to an agent group, so its messages reach that group's agent."""
    session_mode = _checked_mode(mode)
    pattern = _checked_trigger(trigger)
    _checked_channel(channel)
    if not platform_id.strip():
        raise UserError("the platform id must not be empty", "terminal conversations are named, e.g. `main`")
    settings = settings_or_exit()
    with open_log(settings) as log:
        agent_group = group_or_error(log, group)
        conversation = ensure_messaging_group(log, channel, platform_id, name=name)
        wiring = wire(
            log,
            conversation,
            agent_group,
            mode=session_mode,
            trigger_rules=TriggerRules(pattern=pattern),
            priority=priority,
        )
    if as_json:
        print_json(wiring)
        return
    out.print(
        f"wired {channel}/{platform_id} to [bold]{agent_group.folder}[/bold] ({session_mode}, priority {priority})",
        soft_wrap=True,
    )
    if channel == "terminal":
        err.print(f"[dim]chat with it: hermitcrab chat --group {platform_id}[/dim]", soft_wrap=True)
