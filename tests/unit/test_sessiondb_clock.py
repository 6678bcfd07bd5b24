"""Session-DB times: UTC text in one form, never read as local time (the run's TZ is Pacific/Auckland)."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sessiondb.clock import db_time_after, parse_db_time, parse_db_time_or_none, to_db_time, utc_now_text


def test_the_run_is_not_in_utc() -> None:
    assert time.localtime().tm_gmtoff != 0


def test_to_db_time_converts_an_aware_local_time_to_utc_text() -> None:
    auckland = datetime(2024, 7, 1, 12, 30, 15, 999_000, tzinfo=ZoneInfo("Pacific/Auckland"))
    assert to_db_time(auckland) == "2024-07-01 00:30:15"


def test_to_db_time_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_db_time(datetime(2024, 1, 1, 12, 0, 0))


def test_parse_reads_text_as_utc_not_local() -> None:
    parsed = parse_db_time("2024-01-01 00:00:00")
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.timestamp() == calendar.timegm((2024, 1, 1, 0, 0, 0))


@pytest.mark.parametrize(
    "text",
    ["2024-03-05T10:20:30Z", "2024-03-05T10:20:30.250Z", "2024-03-05 23:20:30+13:00", "2024-03-05T10:20:30"],
)
def test_parse_normalizes_iso_forms_of_old_rows(text: str) -> None:
    assert to_db_time(parse_db_time(text)) == "2024-03-05 10:20:30"


def test_parse_names_unreadable_text() -> None:
    with pytest.raises(ValueError, match="not-a-time"):
        parse_db_time("not-a-time")
    assert parse_db_time_or_none("not-a-time") is None
    assert parse_db_time_or_none(None) is None


def test_utc_now_text_is_the_sqlite_now_form_in_utc() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    text = utc_now_text()
    after = datetime.now(UTC)
    assert len(text) == 19 and text[10] == " "
    assert before <= parse_db_time(text) <= after


def test_db_time_after_rounds_up_and_never_stays_in_the_current_second() -> None:
    now = datetime(2024, 1, 1, 0, 0, 0, 400_000, tzinfo=UTC)
    assert db_time_after(now, 5) == "2024-01-01 00:00:06"
    assert db_time_after(now, 0) == "2024-01-01 00:00:01"
    assert db_time_after(now.replace(microsecond=0), 5) == "2024-01-01 00:00:05"
