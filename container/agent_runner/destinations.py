"""The destination map as the agent uses it: names, the default reply route, the prompt addendum.

The map lives in inbound.db and is read live, so a destination the host adds
mid-session (a new child agent, an admin rewiring) is usable at once. It is
advisory: the host re-checks every send against its own grants.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent_runner.db import SessionDb
from agent_runner.routes import Destination, Route


def find(destinations: Sequence[Destination], name: str) -> Destination | None:
    return next((d for d in destinations if d.name == name), None)


def default_route(
    db: SessionDb, origin: Route | None, destinations: Sequence[Destination] | None = None
) -> Route | None:
    """Where a reply without an explicit destination goes.

    The conversation the message came from first; then the session's default
    routing the host wrote; then the only destination when there is exactly one.
    """
    if origin is not None:
        return origin
    routing = db.session_routing()
    if routing is not None:
        return routing
    known = db.destinations() if destinations is None else destinations
    return known[0].route(None) if len(known) == 1 else None


def _label(destination: Destination) -> str:
    extra = f" ({destination.display_name})" if destination.display_name != destination.name else ""
    kind = "another agent" if destination.type == "agent" else "a chat"
    return f"- `{destination.name}`{extra}: {kind}"


def system_prompt_addendum(destinations: Sequence[Destination]) -> str:
    """The part of the system prompt that tells the agent how its words reach people."""
    lines = ["## How your replies are delivered", ""]
    if not destinations:
        lines += [
            "No destinations are configured yet, so nothing you write can be sent anywhere except the",
            "conversation that is talking to you. An admin can add destinations on the host.",
        ]
        return "\n".join(lines)
    if len(destinations) == 1:
        only = destinations[0]
        lines += [
            f"Everything you write as your final answer goes to `{only.name}`. No wrapping is needed.",
            "",
            "Wrap private notes in `<internal>...</internal>`: they are logged, never sent.",
            "To say something before a long piece of work is done (an acknowledgement, progress), call the",
            "`send_message` tool.",
        ]
        return "\n".join(lines)
    lines += ["You can send to these destinations:", ""]
    lines += [_label(d) for d in destinations]
    lines += [
        "",
        'Address a message with `<message to="name">...</message>`; one answer may hold several blocks.',
        "Plain text outside any block goes back to the conversation the latest message came from.",
        "Once you use a block, text outside blocks is treated as private notes and is not sent.",
        "Wrap private notes in `<internal>...</internal>` to make that explicit.",
        "To send something mid-task, call the `send_message` tool with `to` set to a destination name.",
    ]
    return "\n".join(lines)
