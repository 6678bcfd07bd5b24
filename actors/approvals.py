"""Approvals: what an agent asked for, the card the admin sees, who may answer, and what approving changes.

Pure functions over recorded values, so the rules are unit-tested without
actors: the SystemActor records, sends and applies what these decide.

- The payload recorded in ApprovalRequested is the complete thing to apply
  (after a host restart nothing else is needed), and the card shows all of it:
  every package, the MCP server's command and every argument, and the NAMES of
  its environment variables (never their values).
- Only the admin may resolve: the card goes to the admin group's conversation;
  a click counts when it comes from that same conversation and, if that
  conversation names an admin user (`admin_user_id`), from that user. Without
  one, anyone in the admin group's own conversation is trusted as admin: it is
  the conversation an operator wired to the admin agent.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from actors.card_actions import APPROVAL_CARD_PREFIX
from actors.image_recipe import validate_packages
from actors.system_payloads import AddMcpServer, InstallPackages, InvalidRequest, RequestRebuild
from channels.adapter import Card, CardOption
from events.model import AgentGroup, GroupConfig, McpServer, MessagingGroup, Packages, PendingApproval
from events.store import Store

APPROVE = "approve"
REJECT = "reject"

ApprovalAction = InstallPackages | AddMcpServer | RequestRebuild


class _InstallPayload(msgspec.Struct, frozen=True):
    apt: list[str] = []
    pip: list[str] = []
    reason: str = ""


class _McpPayload(msgspec.Struct, frozen=True):
    name: str
    command: str
    args: list[str] = []
    env: dict[str, str] = {}


class _RebuildPayload(msgspec.Struct, frozen=True):
    reason: str = ""


def approval_id_for(request_id: str) -> str:
    """One approval per request: a redelivered request maps to the same approval, which is then not recorded twice."""
    return f"appr-{request_id}"


def card_id(approval_id: str) -> str:
    """The card's id; the router recognizes the prefix and hands presses to the SystemActor."""
    return f"{APPROVAL_CARD_PREFIX}{approval_id}"


def action_name(action: ApprovalAction) -> str:
    if isinstance(action, InstallPackages):
        return "install_packages"
    if isinstance(action, AddMcpServer):
        return "add_mcp_server"
    return "request_rebuild"


def encode_payload(action: ApprovalAction) -> str:
    """The JSON recorded in ApprovalRequested: everything approving needs, nothing derived."""
    if isinstance(action, InstallPackages):
        value: msgspec.Struct = _InstallPayload(apt=action.packages.apt, pip=action.packages.pip, reason=action.reason)
    elif isinstance(action, AddMcpServer):
        value = _McpPayload(
            name=action.name, command=action.server.command, args=action.server.args, env=action.server.env
        )
    else:
        value = _RebuildPayload(reason=action.reason)
    return msgspec.json.encode(value).decode()


def decode_payload(action: str, payload: str) -> ApprovalAction:
    """The action a recorded approval stands for; InvalidRequest when the record cannot be read."""
    try:
        if action == "install_packages":
            p = msgspec.json.decode(payload, type=_InstallPayload)
            return InstallPackages(packages=Packages(apt=p.apt, pip=p.pip), reason=p.reason)
        if action == "add_mcp_server":
            q = msgspec.json.decode(payload, type=_McpPayload)
            return AddMcpServer(name=q.name, server=McpServer(command=q.command, args=q.args, env=q.env))
        if action == "request_rebuild":
            return RequestRebuild(reason=msgspec.json.decode(payload, type=_RebuildPayload).reason)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the recorded {action} approval cannot be read: {exc}") from None
    raise InvalidRequest(f"{action!r} is not an action that needs approval")


def expires_at(now: datetime, ttl_s: float) -> str:
    """The expiry in the stored UTC form."""
    return (now.astimezone(UTC) + timedelta(seconds=ttl_s)).strftime("%Y-%m-%d %H:%M:%S")


def is_expired(approval: PendingApproval, now: datetime) -> bool:
    if approval.expires_at is None:
        return False
    return datetime.fromisoformat(approval.expires_at + "+00:00") <= now.astimezone(UTC)


