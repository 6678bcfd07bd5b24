"""Build the agent image with no registry and no network inside the build.

Why this shape: the machine may not reach any container registry, so by default the base
image is made from the machine's own Debian sources (mmdebstrap + docker import) and no
registry is contacted; only a base the user names in HERMITCRAB_BASE_IMAGE is pulled.
Python packages come from a wheelhouse the host downloads with pip and caches per
requirements, and the build context is a tar we assemble ourselves, so the build runs with
networking disabled. The image carries a hash of everything that went into it, which makes
"build only if changed" a label comparison.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import docker
import docker.errors

from config.settings import Settings
from tools.apt import AptInstallError, apt_install, can_apt_install
from tools.cli_common import UserError

CONTEXT_HASH_LABEL = "hermitcrab.context-hash"
PYTHON_VERSION = "3.11"
LOCAL_BASE_REPOSITORY = "hermitcrab-base"
OS_RELEASE = Path("/etc/os-release")
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
PULL_TIMEOUT_S = 20.0
BUILD_HTTP_TIMEOUT_S = 1800
# Wheels for glibc 2.17 up to 2.28 run on every Debian base we build on (bookworm has 2.36).
MANYLINUX_GLIBC_MINORS = range(28, 16, -1)
_DOCKER_TO_WHEEL_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
_IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Bookkeeping lines of the classic builder: noise in an error message.
_BUILD_NOISE = re.compile(r"^(---> |Removing intermediate container )")


class ImageBuildError(UserError):
    """The image could not be built; `hint` tells the user what to do about it."""


class BuildMode(enum.Enum):
    ALWAYS = "always"
    IF_MISSING = "if-missing"
    IF_CHANGED = "if-changed"


class BuildReporter(Protocol):
    """Where progress goes: the CLI renders it with Rich, tests collect it."""

    def phase(self, text: str) -> None:
        """A new stage of the work begins."""

    def step(self, number: int, total: int, text: str) -> None:
        """The Docker build reached step `number` of `total`."""

    def line(self, text: str) -> None:
        """One line of raw output from pip, mmdebstrap or the build."""


@dataclass(frozen=True)
class BaseImage:
    name: str
    image_id: str


@dataclass(frozen=True)
class BuildResult:
    image: str
    image_id: str
    built: bool
    reason: str
    base: str = ""
    cached_steps: int = 0
    total_steps: int = 0


@dataclass(frozen=True)
class ContextFile:
    """One file of the build context: its name inside the tar and where it lives on the host."""

    arcname: str
    source: Path


def build_agent_image(
    settings: Settings, client: docker.DockerClient, mode: BuildMode, reporter: BuildReporter
) -> BuildResult:
    """Build `settings.image` unless `mode` says the existing one will do."""
    existing = _inspect(client, settings.image)
    if mode is BuildMode.IF_MISSING and existing is not None:
        return BuildResult(settings.image, existing["Id"], built=False, reason="image present")
    container_dir = settings.project_root / "container"
    base = resolve_base(client, settings, reporter)
    runner_files = context_sources(container_dir)
    digest = context_hash(runner_files, base.image_id, PYTHON_VERSION)
    if mode is BuildMode.IF_CHANGED and existing is not None and _label(existing, CONTEXT_HASH_LABEL) == digest:
        return BuildResult(settings.image, existing["Id"], built=False, reason="image up to date", base=base.name)
    wheel_arch = _wheel_arch(client)
    wheelhouse = ensure_wheelhouse(
        settings, container_dir / "requirements.txt", settings.project_root / "constraints.txt", wheel_arch, reporter
    )
    files = [*runner_files, *(ContextFile(f"wheelhouse/{wheel.name}", wheel) for wheel in sorted(wheelhouse.iterdir()))]
    cache_dir = settings.data_dir / "cache"
    cache_dir.mkdir(parents=True, exist_ok=True)
    reporter.phase("sending the build context")
    with tempfile.TemporaryFile(dir=cache_dir) as context:
        write_context_tar(files, context)
        context.seek(0)
        image_id, cached, total = _run_build(client, settings.image, base.name, digest, context, reporter)
    if existing is not None and existing["Id"] != image_id:
        _remove_if_dangling(client, existing["Id"])
    reason = "image missing" if existing is None else "build context changed"
    if mode is BuildMode.ALWAYS:
        reason = "build requested"
    return BuildResult(settings.image, image_id, True, reason, base.name, cached, total)


# --- build context ----------------------------------------------------------------------------


def context_sources(container_dir: Path) -> list[ContextFile]:
    """The Dockerfile, requirements, the lock pinning their wheels, runner package and skills: all but the wheels."""
    files = [
        ContextFile("Dockerfile", container_dir / "Dockerfile"),
        ContextFile("requirements.txt", container_dir / "requirements.txt"),
        ContextFile("constraints.txt", container_dir.parent / "constraints.txt"),
    ]
    for package in ("agent_runner", "skills"):
        root = container_dir / package
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not _IGNORED_PARTS.intersection(relative.parts) and path.suffix != ".pyc":
                files.append(ContextFile(f"{package}/{relative.as_posix()}", path))
    return files


def context_hash(files: Iterable[ContextFile], base_id: str, python_version: str) -> str:
    """Names and contents of the context files plus the base image: equal hashes mean an equal image."""
    digest = hashlib.sha256(f"base={base_id}\npython={python_version}\n".encode())
    for item in sorted(files, key=lambda f: f.arcname):
        digest.update(f"{item.arcname}\0".encode())
        digest.update(hashlib.sha256(item.source.read_bytes()).digest())
    return digest.hexdigest()[:32]


def write_context_tar(files: Iterable[ContextFile], target: IO[bytes]) -> None:
    """A tar with fixed owners, modes and times so unchanged files always hit the layer cache."""
    with tarfile.open(fileobj=target, mode="w") as tar:
        for directory in ("agent_runner", "skills", "wheelhouse"):
            tar.addfile(_tar_entry(directory, tarfile.DIRTYPE, 0o755, 0))
        for item in files:
            with item.source.open("rb") as handle:
                size = item.source.stat().st_size
                tar.addfile(_tar_entry(item.arcname, tarfile.REGTYPE, 0o644, size), handle)


def _tar_entry(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    return info


# --- wheelhouse -------------------------------------------------------------------------------


def wheel_platforms(arch: str) -> list[str]:
    """pip's --platform values for manylinux wheels that run on our Debian-based image."""
    return [f"manylinux_2_{minor}_{arch}" for minor in MANYLINUX_GLIBC_MINORS] + [f"manylinux2014_{arch}"]


