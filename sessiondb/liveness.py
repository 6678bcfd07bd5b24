"""Container liveness is the mtime of `.heartbeat` in the session folder, not a DB write.

A touch costs the container nothing and never contends with a DB lock; the
host only stats the file. lstat, so a link planted in the folder cannot lend
the heartbeat another file's age.
"""

from __future__ import annotations

from pathlib import Path

from sessiondb.paths import heartbeat_path


def heartbeat_mtime(session: Path) -> float | None:
    """Seconds since the epoch of the last touch, or None if the container has not touched it yet."""
    try:
        return heartbeat_path(session).lstat().st_mtime
    except FileNotFoundError:
        return None


def remove_heartbeat(session: Path) -> None:
    """Forget the previous container's heartbeat before a spawn, so its age cannot judge the new one."""
    heartbeat_path(session).unlink(missing_ok=True)
