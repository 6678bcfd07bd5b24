"""Which extra host directories a group's container may see, decided by an allowlist outside the project.

The allowlist lives where no container can reach it (never under the project
or the data directory, both of which agents may see), so an agent can never
widen its own access. Host paths are expanded and resolved through symlinks
before any check: a harmless-looking link into `~/.ssh` is judged as `~/.ssh`.
Every refusal names the path and the rule it broke.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from config.logs import get_logger
from events.model import AdditionalMount

EXTRA_MOUNT_BASE = "/workspace/extra"

DEFAULT_BLOCKED_PATTERNS = (
    ".ssh",
    ".gnupg",
    ".gpg",
    ".aws",
    ".azure",
    ".gcloud",
    ".kube",
    ".docker",
    "credentials",
    ".env",
    ".netrc",
    ".npmrc",
    ".pypirc",
    "id_rsa",
    "id_ed25519",
    "private_key",
    ".secret",
)

_CONTAINER_NAME = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")

log = get_logger("mount_security")


class AllowedRoot(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    path: str
    allow_read_write: bool = False
    description: str = ""


class MountAllowlist(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """The file's shape; missing switches default to the safer choice."""

    allowed_roots: list[AllowedRoot]
    blocked_patterns: list[str] = []
    non_main_read_only: bool = True


class Mount(msgspec.Struct, frozen=True, kw_only=True):
    """A bind mount that passed every check: real host path, absolute container path."""

    host_path: str
    container_path: str
    read_only: bool


class MountRefusal(msgspec.Struct, frozen=True, kw_only=True):
    host_path: str
    container_path: str | None
    rule: str
    detail: str

    @property
    def message(self) -> str:
        return f"mount {self.host_path!r} refused ({self.rule}): {self.detail}"


class MountValidation(msgspec.Struct, frozen=True, kw_only=True):
    mounts: list[Mount]
    refusals: list[MountRefusal]


class AllowlistError(ValueError):
    """The allowlist file exists but cannot be used; every extra mount is refused meanwhile."""


def load_allowlist(path: Path) -> MountAllowlist | None:
    """The allowlist with the default blocked patterns merged in, or None when the file does not exist."""
    if not path.is_file():
        return None
    try:
        allowlist = msgspec.json.decode(path.read_bytes(), type=MountAllowlist)
    except (OSError, msgspec.DecodeError) as exc:
        raise AllowlistError(f"cannot use mount allowlist {path}: {exc}") from None
    merged = list(dict.fromkeys([*DEFAULT_BLOCKED_PATTERNS, *allowlist.blocked_patterns]))
    return msgspec.structs.replace(allowlist, blocked_patterns=merged)


