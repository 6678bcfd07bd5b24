"""Shared by the tools: where a message goes, and how a host action is requested."""

from __future__ import annotations

from typing import Any

from agent_runner import destinations as dest_map
from agent_runner.db import OutboundRef, new_id
from agent_runner.routes import Route
from agent_runner.tools.base import ToolContext, ToolInputError

CURRENT = "the current conversation"


def resolve_target(ctx: ToolContext, to: str | None) -> tuple[Route, str]:
    """The route for `to` (a destination name), or for the current conversation when omitted."""
    known = ctx.db.destinations()
    names = ", ".join(d.name for d in known) or "(none)"
    if to is None:
        route = dest_map.default_route(ctx.db, ctx.conversation.origin, known)
        if route is not None:
            return route, CURRENT
        if len(known) > 1:
            raise ToolInputError(f'there is no current conversation; set "to" to one of: {names}')
        raise ToolInputError("there is no current conversation and no destination to send to")
    destination = dest_map.find(known, to)
    if destination is None:
        raise ToolInputError(f'unknown destination "{to}"; known destinations: {names}')
    route = destination.route(ctx.conversation.origin or ctx.db.session_routing())
    if route is None:
        raise ToolInputError(f'destination "{to}" has no address; an admin must fix its wiring on the host')
    return route, to


def current_route(ctx: ToolContext) -> Route | None:
    return dest_map.default_route(ctx.db, ctx.conversation.origin)


def request_action(
    ctx: ToolContext, action: str, fields: dict[str, Any], *, prefix: str = "sys", id_field: str | None = None
) -> OutboundRef:
    """Ask the host for an effect: a `kind='system'` row whose content names the action.

    The container never writes inbound.db; the host applies the action, re-checking
    permissions and input, and tells the agent the outcome with a message.
    The row id doubles as `requestId` (and as `id_field` when given, e.g. the new task's id).
    """
    message_id = new_id(prefix)
    content = {"action": action, "requestId": message_id, **({id_field: message_id} if id_field else {}), **fields}
    return ctx.db.write_message(kind="system", content=content, route=current_route(ctx), message_id=message_id)
