"""Settings: good values parse, and a bad one fails naming the variable and the expected form."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import PROJECT_ROOT, SettingsError, load_settings


def _load(settings_env: dict[str, str], tmp_path: Path, **overrides: str) -> object:
    return load_settings(env={**settings_env, **overrides}, env_file=tmp_path / "no.env")


@pytest.mark.parametrize(
    ("variable", "value", "expected_words"),
    [
        ("IDLE_TIMEOUT", "abc", "positive duration like 1800, 90s, 30m or 1h"),
        ("IDLE_TIMEOUT", "-5", "positive duration"),
        ("MAX_CONCURRENT_CONTAINERS", "many", "whole number >= 1"),
        ("MAX_CONCURRENT_CONTAINERS", "0", "whole number >= 1"),
        ("TZ", "Mars/Olympus_Mons", "IANA time zone"),
        ("TZ", "/etc/localtime", "IANA time zone"),
        ("HERMITCRAB_PROVIDER", "gpt", "one of auto, claude, echo"),
        ("HERMITCRAB_CONTAINER_MEMORY", "lots", "size like 512m or 2g"),
        ("HERMITCRAB_APPROVAL_TTL", "0", "positive duration like 24h"),
        ("HERMITCRAB_RETRY_BASE_DELAY", "soon", "positive duration like 5s"),
        ("HERMITCRAB_MAX_TRIES", "0", "whole number >= 1"),
    ],
)
def test_a_bad_value_names_the_variable_its_value_and_the_expected_form(
    settings_env: dict[str, str], tmp_path: Path, variable: str, value: str, expected_words: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        _load(settings_env, tmp_path, **{variable: value})

    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r} is invalid: expected ")
    assert expected_words in message
    assert caught.value.variable == variable


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1800", 1800.0), ("90s", 90.0), ("30m", 1800.0), ("1h", 3600.0), ("500ms", 0.5), (" 2.5m ", 150.0)],
)
def test_durations_accept_plain_seconds_and_units(
    settings_env: dict[str, str], tmp_path: Path, value: str, seconds: float
) -> None:
    settings = load_settings(env={**settings_env, "IDLE_TIMEOUT": value}, env_file=tmp_path / "no.env")

    assert settings.idle_timeout_s == seconds


def test_good_values_parse(settings_env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **settings_env,
        "TZ": "Europe/Berlin",
        "HERMITCRAB_PROVIDER": "Claude",
        "MAX_CONCURRENT_CONTAINERS": "12",
        "CONTAINER_IMAGE": "my-agent:dev",
        "ASSISTANT_NAME": "Hermie",
    }

    settings = load_settings(env=env, env_file=tmp_path / "no.env")

    assert settings.timezone == "Europe/Berlin"
    assert settings.provider == "claude"
    assert settings.max_concurrent_containers == 12
    assert settings.image == "my-agent:dev"
    assert settings.assistant_name == "Hermie"
    assert settings.data_dir == (tmp_path / "data").resolve()


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load_settings(env={"HOME": str(tmp_path)}, env_file=tmp_path / "no.env")

    assert settings.image == "hermitcrab-agent:latest"
    assert settings.idle_timeout_s == 1800.0
    assert settings.max_concurrent_containers == 5
    assert (settings.approval_ttl_s, settings.retry_base_delay_s, settings.max_tries) == (86400.0, 5.0, 5)
    assert settings.data_dir == (tmp_path / ".local/share/hermitcrab").resolve()
    assert settings.mount_allowlist == (tmp_path / ".config/hermitcrab/mount-allowlist.json").resolve()
    assert settings.effective_provider == "echo"


def test_dot_env_fills_gaps_and_the_environment_wins(settings_env: dict[str, str], tmp_path: Path) -> None:
    dot_env = tmp_path / ".env"
    dot_env.write_text("IDLE_TIMEOUT=5m\nASSISTANT_NAME=FromFile\n")

    settings = load_settings(env={**settings_env, "ASSISTANT_NAME": "FromEnv"}, env_file=dot_env)

    assert settings.idle_timeout_s == 300.0
    assert settings.assistant_name == "FromEnv"


def test_a_bad_value_in_dot_env_is_reported_like_one_in_the_environment(
    settings_env: dict[str, str], tmp_path: Path
) -> None:
    dot_env = tmp_path / ".env"
    dot_env.write_text("TZ=Nowhere/Special\n")
    env = {key: value for key, value in settings_env.items() if key != "TZ"}

    with pytest.raises(SettingsError, match=r"^TZ='Nowhere/Special' is invalid: expected an IANA time zone"):
        load_settings(env=env, env_file=dot_env)


def test_a_command_with_a_bad_setting_prints_one_clear_line_and_exits_2(
    settings_env: dict[str, str], tmp_path: Path
) -> None:
    """What a user sees: the variable, the value, the expected form and a hint; no traceback."""
    env = {**settings_env, "PATH": "/usr/bin:/bin", "IDLE_TIMEOUT": "abc", "HERMITCRAB_DATA_DIR": str(tmp_path)}

    done = subprocess.run(
        [sys.executable, "-m", "tools.docker_engine", "ensure"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "IDLE_TIMEOUT='abc' is invalid: expected a positive duration like 1800, 90s, 30m or 1h" in done.stderr
    assert "hint:" in done.stderr
    assert "Traceback" not in done.stderr
