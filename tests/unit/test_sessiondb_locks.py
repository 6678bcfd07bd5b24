"""The host's checks of a session DB file must never drop the locks its own writers hold.

Closing any descriptor of a file releases every POSIX lock the process holds on
it. If a check opened inbound.db while another host thread was committing, the
container would find the host's journal "hot": its reads would fail with
"attempt to write a readonly database" (seen under load before the checks went
through lstat and SQLite only), and a writer there would roll the host back.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sessiondb
from sessiondb.connection import _file_state, inbound_writer

_READER = """
import sqlite3, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=0.2)
try:
    conn.execute("SELECT count(*) FROM messages_in").fetchone()
    print("read")
except sqlite3.OperationalError as exc:
    print(exc)
"""


def _other_process_reads(path: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", _READER, str(path)], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()


def test_a_state_check_during_a_host_commit_keeps_the_write_lock(tmp_path: Path) -> None:
    folder = tmp_path / "g" / "s"
    sessiondb.create_session_folder(folder)
    path = sessiondb.inbound_path(folder)
    with inbound_writer(folder) as conn:
        conn.execute("PRAGMA cache_size=1")  # spill to the file: a journal exists, an exclusive lock is held
        conn.executemany(
            "INSERT INTO messages_in (id, kind, timestamp, content) VALUES (?, 'chat', '2026-01-01 00:00:00', ?)",
            [(f"m{n}", "x" * 3000) for n in range(200)],
        )
        assert _file_state(path) == "ok"  # what every other host thread does before it opens the file
        assert _other_process_reads(path) == "database is locked"
    assert _other_process_reads(path) == "read"
