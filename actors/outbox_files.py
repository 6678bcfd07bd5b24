"""Files an agent sends: read from `outbox/<message id>/`, handed to the adapter, removed after delivery.

The session folder is writable by the container, so nothing in it is trusted
as a path: every directory is opened with O_NOFOLLOW relative to its parent's
descriptor, each file is opened with O_NOFOLLOW and must be a regular file,
and names must be plain single components. The bytes are copied into a
host-private staging folder first, and the adapter reads only those copies:
a link the container swaps in after the check can never make the host send
one of its own files to a chat.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from channels.adapter import OutboundFile
from sessiondb.paths import unsafe_component_reason

MAX_FILE_BYTES = 50 * 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1024 * 1024


STAGING_FOLDER = "delivery-staging"


def staging_dir(data_dir: Path, session_id: str, message_id: str) -> Path:
    """The host-private folder for one message's copies; named by a hash, as the ids come from outside."""
    digest = hashlib.sha256(f"{session_id}\0{message_id}".encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return data_dir / STAGING_FOLDER / digest


def clear_staging(data_dir: Path) -> None:
    """Drop copies a crashed host left behind (each attempt removes its own; this catches the interrupted ones)."""
    shutil.rmtree(data_dir / STAGING_FOLDER, ignore_errors=True)


class OutboxError(Exception):
    """The files a message declares cannot be sent as they are (missing, a link, too large, a bad name)."""


@contextmanager
def _outbox_fd(session: Path) -> Iterator[int]:
    session_fd = os.open(session, _DIR_FLAGS)
    try:
        try:
            fd = os.open("outbox", _DIR_FLAGS, dir_fd=session_fd)
        except OSError as exc:
            raise OutboxError(f"outbox/ cannot be opened as a real directory ({exc.strerror})") from None
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        os.close(session_fd)


def _checked(name: str, what: str) -> str:
    reason = unsafe_component_reason(name)
    if reason is not None:
        raise OutboxError(f"{what} {name!r} is refused: {reason}")
    return name


def stage_files(session: Path, message_id: str, names: list[str], staging: Path) -> list[OutboundFile]:
    """Copy the declared files of a message into `staging` (replaced if present) and describe the copies."""
    _checked(message_id, "message id")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700, parents=True)
    staged: list[OutboundFile] = []
    with _outbox_fd(session) as outbox:
        try:
            folder = os.open(message_id, _DIR_FLAGS, dir_fd=outbox)
        except OSError as exc:
            raise OutboxError(f"outbox/{message_id} cannot be opened as a real directory ({exc.strerror})") from None
        try:
            for index, name in enumerate(names):
                target = staging / f"{index}"
                target.mkdir(mode=0o700)
                copy = target / _checked(name, "file name")
                _copy_one(folder, name, copy, f"outbox/{message_id}/{name}")
                staged.append(OutboundFile(filename=name, path=str(copy)))
        finally:
            os.close(folder)
    return staged


def _copy_one(folder_fd: int, name: str, copy: Path, shown: str) -> None:
    try:
        source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=folder_fd)
    except OSError as exc:
        problem = "a symlink" if exc.errno == errno.ELOOP else exc.strerror
        raise OutboxError(f"{shown} cannot be read: {problem}") from None
    try:
        info = os.fstat(source)
        if not stat.S_ISREG(info.st_mode):
            raise OutboxError(f"{shown} is not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise OutboxError(f"{shown} is {info.st_size} bytes; at most {MAX_FILE_BYTES} can be sent")
        with copy.open("xb") as out:
            copied = 0
            while chunk := os.read(source, _CHUNK):
                copied += len(chunk)
                if copied > MAX_FILE_BYTES:
                    raise OutboxError(f"{shown} grew past {MAX_FILE_BYTES} bytes while being read")
                out.write(chunk)
    finally:
        os.close(source)


def remove_outbox(session: Path, message_id: str) -> None:
    """Remove `outbox/<message id>/` after a successful delivery, without following any link in it."""
    if unsafe_component_reason(message_id) is not None:
        return
    with contextlib.suppress(OutboxError, FileNotFoundError), _outbox_fd(session) as outbox:
        try:
            info = os.lstat(message_id, dir_fd=outbox)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(message_id, dir_fd=outbox)
        else:
            os.unlink(message_id, dir_fd=outbox)
