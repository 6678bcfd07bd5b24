"""The outbound watcher: a container's commit is noticed at once; heartbeats and host writes are not commits."""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

import sessiondb
from actors import file_watch
from actors.file_watch import SessionFolderWatcher
from tests.unit.sessiondb_fake_container import FakeContainer


class Changes(queue.Queue[str]):
    """The session ids the watcher reported, in order."""

    def report(self, folder: Path) -> None:
        self.put(folder.name)


@pytest.fixture
def changes() -> Changes:
    return Changes()


def _session(root: Path, group: str, session: str) -> Path:
    folder = root / group / session
    sessiondb.create_session_folder(folder)
    return folder


def _next(changes: queue.Queue[str], timeout: float = 2.0) -> str:
    return changes.get(timeout=timeout)


def _quiet(changes: queue.Queue[str], seconds: float = 0.3) -> bool:
    try:
        changes.get(timeout=seconds)
    except queue.Empty:
        return True
    return False


@pytest.fixture
def watcher(tmp_path: Path, changes: queue.Queue[str]) -> Iterator[SessionFolderWatcher]:
    _session(tmp_path / "sessions", "g1", "s-old")
    started = SessionFolderWatcher(tmp_path / "sessions", changes.report).start()
    yield started
    started.stop()


def test_a_commit_to_outbound_db_is_reported(watcher: SessionFolderWatcher, tmp_path: Path, changes) -> None:  # type: ignore[no-untyped-def]
    assert watcher.using_inotify
    container = FakeContainer(tmp_path / "sessions" / "g1" / "s-old")
    container.start()
    container.write_out("out-1")
    assert _next(changes) == "s-old"


def test_new_group_and_session_folders_are_picked_up(watcher: SessionFolderWatcher, tmp_path: Path, changes) -> None:  # type: ignore[no-untyped-def]
    folder = _session(tmp_path / "sessions", "g2", "s-new")
    assert _next(changes) == "s-new"  # reported once when first watched, covering earlier writes
    while not _quiet(changes, 0.2):
        pass
    FakeContainer(folder).write_out("out-1")
    assert _next(changes) == "s-new"


def test_heartbeats_and_host_writes_are_not_outbound_commits(
    watcher: SessionFolderWatcher, tmp_path: Path, changes
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "sessions" / "g1" / "s-old"
    (folder / ".heartbeat").touch()
    while not _quiet(changes, 0.2):
        pass
    for _ in range(5):
        os.utime(folder / ".heartbeat")
    sessiondb.write_routing(folder, "test", "p", None)
    assert _quiet(changes)


def test_without_inotify_the_folders_are_polled(tmp_path: Path, changes, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(file_watch._Inotify, "open", classmethod(lambda cls: None))
    folder = _session(tmp_path / "sessions", "g1", "s1")
    watcher = SessionFolderWatcher(
        tmp_path / "sessions", changes.report, fallback_interval=0.02, rescan_every=5
    ).start()
    try:
        assert not watcher.using_inotify
        FakeContainer(folder).write_out("out-1")
        assert _next(changes) == "s1"
        while not _quiet(changes, 0.2):  # the schema and the row are two commits, maybe two polls apart
            pass
        late = _session(tmp_path / "sessions", "g2", "s2")
        assert _next(changes) == "s2"
        FakeContainer(late).write_out("out-1")
        assert _next(changes) == "s2"
    finally:
        watcher.stop()
