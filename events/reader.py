"""Reading a central DB without opening it for writing: for audit tools beside a running host.

`EventLog.open` migrates and catches up, which writes; this never does, and it
refuses a missing file instead of creating an empty one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from events.codec import RecordedEvent
from events.query import EventFilter, read_events
from events.schema import connect, unmigrated


class OutdatedLogError(Exception):
    """The file was written by an older version and has not been migrated yet (a reader never migrates)."""


class EventReader:
    def __init__(self, path: Path | str) -> None:
        self._conn = connect(path, read_only=True)
        outdated = unmigrated(self._conn)
        if outdated is not None:
            self._conn.close()
            raise OutdatedLogError(f"{path}: {outdated}")

    def read(self, match: EventFilter, limit: int | None = None) -> Iterator[RecordedEvent]:
        """The same reads as `EventLog.read`, with the filters in one value."""
        return read_events(self._conn, match, limit)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EventReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
