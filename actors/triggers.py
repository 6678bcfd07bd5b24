"""Which wired agent takes an inbound message: priority order, filtered by each wiring's trigger rules.

The reference always took the highest-priority wiring (its trigger matching was
a TODO). Here a wiring takes a message only when every rule it sets holds:
- `pattern`: a regular expression found anywhere in the text (`re.search`);
- `mention_only`: the platform flagged the message as mentioning the assistant;
- `include_senders`: the sender's id or name is listed;
- `exclude_senders`: the sender's id or name is not listed.
A pattern that does not compile matches nothing (and is logged), so a typo in
one wiring never swallows messages meant for the next.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from channels.adapter import InboundChat
from config.logs import get_logger
from events.model import TriggerRules, Wiring

log = get_logger("triggers")


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error as exc:
        log.warning("trigger.bad_pattern", pattern=pattern, error=str(exc))
        return None


def rules_match(rules: TriggerRules, chat: InboundChat) -> bool:
    """Whether a message passes every rule the wiring sets (no rules: everything passes)."""
    sender = {chat.sender_id, chat.sender_name}
    if rules.include_senders and sender.isdisjoint(rules.include_senders):
        return False
    if rules.exclude_senders and not sender.isdisjoint(rules.exclude_senders):
        return False
    if rules.mention_only and not chat.is_mention:
        return False
    if rules.pattern:
        compiled = _compiled(rules.pattern)
        if compiled is None or compiled.search(chat.text) is None:
            return False
    return True


def pick_wiring(wirings: Sequence[Wiring], chat: InboundChat) -> Wiring | None:
    """The first wiring (they come highest priority first) whose rules the message passes."""
    return next((wiring for wiring in wirings if rules_match(wiring.trigger_rules, chat)), None)