def admin_channel(store: Store) -> MessagingGroup | None:
    """The conversation wired to the admin group (the oldest admin group's highest-priority wiring)."""
    for group in store.agent_groups():
        if not group.is_admin:
            continue
        for wiring in store.wirings_for_group(group.id):
            channel = store.messaging_group(wiring.messaging_group_id)
            if channel is not None:
                return channel
    return None


def check_applicable(action: ApprovalAction, group: AgentGroup) -> None:
    """Refuse, before asking anyone, a request that could not be applied to the group as it is now."""
    if isinstance(action, InstallPackages):
        apply_to_config(action, group.config)
    elif isinstance(action, RequestRebuild) and not (group.config.packages.apt or group.config.packages.pip):
        raise InvalidRequest("there is nothing to rebuild: no packages were approved for this agent yet")


def apply_to_config(action: ApprovalAction, config: GroupConfig) -> GroupConfig:
    """The group's configuration with an approved install or MCP server added (a rebuild changes none)."""
    if isinstance(action, InstallPackages):
        merged = Packages(
            apt=[*config.packages.apt, *action.packages.apt], pip=[*config.packages.pip, *action.packages.pip]
        )
        try:
            return msgspec.structs.replace(config, packages=validate_packages(merged))
        except ValueError as exc:
            raise InvalidRequest(f"the packages cannot be added: {exc}") from None
    if isinstance(action, AddMcpServer):
        return msgspec.structs.replace(config, mcp_servers={**config.mcp_servers, action.name: action.server})
    return config


def refusal_reason(
    approval: PendingApproval, channel: MessagingGroup | None, user_id: str, now: datetime
) -> str | None:
    """Why a click may not resolve this approval, or None when it may."""
    if approval.status != "pending":
        return f"the approval is already {approval.status}"
    if is_expired(approval, now):
        return "the approval has expired"
    if channel is None or (channel.channel_type, channel.platform_id) != (approval.channel_type, approval.platform_id):
        return "the answer did not come from the admin conversation the card was sent to"
    if channel.admin_user_id is not None and user_id != channel.admin_user_id:
        return f"user {user_id!r} is not the admin of this conversation"
    return None


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def describe(action: ApprovalAction) -> list[str]:
    """Every part of what approving applies, one fact per line (used on the card and in notes)."""
    if isinstance(action, InstallPackages):
        lines = [f"apt packages ({len(action.packages.apt)}): {', '.join(action.packages.apt) or '(none)'}"]
        lines.append(f"pip packages ({len(action.packages.pip)}): {', '.join(action.packages.pip) or '(none)'}")
    elif isinstance(action, AddMcpServer):
        server = action.server
        lines = [f"MCP server name: {action.name}", f"command: {_quoted(server.command)}"]
        lines.append(f"arguments ({len(server.args)}): {' '.join(_quoted(a) for a in server.args) or '(none)'}")
        names = ", ".join(sorted(server.env)) or "(none)"
        lines.append(f"environment variables ({len(server.env)}, values not shown): {names}")
    else:
        lines = ["rebuild the container image with the approved packages, then restart the agent's container"]
    reason = action.reason if isinstance(action, InstallPackages | RequestRebuild) else ""
    if reason:
        lines.append(f"reason given: {reason}")
    return lines


def approval_card(
    approval_id: str, action: ApprovalAction, group: AgentGroup, expiry: str | None, timezone: str
) -> Card:
    """The Approve / Reject card for the admin, showing the complete payload."""
    verb = {
        "install_packages": "asks to install packages",
        "add_mcp_server": "asks to add an MCP server",
        "request_rebuild": "asks for a container rebuild",
    }[action_name(action)]
    body = [f'Agent "{group.name}" (folder {group.folder}) {verb}:', *(f"- {line}" for line in describe(action))]
    if isinstance(action, AddMcpServer) and action.name in group.config.mcp_servers:
        body.append(f"- this replaces the agent's existing MCP server {action.name!r}")
    if expiry is not None:
        local = datetime.fromisoformat(expiry + "+00:00").astimezone(ZoneInfo(timezone))
        body.append(f"Expires {local:%Y-%m-%d %H:%M} ({timezone}) if unanswered.")
    return Card(
        card_id=card_id(approval_id),
        title=f"Approval needed: {action_name(action)}",
        body="\n".join(body),
        options=[CardOption(id=APPROVE, label="Approve"), CardOption(id=REJECT, label="Reject")],
    )
