"""One-time filesystem init of an agent group: after it ran, the group owns these files.

Every step runs only when its target is missing and never overwrites: an agent
that edited its CLAUDE.md, its skills or its own runner keeps its changes
across spawns and host upgrades. Spawning only mounts what this created.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

from actors.group_folder import group_folder_path
from config.logs import get_logger
from config.settings import Settings
from events.model import AgentGroup

GLOBAL_IMPORT = "@/workspace/global/CLAUDE.md"
GLOBAL_FOLDER = "global"
CLAUDE_MD = "CLAUDE.md"

# Claude Code behaviour every group starts with: agent teams on, CLAUDE.md files
# of extra directories loaded, auto-memory kept.
CLAUDE_CODE_ENV = {
    "CLAUDE_CODE_EXPERIMENTAL_AGENT_TEAMS": "1",
    "CLAUDE_CODE_ADDITIONAL_DIRECTORIES_CLAUDE_MD": "1",
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "0",
}

# The image's non-root `agent` user; a root host hands it the trees it must write.
AGENT_UID = 1000
AGENT_GID = 1000

_GROUP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")

log = get_logger("group_fs")


class GroupPaths(NamedTuple):
    """Where a group's state lives on the host."""

    group_dir: Path
    global_dir: Path
    state_dir: Path
    claude_shared: Path
    runner: Path


def group_paths(settings: Settings, group: AgentGroup) -> GroupPaths:
    """The host paths of a group; the folder and id are validated so no path escapes its base."""
    if not _GROUP_ID.fullmatch(group.id):
        raise ValueError(f"invalid agent group id {group.id!r}: letters, digits, '.', '_' and '-' only")
    state_dir = settings.data_dir / "groups-state" / group.id
    return GroupPaths(
        group_dir=group_folder_path(settings.groups_dir, group.folder),
        global_dir=settings.groups_dir / GLOBAL_FOLDER,
        state_dir=state_dir,
        claude_shared=state_dir / ".claude-shared",
        runner=state_dir / "agent-runner",
    )


def _template(settings: Settings, folder: str) -> str | None:
    path = settings.project_root / "groups" / folder / CLAUDE_MD
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _without_import(text: str) -> str:
    """Template text with a leading global import removed, so it is never written twice."""
    first, _, rest = text.partition("\n")
    return rest.lstrip("\n") if first.strip() == GLOBAL_IMPORT else text


def group_claude_md(settings: Settings, group: AgentGroup, instructions: str | None) -> str:
    """The first CLAUDE.md of a group: the global import, a blank line, then its own memory.

    The admin group starts from the shipped `groups/main` template (its extra
    powers), followed by any instructions it was created with.
    """
    parts: list[str] = []
    admin_template = _template(settings, "main") if group.is_admin else None
    if admin_template is not None:
        parts.append(_without_import(admin_template).strip("\n"))
    if instructions is not None and instructions.strip():
        parts.append(instructions.strip("\n"))
    if not parts:
        parts.append(f"# {group.name}")
    return "\n\n".join([GLOBAL_IMPORT, *parts]) + "\n"


def _mkdir_new(path: Path) -> bool:
    """Create a directory only if absent; another group's init creating it first is not an error."""
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        return False
    return True


def _write_new(path: Path, text: str) -> bool:
    """Create a file only if absent; exclusive create makes a concurrent writer lose instead of clobber."""
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        return False
    return True


def _copy_tree_new(source: Path, target: Path) -> bool:
    """Copy a directory only if the target is absent, via a hidden sibling so a crash leaves no half copy."""
    if target.exists() or not source.is_dir():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    partial.chmod(0o755)
    try:
        shutil.copytree(source, partial, ignore=_COPY_IGNORE, symlinks=True, dirs_exist_ok=True)
        partial.rename(target)
    except OSError:
        if target.exists():  # a concurrent init finished first: its copy stands
            return False
        raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return True


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid, follow_symlinks=False)
    if root.is_dir() and not root.is_symlink():
        for directory, dirnames, filenames in os.walk(root):
            for name in (*dirnames, *filenames):
                os.chown(os.path.join(directory, name), uid, gid, follow_symlinks=False)


def give_to_agent(*paths: Path) -> None:
    """On a root host, hand these folders (not their contents) to the container's agent user so it can write in them."""
    if os.geteuid() != 0:
        return
    for path in paths:
        os.chown(path, AGENT_UID, AGENT_GID, follow_symlinks=False)


def init_group_filesystem(settings: Settings, group: AgentGroup, instructions: str | None = None) -> list[str]:
    """Create whatever of the group's files is missing and return the names of the steps that ran.

    A second call on an initialized group returns an empty list and touches nothing.
    """
    paths = group_paths(settings, group)
    steps: list[str] = []
    created: list[Path] = []

    def step(name: str, ran: bool, path: Path) -> None:
        if ran:
            steps.append(name)
            created.append(path)

    step("group-dir", _mkdir_new(paths.group_dir), paths.group_dir)
    claude_md = paths.group_dir / CLAUDE_MD
    step(CLAUDE_MD, _write_new(claude_md, group_claude_md(settings, group, instructions)), claude_md)

    step("global-dir", _mkdir_new(paths.global_dir), paths.global_dir)
    global_template = _template(settings, GLOBAL_FOLDER)
    if global_template is not None:
        global_md = paths.global_dir / CLAUDE_MD
        step(f"{GLOBAL_FOLDER}/{CLAUDE_MD}", _write_new(global_md, global_template), global_md)

    if _mkdir_new(paths.state_dir):
        created.append(paths.state_dir)
    step(".claude-shared", _mkdir_new(paths.claude_shared), paths.claude_shared)
    settings_json = paths.claude_shared / "settings.json"
    step(
        "settings.json", _write_new(settings_json, json.dumps({"env": CLAUDE_CODE_ENV}, indent=2) + "\n"), settings_json
    )
    skills = paths.claude_shared / "skills"
    step("skills/", _copy_tree_new(settings.project_root / "container" / "skills", skills), skills)
    step(
        "agent-runner/",
        _copy_tree_new(settings.project_root / "container" / "agent_runner", paths.runner),
        paths.runner,
    )

    if os.geteuid() == 0:
        for path in created:
            _chown_tree(path, AGENT_UID, AGENT_GID)
    if steps:
        log.info("group filesystem initialized", group_id=group.id, folder=group.folder, steps=steps)
    return steps
