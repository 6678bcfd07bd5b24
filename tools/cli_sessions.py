"""`hermitcrab sessions list|stop|close`: see the sessions, stop a container, close a session for good."""

from __future__ import annotations

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from events.log import EventLog
from events.model import Session
from events.store import Store
from tools.cli_common import UserError, err, out, settings_or_exit
from tools.cli_store import group_or_error, human_duration, open_log, print_json, seconds_since
from tools.session_control import SessionOutcome, close_session, stop_session

app = typer.Typer(name="sessions", help="List, stop and close agent sessions.", no_args_is_help=True)


class SessionRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    group: str
    status: str
    container_status: str
    container_id: str | None
    idle_seconds: float | None
    conversation: str | None
    thread_id: str | None
    mode: str
    created_at: str


def session_rows(store: Store, sessions: list[Session]) -> list[SessionRow]:
    folders = {group.id: group.folder for group in store.agent_groups()}
    rows = []
    for session in sessions:
        messaging_group = store.messaging_group(session.messaging_group_id) if session.messaging_group_id else None
        where = f"{messaging_group.channel_type}/{messaging_group.platform_id}" if messaging_group else None
        rows.append(
            SessionRow(
                id=session.id,
                group=folders.get(session.agent_group_id, f"(deleted {session.agent_group_id})"),
                status=session.status,
                container_status=session.container_status,
                container_id=session.container_id,
                idle_seconds=seconds_since(session.last_active or session.created_at),
                conversation=where,
                thread_id=session.thread_id,
                mode=session.mode,
                created_at=session.created_at,
            )
        )
    return rows


def sessions_table(rows: list[SessionRow]) -> Table:
    table = Table(header_style="bold")
    for column in ("session", "group", "conversation", "status", "container", "idle"):
        table.add_column(column, no_wrap=column != "conversation")
    for row in rows:
        status = row.status if row.status == "closed" else row.container_status
        table.add_row(
            row.id,
            Text(row.group),
            Text(row.conversation or "-"),
            status,
            (row.container_id or "-")[:12],
            human_duration(row.idle_seconds),
        )
    return table


def _find_session(log: EventLog, key: str) -> Session:
    """A session by id or by a unique prefix of it."""
    exact = log.store.session(key)
    if exact is not None:
        return exact
    matches = [s for s in log.store.sessions(status=None) if s.id.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"{len(matches)} sessions start with {key!r}", "give more of the session id")
    raise UserError(f"no session {key!r}", "`hermitcrab sessions list --all` shows every session")


def _report(outcome: SessionOutcome, as_json: bool) -> None:
    if as_json:
        print_json(outcome)
        return
    done = "stopped" if outcome.action == "stop" else "closed"
    containers = ", ".join(c[:12] for c in outcome.containers) or "no container"
    out.print(f"{done} session {outcome.session_id} ({containers})", highlight=False)
    if outcome.note:
        err.print(f"[dim]{outcome.note}[/dim]", highlight=False)


@app.command("list")
def list_sessions(
    all_sessions: bool = typer.Option(False, "--all", "-a", help="Include closed sessions."),
    group: str | None = typer.Option(None, "--group", "-g", help="Only sessions of this agent group."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """The sessions, with their container and how long since they were last active."""
    settings = settings_or_exit()
    with open_log(settings) as log:
        sessions = log.store.sessions(status=None if all_sessions else "active")
        if group is not None:
            group_id = group_or_error(log, group).id
            sessions = [s for s in sessions if s.agent_group_id == group_id]
        rows = session_rows(log.store, sessions)
    if as_json:
        print_json(rows)
    elif rows:
        out.print(sessions_table(rows))
    else:
        err.print("[dim]no sessions[/dim]")


@app.command("stop")
def stop(
    session_id: str = typer.Argument(..., help="The session (its id or a unique prefix)."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Stop a session's container now; the session stays and starts a new container on its next message."""
    settings = settings_or_exit()
    with open_log(settings) as log:
        session = _find_session(log, session_id)
        if session.status != "active":
            raise UserError(f"session {session.id} is closed", "closed sessions have no container to stop")
        outcome = stop_session(log, settings, session)
    _report(outcome, as_json)


@app.command("close")
def close(
    session_id: str = typer.Argument(..., help="The session (its id or a unique prefix)."),
    reason: str = typer.Option("closed with `hermitcrab sessions close`", "--reason", help="Recorded with the event."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Close a session for good: its container goes, and the next message starts a new session."""
    settings = settings_or_exit()
    with open_log(settings) as log:
        session = _find_session(log, session_id)
        if session.status != "active":
            raise UserError(f"session {session.id} is already closed")
        outcome = close_session(log, settings, session, reason)
    _report(outcome, as_json)
