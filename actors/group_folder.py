"""Group folder names: the one place that decides which names may become a directory under groups_dir.

A folder name ends up in host paths and bind mounts, so it must be a single,
plain path component. Every refusal names the rule that failed, so an agent
asking for `create_agent` (or an admin typing a name) can fix its input.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

MAX_FOLDER_LENGTH = 64
RESERVED_FOLDERS = frozenset({"global"})
FALLBACK_FOLDER = "agent"

_ALLOWED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_NOT_ALLOWED_RUN = re.compile(r"[^a-z0-9]+")


class InvalidFolderError(ValueError):
    """A folder name broke a rule; `rule` says which, in words a user can act on."""

    def __init__(self, folder: str, rule: str) -> None:
        super().__init__(f"invalid group folder {folder!r}: {rule}")
        self.folder = folder
        self.rule = rule


def _taken(existing: Iterable[str]) -> set[str]:
    """Compare case-insensitively: two folders differing only in case collide on some filesystems."""
    return {name.casefold() for name in existing}


def validate_folder(folder: str, existing: Iterable[str] = ()) -> str:
    """Return `folder` unchanged when it is a safe, unused folder name; raise InvalidFolderError otherwise."""
    if not folder:
        raise InvalidFolderError(folder, "must not be empty")
    if "/" in folder or "\\" in folder:
        raise InvalidFolderError(folder, "must not contain path separators")
    if ".." in folder:
        raise InvalidFolderError(folder, "must not contain '..'")
    if folder.startswith("."):
        raise InvalidFolderError(folder, "must not start with a dot")
    if len(folder) > MAX_FOLDER_LENGTH:
        raise InvalidFolderError(folder, f"must be at most {MAX_FOLDER_LENGTH} characters")
    if not _ALLOWED.fullmatch(folder):
        raise InvalidFolderError(
            folder, "may only contain letters, digits, '-' and '_', and must start with a letter or digit"
        )
    if folder.casefold() in RESERVED_FOLDERS:
        raise InvalidFolderError(folder, "is reserved")
    if folder.casefold() in _taken(existing):
        raise InvalidFolderError(folder, "is already used by another group")
    return folder


def group_folder_path(groups_dir: Path, folder: str) -> Path:
    """The absolute directory of a group, checked to be a direct child of groups_dir."""
    validate_folder(folder)
    base = groups_dir.resolve()
    path = (base / folder).resolve()
    if path.parent != base:
        raise InvalidFolderError(folder, f"resolves outside {base}")
    return path


def _slug(name: str) -> str:
    """Lower-case ASCII words joined by '-': accents folded, everything else a separator."""
    ascii_text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return _NOT_ALLOWED_RUN.sub("-", ascii_text.lower()).strip("-")


def folder_from_name(name: str, existing: Iterable[str]) -> str:
    """Turn an agent's display name into a fresh folder: `Research Bot` -> `research-bot`, then `-2`, `-3`...

    The result always passes `validate_folder` against `existing`, so it is a
    single path component that stays directly under groups_dir.
    """
    taken = _taken(existing) | RESERVED_FOLDERS
    base = _slug(name)[:MAX_FOLDER_LENGTH].rstrip("-") or FALLBACK_FOLDER
    candidate = base
    counter = 1
    while candidate.casefold() in taken:
        counter += 1
        suffix = f"-{counter}"
        candidate = base[: MAX_FOLDER_LENGTH - len(suffix)].rstrip("-") + suffix
    return validate_folder(candidate, existing)
