"""Waking on inbound.db changes: inotify when available, stat polling otherwise."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent_runner import wake
from agent_runner.wake import ChangeSignal, InboundWatcher, is_commit_event
from tests.unit.runner_support import add_message, chat, create_inbound, wait_for


def test_signal_wakes_waiters_and_times_out() -> None:
    signal = ChangeSignal()
    seen = signal.generation
    started = time.monotonic()
    assert signal.wait(seen, 0.05) == seen
    assert time.monotonic() - started >= 0.04
    threading.Timer(0.05, signal.notify).start()
    assert signal.wait(seen, 5) == seen + 1


def test_commit_events() -> None:
    assert is_commit_event(wake.IN_CLOSE_WRITE, "inbound.db", "inbound.db")
    assert is_commit_event(wake.IN_DELETE, "inbound.db-journal", "inbound.db")
    assert is_commit_event(wake.IN_MOVED_TO, "inbound.db", "inbound.db")
    assert is_commit_event(wake.IN_Q_OVERFLOW, "", "inbound.db")
    assert not is_commit_event(wake.IN_MODIFY, "inbound.db", "inbound.db")
    assert not is_commit_event(wake.IN_CLOSE_WRITE, "outbound.db", "inbound.db")
    assert not is_commit_event(wake.IN_CREATE, "inbound.db-journal", "inbound.db")


def watch(path: Path, interval: float) -> tuple[ChangeSignal, InboundWatcher]:
    signal = ChangeSignal()
    return signal, InboundWatcher(path, signal, fallback_interval=interval).start()


def test_inotify_reports_a_host_commit_quickly(tmp_path: Path) -> None:
    create_inbound(tmp_path / "inbound.db")
    signal, watcher = watch(tmp_path / "inbound.db", interval=30)  # polling too slow to matter
    try:
        assert watcher.using_inotify
        seen = signal.generation
        started = time.monotonic()
        add_message(tmp_path, "m1", chat("hi"))
        wait_for(lambda: watcher.changes > 0, timeout=2, what="inotify wake")
        assert time.monotonic() - started < 0.5
        assert signal.generation != seen
    finally:
        watcher.stop()


def test_writes_to_other_files_do_not_wake(tmp_path: Path) -> None:
    create_inbound(tmp_path / "inbound.db")
    _signal, watcher = watch(tmp_path / "inbound.db", interval=30)
    try:
        (tmp_path / "outbound.db").write_bytes(b"x")
        (tmp_path / ".heartbeat").touch()
        time.sleep(0.2)
        assert watcher.changes == 0
    finally:
        watcher.stop()


def test_polling_fallback_without_inotify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wake.Inotify, "watch_directory", classmethod(lambda cls, d, m: None))
    create_inbound(tmp_path / "inbound.db")
    _signal, watcher = watch(tmp_path / "inbound.db", interval=0.05)
    try:
        assert not watcher.using_inotify
        time.sleep(0.15)
        assert watcher.changes == 0  # no change, no wake
        add_message(tmp_path, "m1", chat("hi"))
        wait_for(lambda: watcher.changes > 0, timeout=2, what="stat fallback wake")
    finally:
        watcher.stop()


def test_creation_of_inbound_is_noticed(tmp_path: Path) -> None:
    _signal, watcher = watch(tmp_path / "inbound.db", interval=30)
    try:
        create_inbound(tmp_path / "inbound.db")
        wait_for(lambda: watcher.changes > 0, timeout=2, what="creation wake")
    finally:
        watcher.stop()
