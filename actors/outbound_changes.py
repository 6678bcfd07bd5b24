"""The fast path's first look at a changed outbound.db: which lanes, if any, have new rows to send.

A container commits to outbound.db for its acks as well as for its replies, so
half the change notifications carry nothing to deliver. Reading only the rows
added since the last look (by rowid, from outbound.db alone) costs a fraction
of a full due-rows query, and only the lanes that own a new row are told to
drain. Rows that are due later than they were written (a retry, a held
message, `deliver_after`) are not new: the lanes' own timers and the slow
sweep bring them out. Runs on the watcher's thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pykka

from actors import messages as m
from actors.delivery import lane_of
from config.logs import get_logger
from sessiondb.connection import has_table, outbound_reader
from sessiondb.errors import SessionDbError

log = get_logger("delivery")


def rows_added(folder: Path, after_rowid: int) -> list[tuple[int, str, str | None]]:
    """(rowid, kind, channel_type) of messages_out rows past `after_rowid`, oldest first."""
    with outbound_reader(folder) as out:
        if out is None or not has_table(out, "messages_out"):
            return []
        rows = out.execute(
            "SELECT rowid, kind, channel_type FROM messages_out WHERE rowid > ? ORDER BY rowid", (after_rowid,)
        ).fetchall()
    return [(int(r[0]), str(r[1]), r[2]) for r in rows]


class OutboundChanges:
    """The watcher's callback: tells each lane with new rows in a session to drain it."""

    def __init__(self, lanes: Mapping[str, pykka.ActorRef[Any]], channel_lanes: frozenset[str]) -> None:
        self._lanes = dict(lanes)
        self._channel_lanes = channel_lanes
        self._seen: dict[str, int] = {}  # session id -> the last rowid looked at

    def __call__(self, folder: Path) -> None:
        session_id = folder.name
        try:
            added = rows_added(folder, self._seen.get(session_id, 0))
        except (sqlite3.Error, OSError, SessionDbError) as exc:  # unsure what changed: every lane looks
            log.debug("changes.unreadable", session_id=session_id, error=str(exc))
            self._tell(self._lanes, session_id)
            return
        if not added:
            return
        self._seen[session_id] = added[-1][0]
        if any(kind != "system" and channel_type is None for _, kind, channel_type in added):
            self._tell(self._lanes, session_id)  # the session's own channel decides; let every lane look
            return
        owners = {lane_of(kind, channel_type, self._channel_lanes) for _, kind, channel_type in added}
        self._tell({lane: ref for lane, ref in self._lanes.items() if lane in owners}, session_id)

    @staticmethod
    def _tell(lanes: Mapping[str, pykka.ActorRef[Any]], session_id: str) -> None:
        for ref in lanes.values():
            ref.tell(m.DrainSession(session_id, "new outbound rows"))
