"""`hermitcrab up`: run the host in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from actors.host import DockerUnavailableError, Host
from actors.host_lock import HostAlreadyRunningError
from config.logs import configure_logging
from tools.cli_common import UserError, out, settings_or_exit


def up(
    stop_containers: bool = typer.Option(
        False, "--stop-containers", help="Stop agent containers on shutdown instead of leaving them to be adopted."
    ),
) -> None:
    """Start the hermitcrab host and keep it running until interrupted."""
    settings = settings_or_exit()
    configure_logging(settings)
    host = Host(settings)
    try:
        host.start()
    except HostAlreadyRunningError as exc:
        raise UserError(str(exc), "use `hermitcrab status`, or stop the other host first") from None
    except DockerUnavailableError as exc:
        raise UserError(str(exc), "run `python -m tools.docker_engine ensure`") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    out.print(f"[green]hermitcrab ready[/green] (data: {settings.data_dir}, provider: {settings.effective_provider})")
    stop.wait()
    out.print("hermitcrab stopping ...")
    host.stop(stop_containers=stop_containers)
