"""The provider contract: what the poll loop needs from an agent backend.

A provider starts a *query*: a live conversation turn-taker fed by `push` and
reporting through a sink of events, from its own thread. The poll loop never
blocks on a provider; it waits on one signal for both provider events and
inbound changes.

Events:
- Init(continuation): the provider's handle for this conversation; the loop
  stores it at once (keyed by provider name) so a crash still resumes.
- Result(text, covers): one answer; `covers` names the pushed prompts (tokens)
  the answer took in, or None for "everything pushed so far".
- Error(message, retryable, classification): a problem the provider reports
  and may recover from (an API retry, a rate limit).
- Progress(message) / Activity(): signs of life; the loop touches the heartbeat.
- Finished(error, reply): the query is over. With an error, the loop answers
  the waiting messages with `reply` if given, else `Error: <error>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from agent_runner.config import RunnerConfig
from agent_runner.tools.base import ToolBox


@dataclass(frozen=True)
class Init:
    continuation: str


@dataclass(frozen=True)
class Result:
    text: str | None
    covers: frozenset[str] | None = None


@dataclass(frozen=True)
class Error:
    message: str
    retryable: bool
    classification: str | None = None


@dataclass(frozen=True)
class Progress:
    message: str


@dataclass(frozen=True)
class Activity:
    pass


@dataclass(frozen=True)
class Finished:
    error: str | None = None
    reply: str | None = None
    classification: str | None = None


ProviderEvent = Init | Result | Error | Progress | Activity | Finished
EventSink = Callable[[ProviderEvent], None]


class QueryClosed(RuntimeError):
    """The query no longer takes input (it was ended or has finished)."""


@dataclass(frozen=True)
class QueryInput:
    prompt: str
    token: str
    continuation: str | None
    instructions: str


class AgentQuery(Protocol):
    def push(self, prompt: str, token: str) -> None:
        """Add a follow-up to the running conversation; raises QueryClosed if it takes no more."""

    def end(self) -> None:
        """No more input: finish what was pushed, then report Finished."""

    def abort(self) -> None:
        """Stop now (shutdown); Finished follows as soon as the backend is torn down."""

    def join(self, timeout: float) -> bool:
        """Wait for the query's thread; True when it is gone."""


class Provider(Protocol):
    name: str
    supports_native_slash_commands: bool

    def start(self, query: QueryInput, sink: EventSink) -> AgentQuery: ...

    def is_session_invalid(self, error: str) -> bool:
        """Whether `error` means the stored continuation is unusable (and should be dropped)."""


@dataclass(frozen=True)
class ProviderContext:
    config: RunnerConfig
    tools: ToolBox
