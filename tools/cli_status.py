"""`hermitcrab status`: is the host running, does Docker answer, is the image there, which sessions have containers."""

from __future__ import annotations

import sqlite3

import docker.errors
import msgspec
import typer
from rich.table import Table
from rich.text import Text

from events.model import UsageTotals
from events.store import Store
from tools.cli_common import err, out, settings_or_exit
from tools.cli_sessions import SessionRow, session_rows, sessions_table
from tools.cli_store import print_json, read_store
from tools.host_process import log_file, running_pid
from tools.install_state import EngineState, ImageState, connect_engine, image_state

_WITH_CONTAINER = ("starting", "running", "idle", "stopping")


class GroupUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Model tokens one agent group used, as the credential proxy counted them."""

    group: str
    totals: UsageTotals


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    host_running: bool
    pid: int | None
    data_dir: str
    log_file: str
    provider: str
    docker: EngineState
    image: ImageState | None
    sessions: list[SessionRow]
    usage: list[GroupUsage] = []


def _usage(store: Store) -> list[GroupUsage]:
    """Usage per group; none before the first counted response (or on a log from before usage was counted)."""
    try:
        totals = store.usage_by_group()
    except sqlite3.OperationalError:
        return []
    folders = {group.id: group.folder for group in store.agent_groups()}
    return [GroupUsage(group=folders.get(group_id, group_id), totals=used) for group_id, used in totals.items()]


def status(as_json: bool = typer.Option(False, "--json", help="Print the status as JSON.")) -> None:
    """Host, Docker engine, agent image, and the sessions that have a container (with idle time)."""
    settings = settings_or_exit()
    engine, client = connect_engine()
    image: ImageState | None = None
    if client is not None:
        try:
            image = image_state(client, settings)
        except docker.errors.DockerException as exc:
            engine = EngineState(ok=False, detail=f"cannot inspect images: {exc}")
        finally:
            client.close()
    with read_store(settings) as store:
        active = [] if store is None else store.sessions(status="active")
        with_container = [s for s in active if s.container_status in _WITH_CONTAINER]
        rows = [] if store is None else session_rows(store, with_container)
        usage = [] if store is None else _usage(store)
    pid = running_pid(settings)
    report = StatusReport(
        host_running=pid is not None,
        pid=pid,
        data_dir=str(settings.data_dir),
        log_file=str(log_file(settings)),
        provider=settings.effective_provider,
        docker=engine,
        image=image,
        sessions=rows,
        usage=usage,
    )
    if as_json:
        print_json(report)
        return
    _print(report)


def _print(report: StatusReport) -> None:
    if report.host_running:
        out.print(f"host:    [green]running[/green] (pid {report.pid}, agent: {report.provider})", highlight=False)
    else:
        out.print("host:    [yellow]not running[/yellow] (start it with `hermitcrab up`)", highlight=False)
    out.print(f"data:    {report.data_dir}", highlight=False, soft_wrap=True)
    engine = "[green]ok[/green]" if report.docker.ok else "[red]not answering[/red]"
    out.print(f"docker:  {engine} ({report.docker.detail})", highlight=False, soft_wrap=True)
    image = report.image
    if image is None:
        out.print("image:   [dim]unknown (needs Docker)[/dim]", highlight=False)
    elif not image.present:
        out.print(f"image:   [red]missing[/red] {image.name} (build it: `hermitcrab image build`)", highlight=False)
    else:
        fresh = {True: "[green]up to date[/green]", False: "[yellow]stale[/yellow]", None: "[dim]?[/dim]"}
        short = (image.image_id or "").removeprefix("sha256:")[:12]
        out.print(f"image:   {image.name} ({short}) {fresh[image.up_to_date]}: {image.detail}", highlight=False)
    if report.sessions:
        out.print(sessions_table(report.sessions))
    else:
        err.print("[dim]no session has a container[/dim]")
    if report.usage:
        out.print(_usage_table(report.usage))


def _usage_table(usage: list[GroupUsage]) -> Table:
    table = Table(title="model usage", title_justify="left", header_style="bold")
    for column in ("group", "requests", "input", "output", "cache read", "cache write"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for row in usage:
        used = row.totals
        table.add_row(
            Text(row.group),
            f"{used.requests:,}",
            f"{used.input_tokens:,}",
            f"{used.output_tokens:,}",
            f"{used.cache_read_tokens:,}",
            f"{used.cache_creation_tokens:,}",
        )
    return table
