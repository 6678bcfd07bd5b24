"""The one time format of the session DBs, converted at the edges.

Every time stored in inbound.db / outbound.db is UTC text in SQLite's
`datetime('now')` form (`YYYY-MM-DD HH:MM:SS`), so SQL can compare it with
`datetime('now')` as plain text. Two upstream bugs came from leaving that form:
an ISO `...T...Z` string sorts after the same instant written with a space (so
scheduled tasks were never due), and a naive parse as local time made a host
outside UTC judge every container stale. Hence: naive datetimes are refused on
the way in, and text is always read as UTC on the way out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DB_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused because it would be read as local time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} is ambiguous: pass an aware (UTC) datetime")
    return value.astimezone(UTC)


def to_db_time(value: datetime) -> str:
    """Aware datetime -> `YYYY-MM-DD HH:MM:SS` in UTC (sub-seconds truncated)."""
    return as_utc(value).strftime(DB_TIME_FORMAT)


def utc_now_text() -> str:
    return to_db_time(utc_now())


def parse_db_time(text: str) -> datetime:
    """Stored time text -> aware UTC datetime.

    Accepts the canonical form and, for rows written by older code, ISO 8601
    with `T`, fractions, `Z` or an offset. Text without a zone is UTC, never local.
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"unreadable session-DB time {text!r}: expected 'YYYY-MM-DD HH:MM:SS' (UTC)") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_db_time_or_none(text: str | None) -> datetime | None:
    """Like parse_db_time, but a missing or unreadable value is None, for reading rows others wrote."""
    if text is None:
        return None
    try:
        return parse_db_time(text)
    except ValueError:
        return None


def db_time_after(now: datetime, delay_s: float) -> str:
    """The first whole second at least `delay_s` after `now`, and strictly after now's second.

    Rounding up keeps a short delay from collapsing into the current second,
    which the stored form could not tell apart from "now".
    """
    start = as_utc(now)
    target = start + timedelta(seconds=delay_s)
    whole = target.replace(microsecond=0)
    if whole < target:
        whole += timedelta(seconds=1)
    earliest = start.replace(microsecond=0) + timedelta(seconds=1)
    return to_db_time(max(whole, earliest))
