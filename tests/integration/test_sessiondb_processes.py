"""Real processes sharing one session folder: two host writers and a container-side writer at once.

No Docker is needed, but these are separate OS processes with their own SQLite
connections and flocks, as the host's actors (or two host instances) and a
container would be.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sessiondb import create_session_folder, session_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PER_WRITER = 150

HOST_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sessiondb import InboundMessage, insert_message
    session, name, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.001)
    for n in range(count):
        seq = insert_message(session, InboundMessage(id=f"{name}-{n}", kind="chat", content="{}"))
        assert seq % 2 == 0, seq
    """
)

CONTAINER_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from tests.unit.sessiondb_fake_container import FakeContainer
    session, count, go = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    container = FakeContainer(session)
    container.start()
    while not go.exists():
        time.sleep(0.001)
    for n in range(count):
        container.write_out(f"out-{n}")
    """
)


def _spawn(script: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, env=env, stderr=subprocess.PIPE)


def test_two_host_processes_and_a_container_process_write_concurrently(tmp_path: Path) -> None:
    session = session_dir(tmp_path / "sessions", "ag", "s1")
    create_session_folder(session)
    go = tmp_path / "go"
    procs = [
        _spawn(HOST_WRITER, str(session), "alpha", str(PER_WRITER), str(go)),
        _spawn(HOST_WRITER, str(session), "beta", str(PER_WRITER), str(go)),
        _spawn(CONTAINER_WRITER, str(session), str(PER_WRITER // 3), str(go)),
    ]
    time.sleep(0.5)  # let every interpreter start, so the writes really overlap
    go.touch()
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr.decode()

    with sqlite3.connect(session / "inbound.db") as conn:
        host_rows = conn.execute("SELECT id, seq FROM messages_in ORDER BY seq").fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with sqlite3.connect(session / "outbound.db") as conn:
        container_seqs = [r[0] for r in conn.execute("SELECT seq FROM messages_out")]
    host_seqs = [seq for _, seq in host_rows]
    assert len(host_rows) == 2 * PER_WRITER
    assert all(seq % 2 == 0 for seq in host_seqs)
    assert all(seq % 2 == 1 for seq in container_seqs) and len(container_seqs) == PER_WRITER // 3
    assert len(set(host_seqs) | set(container_seqs)) == len(host_seqs) + len(container_seqs)
    writers_in_order = [message_id.split("-")[0] for message_id, _ in host_rows]
    assert writers_in_order.count("alpha") == writers_in_order.count("beta") == PER_WRITER
    # Interleaving proves the two processes really wrote at the same time.
    switches = sum(1 for a, b in itertools.pairwise(writers_in_order) if a != b)
    assert switches > 1
