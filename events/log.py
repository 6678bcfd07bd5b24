"""The append-only event log: one SQLite file, with the projection tables updated in the same transaction.

Why one transaction per append: after any crash the log and the tables the host
reads agree, because either both changed or neither did. So the tables are
themselves the snapshot a restart starts from: `open` applies nothing unless a
migration reset them (the checkpoint then says from where; see `IN_STEP`).

Appends from many threads go through one writer connection behind a lock;
reads use a connection per thread (WAL lets them run beside the writer).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from events.clock import recorded_now
from events.codec import EventDecodeError, RecordedEvent, encode_record, tag_of
from events.connections import ReadConnections
from events.projections import ProjectionError, apply
from events.query import EventFilter, read_events
from events.replay import apply_log
from events.schema import connect, migrate, transaction
from events.store import Store
from events.types import Event

__all__ = ["EventDecodeError", "EventLog", "ProjectionError", "RecordedEvent", "StaleVersionError"]

_INSERT = "INSERT INTO events (position, record) VALUES (?, ?)"
_STREAM_VERSION = "SELECT MAX(version) FROM events WHERE stream = ?"
_LAST_POSITION = "SELECT COALESCE(MAX(position), 0) FROM events"
_STREAM_VERSIONS = "SELECT value, (SELECT MAX(version) FROM events WHERE stream = value) FROM json_each(?)"

_Prepared = list[tuple[str, Event]]
"""Events ready to store: (type tag, event)."""


class StaleVersionError(Exception):
    """An append expected a stream version that another writer has already moved past."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, not the expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class _LogMoved(Exception):
    """Another writer appended since this one last wrote: what it remembers of the log is stale."""

    def __init__(self, collision: sqlite3.IntegrityError | None = None) -> None:
        super().__init__("another writer appended to the event log since this one last wrote")
        self.collision = collision


def _prepare(stream: str, events: Sequence[Event]) -> _Prepared:
    """Refuse an empty stream id or a class outside the union before anything is stored."""
    if not stream:
        raise ValueError("an event stream id must not be empty")
    return [(tag_of(event), event) for event in events]


def _stream_versions(db: sqlite3.Connection, streams: set[str]) -> dict[str, int]:
    """Current versions of many streams in one statement: an index seek per stream (0 for a new one)."""
    rows = db.execute(_STREAM_VERSIONS, (json.dumps(sorted(streams)),)).fetchall()
    return {stream: version or 0 for stream, version in rows}