def wheelhouse_key(requirements: bytes, python_version: str, arch: str) -> str:
    return hashlib.sha256(requirements + f"\npython={python_version}\narch={arch}".encode()).hexdigest()[:16]


def ensure_wheelhouse(
    settings: Settings, requirements: Path, constraints: Path, arch: str, reporter: BuildReporter
) -> Path:
    """Download the wheels once per requirements and lock text; later builds reuse the cached directory.

    The project's lock file pins the runner's transitive dependencies too, so the image
    gets exactly the versions the host's tests ran against.
    """
    root = settings.data_dir / "cache" / "wheelhouse"
    target = root / wheelhouse_key(requirements.read_bytes() + constraints.read_bytes(), PYTHON_VERSION, arch)
    if target.is_dir():
        return target
    reporter.phase("downloading wheels with pip")
    root.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=root, prefix=f"{target.name}.partial-"))
    try:
        _download_wheels(requirements, constraints, arch, partial, reporter)
        with contextlib.suppress(OSError):  # another build finished the same wheelhouse first: keep that one
            partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    for stale in root.iterdir():
        if stale != target and ".partial-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)
    return target


def _download_wheels(
    requirements: Path, constraints: Path, arch: str, destination: Path, reporter: BuildReporter
) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--progress-bar", "off",
        "-r", str(requirements), "-c", str(constraints), "-d", str(destination),
        "--only-binary=:all:", "--python-version", PYTHON_VERSION,
    ]  # fmt: skip
    for platform_tag in wheel_platforms(arch):
        command += ["--platform", platform_tag]
    output = _stream(command, reporter)
    if output.returncode != 0:
        raise ImageBuildError(
            f"pip could not download the image's wheels:\n{output.tail}",
            "check that pip can reach your package index (pip config list), then run this again",
        )


# --- base image -------------------------------------------------------------------------------


def local_base_name() -> str | None:
    """`hermitcrab-base:<suite>` for this machine's release, or None when its os-release names no suite."""
    try:
        suite = read_os_release(OS_RELEASE).get("VERSION_CODENAME", "")
    except OSError:
        return None
    return f"{LOCAL_BASE_REPOSITORY}:{suite}" if suite else None


def base_image_name(settings: Settings) -> str | None:
    """The base a build uses: the configured image, else the one made from this machine's Debian sources."""
    return settings.base_image or local_base_name()


