"""The echo provider: a deterministic agent for tests, benchmarks and a demo without credentials.

It is a real provider behind the same contract as Claude — its own thread,
streaming events, a continuation id, follow-ups joining the running query —
so everything around it (poll loop, dispatch, tools) runs for real.

Answer: for each prompt, `echo: ` followed by the text of every `<message>`
in it (unescaped), one per line; a prompt without `<message>` elements (a
task, a raw command) is echoed whole. Because the answer goes through normal
dispatch, a user text holding `<message to="name">…</message>` blocks or
`<internal>…</internal>` exercises routing exactly as an agent's answer would.

Directives: a line of a message text starting with `!` is obeyed, not echoed.
- `!sleep <seconds>`: wait (at most 60 s) before answering; follow-ups pushed
  meanwhile are answered afterwards, in the same query.
- `!fail <text>`: the query ends with the error `<text>`.
- `!tool <name> <json arguments>`: call one of the agent's tools; the answer
  gets a line `tool <name>: <result text>`.
- `!silent`: answer with no text at all.

Continuations are `echo-<uuid>`; resuming any other id fails with
"No conversation found with session ID: <id>", as Claude does.
"""

from __future__ import annotations

import html
import json
import logging
import queue
import re
import threading
import uuid

from agent_runner.providers.base import (
    Activity,
    EventSink,
    Finished,
    Init,
    ProviderContext,
    QueryClosed,
    QueryInput,
    Result,
)
from agent_runner.tools.base import ToolBox

log = logging.getLogger(__name__)

MESSAGE_ELEMENT_RE = re.compile(r"<message\b[^>]*>(.*?)</message>", re.DOTALL)
REPLY_CONTEXT_RE = re.compile(r"<reply-to\b[^>]*>.*?</reply-to>", re.DOTALL)
MAX_SLEEP_S = 60.0
STALE_SESSION_TEXT = "No conversation found with session ID"


class EchoFailure(Exception):
    pass


class EchoProvider:
    name = "echo"
    supports_native_slash_commands = False

    def __init__(self, context: ProviderContext) -> None:
        self.tools = context.tools

    def start(self, query: QueryInput, sink: EventSink) -> EchoQuery:
        return EchoQuery(query, sink, self.tools)

    def is_session_invalid(self, error: str) -> bool:
        return STALE_SESSION_TEXT.lower() in error.lower()


class EchoQuery:
    def __init__(self, query: QueryInput, sink: EventSink, tools: ToolBox) -> None:
        self._sink = sink
        self._tools = tools
        self._continuation = query.continuation
        self._inbox: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._inbox.put((query.prompt, query.token))
        self._lock = threading.Lock()
        self._closed = False
        self._aborted = threading.Event()
        self._thread = threading.Thread(target=self._run, name="echo-query", daemon=True)
        self._thread.start()

    def push(self, prompt: str, token: str) -> None:
        with self._lock:
            if self._closed:
                raise QueryClosed("the echo query takes no more input")
            self._inbox.put((prompt, token))

    def end(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._inbox.put(None)

    def abort(self) -> None:
        self._aborted.set()
        self.end()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            if self._continuation and not self._continuation.startswith("echo-"):
                raise EchoFailure(f"{STALE_SESSION_TEXT}: {self._continuation}")
            self._sink(Init(self._continuation or f"echo-{uuid.uuid4()}"))
            while (item := self._inbox.get()) is not None and not self._aborted.is_set():
                prompt, token = item
                self._sink(Activity())
                text = self._answer(prompt)
                if self._aborted.is_set():
                    break
                self._sink(Result(text, frozenset({token})))
        except EchoFailure as exc:
            self._finish(Finished(error=str(exc)))
            return
        self._finish(Finished())

    def _finish(self, event: Finished) -> None:
        with self._lock:
            self._closed = True
        self._sink(event)

    def _answer(self, prompt: str) -> str | None:
        texts = [html.unescape(REPLY_CONTEXT_RE.sub("", body)).strip() for body in MESSAGE_ELEMENT_RE.findall(prompt)]
        if not texts:
            texts = [prompt]
        lines: list[str] = []
        silent = False
        for text in texts:
            for line in text.splitlines():
                if not line.startswith("!"):
                    lines.append(line)
                elif line.strip() == "!silent":
                    silent = True
                else:
                    lines.extend(self._directive(line[1:].strip()))
        if silent:
            return None
        body = "\n".join(lines).strip()
        return f"echo: {body}"

    def _directive(self, directive: str) -> list[str]:
        word, _, rest = directive.partition(" ")
        if word == "sleep":
            try:
                seconds = min(float(rest), MAX_SLEEP_S)
            except ValueError:
                return [f"(bad directive: !{directive})"]
            self._aborted.wait(seconds)
            return []
        if word == "fail":
            raise EchoFailure(rest.strip() or "echo failure requested")
        if word == "tool":
            name, _, raw_args = rest.strip().partition(" ")
            try:
                args = json.loads(raw_args) if raw_args.strip() else {}
            except json.JSONDecodeError as exc:
                return [f"tool {name}: Error: arguments are not JSON ({exc})"]
            result = self._tools.call(name, args)
            return [f"tool {name}: {result.text}"]
        return [f"(unknown directive: !{directive})"]