class EventLog:
    """The central DB: append events, read them back, and read the projections through `store`."""

    def __init__(self, path: Path, writer: sqlite3.Connection) -> None:
        self.path = path
        self._writer = writer
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._known_position = -1
        self._readers = ReadConnections(path)
        self.store = Store(self._readers)

    @classmethod
    def open(cls, path: Path | str) -> EventLog:
        """Open (creating and migrating as needed) and bring the projections up to the log's end."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = connect(path)
        try:
            migrate(writer)
            with transaction(writer):
                apply_log(writer)
        except BaseException:
            writer.close()
            raise
        return cls(path, writer)

    # -- writing --------------------------------------------------------------------------------

    def append(self, stream: str, events: Sequence[Event], expected_version: int | None = None) -> int:
        """Durably append events to one stream and apply them; returns the stream's new version.

        With `expected_version`, refuses (StaleVersionError, nothing stored) unless
        the stream is exactly at that version; 0 means "the stream must not exist yet".
        """
        versions = self._write([(stream, _prepare(stream, events))], expected_version)
        return versions[stream]

    def append_batch(self, items: Sequence[tuple[str, Sequence[Event]]]) -> None:
        """Append to many streams in one durable transaction (no version expectations)."""
        self._write([(stream, _prepare(stream, events)) for stream, events in items], None)

    def _write(self, items: list[tuple[str, _Prepared]], expected_version: int | None) -> dict[str, int]:
        """One durable transaction for all items; returns each stream's new version.

        Optimistic about the log's end: the writer remembers where it left the
        log and each stream's version, and does not read them again. If another
        process appended meanwhile, the insert collides (on the position it
        took, or on a stream version) and rolls back; the writer then forgets
        what it knew and tries once more with the stored state.
        """
        with self._lock:
            try:
                return self._write_once(items, expected_version)
            except _LogMoved:
                self._forget()
            try:
                return self._write_once(items, expected_version)
            except _LogMoved as again:  # with fresh state a collision is a real integrity error
                raise (again.collision or again) from None

    def _forget(self) -> None:
        self._versions.clear()
        self._known_position = -1

    def _write_once(self, items: list[tuple[str, _Prepared]], expected_version: int | None) -> dict[str, int]:
        db = self._writer
        with transaction(db):
            versions = self._current_versions(db, {stream for stream, _ in items})
            if expected_version is not None:
                self._check_expected(db, items[0][0], versions[items[0][0]], expected_version)
            batches = []
            for stream, prepared in items:
                batches.append((stream, versions[stream], prepared))
                versions[stream] += len(prepared)
            last = self._store(db, self._known_position, batches)
        self._known_position = last
        self._versions.update(versions)
        return versions

    @staticmethod
    def _check_expected(db: sqlite3.Connection, stream: str, remembered: int, expected: int) -> None:
        """Refuse a stale expectation, asking the file first: the remembered version may be the stale one."""
        if remembered == expected:
            return  # if another writer moved the stream, the insert collides and the write is retried
        actual = _stream_versions(db, {stream})[stream]
        if actual == expected:
            raise _LogMoved
        raise StaleVersionError(stream, expected, actual)

    def _current_versions(self, db: sqlite3.Connection, streams: set[str]) -> dict[str, int]:
        """Stream versions inside the write transaction: from memory, reading only what this writer never saw."""
        if self._known_position < 0:
            self._known_position = db.execute(_LAST_POSITION).fetchone()[0]
        missing = {stream for stream in streams if stream not in self._versions}  # not `- keys()`: O(all streams)
        if missing:
            self._versions.update(_stream_versions(db, missing))
        return {stream: self._versions[stream] for stream in streams}

    @staticmethod
    def _store(db: sqlite3.Connection, last: int, batches: list[tuple[str, int, _Prepared]]) -> int:
        """Insert records after position `last` and apply the projections (caller's transaction,
        which holds the write lock, so the positions are free); returns the new last position."""
        recorded_at = recorded_now()
        parts = [
            (stream, base + offset, tag, event)
            for stream, base, prepared in batches
            for offset, (tag, event) in enumerate(prepared, start=1)
        ]
        if not parts:
            return last
        rows = [
            (position, encode_record(position, stream, version, tag, recorded_at, event))
            for position, (stream, version, tag, event) in enumerate(parts, start=last + 1)
        ]
        try:
            db.executemany(_INSERT, rows)
        except sqlite3.IntegrityError as exc:
            raise _LogMoved(exc) from exc
        for stream, _, prepared in batches:
            for tag, event in prepared:
                apply(db, stream, tag, event, recorded_at)
        return last + len(rows)

    # -- reading ----------------------------------------------------------------------------------

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
        """Recorded events in log order, filtered; `since` is a UTC time in `YYYY-MM-DD HH:MM:SS[.ffffff]` form.

        `session`/`group` also match events that name the session or group in their
        payload (and, for a group, events of its sessions). Unknown types are skipped.
        """
        match = EventFilter(
            after=after,
            stream=stream,
            stream_prefix=stream_prefix,
            types=types,
            since=since,
            session=session,
            group=group,
        )
        return read_events(self._readers.get(), match, limit)

    def stream_version(self, stream: str) -> int:
        """The version of a stream's last event (0 for a stream with none)."""
        row = self._readers.get().execute(_STREAM_VERSION, (stream,)).fetchone()
        return int(row[0] or 0)

    def last_position(self) -> int:
        """The position of the newest event (0 for an empty log)."""
        return int(self._readers.get().execute(_LAST_POSITION).fetchone()[0])

    # -- lifecycle ----------------------------------------------------------------------------------

    def close(self) -> None:
        self._readers.close()
        with self._lock:
            self._writer.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
