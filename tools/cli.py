"""The `hermitcrab` command: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from tools.cli_common import UserError, err

app = typer.Typer(
    name="hermitcrab",
    help="A self-hosted personal AI assistant host; each agent lives in its own container.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Command groups register here: one import and one add line per module.
# --- command registry (begin) ---
from tools import cli_host  # noqa: E402

app.command("up")(cli_host.up)
app.command("down")(cli_host.down)
from tools import cli_status  # noqa: E402

app.command("status")(cli_status.status)
from tools import cli_chat  # noqa: E402

app.command("chat")(cli_chat.chat)
from tools import cli_groups  # noqa: E402

app.add_typer(cli_groups.app, name="groups")
from tools import cli_wire  # noqa: E402

app.command("wire")(cli_wire.wire_command)
from tools import cli_sessions  # noqa: E402

app.add_typer(cli_sessions.app, name="sessions")
from tools import cli_doctor  # noqa: E402

app.command("doctor")(cli_doctor.doctor)
from tools import cli_migrate  # noqa: E402

app.add_typer(cli_migrate.app, name="migrate")
from tools import cli_image  # noqa: E402

app.add_typer(cli_image.app, name="image")
from tools import cli_events  # noqa: E402

app.command("events")(cli_events.events_command)
app.add_typer(cli_events.audit_app, name="audit")
# --- command registry (end) ---


def main() -> None:
    """Console-script entry point: user errors become one line and exit code 2."""
    try:
        app()
    except UserError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        if exc.hint:
            err.print(f"[dim]hint: {escape(exc.hint)}[/dim]", soft_wrap=True, highlight=False)
        sys.exit(2)
