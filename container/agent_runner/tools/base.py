"""The agent's tools, independent of how they are served.

A tool is a name, a description, a JSON schema and a plain function from
(context, arguments) to a `ToolResult`. The Claude provider serves them as an
in-process MCP server; the echo provider can call them directly. Every tool
checks its own input (a caller may bypass the schema) and answers a problem
with a clear error result; `ToolBox.call` turns any unexpected exception into
an error result too, so a tool never raises into the provider.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent_runner.config import RunnerConfig
from agent_runner.db import SessionDb
from agent_runner.routes import Route
from agent_runner.wake import ChangeSignal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolResult:
    text: str
    is_error: bool = False


def ok(text: str) -> ToolResult:
    return ToolResult(text)


class ToolInputError(ValueError):
    """Bad arguments; the message is shown to the agent as `Error: <message>`."""


@dataclass
class Conversation:
    """What the agent is answering right now; the poll loop updates it for each batch it hands over."""

    origin: Route | None = None
    in_reply_to: str | None = None


class AwaitedQuestions:
    """Question ids a tool is waiting on; the poll loop leaves their answers to that tool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def add(self, question_id: str) -> None:
        with self._lock:
            self._ids.add(question_id)

    def discard(self, question_id: str) -> None:
        with self._lock:
            self._ids.discard(question_id)

    def __contains__(self, question_id: object) -> bool:
        with self._lock:
            return question_id in self._ids


@dataclass
class ToolContext:
    db: SessionDb
    config: RunnerConfig
    signal: ChangeSignal
    conversation: Conversation = field(default_factory=Conversation)
    questions: AwaitedQuestions = field(default_factory=AwaitedQuestions)


Handler = Callable[[ToolContext, Mapping[str, Any]], ToolResult]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    schema: dict[str, Any]
    handler: Handler
    admin_only: bool = False


class ToolBox:
    """The tools one runner offers, bound to its context."""

    def __init__(self, context: ToolContext, specs: Iterable[ToolSpec]) -> None:
        self.context = context
        self.specs = {spec.name: spec for spec in specs}

    def call(self, name: str, args: Mapping[str, Any] | None) -> ToolResult:
        spec = self.specs.get(name)
        if spec is None:
            return ToolResult(f"Error: unknown tool {name!r}; available: {', '.join(sorted(self.specs))}", True)
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            return ToolResult("Error: arguments must be a JSON object", True)
        try:
            check_keys(args, spec.schema.get("properties", {}).keys())
            return spec.handler(self.context, args)
        except ToolInputError as exc:
            return ToolResult(f"Error: {exc}", True)
        except Exception as exc:
            log.exception("tool %s failed", name)
            return ToolResult(f"Error: {name} failed inside the runner: {exc}", True)


# -- argument checks -----------------------------------------------------------------------


def check_keys(args: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ToolInputError(f"unknown argument(s): {', '.join(unknown)}")


def text_arg(args: Mapping[str, Any], key: str, *, max_len: int = 20_000) -> str:
    """A required, non-blank string."""
    value = optional_text(args, key, max_len=max_len)
    if value is None:
        raise ToolInputError(f"{key} is required")
    return value


def optional_text(args: Mapping[str, Any], key: str, *, max_len: int = 20_000) -> str | None:
    """A string or nothing; blank counts as nothing."""
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ToolInputError(f"{key} must be a string, not {type(value).__name__}")
    if len(value) > max_len:
        raise ToolInputError(f"{key} is too long ({len(value)} characters; at most {max_len})")
    return value if value.strip() else None


def int_arg(args: Mapping[str, Any], key: str, *, minimum: int = 1) -> int:
    value = args.get(key)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ToolInputError(f"{key} must be an integer")
    if value < minimum:
        raise ToolInputError(f"{key} must be at least {minimum}")
    return value


def number_arg(args: Mapping[str, Any], key: str, *, default: float, minimum: float, maximum: float) -> float:
    value = args.get(key)
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ToolInputError(f"{key} must be a number")
    if not minimum <= value <= maximum:
        raise ToolInputError(f"{key} must be between {minimum:g} and {maximum:g}")
    return float(value)


def string_list(args: Mapping[str, Any], key: str, *, max_items: int, max_len: int = 200) -> list[str]:
    """An optional list of non-blank strings (empty when absent)."""
    value = args.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ToolInputError(f"{key} must be a list of strings")
    if len(value) > max_items:
        raise ToolInputError(f"{key} has {len(value)} items; at most {max_items}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ToolInputError(f"{key} must hold non-empty strings only")
        if len(item) > max_len:
            raise ToolInputError(f"an item of {key} is too long (at most {max_len} characters)")
    return list(value)


def schema(properties: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON schema for an object tool input."""
    return {"type": "object", "properties": properties, "required": list(required)}
