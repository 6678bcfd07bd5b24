"""First run: the admin group `main`, wired to the terminal chat, so a fresh install can be talked to at once.

Idempotent: every piece is looked up before it is created, so running
`hermitcrab up` again reuses what exists and records nothing new.
"""

from __future__ import annotations

import msgspec

from actors.admin import create_group, ensure_messaging_group, wire
from config.settings import Settings
from events.log import EventLog
from events.model import AgentGroup, MessagingGroup

MAIN_FOLDER = "main"
TERMINAL_CHANNEL = "terminal"
TERMINAL_CONVERSATION = "main"


class FirstRun(msgspec.Struct, frozen=True, kw_only=True):
    """What first-run setup found or made."""

    group: AgentGroup
    conversation: MessagingGroup
    created_group: bool
    created_wiring: bool


def ensure_main_group(log: EventLog, settings: Settings, admin_user: str) -> FirstRun:
    """The admin group `main` and its terminal conversation `main`, created if missing."""
    group = log.store.agent_group_by_folder(MAIN_FOLDER)
    created_group = group is None
    if group is None:
        group = create_group(log, settings, name=MAIN_FOLDER, folder=MAIN_FOLDER, is_admin=True)
    conversation = ensure_messaging_group(
        log, TERMINAL_CHANNEL, TERMINAL_CONVERSATION, name=TERMINAL_CONVERSATION, admin_user_id=admin_user
    )
    wired = any(w.agent_group_id == group.id for w in log.store.wirings(conversation.id))
    if not wired:
        wire(log, conversation, group)
    return FirstRun(group=group, conversation=conversation, created_group=created_group, created_wiring=not wired)
