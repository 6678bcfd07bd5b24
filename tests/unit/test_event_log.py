"""The log itself: versions, optimistic concurrency, append-only, durability settings, threads, restarts."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from events import types as ev
from events.clock import PLAIN_LENGTH
from events.log import EventLog, ProjectionError, StaleVersionError
from events.query import CHUNK
from events.schema import IN_STEP, MIGRATIONS
from tests.unit.raw_events import insert_raw_event


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    opened = EventLog.open(tmp_path / "data" / "hermitcrab.db")
    yield opened
    opened.close()


def _deleted(n: int) -> list[ev.Event]:
    return [ev.GroupDeleted(group_id=f"g{i}") for i in range(n)]


def test_append_returns_the_new_stream_version_and_positions_are_global(log: EventLog) -> None:
    assert log.append("group:a", _deleted(2)) == 2
    assert log.append("group:b", _deleted(1)) == 1
    assert log.append("group:a", _deleted(1), expected_version=2) == 3
    assert log.stream_version("group:a") == 3
    assert log.stream_version("group:none") == 0
    assert log.last_position() == 4
    rows = [(r.position, r.stream, r.version) for r in log.read()]
    assert rows == [(1, "group:a", 1), (2, "group:a", 2), (3, "group:b", 1), (4, "group:a", 3)]


def test_a_stale_expected_version_is_refused_and_nothing_is_stored(log: EventLog) -> None:
    log.append("session:s", [ev.SessionCreated(session_id="s", agent_group_id="g")], expected_version=0)
    with pytest.raises(StaleVersionError) as raised:
        log.append("session:s", [ev.SessionClosed(session_id="s")], expected_version=0)
    assert (raised.value.stream, raised.value.expected, raised.value.actual) == ("session:s", 0, 1)
    assert log.last_position() == 1
    session = log.store.session("s")
    assert session is not None
    assert session.status == "active"
    log.append("session:s", [ev.SessionClosed(session_id="s")], expected_version=1)
    assert log.store.session("s") is not None
    assert log.store.sessions(status="closed")[0].id == "s"


def test_an_empty_append_stores_nothing(log: EventLog) -> None:
    assert log.append("group:a", [], expected_version=0) == 0
    assert log.last_position() == 0
    assert list(log.read()) == []


def test_an_empty_stream_id_is_refused(log: EventLog) -> None:
    with pytest.raises(ValueError, match="stream id"):
        log.append("", _deleted(1))
    assert log.last_position() == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET record = record",
        "DELETE FROM events",
        "UPDATE events SET record = json_set(record, '$[1]', 'x') WHERE position = 1",
    ],
)
def test_the_database_refuses_to_change_or_delete_events(log: EventLog, statement: str) -> None:
    log.append("group:a", _deleted(2))
    conn = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(statement)
    conn.close()
    assert [r.version for r in log.read()] == [1, 2]


def test_the_database_refuses_a_duplicate_stream_version(log: EventLog) -> None:
    log.append("group:a", _deleted(1))
    conn = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        insert_raw_event(conn, "group:a", 1, "t", "{}")
    conn.close()


@pytest.mark.parametrize(
    ("record", "refusal"),
    [
        ("not json", "malformed JSON"),
        ('[2,"group:a",null,"group.deleted","2026-01-01 00:00:00",{}]', "NOT NULL constraint failed: events.version"),
        ('[2,null,2,"group.deleted","2026-01-01 00:00:00",{}]', "NOT NULL constraint failed: events.stream"),
        ('[9,"group:a",2,"group.deleted","2026-01-01 00:00:00",{}]', "CHECK constraint failed"),
    ],
    ids=["not json", "no version", "no stream", "another position"],
)
def test_the_database_refuses_a_malformed_record(log: EventLog, record: str, refusal: str) -> None:
    log.append("group:a", _deleted(1))
    conn = sqlite3.connect(log.path)
    with pytest.raises((sqlite3.IntegrityError, sqlite3.OperationalError), match=refusal):
        conn.execute("INSERT INTO events (position, record) VALUES (2, ?)", (record,))
    conn.close()
    assert [r.position for r in log.read()] == [1]


def test_the_columns_of_a_stored_event_are_readable_in_sql(log: EventLog) -> None:
    """Ad-hoc SQL (and the filters) see position, stream, version, type, payload and recorded_at as columns."""
    log.append("group:a", [ev.GroupDeleted(group_id="a")])
    conn = sqlite3.connect(log.path)
    row = conn.execute("SELECT position, stream, version, type, json_extract(payload, '$.group_id') FROM events")
    assert row.fetchall() == [(1, "group:a", 1, "group.deleted", "a")]
    (recorded_at,) = conn.execute("SELECT recorded_at FROM events").fetchone()
    conn.close()
    assert recorded_at == next(log.read()).recorded_at


def test_the_central_db_is_wal_with_full_sync(log: EventLog) -> None:
    writer = log._writer
    assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_recorded_at_is_utc_with_microseconds_in_a_non_utc_zone(log: EventLog) -> None:
    assert time.strftime("%Z") != "UTC"  # conftest runs everything in Pacific/Auckland
    log.append("group:a", _deleted(1))
    (recorded,) = log.read()
    utc_now = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    assert recorded.recorded_at[:16] in {utc_now, time.strftime("%Y-%m-%d %H:%M", time.gmtime(time.time() - 60))}
    assert len(recorded.recorded_at) == PLAIN_LENGTH + 7
    assert recorded.recorded_at[PLAIN_LENGTH] == "."
    log.append("session:s", [ev.SessionCreated(session_id="s", agent_group_id="g")])
    session = log.store.session("s")
    assert session is not None
    (created,) = log.read(stream="session:s")
    assert session.created_at == created.recorded_at[:PLAIN_LENGTH]


def test_a_conflicting_event_fails_the_whole_append(log: EventLog) -> None:
    log.append("group:a", [ev.GroupCreated(group_id="a", name="A", folder="shared")])
    with pytest.raises(ProjectionError, match=r"group\.created on stream 'group:b'.*folder"):
        log.append(
            "group:b",
            [
                ev.GroupCreated(group_id="b", name="B", folder="other"),
                ev.GroupCreated(group_id="c", name="C", folder="shared"),
            ],
        )
    assert log.last_position() == 1
    assert log.store.agent_group("b") is None
    assert log.stream_version("group:b") == 0
    assert log.append("group:b", [ev.GroupCreated(group_id="b", name="B", folder="other")], expected_version=0) == 1


def test_append_batch_writes_many_streams_in_one_transaction(log: EventLog) -> None:
    log.append("group:a", _deleted(1))
    log.append_batch([("group:a", _deleted(2)), ("group:b", _deleted(1)), ("group:a", _deleted(1))])
    rows = [(r.stream, r.version) for r in log.read()]
    assert rows == [("group:a", 1), ("group:a", 2), ("group:a", 3), ("group:b", 1), ("group:a", 4)]
    assert {r.recorded_at for r in log.read(after=1)} == {next(iter(log.read(after=1))).recorded_at}


def test_append_batch_is_all_or_nothing(log: EventLog) -> None:
    log.append("group:a", [ev.GroupCreated(group_id="a", name="A", folder="f")])
    with pytest.raises(ProjectionError):
        log.append_batch(
            [
                ("session:s", [ev.SessionCreated(session_id="s", agent_group_id="a")]),
                ("group:x", [ev.GroupCreated(group_id="x", name="X", folder="f")]),
            ]
        )
    assert log.last_position() == 1
    assert log.store.session("s") is None


def test_ten_threads_append_concurrently_without_losing_or_duplicating(log: EventLog) -> None:
    per_thread = 60
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(per_thread):
                stream = f"session:t{n}" if i % 2 else "host"
                log.append(stream, [ev.WakeRequested(session_id=f"t{n}", reason=str(i))])
                log.store.session(f"t{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    events = list(log.read())
    assert [r.position for r in events] == list(range(1, 10 * per_thread + 1))
    assert [r.version for r in events if r.stream == "host"] == list(range(1, 10 * per_thread // 2 + 1))
    for n in range(10):
        mine = [r for r in events if r.stream == f"session:t{n}"]
        assert [r.version for r in mine] == list(range(1, per_thread // 2 + 1))
        assert [r.event.reason for r in mine] == [str(i) for i in range(1, per_thread, 2)]  # type: ignore[attr-defined]


def test_optimistic_concurrency_lets_exactly_one_racer_win(log: EventLog) -> None:
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def racer(n: int) -> None:
        barrier.wait()
        try:
            log.append("session:race", [ev.WakeRequested(session_id="race", reason=str(n))], expected_version=0)
            outcomes.append("won")
        except StaleVersionError:
            outcomes.append("stale")

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["stale"] * 7 + ["won"]
    assert log.stream_version("session:race") == 1


def test_two_processes_worth_of_writers_on_one_file_keep_versions_right(tmp_path: Path) -> None:
    """A second writer (say, an admin command) appends between ours: our cached versions must not be trusted."""
    path = tmp_path / "hermitcrab.db"
    first, second = EventLog.open(path), EventLog.open(path)
    try:
        assert first.append("group:a", _deleted(1)) == 1
        assert second.append("group:a", _deleted(1)) == 2
        assert first.append("group:a", _deleted(1)) == 3
        with pytest.raises(StaleVersionError):
            second.append("group:a", _deleted(1), expected_version=2)
        first.append_batch([("group:a", _deleted(1))])
        assert second.append("group:a", _deleted(1), expected_version=4) == 5
        with pytest.raises(StaleVersionError) as raised:  # first remembers version 4: the file says 5
            first.append("group:a", _deleted(1), expected_version=4)
        assert raised.value.actual == 5
        assert second.append("group:b", _deleted(1)) == 1
        assert first.append("group:c", _deleted(1)) == 1  # its position was taken by second: retried
        stored = [(r.position, r.stream, r.version) for r in first.read()]
        assert stored == [
            (p, s, v)
            for p, (s, v) in enumerate(
                [("group:a", v) for v in range(1, 6)] + [("group:b", 1), ("group:c", 1)], start=1
            )
        ]
    finally:
        first.close()
        second.close()


def test_an_insert_that_collides_again_with_fresh_state_raises_the_real_error(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One retry covers another writer's append; a record the database refuses twice is a real error."""
    log.append("group:a", _deleted(1))
    monkeypatch.setattr("events.log.encode_record", lambda *parts: '[99,"group:a",2,"group.deleted","t",{}]')
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        log.append("group:a", _deleted(1))
    monkeypatch.undo()
    assert log.append("group:a", _deleted(1)) == 2
    assert [r.position for r in log.read()] == [1, 2]


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "hermitcrab.db"
    with EventLog.open(path) as log:
        log.append("group:g", [ev.GroupCreated(group_id="g", name="G", folder="g")])
    with EventLog.open(path) as log:
        assert log.last_position() == 1
        assert log.store.agent_group("g") is not None
        assert log.append("group:g", [ev.GroupInitialized(group_id="g", steps=[])], expected_version=1) == 2


