"""The times the log records, in one UTC text form that sorts correctly everywhere.

Events carry `recorded_at` as `YYYY-MM-DD HH:MM:SS.ffffff` (UTC, always six
fractional digits). Why text and not a REAL unix time: it is readable in the
database and in `json_extract` queries, and its first 19 characters are exactly
SQLite's `datetime('now')` form, which every projection column uses. The longer
form also sorts correctly against the plain one: the shared 19-character prefix
decides, and a plain value sorts before any fractional value of the same second.
"""

from __future__ import annotations

import time

PLAIN_LENGTH = len("YYYY-MM-DD HH:MM:SS")


def recorded_now() -> str:
    """The current UTC time in the log's form, independent of the host's zone."""
    now = time.time()
    whole = int(now)
    micros = int((now - whole) * 1_000_000)
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(whole))}.{micros:06d}"


def plain(recorded_at: str) -> str:
    """A log time cut to SQLite's `datetime('now')` form, as the projection columns store it."""
    return recorded_at[:PLAIN_LENGTH]
