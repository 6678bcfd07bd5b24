"""Which base the agent image builds on: by default one made from this machine's Debian sources,
never pulled from a registry; a configured base is pulled only when it is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import msgspec
import pytest

from config.settings import Settings
from tools import image
from tools.image import ImageBuildError, base_image_name, local_base_name, resolve_base


class FakeApi:
    def __init__(self, images: dict[str, str]) -> None:
        self.images = images

    def inspect_image(self, name: str) -> dict[str, Any]:
        if name not in self.images:
            raise docker.errors.ImageNotFound(name)
        return {"Id": self.images[name]}


class FakeClient:
    def __init__(self, images: dict[str, str]) -> None:
        self.api = FakeApi(images)


class Progress:
    def __init__(self) -> None:
        self.phases: list[str] = []

    def phase(self, text: str) -> None:
        self.phases.append(text)

    def step(self, number: int, total: int, text: str) -> None:
        pass

    def line(self, text: str) -> None:
        pass


@pytest.fixture
def bookworm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    release = tmp_path / "os-release"
    release.write_text('ID=debian\nVERSION_CODENAME="bookworm"\n')
    monkeypatch.setattr(image, "OS_RELEASE", release)
    return release


@pytest.fixture
def pulls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every pull resolve_base attempts; the fake registry refuses them all."""
    attempted: list[str] = []

    def refuse(name: str, timeout_s: float) -> str:
        attempted.append(name)
        return "no registry here"

    monkeypatch.setattr(image, "try_pull", refuse)
    return attempted


def test_by_default_no_base_image_is_configured(settings: Settings) -> None:
    assert settings.base_image is None


def test_the_local_base_is_named_after_the_machines_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = tmp_path / "os-release"
    monkeypatch.setattr(image, "OS_RELEASE", release)
    assert local_base_name() is None  # no os-release at all
    release.write_text("ID=debian\nVERSION_CODENAME=trixie\n")
    assert local_base_name() == "hermitcrab-base:trixie"
    release.write_text("ID=alpine\n")
    assert local_base_name() is None


def test_the_default_build_uses_the_local_base_without_contacting_a_registry(
    settings: Settings, bookworm: Path, pulls: list[str]
) -> None:
    client = FakeClient({"hermitcrab-base:bookworm": "sha256:local"})
    base = resolve_base(client, settings, Progress())  # type: ignore[arg-type]
    assert (base.name, base.image_id) == ("hermitcrab-base:bookworm", "sha256:local")
    assert base_image_name(settings) == "hermitcrab-base:bookworm"
    assert pulls == []


def test_a_missing_local_base_is_made_from_the_machines_sources_not_pulled(
    settings: Settings, bookworm: Path, pulls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = FakeClient({})
    made: list[tuple[str, str, str]] = []

    def create(client: FakeClient, settings: Settings, distribution: str, suite: str, name: str, reporter: Any) -> None:
        made.append((distribution, suite, name))
        client.api.images[name] = "sha256:made"

    monkeypatch.setattr(image, "create_debian_base", create)
    base = resolve_base(client, settings, Progress())  # type: ignore[arg-type]
    assert made == [("debian", "bookworm", "hermitcrab-base:bookworm")]
    assert base.image_id == "sha256:made"
    assert pulls == []


def test_a_configured_base_that_is_here_is_used_as_is(settings: Settings, pulls: list[str]) -> None:
    configured = msgspec.structs.replace(settings, base_image="mine/python:3.11")
    client = FakeClient({"mine/python:3.11": "sha256:mine"})
    assert resolve_base(client, configured, Progress()).image_id == "sha256:mine"  # type: ignore[arg-type]
    assert base_image_name(configured) == "mine/python:3.11"
    assert pulls == []


def test_a_configured_base_that_cannot_be_pulled_names_the_setting_and_the_way_out(
    settings: Settings, pulls: list[str]
) -> None:
    configured = msgspec.structs.replace(settings, base_image="mine/python:3.11")
    progress = Progress()
    with pytest.raises(ImageBuildError) as refused:
        resolve_base(FakeClient({}), configured, progress)  # type: ignore[arg-type]
    assert pulls == ["mine/python:3.11"]
    assert "HERMITCRAB_BASE_IMAGE" in str(refused.value) and "no registry here" in str(refused.value)
    assert "unset HERMITCRAB_BASE_IMAGE" in refused.value.hint
    assert progress.phases == ["pulling mine/python:3.11"]


def test_a_host_without_a_debian_suite_is_told_to_configure_a_base(
    settings: Settings, tmp_path: Path, pulls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = tmp_path / "os-release"
    release.write_text("ID=alpine\n")
    monkeypatch.setattr(image, "OS_RELEASE", release)
    with pytest.raises(ImageBuildError) as refused:
        resolve_base(FakeClient({}), settings, Progress())  # type: ignore[arg-type]
    assert "VERSION_CODENAME" in str(refused.value)
    assert "HERMITCRAB_BASE_IMAGE" in refused.value.hint
    assert pulls == []
