"""Make sure a real Docker engine answers, starting (and if need be installing) one where we can.

Why: every agent runs in a container, so the host is useless without an engine. On a
Linux box where we are root with apt we fix the gap ourselves; anywhere else we say
exactly what is missing. There is never a fake engine to fall back to.

Run as `python -m tools.docker_engine ensure`.
"""

from __future__ import annotations

import enum
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
from rich.markup import escape

from config.settings import Settings, SettingsError, load_settings
from tools.apt import AptInstallError, apt_install
from tools.cli_common import UserError, err, out

START_TIMEOUT_S = 60.0
DOCKERD_PIDFILE = Path("/var/run/docker.pid")


class EngineUnavailable(UserError):
    """No Docker engine answers and we cannot start one here; `hint` says how the user can."""


class Step(enum.Enum):
    INSTALL = "install docker.io with apt-get"
    START = "start dockerd in the background"
    WAIT = "wait for the engine to answer"


@dataclass(frozen=True)
class HostFacts:
    """What decides how an unreachable engine can be brought up."""

    system: str
    is_root: bool
    has_apt: bool
    has_dockerd: bool
    dockerd_running: bool
    remote_docker_host: str | None


def probe_host() -> HostFacts:
    docker_host = os.environ.get("DOCKER_HOST", "")
    return HostFacts(
        system=platform.system(),
        is_root=os.name == "posix" and os.geteuid() == 0,
        has_apt=shutil.which("apt-get") is not None,
        has_dockerd=shutil.which("dockerd") is not None,
        dockerd_running=_pidfile_alive(DOCKERD_PIDFILE),
        remote_docker_host=docker_host if docker_host and not docker_host.startswith("unix://") else None,
    )


def plan_engine_start(facts: HostFacts, problem: str) -> tuple[Step, ...]:
    """Decide the steps that bring an unreachable engine up, or raise EngineUnavailable saying why we cannot."""
    if facts.remote_docker_host:
        raise EngineUnavailable(
            f"the Docker engine at DOCKER_HOST={facts.remote_docker_host} does not answer ({problem})",
            "start that engine, or unset DOCKER_HOST to use a local one",
        )
    if facts.system != "Linux":
        raise EngineUnavailable(
            f"no Docker engine answers ({problem})",
            "start Docker Desktop (or another Docker engine) and check that `docker info` works",
        )
    if facts.dockerd_running:
        return (Step.WAIT,)
    if not facts.is_root:
        if facts.has_dockerd:
            hint = "start it with `sudo systemctl start docker` and make sure your user may use /var/run/docker.sock"
        else:
            hint = "install Docker Engine (Debian/Ubuntu: `sudo apt-get install docker.io`) and start it"
        raise EngineUnavailable(f"no Docker engine answers ({problem})", hint)
    if facts.has_dockerd:
        return (Step.START, Step.WAIT)
    if facts.has_apt:
        return (Step.INSTALL, Step.START, Step.WAIT)
    raise EngineUnavailable(
        f"no Docker engine answers ({problem}) and neither dockerd nor apt-get is installed",
        "install Docker Engine with your system's package manager, start it, then run this again",
    )


def ping_engine() -> str | None:
    """None when the engine answers, else a one-line description of the failure."""
    try:
        client = docker.from_env(timeout=5)
    except docker.errors.DockerException as exc:
        return _one_line(exc)
    try:
        client.ping()
    except (docker.errors.DockerException, OSError) as exc:
        return _one_line(exc)
    finally:
        client.close()
    return None


def ensure_engine(
    settings: Settings,
    *,
    ping: Callable[[], str | None] = ping_engine,
    facts: Callable[[], HostFacts] = probe_host,
    report: Callable[[str], None] = lambda _message: None,
    timeout_s: float = START_TIMEOUT_S,
) -> None:
    """Return once an engine answers; install/start one when allowed, else raise EngineUnavailable."""
    problem = ping()
    if problem is None:
        return
    steps = plan_engine_start(facts(), problem)
    log_path = settings.data_dir / "dockerd.log"
    dockerd: subprocess.Popen[bytes] | None = None
    for step in steps:
        report(step.value)
        if step is Step.INSTALL:
            try:
                apt_install("docker.io")
            except AptInstallError as exc:
                raise EngineUnavailable(str(exc), "install docker.io by hand, then run this again") from None
        elif step is Step.START:
            dockerd = _start_dockerd(log_path)
        else:
            _wait_until_answering(ping, dockerd, log_path, timeout_s)


def _start_dockerd(log_path: Path) -> subprocess.Popen[bytes]:
    """Launch dockerd in its own session so it outlives us and ignores our terminal's signals."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            ["dockerd"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_until_answering(
    ping: Callable[[], str | None], dockerd: subprocess.Popen[bytes] | None, log_path: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    problem = ping()
    while problem is not None:
        if dockerd is not None and dockerd.poll() is not None:
            raise EngineUnavailable(
                f"dockerd exited with code {dockerd.returncode}:\n{_log_tail(log_path)}",
                f"read {log_path} for the cause",
            )
        if time.monotonic() > deadline:
            raise EngineUnavailable(
                f"dockerd did not answer within {timeout_s:.0f} s ({problem})",
                f"read {log_path}, or start Docker yourself and run this again",
            )
        time.sleep(0.5)
        problem = ping()


def _pidfile_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}").exists()


def _log_tail(path: Path, lines: int = 10) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str]) -> int:
    """`ensure`: print one line when the engine is ready; otherwise the problem and a hint, exit 2."""
    if argv != ["ensure"]:
        err.print("usage: python -m tools.docker_engine ensure")
        return 2
    try:
        settings = load_settings()
        ensure_engine(settings, report=lambda message: out.print(f"docker engine: {message} ..."))
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        err.print("[dim]hint: fix the variable in your environment or in .env[/dim]", soft_wrap=True)
        return 2
    except EngineUnavailable as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        err.print(f"[dim]hint: {escape(exc.hint)}[/dim]", soft_wrap=True)
        return 2
    client = docker.from_env()
    try:
        version = client.version().get("Version", "?")
    finally:
        client.close()
    out.print(f"docker engine: ready (server {version})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
