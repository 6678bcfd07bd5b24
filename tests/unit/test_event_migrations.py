"""A central DB written by an earlier version (events as five columns) is migrated to whole records losslessly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from structlog.testing import capture_logs

from events import types as ev
from events.log import EventLog
from events.replay import verify
from events.schema import MIGRATIONS
from tests.unit.raw_events import database_of_version_3


def test_an_old_log_is_migrated_to_records_and_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "hermitcrab.db"
    database_of_version_3(path)
    with capture_logs(), EventLog.open(path) as log:
        read = [(r.position, r.stream, r.version, r.type, r.recorded_at) for r in log.read()]
        assert read == [
            (1, "group:g", 1, "group.created", "2026-01-01 00:00:00.000000"),
            (2, "session:s", 1, "session.created", "2026-01-02 00:00:00.000000"),
            (4, "session:s", 2, "container.idle", "2026-01-04 00:00:00.000000"),
        ]
        session = log.store.session("s")
        assert session is not None
        assert session.container_status == "idle"
        assert log.append("session:s", [ev.SessionClosed(session_id="s")], expected_version=2) == 3
        assert log.last_position() == 5
    assert verify(path) == []
    conn = sqlite3.connect(path)
    stored = conn.execute("SELECT stream, version, type, payload FROM events WHERE position = 3").fetchone()
    applied = [row[0] for row in conn.execute("SELECT version FROM migrations ORDER BY version")]
    conn.close()
    assert stored == ("future:1", 1, "future.thing", '{"type":"future.thing","whatever":[1,2]}')
    assert applied == [m.version for m in MIGRATIONS]
