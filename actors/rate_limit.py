"""A sliding one-minute window per (source agent, target agent) pair: what keeps agent loops bounded.

Two agents that answer each other would otherwise talk forever (two echo agents
do exactly that). Past `limit` messages in the window, further messages wait
until the oldest one in the window is a full window old.
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 60.0

Pair = tuple[str, str]


class PairRateLimiter:
    """Counts sends per pair; the caller asks before sending and records after."""

    def __init__(self, limit: int, window_s: float = WINDOW_S) -> None:
        if limit < 1:
            raise ValueError(f"a rate limit must allow at least one message, not {limit}")
        self._limit = limit
        self._window_s = window_s
        self._sent: dict[Pair, deque[float]] = {}

    def wait_time(self, pair: Pair, now: float) -> float:
        """Seconds until `pair` may send again (0.0: it may send now)."""
        sent = self._sent.get(pair)
        if sent is None:
            return 0.0
        while sent and now - sent[0] >= self._window_s:
            sent.popleft()
        if not sent:
            del self._sent[pair]
            return 0.0
        if len(sent) < self._limit:
            return 0.0
        return sent[0] + self._window_s - now

    def record(self, pair: Pair, now: float) -> None:
        self._sent.setdefault(pair, deque()).append(now)
