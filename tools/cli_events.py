"""`hermitcrab events` (the timeline of the event log) and `hermitcrab audit verify` (tables vs. log).

Both only read the central DB, so they are safe beside a running host.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from events.clock import PLAIN_LENGTH
from events.codec import TAGS, EventDecodeError, RecordedEvent
from events.query import EventFilter
from events.reader import EventReader, OutdatedLogError
from events.replay import verify
from tools.cli_common import UserError, err, out, settings_or_exit

audit_app = typer.Typer(name="audit", help="Check the central store against its event log.", no_args_is_help=True)

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DETAIL_WIDTH = 60


def _central_db() -> Path:
    path = settings_or_exit().central_db
    if not path.is_file():
        raise UserError(
            f"no event log at {path}",
            "start the host once (`hermitcrab up`), or point HERMITCRAB_DATA_DIR at your data directory",
        )
    return path


def parse_since(text: str, now: datetime | None = None) -> str:
    """A `--since` value as a UTC time in the log's form.

    Accepts a duration back from now (`30m`, `2h`, `7d`), a date, or a date and
    time; a time without a zone is taken as UTC, like every time the log shows.
    """
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        moment = (now or datetime.now(UTC)) - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise UserError(
                f"--since {text!r} is neither a time nor a duration",
                "use e.g. 30m, 2h, 7d, 2026-05-01 or '2026-05-01 14:30' (UTC)",
            ) from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def expand_types(patterns: list[str]) -> list[str]:
    """`--type` values as stored tags; `container.*` names a whole family. Unknown names are refused."""
    known = sorted(TAGS.values())
    tags: list[str] = []
    for pattern in patterns:
        if pattern.endswith(".*"):
            matches = [tag for tag in known if tag.startswith(pattern[:-1])]
        else:
            matches = [pattern] if pattern in known else []
        if not matches:
            close = difflib.get_close_matches(pattern, known, n=3)
            families = sorted({tag.split(".")[0] + ".*" for tag in known})
            hint = f"did you mean {' or '.join(close)}?" if close else f"families: {', '.join(families)}"
            raise UserError(f"unknown event type {pattern!r}", hint)
        tags += [tag for tag in matches if tag not in tags]
    return tags


def _detail(event: Any) -> str:
    """The event's interesting fields as `name=value`, leaving out defaults nobody needs to see."""
    fields = msgspec.to_builtins(event)
    parts = []
    for name, value in fields.items():
        if name in ("type", "schema") or value in (None, "", [], {}, False):
            continue
        shown = value if isinstance(value, str | int | float) else msgspec.json.encode(value).decode()
        if isinstance(shown, str) and len(shown) > _DETAIL_WIDTH:
            shown = shown[: _DETAIL_WIDTH - 1] + "…"
        parts.append(f"{name}={shown}")
    return " ".join(parts)


def _print_table(events: list[RecordedEvent]) -> None:
    if not events:
        err.print("[dim]no events match[/dim]")
        return
    table = Table(show_lines=False, header_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("recorded (UTC)", no_wrap=True)
    table.add_column("stream", no_wrap=True)
    table.add_column("type", style="cyan", no_wrap=True)
    table.add_column("details", overflow="fold")
    for recorded in events:
        table.add_row(
            str(recorded.position),
            recorded.recorded_at[:PLAIN_LENGTH],
            Text(recorded.stream),
            recorded.type,
            Text(_detail(recorded.event)),
        )
    out.print(table)


def events_command(
    session: Annotated[str | None, typer.Option("--session", help="Only events of this session.")] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="Only events of this agent group and its sessions.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From this UTC time or duration back (30m, 2h, 7d, 2026-05-01).")
    ] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--type", help="Only this type, e.g. container.spawned or container.* (repeat).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many events.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")] = False,
) -> None:
    """Show the event log as a timeline: what happened, to which stream, when."""
    since_text = parse_since(since) if since is not None else None
    types = expand_types(event_type) if event_type else None
    path = _central_db()
    encoder = msgspec.json.Encoder()
    try:
        with EventReader(path) as reader:
            matching = reader.read(EventFilter(session=session, group=group, since=since_text, types=types), limit)
            if as_json:
                for recorded in matching:
                    sys.stdout.write(encoder.encode(msgspec.structs.asdict(recorded)).decode() + "\n")
                sys.stdout.flush()
            else:
                _print_table(list(matching))
    except EventDecodeError as exc:
        raise UserError(str(exc), "`hermitcrab audit verify` checks the whole log") from None
    except OutdatedLogError as exc:
        raise UserError(str(exc), "run `hermitcrab up` once with this version") from None
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot read the event log at {path}: {exc}") from None


@audit_app.command("verify")
def verify_command() -> None:
    """Re-derive every projection from the log and report each difference with the live tables."""
    path = _central_db()
    try:
        differences = verify(path)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot read the event log at {path}: {exc}") from None
    for difference in differences:
        out.print(Text(difference))
    if differences:
        err.print(f"[red]{len(differences)} difference(s) between the tables and the log[/red]")
        raise typer.Exit(1)
    out.print("[green]ok:[/green] every projection matches the log")
