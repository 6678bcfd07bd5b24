"""Usage is read from responses whichever way the network cuts them into pieces."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest

from credentials.usage import Usage, UsageMeter


def sse(events: list[dict[str, Any]], newline: str = "\n") -> bytes:
    text = "".join(f"event: {e['type']}{newline}data: {json.dumps(e)}{newline}{newline}" for e in events)
    return text.encode()


STREAM_EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "usage": {
                "input_tokens": 472,
                "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 2000,
                "output_tokens": 1,
            },
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    # Text that merely mentions the counted events must not be mistaken for them.
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 'say "message_delta" ✓'}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 89}},
    {"type": "message_stop"},
]
EXPECTED = Usage(
    input_tokens=472, output_tokens=89, cache_read_tokens=2000, cache_creation_tokens=100, model="claude-sonnet-4-5"
)


def metered(pieces: list[bytes], content_type: str = "text/event-stream") -> Usage | None:
    meter = UsageMeter(content_type)
    for piece in pieces:
        meter.feed(piece)
    return meter.result()


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_a_stream_cut_in_two_anywhere_gives_the_same_usage(newline: str) -> None:
    data = sse(STREAM_EVENTS, newline)
    for cut in range(len(data) + 1):
        assert metered(split_at(data, [cut])) == EXPECTED, f"cut at byte {cut}"


def test_a_stream_fed_byte_by_byte_or_in_random_pieces_gives_the_same_usage() -> None:
    data = sse(STREAM_EVENTS, "\r\n")
    assert metered([data[i : i + 1] for i in range(len(data))]) == EXPECTED
    rng = random.Random(7)
    for _ in range(200):
        cuts = rng.sample(range(1, len(data)), rng.randint(1, 40))
        assert metered(split_at(data, cuts)) == EXPECTED


def test_later_cumulative_counts_replace_earlier_ones() -> None:
    events = [
        *STREAM_EVENTS[:5],
        {"type": "message_delta", "usage": {"output_tokens": 40}},
        {"type": "message_delta", "usage": {"output_tokens": 95, "input_tokens": 480, "cache_read_input_tokens": None}},
    ]
    usage = metered([sse(events)])
    assert usage == Usage(
        input_tokens=480, output_tokens=95, cache_read_tokens=2000, cache_creation_tokens=100, model="claude-sonnet-4-5"
    )


def test_events_without_an_event_line_are_still_counted() -> None:
    data = "".join(f"data: {json.dumps(e)}\n\n" for e in STREAM_EVENTS).encode()
    assert metered([data]) == EXPECTED


def test_a_stream_that_reports_no_usage_gives_none() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert metered([sse([{"type": "ping"}, error])]) is None
    assert metered([b""]) is None


def test_a_json_reply_in_pieces_gives_its_usage() -> None:
    body = json.dumps(
        {
            "id": "msg_2",
            "type": "message",
            "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "hi"}],
            "usage": {"input_tokens": 12, "output_tokens": 3, "cache_read_input_tokens": 7},
        }
    ).encode()
    pieces = split_at(body, [5, 17, 60])
    assert metered(pieces, "application/json; charset=utf-8") == Usage(
        input_tokens=12, output_tokens=3, cache_read_tokens=7, cache_creation_tokens=0, model="claude-haiku-4-5"
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}',
        b'{"input_tokens": 2000}',
        b"not json",
        b"[1, 2]",
    ],
)
def test_json_replies_without_usage_give_none(body: bytes) -> None:
    assert metered([body], "application/json") is None
