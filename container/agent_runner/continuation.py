"""The provider's conversation handle, kept in outbound.db's `session_state`.

Keyed by provider name (`continuation:<provider>`), so a session whose group
switches from one provider to another never hands one provider the other's id.
Stored the moment the provider reports it, not when a query ends: a container
killed mid-query still resumes the same conversation.
"""

from __future__ import annotations

from agent_runner.db import SessionDb

PREFIX = "continuation:"


def load(db: SessionDb, provider: str) -> str | None:
    return db.get_state(PREFIX + provider)


def store(db: SessionDb, provider: str, continuation: str) -> None:
    db.set_state(PREFIX + provider, continuation)


def clear(db: SessionDb, provider: str) -> None:
    db.delete_state(PREFIX + provider)


def clear_all(db: SessionDb) -> None:
    """/clear: the next query starts a fresh conversation whatever the provider."""
    db.delete_state_prefix(PREFIX)
