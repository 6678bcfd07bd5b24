"""Replay: the tables re-derived from the log equal the live ones, and verify reports every difference."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from events import types as ev
from events.log import EventLog
from events.projections import PROJECTION_TABLES
from events.replay import rebuild, verify
from tests.unit.event_samples import HistoryWriter
from tests.unit.raw_events import insert_raw_event


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in PROJECTION_TABLES
        }
    finally:
        conn.close()


def _write_history(path: Path, seed: int, steps: int) -> None:
    history = HistoryWriter(seed)
    with EventLog.open(path) as log:
        pending: list[tuple[str, list[ev.Event]]] = []
        for i in range(steps):
            item = history.step()
            if i % 3:
                log.append(*item)
            else:
                pending.append(item)
                if len(pending) == 5:
                    log.append_batch(pending)
                    pending = []
        log.append_batch(pending)


def _tamper(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(statement)
    conn.close()


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "hermitcrab.db"
    _write_history(path, seed=7, steps=1500)
    return path


def test_the_random_history_fills_every_projection(history: Path) -> None:
    tables = _dump(history)
    assert all(tables[table] for table in PROJECTION_TABLES), {t: len(rows) for t, rows in tables.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rebuild_equals_live(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "hermitcrab.db"
    _write_history(path, seed=seed, steps=800)
    live = _dump(path)
    assert verify(path) == []
    assert rebuild(path) > 0
    assert _dump(path) == live
    assert verify(path) == []


def test_verify_reports_a_changed_value(history: Path) -> None:
    _tamper(history, "UPDATE sessions SET container_status = 'bogus' WHERE rowid = (SELECT MIN(rowid) FROM sessions)")
    (difference,) = verify(history)
    assert difference.startswith("sessions [id=")
    assert "container_status live='bogus'" in difference


def test_verify_reports_missing_and_extra_rows(history: Path) -> None:
    _tamper(history, "DELETE FROM agent_groups WHERE rowid = (SELECT MIN(rowid) FROM agent_groups)")
    _tamper(
        history,
        "INSERT INTO tasks (task_id, session_id, status, created_at, updated_at)"
        " VALUES ('forged', 's', 'scheduled', 'x', 'x')",
    )
    differences = verify(history)
    assert len(differences) == 2
    assert any(d.startswith("agent_groups [id=") and "missing from the live table" in d for d in differences)
    assert "tasks [task_id='forged']: in the live table but not derived from the log" in differences


def test_verify_reports_a_lagging_checkpoint(history: Path) -> None:
    _tamper(history, "UPDATE projection_checkpoint SET position = (SELECT MAX(position) - 1 FROM events)")
    differences = verify(history)
    assert differences[0].startswith("checkpoint: the projections reflect position")


def test_verify_caps_the_report_per_table(history: Path) -> None:
    _tamper(history, "UPDATE sessions SET last_active = 'x'")
    differences = verify(history)
    assert len(differences) == 21
    assert differences[-1].startswith("sessions: and ")


def test_verify_never_writes_the_live_file(history: Path) -> None:
    _tamper(history, "UPDATE sessions SET container_status = 'bogus'")
    before = hashlib.sha256(history.read_bytes()).hexdigest()
    assert verify(history)
    assert hashlib.sha256(history.read_bytes()).hexdigest() == before


def test_verify_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        verify(tmp_path / "absent.db")
    assert not (tmp_path / "absent.db").exists()


def test_verify_reports_a_log_that_cannot_be_replayed(history: Path) -> None:
    conn = sqlite3.connect(history)
    with conn:
        insert_raw_event(conn, "x", 1, "group.deleted", '{"group_id": 5}')
    conn.close()
    differences = verify(history)
    assert differences[-1].startswith("log: re-deriving failed: event at log position")


def test_rebuild_repairs_tampered_tables(history: Path) -> None:
    live = _dump(history)
    _tamper(history, "DELETE FROM sessions")
    _tamper(history, "UPDATE agent_groups SET name = 'x'")
    assert verify(history)
    rebuild(history)
    assert _dump(history) == live
    assert verify(history) == []


def test_verify_runs_beside_a_writer(history: Path) -> None:
    with EventLog.open(history) as log:
        log.append("session:new", [ev.SessionCreated(session_id="new", agent_group_id="g1")])
        assert verify(history) == []
        log.append("session:new", [ev.SessionClosed(session_id="new")])
        assert verify(history) == []


def test_verify_reports_a_file_the_host_has_not_migrated_yet(history: Path) -> None:
    _tamper(history, "DELETE FROM migrations WHERE version = (SELECT MAX(version) FROM migrations)")
    (difference,) = verify(history)
    assert difference.startswith("schema: the file is at migration")
