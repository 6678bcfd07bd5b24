"""A listening Unix socket only its owner can use, that safely replaces one left behind by a crash.

Why the detour through a temporary name: the socket is bound under a private
name, restricted to 0600, and only then renamed into place and opened for
connections, so there is no moment in which another user could connect. A
socket file that nobody answers on is a leftover of a crashed host and is
replaced; one that answers belongs to a live process and is left alone.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import socket
import stat
import struct
from pathlib import Path

MAX_PATH_BYTES = 107  # sun_path holds 108 bytes on Linux, including the terminating NUL


class SocketInUseError(OSError):
    """Another live process already listens on this path."""


def answers(path: Path, timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections on the Unix socket at `path`."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout_s)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


class PrivateListener:
    """A listening socket and the file it is bound to, which it removes on close unless replaced since."""

    def __init__(self, path: Path, server: socket.socket) -> None:
        self.path = path
        self.server = server
        self._inode = os.stat(path).st_ino

    def close(self) -> None:
        self.server.close()
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()


def listen_private(path: Path, backlog: int = 16) -> PrivateListener:
    """Listen on `path` with permissions 0600; raise SocketInUseError when a live process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    if len(os.fsencode(staging)) > MAX_PATH_BYTES:
        raise OSError(f"the socket path {path} is too long for a Unix socket; use a shorter data directory")
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError(f"{path} exists and is not a socket; move it out of the way")
        if answers(path):
            raise SocketInUseError(f"another process already listens on {path}")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(staging))
        os.chmod(staging, 0o600)
        os.replace(staging, path)
        listener = PrivateListener(path, server)
        server.listen(backlog)
    except BaseException:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        raise
    return listener


def peer_user(connection: socket.socket) -> str:
    """The login name of the process at the other end (Linux SO_PEERCRED).

    Elsewhere the socket's 0600 mode already means the peer runs as our own user.
    """
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return getpass.getuser()
    raw = connection.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
