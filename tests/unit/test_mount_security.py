from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.mount_security import (
    DEFAULT_BLOCKED_PATTERNS,
    AllowlistError,
    Mount,
    MountValidation,
    load_allowlist,
    validate_additional_mounts,
)
from events.model import AdditionalMount


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    for folder in ("projects/webapp", "projects/notes", "docs/reports", ".ssh", "elsewhere"):
        (home / folder).mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def write_allowlist(path: Path, *, non_main_read_only: bool = True, blocked: list[str] | None = None) -> Path:
    path.write_text(
        json.dumps(
            {
                "allowedRoots": [
                    {"path": "~/projects", "allowReadWrite": True, "description": "code"},
                    {"path": "~/docs", "allowReadWrite": False},
                    {"path": "~/does-not-exist", "allowReadWrite": True},
                ],
                "blockedPatterns": blocked or ["password"],
                "nonMainReadOnly": non_main_read_only,
            }
        )
    )
    return path


@pytest.fixture
def allowlist(home: Path, tmp_path: Path) -> Path:
    return write_allowlist(tmp_path / "allowlist.json")


def check(
    allowlist: Path, *mounts: AdditionalMount, admin: bool = False, protected: tuple[Path, ...] = ()
) -> MountValidation:
    return validate_additional_mounts(list(mounts), allowlist_path=allowlist, is_admin=admin, protected=protected)


def only_refusal(result: MountValidation) -> tuple[str, str]:
    assert result.mounts == []
    assert len(result.refusals) == 1
    refusal = result.refusals[0]
    assert refusal.host_path in refusal.message
    assert refusal.rule in refusal.message
    return refusal.rule, refusal.detail


def test_allowed_mount_is_resolved_and_placed_under_extra(allowlist: Path, home: Path) -> None:
    result = check(allowlist, AdditionalMount(host_path="~/projects/webapp"))
    assert result.refusals == []
    assert result.mounts == [
        Mount(
            host_path=str((home / "projects/webapp").resolve()),
            container_path="/workspace/extra/webapp",
            read_only=True,
        )
    ]


def test_container_path_can_be_named(allowlist: Path) -> None:
    result = check(allowlist, AdditionalMount(host_path="~/projects/webapp", container_path="code/web"))
    assert result.mounts[0].container_path == "/workspace/extra/code/web"


@pytest.mark.parametrize(
    "container_path", ["../x", "a/../../b", "/abs", "/workspace/extra/x", "repo:rw", "", "  ", "a//b", "./x", "x y"]
)
def test_bad_container_paths_are_refused(allowlist: Path, container_path: str) -> None:
    rule, detail = only_refusal(
        check(allowlist, AdditionalMount(host_path="~/projects/webapp", container_path=container_path))
    )
    assert rule == "container-path-invalid"
    if container_path.strip():
        assert repr(container_path) in detail


def test_symlink_into_a_blocked_dir_is_judged_by_its_target(allowlist: Path, home: Path) -> None:
    (home / "projects/innocent").symlink_to(home / ".ssh")
    rule, detail = only_refusal(check(allowlist, AdditionalMount(host_path="~/projects/innocent")))
    assert rule == "blocked-pattern"
    assert "'.ssh'" in detail
    assert str((home / ".ssh").resolve()) in detail


def test_symlink_out_of_every_root_is_refused(allowlist: Path, home: Path) -> None:
    (home / "projects/shortcut").symlink_to(home / "elsewhere")
    rule, detail = only_refusal(check(allowlist, AdditionalMount(host_path="~/projects/shortcut")))
    assert rule == "not-under-allowed-root"
    assert str((home / "elsewhere").resolve()) in detail


@pytest.mark.parametrize("blocked", [".aws", ".env.local", "id_rsa_backup", "my-credentials", "PASSWORDS", ".Docker"])
def test_default_and_custom_blocked_patterns(allowlist: Path, home: Path, blocked: str) -> None:
    (home / "projects" / blocked).mkdir()
    rule, _ = only_refusal(check(allowlist, AdditionalMount(host_path=f"~/projects/{blocked}", container_path="x")))
    assert rule == "blocked-pattern"


def test_custom_patterns_are_merged_with_the_defaults(allowlist: Path) -> None:
    loaded = load_allowlist(allowlist)
    assert loaded is not None
    assert set(DEFAULT_BLOCKED_PATTERNS) <= set(loaded.blocked_patterns)
    assert "password" in loaded.blocked_patterns
    assert len(loaded.blocked_patterns) == len(set(loaded.blocked_patterns))


