"""Attachments carried as base64 in a message's content, saved to `inbox/<message id>/`.

Names come from outside (chat platforms, senders), and the session folder is
writable by the container, so two things are defended against:

- a name that points elsewhere: directories are stripped, and names that are
  `..`, start with a dot, or hold NUL/control characters are refused;
- a link the container planted: every directory below the session folder is
  opened with O_NOFOLLOW and checked to be a real directory (an lstat that
  cannot be raced, since later steps go through the opened descriptor, not the
  path), and each file is created with O_CREAT|O_EXCL|O_NOFOLLOW, which never
  follows or reuses anything already there (a taken name gets a `-2` suffix).

Everything is validated before the first byte is written, and files already
written are removed if the message row is not stored, so a refusal leaves nothing.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from sessiondb.errors import AttachmentError
from sessiondb.paths import unsafe_component_reason

_MAX_NAME_ATTEMPTS = 100
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class _Item(NamedTuple):
    attachment: dict[str, Any]
    name: str
    data: bytes


class AttachmentPlan(NamedTuple):
    """A message's decoded content and the attachments to save from it, all already validated."""

    content: dict[str, Any]
    items: list[_Item]


def sanitize_attachment_name(raw: str) -> str:
    """The file name to use for a name from outside, or AttachmentError saying why there is none."""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1]
    reason = unsafe_component_reason(base)
    if reason is not None:
        raise AttachmentError(f"attachment name {raw!r} is refused: {reason}")
    return base


def inbox_folder_name(message_id: str) -> str:
    """The message id when it is a safe folder name, otherwise a cleaned form made unique by a hash of the id."""
    if unsafe_component_reason(message_id) is None:
        return message_id
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]", "_", message_id).lstrip(".")[:64] or "message"
    return f"{cleaned}-{hashlib.sha256(message_id.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}"


def plan_attachments(content: str) -> AttachmentPlan | None:
    """Decode and check every attachment with base64 `data`; None when there is nothing to save."""
    if '"attachments"' not in content:
        return None
    try:
        parsed = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return None
    attachments = parsed.get("attachments") if isinstance(parsed, dict) else None
    if not isinstance(attachments, list):
        return None
    items: list[_Item] = []
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, dict) or not isinstance(attachment.get("data"), str):
            continue
        raw_name = attachment.get("name")
        name = (
            sanitize_attachment_name(raw_name) if isinstance(raw_name, str) and raw_name else f"attachment-{index + 1}"
        )
        try:
            data = base64.b64decode(attachment["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AttachmentError(f"attachment {name!r} has invalid base64 data: {exc}") from None
        items.append(_Item(attachment, name, data))
    return AttachmentPlan(parsed, items) if items else None


def _open_subdir(parent_fd: int, name: str, shown: str) -> int:
    with suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise AttachmentError(f"{shown} is a symlink or not a directory; refusing to write through it") from None
        raise


def _candidates(name: str) -> Iterator[str]:
    yield name
    stem, dot, suffix = name.rpartition(".")
    if not stem:
        stem, dot, suffix = name, "", ""
    for n in range(2, _MAX_NAME_ATTEMPTS + 1):
        yield f"{stem}-{n}{dot}{suffix}"


def _create_exclusive(dir_fd: int, name: str, shown: str) -> tuple[str, int]:
    for candidate in _candidates(name):
        try:
            return candidate, os.open(candidate, _FILE_FLAGS, 0o644, dir_fd=dir_fd)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise AttachmentError(f"attachment name {name!r} is too long for the file system") from None
            raise
    raise AttachmentError(f"no free file name for {name!r} in {shown}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@contextmanager
def saved_attachments(session: Path, message_id: str, plan: AttachmentPlan | None) -> Iterator[str | None]:
    """Write the planned files and yield the rewritten content (None when there was no plan).

    Each attachment loses `data` and gains `localPath`, relative to the session
    folder (the container sees it under /workspace). If the body raises, the
    files written here are removed again.
    """
    if plan is None:
        yield None
        return
    folder = inbox_folder_name(message_id)
    shown = f"inbox/{folder}"
    written: list[str] = []
    with ExitStack() as fds:
        session_fd = os.open(session, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds.callback(os.close, session_fd)
        inbox_fd = _open_subdir(session_fd, "inbox", "inbox")
        fds.callback(os.close, inbox_fd)
        folder_fd = _open_subdir(inbox_fd, folder, shown)
        fds.callback(os.close, folder_fd)
        try:
            for item in plan.items:
                final, file_fd = _create_exclusive(folder_fd, item.name, shown)
                written.append(final)
                try:
                    _write_all(file_fd, item.data)
                finally:
                    os.close(file_fd)
                del item.attachment["data"]
                item.attachment["localPath"] = f"{shown}/{final}"
            yield msgspec.json.encode(plan.content).decode()
        except BaseException:
            for name in written:
                os.unlink(name, dir_fd=folder_fd)
            with suppress(OSError):  # still holds files of an earlier message with this id
                os.rmdir(folder, dir_fd=inbox_fd)
            raise
