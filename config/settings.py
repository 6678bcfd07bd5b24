"""One validated settings object, read from the environment and an optional `.env`.

Why one object: every actor gets the same frozen value at start-up, so a bad
value fails the start with a message naming the variable instead of surfacing
hours later inside a container spawn.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("auto", "claude", "echo")
CREDENTIAL_VARIABLES = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value the host cannot use; the message names the variable."""

    def __init__(self, variable: str, value: str, expected: str) -> None:
        super().__init__(f"{variable}={value!r} is invalid: expected {expected}")
        self.variable = variable
        self.value = value
        self.expected = expected


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the host needs to know about its environment, validated."""

    project_root: Path
    data_dir: Path
    groups_dir: Path
    mount_allowlist: Path
    image: str
    base_image: str | None  # None: the agent image builds on a base made from this machine's Debian sources
    idle_timeout_s: float
    tick_interval_s: float
    sweep_interval_s: float
    stuck_timeout_s: float
    hard_ceiling_s: float
    max_concurrent_containers: int
    timezone: str
    provider: str
    assistant_name: str
    container_memory: str
    container_cpus: float
    container_pids: int
    container_network: str
    log_format: str
    log_level: str
    channels: tuple[str, ...] = ("terminal",)
    delivery_sweep_interval_s: float = 60.0
    delivery_retry_base_s: float = 2.0
    agent_rate_limit: int = 10
    anthropic_upstream: str = "https://api.anthropic.com"
    proxy_port: int = 0
    anthropic_api_key: str | None = None
    claude_oauth_token: str | None = None
    approval_ttl_s: float = 24 * 3600.0
    retry_base_delay_s: float = 5.0
    max_tries: int = 5

    @property
    def central_db(self) -> Path:
        """The host-local event log and its projections."""
        return self.data_dir / "hermitcrab.db"

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"

    @property
    def instance_id(self) -> str:
        """A stable label value per data directory, so two installs never touch each other's containers."""
        return hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:12]

    @property
    def has_credentials(self) -> bool:
        return bool(self.anthropic_api_key or self.claude_oauth_token)

    @property
    def effective_provider(self) -> str:
        """`auto` means Claude when a credential is configured, the echo provider otherwise."""
        if self.provider != "auto":
            return self.provider
        return "claude" if self.has_credentials else "echo"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_MEMORY = re.compile(r"^\d+[bkmg]?$", re.IGNORECASE)


def _duration(text: str) -> float:
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError
    return float(match.group(1)) * _DURATION_FACTORS[match.group(2)]


def _positive_int(text: str) -> int:
    value = int(text.strip())
    if value < 1:
        raise ValueError
    return value


def _positive_float(text: str) -> float:
    value = float(text.strip())
    if value <= 0:
        raise ValueError
    return value


def _timezone(text: str) -> str:
    name = text.strip()
    if not name or name.startswith(("/", ":")):
        raise ValueError
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError from exc
    return name


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError
        return value

    return parse


def _memory(text: str) -> str:
    value = text.strip().lower()
    if not _MEMORY.match(value):
        raise ValueError
    return value


def _port(text: str) -> int:
    value = int(text.strip())
    if not 0 <= value <= 65535:
        raise ValueError
    return value


def _http_url(text: str) -> str:
    value = text.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise ValueError
    return value


def _channel_names(text: str) -> tuple[str, ...]:
    """A comma-separated list of adapter names; `none` enables no channel."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    if names == ("none",):
        return ()
    if not names or not all(re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name) for name in names):
        raise ValueError
    return names


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError
    return text.strip()


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError
    return Path(text.strip()).expanduser().resolve()


class _Reader:
    """Looks a variable up in the process environment first, then in `.env`."""

    def __init__(self, env: Mapping[str, str], dotenv: Mapping[str, str | None]) -> None:
        self._env = env
        self._dotenv = dotenv

    def raw(self, name: str) -> str | None:
        if name in self._env:
            return self._env[name]
        return self._dotenv.get(name)

    def get(self, name: str, parse: Callable[[str], T], default: T, expected: str) -> T:
        raw = self.raw(name)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except (ValueError, TypeError):
            raise SettingsError(name, raw, expected) from None


def _default_timezone(env: Mapping[str, str]) -> str:
    """The host's own zone when it can be named, else UTC."""
    try:
        link = os.readlink("/etc/localtime")
        name = link.split("zoneinfo/", 1)[1]
        return _timezone(name)
    except (OSError, IndexError, ValueError):
        return "UTC"


