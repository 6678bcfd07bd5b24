"""Encoding events into the log and decoding stored rows back into typed events.

Reads try the fast path first: a whole chunk of payloads decoded through the
tagged union in C. Any chunk it refuses is decoded row by row with the decoder
the stored `type` column names, so a tag this version does not know (written
by a newer one) is skipped with a warning instead of failing, and a payload
that does not match its type raises an error naming its log position.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from functools import reduce
from typing import Any

import msgspec
import structlog

from events.types import ALL_EVENT_TYPES, Event, type_name

_log = structlog.get_logger(component="events.codec")  # the library directly: events imports nothing of ours

Row = tuple[int, str, int, str, str, str]
"""A stored event: position, stream, version, type, payload (JSON text), recorded_at."""
FastRow = tuple[int, str, int, str, str]
"""A stored event without its type column: position, stream, version, payload, recorded_at."""

TAGS: dict[type[Event], str] = {event_type: type_name(event_type) for event_type in ALL_EVENT_TYPES}
DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    tag: msgspec.json.Decoder(event_type) for event_type, tag in TAGS.items()
}
_encoder = msgspec.json.Encoder()
_any_event: msgspec.json.Decoder[Any] = msgspec.json.Decoder(reduce(operator.or_, ALL_EVENT_TYPES))
_tag_of_class = TAGS.__getitem__


class RecordedEvent(msgspec.Struct, frozen=True, gc=False):
    """An event as the log holds it: where it sits, which stream, when, and the event itself.

    Untracked by the garbage collector (it can never be part of a cycle), which
    keeps a replay of a million of them from triggering collections.
    """

    position: int
    stream: str
    version: int
    type: str
    recorded_at: str
    event: Event


class EventDecodeError(Exception):
    """A stored payload does not decode as its recorded type; names the log position."""

    def __init__(self, position: int, type_: str, reason: str) -> None:
        super().__init__(f"event at log position {position} (type {type_!r}) cannot be decoded: {reason}")
        self.position = position
        self.type = type_
        self.reason = reason


def tag_of(event: Event) -> str:
    """The stored type name of an event; refuses classes outside the union."""
    try:
        return TAGS[type(event)]
    except KeyError:
        raise TypeError(f"{type(event).__name__} is not an event type listed in events.types") from None


def encode(event: Event) -> str:
    """The JSON payload stored for an event (text, so `json_extract` can read it)."""
    return _encoder.encode(event).decode()


def decode_rows(rows: Iterable[Row]) -> Iterator[RecordedEvent]:
    """Stored rows as recorded events; unknown types are skipped with one warning per type.

    This loop is the replay hot path, so it inlines the decoder lookup.
    """
    decoders = DECODERS
    unknown: set[str] = set()
    for position, stream, version, type_, payload, recorded_at in rows:
        decoder = decoders.get(type_)
        if decoder is None:
            if type_ not in unknown:
                unknown.add(type_)
                _log.warning("event.unknown_type_skipped", type=type_, position=position)
            continue
        try:
            event = decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise EventDecodeError(position, type_, str(exc)) from None
        yield RecordedEvent(position, stream, version, type_, recorded_at, event)


def decode_known(rows: Sequence[FastRow]) -> Iterator[RecordedEvent] | None:
    """A chunk of rows decoded in one pass through the whole union, or None if any row needs care.

    The fast path of replay: every per-row step runs in C (`map`), with no Python
    frame per event, which is what lets a read keep up with SQLite. None means
    the chunk holds an unknown tag or a bad payload; the caller then decodes it
    row by row with `decode_rows`, which skips or names the culprit.
    """
    positions, streams, versions, payloads, times = zip(*rows, strict=True)
    try:
        events = list(map(_any_event.decode, payloads))
    except msgspec.DecodeError:
        return None
    return map(RecordedEvent, positions, streams, versions, map(_tag_of_class, map(type, events)), times, events)
