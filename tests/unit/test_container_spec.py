from __future__ import annotations

import json
from pathlib import Path

import docker.types
import msgspec
import pytest

from actors import container_spec
from actors.container_spec import (
    ContainerSpec,
    ContainerSpecError,
    SpecMount,
    build_container_spec,
    container_user,
    mounts_digest,
)
from config.settings import Settings, load_settings
from events.model import AdditionalMount, AgentGroup, GroupConfig, McpServer, MessagingGroup, Session


@pytest.fixture
def cfg(settings: Settings, tmp_path: Path) -> Settings:
    project = tmp_path / "project"
    project.mkdir()
    return msgspec.structs.replace(settings, project_root=project)


def make_group(*, admin: bool = False, config: GroupConfig | None = None, provider: str | None = None) -> AgentGroup:
    return AgentGroup(
        id="ag-main" if admin else "ag-helper",
        name="Main" if admin else "Helper",
        folder="main" if admin else "helper",
        is_admin=admin,
        agent_provider=provider,
        config=config or GroupConfig(),
        created_at="2026-01-01 00:00:00",
    )


def make_session(group: AgentGroup, *, sid: str = "sess-1", provider: str | None = None) -> Session:
    return Session(
        id=sid,
        agent_group_id=group.id,
        messaging_group_id="mg-1",
        thread_id=None,
        agent_provider=provider,
        status="active",
        container_status="stopped",
        container_id=None,
        last_active=None,
        created_at="2026-01-01 00:00:00",
    )


MESSAGING = MessagingGroup(
    id="mg-1",
    channel_type="terminal",
    platform_id="tty",
    name=None,
    is_group=False,
    admin_user_id="user-42",
    created_at="2026-01-01 00:00:00",
)


def spec_for(
    cfg: Settings,
    group: AgentGroup,
    *,
    messaging: MessagingGroup | None = MESSAGING,
    extra_env: dict[str, str] | None = None,
) -> ContainerSpec:
    session = make_session(group)
    session_dir = cfg.sessions_dir / group.id / session.id
    return build_container_spec(cfg, group, session, messaging, session_dir=session_dir, extra_env=extra_env)


def by_target(spec: ContainerSpec) -> dict[str, SpecMount]:
    return {m.target: m for m in spec.mounts}


def test_non_admin_mounts(cfg: Settings) -> None:
    group = make_group()
    mounts = by_target(spec_for(cfg, group))
    state = cfg.data_dir / "groups-state" / "ag-helper"
    assert mounts == {
        "/workspace": SpecMount(str(cfg.sessions_dir / "ag-helper" / "sess-1"), "/workspace", False),
        "/workspace/inbound.db": SpecMount(
            str(cfg.sessions_dir / "ag-helper" / "sess-1" / "inbound.db"), "/workspace/inbound.db", True
        ),
        "/workspace/agent": SpecMount(str(cfg.groups_dir / "helper"), "/workspace/agent", False),
        "/workspace/global": SpecMount(str(cfg.groups_dir / "global"), "/workspace/global", True),
        "/home/agent/.claude": SpecMount(str(state / ".claude-shared"), "/home/agent/.claude", False),
        "/app/agent_runner": SpecMount(str(state / "agent-runner"), "/app/agent_runner", False),
    }
    assert not (cfg.project_root / ".env").exists()


def test_admin_mounts_project_read_only_with_env_shadowed(cfg: Settings) -> None:
    (cfg.project_root / ".env").write_text("ANTHROPIC_API_KEY=real-secret\n")
    mounts = by_target(spec_for(cfg, make_group(admin=True)))
    assert mounts["/workspace/global"].read_only is False
    assert mounts["/workspace/project"] == SpecMount(str(cfg.project_root), "/workspace/project", True)
    shadow = mounts["/workspace/project/.env"]
    assert shadow.read_only is True
    assert Path(shadow.source).parent == cfg.data_dir
    assert Path(shadow.source).read_bytes() == b""
    assert (cfg.project_root / ".env").read_text() == "ANTHROPIC_API_KEY=real-secret\n"


def test_admin_shadow_exists_even_without_a_project_env(cfg: Settings) -> None:
    mounts = by_target(spec_for(cfg, make_group(admin=True)))
    assert "/workspace/project/.env" in mounts
    placeholder = cfg.project_root / ".env"
    assert placeholder.read_bytes() == b""
    assert placeholder.stat().st_mode & 0o077 == 0


def test_shadow_file_is_emptied_if_someone_wrote_to_it(cfg: Settings) -> None:
    (cfg.data_dir).mkdir(parents=True)
    (cfg.data_dir / "empty").write_text("leak")
    mounts = by_target(spec_for(cfg, make_group(admin=True)))
    assert Path(mounts["/workspace/project/.env"].source).read_bytes() == b""


