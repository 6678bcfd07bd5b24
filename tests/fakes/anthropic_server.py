"""A scripted stand-in for the Anthropic Messages API on 127.0.0.1.

Why: the Claude provider must be tested end to end without internet. The real
Claude Code CLI (bundled in claude-agent-sdk) honours `ANTHROPIC_BASE_URL`, so
pointing it here lets a test decide every model turn — plain text, a call of
one of our MCP tools, a call of Claude Code's own `Write` tool — while the CLI,
the SDK and the agent runner all run for real.

The test supplies a *responder*: a function from the decoded request body to a
`Reply` (content blocks) or an `ErrorReply` (an HTTP error such as 401).
Deciding by the request's content, not by call order, keeps a script correct
when the CLI makes an extra call. Streaming requests get the server-sent event
sequence of the real API (message_start, content_block_start/delta/stop,
message_delta, message_stop); tool inputs stream as `input_json_delta`.
Every request is recorded for assertions (`requests`).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "claude-fake-1"


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any]
    id: str = ""


@dataclass(frozen=True)
class Reply:
    """One assistant turn; a turn holding a ToolUse stops with `tool_use`, else `end_turn`."""

    blocks: list[Text | ToolUse]


@dataclass(frozen=True)
class ErrorReply:
    status: int
    error_type: str
    message: str


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


Responder = Callable[[dict[str, Any]], Reply | ErrorReply]


def text_reply(text: str) -> Reply:
    return Reply([Text(text)])


def tool_reply(name: str, tool_input: dict[str, Any], preface: str = "") -> Reply:
    blocks: list[Text | ToolUse] = [Text(preface)] if preface else []
    blocks.append(ToolUse(name, tool_input))
    return Reply(blocks)


def message_texts(body: dict[str, Any], role: str = "user") -> list[str]:
    """Every text the request carries for `role`, in order (string contents and text blocks)."""
    texts: list[str] = []
    for message in body.get("messages", []):
        if message.get("role") != role:
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for block in content or []:
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
    return texts


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the request, in order."""
    results: list[dict[str, Any]] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            results.extend(block for block in content if block.get("type") == "tool_result")
    return results


def tool_names(body: dict[str, Any]) -> list[str]:
    return [str(tool.get("name")) for tool in body.get("tools", [])]


def last_message_is_tool_result(body: dict[str, Any]) -> bool:
    messages = body.get("messages", [])
    if not messages:
        return False
    content = messages[-1].get("content")
    return isinstance(content, list) and any(block.get("type") == "tool_result" for block in content)


@dataclass
class FakeAnthropicServer:
    responder: Responder
    host: str = "127.0.0.1"
    event_delay_s: float = 0.0
    """A pause after each server-sent event, so a test can tell streaming from buffering."""
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> FakeAnthropicServer:
        server = ThreadingHTTPServer((self.host, 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAnthropicServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def message_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == "/v1/messages"]

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}_{next(self._ids):06d}"


def _make_handler(fake: FakeAnthropicServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes: without this, Nagle's algorithm and the client's delayed
        # ACK hold every JSON reply back ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the recorded requests are the log."""

        def do_HEAD(self) -> None:
            self._send_json(200, {})

        def do_GET(self) -> None:
            fake._record(RecordedRequest("GET", self.path, dict(self.headers.items()), {}))
            self._send_json(404, _error_body("not_found_error", f"no route {self.path}"))

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send_json(400, _error_body("invalid_request_error", "body is not JSON"))
                return
            fake._record(RecordedRequest("POST", self.path, dict(self.headers.items()), body))
            route = self.path.split("?")[0]
            if route == "/v1/messages/count_tokens":
                self._send_json(200, {"input_tokens": len(json.dumps(body)) // 4})
                return
            if route != "/v1/messages":
                self._send_json(404, _error_body("not_found_error", f"no route {route}"))
                return
            reply = fake.responder(body)
            if isinstance(reply, ErrorReply):
                self._send_json(reply.status, _error_body(reply.error_type, reply.message))
                return
            blocks = [
                ToolUse(b.name, b.input, b.id or fake._next_id("toolu")) if isinstance(b, ToolUse) else b
                for b in reply.blocks
            ]
            message_id = fake._next_id("msg")
            if body.get("stream"):
                self._send_stream(message_id, blocks)
            else:
                self._send_json(200, _full_message(message_id, blocks))

        def _send_json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", fake._next_id("req"))
            self.end_headers()
            self.wfile.write(data)

        def _send_stream(self, message_id: str, blocks: list[Text | ToolUse]) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("request-id", fake._next_id("req"))
            self.send_header("connection", "close")
            self.end_headers()
            for event, data in _stream_events(message_id, blocks):
                self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                if fake.event_delay_s:
                    time.sleep(fake.event_delay_s)
            self.close_connection = True

    return Handler


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _usage(output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": 10,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _stop_reason(blocks: list[Text | ToolUse]) -> str:
    return "tool_use" if any(isinstance(b, ToolUse) for b in blocks) else "end_turn"


def _full_message(message_id: str, blocks: list[Text | ToolUse]) -> dict[str, Any]:
    content = [
        {"type": "tool_use", "id": b.id, "name": b.name, "input": b.input}
        if isinstance(b, ToolUse)
        else {"type": "text", "text": b.text}
        for b in blocks
    ]
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": content,
        "stop_reason": _stop_reason(blocks),
        "stop_sequence": None,
        "usage": _usage(5),
    }


def _stream_events(message_id: str, blocks: list[Text | ToolUse]) -> Iterator[tuple[str, dict[str, Any]]]:
    start = {**_full_message(message_id, []), "stop_reason": None, "usage": _usage(1)}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(blocks):
        if isinstance(block, ToolUse):
            opening = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block.input)}
        else:
            opening = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block.text}
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": opening}
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(blocks), "stop_sequence": None},
            "usage": _usage(5),
        },
    )
    yield "message_stop", {"type": "message_stop"}