def load_settings(
    env: Mapping[str, str] | None = None,
    env_file: Path | None = None,
) -> Settings:
    """Read and validate every setting; raise SettingsError naming the first bad one."""
    environ = dict(os.environ if env is None else env)
    dotenv_path = env_file if env_file is not None else PROJECT_ROOT / ".env"
    dotenv = dotenv_values(dotenv_path) if dotenv_path.is_file() else {}
    read = _Reader(environ, dotenv)

    home = Path(environ.get("HOME", str(Path.home())))
    data_dir = read.get("HERMITCRAB_DATA_DIR", _path, (home / ".local/share/hermitcrab").resolve(), "a directory path")
    return Settings(
        project_root=PROJECT_ROOT,
        data_dir=data_dir,
        groups_dir=read.get("HERMITCRAB_GROUPS_DIR", _path, data_dir / "groups", "a directory path"),
        mount_allowlist=read.get(
            "HERMITCRAB_MOUNT_ALLOWLIST",
            _path,
            (home / ".config/hermitcrab/mount-allowlist.json").resolve(),
            "a file path",
        ),
        image=read.get("CONTAINER_IMAGE", _text, "hermitcrab-agent:latest", "an image name like name:tag"),
        base_image=read.get("HERMITCRAB_BASE_IMAGE", _text, None, "an image name"),
        idle_timeout_s=read.get("IDLE_TIMEOUT", _duration, 1800.0, "a positive duration like 1800, 90s, 30m or 1h"),
        tick_interval_s=read.get("HERMITCRAB_TICK_INTERVAL", _duration, 5.0, "a positive duration like 5s or 500ms"),
        sweep_interval_s=read.get("HERMITCRAB_SWEEP_INTERVAL", _duration, 60.0, "a positive duration like 60s"),
        stuck_timeout_s=read.get(
            "HERMITCRAB_STUCK_TIMEOUT", _duration, 600.0, "a positive duration like 10m (no heartbeat progress)"
        ),
        hard_ceiling_s=read.get(
            "HERMITCRAB_HARD_CEILING", _duration, 4 * 3600.0, "a positive duration like 4h (container lifetime)"
        ),
        max_concurrent_containers=read.get("MAX_CONCURRENT_CONTAINERS", _positive_int, 5, "a whole number >= 1"),
        timezone=read.get("TZ", _timezone, _default_timezone(environ), "an IANA time zone like Europe/Berlin"),
        provider=read.get("HERMITCRAB_PROVIDER", _choice(PROVIDERS), "auto", "one of " + ", ".join(PROVIDERS)),
        assistant_name=read.get("ASSISTANT_NAME", _text, "Crab", "a non-empty name"),
        container_memory=read.get("HERMITCRAB_CONTAINER_MEMORY", _memory, "2g", "a size like 512m or 2g"),
        container_cpus=read.get("HERMITCRAB_CONTAINER_CPUS", _positive_float, 1.0, "a positive number of CPUs"),
        container_pids=read.get("HERMITCRAB_CONTAINER_PIDS", _positive_int, 512, "a whole number >= 1"),
        container_network=read.get(
            "HERMITCRAB_CONTAINER_NETWORK",
            _choice(("bridge", "none", "host")),
            "bridge",
            "bridge (users), none or host (tests reaching 127.0.0.1)",
        ),
        log_format=read.get("HERMITCRAB_LOG_FORMAT", _choice(("console", "json")), "console", "console or json"),
        log_level=read.get(
            "HERMITCRAB_LOG_LEVEL",
            _choice(("debug", "info", "warning", "error")),
            "info",
            "debug, info, warning or error",
        ),
        channels=read.get(
            "HERMITCRAB_CHANNELS", _channel_names, ("terminal",), "channel adapter names like terminal,slack, or none"
        ),
        delivery_sweep_interval_s=read.get(
            "HERMITCRAB_DELIVERY_SWEEP_INTERVAL", _duration, 60.0, "a positive duration like 60s (delivery stragglers)"
        ),
        delivery_retry_base_s=read.get(
            "HERMITCRAB_DELIVERY_RETRY_BASE", _duration, 2.0, "a positive duration like 2s (first delivery retry)"
        ),
        agent_rate_limit=read.get(
            "HERMITCRAB_AGENT_RATE_LIMIT", _positive_int, 10, "a whole number >= 1 (agent-to-agent messages a minute)"
        ),
        anthropic_upstream=read.get(
            "HERMITCRAB_ANTHROPIC_UPSTREAM",
            _http_url,
            "https://api.anthropic.com",
            "an http(s) URL like https://api.anthropic.com (where the credential proxy sends model requests)",
        ),
        proxy_port=read.get(
            "HERMITCRAB_PROXY_PORT", _port, 0, "a port number 0-65535 (0: pick a free port once and keep it)"
        ),
        approval_ttl_s=read.get(
            "HERMITCRAB_APPROVAL_TTL",
            _duration,
            24 * 3600.0,
            "a positive duration like 24h (unanswered approvals expire)",
        ),
        retry_base_delay_s=read.get(
            "HERMITCRAB_RETRY_BASE_DELAY", _duration, 5.0, "a positive duration like 5s (first retry backoff)"
        ),
        max_tries=read.get("HERMITCRAB_MAX_TRIES", _positive_int, 5, "a whole number >= 1 (attempts per message)"),
        anthropic_api_key=read.raw("ANTHROPIC_API_KEY") or None,
        claude_oauth_token=read.raw("CLAUDE_CODE_OAUTH_TOKEN") or None,
    )
