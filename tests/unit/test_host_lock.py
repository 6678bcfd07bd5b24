"""One host per data directory, and a crashed host never leaves a stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors.host_lock import HostAlreadyRunningError, HostLock, lock_owner


def test_second_lock_on_the_same_data_dir_is_refused_and_names_the_owner(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from actors.host_lock import HostLock;"
            "HostLock.acquire(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(HostAlreadyRunningError, match=f"pid {child.pid}"):
            HostLock.acquire(tmp_path)
        assert lock_owner(tmp_path) == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    lock = HostLock.acquire(tmp_path)
    assert lock_owner(tmp_path) == os.getpid()
    lock.release()
    assert lock_owner(tmp_path) is None
