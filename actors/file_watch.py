"""The delivery fast path: notice a container's commit to outbound.db within a millisecond, without polling.

One thread watches the sessions tree with inotify (through ctypes; no extra
dependency, and no import of the container's own watcher, which the host must
not depend on): the sessions folder and each group folder for new
sub-folders, and each session folder for the end of a commit to outbound.db.
The container writes in journal_mode=DELETE through one long-lived connection,
so a commit ends with `outbound.db-journal` being deleted; that, a close after
writing, or a rename onto outbound.db is what counts. A new session folder is
reported once when it is first watched, covering anything written before the
watch existed.

Idle sessions cost nothing: their folders produce no events, and heartbeats
(`.heartbeat` mtime, an attribute change) are not in the mask. Where inotify
is missing or a watch cannot be added, those folders are polled by `stat()`
(~4 µs each) every `fallback_interval` seconds instead, and the tree is
rescanned for new folders every `rescan_every` polls.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import stat
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from config.logs import get_logger

log = get_logger("file-watch")

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
_HEADER = struct.Struct("iIII")
_TREE_MASK = IN_CREATE | IN_MOVED_TO | IN_ONLYDIR
_SESSION_MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_ONLYDIR
OUTBOUND = "outbound.db"


def is_outbound_commit(mask: int, name: str) -> bool:
    """Whether an event in a session folder marks a finished write to outbound.db."""
    if name == OUTBOUND:
        return bool(mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
    return name == OUTBOUND + "-journal" and bool(mask & IN_DELETE)


class _Inotify:
    """A non-blocking inotify descriptor (Linux); `open` returns None where there is none."""

    def __init__(self, libc: ctypes.CDLL, fd: int) -> None:
        self._libc = libc
        self.fd = fd

    @classmethod
    def open(cls) -> _Inotify | None:
        if not sys.platform.startswith("linux"):
            return None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError) as exc:
            log.warning("watch.no_inotify", error=str(exc))
            return None
        if fd < 0:
            log.warning("watch.no_inotify", error=os.strerror(ctypes.get_errno()))
            return None
        return cls(libc, fd)

    def add(self, path: Path, mask: int) -> int | None:
        """A watch descriptor, or None when the kernel refused (folder gone, watch limit reached)."""
        wd = int(self._libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(mask)))
        if wd < 0:
            log.debug("watch.add_failed", path=str(path), error=os.strerror(ctypes.get_errno()))
            return None
        return wd

    def read(self) -> list[tuple[int, int, str]]:
        """Queued events as (watch descriptor, mask, name)."""
        try:
            data = os.read(self.fd, 256 * 1024)
        except BlockingIOError:
            return []
        events = []
        offset = 0
        while offset + _HEADER.size <= len(data):
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            events.append((wd, mask, data[start : start + length].rstrip(b"\0").decode(errors="replace")))
            offset = start + length
        return events

    def close(self) -> None:
        os.close(self.fd)


def _subdirs(path: Path) -> list[Path]:
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    return [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


class SessionFolderWatcher:
    """Calls `on_change(session folder)` from its own thread whenever its outbound.db may have new rows."""

    def __init__(
        self,
        sessions_dir: Path,
        on_change: Callable[[Path], None],
        *,
        fallback_interval: float = 0.25,
        rescan_every: int = 20,
    ) -> None:
        self._root = sessions_dir
        self._on_change = on_change
        self._fallback_interval = fallback_interval
        self._rescan_every = rescan_every
        self._inotify: _Inotify | None = None
        self._tree: dict[int, Path] = {}  # wd -> sessions folder or a group folder
        self._sessions: dict[int, Path] = {}  # wd -> session folder
        self._known: set[Path] = set()  # session folders seen, watched or polled
        self._polled: dict[Path, tuple[int, int, int] | None] = {}
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="outbound-watch", daemon=True)
        self._ready = threading.Event()

    @property
    def using_inotify(self) -> bool:
        return self._inotify is not None

    def start(self) -> SessionFolderWatcher:
        self._root.mkdir(parents=True, exist_ok=True)
        self._inotify = _Inotify.open()
        self._thread.start()
        self._ready.wait(timeout=10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = None

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        self._watch_tree(self._root, report=False)
        self._ready.set()
        fds = [self._stop_r] + ([self._inotify.fd] if self._inotify else [])
        polls = 0
        while True:
            timeout = self._fallback_interval if self._polled or self._inotify is None else None
            ready, _, _ = select.select(fds, [], [], timeout)
            if self._stop_r in ready:
                return
            if self._inotify is not None and self._inotify.fd in ready:
                self._handle(self._inotify.read())
                continue
            polls += 1
            if self._inotify is None and polls % self._rescan_every == 0:
                self._watch_tree(self._root, report=True)
            self._poll()

    def _watch_tree(self, root: Path, *, report: bool) -> None:
        """Watch the sessions folder (or one group folder) and everything below it."""
        if root == self._root:
            self._add_tree(root)
            groups = _subdirs(root)
        else:
            groups = [root]
        for group in groups:
            self._add_tree(group)
            for folder in _subdirs(group):
                self._add_session(folder, report=report)

    def _add_tree(self, path: Path) -> None:
        if self._inotify is None or path in self._tree.values():
            return
        wd = self._inotify.add(path, _TREE_MASK)
        if wd is not None:
            self._tree[wd] = path

    def _add_session(self, folder: Path, *, report: bool) -> None:
        if folder in self._known:
            return
        self._known.add(folder)
        wd = self._inotify.add(folder, _SESSION_MASK) if self._inotify is not None else None
        if wd is not None:
            self._sessions[wd] = folder
        else:
            self._polled[folder] = _stat_key(folder / OUTBOUND)
        if report:
            self._notify({folder})

    def _handle(self, events: list[tuple[int, int, str]]) -> None:
        changed: set[Path] = set()
        for wd, mask, name in events:
            if mask & IN_Q_OVERFLOW:
                changed.update(self._known)
                continue
            if mask & IN_IGNORED:
                self._forget(wd)
                continue
            folder = self._sessions.get(wd)
            if folder is not None:
                if is_outbound_commit(mask, name):
                    changed.add(folder)
                continue
            parent = self._tree.get(wd)
            if parent is not None and mask & IN_ISDIR and not name.startswith("."):
                if parent == self._root:
                    self._watch_tree(parent / name, report=True)
                else:
                    self._add_session(parent / name, report=True)
        self._notify(changed)

    def _forget(self, wd: int) -> None:
        folder = self._sessions.pop(wd, None)
        path = self._tree.pop(wd, None)
        if folder is not None:
            self._known.discard(folder)
        elif path is not None:
            self._known = {folder for folder in self._known if folder.parent != path}

    def _poll(self) -> None:
        changed: set[Path] = set()
        for folder, last in list(self._polled.items()):
            key = _stat_key(folder / OUTBOUND)
            if key != last:
                self._polled[folder] = key
                changed.add(folder)
        self._notify(changed)

    def _notify(self, folders: set[Path]) -> None:
        for folder in folders:
            try:
                self._on_change(folder)
            except Exception as exc:  # a callback must never stop the watcher
                log.error("watch.callback_failed", folder=str(folder), error=repr(exc))
