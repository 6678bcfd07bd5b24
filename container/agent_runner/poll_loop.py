"""The runner's main loop: take inbound messages, run them through the provider, send the answers.

1. On start, forget 'processing' acks a crashed predecessor left (those rows
   are done again) and load the stored continuation for this provider.
2. Take pending rows (due, not acked here). Answers to a question a tool is
   waiting on are left to that tool. `on_wake` rows are taken only by the first
   poll of a freshly started runner.
3. Commands first: filtered ones are dropped, admin ones need the admin user,
   `/clear` forgets the continuation.
4. Everything else starts a query. While it runs, new rows are pushed into it
   as follow-ups, and every Result is dispatched and acks the messages it
   covers — even a Result without text (the agent may have answered through
   send_message). A query is never cut off for silence: a long tool call is
   silent, and whether a container is stuck is the host's call. A slash command
   arriving mid-query ends the query instead, so the command gets a fresh one.
5. When a query fails, the waiting messages get an "Error: ..." reply; a
   continuation the provider no longer knows is dropped and the messages are
   taken again, fresh.

The loop never blocks on the provider: provider events and inbound changes
both notify one ChangeSignal, and the loop waits on that.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass

from agent_runner import continuation
from agent_runner.commands import Category, categorize, is_command
from agent_runner.config import RunnerConfig
from agent_runner.db import InboundMessage, SessionDb
from agent_runner.destinations import default_route, system_prompt_addendum
from agent_runner.dispatch import dispatch_reply
from agent_runner.formatter import format_batch
from agent_runner.heartbeat import Heartbeat
from agent_runner.providers.base import (
    AgentQuery,
    Error,
    Finished,
    Init,
    Progress,
    Provider,
    ProviderEvent,
    QueryInput,
    Result,
)
from agent_runner.routes import Route
from agent_runner.tools.base import ToolContext
from agent_runner.wake import ChangeSignal, InboundWatcher

log = logging.getLogger(__name__)

ABORT_GRACE_S = 3.0


@dataclass(frozen=True)
class Batch:
    """Messages handed to the provider in one prompt, and where answers to them go."""

    token: str
    ids: tuple[str, ...]
    origin: Route | None
    in_reply_to: str | None


class PollLoop:
    def __init__(
        self,
        config: RunnerConfig,
        db: SessionDb,
        provider: Provider,
        tools: ToolContext,
        signal: ChangeSignal,
        heartbeat: Heartbeat,
        watcher: InboundWatcher | None = None,
        idle_poll_s: float = 1.0,
    ) -> None:
        self.config = config
        self.db = db
        self.provider = provider
        self.tools = tools
        self.signal = signal
        self.heartbeat = heartbeat
        self.watcher = watcher
        self.idle_poll_s = idle_poll_s
        self.continuation: str | None = None
        self.queries_started = 0
        self._stopping = threading.Event()
        self._inflight: dict[str, Batch] = {}
        self._latest: Batch | None = None
        self._initialized = False

    # -- control ---------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to end soon (SIGTERM); a running query is aborted, its messages stay claimed."""
        self._stopping.set()
        self.signal.notify()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        self.continuation = continuation.load(self.db, self.provider.name)
        cleared = self.db.clear_stale_processing()
        log.info(
            "runner started (provider %s, %s, %d stale claim(s) cleared)",
            self.provider.name,
            f"resuming {self.continuation}" if self.continuation else "new conversation",
            cleared,
        )
        fresh = True
        while not self.stopping:
            self.heartbeat.touch()
            seen = self.signal.generation
            try:
                messages = self._pending(include_on_wake=fresh)
                fresh = fresh and not self.db.inbound_path.exists()
                if messages:
                    self._process(messages)
                    continue
            except sqlite3.Error as exc:
                log.warning("session DB error, retrying: %s", exc)
            except Exception:
                log.exception("processing failed; the loop continues")
            self.signal.wait(seen, self.idle_poll_s)
        log.info("runner stopping")

    # -- taking messages ---------------------------------------------------------------

    def _pending(self, *, include_on_wake: bool) -> list[InboundMessage]:
        return [m for m in self.db.pending_messages(include_on_wake=include_on_wake) if not self._awaited_by_tool(m)]

    def _awaited_by_tool(self, message: InboundMessage) -> bool:
        payload = message.payload
        return (
            message.kind == "system"
            and payload.get("type") == "question_response"
            and payload.get("questionId") in self.tools.questions
        )

    def _process(self, messages: list[InboundMessage]) -> None:
        self.db.mark([m.id for m in messages], "processing")
        for_agent = self._handle_commands(messages)
        if for_agent:
            self._run_query(for_agent)

    def _handle_commands(self, messages: list[InboundMessage]) -> list[InboundMessage]:
        """Deal with commands the runner itself owns; returns what goes to the agent."""
        for_agent: list[InboundMessage] = []
        with self.db.transaction():
            for message in messages:
                info = categorize(message)
                if info.category is Category.FILTERED:
                    log.info("dropping filtered command %s", info.command)
                elif info.category is Category.ADMIN and (
                    not self.config.admin_user_id or info.sender_id != self.config.admin_user_id
                ):
                    self._reply(message, f"Permission denied: {info.command} requires admin access.")
                elif info.category is Category.ADMIN and info.command == "/clear":
                    continuation.clear_all(self.db)
                    self.continuation = None
                    self._reply(message, "Session cleared.")
                else:
                    for_agent.append(message)
                    continue
                self.db.mark([message.id], "completed")
        return for_agent

    def _reply(self, message: InboundMessage, text: str) -> None:
        route = default_route(self.db, message.route)
        if route is None:
            log.warning("no route to answer %s with %r", message.id, text)
            return
        self.db.write_message(kind="chat", content={"text": text}, route=route, in_reply_to=message.id)

    def _batch(self, messages: list[InboundMessage]) -> Batch:
        origin = next((m.route for m in reversed(messages) if m.route is not None), None)
        batch = Batch(str(uuid.uuid4()), tuple(m.id for m in messages), origin, messages[-1].id)
        self._inflight[batch.token] = batch
        self._latest = batch
        self.tools.conversation.origin = origin
        self.tools.conversation.in_reply_to = batch.in_reply_to
        return batch

    def _prompt(self, messages: list[InboundMessage]) -> str:
        return format_batch(
            messages,
            self.db.destinations(),
            self.config.timezone,
            raw_commands=self.provider.supports_native_slash_commands,
            attachments_root=str(self.config.workspace),
        )

    # -- one query -------------------------------------------------------------------

    def _run_query(self, messages: list[InboundMessage]) -> None:
        prompt = self._prompt(messages)
        batch = self._batch(messages)
        events: queue.SimpleQueue[ProviderEvent] = queue.SimpleQueue()

        def sink(event: ProviderEvent) -> None:
            events.put(event)
            self.signal.notify()

        instructions = system_prompt_addendum(self.db.destinations())
        try:
            query = self.provider.start(QueryInput(prompt, batch.token, self.continuation, instructions), sink)
        except Exception as exc:
            log.exception("the provider could not start a query")
            self._finish(Finished(error=f"the agent could not start: {exc}"))
            return
        self.queries_started += 1
        self._initialized = False
        log.info("query started for %d message(s)", len(messages))
        self._drive(query, events)

    def _drive(self, query: AgentQuery, events: queue.SimpleQueue[ProviderEvent]) -> None:
        ending = False
        changes = self.watcher.changes if self.watcher else -1
        last_poll = time.monotonic()
        while True:
            seen = self.signal.generation
            finished = self._drain(events)
            if finished is not None:
                self._finish(finished)
                return
            if self.stopping:
                query.abort()
                query.join(ABORT_GRACE_S)
                return
            self.heartbeat.touch()
            watcher_changes = self.watcher.changes if self.watcher else -1
            if not ending and (watcher_changes != changes or time.monotonic() - last_poll >= self.idle_poll_s):
                changes, last_poll = watcher_changes, time.monotonic()
                ending = self._push_follow_ups(query)
            self.signal.wait(seen, self.idle_poll_s)

    def _drain(self, events: queue.SimpleQueue[ProviderEvent]) -> Finished | None:
        """Handle queued events; returns Finished when the query is over."""
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                return None
            self.heartbeat.touch()
            if isinstance(event, Finished):
                return event
            if isinstance(event, Init):
                self._initialized = True
                if event.continuation != self.continuation:
                    self.continuation = event.continuation
                    continuation.store(self.db, self.provider.name, event.continuation)
            elif isinstance(event, Result):
                self._on_result(event)
            elif isinstance(event, Error):
                log.warning(
                    "provider error: %s (retryable: %s%s)",
                    event.message,
                    event.retryable,
                    f", {event.classification}" if event.classification else "",
                )
            elif isinstance(event, Progress):
                log.info("progress: %s", event.message)

    def _push_follow_ups(self, query: AgentQuery) -> bool:
        """Push new messages into the running query; returns True if a command ended it."""
        try:
            pending = self._pending(include_on_wake=False)
        except sqlite3.Error as exc:
            log.warning("session DB error while checking for follow-ups: %s", exc)
            return False
        take: list[InboundMessage] = []
        command = next((m for m in pending if is_command(m)), None)
        for message in pending:
            if message is command:
                break
            take.append(message)
        if take:
            prompt = self._prompt(take)
            batch = self._batch(take)
            self.db.mark(batch.ids, "processing")
            try:
                query.push(prompt, batch.token)
                log.info("pushed %d follow-up message(s) into the running query", len(take))
            except Exception as exc:
                log.warning("follow-up not accepted (%s); it will start the next query", exc)
                self._inflight.pop(batch.token, None)
                self.db.forget_acks(batch.ids)
        if command is not None:
            log.info(
                "command %s arrived mid-query; ending the query so it gets a fresh one", categorize(command).command
            )
            query.end()
            return True
        return False

    def _on_result(self, result: Result) -> None:
        covered = [b for token, b in self._inflight.items() if result.covers is None or token in result.covers]
        target = covered[-1] if covered else self._latest
        with self.db.transaction():
            if result.text:
                dispatch_reply(
                    self.db, result.text, target.origin if target else None, target.in_reply_to if target else None
                )
            done = [message_id for batch in covered for message_id in batch.ids]
            if done:
                self.db.mark(done, "completed")
        for batch in covered:
            self._inflight.pop(batch.token, None)

    def _finish(self, finished: Finished) -> None:
        waiting = list(self._inflight.values())
        self._inflight.clear()
        ids = [message_id for batch in waiting for message_id in batch.ids]
        if finished.error and self.continuation and self.provider.is_session_invalid(finished.error):
            log.warning("continuation %s is unknown to the provider; starting afresh", self.continuation)
            continuation.clear(self.db, self.provider.name)
            self.continuation = None
            if not self._initialized:
                # Nothing was answered yet: take the same messages again in a fresh conversation.
                self.db.forget_acks(ids)
                return
        with self.db.transaction():
            if finished.error:
                log.warning("query failed: %s", finished.error)
                target = waiting[-1] if waiting else self._latest
                route = default_route(self.db, target.origin if target else None)
                if route is not None:
                    self.db.write_message(
                        kind="chat",
                        content={"text": finished.reply or f"Error: {finished.error}"},
                        route=route,
                        in_reply_to=target.in_reply_to if target else None,
                    )
            if ids:
                self.db.mark(ids, "completed")
        log.info("query finished%s", f" with error: {finished.error}" if finished.error else "")
