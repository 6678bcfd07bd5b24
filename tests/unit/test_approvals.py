"""Approval rules: the card shows everything that would be applied, only the admin resolves, expiry, config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from actors import approvals
from actors.system_payloads import AddMcpServer, InstallPackages, InvalidRequest, RequestRebuild
from events.model import AgentGroup, GroupConfig, McpServer, MessagingGroup, Packages, PendingApproval

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)


def group(config: GroupConfig | None = None) -> AgentGroup:
    return AgentGroup(
        id="ag-1",
        name="Researcher",
        folder="researcher",
        is_admin=False,
        agent_provider=None,
        config=config or GroupConfig(),
        created_at="2030-01-01 00:00:00",
    )


def channel(admin_user_id: str | None) -> MessagingGroup:
    return MessagingGroup(
        id="mg-1",
        channel_type="terminal",
        platform_id="admin-room",
        name="Admin",
        is_group=False,
        admin_user_id=admin_user_id,
        created_at="2030-01-01 00:00:00",
    )


def pending(expires: str | None = "2030-06-02 12:00:00", status: str = "pending") -> PendingApproval:
    return PendingApproval(
        approval_id="appr-sys-1",
        session_id="s1",
        request_id="sys-1",
        action="install_packages",
        payload='{"apt":["jq"],"pip":[],"reason":""}',
        agent_group_id="ag-1",
        channel_type="terminal",
        platform_id="admin-room",
        platform_message_id=None,
        expires_at=expires,
        status=status,  # type: ignore[arg-type]
        created_at="2030-06-01 12:00:00",
    )


MCP = AddMcpServer(
    name="search",
    server=McpServer(
        command="/usr/bin/search-mcp",
        args=["--index", "/data/my index", "--verbose"],
        env={"SEARCH_TOKEN": "s3cret-value", "REGION": "eu-west-1"},
    ),
)


def test_mcp_card_shows_command_every_argument_and_env_names_but_never_values() -> None:
    card = approvals.approval_card("appr-sys-1", MCP, group(), "2030-06-02 12:00:00", "Pacific/Auckland")
    text = f"{card.title}\n{card.body}"
    assert '"/usr/bin/search-mcp"' in text
    assert '"--index" "/data/my index" "--verbose"' in text, "every argument, quoted so spaces show"
    assert "SEARCH_TOKEN" in text and "REGION" in text
    assert "s3cret-value" not in text and "eu-west-1" not in text
    assert [o.id for o in card.options] == [approvals.APPROVE, approvals.REJECT]
    assert card.card_id == "approval:appr-sys-1"
    assert "2030-06-03 00:00 (Pacific/Auckland)" in text, "expiry in the user's zone (NZST, +12)"


def test_package_card_lists_every_package_and_the_reason() -> None:
    apt = [f"tool{i}" for i in range(12)]
    request = InstallPackages(packages=Packages(apt=apt, pip=["httpx", "rich"]), reason="data work")
    body = approvals.approval_card("a", request, group(), None, "UTC").body
    assert all(name in body for name in [*apt, "httpx", "rich"])
    assert "apt packages (12)" in body and "pip packages (2)" in body and "data work" in body


def test_a_card_warns_when_an_mcp_server_would_be_replaced() -> None:
    existing = group(GroupConfig(mcp_servers={"search": McpServer(command="old")}))
    assert "replaces" in approvals.approval_card("a", MCP, existing, None, "UTC").body


def test_payload_round_trips_the_complete_request() -> None:
    for request in (MCP, InstallPackages(packages=Packages(apt=["jq"]), reason="x"), RequestRebuild(reason="y")):
        name = approvals.action_name(request)
        assert approvals.decode_payload(name, approvals.encode_payload(request)) == request
    with pytest.raises(InvalidRequest, match="cannot be read"):
        approvals.decode_payload("install_packages", "{nope")


def test_only_the_named_admin_in_the_card_conversation_may_answer() -> None:
    approval = pending()
    assert approvals.refusal_reason(approval, channel("u-admin"), "u-admin", NOW) is None
    assert "not the admin" in str(approvals.refusal_reason(approval, channel("u-admin"), "u-guest", NOW))
    other_room = msgspec.structs.replace(channel("u-admin"), platform_id="elsewhere")
    assert "admin conversation" in str(approvals.refusal_reason(approval, other_room, "u-admin", NOW))
    assert "admin conversation" in str(approvals.refusal_reason(approval, None, "u-admin", NOW))


def test_without_an_admin_user_anyone_in_the_admin_conversation_may_answer() -> None:
    assert approvals.refusal_reason(pending(), channel(None), "anyone", NOW) is None


def test_resolved_or_expired_approvals_refuse_answers() -> None:
    assert "already approved" in str(approvals.refusal_reason(pending(status="approved"), channel(None), "u", NOW))
    late = NOW + timedelta(days=1)
    assert approvals.is_expired(pending(), late)
    assert not approvals.is_expired(pending(), late - timedelta(seconds=1))
    assert "expired" in str(approvals.refusal_reason(pending(), channel(None), "u", late))
    assert not approvals.is_expired(pending(expires=None), late)


def test_expiry_is_stored_in_utc_db_form() -> None:
    local = datetime(2030, 6, 2, 0, 0, tzinfo=UTC).astimezone()
    assert approvals.expires_at(local, 3600) == "2030-06-02 01:00:00"


def test_approved_packages_merge_into_the_config_and_refuse_past_the_limit() -> None:
    base = GroupConfig(packages=Packages(apt=["git"]), model="sonnet")
    merged = approvals.apply_to_config(InstallPackages(packages=Packages(apt=["jq", "git"]), reason=""), base)
    assert merged.packages.apt == ["git", "jq"] and merged.model == "sonnet"
    full = GroupConfig(packages=Packages(apt=[f"p{i}x" for i in range(20)]))
    with pytest.raises(InvalidRequest, match="at most 20"):
        approvals.check_applicable(InstallPackages(packages=Packages(apt=["jq"]), reason=""), group(full))


def test_an_mcp_server_is_added_to_the_config_and_a_rebuild_needs_packages() -> None:
    assert approvals.apply_to_config(MCP, GroupConfig()).mcp_servers == {"search": MCP.server}
    with pytest.raises(InvalidRequest, match="nothing to rebuild"):
        approvals.check_applicable(RequestRebuild(reason=""), group())
    approvals.check_applicable(RequestRebuild(reason=""), group(GroupConfig(packages=Packages(pip=["rich"]))))
