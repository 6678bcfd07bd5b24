"""Waking the runner the moment inbound.db changes.

Sleeping a fixed second between polls cost the reference ~700 ms p50 per
reply. Here a watcher thread waits on inotify (Linux; through ctypes, so no
extra dependency) for the host's commits to inbound.db and notifies a shared
`ChangeSignal`; the poll loop and waiting tools block on that signal. The
watcher also compares inbound.db's stat every `fallback_interval` seconds, so a
mount that delivers no inotify events still wakes the loop within that time.

Which inotify events count: the host opens, writes and closes inbound.db per
operation in journal_mode=DELETE, so a commit ends with the `-journal` file
being deleted and the database being closed after writing. Waking on those
(not on every write) avoids reading while the host still holds its lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import select
import struct
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
_EVENT_HEADER = struct.Struct("iIII")
_WATCH_MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB


class ChangeSignal:
    """A generation counter threads can wait on: `wait(seen)` returns once it moved past `seen`."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen, timeout=max(timeout, 0.0))
            return self._generation


class Inotify:
    """A minimal inotify handle on one directory (Linux only)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def watch_directory(cls, directory: Path, mask: int) -> Inotify | None:
        """An inotify fd watching `directory`, or None where inotify is unavailable."""
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "inotify_init1 failed")
            if libc.inotify_add_watch(fd, os.fsencode(directory), ctypes.c_uint32(mask)) < 0:
                errno = ctypes.get_errno()
                os.close(fd)
                raise OSError(errno, f"inotify_add_watch({directory}) failed")
        except (OSError, AttributeError) as exc:
            log.warning("inotify unavailable (%s); polling inbound.db instead", exc)
            return None
        return cls(fd)

    def read(self) -> list[tuple[int, str]]:
        """The (mask, file name) of every queued event; empty when none are queued."""
        try:
            data = os.read(self.fd, 64 * 1024)
        except BlockingIOError:
            return []
        events = []
        offset = 0
        while offset + _EVENT_HEADER.size <= len(data):
            _wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
            start = offset + _EVENT_HEADER.size
            name = data[start : start + length].rstrip(b"\0").decode(errors="replace")
            events.append((mask, name))
            offset = start + length
        return events

    def close(self) -> None:
        os.close(self.fd)


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def is_commit_event(mask: int, name: str, db_name: str) -> bool:
    """Whether an inotify event on the directory marks a finished host write to `db_name`."""
    if mask & IN_Q_OVERFLOW:
        return True
    if name == db_name:
        return bool(mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB))
    return name == db_name + "-journal" and bool(mask & IN_DELETE)


class InboundWatcher:
    """A daemon thread that notifies `signal` whenever inbound.db changes."""

    def __init__(self, path: Path, signal: ChangeSignal, fallback_interval: float = 0.25) -> None:
        self.path = path
        self.signal = signal
        self.fallback_interval = fallback_interval
        self.changes = 0
        self.using_inotify = False
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="inbound-watcher", daemon=True)
        self._started = threading.Event()

    def start(self) -> InboundWatcher:
        self._thread.start()
        self._started.wait(timeout=5)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=2)
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _changed(self) -> None:
        self.changes += 1
        self.signal.notify()

    def _run(self) -> None:
        inotify = Inotify.watch_directory(self.path.parent, _WATCH_MASK)
        self.using_inotify = inotify is not None
        last = _stat_key(self.path)
        self._started.set()
        fds = [self._stop_r] + ([inotify.fd] if inotify else [])
        try:
            while True:
                ready, _, _ = select.select(fds, [], [], self.fallback_interval)
                if self._stop_r in ready:
                    return
                if inotify is not None and inotify.fd in ready:
                    # Only a commit counts; a stat taken now could catch the host mid-write.
                    if any(is_commit_event(mask, name, self.path.name) for mask, name in inotify.read()):
                        last = _stat_key(self.path)
                        self._changed()
                    continue
                key = _stat_key(self.path)
                if key != last:
                    last = key
                    self._changed()
        finally:
            if inotify is not None:
                inotify.close()