def test_migrations_are_recorded_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "hermitcrab.db"
    EventLog.open(path).close()
    EventLog.open(path).close()
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT version, name FROM migrations ORDER BY version").fetchall()
    conn.close()
    assert rows == [(m.version, m.name) for m in MIGRATIONS]
    assert rows[:2] == [(1, "event-log"), (2, "projections")]


def test_open_catches_up_from_the_checkpoint_only(tmp_path: Path) -> None:
    """Events after the checkpoint (e.g. a migration reset it) are applied on open; earlier ones are not re-applied."""
    path = tmp_path / "hermitcrab.db"
    with EventLog.open(path) as log:
        log.append("group:g", [ev.GroupCreated(group_id="g", name="G", folder="g")])
        log.append("session:s", [ev.SessionCreated(session_id="s", agent_group_id="g")])
    conn = sqlite3.connect(path)
    with conn:
        insert_raw_event(
            conn, "session:s", 2, "container.idle", '{"type":"container.idle","session_id":"s","container_id":"c"}'
        )
        # A projection row the catch-up must leave alone: only events after the checkpoint are applied.
        conn.execute("UPDATE agent_groups SET name = 'kept' WHERE id = 'g'")
    conn.close()
    with EventLog.open(path) as log:
        assert log.store.checkpoint() == 3
        session = log.store.session("s")
        assert session is not None
        assert session.container_status == "idle"
        group = log.store.agent_group("g")
        assert group is not None
        assert group.name == "kept"


