"""`hermitcrab groups create|list|show|delete`: the agent groups, each with its own memory folder and container."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from actors.admin import create_group
from actors.group_folder import group_folder_path
from events import types as ev
from events.log import EventLog
from events.model import AgentGroup, Destination, TriggerRules
from tools.cli_common import UserError, err, out, settings_or_exit
from tools.cli_sessions import SessionRow, session_rows, sessions_table
from tools.cli_store import group_or_error, open_log, print_json
from tools.session_control import close_session

app = typer.Typer(name="groups", help="Create, list, show and delete agent groups.", no_args_is_help=True)

PROVIDERS = ("claude", "echo")


class WiringRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    channel: str
    platform_id: str
    mode: str
    trigger: TriggerRules
    priority: int


class GroupRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    folder: str
    is_admin: bool
    provider: str | None
    created_at: str
    wirings: list[WiringRow]
    active_sessions: int


class GroupDetail(msgspec.Struct, frozen=True, kw_only=True):
    group: AgentGroup
    path: str
    wirings: list[WiringRow]
    destinations: list[Destination]
    sessions: list[SessionRow]


def _wirings(log: EventLog, group: AgentGroup) -> list[WiringRow]:
    rows = []
    for wiring in log.store.wirings_for_group(group.id):
        messaging_group = log.store.messaging_group(wiring.messaging_group_id)
        rows.append(
            WiringRow(
                id=wiring.id,
                channel=messaging_group.channel_type if messaging_group else "?",
                platform_id=messaging_group.platform_id if messaging_group else wiring.messaging_group_id,
                mode=wiring.session_mode,
                trigger=wiring.trigger_rules,
                priority=wiring.priority,
            )
        )
    return rows


def _row(log: EventLog, group: AgentGroup) -> GroupRow:
    active = [s for s in log.store.sessions_for_group(group.id) if s.status == "active"]
    return GroupRow(
        id=group.id,
        name=group.name,
        folder=group.folder,
        is_admin=group.is_admin,
        provider=group.agent_provider,
        created_at=group.created_at,
        wirings=_wirings(log, group),
        active_sessions=len(active),
    )


def _where(wiring: WiringRow) -> str:
    return f"{wiring.channel}/{wiring.platform_id}"


@app.command("create")
def create(
    name: str = typer.Argument(..., help="The group's name (its folder is derived from it unless --folder)."),
    folder: str | None = typer.Option(None, "--folder", help="The folder under the groups directory."),
    admin: bool = typer.Option(False, "--admin", help="Give the group admin powers (like `main`)."),
    instructions: str | None = typer.Option(None, "--instructions", help="Text for the group's first CLAUDE.md."),
    instructions_file: Annotated[
        Path | None,
        typer.Option("--instructions-file", exists=True, dir_okay=False, help="Read the instructions from a file."),
    ] = None,
    provider: str | None = typer.Option(None, "--provider", help="claude or echo (default: the host's setting)."),
    as_json: bool = typer.Option(False, "--json", help="Print the new group as JSON."),
) -> None:
    """Create an agent group with its memory folder; wire it to a conversation with `hermitcrab wire`."""
    if instructions is not None and instructions_file is not None:
        raise UserError("--instructions and --instructions-file exclude each other", "pass one of them")
    if provider is not None and provider not in PROVIDERS:
        raise UserError(f"unknown provider {provider!r}", f"use one of: {', '.join(PROVIDERS)}")
    text = instructions_file.read_text(encoding="utf-8") if instructions_file is not None else instructions
    settings = settings_or_exit()
    with open_log(settings) as log:
        group = create_group(
            log, settings, name=name, folder=folder, is_admin=admin, instructions=text, agent_provider=provider
        )
        row = _row(log, group)
    if as_json:
        print_json(row)
        return
    path = group_folder_path(settings.groups_dir, group.folder)
    out.print(f"created group [bold]{group.name}[/bold] ({group.id}), memory in {path}", soft_wrap=True)
    err.print(f"[dim]wire it to a chat: hermitcrab wire terminal {group.folder} {group.folder}[/dim]", soft_wrap=True)


@app.command("list")
def list_groups(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """Every agent group with its conversations and active sessions."""
    settings = settings_or_exit()
    with open_log(settings) as log:
        rows = [_row(log, group) for group in log.store.agent_groups()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        err.print("[dim]no groups yet; `hermitcrab up` creates `main`, `hermitcrab groups create NAME` others[/dim]")
        return
    table = Table(header_style="bold")
    for column in ("name", "folder", "id", "admin", "conversations", "sessions"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            Text(row.name),
            Text(row.folder),
            row.id,
            "yes" if row.is_admin else "",
            Text(", ".join(_where(w) for w in row.wirings) or "-"),
            str(row.active_sessions),
        )
    out.print(table)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="The group's name, folder or id."),
    as_json: bool = typer.Option(False, "--json", help="Print the details as JSON."),
) -> None:
    """One group: its folder, wiring, destinations and sessions."""
    settings = settings_or_exit()
    with open_log(settings) as log:
        group = group_or_error(log, name)
        detail = GroupDetail(
            group=group,
            path=str(group_folder_path(settings.groups_dir, group.folder)),
            wirings=_wirings(log, group),
            destinations=log.store.destinations(group.id),
            sessions=session_rows(log.store, log.store.sessions_for_group(group.id)),
        )
    if as_json:
        print_json(detail)
        return
    out.print(f"[bold]{group.name}[/bold] ({group.id}){' [magenta]admin[/magenta]' if group.is_admin else ''}")
    out.print(f"folder:   {detail.path}", highlight=False, soft_wrap=True)
    out.print(f"provider: {group.agent_provider or 'host default'}", highlight=False)
    out.print(f"created:  {group.created_at} UTC", highlight=False)
    for wiring in detail.wirings:
        trigger = f", trigger {wiring.trigger.pattern!r}" if wiring.trigger.pattern else ""
        out.print(
            Text(f"wired:    {_where(wiring)} ({wiring.mode}, priority {wiring.priority}{trigger})"), soft_wrap=True
        )
    for destination in detail.destinations:
        target = destination.target_agent_group_id or f"{destination.channel_type}/{destination.platform_id}"
        out.print(Text(f"may send: {destination.name} -> {target}"), soft_wrap=True)
    if detail.sessions:
        out.print(sessions_table(detail.sessions))


@app.command("delete")
def delete(
    name: str = typer.Argument(..., help="The group's name, folder or id."),
    force: bool = typer.Option(False, "--force", help="Also delete an admin group such as `main`."),
    as_json: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
) -> None:
    """Delete a group: close its sessions (their containers go), remove its wiring; its folder is kept."""
    settings = settings_or_exit()
    with open_log(settings) as log:
        group = group_or_error(log, name)
        if group.is_admin and not force:
            raise UserError(
                f"{group.folder} is the admin group; deleting it leaves nobody to administer hermitcrab",
                "pass --force if you really mean it (`hermitcrab up` creates a new `main`)",
            )
        active = [s for s in log.store.sessions_for_group(group.id) if s.status == "active"]
        outcomes = [close_session(log, settings, s, f"group {group.folder} deleted") for s in active]
        log.append(f"group:{group.id}", [ev.GroupDeleted(group_id=group.id)])
    path = group_folder_path(settings.groups_dir, group.folder)
    if as_json:
        print_json({"deleted": group, "closed_sessions": outcomes, "folder_kept": str(path)})
        return
    out.print(f"deleted group [bold]{group.name}[/bold] ({group.id}); closed {len(outcomes)} session(s)")
    err.print(f"[dim]its memory folder is kept: {path}[/dim]", soft_wrap=True)
