"""Sending the agent's final text: `<message to>` blocks, scratchpad, and the plain-text shortcut.

- Each `<message to="name">…</message>` block goes to that destination; an
  unknown name is dropped and logged (the agent cannot invent recipients).
- `<internal>…</internal>` is scratchpad: logged, never sent.
- Text with no blocks at all goes back to where the conversation came from
  (see destinations.default_route); once the agent uses blocks, the text around
  them is scratchpad.
- A reply into the conversation's own channel keeps its thread.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from agent_runner import destinations as dest_map
from agent_runner.db import OutboundRef, SessionDb
from agent_runner.routes import Route

log = logging.getLogger(__name__)

MESSAGE_BLOCK_RE = re.compile(r'<message\s+to="([^"]+)"\s*>(.*?)</message>', re.DOTALL)
INTERNAL_RE = re.compile(r"<internal>.*?</internal>", re.DOTALL)


@dataclass(frozen=True)
class ParsedReply:
    blocks: list[tuple[str, str]]
    scratchpad: str


def parse_reply(text: str) -> ParsedReply:
    """Split the agent's text into addressed blocks and the rest (with `<internal>` removed)."""
    blocks = [(name.strip(), body.strip()) for name, body in MESSAGE_BLOCK_RE.findall(text)]
    rest = MESSAGE_BLOCK_RE.sub("", text)
    return ParsedReply(blocks, INTERNAL_RE.sub("", rest).strip())


def dispatch_reply(db: SessionDb, text: str, origin: Route | None, in_reply_to: str | None) -> list[OutboundRef]:
    """Write the rows for one result text; returns what was written (possibly nothing)."""
    parsed = parse_reply(text)
    written: list[OutboundRef] = []
    known = db.destinations()
    with db.transaction():
        for name, body in parsed.blocks:
            destination = dest_map.find(known, name)
            route = destination.route(origin) if destination else None
            if route is None:
                log.warning("dropping a <message to=%r> block: no such destination", name)
                continue
            if body:
                written.append(_send(db, route, body, in_reply_to))
        if parsed.blocks:
            if parsed.scratchpad:
                log.info("scratchpad: %s", parsed.scratchpad[:500])
            return written
        if not parsed.scratchpad:
            return written
        route = dest_map.default_route(db, origin, known)
        if route is None:
            log.warning("reply has no <message to> block and no default route; nothing sent")
            return written
        written.append(_send(db, route, parsed.scratchpad, in_reply_to))
    return written


def _send(db: SessionDb, route: Route, text: str, in_reply_to: str | None) -> OutboundRef:
    return db.write_message(kind="chat", content={"text": text}, route=route, in_reply_to=in_reply_to)
