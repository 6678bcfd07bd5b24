from __future__ import annotations

from pathlib import Path

import pytest

from actors.group_folder import (
    MAX_FOLDER_LENGTH,
    InvalidFolderError,
    folder_from_name,
    group_folder_path,
    validate_folder,
)


@pytest.mark.parametrize("folder", ["main", "research-bot", "a", "Team_2", "x" * MAX_FOLDER_LENGTH])
def test_valid_folders_pass_unchanged(folder: str) -> None:
    assert validate_folder(folder, existing=["other"]) == folder


@pytest.mark.parametrize(
    ("folder", "rule"),
    [
        ("", "must not be empty"),
        ("a/b", "path separators"),
        ("a\\b", "path separators"),
        ("../etc", "path separators"),
        ("..", "'..'"),
        ("a..b", "'..'"),
        (".hidden", "start with a dot"),
        ("x" * (MAX_FOLDER_LENGTH + 1), f"at most {MAX_FOLDER_LENGTH}"),
        ("has space", "letters, digits"),
        ("-leading", "letters, digits"),
        ("émoji", "letters, digits"),
        ("semi;colon", "letters, digits"),
        ("main\n", "letters, digits"),
        ("global", "reserved"),
        ("GLOBAL", "reserved"),
    ],
)
def test_bad_folder_names_the_rule(folder: str, rule: str) -> None:
    with pytest.raises(InvalidFolderError) as caught:
        validate_folder(folder)
    assert rule in caught.value.rule
    assert repr(folder) in str(caught.value)


def test_folder_must_be_unique_case_insensitively() -> None:
    with pytest.raises(InvalidFolderError, match="already used"):
        validate_folder("Main", existing=["main"])


def test_group_folder_path_is_a_direct_child(tmp_path: Path) -> None:
    assert group_folder_path(tmp_path, "main") == tmp_path.resolve() / "main"
    with pytest.raises(InvalidFolderError):
        group_folder_path(tmp_path, "../outside")


def test_group_folder_path_refuses_a_symlink_leading_out(tmp_path: Path) -> None:
    groups = tmp_path / "groups"
    groups.mkdir()
    (groups / "escape").symlink_to(tmp_path)
    with pytest.raises(InvalidFolderError, match="outside"):
        group_folder_path(groups, "escape")


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("Research Bot", "research-bot"),
        ("  Café  Crème!! ", "cafe-creme"),
        ("dev_team", "dev-team"),
        ("../../etc/passwd", "etc-passwd"),
        ("...", "agent"),
        ("日本語", "agent"),
        ("Global", "global-2"),
    ],
)
def test_folder_from_name_normalizes(name: str, folder: str) -> None:
    assert folder_from_name(name, existing=[]) == folder


def test_folder_from_name_deduplicates_in_order() -> None:
    assert folder_from_name("Helper", ["helper"]) == "helper-2"
    assert folder_from_name("Helper", ["helper", "Helper-2", "helper-3"]) == "helper-4"


def test_long_names_keep_room_for_the_suffix() -> None:
    long_name = "word " * 40
    first = folder_from_name(long_name, [])
    second = folder_from_name(long_name, [first])
    assert len(first) <= MAX_FOLDER_LENGTH
    assert len(second) <= MAX_FOLDER_LENGTH
    assert second.endswith("-2")
    assert not second.removesuffix("-2").endswith("-")


@pytest.mark.parametrize(
    "name",
    ["..", "../..", "/", "/etc/passwd", ".ssh", "a/../../b", "\\..\\..", "~root", "\x00nul", "$(rm -rf /)", "-" * 100],
)
def test_any_name_yields_a_folder_directly_under_groups_dir(tmp_path: Path, name: str) -> None:
    existing = ["agent", "etc-passwd"]
    folder = folder_from_name(name, existing)
    validate_folder(folder, existing)
    assert group_folder_path(tmp_path, folder).parent == tmp_path.resolve()
