"""Running the host as a background process: start it detached, learn when it is ready, find and stop it.

Why a pipe for readiness: the detached child inherits the write end of a pipe
and writes one JSON line once the host is up (or one naming the error that
stopped it), so `hermitcrab up --detach` returns exactly when the host can
take chats, never on a guess. A child that dies first closes the pipe, and
the parent shows the end of its log instead.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from actors.host_lock import lock_owner
from config.settings import Settings

READY_FD_ENV = "HERMITCRAB_READY_FD"
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 15


class ReadyReport(msgspec.Struct, frozen=True, kw_only=True, tag="ready"):
    """What a started host tells whoever started it."""

    pid: int
    data_dir: str
    provider: str
    has_credentials: bool
    created_group: bool
    created_wiring: bool
    terminal_ready: bool = True
    log_file: str | None = None


class StartFailure(msgspec.Struct, frozen=True, kw_only=True, tag="failed"):
    error: str
    hint: str = ""


class DetachError(Exception):
    """The background host did not become ready; the message says what it reported or what its log ends with."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


_report_decoder: msgspec.json.Decoder[ReadyReport | StartFailure] = msgspec.json.Decoder(ReadyReport | StartFailure)


def pid_file(settings: Settings) -> Path:
    return settings.data_dir / "host.pid"


def log_file(settings: Settings) -> Path:
    return settings.data_dir / "logs" / "host.log"


def write_pid_file(settings: Settings) -> None:
    path = pid_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")


def remove_pid_file(settings: Settings) -> None:
    """Remove the pid file if it is ours (a newer host may have written its own)."""
    path = pid_file(settings)
    with contextlib.suppress(OSError, ValueError):
        if int(path.read_text().strip()) == os.getpid():
            path.unlink()


def running_pid(settings: Settings) -> int | None:
    """The pid of the host holding this data directory's lock, or None when no host runs."""
    return lock_owner(settings.data_dir)


class ReadyNotifier:
    """The detached child's end of the readiness pipe."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def from_environment(cls) -> ReadyNotifier | None:
        raw = os.environ.pop(READY_FD_ENV, None)
        return cls(int(raw)) if raw and raw.isdigit() else None

    def ready(self, report: ReadyReport) -> None:
        self._send(msgspec.json.encode(report))

    def failed(self, error: str, hint: str) -> None:
        self._send(msgspec.json.encode(StartFailure(error=error, hint=hint)))

    def _send(self, payload: bytes) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):  # the parent gave up waiting: nothing to tell
            os.write(self._fd, payload + b"\n")
        os.close(self._fd)
        self._fd = None


def start_detached(settings: Settings, up_arguments: list[str], timeout_s: float = READY_TIMEOUT_S) -> ReadyReport:
    """Start `hermitcrab up` in its own session, output to the log file; return once it reports ready."""
    log_path = log_file(settings)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    command = [sys.executable, "-c", "from tools.cli import main; main()", "up", *up_arguments]
    try:
        with log_path.open("ab") as log_handle:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                pass_fds=(write_end,),
                start_new_session=True,
                env={**os.environ, READY_FD_ENV: str(write_end)},
                cwd=settings.project_root,
            )
    finally:
        os.close(write_end)
    try:
        line = _read_line(read_end, timeout_s)
    finally:
        os.close(read_end)
    if not line:
        if child.poll() is None:
            child.terminate()
            raise DetachError(
                f"the background host did not report ready within {timeout_s:.0f} s and was stopped",
                f"its log is {log_path}",
            )
        raise DetachError(
            f"the background host exited (code {child.returncode}) before it was ready:\n{_tail(log_path)}",
            f"the full log is {log_path}",
        )
    try:
        report = _report_decoder.decode(line)
    except msgspec.DecodeError:
        raise DetachError(f"the background host sent an unreadable status: {line!r}", f"see {log_path}") from None
    if isinstance(report, StartFailure):
        child.wait(timeout=30)
        raise DetachError(report.error, report.hint)
    finished: ReadyReport = msgspec.structs.replace(report, log_file=str(log_path))
    return finished


def _read_line(fd: int, timeout_s: float) -> bytes:
    """One line from the pipe, or what was read when it closed or the time ran out."""
    data = b""
    deadline = time.monotonic() + timeout_s
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        readable, _, _ = select.select([fd], [], [], min(remaining, 1.0))
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0]


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


def stop_host(settings: Settings, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
    """SIGTERM the running host and wait until it released the data directory; its pid, or None if none ran.

    Raises TimeoutError when it is still running after `timeout_s`.
    """
    pid = running_pid(settings)
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid
    deadline = time.monotonic() + timeout_s
    while running_pid(settings) == pid:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the host (pid {pid}) is still running after {timeout_s:.0f} s")
        time.sleep(0.1)
    return pid
