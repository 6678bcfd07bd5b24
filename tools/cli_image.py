"""`hermitcrab image build`: build the agent image with a live progress display."""

from __future__ import annotations

import time
from types import TracebackType

import docker
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from tools.cli_common import UserError, out, settings_or_exit
from tools.docker_engine import ensure_engine
from tools.image import BuildMode, BuildResult, build_agent_image

app = typer.Typer(name="image", help="Build the agent image.", no_args_is_help=True)


class RichBuildReporter:
    """Shows the current stage with a spinner and the Docker build as a bar of steps."""

    def __init__(self, verbose: bool) -> None:
        self._verbose = verbose
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=out,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichBuildReporter:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._finish_task()
        self._progress.stop()

    def phase(self, text: str) -> None:
        self._finish_task()
        self._task = self._progress.add_task(escape(text), total=None)

    def step(self, number: int, total: int, text: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, total=total, completed=number - 1)
        self._progress.console.print(f"[dim]step {number}/{total}: {escape(text)}[/dim]", soft_wrap=True)

    def line(self, text: str) -> None:
        if self._verbose:
            self._progress.console.print(escape(text), highlight=False, soft_wrap=True)

    def _finish_task(self) -> None:
        if self._task is not None:
            task = self._progress.tasks[self._task]
            total = task.total if task.total is not None else 1
            self._progress.update(self._task, total=total, completed=total)
            self._task = None


def _mode(if_missing: bool, if_changed: bool) -> BuildMode:
    if if_missing and if_changed:
        raise UserError("--if-missing and --if-changed exclude each other", "pass at most one of them")
    if if_missing:
        return BuildMode.IF_MISSING
    return BuildMode.IF_CHANGED if if_changed else BuildMode.ALWAYS


def _summary(result: BuildResult, seconds: float) -> str:
    short_id = result.image_id.removeprefix("sha256:")[:12]
    if not result.built:
        return f"{result.image} ({short_id}): {result.reason}, nothing to build"
    return (
        f"built {result.image} ({short_id}) on {result.base} in {seconds:.1f} s "
        f"({result.reason}; {result.cached_steps}/{result.total_steps} steps from cache)"
    )


@app.command()
def build(
    if_missing: bool = typer.Option(False, "--if-missing", help="Build only when the image does not exist."),
    if_changed: bool = typer.Option(
        False, "--if-changed", help="Build when the image is missing or its build context changed."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show the output of pip, mmdebstrap and each build step."
    ),
) -> None:
    """Build the agent image from container/ with no registry and no network inside the build."""
    mode = _mode(if_missing, if_changed)
    settings = settings_or_exit()
    ensure_engine(settings)  # its errors and the build's are UserErrors: one line and a hint
    client = docker.from_env()
    started = time.monotonic()
    try:
        with RichBuildReporter(verbose) as reporter:
            result = build_agent_image(settings, client, mode, reporter)
    finally:
        client.close()
    out.print(_summary(result, time.monotonic() - started), highlight=False, soft_wrap=True)
