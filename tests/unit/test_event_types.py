"""Event types survive the log unchanged, and old or foreign payloads are handled as promised."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec
import pytest
from structlog.testing import capture_logs

from events import types as ev
from events.codec import DECODERS, TAGS, encode_record
from events.log import EventDecodeError, EventLog
from tests.unit.event_samples import one_of_each
from tests.unit.raw_events import OLD_TIME, insert_raw_event


def _insert_raw(path: Path, stream: str, type_: str, payload: str) -> None:
    """Write a row the way another version of hermitcrab (or a broken disk) might have."""
    conn = sqlite3.connect(path)
    with conn:
        insert_raw_event(conn, stream, 1, type_, payload)
        conn.execute("UPDATE projection_checkpoint SET position = (SELECT MAX(position) FROM events)")
    conn.close()


def test_the_samples_cover_every_event_type() -> None:
    assert {type(event) for event in one_of_each()} == set(ev.ALL_EVENT_TYPES)


def test_every_event_type_round_trips_through_the_log(tmp_path: Path) -> None:
    samples = one_of_each()
    with EventLog.open(tmp_path / "hermitcrab.db") as log:
        for index, event in enumerate(samples):
            log.append(f"test:{index}", [event])
        read_back = list(log.read())
    assert [r.event for r in read_back] == samples
    assert [r.type for r in read_back] == [TAGS[type(e)] for e in samples]
    assert [r.position for r in read_back] == list(range(1, len(samples) + 1))


@pytest.mark.parametrize("event", one_of_each(), ids=lambda e: TAGS[type(e)])
def test_each_record_is_readable_json_with_its_tag(event: ev.Event) -> None:
    tag = TAGS[type(event)]
    record = msgspec.json.decode(encode_record(7, "test:1", 3, tag, OLD_TIME, event))
    assert record[:5] == [7, "test:1", 3, tag, OLD_TIME]
    assert record[5]["type"] == tag
    assert DECODERS[tag].decode(msgspec.json.encode(record[5])) == event


def test_tags_are_unique_and_stable() -> None:
    tags = [ev.type_name(t) for t in ev.ALL_EVENT_TYPES]
    assert len(tags) == len(set(tags))
    assert ev.type_name(ev.ContainerSpawned) == "container.spawned"
    assert ev.type_name(ev.MessageRouted) == "message.routed"


def test_an_unknown_tag_is_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "hermitcrab.db"
    with EventLog.open(path) as log:
        log.append("group:g1", [ev.GroupDeleted(group_id="g1")])
    _insert_raw(path, "future:1", "future.thing", '{"type":"future.thing","x":1}')
    with EventLog.open(path) as log:
        log.append("group:g2", [ev.GroupDeleted(group_id="g2")])
        with capture_logs() as logs:
            read_back = list(log.read())
    assert [r.event for r in read_back] == [ev.GroupDeleted(group_id="g1"), ev.GroupDeleted(group_id="g2")]
    assert [r.position for r in read_back] == [1, 3]
    warnings = [entry for entry in logs if entry["event"] == "event.unknown_type_skipped"]
    assert warnings == [
        {
            "component": "events.codec",
            "event": "event.unknown_type_skipped",
            "type": "future.thing",
            "position": 2,
            "log_level": "warning",
        }
    ]


def test_an_unknown_tag_in_the_catch_up_is_skipped_and_passed(tmp_path: Path) -> None:
    path = tmp_path / "hermitcrab.db"
    EventLog.open(path).close()
    conn = sqlite3.connect(path)
    with conn:
        insert_raw_event(conn, "future:1", 1, "future.thing", "{}")
    conn.close()
    with capture_logs() as logs, EventLog.open(path) as log:
        assert log.store.checkpoint() == 1
    assert [entry["position"] for entry in logs if entry["event"] == "event.unknown_type_skipped"] == [1]


def test_a_payload_written_before_a_field_was_added_reads_with_the_default(tmp_path: Path) -> None:
    """DestinationGranted gained `messaging_group_id`; GroupCreated has optional fields an old writer omitted."""
    path = tmp_path / "hermitcrab.db"
    EventLog.open(path).close()
    old_grant = (
        '{"type":"destination.granted","agent_group_id":"g1","name":"home","kind":"agent",'
        '"target_agent_group_id":"g2","schema":1}'
    )
    _insert_raw(path, "group:g1", "destination.granted", old_grant)
    with EventLog.open(path) as log:
        (recorded,) = log.read()
    assert recorded.event == ev.DestinationGranted(
        agent_group_id="g1", name="home", kind="agent", target_agent_group_id="g2"
    )
    assert isinstance(recorded.event, ev.DestinationGranted)
    assert recorded.event.messaging_group_id is None


def test_a_payload_without_the_schema_field_reads_as_schema_1() -> None:
    event = DECODERS["group.created"].decode('{"group_id":"g","name":"n","folder":"f"}')
    assert event == ev.GroupCreated(group_id="g", name="n", folder="f", schema=1)


@pytest.mark.parametrize(
    "payload",
    ['{"type":"group.deleted"}', '{"type":"group.deleted","group_id":42}', '["group.deleted"]'],
    ids=["missing field", "wrong type", "not an object"],
)
def test_a_payload_that_does_not_decode_names_its_position(tmp_path: Path, payload: str) -> None:
    path = tmp_path / "hermitcrab.db"
    with EventLog.open(path) as log:
        log.append("group:a", [ev.GroupDeleted(group_id="a")])
    conn = sqlite3.connect(path)
    with conn:
        insert_raw_event(conn, "group:b", 1, "group.deleted", payload)
    conn.close()
    with pytest.raises(EventDecodeError, match="position 2") as raised:
        EventLog.open(path)
    assert raised.value.position == 2
    assert raised.value.type == "group.deleted"


def test_a_record_of_the_wrong_shape_names_its_position(tmp_path: Path) -> None:
    path = tmp_path / "hermitcrab.db"
    with EventLog.open(path) as log:
        log.append("group:a", [ev.GroupDeleted(group_id="a")])
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO events (position, record) VALUES (2, ?)", ('[2,"group:b",1,7,"t",{}]',))
        conn.execute("UPDATE projection_checkpoint SET position = 1")  # not applied yet: the next open applies it
    conn.close()
    with pytest.raises(EventDecodeError, match="position 2") as raised:
        EventLog.open(path)
    assert "not an event record" in str(raised.value)


def test_reading_stops_at_a_bad_payload_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "hermitcrab.db"
    with EventLog.open(path) as log:
        log.append("group:a", [ev.GroupDeleted(group_id="a")] * 3)
    _insert_raw(path, "group:b", "group.deleted", '{"type":"group.deleted","group_id":[1]}')
    with EventLog.open(path) as log:
        reader = log.read()
        assert [next(reader).position for _ in range(3)] == [1, 2, 3]
        with pytest.raises(EventDecodeError, match="log position 4"):
            next(reader)


def test_an_event_class_outside_the_union_is_refused(tmp_path: Path) -> None:
    class Stray(ev.Event, tag="stray", frozen=True):
        pass

    with EventLog.open(tmp_path / "hermitcrab.db") as log:
        with pytest.raises(TypeError, match="Stray"):
            log.append("x:1", [ev.GroupDeleted(group_id="g"), Stray()])
        assert log.last_position() == 0
