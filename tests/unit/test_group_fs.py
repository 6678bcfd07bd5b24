from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import msgspec
import pytest

from actors import group_fs
from actors.group_folder import InvalidFolderError
from actors.group_fs import AGENT_UID, GLOBAL_IMPORT, group_paths, init_group_filesystem
from config.settings import Settings
from events.model import AgentGroup, GroupConfig

ALL_STEPS = [
    "group-dir",
    "CLAUDE.md",
    "global-dir",
    "global/CLAUDE.md",
    ".claude-shared",
    "settings.json",
    "skills/",
    "agent-runner/",
]


def make_group(*, gid: str = "ag-1", folder: str = "helper", name: str = "Helper", admin: bool = False) -> AgentGroup:
    return AgentGroup(
        id=gid,
        name=name,
        folder=folder,
        is_admin=admin,
        agent_provider=None,
        config=GroupConfig(),
        created_at="2026-01-01 00:00:00",
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A stand-in project root with templates, one skill and a runner package."""
    root = tmp_path / "project"
    (root / "groups/global").mkdir(parents=True)
    (root / "groups/global/CLAUDE.md").write_text("# Shared memory\n")
    (root / "groups/main").mkdir(parents=True)
    (root / "groups/main/CLAUDE.md").write_text("# Admin powers\n\nYou may create agents.\n")
    (root / "container/skills/notes").mkdir(parents=True)
    (root / "container/skills/notes/SKILL.md").write_text("take notes\n")
    (root / "container/agent_runner/__pycache__").mkdir(parents=True)
    (root / "container/agent_runner/__init__.py").write_text("")
    (root / "container/agent_runner/__main__.py").write_text("print('runner v1')\n")
    (root / "container/agent_runner/__pycache__/x.cpython-311.pyc").write_bytes(b"\0")
    return root


@pytest.fixture
def cfg(settings: Settings, project: Path) -> Settings:
    return msgspec.structs.replace(settings, project_root=project)


def test_first_run_creates_everything_and_reports_steps(cfg: Settings) -> None:
    group = make_group()
    assert init_group_filesystem(cfg, group, None) == ALL_STEPS

    paths = group_paths(cfg, group)
    assert paths.group_dir == cfg.groups_dir / "helper"
    assert paths.state_dir == cfg.data_dir / "groups-state" / "ag-1"
    assert (paths.group_dir / "CLAUDE.md").read_text() == f"{GLOBAL_IMPORT}\n\n# Helper\n"
    assert (paths.global_dir / "CLAUDE.md").read_text() == "# Shared memory\n"
    settings_json = json.loads((paths.claude_shared / "settings.json").read_text())
    assert settings_json == {
        "env": {
            "CLAUDE_CODE_EXPERIMENTAL_AGENT_TEAMS": "1",
            "CLAUDE_CODE_ADDITIONAL_DIRECTORIES_CLAUDE_MD": "1",
            "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "0",
        }
    }
    assert (paths.claude_shared / "skills/notes/SKILL.md").read_text() == "take notes\n"
    assert (paths.runner / "__main__.py").read_text() == "print('runner v1')\n"
    assert not (paths.runner / "__pycache__").exists()
    assert not list(paths.state_dir.glob(".*partial"))


def test_instructions_follow_the_import(cfg: Settings) -> None:
    group = make_group()
    init_group_filesystem(cfg, group, "You track the garden.\nWater on Sundays.")
    text = (group_paths(cfg, group).group_dir / "CLAUDE.md").read_text()
    assert text.splitlines()[:3] == [GLOBAL_IMPORT, "", "You track the garden."]


def test_second_run_does_nothing_and_keeps_edits(cfg: Settings, project: Path) -> None:
    group = make_group()
    init_group_filesystem(cfg, group, None)
    paths = group_paths(cfg, group)
    (paths.group_dir / "CLAUDE.md").write_text("my own memory\n")
    (paths.global_dir / "CLAUDE.md").write_text("edited global\n")
    (paths.claude_shared / "settings.json").write_text("{}\n")
    (paths.runner / "__main__.py").write_text("print('patched by the agent')\n")
    (project / "container/agent_runner/__main__.py").write_text("print('runner v2')\n")
    (project / "container/skills/new-skill").mkdir()

    assert init_group_filesystem(cfg, group, "other instructions") == []

    assert (paths.group_dir / "CLAUDE.md").read_text() == "my own memory\n"
    assert (paths.global_dir / "CLAUDE.md").read_text() == "edited global\n"
    assert (paths.claude_shared / "settings.json").read_text() == "{}\n"
    assert (paths.runner / "__main__.py").read_text() == "print('patched by the agent')\n"
    assert not (paths.claude_shared / "skills/new-skill").exists()


def test_only_missing_pieces_are_recreated(cfg: Settings) -> None:
    group = make_group()
    init_group_filesystem(cfg, group, None)
    paths = group_paths(cfg, group)
    (paths.group_dir / "CLAUDE.md").unlink()
    (paths.claude_shared / "settings.json").unlink()

    assert init_group_filesystem(cfg, group, None) == ["CLAUDE.md", "settings.json"]


def test_second_group_shares_global_without_rewriting_it(cfg: Settings) -> None:
    init_group_filesystem(cfg, make_group(), None)
    steps = init_group_filesystem(cfg, make_group(gid="ag-2", folder="other", name="Other"), None)
    assert "global-dir" not in steps
    assert "global/CLAUDE.md" not in steps
    assert "agent-runner/" in steps


def test_admin_group_starts_from_the_main_template(cfg: Settings) -> None:
    group = make_group(gid="ag-main", folder="main", name="Main", admin=True)
    init_group_filesystem(cfg, group, None)
    text = (group_paths(cfg, group).group_dir / "CLAUDE.md").read_text()
    assert text == f"{GLOBAL_IMPORT}\n\n# Admin powers\n\nYou may create agents.\n"


def test_a_template_that_already_imports_is_not_imported_twice(cfg: Settings, project: Path) -> None:
    (project / "groups/main/CLAUDE.md").write_text(f"{GLOBAL_IMPORT}\n\n# Admin powers\n")
    group = make_group(gid="ag-main", folder="main", name="Main", admin=True)
    init_group_filesystem(cfg, group, "Extra admin notes.")
    text = (group_paths(cfg, group).group_dir / "CLAUDE.md").read_text()
    assert text == f"{GLOBAL_IMPORT}\n\n# Admin powers\n\nExtra admin notes.\n"
    assert text.count(GLOBAL_IMPORT) == 1


def test_missing_sources_are_skipped(cfg: Settings, project: Path) -> None:
    (project / "groups/global/CLAUDE.md").unlink()
    shutil.rmtree(project / "container/skills")
    shutil.rmtree(project / "container/agent_runner")
    steps = init_group_filesystem(cfg, make_group(), None)
    assert steps == ["group-dir", "CLAUDE.md", "global-dir", ".claude-shared", "settings.json"]


def test_real_templates_ship_with_the_project(settings: Settings) -> None:
    group = make_group(gid="ag-main", folder="main", name="Main", admin=True)
    init_group_filesystem(settings, group, None)
    paths = group_paths(settings, group)
    assert (paths.global_dir / "CLAUDE.md").read_text() == (
        settings.project_root / "groups/global/CLAUDE.md"
    ).read_text()
    lines = (paths.group_dir / "CLAUDE.md").read_text().splitlines()
    assert lines[0] == GLOBAL_IMPORT
    assert lines[1] == ""
    assert lines[2].startswith("# ")


def test_bad_folder_or_id_is_refused_before_touching_disk(cfg: Settings) -> None:
    with pytest.raises(InvalidFolderError):
        init_group_filesystem(cfg, make_group(folder="../escape"), None)
    with pytest.raises(ValueError, match="group id"):
        init_group_filesystem(cfg, make_group(gid="../ag"), None)
    assert not cfg.groups_dir.exists()
    assert not (cfg.data_dir / "groups-state").exists()


def test_root_host_hands_created_trees_to_the_agent_user(cfg: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    owners: dict[str, tuple[int, int]] = {}
    monkeypatch.setattr(group_fs.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        group_fs.os, "chown", lambda path, uid, gid, follow_symlinks=True: owners.__setitem__(str(path), (uid, gid))
    )
    group = make_group()
    init_group_filesystem(cfg, group, None)
    paths = group_paths(cfg, group)
    for path in (
        paths.group_dir,
        paths.group_dir / "CLAUDE.md",
        paths.global_dir,
        paths.global_dir / "CLAUDE.md",
        paths.state_dir,
        paths.claude_shared / "settings.json",
        paths.claude_shared / "skills/notes/SKILL.md",
        paths.runner,
        paths.runner / "__main__.py",
    ):
        assert owners.get(str(path)) == (AGENT_UID, AGENT_UID), path
    assert str(cfg.groups_dir) not in owners
    assert str(cfg.data_dir / "groups-state") not in owners

    owners.clear()
    (paths.group_dir / "CLAUDE.md").unlink()
    init_group_filesystem(cfg, group, None)
    assert owners == {str(paths.group_dir / "CLAUDE.md"): (AGENT_UID, AGENT_UID)}


def test_non_root_host_keeps_its_own_ownership(cfg: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(group_fs.os, "geteuid", lambda: 1234)
    monkeypatch.setattr(group_fs.os, "chown", lambda *args, **kwargs: calls.append(args))
    assert init_group_filesystem(cfg, make_group(), None) == ALL_STEPS
    assert calls == []


def test_groups_initialized_at_the_same_moment_share_the_global_folder_without_errors(cfg: Settings) -> None:
    for round_number in range(10):
        shutil.rmtree(cfg.groups_dir, ignore_errors=True)
        groups = [make_group(gid=f"ag-{round_number}-{i}", folder=f"g{round_number}x{i}") for i in range(4)]
        barrier = threading.Barrier(len(groups))
        errors: list[BaseException] = []

        def init(group: AgentGroup, barrier: threading.Barrier, errors: list[BaseException]) -> None:
            barrier.wait()
            try:
                init_group_filesystem(cfg, group)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=init, args=(group, barrier, errors)) for group in groups]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert (cfg.groups_dir / "global" / "CLAUDE.md").is_file()
        assert not list(cfg.groups_dir.glob(".*partial*"))
