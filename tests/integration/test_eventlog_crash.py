"""A writer process SIGKILLed at random moments never leaves the log and its tables disagreeing.

Each round starts a real child process that appends (single events and
batches, projections applied in the same transactions) as fast as it can and
prints every position it got acknowledged. The parent kills it with SIGKILL
mid-stream, then checks two things: `verify` finds no difference between the
tables and a fresh re-derivation from the log, and every acknowledged event is
in the log exactly as written.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from events.log import EventLog
from events.replay import verify

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 24

WRITER = textwrap.dedent(
    """
    import sys, uuid
    from events import types as ev
    from events.log import EventLog

    log = EventLog.open(sys.argv[1])
    if log.stream_version("group:g") == 0:
        log.append("group:g", [ev.GroupCreated(group_id="g", name="G", folder="g")], expected_version=0)
        sessions = [ev.SessionCreated(session_id=f"s{i}", agent_group_id="g") for i in range(20)]
        log.append_batch([(f"session:{s.session_id}", [s]) for s in sessions])
    print("ready", flush=True)

    def turn(n):
        sid = f"s{n % 20}"
        cid = f"c{n}"
        mark = uuid.uuid4().hex
        qid = f"q-{mark}"
        return f"session:{sid}", mark, [
            ev.MessageRouted(message_id=mark, session_id=sid, kind="chat", seq=2 * n),
            ev.ContainerSpawned(session_id=sid, container_id=cid, container_name=sid, image="i", mounts_digest="d"),
            ev.QuestionAsked(question_id=qid, session_id=sid, message_out_id=mark),
            ev.DeliveryFailed(session_id=sid, message_out_id=mark, attempt=1, error="x"),
            ev.ContainerIdle(session_id=sid, container_id=cid),
        ] + ([ev.QuestionAnswered(question_id=qid, answer="y")] if n % 3 else [])

    n = 0
    while True:
        n += 1
        if n % 2:
            stream, mark, events = turn(n)
            version = log.append(stream, events)
            print(f"{stream} {version} {mark}", flush=True)
        else:
            turns = [turn(n * 100 + k) for k in range(n % 7 + 1)]
            log.append_batch([(stream, events) for stream, _, events in turns])
            for stream, mark, events in turns:
                print(f"{stream} ? {mark}", flush=True)
    """
)


def _acknowledged(output: Path) -> list[tuple[str, str, str]]:
    """Lines the child finished writing before it died (a torn last line is not an acknowledgement)."""
    text = output.read_text()
    complete = text[: text.rfind("\n") + 1]
    lines = [line.split() for line in complete.splitlines()]
    assert lines and lines[0] == ["ready"], text[:200]
    return [(stream, version, mark) for stream, version, mark in lines[1:]]


def _run_and_kill(path: Path, output: Path, rng: random.Random) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with output.open("w") as sink:
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=sink, env=env, cwd=ROOT)
        try:
            deadline = time.monotonic() + 30
            while "ready" not in output.read_text():
                assert child.poll() is None, f"writer exited early with {child.returncode}"
                assert time.monotonic() < deadline, "writer never became ready"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.02, 0.5))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    assert child.returncode == -signal.SIGKILL


def test_sigkill_mid_append_never_leaves_log_and_tables_disagreeing(tmp_path: Path) -> None:
    path = tmp_path / "hermitcrab.db"
    rng = random.Random(20260501)
    total_acknowledged = 0
    for round_number in range(ROUNDS):
        output = tmp_path / f"round-{round_number}.out"
        _run_and_kill(path, output, rng)
        acknowledged = _acknowledged(output)

        assert verify(path) == [], f"round {round_number}"

        with EventLog.open(path) as log:
            stored: dict[str, tuple[str, int]] = {}
            for recorded in log.read(types=["message.routed"]):
                stored[recorded.event.message_id] = (recorded.stream, recorded.version)  # type: ignore[attr-defined]
            for stream, version, mark in acknowledged:
                assert mark in stored, f"round {round_number}: acknowledged event {mark} on {stream} was lost"
                assert stored[mark][0] == stream
                if version != "?":
                    # append returns the version of the last of its events: the routed message is 5 or 6 before it.
                    assert int(version) - stored[mark][1] in (4, 5)
            assert log.store.checkpoint() == log.last_position()
        total_acknowledged += len(acknowledged)
    assert total_acknowledged > ROUNDS, "the writer hardly wrote anything before being killed"
