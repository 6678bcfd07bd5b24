"""`hermitcrab doctor`: check everything the host needs and say what to fix; exit 1 when something is wrong."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from typing import Literal

import docker
import docker.errors
import msgspec
import typer
from rich.table import Table
from rich.text import Text

from actors.mount_security import AllowlistError, load_allowlist
from config.settings import CREDENTIAL_VARIABLES, Settings, SettingsError, load_settings
from tools.cli_common import out
from tools.cli_store import print_json
from tools.docker_engine import EngineUnavailable, plan_engine_start, probe_host
from tools.host_process import running_pid
from tools.install_state import connect_engine, default_client, image_state

Outcome = Literal["ok", "warn", "fail", "skip"]
MIN_PYTHON = (3, 11)
_MARKS = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]", "skip": "[dim]-[/dim]"}


class Check(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    outcome: Outcome
    detail: str
    fix: str = ""


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    shown = ".".join(str(part) for part in version)
    if version[:2] >= MIN_PYTHON:
        return Check(name="python", outcome="ok", detail=f"Python {shown}")
    wanted = ".".join(map(str, MIN_PYTHON))
    return Check(
        name="python", outcome="fail", detail=f"Python {shown}", fix=f"install Python {wanted} or newer and rerun"
    )


def check_engine(client_factory: Callable[[], docker.DockerClient]) -> tuple[Check, docker.DockerClient | None]:
    """The engine answers; returns the client for the checks that need it."""
    engine, client = connect_engine(client_factory)
    if client is not None:
        return Check(name="docker engine", outcome="ok", detail=f"{engine.detail} answers"), client
    try:
        plan_engine_start(probe_host(), engine.detail)
        fix = "start it with `python -m tools.docker_engine ensure`"
    except EngineUnavailable as unavailable:
        fix = unavailable.hint
    return Check(name="docker engine", outcome="fail", detail=f"does not answer: {engine.detail}", fix=fix), None


def check_image(settings: Settings, client: docker.DockerClient | None) -> list[Check]:
    if client is None:
        skipped = "needs the Docker engine"
        return [
            Check(name="agent image", outcome="skip", detail=skipped),
            Check(name="image matches source", outcome="skip", detail=skipped),
        ]
    try:
        state = image_state(client, settings)
    except docker.errors.DockerException as exc:
        return [Check(name="agent image", outcome="fail", detail=f"cannot inspect {settings.image}: {exc}")]
    if not state.present:
        return [
            Check(
                name="agent image",
                outcome="fail",
                detail=f"{settings.image} is missing",
                fix="build it: `hermitcrab image build`",
            ),
            Check(name="image matches source", outcome="skip", detail="no image"),
        ]
    short = (state.image_id or "").removeprefix("sha256:")[:12]
    present = Check(name="agent image", outcome="ok", detail=f"{settings.image} ({short})")
    if state.up_to_date:
        return [present, Check(name="image matches source", outcome="ok", detail=state.detail)]
    return [
        present,
        Check(
            name="image matches source",
            outcome="fail",
            detail=state.detail,
            fix="rebuild it: `hermitcrab image build --if-changed`",
        ),
    ]


def check_credentials(settings: Settings) -> Check:
    values = (settings.anthropic_api_key, settings.claude_oauth_token)
    configured = [name for name, value in zip(CREDENTIAL_VARIABLES, values, strict=True) if value]
    env_file = settings.project_root / ".env"
    if configured:
        where = "environment" if any(name in os.environ for name in configured) else str(env_file)
        return Check(name="credentials", outcome="ok", detail=f"{' and '.join(configured)} set ({where}); not shown")
    fix = f"put ANTHROPIC_API_KEY=... or CLAUDE_CODE_OAUTH_TOKEN=... in {env_file}"
    if settings.provider == "claude":
        return Check(name="credentials", outcome="fail", detail="HERMITCRAB_PROVIDER=claude but none set", fix=fix)
    detail = "none set: the echo agent answers instead of Claude"
    return Check(name="credentials", outcome="warn", detail=detail, fix=fix)


def check_data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check(
            name="data directory",
            outcome="fail",
            detail=f"{path} is not writable: {exc.strerror or exc}",
            fix="fix its owner/permissions, or point HERMITCRAB_DATA_DIR at a writable directory",
        )
    return Check(name="data directory", outcome="ok", detail=f"{path} is writable")


def check_allowlist(settings: Settings) -> Check:
    path = settings.mount_allowlist
    try:
        allowlist = load_allowlist(path)
    except AllowlistError as exc:
        return Check(
            name="mount allowlist",
            outcome="fail",
            detail=str(exc),
            fix=f"fix the JSON or the permissions of {path}, or remove it",
        )
    if allowlist is None:
        return Check(name="mount allowlist", outcome="ok", detail=f"none at {path}: groups mount no extra folders")
    return Check(name="mount allowlist", outcome="ok", detail=f"{path}: {len(allowlist.allowed_roots)} allowed root(s)")


def check_host(settings: Settings) -> Check:
    pid = running_pid(settings)
    detail = f"running (pid {pid})" if pid is not None else "not running (start it with `hermitcrab up`)"
    return Check(name="host", outcome="ok", detail=detail)


def run_checks(settings: Settings, client_factory: Callable[[], docker.DockerClient] = default_client) -> list[Check]:
    engine, client = check_engine(client_factory)
    try:
        images = check_image(settings, client)
    finally:
        if client is not None:
            client.close()
    return [
        check_python(),
        engine,
        *images,
        check_credentials(settings),
        check_data_dir(settings),
        check_allowlist(settings),
        check_host(settings),
    ]


def _print(checks: list[Check]) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(width=1)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for check in checks:
        text = Text(check.detail)
        if check.fix and check.outcome in ("fail", "warn"):
            text.append(f"\n→ {check.fix}", style="cyan")
        table.add_row(_MARKS[check.outcome], check.name, text)
    out.print(table)


def doctor(as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON.")) -> None:
    """Check Python, Docker, the agent image, credentials, the data directory and the mount allowlist."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        checks = [
            check_python(),
            Check(name="settings", outcome="fail", detail=str(exc), fix="fix the variable in the environment or .env"),
        ]
    else:
        checks = run_checks(settings)
    failed = [check for check in checks if check.outcome == "fail"]
    if as_json:
        print_json({"ok": not failed, "checks": checks})
    else:
        _print(checks)
        if failed:
            out.print(f"[red]{len(failed)} problem(s) to fix[/red]")
        else:
            out.print("[green]everything hermitcrab needs is in place[/green]")
    if failed:
        raise typer.Exit(1)
