"""Everything Docker needs to start one session's container, computed from plain values.

The spec is a value, so the SessionActor can record its digest, compare it with
a running container's, and tests can check mounts and environment without an
engine. Its one side effect is making sure the admin group's `.env` shadow files
exist (see `ensure_env_shadow`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docker.types
import msgspec

from actors.group_fs import group_paths
from actors.mount_security import MountRefusal, validate_additional_mounts
from config.logs import get_logger
from config.settings import Settings
from events.model import AgentGroup, MessagingGroup, Session

LABEL_SESSION = "hermitcrab.session"
LABEL_GROUP = "hermitcrab.group"
LABEL_INSTANCE = "hermitcrab.instance"

CONTAINER_HOME = "/home/agent"
AGENT_USER = "1000:1000"
MAX_NAME_LENGTH = 200

# Docker's own rule for container names.
_DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_MEMORY = re.compile(r"^\d+[bkmg]?$", re.IGNORECASE)

log = get_logger("container_spec")


class ContainerSpecError(ValueError):
    """The inputs cannot make a safe container; the message says which input."""


class SpecMount(msgspec.Struct, frozen=True):
    source: str
    target: str
    read_only: bool


class ContainerSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    image: str
    mounts: tuple[SpecMount, ...]
    environment: dict[str, str]
    labels: dict[str, str]
    user: str
    mem_limit: str
    nano_cpus: int
    pids_limit: int
    network_mode: str
    extra_hosts: dict[str, str]
    mounts_digest: str
    refused_mounts: tuple[MountRefusal, ...] = ()
    init: bool = True

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `docker_client.containers.create(**kwargs)`.

        Bind mounts use the API's Mount objects, which refuse a missing source
        instead of silently creating a root-owned directory. No auto_remove:
        the exit code is read first, then the container removed.
        """
        kwargs: dict[str, Any] = {
            "image": self.image,
            "name": self.name,
            "detach": True,
            "environment": dict(self.environment),
            "labels": dict(self.labels),
            "mounts": [
                docker.types.Mount(target=m.target, source=m.source, type="bind", read_only=m.read_only)
                for m in self.mounts
            ],
            "user": self.user,
            "mem_limit": self.mem_limit,
            "nano_cpus": self.nano_cpus,
            "pids_limit": self.pids_limit,
            "init": self.init,
            "network_mode": self.network_mode,
        }
        if self.extra_hosts:
            kwargs["extra_hosts"] = dict(self.extra_hosts)
        return kwargs


def container_name(settings: Settings, session_id: str) -> str:
    """`hermitcrab-<instance>-<session>`: deterministic, so a second create for one session fails with 409."""
    name = f"hermitcrab-{settings.instance_id}-{session_id}"
    if len(name) > MAX_NAME_LENGTH or not _DOCKER_NAME.fullmatch(name):
        raise ContainerSpecError(
            f"session id {session_id!r} makes an invalid container name {name!r}: "
            f"letters, digits, '_', '.' and '-' only, at most {MAX_NAME_LENGTH} characters"
        )
    return name


def container_user(uid: int, gid: int) -> str:
    """A root host runs the agent as the image's `agent` user; anyone else as themselves, so files stay theirs."""
    return AGENT_USER if uid == 0 else f"{uid}:{gid}"


def mounts_digest(mounts: tuple[SpecMount, ...]) -> str:
    """A stable fingerprint of what a container sees, independent of mount order."""
    triples = sorted((m.source, m.target, "ro" if m.read_only else "rw") for m in mounts)
    return hashlib.sha256(json.dumps(triples).encode()).hexdigest()


def ensure_env_shadow(settings: Settings) -> Path | None:
    """The empty file to mount over the project's `.env` in the admin container, or None if none is needed.

    Docker cannot create a mount point inside a read-only bind mount, so a
    project without `.env` gets an empty placeholder: the shadow then always
    applies, and a `.env` written later can never leak into a running admin.
    Only a project where no placeholder can be written (and so no `.env`
    either) goes without a shadow.
    """
    shadow = settings.data_dir / "empty"
    shadow.parent.mkdir(parents=True, exist_ok=True)
    if not shadow.is_file() or shadow.stat().st_size:
        shadow.write_bytes(b"")
    placeholder = settings.project_root / ".env"
    if not placeholder.exists():
        try:
            placeholder.touch(mode=0o600)
        except OSError as exc:
            log.warning("project .env not shadowed: cannot create a placeholder", path=str(placeholder), error=str(exc))
            return None
    return shadow


def _resources(settings: Settings, group: AgentGroup) -> tuple[str, int, int]:
    config = group.config
    memory = config.memory or settings.container_memory
    if not _MEMORY.fullmatch(memory):
        raise ContainerSpecError(f"group {group.id} memory {memory!r} is invalid: expected a size like 512m or 2g")
    cpus = settings.container_cpus if config.cpus is None else config.cpus
    if cpus <= 0:
        raise ContainerSpecError(f"group {group.id} cpus {cpus!r} is invalid: expected a positive number")
    pids = settings.container_pids if config.pids is None else config.pids
    if pids < 1:
        raise ContainerSpecError(f"group {group.id} pids {pids!r} is invalid: expected a whole number >= 1")
    return memory.lower(), round(cpus * 1_000_000_000), pids