def test_path_outside_every_root_is_refused(allowlist: Path) -> None:
    rule, detail = only_refusal(check(allowlist, AdditionalMount(host_path="~/elsewhere")))
    assert rule == "not-under-allowed-root"
    assert "projects" in detail and "docs" in detail


def test_missing_and_relative_host_paths(allowlist: Path) -> None:
    assert only_refusal(check(allowlist, AdditionalMount(host_path="~/projects/nope")))[0] == "host-path-missing"
    assert only_refusal(check(allowlist, AdditionalMount(host_path="projects/webapp")))[0] == "host-path-not-absolute"


def test_non_admin_is_forced_read_only_when_non_main_read_only(allowlist: Path) -> None:
    rw = AdditionalMount(host_path="~/projects/webapp", readonly=False)
    assert check(allowlist, rw).mounts[0].read_only is True
    assert check(allowlist, rw, admin=True).mounts[0].read_only is False


def test_non_admin_may_write_when_the_switch_is_off(home: Path, tmp_path: Path) -> None:
    allowlist = write_allowlist(tmp_path / "open.json", non_main_read_only=False)
    assert check(allowlist, AdditionalMount(host_path="~/projects/webapp", readonly=False)).mounts[0].read_only is False


def test_read_only_root_wins_even_for_admin(allowlist: Path) -> None:
    result = check(allowlist, AdditionalMount(host_path="~/docs/reports", readonly=False), admin=True)
    assert result.mounts[0].read_only is True


def test_read_only_request_stays_read_only(allowlist: Path) -> None:
    assert check(allowlist, AdditionalMount(host_path="~/projects/webapp"), admin=True).mounts[0].read_only is True


def test_missing_allowlist_refuses_every_mount(tmp_path: Path, home: Path) -> None:
    result = check(
        tmp_path / "absent.json",
        AdditionalMount(host_path="~/projects/webapp"),
        AdditionalMount(host_path="~/projects/notes"),
    )
    assert result.mounts == []
    assert [r.rule for r in result.refusals] == ["no-allowlist", "no-allowlist"]
    assert all(str(tmp_path / "absent.json") in r.message for r in result.refusals)
    assert {r.host_path for r in result.refusals} == {"~/projects/webapp", "~/projects/notes"}


def test_broken_allowlist_refuses_every_mount(tmp_path: Path, home: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"allowedRoots": "everything"}')
    with pytest.raises(AllowlistError):
        load_allowlist(broken)
    rule, detail = only_refusal(check(broken, AdditionalMount(host_path="~/projects/webapp")))
    assert rule == "allowlist-invalid"
    assert str(broken) in detail


def test_no_requested_mounts_needs_no_allowlist(tmp_path: Path) -> None:
    assert check(tmp_path / "absent.json") == MountValidation(mounts=[], refusals=[])


def test_protected_paths_cannot_be_mounted_or_contained(allowlist: Path, home: Path) -> None:
    data = home / "projects/notes/hermitcrab-data"
    data.mkdir()
    assert only_refusal(check(allowlist, AdditionalMount(host_path="~/projects/notes"), protected=(data,)))[0] == (
        "protected-path"
    )
    assert (
        only_refusal(check(allowlist, AdditionalMount(host_path=str(data)), protected=(data,)))[0] == "protected-path"
    )
    assert check(allowlist, AdditionalMount(host_path="~/projects/webapp"), protected=(data,)).mounts


def test_two_mounts_may_not_share_a_container_path(allowlist: Path) -> None:
    result = check(
        allowlist,
        AdditionalMount(host_path="~/projects/webapp", container_path="code"),
        AdditionalMount(host_path="~/projects/notes", container_path="code"),
    )
    assert [m.container_path for m in result.mounts] == ["/workspace/extra/code"]
    assert [(r.host_path, r.rule) for r in result.refusals] == [("~/projects/notes", "duplicate-container-path")]


def test_good_mounts_survive_bad_neighbours(allowlist: Path) -> None:
    result = check(
        allowlist,
        AdditionalMount(host_path="~/.ssh"),
        AdditionalMount(host_path="~/projects/webapp"),
        AdditionalMount(host_path="~/elsewhere"),
    )
    assert [m.container_path for m in result.mounts] == ["/workspace/extra/webapp"]
    assert [r.rule for r in result.refusals] == ["blocked-pattern", "not-under-allowed-root"]
