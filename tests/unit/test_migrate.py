from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tools import migrate
from tools.cli import main
from tools.migrate import GlobalMemoryMissing, has_global_import, migrate_group_claude_md

IMPORT = "@/workspace/global/CLAUDE.md"


@pytest.fixture
def groups(tmp_path: Path) -> Path:
    """An install from before the import: one group of each kind the migration must tell apart."""
    root = tmp_path / "data" / "groups"
    (root / "global").mkdir(parents=True)
    (root / "global/CLAUDE.md").write_text("# Shared\n")
    (root / "plain").mkdir()
    (root / "plain/CLAUDE.md").write_text("# Plain\n\nRemember the milk.\n")
    (root / "prose").mkdir()
    (root / "prose/CLAUDE.md").write_text("# Prose\n\nYou may read /workspace/global/CLAUDE.md for shared notes.\n")
    (root / "wired").mkdir()
    (root / "wired/CLAUDE.md").write_text(f"{IMPORT}\n\n# Wired\n")
    (root / "empty").mkdir()
    (root / "stray-file.md").write_text("not a group\n")
    return root


def outcomes(report: migrate.MigrationReport) -> dict[str, str]:
    return {group.folder: group.outcome for group in report.groups}


def test_migration_cases(groups: Path) -> None:
    report = migrate_group_claude_md(groups)
    assert outcomes(report) == {
        "empty": "no-claude-md",
        "plain": "updated",
        "prose": "updated",
        "wired": "already-wired",
    }
    assert report.summary == {"updated": 2, "already_wired": 1, "no_claude_md": 1}
    assert (groups / "plain/CLAUDE.md").read_text() == f"{IMPORT}\n\n# Plain\n\nRemember the milk.\n"
    assert (groups / "prose/CLAUDE.md").read_text().startswith(f"{IMPORT}\n\n# Prose\n")
    assert (groups / "wired/CLAUDE.md").read_text() == f"{IMPORT}\n\n# Wired\n"
    assert (groups / "global/CLAUDE.md").read_text() == "# Shared\n"
    assert not (groups / "empty/CLAUDE.md").exists()
    assert not list(groups.rglob(".*.migrating"))


def test_second_run_changes_nothing(groups: Path) -> None:
    migrate_group_claude_md(groups)
    before = {p: p.read_text() for p in groups.rglob("CLAUDE.md")}
    report = migrate_group_claude_md(groups)
    assert report.summary == {"updated": 0, "already_wired": 3, "no_claude_md": 1}
    assert {p: p.read_text() for p in groups.rglob("CLAUDE.md")} == before


@pytest.mark.parametrize(
    ("text", "wired"),
    [
        (f"{IMPORT}\n", True),
        (f"# Title\n\n  {IMPORT}\n", True),
        (f"{IMPORT} and more\n", True),
        ("see /workspace/global/CLAUDE.md\n", False),
        (f"prose mentioning {IMPORT} mid-line\n", False),
        (f"`{IMPORT}`\n", False),
        (f"{IMPORT}.bak\n", False),
        ("", False),
    ],
)
def test_only_the_import_form_at_a_line_start_counts(text: str, wired: bool) -> None:
    assert has_global_import(text) is wired


def test_refuses_without_global_memory(groups: Path) -> None:
    (groups / "global/CLAUDE.md").unlink()
    with pytest.raises(GlobalMemoryMissing, match=r"global CLAUDE\.md"):
        migrate_group_claude_md(groups)
    assert (groups / "plain/CLAUDE.md").read_text() == "# Plain\n\nRemember the milk.\n"


def test_refuses_without_groups_dir(tmp_path: Path) -> None:
    with pytest.raises(GlobalMemoryMissing):
        migrate_group_claude_md(tmp_path / "missing")


def test_owner_and_mode_survive(groups: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = groups / "plain/CLAUDE.md"
    target.chmod(0o640)
    chowned: list[tuple[str, int, int]] = []
    monkeypatch.setattr(migrate.os, "geteuid", lambda: 0)
    monkeypatch.setattr(migrate.os, "chown", lambda path, uid, gid: chowned.append((Path(path).name, uid, gid)))
    migrate_group_claude_md(groups)
    assert target.stat().st_mode & 0o777 == 0o640
    status = os.stat(groups / "prose/CLAUDE.md")
    assert (".CLAUDE.md.migrating", status.st_uid, status.st_gid) in chowned


def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> int:
    monkeypatch.setenv("HERMITCRAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HERMITCRAB_GROUPS_DIR", raising=False)
    monkeypatch.setattr(sys, "argv", ["hermitcrab", "migrate", "group-claude-md", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return int(exited.value.code or 0)


def test_cli_prints_a_line_per_group_and_a_summary(
    groups: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, tmp_path) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[:4] == [
        "skipped empty: has no CLAUDE.md",
        "updated plain: prepended the global import",
        "updated prose: prepended the global import",
        "wired   wired: already imports global memory",
    ]
    assert lines[4] == "4 groups: 2 updated, 1 already wired, 1 without CLAUDE.md"


def test_cli_json(
    groups: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, tmp_path, "--json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["groups_dir"] == str(groups)
    assert payload["summary"] == {"updated": 2, "already_wired": 1, "no_claude_md": 1}
    assert {g["folder"]: g["outcome"] for g in payload["groups"]} == {
        "empty": "no-claude-md",
        "plain": "updated",
        "prose": "updated",
        "wired": "already-wired",
    }


def test_cli_refuses_without_global_memory(
    groups: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (groups / "global/CLAUDE.md").unlink()
    assert run_cli(monkeypatch, tmp_path) == 2
    captured = capsys.readouterr()
    assert "no global CLAUDE.md" in captured.err
    assert "hint:" in captured.err
    assert captured.out == ""
    assert (groups / "plain/CLAUDE.md").read_text() == "# Plain\n\nRemember the milk.\n"
