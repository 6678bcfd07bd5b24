"""Drive a command through a pseudo-terminal as a person would: type lines, wait for text to appear."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROWS, COLUMNS = 50, 220
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\r")


class PtyProcess:
    """A child process whose stdin, stdout and stderr are one pseudo-terminal of a fixed, wide size."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "COLUMNS": str(COLUMNS), "LINES": str(ROWS), "TERM": "xterm-256color"},
            cwd=cwd,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self.screen = ""  # everything shown so far, control sequences removed
        self._position = 0

    def type(self, line: str) -> None:
        os.write(self._master, line.encode() + b"\n")

    def expect(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """Wait until `pattern` appears after the previous match; fail with what the screen shows otherwise."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            found = compiled.search(self.screen, self._position)
            if found:
                self._position = found.end()
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                shown = self.screen
                raise AssertionError(f"{pattern!r} did not appear within {timeout_s} s; the screen shows:\n{shown}")

    def wait(self, timeout_s: float) -> int:
        """Let the process finish (draining its output so it never blocks on a full terminal)."""
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        return self.process.wait(timeout=max(0.1, deadline - time.monotonic()))

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._master)

    def _read(self, timeout_s: float) -> bool:
        """Read what is there within `timeout_s` (at most 1 s); False once the terminal is closed."""
        readable, _, _ = select.select([self._master], [], [], min(timeout_s, 1.0))
        if not readable:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.screen += _CONTROL.sub("", data.decode(errors="replace"))
        return True
