"""Token counts read from Messages API responses as they pass through the proxy.

A JSON response carries `usage` at the top level. A stream carries it twice:
`message_start.message.usage` (input and cache tokens, a first output count)
and `message_delta.usage`, whose counts are cumulative, so a later value
replaces an earlier one rather than adding to it. The meter sees the bytes in
whatever pieces the network delivers, so an event may be split anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_JSON_BODY = 16 * 1024 * 1024
"""A JSON response larger than this is passed on but not metered (Messages replies are far smaller)."""

_FIELDS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_creation_tokens",
}
_COUNTED_EVENTS = (b"message_start", b"message_delta")


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    model: str = ""

    def update(self, usage: dict[str, Any]) -> None:
        """Take every count the API reported; absent or null ones keep their earlier value."""
        for api_name, name in _FIELDS.items():
            value = usage.get(api_name)
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, value)


class UsageMeter:
    """Fed a response body chunk by chunk; `result()` is the usage it reported, or None if it reported none."""

    def __init__(self, content_type: str) -> None:
        self._stream = content_type.split(";")[0].strip().lower() == "text/event-stream"
        self._pending = b""
        self._event = b""
        self._data: list[bytes] = []
        self._usage: Usage | None = None
        self._body: list[bytes] = []
        self._body_size = 0

    def feed(self, chunk: bytes) -> None:
        if self._stream:
            self._feed_stream(chunk)
        elif self._body_size <= MAX_JSON_BODY:
            self._body.append(chunk)
            self._body_size += len(chunk)

    def result(self) -> Usage | None:
        if not self._stream and self._body_size <= MAX_JSON_BODY:
            self._read_message(_json(b"".join(self._body)))
        return self._usage

    def _feed_stream(self, chunk: bytes) -> None:
        text = self._pending + chunk
        # A CR at the very end may be the first half of a CRLF: wait for the next chunk to know.
        keep = 1 if text.endswith(b"\r") else 0
        lines = text[: len(text) - keep].replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending = lines.pop() + text[len(text) - keep :]
        for line in lines:
            self._line(line)

    def _line(self, line: bytes) -> None:
        if not line:
            self._dispatch()
        elif line.startswith(b"event:"):
            self._event = line[6:].strip()
        elif line.startswith(b"data:"):
            self._data.append(line[5:].removeprefix(b" "))

    def _dispatch(self) -> None:
        event, data = self._event, b"\n".join(self._data)
        self._event, self._data = b"", []
        # Only two events per message carry counts: skip decoding the many content deltas.
        named = event in _COUNTED_EVENTS
        unnamed = not event and any(name in data for name in _COUNTED_EVENTS)
        if not (named or unnamed):
            return
        payload = _json(data)
        kind = payload.get("type")
        if kind == "message_start":
            self._read_message(payload.get("message"))
        elif kind == "message_delta" and isinstance(payload.get("usage"), dict):
            self._counted().update(payload["usage"])

    def _read_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("usage"), dict):
            return
        usage = self._counted()
        usage.update(message["usage"])
        if isinstance(message.get("model"), str):
            usage.model = message["model"]

    def _counted(self) -> Usage:
        if self._usage is None:
            self._usage = Usage()
        return self._usage


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
