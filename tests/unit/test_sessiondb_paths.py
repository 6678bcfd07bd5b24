"""Session folder paths: ids that could leave the sessions folder are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessiondb import InvalidInput, heartbeat_path, inbound_path, inbox_dir, outbound_path, outbox_dir, session_dir


def test_session_dir_layout(tmp_path: Path) -> None:
    folder = session_dir(tmp_path, "ag-1", "sess-1")
    assert folder == tmp_path / "ag-1" / "sess-1"
    assert inbound_path(folder) == folder / "inbound.db"
    assert outbound_path(folder) == folder / "outbound.db"
    assert heartbeat_path(folder) == folder / ".heartbeat"
    assert outbox_dir(folder) == folder / "outbox"
    assert inbox_dir(folder) == folder / "inbox"


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "a\\b", "a\x00b", "a\nb", ".hidden", "x" * 256])
def test_session_dir_refuses_unsafe_ids(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidInput, match="session id"):
        session_dir(tmp_path, "ag-1", bad)
    with pytest.raises(InvalidInput, match="agent group id"):
        session_dir(tmp_path, bad, "sess-1")
