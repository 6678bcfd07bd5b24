"""One-shot data migrations of an existing install.

`migrate_group_claude_md`: groups created before global memory became an
`@`-import get the import line prepended to their CLAUDE.md, so Claude Code
loads `/workspace/global/CLAUDE.md` for them too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import msgspec

from actors.group_fs import CLAUDE_MD, GLOBAL_FOLDER, GLOBAL_IMPORT

Outcome = Literal["updated", "already-wired", "no-claude-md"]

# Only the import form at the start of a line counts: prose that mentions the
# path ("you may edit /workspace/global/CLAUDE.md") does not wire anything.
_IMPORT = re.compile(r"^[ \t]*" + re.escape(GLOBAL_IMPORT) + r"(?=\s|$)", re.MULTILINE)


class GlobalMemoryMissing(Exception):
    """Without a global CLAUDE.md the import would point at nothing; the migration refuses to run."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no global CLAUDE.md at {path}")
        self.path = path


class GroupMigration(msgspec.Struct, frozen=True, kw_only=True):
    folder: str
    outcome: Outcome


class MigrationReport(msgspec.Struct, frozen=True, kw_only=True):
    groups_dir: str
    groups: list[GroupMigration]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for group in self.groups if group.outcome == outcome)

    @property
    def summary(self) -> dict[str, int]:
        return {
            "updated": self.count("updated"),
            "already_wired": self.count("already-wired"),
            "no_claude_md": self.count("no-claude-md"),
        }


def has_global_import(text: str) -> bool:
    return _IMPORT.search(text) is not None


def _prepend_import(path: Path, body: str) -> None:
    """Rewrite via a sibling and rename, keeping owner and mode so the group's agent can still edit its file."""
    status = path.stat()
    staged = path.with_name(f".{path.name}.migrating")
    staged.write_text(f"{GLOBAL_IMPORT}\n\n{body}", encoding="utf-8")
    os.chmod(staged, status.st_mode & 0o7777)
    if os.geteuid() == 0:
        os.chown(staged, status.st_uid, status.st_gid)
    staged.replace(path)


def migrate_group_claude_md(groups_dir: Path) -> MigrationReport:
    """Prepend the global import to every group's CLAUDE.md that lacks it; report one outcome per group."""
    global_md = groups_dir / GLOBAL_FOLDER / CLAUDE_MD
    if not global_md.is_file():
        raise GlobalMemoryMissing(global_md)
    results: list[GroupMigration] = []
    for entry in sorted(groups_dir.iterdir()):
        if not entry.is_dir() or entry.name == GLOBAL_FOLDER or entry.name.startswith("."):
            continue
        claude_md = entry / CLAUDE_MD
        if not claude_md.is_file():
            results.append(GroupMigration(folder=entry.name, outcome="no-claude-md"))
            continue
        body = claude_md.read_text(encoding="utf-8")
        if has_global_import(body):
            results.append(GroupMigration(folder=entry.name, outcome="already-wired"))
            continue
        _prepend_import(claude_md, body)
        results.append(GroupMigration(folder=entry.name, outcome="updated"))
    return MigrationReport(groups_dir=str(groups_dir), groups=results)