def test_environment_non_admin(cfg: Settings) -> None:
    env = spec_for(cfg, make_group()).environment
    assert env == {
        "TZ": "Pacific/Auckland",
        "HOME": "/home/agent",
        "AGENT_PROVIDER": "echo",
        "SESSION_INBOUND_DB_PATH": "/workspace/inbound.db",
        "SESSION_OUTBOUND_DB_PATH": "/workspace/outbound.db",
        "SESSION_HEARTBEAT_PATH": "/workspace/.heartbeat",
        "HERMITCRAB_ASSISTANT_NAME": cfg.assistant_name,
        "HERMITCRAB_AGENT_GROUP_ID": "ag-helper",
        "HERMITCRAB_AGENT_GROUP_NAME": "Helper",
        "HERMITCRAB_IS_ADMIN": "0",
        "HERMITCRAB_ADMIN_USER_ID": "user-42",
    }


def test_environment_admin_with_config_and_extra_env(cfg: Settings) -> None:
    config = GroupConfig(
        mcp_servers={"memory": McpServer(command="uvx", args=["mcp-memory"], env={"LEVEL": "1"})},
        model="claude-sonnet-4-5",
        effort="high",
    )
    env = spec_for(
        cfg,
        make_group(admin=True, config=config),
        messaging=None,
        extra_env={"ANTHROPIC_BASE_URL": "http://host.docker.internal:9000", "ANTHROPIC_API_KEY": "cap-token"},
    ).environment
    assert env["HERMITCRAB_IS_ADMIN"] == "1"
    assert "HERMITCRAB_ADMIN_USER_ID" not in env
    assert json.loads(env["HERMITCRAB_MCP_SERVERS"]) == {
        "memory": {"command": "uvx", "args": ["mcp-memory"], "env": {"LEVEL": "1"}}
    }
    assert env["HERMITCRAB_MODEL"] == "claude-sonnet-4-5"
    assert env["HERMITCRAB_EFFORT"] == "high"
    assert env["ANTHROPIC_BASE_URL"] == "http://host.docker.internal:9000"
    assert env["ANTHROPIC_API_KEY"] == "cap-token"


def test_extra_env_cannot_override_ours(cfg: Settings) -> None:
    with pytest.raises(ContainerSpecError, match="HERMITCRAB_IS_ADMIN"):
        spec_for(cfg, make_group(), extra_env={"HERMITCRAB_IS_ADMIN": "1"})


def test_provider_precedence(cfg: Settings) -> None:
    group = make_group(provider="claude")
    session_dir = cfg.sessions_dir / "x"
    assert spec_for(cfg, group).environment["AGENT_PROVIDER"] == "claude"
    own = build_container_spec(cfg, group, make_session(group, provider="echo"), None, session_dir=session_dir)
    assert own.environment["AGENT_PROVIDER"] == "echo"


def test_assistant_name_falls_back_to_group_name(cfg: Settings) -> None:
    unnamed = msgspec.structs.replace(cfg, assistant_name="")
    assert spec_for(unnamed, make_group()).environment["HERMITCRAB_ASSISTANT_NAME"] == "Helper"


def test_labels_name_and_image(cfg: Settings) -> None:
    spec = spec_for(cfg, make_group())
    assert spec.labels == {
        "hermitcrab.session": "sess-1",
        "hermitcrab.group": "ag-helper",
        "hermitcrab.instance": cfg.instance_id,
    }
    assert spec.name == f"hermitcrab-{cfg.instance_id}-sess-1"
    assert spec.image == cfg.image
    tagged = spec_for(cfg, make_group(config=GroupConfig(image_tag="hermitcrab-agent:ag-helper")))
    assert tagged.image == "hermitcrab-agent:ag-helper"


@pytest.mark.parametrize("sid", ["bad id", "a/b", "x;rm", "é", "sess\n", "s" * 200])
def test_session_ids_that_make_bad_container_names_are_refused(cfg: Settings, sid: str) -> None:
    group = make_group()
    with pytest.raises(ContainerSpecError, match="container name"):
        build_container_spec(cfg, group, make_session(group, sid=sid), None, session_dir=cfg.sessions_dir / "s")


def test_session_of_another_group_is_refused(cfg: Settings) -> None:
    helper = make_group()
    with pytest.raises(ContainerSpecError, match="belongs to"):
        build_container_spec(cfg, make_group(admin=True), make_session(helper), None, session_dir=cfg.sessions_dir)


def test_relative_session_dir_is_refused(cfg: Settings) -> None:
    group = make_group()
    with pytest.raises(ContainerSpecError, match="absolute"):
        build_container_spec(cfg, group, make_session(group), None, session_dir=Path("sessions/x"))


def test_user_mapping() -> None:
    assert container_user(0, 0) == "1000:1000"
    assert container_user(1001, 1002) == "1001:1002"


def test_spec_uses_the_host_ids(cfg: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container_spec.os, "getuid", lambda: 501)
    monkeypatch.setattr(container_spec.os, "getgid", lambda: 20)
    assert spec_for(cfg, make_group()).user == "501:20"
    monkeypatch.setattr(container_spec.os, "getuid", lambda: 0)
    monkeypatch.setattr(container_spec.os, "getgid", lambda: 0)
    assert spec_for(cfg, make_group()).user == "1000:1000"


