"""Shared fixtures: every test gets its own data directory and a non-UTC host zone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings, load_settings

# The host must never depend on its own zone being UTC: run every test in a far-off one.
os.environ["TZ"] = "Pacific/Auckland"
time.tzset()


@pytest.fixture
def settings_env(tmp_path: Path) -> dict[str, str]:
    """An environment for load_settings that points every path into tmp_path."""
    return {
        "HOME": str(tmp_path / "home"),
        "HERMITCRAB_DATA_DIR": str(tmp_path / "data"),
        "TZ": "Pacific/Auckland",
        "HERMITCRAB_PROVIDER": "echo",
    }


@pytest.fixture
def settings(settings_env: dict[str, str], tmp_path: Path) -> Iterator[Settings]:
    yield load_settings(env=settings_env, env_file=tmp_path / "no.env")
