"""Installing a Debian package the host needs (docker.io, mmdebstrap) with the machine's own apt."""

from __future__ import annotations

import os
import shutil
import subprocess


class AptInstallError(RuntimeError):
    """apt-get could not install a package; the message carries the end of its output."""


def can_apt_install() -> bool:
    """apt-get works unattended only for root on a machine that has it."""
    return os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get") is not None


def apt_install(package: str) -> None:
    """Install `package`; refresh the package lists only when the first attempt fails without them."""
    if _run(["apt-get", "install", "-y", "--no-install-recommends", package]).returncode == 0:
        return
    update = _run(["apt-get", "update"])
    if update.returncode != 0:
        raise AptInstallError(f"apt-get update failed:\n{_tail(update.stdout)}")
    retry = _run(["apt-get", "install", "-y", "--no-install-recommends", package])
    if retry.returncode != 0:
        raise AptInstallError(f"apt-get install {package} failed:\n{_tail(retry.stdout)}")


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)


def _tail(output: str, lines: int = 15) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])
