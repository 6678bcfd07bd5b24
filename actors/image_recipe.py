"""A group's own image: the base agent image plus approved apt and pip packages.

Package names come from agents (via `install_packages` and an admin's
approval) and end up in a Dockerfile, so each one must match a strict pattern
before it gets anywhere near a build: no URLs, no options, no shell.
"""

from __future__ import annotations

import hashlib
import json
import re

import msgspec

from events.model import Packages

MAX_PACKAGES = 20
IMAGE_REPOSITORY = "hermitcrab-agent"
AGENT_USER = "agent"

_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]{1,62}$")
# A PEP 508 distribution name, optionally pinned to one exact PEP 440 version.
_PIP_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]{0,98}[A-Za-z0-9])(==(?P<version>[0-9][A-Za-z0-9.!+_-]{0,63}))?$"
)
_TAG_UNSAFE = re.compile(r"[^a-z0-9_.-]+")
# An image reference as `FROM` takes it: registry/path:tag or @digest, nothing else.
_IMAGE_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$", re.IGNORECASE)


class InvalidPackageError(ValueError):
    """A package list was refused; the message names the package and the rule."""

    def __init__(self, package: str, rule: str) -> None:
        super().__init__(f"package {package!r} refused: {rule}" if package else f"packages refused: {rule}")
        self.package = package
        self.rule = rule


class ImageRecipe(msgspec.Struct, frozen=True, kw_only=True):
    """What the GroupActor builds: tag, Dockerfile and a digest to label the image with ("build if changed")."""

    tag: str
    dockerfile: str
    digest: str


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def validate_packages(packages: Packages) -> Packages:
    """The same packages, duplicates dropped, or InvalidPackageError naming the first bad one."""
    apt = _unique(packages.apt)
    pip = _unique(packages.pip)
    if len(apt) + len(pip) > MAX_PACKAGES:
        raise InvalidPackageError("", f"at most {MAX_PACKAGES} packages in total, got {len(apt) + len(pip)}")
    for name in apt:
        if not _APT_NAME.fullmatch(name):
            raise InvalidPackageError(
                name, "not a Debian package name (lower-case letters, digits, '+', '.', '-'; 2 to 63 characters)"
            )
    for requirement in pip:
        if not _PIP_REQUIREMENT.fullmatch(requirement):
            raise InvalidPackageError(
                requirement, "not a PyPI project name with an optional '==version' (no URLs, extras or options)"
            )
    return Packages(apt=apt, pip=pip)


def group_image_tag(group_id: str) -> str:
    """`hermitcrab-agent:<group id>`, lower-cased and reduced to the characters a Docker tag allows."""
    tag = _TAG_UNSAFE.sub("-", group_id.lower()).lstrip(".-")[:128]
    if not tag:
        raise ValueError(f"group id {group_id!r} has no characters usable in an image tag")
    return f"{IMAGE_REPOSITORY}:{tag}"


def build_group_dockerfile(base_image: str, packages: Packages) -> str:
    """A Dockerfile installing the validated packages on top of the base agent image, ending as the agent user."""
    if not _IMAGE_REFERENCE.fullmatch(base_image):
        raise ValueError(f"base image {base_image!r} is not a plain image reference")
    checked = validate_packages(packages)
    if not checked.apt and not checked.pip:
        raise InvalidPackageError("", "nothing to install")
    lines = [f"FROM {base_image}", "USER root"]
    if checked.apt:
        lines.append(
            "RUN apt-get update"
            f" && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {' '.join(checked.apt)}"
            " && rm -rf /var/lib/apt/lists/*"
        )
    if checked.pip:
        # Exec form: the requirements reach pip as arguments, never through a shell.
        command = ["/opt/venv/bin/pip", "install", "--no-cache-dir", *checked.pip]
        lines.append(f"RUN {json.dumps(command)}")
    lines.append(f"USER {AGENT_USER}")
    return "\n".join(lines) + "\n"


def image_recipe(group_id: str, base_image: str, packages: Packages) -> ImageRecipe:
    """Tag, Dockerfile and content digest for a group's image, all from validated input."""
    dockerfile = build_group_dockerfile(base_image, packages)
    return ImageRecipe(
        tag=group_image_tag(group_id),
        dockerfile=dockerfile,
        digest=hashlib.sha256(dockerfile.encode()).hexdigest(),
    )
