"""Sequence numbers: host rows even, container rows odd, one number space across both files.

A seq names one message in either file (the agent edits or reacts to "message
#5"), so the two writers must never hand out the same number. Parity makes that
true without any coordination between them; taking the next number above the
largest seen in *both* files keeps the numbers roughly in conversation order.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sessiondb.connection import has_table, outbound_reader


def outbound_max_seq(session: Path) -> int:
    """The largest seq in messages_out, 0 while the container has written none."""
    with outbound_reader(session) as out:
        if out is None or not has_table(out, "messages_out"):
            return 0
        return int(out.execute("SELECT COALESCE(MAX(seq), 0) FROM messages_out").fetchone()[0])


def next_even_seq(inbound: sqlite3.Connection, outbound_max: int) -> int:
    """The next even number above every seq in inbound.db and `outbound_max` (call inside the write transaction)."""
    inbound_max = int(inbound.execute("SELECT COALESCE(MAX(seq), 0) FROM messages_in").fetchone()[0])
    highest = max(inbound_max, outbound_max)
    return highest + 2 - highest % 2
