"""Time conversions at the runner's edges.

Session DBs store UTC in SQLite's `datetime('now')` form (`YYYY-MM-DD HH:MM:SS`);
the agent thinks in its user's zone (the container's TZ). Converting only here
keeps every comparison inside the DBs in one form: an ISO `...T...Z` string
compared with `datetime('now')` sorts wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

SQL_FORMAT = "%Y-%m-%d %H:%M:%S"


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_sql(moment: datetime) -> str:
    """An aware datetime as the session DBs store it (UTC, second precision)."""
    return moment.astimezone(UTC).strftime(SQL_FORMAT)


def from_sql(text: str) -> datetime:
    """Parse a stored time as UTC. Also accepts ISO forms a foreign writer may have used."""
    value = text.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def local_label(stored: str, zone: tzinfo) -> str:
    """A stored UTC time as the agent's user reads it: `YYYY-MM-DD HH:MM` in their zone."""
    try:
        return from_sql(stored).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stored


def parse_user_time(text: str, zone: tzinfo) -> datetime:
    """A time the agent wrote: ISO 8601 with an offset, or naive local time in `zone`.

    Accepts `2026-05-01T09:00:00+02:00`, `2026-05-01T07:00:00Z`,
    `2026-05-01 09:00` (read in `zone`). Raises ValueError with the accepted forms.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: use ISO 8601 such as '2026-05-01T09:00:00+02:00', "
            "'2026-05-01T07:00:00Z', or '2026-05-01 09:00' (read in your local zone)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)
