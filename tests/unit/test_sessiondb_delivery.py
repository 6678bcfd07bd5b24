"""Reading what the container wants sent, and recording what the host sent, in inbound.db only."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sessiondb import (
    ProtocolViolation,
    create_session_folder,
    due_outbound,
    record_delivered,
    record_failed,
    session_dir,
    to_db_time,
)
from tests.unit.sessiondb_fake_container import FakeContainer


@pytest.fixture
def session(tmp_path: Path) -> Path:
    folder = session_dir(tmp_path / "sessions", "ag", "s1")
    create_session_folder(folder)
    return folder


def _ids(session: Path, now: datetime | None = None) -> list[str]:
    return [m.id for m in due_outbound(session, now=now)]


def test_missing_outbound_db_reads_as_empty(session: Path) -> None:
    assert due_outbound(session) == []


def test_outbound_db_without_tables_reads_as_empty(session: Path) -> None:
    sqlite3.connect(session / "outbound.db").close()
    assert due_outbound(session) == []


def test_due_rows_come_in_seq_order_with_their_fields(session: Path) -> None:
    container = FakeContainer(session)
    container.write_out("o1", content='{"text":"first"}', timestamp="2024-01-01 10:00:05")
    container.write_out("o2", content='{"text":"second"}', timestamp="2024-01-01 10:00:01")
    [first, second] = due_outbound(session)
    assert (first.id, first.seq, first.content) == ("o1", 1, '{"text":"first"}')
    assert first.timestamp == datetime(2024, 1, 1, 10, 0, 5, tzinfo=UTC)
    assert second.seq == 3


def test_deliver_after_is_honoured_in_utc(session: Path) -> None:
    container = FakeContainer(session)
    now = datetime.now(UTC)
    container.write_out("past", deliver_after=to_db_time(now - timedelta(seconds=1)))
    container.write_out("soon", deliver_after=to_db_time(now + timedelta(hours=1)))
    container.write_out("iso", deliver_after=(now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    assert _ids(session) == ["past", "iso"]
    assert _ids(session, now + timedelta(hours=1, seconds=1)) == ["past", "soon", "iso"]


def test_an_iso_time_later_today_is_not_due_early(session: Path) -> None:
    """Compared as text, '...T...Z' sorts after '... ' on the same day; normalized, it must not."""
    container = FakeContainer(session)
    now = datetime(2024, 5, 5, 12, 0, 0, tzinfo=UTC)
    container.write_out("later", deliver_after="2024-05-05T12:30:00Z")
    container.write_out("earlier", deliver_after="2024-05-05T11:30:00Z")
    assert _ids(session, now) == ["earlier"]


def test_delivered_and_failed_rows_are_no_longer_due(session: Path) -> None:
    container = FakeContainer(session)
    for name in ("o1", "o2", "o3"):
        container.write_out(name)
    assert record_delivered(session, "o1", "plat-1")
    assert record_failed(session, "o2", "channel said 500")
    assert _ids(session) == ["o3"]


def test_record_delivered_is_idempotent_and_the_first_record_stands(session: Path) -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    assert record_delivered(session, "o1", "plat-1", now=at)
    assert not record_delivered(session, "o1", "plat-2")
    with sqlite3.connect(session / "inbound.db") as conn:
        row = conn.execute("SELECT platform_message_id, status, delivered_at, error FROM delivered").fetchone()
    assert row == ("plat-1", "delivered", "2024-01-01 00:00:00", None)


def test_record_failed_never_overrides_a_delivery_but_a_delivery_overrides_a_failure(session: Path) -> None:
    assert record_failed(session, "o1", "timeout")
    assert not record_failed(session, "o1", "timeout again")
    assert record_delivered(session, "o1", "plat-9")
    assert not record_failed(session, "o1", "late failure")
    with sqlite3.connect(session / "inbound.db") as conn:
        assert conn.execute("SELECT status, platform_message_id, error FROM delivered").fetchall() == [
            ("delivered", "plat-9", None)
        ]


def test_wal_mode_outbound_is_refused(session: Path) -> None:
    conn = sqlite3.connect(session / "outbound.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE messages_out (id TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(ProtocolViolation, match="WAL"):
        due_outbound(session)


def test_a_symlinked_outbound_db_is_refused(tmp_path: Path, session: Path) -> None:
    elsewhere = tmp_path / "other.db"
    sqlite3.connect(elsewhere).close()
    (session / "outbound.db").symlink_to(elsewhere)
    with pytest.raises(ProtocolViolation, match="symlink"):
        due_outbound(session)
