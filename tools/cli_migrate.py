"""`hermitcrab migrate ...`: one-shot upgrades of an existing install's data."""

from __future__ import annotations

import msgspec
import typer
from rich.markup import escape

from tools.cli_common import UserError, out, settings_or_exit
from tools.migrate import GlobalMemoryMissing, GroupMigration, migrate_group_claude_md

app = typer.Typer(name="migrate", help="Upgrade data written by older versions.", no_args_is_help=True)

_LINES = {
    "updated": ("[green]updated[/green]", "prepended the global import"),
    "already-wired": ("[dim]wired  [/dim]", "already imports global memory"),
    "no-claude-md": ("[yellow]skipped[/yellow]", "has no CLAUDE.md"),
}


def _line(group: GroupMigration) -> str:
    tag, text = _LINES[group.outcome]
    return f"{tag} {escape(group.folder)}: {text}"


@app.command("group-claude-md")
def group_claude_md(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of lines."),
) -> None:
    """Make every group's CLAUDE.md import the global memory (@/workspace/global/CLAUDE.md)."""
    settings = settings_or_exit()
    try:
        report = migrate_group_claude_md(settings.groups_dir)
    except GlobalMemoryMissing as exc:
        raise UserError(
            f"{exc}; refusing to add an import that points at nothing",
            f"copy the template {settings.project_root / 'groups/global/CLAUDE.md'} to {exc.path}, then run this again",
        ) from None
    if as_json:
        payload = {"groups_dir": report.groups_dir, "groups": report.groups, "summary": report.summary}
        typer.echo(msgspec.json.encode(payload).decode())
        return
    for group in report.groups:
        out.print(_line(group), highlight=False, soft_wrap=True)
    summary = report.summary
    out.print(
        f"{len(report.groups)} groups: {summary['updated']} updated, {summary['already_wired']} already wired, "
        f"{summary['no_claude_md']} without CLAUDE.md",
        highlight=False,
        soft_wrap=True,
    )
