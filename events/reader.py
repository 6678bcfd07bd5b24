"""Reading a central DB without opening it for writing: for audit tools beside a running host.

`EventLog.open` migrates and catches up, which writes; this never does, and it
refuses a missing file instead of creating an empty one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from events.codec import RecordedEvent
from events.query import read_events
from events.schema import connect


class EventReader:
    def __init__(self, path: Path | str) -> None:
        self._conn = connect(path, read_only=True)

    def read(
        self,
        *,
        after: int = 0,
        stream: str | None = None,
        stream_prefix: str | None = None,
        types: Sequence[str] | None = None,
        since: str | None = None,
        limit: int | None = None,
        session: str | None = None,
        group: str | None = None,
    ) -> Iterator[RecordedEvent]:
        """The same reads as `EventLog.read`."""
        return read_events(
            self._conn,
            after=after,
            stream=stream,
            stream_prefix=stream_prefix,
            types=types,
            since=since,
            limit=limit,
            session=session,
            group=group,
        )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EventReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
