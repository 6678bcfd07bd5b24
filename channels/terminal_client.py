"""The client end of the terminal protocol: connect, send frames, read the host's frames as they arrive.

Used by `hermitcrab chat` and by tests that speak the protocol directly.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from pathlib import Path

from channels.terminal_protocol import (
    MAX_LINE_BYTES,
    ClientFrame,
    HostMessage,
    ProtocolError,
    decode_host,
    encode,
)


class HostNotRunningError(ConnectionError):
    """Nothing listens on the terminal socket: the host is not running for this data directory."""


class ConnectionClosedError(ConnectionError):
    """The host closed the connection (it stopped, or refused the client)."""


class TerminalClient:
    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._buffer = b""
        self._ready: deque[HostMessage] = deque()

    @classmethod
    def connect(cls, path: Path, timeout_s: float = 5.0) -> TerminalClient:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(timeout_s)
        try:
            connection.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            connection.close()
            raise HostNotRunningError(f"nothing listens on {path}") from exc
        except OSError:
            connection.close()
            raise
        connection.settimeout(None)
        return cls(connection)

    def fileno(self) -> int:
        return self._connection.fileno()

    def send(self, frame: ClientFrame) -> None:
        self._connection.sendall(encode(frame))

    def read_available(self) -> list[HostMessage]:
        """Read once (call when the socket is readable) and return every complete frame received so far."""
        data = self._connection.recv(65536)
        if not data:
            raise ConnectionClosedError("the host closed the connection")
        self._buffer += data
        frames: list[HostMessage] = []
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.strip():
                frames.append(decode_host(line))
        if len(self._buffer) > MAX_LINE_BYTES:
            raise ProtocolError(f"the host sent a frame longer than {MAX_LINE_BYTES} bytes")
        return frames

    def receive(self, timeout_s: float) -> list[HostMessage]:
        """Wait up to `timeout_s` for frames; an empty list when none came in time."""
        if self._ready:
            frames = list(self._ready)
            self._ready.clear()
            return frames
        deadline = time.monotonic() + timeout_s
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                self._connection.settimeout(remaining)
                try:
                    frames = self.read_available()
                except TimeoutError:
                    return []
                if frames:
                    return frames
            return []
        finally:
            self._connection.settimeout(None)

    def next_frame(self, timeout_s: float) -> HostMessage | None:
        """The next frame, waiting up to `timeout_s`; None when none came in time."""
        if not self._ready:
            self._ready.extend(self.receive(timeout_s))
        return self._ready.popleft() if self._ready else None

    def close(self) -> None:
        self._connection.close()