def test_appends_keep_the_tables_in_step_without_writing_the_checkpoint(log: EventLog) -> None:
    log.append("group:a", _deleted(3))
    conn = sqlite3.connect(log.path)
    (stored,) = conn.execute("SELECT position FROM projection_checkpoint").fetchone()
    conn.close()
    assert stored == IN_STEP
    assert log.store.checkpoint() == log.last_position() == 3


def test_open_does_not_scan_the_events_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Restart cost must not grow with the log: every statement open runs on events is an index seek."""
    path = tmp_path / "hermitcrab.db"
    with EventLog.open(path) as log:
        log.append_batch([(f"session:s{i}", [ev.WakeRequested(session_id=f"s{i}")]) for i in range(2000)])
    statements: list[str] = []
    original = sqlite3.connect

    def traced(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = original(*args, **kwargs)  # type: ignore[arg-type]
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    EventLog.open(path).close()
    monkeypatch.undo()
    on_events = [s for s in statements if " events" in s and not s.startswith(("PRAGMA", "CREATE"))]
    assert on_events
    conn = sqlite3.connect(path)
    for statement in on_events:
        plan = " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}"))
        assert "SCAN events" not in plan, (statement, plan)
    conn.close()


def test_read_filters(log: EventLog) -> None:
    log.append("group:g", [ev.GroupCreated(group_id="g", name="G", folder="g")])
    log.append(
        "session:s1", [ev.SessionCreated(session_id="s1", agent_group_id="g"), ev.WakeRequested(session_id="s1")]
    )
    log.append("session:s2", [ev.SessionCreated(session_id="s2", agent_group_id="other")])
    log.append("question:q", [ev.QuestionAsked(question_id="q", session_id="s1", message_out_id="o")])
    log.append("sessionless", [ev.MessageDropped(message_id="m", reason="r")])

    def positions(**filters: object) -> list[int]:
        return [r.position for r in log.read(**filters)]  # type: ignore[arg-type]

    assert positions(stream="session:s1") == [2, 3]
    assert positions(stream_prefix="session:") == [2, 3, 4]
    assert positions(types=["session.created", "message.dropped"]) == [2, 4, 6]
    assert positions(after=4) == [5, 6]
    assert positions(limit=2) == [1, 2]
    assert positions(after=1, limit=1) == [2]
    assert positions(limit=0) == []
    assert positions(session="s1") == [2, 3, 5]
    assert positions(group="g") == [1, 2, 3, 5]
    assert positions(since="2000-01-01 00:00:00") == [1, 2, 3, 4, 5, 6]
    assert positions(since="2999-01-01 00:00:00") == []


def test_a_filtered_read_past_an_unknown_record_returns_every_other_match_once(log: EventLog) -> None:
    """The careful path reads its chunk again by filter and position: it must find exactly the same rows."""
    per_round = 1200
    for round_ in range(2):
        log.append_batch([(f"session:{'ab'[i % 2]}", [ev.WakeRequested(session_id=str(i))]) for i in range(per_round)])
        if round_ == 0:
            conn = sqlite3.connect(log.path)
            with conn:
                insert_raw_event(conn, "session:a", log.stream_version("session:a") + 1, "future.thing", "{}")
            conn.close()
    expected = [r.position for r in log.read() if r.stream == "session:a"]
    assert len(expected) == per_round  # half of each round, and nothing of the unknown record
    assert CHUNK < per_round // 2 < 2 * CHUNK  # the unknown record lies in the second chunk of the filtered read
    assert [r.position for r in log.read(stream="session:a")] == expected
    assert [r.position for r in log.read(stream="session:a", after=expected[10])] == expected[11:]
    assert [r.position for r in log.read()] == [p for p in range(1, 2 * per_round + 2) if p != per_round + 1]


def test_read_connections_of_finished_threads_are_released(tmp_path: Path) -> None:
    log = EventLog.open(tmp_path / "central.db")
    try:

        def read_once() -> None:
            log.store.agent_groups()

        for _ in range(30):
            thread = threading.Thread(target=read_once)
            thread.start()
            thread.join()
        read_once()
        assert log.store._connections.open_count() <= 2  # this thread's and at most the last finished one's
    finally:
        log.close()
