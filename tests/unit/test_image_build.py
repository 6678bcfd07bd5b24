"""The pure parts of the image build: context hash, context tar, wheelhouse key and base-image inputs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tools.image import (
    BASE_PACKAGES,
    apt_sources_file,
    context_hash,
    context_sources,
    mmdebstrap_command,
    read_os_release,
    split_image_name,
    wheel_platforms,
    wheelhouse_key,
    write_context_tar,
)


@pytest.fixture
def container_dir(tmp_path: Path) -> Path:
    root = tmp_path / "container"
    (root / "agent_runner" / "__pycache__").mkdir(parents=True)
    (root / "skills" / "notes").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "requirements.txt").write_text("croniter==7.0.0\n")
    (tmp_path / "constraints.txt").write_text("croniter==7.0.0\nsix==1.16.0\n")
    (root / "agent_runner" / "__main__.py").write_text("print('hi')\n")
    (root / "agent_runner" / "__pycache__" / "__main__.cpython-311.pyc").write_bytes(b"\0")
    (root / "skills" / "notes" / "SKILL.md").write_text("# notes\n")
    return root


def test_context_holds_dockerfile_requirements_runner_and_skills_but_no_caches(container_dir: Path) -> None:
    names = [item.arcname for item in context_sources(container_dir)]

    assert names == [
        "Dockerfile",
        "requirements.txt",
        "constraints.txt",
        "agent_runner/__main__.py",
        "skills/notes/SKILL.md",
    ]


def test_context_hash_is_stable_and_tracks_contents_and_base(container_dir: Path) -> None:
    files = context_sources(container_dir)
    first = context_hash(files, "sha256:base", "3.11")

    assert context_hash(list(reversed(files)), "sha256:base", "3.11") == first
    assert context_hash(files, "sha256:other-base", "3.11") != first
    assert context_hash(files, "sha256:base", "3.12") != first
    (container_dir / "agent_runner" / "__main__.py").write_text("print('changed')\n")
    changed_runner = context_hash(context_sources(container_dir), "sha256:base", "3.11")
    assert changed_runner != first
    (container_dir.parent / "constraints.txt").write_text("croniter==7.0.0\nsix==1.17.0\n")
    assert context_hash(context_sources(container_dir), "sha256:base", "3.11") != changed_runner


def test_context_hash_ignores_bytecode_caches(container_dir: Path) -> None:
    before = context_hash(context_sources(container_dir), "b", "3.11")
    (container_dir / "agent_runner" / "__pycache__" / "other.cpython-311.pyc").write_bytes(b"\1")

    assert context_hash(context_sources(container_dir), "b", "3.11") == before


def test_context_tar_has_fixed_metadata_and_always_a_skills_directory(tmp_path: Path) -> None:
    root = tmp_path / "container"
    (root / "agent_runner").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "requirements.txt").write_text("")
    (tmp_path / "constraints.txt").write_text("")
    (root / "agent_runner" / "__init__.py").write_text("")
    buffer = io.BytesIO()

    write_context_tar(context_sources(root), buffer)
    first = buffer.getvalue()
    (root / "Dockerfile").touch()
    again = io.BytesIO()
    write_context_tar(context_sources(root), again)

    assert again.getvalue() == first, "a touched but unchanged file must not change the context"
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {member.name: member for member in tar.getmembers()}
    assert members["skills"].isdir()
    assert members["Dockerfile"].mtime == 0
    assert members["Dockerfile"].uid == 0


def test_wheelhouse_key_changes_with_requirements_python_and_arch() -> None:
    key = wheelhouse_key(b"croniter==7.0.0\n", "3.11", "x86_64")

    assert wheelhouse_key(b"croniter==7.0.0\n", "3.11", "x86_64") == key
    assert wheelhouse_key(b"croniter==7.0.1\n", "3.11", "x86_64") != key
    assert wheelhouse_key(b"croniter==7.0.0\n", "3.12", "x86_64") != key
    assert wheelhouse_key(b"croniter==7.0.0\n", "3.11", "aarch64") != key


def test_wheel_platforms_cover_manylinux2014_up_to_glibc_2_28_for_the_engine_arch() -> None:
    platforms = wheel_platforms("aarch64")

    assert "manylinux_2_17_aarch64" in platforms
    assert "manylinux_2_28_aarch64" in platforms
    assert "manylinux2014_aarch64" in platforms
    assert not [tag for tag in platforms if "x86_64" in tag]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("python:3.11-slim", ("python", "3.11-slim")),
        ("hermitcrab-base", ("hermitcrab-base", "latest")),
        ("localhost:5000/tools/python", ("localhost:5000/tools/python", "latest")),
        ("localhost:5000/python:3.11", ("localhost:5000/python", "3.11")),
    ],
)
def test_split_image_name_minds_registry_ports(name: str, expected: tuple[str, str]) -> None:
    assert split_image_name(name) == expected


def test_os_release_values_lose_their_quotes(tmp_path: Path) -> None:
    path = tmp_path / "os-release"
    path.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n# c=1\n')

    assert read_os_release(path) == {
        "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
        "ID": "debian",
        "VERSION_CODENAME": "bookworm",
    }


def test_sources_file_prefers_the_distributions_deb822_file(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://mirror.invalid/debian bookworm main\n")
    assert apt_sources_file("debian", tmp_path) == tmp_path / "sources.list"

    (tmp_path / "sources.list.d" / "debian.sources").write_text("Types: deb\n")
    assert apt_sources_file("debian", tmp_path) == tmp_path / "sources.list.d" / "debian.sources"


def test_a_commented_out_sources_list_is_no_source(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("# deb http://mirror.invalid/debian bookworm main\n")

    assert apt_sources_file("debian", tmp_path) is None


def test_mmdebstrap_makes_a_minbase_with_python_from_the_given_sources(tmp_path: Path) -> None:
    command = mmdebstrap_command("bookworm", tmp_path / "out.tar", Path("/etc/apt/sources.list.d/debian.sources"))

    assert command == [
        "mmdebstrap",
        "--variant=minbase",
        "--include=" + ",".join(BASE_PACKAGES),
        "bookworm",
        str(tmp_path / "out.tar"),
        "/etc/apt/sources.list.d/debian.sources",
    ]
    assert {"python3", "python3-venv", "ca-certificates"} <= set(BASE_PACKAGES)