def resolve_base(client: docker.DockerClient, settings: Settings, reporter: BuildReporter) -> BaseImage:
    """The base image, present locally when this returns.

    By default it is made once from this machine's own Debian sources (the
    package mirror the machine already uses), so a build contacts no container
    registry. An image named in HERMITCRAB_BASE_IMAGE is the user's choice: it
    is pulled when it is not here yet.
    """
    if settings.base_image:
        return _configured_base(client, settings.base_image, reporter)
    return _local_base(client, settings, reporter)


def _configured_base(client: docker.DockerClient, name: str, reporter: BuildReporter) -> BaseImage:
    found = _inspect(client, name)
    if found is None:
        reporter.phase(f"pulling {name}")
        problem = try_pull(name, PULL_TIMEOUT_S)
        found = _inspect(client, name) if problem is None else None
        if found is None:
            raise ImageBuildError(
                f"the base image {name} (HERMITCRAB_BASE_IMAGE) is not here and cannot be pulled: {problem}",
                "load it with `docker load`, or unset HERMITCRAB_BASE_IMAGE to make the base from this "
                "machine's Debian sources",
            )
    return BaseImage(name, found["Id"])


def _local_base(client: docker.DockerClient, settings: Settings, reporter: BuildReporter) -> BaseImage:
    name = local_base_name()
    if name is None:
        raise ImageBuildError(
            f"this host names no Debian suite (no VERSION_CODENAME in {OS_RELEASE}) to make a base image from",
            f"set HERMITCRAB_BASE_IMAGE to an image with Python {PYTHON_VERSION} (`docker load` one if needed)",
        )
    found = _inspect(client, name)
    if found is None:
        release = read_os_release(OS_RELEASE)
        create_debian_base(client, settings, release.get("ID", "debian"), release["VERSION_CODENAME"], name, reporter)
        found = _inspect(client, name)
        if found is None:
            raise ImageBuildError(f"docker import did not produce {name}", "run `docker images` to see what exists")
    return BaseImage(name, found["Id"])


def try_pull(image: str, timeout_s: float) -> str | None:
    """None when `image` was pulled within `timeout_s`, else why not; a hanging registry costs only the timeout."""
    repository, tag = split_image_name(image)
    deadline = time.monotonic() + timeout_s
    try:
        client = docker.from_env(timeout=int(timeout_s))
    except docker.errors.DockerException as exc:
        return str(exc)
    try:
        for chunk in client.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                return str(chunk["error"])
            if time.monotonic() > deadline:
                return f"no result within {timeout_s:.0f} s"
    except (docker.errors.DockerException, OSError) as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    finally:
        client.close()
    return None


def split_image_name(image: str) -> tuple[str, str]:
    """`repo[:tag]` -> (repo, tag), minding registry ports such as `host:5000/repo`."""
    if ":" in image.rsplit("/", 1)[-1]:
        repository, _, tag = image.rpartition(":")
        return repository, tag
    return image, "latest"


def read_os_release(path: Path) -> dict[str, str]:
    """KEY=value pairs of os-release(5), quotes removed."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        key, sep, value = raw.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key] = value.strip().strip("\"'")
    return values


def apt_sources_file(distribution: str, apt_dir: Path = Path("/etc/apt")) -> Path | None:
    """The machine's own sources for its distribution: `<id>.sources` (deb822) or the classic sources.list."""
    deb822 = apt_dir / "sources.list.d" / f"{distribution}.sources"
    if deb822.is_file():
        return deb822
    classic = apt_dir / "sources.list"
    if classic.is_file() and any(line.strip().startswith("deb ") for line in classic.read_text().splitlines()):
        return classic
    return None


def mmdebstrap_command(suite: str, tar_path: Path, sources: Path) -> list[str]:
    return [
        "mmdebstrap",
        "--variant=minbase",
        f"--include={','.join(BASE_PACKAGES)}",
        suite,
        str(tar_path),
        str(sources),
    ]


def create_debian_base(
    client: docker.DockerClient, settings: Settings, distribution: str, suite: str, name: str, reporter: BuildReporter
) -> None:
    """Bootstrap a minimal root filesystem with Python from the machine's sources and import it as `name`."""
    sources = apt_sources_file(distribution)
    if sources is None:
        raise ImageBuildError(
            f"no apt sources for {distribution} found under /etc/apt, so no local base image can be made",
            f"set HERMITCRAB_BASE_IMAGE to an image with Python {PYTHON_VERSION} (`docker load` one if needed)",
        )
    _ensure_mmdebstrap(reporter)
    work = settings.data_dir / "cache"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        tar_path = Path(scratch) / "rootfs.tar"
        reporter.phase(f"creating base {name} with mmdebstrap from {sources}")
        output = _stream(mmdebstrap_command(suite, tar_path, sources), reporter)
        if output.returncode != 0:
            raise ImageBuildError(
                f"mmdebstrap failed:\n{output.tail}", f"check that `apt-get update` works with {sources}"
            )
        reporter.phase(f"importing {name}")
        repository, tag = split_image_name(name)
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
        ]
        try:
            client.api.import_image(src=str(tar_path), repository=repository, tag=tag, changes=changes)
        except docker.errors.DockerException as exc:
            raise ImageBuildError(
                f"docker import of {name} failed: {exc}", "check `docker info` and disk space"
            ) from None


