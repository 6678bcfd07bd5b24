"""How CLI commands reach the central DB and print what they find: one place for opening, errors and JSON.

Commands that only look (list, show, status) read through a read-only store,
so they never create a data directory or take a write lock beside a running
host; commands that change something open the event log and append to it,
which is safe while the host runs (SQLite serialises the writers).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec

from actors.admin import AdminError, find_group
from actors.group_folder import InvalidFolderError
from config.settings import Settings
from events.connections import ReadConnections
from events.log import EventLog
from events.model import AgentGroup
from events.store import Store
from tools.cli_common import UserError

_encoder = msgspec.json.Encoder(order="deterministic")


@contextmanager
def open_log(settings: Settings) -> Iterator[EventLog]:
    """The event log for appending (created on first use)."""
    try:
        log = EventLog.open(settings.central_db)
    except sqlite3.Error as exc:
        raise UserError(f"cannot open the event log at {settings.central_db}: {exc}") from None
    try:
        yield log
    except (AdminError, InvalidFolderError) as exc:
        raise UserError(str(exc), _hint_for(exc)) from None
    finally:
        log.close()


@contextmanager
def read_store(settings: Settings) -> Iterator[Store | None]:
    """A read-only view of the projections, or None when this data directory has no event log yet."""
    if not settings.central_db.is_file():
        yield None
        return
    connections = ReadConnections(settings.central_db)
    try:
        yield Store(connections)
    except sqlite3.Error as exc:
        raise UserError(f"cannot read the event log at {settings.central_db}: {exc}") from None
    finally:
        connections.close()


def group_or_error(log: EventLog, name: str) -> AgentGroup:
    try:
        return find_group(log, name)
    except AdminError as exc:
        raise UserError(str(exc), "`hermitcrab groups list` shows every group") from None


def print_json(value: Any) -> None:
    """One JSON document on stdout (msgspec Structs, lists and dicts of them)."""
    sys.stdout.write(_encoder.encode(value).decode() + "\n")
    sys.stdout.flush()


def seconds_since(utc_text: str | None, now: datetime | None = None) -> float | None:
    """Seconds since a stored UTC time (`YYYY-MM-DD HH:MM:SS`, fractions allowed), None when unknown."""
    if not utc_text:
        return None
    try:
        moment = datetime.fromisoformat(utc_text[:19]).replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - moment).total_seconds())


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _hint_for(exc: Exception) -> str:
    if isinstance(exc, InvalidFolderError):
        return "choose another name or pass --folder with letters, digits, '-' and '_'"
    return "`hermitcrab groups list` shows the groups, `hermitcrab groups show NAME` one group's wiring"
