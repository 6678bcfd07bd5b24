"""The Claude provider: Claude Code through the Claude Agent SDK for Python.

One query is one `ClaudeSDKClient` session with *streaming input*: the first
prompt and every follow-up are user messages on the same stream, so a message
arriving while Claude works joins the running conversation instead of waiting
for a new process. Each prompt carries the poll loop's token as its `uuid`;
the SDK's result lists the uuids a turn took in, which tells the loop exactly
which messages an answer covers.

The SDK is asyncio; the poll loop is not. Each query runs its own event loop
in its own thread and reports through the sink. Setup, as the reference does
it and for the same reasons: the container is the sandbox, so permissions are
bypassed (the CLI refuses that as root; the image runs as `agent`); the
system prompt is Claude Code's preset plus the destinations addendum; project
and user settings load so the group's CLAUDE.md (with its `@`-import of the
global memory) applies; our tools are an in-process MCP server; tools that
would wait for a human at a terminal (ask-user, plan mode, worktrees, cron)
are disallowed — hermitcrab has its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKClient,
    EffortLevel,
    HookContext,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    McpServerConfig,
    Message,
    RateLimitEvent,
    ResultMessage,
    SdkMcpTool,
    SystemMessage,
    TaskNotificationMessage,
    create_sdk_mcp_server,
)

from agent_runner.config import BUILTIN_MCP_SERVER, RunnerConfig
from agent_runner.providers.base import (
    Activity,
    Error,
    EventSink,
    Finished,
    Init,
    Progress,
    ProviderContext,
    ProviderEvent,
    QueryClosed,
    QueryInput,
    Result,
)
from agent_runner.providers.transcript import archive
from agent_runner.tools.base import ToolBox

log = logging.getLogger(__name__)

ALLOWED_TOOLS = (
    "Bash",
    "Read",
    "Write",
    "Edit",
    "Glob",
    "Grep",
    "WebSearch",
    "WebFetch",
    "Task",
    "TaskOutput",
    "TaskStop",
    "TeamCreate",
    "TeamDelete",
    "SendMessage",
    "TodoWrite",
    "ToolSearch",
    "Skill",
    "NotebookEdit",
)
# Claude Code tools that would hang a headless container or duplicate hermitcrab's own.
DISALLOWED_TOOLS = (
    "AskUserQuestion",
    "EnterPlanMode",
    "ExitPlanMode",
    "EnterWorktree",
    "ExitWorktree",
    "CronCreate",
    "CronDelete",
    "CronList",
    "ScheduleWakeup",
)
CLI_ENV = {
    # The only request is then POST /v1/messages: no telemetry or update checks leaving the container.
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    # In-process MCP tools are sent inline only with tool search off.
    "ENABLE_TOOL_SEARCH": "false",
    "CLAUDE_CODE_AUTO_COMPACT_WINDOW": "165000",
}
EFFORTS: dict[str, EffortLevel] = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}
STALE_SESSION_RE = re.compile(r"no conversation found|ENOENT.*\.jsonl|session.*not found", re.IGNORECASE)
AUTH_FAILURE_RE = re.compile(
    r"authentication|invalid (x-)?api[ -]?key|oauth token|please run /login|\b401\b|unauthori[sz]ed", re.IGNORECASE
)
AUTH_HELP = (
    "I can't reach Claude: the host's model credentials were refused or are missing. "
    "On the host, set ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) in the environment or in hermitcrab's .env "
    "file, restart it (`hermitcrab down` then `hermitcrab up`), and check with `hermitcrab doctor`."
)
STDERR_TAIL_LINES = 20


class ClaudeProvider:
    name = "claude"
    supports_native_slash_commands = True

    def __init__(self, context: ProviderContext) -> None:
        self.config = context.config
        self.tools = context.tools

    def start(self, query: QueryInput, sink: EventSink) -> ClaudeQuery:
        return ClaudeQuery(self, query, sink)

    def is_session_invalid(self, error: str) -> bool:
        return bool(STALE_SESSION_RE.search(error))

    def options(self, query: QueryInput, stderr: collections.deque[str]) -> ClaudeAgentOptions:
        cfg = self.config
        servers: dict[str, McpServerConfig] = {BUILTIN_MCP_SERVER: mcp_server(self.tools)}
        for name, spec in cfg.mcp_servers.items():
            servers[name] = {"type": "stdio", "command": spec.command, "args": list(spec.args), "env": dict(spec.env)}

        def on_stderr(line: str) -> None:
            stderr.append(line)
            log.debug("cli: %s", line)

        return ClaudeAgentOptions(
            cwd=str(cfg.agent_dir),
            add_dirs=[str(p) for p in cfg.extra_directories()],
            resume=query.continuation,
            system_prompt={"type": "preset", "preset": "claude_code", "append": query.instructions},
            allowed_tools=[*ALLOWED_TOOLS, *(f"mcp__{name}__*" for name in servers)],
            disallowed_tools=list(DISALLOWED_TOOLS),
            permission_mode="bypassPermissions",
            setting_sources=["project", "user"],
            mcp_servers=servers,
            hooks={"PreCompact": [HookMatcher(hooks=[pre_compact_hook(cfg)])]},
            model=cfg.model,
            effort=EFFORTS.get(cfg.effort or ""),
            env=dict(CLI_ENV),
            stderr=on_stderr,
        )


def mcp_server(tools: ToolBox) -> McpServerConfig:
    """Our tools as an in-process MCP server; each call runs in a worker thread (tools may block)."""

    def handler(name: str) -> Any:
        async def call(args: dict[str, Any]) -> dict[str, Any]:
            result = await asyncio.to_thread(tools.call, name, args)
            return {"content": [{"type": "text", "text": result.text}], "is_error": result.is_error}

        return call

    sdk_tools: list[SdkMcpTool[Any]] = [
        SdkMcpTool(name=spec.name, description=spec.description, input_schema=spec.schema, handler=handler(spec.name))
        for spec in tools.specs.values()
    ]
    return create_sdk_mcp_server(BUILTIN_MCP_SERVER, tools=sdk_tools)


def pre_compact_hook(cfg: RunnerConfig) -> Any:
    async def hook(hook_input: HookInput, tool_use_id: str | None, context: HookContext) -> HookJSONOutput:
        transcript = hook_input.get("transcript_path")
        if transcript:
            saved = await asyncio.to_thread(
                archive,
                Path(transcript),
                hook_input.get("session_id"),
                cfg.conversations_dir,
                cfg.assistant_name,
                cfg.timezone,
            )
            if saved is not None:
                log.info("archived the conversation to %s", saved)
        return {}

    return hook


def translate(message: Message) -> ProviderEvent:
    """One SDK message as a provider event (a terminal problem as Finished)."""
    if isinstance(message, ResultMessage):
        return _result(message)
    if isinstance(message, TaskNotificationMessage):
        return Progress(message.summary or "background task finished")
    if isinstance(message, SystemMessage):
        data = message.data
        if message.subtype == "init" and data.get("session_id"):
            return Init(str(data["session_id"]))
        if message.subtype == "api_retry":
            if data.get("error") == "authentication_failed" or data.get("error_status") == 401:
                return Finished(error="the model API refused the credentials", reply=AUTH_HELP, classification="auth")
            attempt = f"{data.get('attempt', '?')}/{data.get('max_retries', '?')}"
            return Error(f"API retry {attempt}: {data.get('error')}", retryable=True)
        if message.subtype == "compact_boundary":
            tokens = (data.get("compact_metadata") or {}).get("pre_tokens")
            detail = f" ({tokens:,} tokens)" if isinstance(tokens, int) else ""
            return Result(f"Context compacted{detail}.", covers=frozenset())
    if isinstance(message, RateLimitEvent) and message.rate_limit_info.status == "rejected":
        return Error("usage limit reached", retryable=False, classification="quota")
    return Activity()


def _result(message: ResultMessage) -> Result:
    covers = set(message.user_message_uuids or [])
    if message.user_message_uuid:
        covers.add(message.user_message_uuid)
    text = message.result
    if message.is_error:
        detail = text or "; ".join(message.errors or []) or message.subtype
        text = AUTH_HELP if AUTH_FAILURE_RE.search(detail) else f"Error: {detail}"
    return Result(text, frozenset(covers) if covers else None)


class ClaudeQuery:
    """One streaming conversation with the Claude Code CLI, run on its own asyncio loop and thread."""

    def __init__(self, provider: ClaudeProvider, query: QueryInput, sink: EventSink) -> None:
        self._provider = provider
        self._query = query
        self._sink = sink
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._loop = asyncio.new_event_loop()
        self._inbox: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="claude-query", daemon=True)
        self._send(self._inbox.put_nowait, (query.prompt, query.token))
        self._thread.start()

    def push(self, prompt: str, token: str) -> None:
        with self._lock:
            if self._closed:
                raise QueryClosed("the Claude query takes no more input")
            self._send(self._inbox.put_nowait, (prompt, token))

    def end(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._send(self._inbox.put_nowait, None)

    def abort(self) -> None:
        self.end()
        with contextlib.suppress(QueryClosed):  # already over: nothing to cancel
            self._send(self._cancel)

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _send(self, callback: Any, *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError as exc:  # the loop is closed: the query is over
            raise QueryClosed(str(exc)) from None

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._task = self._loop.create_task(self._main())
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            self._loop.close()

    async def _prompts(self) -> AsyncIterator[dict[str, Any]]:
        while (item := await self._inbox.get()) is not None:
            prompt, token = item
            yield {
                "type": "user",
                "message": {"role": "user", "content": prompt},
                "parent_tool_use_id": None,
                "session_id": "",
                "uuid": token,
            }

    async def _main(self) -> None:
        outcome = Finished()
        client = ClaudeSDKClient(self._provider.options(self._query, self._stderr))
        try:
            await client.connect(self._prompts())
            async for message in client.receive_messages():
                event = translate(message)
                if isinstance(event, Finished):
                    outcome = event
                    break
                self._sink(event)
        except asyncio.CancelledError:
            outcome = Finished(error="stopped")
        except Exception as exc:
            outcome = Finished(error=self._describe(exc))
        finally:
            with self._lock:
                self._closed = True
            try:
                await client.disconnect()
            except Exception as exc:
                log.warning("disconnecting from the Claude CLI failed: %s", exc)
            self._sink(outcome)

    def _describe(self, exc: Exception) -> str:
        text = str(exc) or type(exc).__name__
        if self._stderr:
            log.warning("Claude CLI failed: %s; its last output:\n%s", text, "\n".join(self._stderr))
        return text[:1000]
