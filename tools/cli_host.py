"""`hermitcrab up` and `hermitcrab down`: run the host in the foreground or in the background, and stop it.

`up` also does first-run setup (the admin group `main` wired to the terminal
chat) and says how to chat. In a terminal it keeps one live status line under
the log; `--detach` starts the same command as a background process with a
pid file and a log file under the data directory and returns once it is ready.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from actors.admin import AdminError
from actors.group_folder import InvalidFolderError
from actors.host import DockerUnavailableError, Host
from actors.host_lock import HostAlreadyRunningError
from channels.terminal_protocol import socket_path
from channels.unix_socket import answers
from config.logs import configure_logging
from config.settings import Settings
from events.store import Store
from tools.cli_common import UserError, out, settings_or_exit
from tools.first_run import ensure_main_group
from tools.host_process import (
    DetachError,
    ReadyNotifier,
    ReadyReport,
    pid_file,
    remove_pid_file,
    running_pid,
    start_detached,
    stop_host,
    write_pid_file,
)

STATUS_REFRESH_S = 1.0


def chat_command() -> str:
    """How the user starts a chat from where they are: the venv's script, relative when inside the cwd."""
    script = Path(sys.executable).parent / "hermitcrab"
    if not script.exists():
        return "hermitcrab chat"
    with contextlib.suppress(ValueError):
        return f"{script.relative_to(Path.cwd())} chat"
    return f"{script} chat"


def print_banner(console: Console, report: ReadyReport, settings: Settings) -> None:
    where = f"pid {report.pid}, data {report.data_dir}"
    if report.log_file:
        where += f", log {report.log_file}"
    console.print(f"[green]hermitcrab is running[/green] ({where}, agent: {report.provider})", soft_wrap=True)
    if report.created_group:
        console.print("created the admin group [bold]main[/bold] and wired it to the terminal chat")
    elif report.created_wiring:
        console.print("wired the admin group [bold]main[/bold] to the terminal chat")
    if report.terminal_ready:
        console.print(f"chat with it in another terminal:  [bold]{chat_command()}[/bold]", soft_wrap=True)
    else:
        console.print(
            "[red]the terminal chat channel is not listening[/red] (see the log for why; "
            "HERMITCRAB_CHANNELS must include `terminal`)",
            soft_wrap=True,
        )
    if report.provider == "echo":
        console.print(Text(_echo_banner(settings, report.has_credentials), style="yellow"), soft_wrap=True)


def _echo_banner(settings: Settings, has_credentials: bool) -> str:
    if has_credentials:
        return "HERMITCRAB_PROVIDER=echo: the echo agent answers (it repeats what you write), not Claude."
    return (
        "No model credential is set, so the echo agent answers (it repeats what you write). To talk to Claude, "
        f"put ANTHROPIC_API_KEY=... or CLAUDE_CODE_OAUTH_TOKEN=... in {settings.project_root / '.env'} "
        "(or the environment), then restart: `hermitcrab down && hermitcrab up`."
    )


def status_line(store: Store, pid: int) -> Text:
    sessions = store.sessions(status="active")
    containers = sum(1 for s in sessions if s.container_status in ("starting", "running", "idle"))
    busy = sum(1 for s in sessions if s.container_status == "running")
    return Text.assemble(
        ("● ", "green"),
        f"hermitcrab running (pid {pid}) · {len(sessions)} active session(s) · {containers} container(s), "
        f"{busy} busy · Ctrl-C stops",
    )


@contextlib.contextmanager
def _live_status(enabled: bool) -> Iterator[Live | None]:
    """A live bottom line in a terminal; log lines printed meanwhile scroll above it."""
    if not enabled:
        yield None
        return
    with Live(Text("hermitcrab starting …"), console=out, refresh_per_second=4, transient=True) as live:
        yield live


def _start(host: Host) -> None:
    try:
        host.start()
    except HostAlreadyRunningError as exc:
        raise UserError(str(exc), "`hermitcrab status` shows it; `hermitcrab down` stops it") from None
    except DockerUnavailableError as exc:
        raise UserError(str(exc), "run `python -m tools.docker_engine ensure`, or `hermitcrab doctor`") from None


def _run_foreground(settings: Settings, stop_containers: bool, notifier: ReadyNotifier | None) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with _live_status(notifier is None and out.is_terminal) as live:
        configure_logging(settings)  # inside the live display, so log lines print above its status line
        host = Host(settings)
        _start(host)
        try:
            assert host.log is not None
            try:
                first = ensure_main_group(host.log, settings, getpass.getuser())
            except (AdminError, InvalidFolderError) as exc:
                raise UserError(f"first-run setup failed: {exc}", "`hermitcrab doctor` checks the install") from None
            write_pid_file(settings)
            report = ReadyReport(
                pid=os.getpid(),
                data_dir=str(settings.data_dir),
                provider=settings.effective_provider,
                has_credentials=settings.has_credentials,
                created_group=first.created_group,
                created_wiring=first.created_wiring,
                terminal_ready=answers(socket_path(settings.data_dir)),
            )
            print_banner(live.console if live is not None else out, report, settings)
            if notifier is not None:
                notifier.ready(report)
            while True:
                if live is not None:
                    live.update(status_line(host.log.store, report.pid))
                if stop.wait(STATUS_REFRESH_S):
                    break
            out.print("hermitcrab stopping …")
        finally:
            host.stop(stop_containers=stop_containers)
            remove_pid_file(settings)


def up(
    detach: bool = typer.Option(
        False, "--detach", "-d", help="Run in the background (pid and log file in the data directory)."
    ),
    stop_containers: bool = typer.Option(
        False, "--stop-containers", help="Stop agent containers on shutdown instead of leaving them to be adopted."
    ),
) -> None:
    """Start the hermitcrab host (first run: create the admin group `main`, wired to the terminal chat)."""
    settings = settings_or_exit()
    if detach:
        pid = running_pid(settings)
        if pid is not None:
            raise UserError(f"hermitcrab is already running (pid {pid})", "`hermitcrab down` stops it")
        try:
            report = start_detached(settings, ["--stop-containers"] if stop_containers else [])
        except DetachError as exc:
            raise UserError(str(exc), exc.hint) from None
        print_banner(out, report, settings)
        out.print("stop it with [bold]hermitcrab down[/bold]")
        return
    notifier = ReadyNotifier.from_environment()
    try:
        _run_foreground(settings, stop_containers, notifier)
    except UserError as exc:
        if notifier is not None:
            notifier.failed(str(exc), exc.hint)
        raise


def down(
    timeout: float = typer.Option(60.0, "--timeout", min=1.0, help="Seconds to wait for the host to stop."),
) -> None:
    """Stop the running host (SIGTERM) and wait until it has shut down."""
    settings = settings_or_exit()
    try:
        pid = stop_host(settings, timeout)
    except PermissionError:
        raise UserError(
            "no permission to signal the running host", "run `hermitcrab down` as the user that started it"
        ) from None
    except TimeoutError as exc:
        raise UserError(str(exc), "look at its log; as a last resort, kill it with SIGKILL") from None
    if pid is None:
        pid_file(settings).unlink(missing_ok=True)  # a leftover of a host that crashed
        out.print("hermitcrab is not running")
        return
    out.print(f"hermitcrab stopped (pid {pid})")
