"""`events.schema.transaction`: commit at the end of the block, roll back on any error, even a failing COMMIT."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from events.schema import transaction


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE child (id INTEGER PRIMARY KEY,"
        " parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    yield db
    db.close()


def _children(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT id FROM child")]


def test_the_block_is_committed(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("INSERT INTO parent (id) VALUES (1)")
        conn.execute("INSERT INTO child (id, parent_id) VALUES (10, 1)")
        assert conn.in_transaction
    assert not conn.in_transaction
    assert _children(conn) == [10]


def test_an_error_in_the_block_rolls_everything_back(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="midway"), transaction(conn):
        conn.execute("INSERT INTO parent (id) VALUES (1)")
        raise ValueError("midway")
    assert not conn.in_transaction
    assert conn.execute("SELECT COUNT(*) FROM parent").fetchone()[0] == 0


def test_a_commit_that_fails_is_rolled_back_and_raised(conn: sqlite3.Connection) -> None:
    """A deferred constraint fails only at COMMIT, which leaves SQLite's transaction open."""
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), transaction(conn):
        conn.execute("INSERT INTO child (id, parent_id) VALUES (10, 99)")
    assert not conn.in_transaction
    assert _children(conn) == []
