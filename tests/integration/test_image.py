"""The built agent image really works: its user, its mounts, its Python packages, its build label."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import docker
import docker.errors
import msgspec
import pytest

from config.settings import PROJECT_ROOT, load_settings
from tools.image import CONTEXT_HASH_LABEL, BuildMode, ImageBuildError, build_agent_image

pytestmark = pytest.mark.integration

WRITE_ID_FILE = (
    "import os, pathlib; "
    "pathlib.Path('/data/written-in-container.txt').write_text(f'uid={os.getuid()} gid={os.getgid()}\\n')"
)


def _run(client: docker.DockerClient, image: str, command: list[str], labels: dict[str, str], **kwargs: Any) -> str:
    """Run a one-shot container without network; return its output, failing the test on a non-zero exit."""
    container = client.containers.run(
        image, command, detach=True, network_mode="none", init=True, labels=labels, **kwargs
    )
    try:
        status = container.wait(timeout=60)
        output: str = container.logs().decode()
    finally:
        container.remove(force=True)
    assert status["StatusCode"] == 0, output
    return output


def _writable_by_agent(directory: Path) -> None:
    """The image's user is uid/gid 1000: hand it the directory (or open it up when we cannot chown)."""
    directory.mkdir()
    if os.geteuid() == 0:
        os.chown(directory, 1000, 1000)
    else:
        directory.chmod(0o777)


def test_container_writes_a_file_to_a_bind_mount_as_a_non_root_user(
    docker_client: docker.DockerClient, agent_image: str, tmp_path: Path, test_labels: dict[str, str]
) -> None:
    shared = tmp_path / "shared"
    _writable_by_agent(shared)

    _run(
        docker_client,
        agent_image,
        ["python", "-c", WRITE_ID_FILE],
        test_labels,
        volumes={str(shared): {"bind": "/data", "mode": "rw"}},
    )

    written = shared / "written-in-container.txt"
    content = written.read_text()
    match = re.fullmatch(r"uid=(\d+) gid=(\d+)\n", content)
    assert match, content
    assert int(match.group(1)) != 0
    assert (int(match.group(1)), int(match.group(2))) == (1000, 1000)
    assert written.stat().st_uid == 1000


def test_the_pinned_agent_sdk_and_croniter_import_in_the_image(
    docker_client: docker.DockerClient, agent_image: str, test_labels: dict[str, str]
) -> None:
    requirements = (PROJECT_ROOT / "container" / "requirements.txt").read_text()
    pinned = re.search(r"^claude-agent-sdk==(\S+)$", requirements, re.MULTILINE)
    assert pinned, requirements

    output = _run(
        docker_client,
        agent_image,
        ["python", "-c", "import claude_agent_sdk, croniter; print(claude_agent_sdk.__version__)"],
        test_labels,
    )

    assert output.strip() == pinned.group(1)


def test_the_sdks_bundled_claude_cli_runs_without_node(
    docker_client: docker.DockerClient, agent_image: str, test_labels: dict[str, str]
) -> None:
    locate = "import claude_agent_sdk as sdk, pathlib; print(pathlib.Path(sdk.__file__).parent / '_bundled/claude')"

    output = _run(docker_client, agent_image, ["sh", "-c", f'"$(python -c "{locate}")" --version'], test_labels)

    assert "Claude Code" in output


def test_image_runs_the_runner_as_agent_from_app(docker_client: docker.DockerClient, agent_image: str) -> None:
    config = docker_client.api.inspect_image(agent_image)["Config"]

    assert config["User"] == "agent"
    assert config["WorkingDir"] == "/app"
    assert config["Cmd"] == ["python", "-m", "agent_runner"]
    assert "PYTHONPATH=/app" in config["Env"]
    assert any(entry.startswith("PATH=/opt/venv/bin:") for entry in config["Env"])
    assert "HOME=/home/agent" in config["Env"]


def test_an_unchanged_context_is_not_rebuilt(docker_client: docker.DockerClient, agent_image: str) -> None:
    before = docker_client.api.inspect_image(agent_image)

    progress = _Collect()

    result = build_agent_image(load_settings(), docker_client, BuildMode.IF_CHANGED, progress)

    assert not result.built
    assert result.image_id == before["Id"]
    assert before["Config"]["Labels"][CONTEXT_HASH_LABEL]
    assert not [entry for entry in progress.phases if entry.startswith("step")]


def test_a_changed_skill_rebuilds_only_the_layers_after_it(
    docker_client: docker.DockerClient, agent_image: str, tmp_path: Path, test_labels: dict[str, str]
) -> None:
    project = _copy_container_dir(tmp_path)
    (project / "container" / "skills" / "probe.md").write_text("a skill added by a test\n")
    tag = f"hermitcrab-agent-test:{uuid.uuid4().hex[:12]}"
    settings = msgspec.structs.replace(load_settings(), project_root=project, image=tag)

    try:
        result = build_agent_image(settings, docker_client, BuildMode.IF_CHANGED, _Collect())
        output = _run(docker_client, tag, ["cat", "/app/skills/probe.md"], test_labels)
    finally:
        docker_client.api.remove_image(tag, force=True)

    assert result.built
    assert result.cached_steps >= 8, result
    assert output == "a skill added by a test\n"


def test_a_failing_build_step_is_reported_with_its_output(
    docker_client: docker.DockerClient, agent_image: str, tmp_path: Path
) -> None:
    project = _copy_container_dir(tmp_path)
    with (project / "container" / "Dockerfile").open("a") as dockerfile:
        dockerfile.write('RUN echo "deliberate failure" >&2 && exit 3\n')
    tag = f"hermitcrab-agent-test:{uuid.uuid4().hex[:12]}"
    settings = msgspec.structs.replace(load_settings(), project_root=project, image=tag)

    with pytest.raises(ImageBuildError) as caught:
        build_agent_image(settings, docker_client, BuildMode.ALWAYS, _Collect())

    assert "returned a non-zero code: 3" in str(caught.value)
    assert "deliberate failure" in str(caught.value)
    assert caught.value.hint
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.api.inspect_image(tag)


def _copy_container_dir(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(
        PROJECT_ROOT / "container", project / "container", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    shutil.copy(PROJECT_ROOT / "constraints.txt", project / "constraints.txt")
    return project


class _Collect:
    def __init__(self) -> None:
        self.phases: list[str] = []

    def phase(self, text: str) -> None:
        self.phases.append(text)

    def step(self, number: int, total: int, text: str) -> None:
        self.phases.append(f"step {number}/{total}")

    def line(self, text: str) -> None:
        pass