def _environment(
    settings: Settings,
    group: AgentGroup,
    session: Session,
    messaging_group: MessagingGroup | None,
    extra_env: Mapping[str, str],
) -> dict[str, str]:
    env = {
        "TZ": settings.timezone,
        "HOME": CONTAINER_HOME,
        "AGENT_PROVIDER": session.agent_provider or group.agent_provider or settings.effective_provider,
        "SESSION_INBOUND_DB_PATH": "/workspace/inbound.db",
        "SESSION_OUTBOUND_DB_PATH": "/workspace/outbound.db",
        "SESSION_HEARTBEAT_PATH": "/workspace/.heartbeat",
        "HERMITCRAB_ASSISTANT_NAME": settings.assistant_name or group.name,
        "HERMITCRAB_AGENT_GROUP_ID": group.id,
        "HERMITCRAB_AGENT_GROUP_NAME": group.name,
        "HERMITCRAB_IS_ADMIN": "1" if group.is_admin else "0",
    }
    if messaging_group is not None and messaging_group.admin_user_id:
        env["HERMITCRAB_ADMIN_USER_ID"] = messaging_group.admin_user_id
    if group.config.mcp_servers:
        env["HERMITCRAB_MCP_SERVERS"] = msgspec.json.encode(group.config.mcp_servers).decode()
    if group.config.model:
        env["HERMITCRAB_MODEL"] = group.config.model
    if group.config.effort:
        env["HERMITCRAB_EFFORT"] = group.config.effort
    clashes = sorted(set(env) & set(extra_env))
    if clashes:
        raise ContainerSpecError(f"extra environment may not override {', '.join(clashes)}")
    return {**env, **extra_env}


def _mounts(
    settings: Settings, group: AgentGroup, session_dir: Path
) -> tuple[tuple[SpecMount, ...], tuple[MountRefusal, ...]]:
    if not session_dir.is_absolute():
        raise ContainerSpecError(f"session folder {session_dir} must be an absolute path")
    paths = group_paths(settings, group)
    mounts = [
        SpecMount(str(session_dir), "/workspace", False),
        # The host is inbound.db's only writer: the container gets the file read-only, so it can neither
        # write nor replace it even though it may write the rest of its session folder.
        SpecMount(str(session_dir / "inbound.db"), "/workspace/inbound.db", True),
        SpecMount(str(paths.group_dir), "/workspace/agent", False),
        SpecMount(str(paths.global_dir), "/workspace/global", not group.is_admin),
        SpecMount(str(paths.claude_shared), f"{CONTAINER_HOME}/.claude", False),
        SpecMount(str(paths.runner), "/app/agent_runner", False),
    ]
    if group.is_admin:
        mounts.append(SpecMount(str(settings.project_root), "/workspace/project", True))
        shadow = ensure_env_shadow(settings)
        if shadow is not None:
            mounts.append(SpecMount(str(shadow), "/workspace/project/.env", True))
    extra = validate_additional_mounts(
        group.config.additional_mounts,
        allowlist_path=settings.mount_allowlist,
        is_admin=group.is_admin,
        protected=(settings.data_dir, settings.groups_dir, settings.mount_allowlist, settings.project_root),
    )
    mounts.extend(SpecMount(m.host_path, m.container_path, m.read_only) for m in extra.mounts)
    return tuple(mounts), tuple(extra.refusals)


def build_container_spec(
    settings: Settings,
    group: AgentGroup,
    session: Session,
    messaging_group: MessagingGroup | None,
    *,
    session_dir: Path,
    extra_env: Mapping[str, str] | None = None,
) -> ContainerSpec:
    """The container for one session of one group, per the container conventions.

    `extra_env` carries what only the caller knows (the credential proxy's base
    URL and per-container token); it may add variables but not replace ours.
    """
    if session.agent_group_id != group.id:
        raise ContainerSpecError(f"session {session.id} belongs to group {session.agent_group_id}, not {group.id}")
    mounts, refused = _mounts(settings, group, session_dir)
    mem_limit, nano_cpus, pids_limit = _resources(settings, group)
    bridge = settings.container_network == "bridge"
    return ContainerSpec(
        name=container_name(settings, session.id),
        image=group.config.image_tag or settings.image,
        mounts=mounts,
        environment=_environment(settings, group, session, messaging_group, extra_env or {}),
        labels={LABEL_SESSION: session.id, LABEL_GROUP: group.id, LABEL_INSTANCE: settings.instance_id},
        user=container_user(os.getuid(), os.getgid()),
        mem_limit=mem_limit,
        nano_cpus=nano_cpus,
        pids_limit=pids_limit,
        network_mode=settings.container_network,
        extra_hosts={"host.docker.internal": "host-gateway"} if bridge else {},
        mounts_digest=mounts_digest(mounts),
        refused_mounts=refused,
    )