def test_resources_default_and_override(cfg: Settings) -> None:
    spec = spec_for(cfg, make_group())
    assert (spec.mem_limit, spec.nano_cpus, spec.pids_limit) == (cfg.container_memory, 1_000_000_000, 512)
    custom = spec_for(cfg, make_group(config=GroupConfig(memory="512M", cpus=0.5, pids=64)))
    assert (custom.mem_limit, custom.nano_cpus, custom.pids_limit) == ("512m", 500_000_000, 64)


@pytest.mark.parametrize(
    ("config", "field"),
    [(GroupConfig(memory="lots"), "memory"), (GroupConfig(cpus=0), "cpus"), (GroupConfig(pids=0), "pids")],
)
def test_bad_resource_overrides_are_refused(cfg: Settings, config: GroupConfig, field: str) -> None:
    with pytest.raises(ContainerSpecError, match=field):
        spec_for(cfg, make_group(config=config))


def test_network_and_host_gateway(settings_env: dict[str, str], tmp_path: Path) -> None:
    bridge = load_settings(env=settings_env, env_file=tmp_path / "no.env")
    spec = spec_for(msgspec.structs.replace(bridge, project_root=tmp_path), make_group())
    assert spec.network_mode == "bridge"
    assert spec.extra_hosts == {"host.docker.internal": "host-gateway"}
    for mode in ("none", "host"):
        isolated = load_settings(env={**settings_env, "HERMITCRAB_CONTAINER_NETWORK": mode}, env_file=tmp_path / "no")
        spec = spec_for(isolated, make_group())
        assert spec.network_mode == mode
        assert spec.extra_hosts == {}
        assert "extra_hosts" not in spec.create_kwargs()


def test_extra_mounts_are_validated(cfg: Settings, tmp_path: Path) -> None:
    code = tmp_path / "home/code/webapp"
    code.mkdir(parents=True)
    (tmp_path / "home/code/.ssh").mkdir()
    cfg.mount_allowlist.parent.mkdir(parents=True)
    cfg.mount_allowlist.write_text(json.dumps({"allowedRoots": [{"path": str(code.parent), "allowReadWrite": True}]}))
    config = GroupConfig(
        additional_mounts=[
            AdditionalMount(host_path=str(code), readonly=False),
            AdditionalMount(host_path=str(tmp_path / "home/code/.ssh")),
            AdditionalMount(host_path=str(cfg.data_dir.parent)),
        ]
    )
    spec = spec_for(cfg, make_group(config=config))
    assert by_target(spec)["/workspace/extra/webapp"] == SpecMount(str(code), "/workspace/extra/webapp", True)
    assert [r.rule for r in spec.refused_mounts] == ["blocked-pattern", "protected-path"]
    assert len(spec.mounts) == 7


def test_extra_mounts_without_allowlist_are_all_refused(cfg: Settings, tmp_path: Path) -> None:
    config = GroupConfig(additional_mounts=[AdditionalMount(host_path=str(tmp_path))])
    spec = spec_for(cfg, make_group(config=config))
    assert len(spec.mounts) == 6
    assert [r.rule for r in spec.refused_mounts] == ["no-allowlist"]


def test_digest_is_stable_and_order_independent(cfg: Settings) -> None:
    first = spec_for(cfg, make_group())
    again = spec_for(cfg, make_group())
    assert first.mounts_digest == again.mounts_digest
    assert mounts_digest(tuple(reversed(first.mounts))) == first.mounts_digest
    assert spec_for(cfg, make_group(admin=True)).mounts_digest != first.mounts_digest
    flipped = tuple(SpecMount(m.source, m.target, not m.read_only) for m in first.mounts)
    assert mounts_digest(flipped) != first.mounts_digest


def test_create_kwargs(cfg: Settings) -> None:
    spec = spec_for(cfg, make_group(), extra_env={"ANTHROPIC_API_KEY": "cap"})
    kwargs = spec.create_kwargs()
    assert kwargs["detach"] is True
    assert kwargs["init"] is True
    assert "auto_remove" not in kwargs
    assert kwargs["name"] == spec.name
    assert kwargs["image"] == spec.image
    assert kwargs["environment"]["ANTHROPIC_API_KEY"] == "cap"
    assert kwargs["labels"] == spec.labels
    assert (kwargs["user"], kwargs["mem_limit"], kwargs["nano_cpus"], kwargs["pids_limit"]) == (
        spec.user,
        spec.mem_limit,
        spec.nano_cpus,
        spec.pids_limit,
    )
    assert kwargs["extra_hosts"] == {"host.docker.internal": "host-gateway"}
    mounts = kwargs["mounts"]
    assert all(isinstance(m, docker.types.Mount) for m in mounts)
    global_mount = next(m for m in mounts if m["Target"] == "/workspace/global")
    assert global_mount["Type"] == "bind"
    assert global_mount["ReadOnly"] is True
    assert global_mount["Source"] == str(cfg.groups_dir / "global")
