"""Errors of the session-DB layer; callers (actors) catch SessionDbError and record it."""

from __future__ import annotations


class SessionDbError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidInput(SessionDbError, ValueError):
    """Input from outside the host (ids, names, rows) that the protocol cannot accept."""


class AttachmentError(InvalidInput):
    """An attachment that cannot be saved safely; nothing of its message was written."""


class SessionFolderMissing(SessionDbError):
    """The session folder or its inbound.db does not exist (create_session_folder was not run)."""


class ProtocolViolation(SessionDbError):
    """A session file breaks an invariant of the protocol (e.g. outbound.db in WAL mode)."""


class UnknownMessage(SessionDbError, LookupError):
    """No messages_in row has this id."""
