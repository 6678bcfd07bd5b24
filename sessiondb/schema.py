"""The DDL of the two session files, as plain SQL both sides can copy.

Tables and columns are those of the reference system, so a container of either
system can serve the other; hermitcrab's additions are extension columns that
have a default and that every reader treats as optional (an older file simply
lacks them). docs/session-protocol.md describes every column.

The host creates inbound.db with INBOUND_SCHEMA. The container creates
outbound.db with OUTBOUND_SCHEMA (its own copy of this text); the host never does.
"""

from __future__ import annotations

from typing import NamedTuple

INBOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages_in (
  id             TEXT PRIMARY KEY,
  seq            INTEGER UNIQUE,
  kind           TEXT NOT NULL,
  timestamp      TEXT NOT NULL,
  status         TEXT DEFAULT 'pending',
  process_after  TEXT,
  recurrence     TEXT,
  tries          INTEGER DEFAULT 0,
  platform_id    TEXT,
  channel_type   TEXT,
  thread_id      TEXT,
  content        TEXT NOT NULL,
  on_wake        INTEGER DEFAULT 0,
  status_changed TEXT
);

-- hermitcrab: the host's status queries touch only the few unfinished rows, however long the session.
CREATE INDEX IF NOT EXISTS messages_in_status ON messages_in (status);
CREATE INDEX IF NOT EXISTS messages_in_recurring ON messages_in (recurrence) WHERE recurrence IS NOT NULL;

CREATE TABLE IF NOT EXISTS delivered (
  message_out_id      TEXT PRIMARY KEY,
  platform_message_id TEXT,
  status              TEXT NOT NULL DEFAULT 'delivered',
  delivered_at        TEXT NOT NULL,
  error               TEXT
);

CREATE TABLE IF NOT EXISTS destinations (
  name            TEXT PRIMARY KEY,
  display_name    TEXT,
  type            TEXT NOT NULL,
  channel_type    TEXT,
  platform_id     TEXT,
  agent_group_id  TEXT
);

CREATE TABLE IF NOT EXISTS session_routing (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  channel_type TEXT,
  platform_id  TEXT,
  thread_id    TEXT
);
"""

OUTBOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages_out (
  id             TEXT PRIMARY KEY,
  seq            INTEGER UNIQUE,
  in_reply_to    TEXT,
  timestamp      TEXT NOT NULL,
  deliver_after  TEXT,
  recurrence     TEXT,
  kind           TEXT NOT NULL,
  platform_id    TEXT,
  channel_type   TEXT,
  thread_id      TEXT,
  content        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS processing_ack (
  message_id     TEXT PRIMARY KEY,
  status         TEXT NOT NULL,
  status_changed TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS session_state (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
"""


class Extension(NamedTuple):
    """A column hermitcrab adds to a reference table, and the value a reader assumes when it is absent."""

    table: str
    column: str
    declaration: str
    absent_value: str


# Each has a default, so older readers and writers are unaffected; an older file gets
# them by ALTER TABLE the first time the host writes it.
INBOUND_EXTENSIONS: tuple[Extension, ...] = (
    # 1 = only a freshly started container may take this row (host-written resume notes).
    Extension("messages_in", "on_wake", "INTEGER DEFAULT 0", "0"),
    # When the status last changed as the host saw it (NULL = unchanged since insert);
    # lets the host tell a container's ack from before a retry reset from one after it.
    Extension("messages_in", "status_changed", "TEXT", "NULL"),
    # Why a delivery was given up, for status='failed'.
    Extension("delivered", "error", "TEXT", "NULL"),
)

# PRAGMA user_version of an inbound.db carrying every extension above. Files created by the
# reference (version 0) are upgraded in place by the host, their only writer.
INBOUND_SCHEMA_VERSION = 1

# The statuses a container may write into processing_ack; the host copies only these.
ACK_STATUSES = ("processing", "completed", "failed")
