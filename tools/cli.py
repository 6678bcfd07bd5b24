"""The `hermitcrab` command: one Typer app; each command group lives in its own module."""

from __future__ import annotations

import sys

import typer

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
# --- command registry (end) ---


def main() -> None:
    """Console-script entry point: user errors become one line and exit code 2."""
    try:
        app()
    except UserError as exc:
        err.print(f"[red]error:[/red] {exc}")
        if exc.hint:
            err.print(f"[dim]hint: {exc.hint}[/dim]")
        sys.exit(2)
