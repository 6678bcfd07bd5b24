"""The log's clock: UTC text with six fractional digits, right across second boundaries."""

from __future__ import annotations

import calendar
import time

import pytest

from events import clock


def at(monkeypatch: pytest.MonkeyPatch, utc: str, nanos: int) -> str:
    """recorded_now() when the machine's clock reads `utc` (YYYY-MM-DD HH:MM:SS) plus `nanos`."""
    seconds = calendar.timegm(time.strptime(utc, "%Y-%m-%d %H:%M:%S"))
    monkeypatch.setattr(clock.time, "time_ns", lambda: seconds * 1_000_000_000 + nanos)
    return clock.recorded_now()


def test_times_follow_the_clock_across_seconds_minutes_and_days(monkeypatch: pytest.MonkeyPatch) -> None:
    assert at(monkeypatch, "2026-11-27 23:59:58", 250_000_000) == "2026-11-27 23:59:58.250000"
    assert at(monkeypatch, "2026-11-27 23:59:58", 500_000_999) == "2026-11-27 23:59:58.500000"
    assert at(monkeypatch, "2026-11-27 23:59:59", 1_000) == "2026-11-27 23:59:59.000001"
    assert at(monkeypatch, "2026-11-28 00:00:00", 0) == "2026-11-28 00:00:00.000000"
    assert at(monkeypatch, "2026-11-27 23:59:58", 999_999_999) == "2026-11-27 23:59:58.999999"  # a clock set back


def test_a_time_is_utc_whatever_the_hosts_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert time.strftime("%Z") != "UTC"  # conftest runs everything in Pacific/Auckland
    assert at(monkeypatch, "2026-06-01 12:00:00", 500_000_000) == "2026-06-01 12:00:00.500000"
    assert clock.plain("2026-06-01 12:00:00.500000") == "2026-06-01 12:00:00"