def _ensure_mmdebstrap(reporter: BuildReporter) -> None:
    if shutil.which("mmdebstrap"):
        return
    if not can_apt_install():
        raise ImageBuildError(
            "mmdebstrap is needed to make a local base image but is not installed",
            "install it (`sudo apt-get install mmdebstrap`), then run this again",
        )
    reporter.phase("installing mmdebstrap with apt-get")
    try:
        apt_install("mmdebstrap")
    except AptInstallError as exc:
        raise ImageBuildError(str(exc), "install mmdebstrap by hand, then run this again") from None


# --- the build itself -------------------------------------------------------------------------


def _run_build(
    client: docker.DockerClient, tag: str, base: str, digest: str, context: IO[bytes], reporter: BuildReporter
) -> tuple[str, int, int]:
    """Stream the build; return (image id, steps served from cache, total steps)."""
    reporter.phase(f"building {tag} on {base}")
    current_step: list[str] = []  # the running step's header and output, for an error message
    image_id = ""
    cached = total = 0
    try:
        stream: Iterator[dict[str, Any]] = client.api.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            buildargs={"BASE_IMAGE": base, "PYTHON_VERSION": PYTHON_VERSION},
            labels={CONTEXT_HASH_LABEL: digest},
            network_mode="none",
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
            timeout=BUILD_HTTP_TIMEOUT_S,
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError(
                    f"the image build failed: {chunk['error'].strip()}\n" + "\n".join(current_step[-15:]),
                    "fix the cause above; `hermitcrab image build --verbose` shows all output",
                )
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
            for text in _ANSI.sub("", str(chunk.get("stream", ""))).splitlines():
                line = text.strip()
                if not line:
                    continue
                step = _STEP.match(line)
                if step:
                    current_step = [line]
                    total = int(step.group(2))
                    reporter.step(int(step.group(1)), total, step.group(3))
                elif line == "---> Using cache":
                    cached += 1
                elif not _BUILD_NOISE.match(line):
                    current_step.append(line)
                    reporter.line(line)
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"the image build failed: {exc}", "check `docker info` and disk space") from None
    if not image_id:
        found = _inspect(client, tag)
        if found is None:
            raise ImageBuildError(f"the build finished but {tag} does not exist", "run `docker images` to look")
        image_id = found["Id"]
    return image_id, cached, total


# --- small helpers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Output:
    returncode: int
    tail: str


def _stream(command: list[str], reporter: BuildReporter) -> _Output:
    """Run a command, passing each output line to the reporter and keeping the end for error messages."""
    lines: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip()
            lines.append(line)
            reporter.line(line)
    return _Output(process.returncode, "\n".join(lines[-15:]))


def _inspect(client: docker.DockerClient, image: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = client.api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return None
    return found


def _label(inspected: dict[str, Any], key: str) -> str | None:
    labels = (inspected.get("Config") or {}).get("Labels") or {}
    value = labels.get(key)
    return str(value) if value is not None else None


def _wheel_arch(client: docker.DockerClient) -> str:
    """The engine's architecture in wheel-tag spelling: the image runs there, not necessarily on this host."""
    docker_arch = str(client.version().get("Arch", ""))
    if docker_arch not in _DOCKER_TO_WHEEL_ARCH:
        raise ImageBuildError(
            f"the Docker engine runs on {docker_arch or 'an unknown architecture'}, which has no agent image wheels",
            "use an amd64 or arm64 machine",
        )
    return _DOCKER_TO_WHEEL_ARCH[docker_arch]


def _remove_if_dangling(client: docker.DockerClient, image_id: str) -> None:
    """Drop the image a rebuild replaced, unless something still names it or a container uses it."""
    replaced = _inspect(client, image_id)
    if replaced is None or replaced.get("RepoTags"):
        return
    with contextlib.suppress(docker.errors.APIError):
        client.api.remove_image(image_id)
