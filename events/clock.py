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


_formatted_second: tuple[int, str] = (-1, "")
"""The last whole second formatted, with its trailing dot: strftime is most of the cost of a
time and appends come many per second. Replaced as one tuple, so threads never see a torn pair."""


def recorded_now() -> str:
    """The current UTC time in the log's form, independent of the host's zone."""
    global _formatted_second
    whole, nanos = divmod(time.time_ns(), 1_000_000_000)  # integers: no float rounding of the fraction
    second, prefix = _formatted_second
    if second != whole:
        prefix = time.strftime("%Y-%m-%d %H:%M:%S.", time.gmtime(whole))
        _formatted_second = (whole, prefix)
    return f"{prefix}{nanos // 1000:06d}"


def plain(recorded_at: str) -> str:
    """A log time cut to SQLite's `datetime('now')` form, as the projection columns store it."""
    return recorded_at[:PLAIN_LENGTH]