def _is_within(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def _blocked_pattern(real_path: Path, patterns: Iterable[str]) -> str | None:
    """The first pattern found in any component (or, for patterns with '/', anywhere in the path)."""
    text = str(real_path).casefold()
    parts = [part.casefold() for part in real_path.parts]
    for pattern in patterns:
        needle = pattern.casefold()
        if needle and (any(needle in part for part in parts) or ("/" in needle and needle in text)):
            return pattern
    return None


def _resolved_roots(allowlist: MountAllowlist) -> list[tuple[AllowedRoot, Path]]:
    """Roots that exist, expanded and resolved like the mounts they are compared with."""
    roots = []
    for root in allowlist.allowed_roots:
        expanded = Path(root.path).expanduser()
        if not expanded.is_absolute():
            log.warning("allowlist root ignored: not an absolute path", root=root.path)
            continue
        try:
            roots.append((root, expanded.resolve(strict=True)))
        except OSError:
            log.info("allowlist root ignored: does not exist", root=root.path)
    return roots


class _Refused(Exception):
    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


def _container_name(mount: AdditionalMount) -> str:
    name = mount.container_path if mount.container_path is not None else Path(mount.host_path).name
    if not name.strip():
        raise _Refused("container-path-invalid", "the container path is empty")
    if name.startswith("/"):
        raise _Refused("container-path-invalid", f"container path {name!r} must be relative to {EXTRA_MOUNT_BASE}")
    if ".." in name:
        raise _Refused("container-path-invalid", f"container path {name!r} must not contain '..'")
    if ":" in name:
        raise _Refused("container-path-invalid", f"container path {name!r} must not contain ':'")
    if not _CONTAINER_NAME.fullmatch(name) or any(part == "." for part in name.split("/")):
        raise _Refused(
            "container-path-invalid",
            f"container path {name!r} may only use letters, digits, '.', '_', '-' and '/' between names",
        )
    return name


def _real_host_path(mount: AdditionalMount) -> Path:
    expanded = Path(mount.host_path).expanduser()
    if not expanded.is_absolute():
        raise _Refused("host-path-not-absolute", f"{expanded} is neither absolute nor under '~'")
    try:
        return expanded.resolve(strict=True)
    except OSError:
        raise _Refused("host-path-missing", f"{expanded} does not exist") from None


def _check(
    mount: AdditionalMount,
    allowlist: MountAllowlist,
    roots: list[tuple[AllowedRoot, Path]],
    protected: Sequence[Path],
    *,
    is_admin: bool,
) -> Mount:
    name = _container_name(mount)
    real = _real_host_path(mount)
    pattern = _blocked_pattern(real, allowlist.blocked_patterns)
    if pattern is not None:
        raise _Refused("blocked-pattern", f"{real} matches blocked pattern {pattern!r}")
    for guarded in protected:
        if _is_within(real, guarded) or _is_within(guarded, real):
            raise _Refused("protected-path", f"{real} overlaps hermitcrab's own {guarded}")
    root = next((root for root, base in roots if _is_within(real, base)), None)
    if root is None:
        listed = ", ".join(str(base) for _, base in roots) or "none that exist"
        raise _Refused("not-under-allowed-root", f"{real} is not under an allowed root (roots: {listed})")
    wants_write = not mount.readonly
    may_write = root.allow_read_write and (is_admin or not allowlist.non_main_read_only)
    if wants_write and not may_write:
        log.info("extra mount forced read-only", host_path=str(real), root=root.path, is_admin=is_admin)
    return Mount(
        host_path=str(real), container_path=f"{EXTRA_MOUNT_BASE}/{name}", read_only=not (wants_write and may_write)
    )


def _refuse_all(mounts: Sequence[AdditionalMount], rule: str, detail: str) -> MountValidation:
    refusals = [
        MountRefusal(host_path=m.host_path, container_path=m.container_path, rule=rule, detail=detail) for m in mounts
    ]
    for refusal in refusals:
        log.warning("extra mount refused", host_path=refusal.host_path, rule=rule, detail=detail)
    return MountValidation(mounts=[], refusals=refusals)


def validate_additional_mounts(
    mounts: Sequence[AdditionalMount],
    *,
    allowlist_path: Path,
    is_admin: bool,
    protected: Sequence[Path] = (),
) -> MountValidation:
    """Split a group's requested extra mounts into validated Mounts and named refusals.

    `protected` are host paths no extra mount may contain or sit inside (the
    data directory, the allowlist itself). Without an allowlist file every
    extra mount is refused.
    """
    if not mounts:
        return MountValidation(mounts=[], refusals=[])
    try:
        allowlist = load_allowlist(allowlist_path)
    except AllowlistError as exc:
        return _refuse_all(mounts, "allowlist-invalid", str(exc))
    if allowlist is None:
        return _refuse_all(
            mounts, "no-allowlist", f"no mount allowlist at {allowlist_path}; create it to allow extra mounts"
        )
    roots = _resolved_roots(allowlist)
    guarded = [path.expanduser().resolve() for path in protected]
    accepted: list[Mount] = []
    refusals: list[MountRefusal] = []
    for mount in mounts:
        try:
            checked = _check(mount, allowlist, roots, guarded, is_admin=is_admin)
            if any(other.container_path == checked.container_path for other in accepted):
                raise _Refused(
                    "duplicate-container-path", f"{checked.container_path} is already taken by another mount"
                )
        except _Refused as refused:
            refusal = MountRefusal(
                host_path=mount.host_path, container_path=mount.container_path, rule=refused.rule, detail=refused.detail
            )
            log.warning("extra mount refused", host_path=mount.host_path, rule=refused.rule, detail=refused.detail)
            refusals.append(refusal)
            continue
        accepted.append(checked)
    return MountValidation(mounts=accepted, refusals=refusals)
