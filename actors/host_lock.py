"""One host per data directory: an exclusive lock file that names its owner.

`flock` is released by the kernel when the owner dies, even by SIGKILL, so a
crashed host never leaves a stale lock behind, and two live hosts can never
both spawn containers for the same session.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class HostAlreadyRunningError(RuntimeError):
    """Another live host holds this data directory."""


class HostLock:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def acquire(cls, data_dir: Path) -> HostLock:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / "host.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise HostAlreadyRunningError(
                f"another hermitcrab host (pid {owner}) is already running on {data_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def lock_owner(data_dir: Path) -> int | None:
    """The pid of the live host on this data directory, or None when none holds the lock."""
    path = data_dir / "host.lock"
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
