"""Where a session's files live, and the id checks that keep them inside the sessions folder.

Layout: `<sessions_dir>/<agent_group_id>/<session_id>/` holds inbound.db,
outbound.db, .heartbeat, outbox/ and inbox/. The folder is mounted into the
container at /workspace, so anything in it may have been touched by the
container; the host's lock file therefore lives beside it, not inside it.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from sessiondb.errors import InvalidInput

MAX_COMPONENT_BYTES = 255


def unsafe_component_reason(text: str) -> str | None:
    """Why `text` cannot be one path component, or None if it can.

    Refused: empty, a separator, NUL or another control character, a leading
    dot (which also covers `.` and `..`), more than 255 bytes.
    """
    if not text:
        return "it is empty"
    if "/" in text or "\\" in text:
        return "it contains a path separator"
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        return "it contains NUL or a control character"
    if text.startswith("."):
        return "it starts with a dot"
    if len(text.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES:
        return f"it is longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def _checked_id(label: str, value: str) -> str:
    reason = unsafe_component_reason(value)
    if reason is not None:
        raise InvalidInput(f"{label} {value!r} cannot name a folder: {reason}")
    return value


def session_dir(sessions_dir: Path, agent_group_id: str, session_id: str) -> Path:
    return sessions_dir / _checked_id("agent group id", agent_group_id) / _checked_id("session id", session_id)


def inbound_path(session: Path) -> Path:
    """Host-written: messages_in, delivered, destinations, session_routing."""
    return session / "inbound.db"


def outbound_path(session: Path) -> Path:
    """Container-written: messages_out, processing_ack, session_state."""
    return session / "outbound.db"


def heartbeat_path(session: Path) -> Path:
    return session / ".heartbeat"


def outbox_dir(session: Path) -> Path:
    return session / "outbox"


def inbox_dir(session: Path) -> Path:
    return session / "inbox"


def lock_path(session: Path) -> Path:
    """The host writers' lock, beside the session folder so a container can neither hold nor replace it."""
    return session.parent / f".{session.name}.lock"
