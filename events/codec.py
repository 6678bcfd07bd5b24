"""Encoding events into the log's records and decoding stored records back into typed events.

A record is one JSON array, `[position, stream, version, type, recorded_at,
payload]`, the exact shape of `RecordedEvent`, so decoding a stored event is
one C call. Reads try that fast path for a whole chunk first. Any chunk it
refuses is decoded record by record with the decoder the stored type names,
so a tag this version does not know (written by a newer one) is skipped with
a warning instead of failing, and a payload that does not match its type
raises an error naming its log position.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec
import structlog

from events.types import ALL_EVENT_TYPES, AnyEvent, Event, type_name

_log = structlog.get_logger(component="events.codec")  # the library directly: events imports nothing of ours

TAGS: dict[type[Event], str] = {event_type: type_name(event_type) for event_type in ALL_EVENT_TYPES}
DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    tag: msgspec.json.Decoder(event_type) for event_type, tag in TAGS.items()
}
_encoder = msgspec.json.Encoder()


class RecordedEvent(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """An event as the log holds it: where it sits, which stream, when, and the event itself.

    Array-like because that is the stored record. Untracked by the garbage
    collector (it can never be part of a cycle), which keeps a replay of a
    million of them from triggering collections.
    """

    position: int
    stream: str
    version: int
    type: str
    recorded_at: str
    event: AnyEvent


class _Envelope(msgspec.Struct, frozen=True, array_like=True):
    """A record with its payload left undecoded: the careful path reads the type before the payload."""

    position: int
    stream: str
    version: int
    type: str
    recorded_at: str
    payload: msgspec.Raw


_records = msgspec.json.Decoder(RecordedEvent)
_envelopes = msgspec.json.Decoder(_Envelope)


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


def encode_record(position: int, stream: str, version: int, tag: str, recorded_at: str, event: Event) -> str:
    """The stored record of an event, in `RecordedEvent`'s order (text, so SQLite's JSON functions read it)."""
    return _encoder.encode((position, stream, version, tag, recorded_at, event)).decode()


def decode_records(records: Iterable[str]) -> list[RecordedEvent] | None:
    """A chunk of records decoded in one pass, or None if any record needs care.

    The fast path of replay: every per-record step runs in C (`map`), with no
    Python frame per event, which is what lets a read keep up with SQLite. None
    means the chunk holds an unknown tag or a bad payload; the caller then
    decodes it with `decode_carefully`, which skips or names the culprit.
    """
    try:
        return list(map(_records.decode, records))
    except msgspec.DecodeError:
        return None


def decode_carefully(rows: Iterable[tuple[int, str]]) -> Iterator[RecordedEvent]:
    """(position, record) rows as events; unknown types are skipped with one warning per type."""
    unknown: set[str] = set()
    for position, record in rows:
        try:
            envelope = _envelopes.decode(record)
        except msgspec.DecodeError as exc:
            raise EventDecodeError(position, "?", f"not an event record: {exc}") from None
        decoder = DECODERS.get(envelope.type)
        if decoder is None:
            if envelope.type not in unknown:
                unknown.add(envelope.type)
                _log.warning("event.unknown_type_skipped", type=envelope.type, position=position)
            continue
        try:
            event = decoder.decode(envelope.payload)
        except msgspec.DecodeError as exc:
            raise EventDecodeError(position, envelope.type, str(exc)) from None
        yield RecordedEvent(position, envelope.stream, envelope.version, envelope.type, envelope.recorded_at, event)


def decode_chunk(rows: Sequence[tuple[int, str]]) -> Sequence[RecordedEvent] | Iterator[RecordedEvent]:
    """(position, record) rows as events: the fast path when it can, the careful one otherwise."""
    decoded = decode_records(record for _, record in rows)
    return decoded if decoded is not None else decode_carefully(rows)
