"""Liveness for the host: the mtime of `.heartbeat` in the session folder.

A file touch (a few microseconds) instead of a DB write keeps liveness off the
session DBs, whose single-writer rule it would otherwise bend.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._warned = False

    def touch(self) -> None:
        try:
            os.utime(self.path)
        except FileNotFoundError:
            try:
                self.path.touch()
            except OSError as exc:
                self._warn(exc)
        except OSError as exc:
            self._warn(exc)

    def _warn(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("cannot touch heartbeat %s: %s", self.path, exc)
