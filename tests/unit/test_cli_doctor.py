"""`hermitcrab doctor` and `hermitcrab status`: a stopped engine, a missing or stale image, and the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker.errors
import pytest
from typer.testing import CliRunner

from config.settings import Settings, load_settings
from events import types as ev
from events.log import EventLog
from tools.cli import app
from tools.cli_doctor import Check, check_python, run_checks
from tools.image import CONTEXT_HASH_LABEL, PYTHON_VERSION, base_image_name, context_hash, context_sources

NO_ENGINE = "unix:///nonexistent/docker.sock"


@pytest.fixture
def runner(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "HERMITCRAB_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    return CliRunner()


def by_name(checks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in checks}


class FakeApi:
    def __init__(self, images: dict[str, dict[str, Any]]) -> None:
        self._images = images

    def inspect_image(self, name: str) -> dict[str, Any]:
        if name not in self._images:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return self._images[name]


class FakeDocker:
    """Just enough of a docker client for the image checks: a version and some images."""

    def __init__(self, images: dict[str, dict[str, Any]]) -> None:
        self.api = FakeApi(images)
        self.closed = False

    def version(self) -> dict[str, str]:
        return {"Version": "20.10.24"}

    def close(self) -> None:
        self.closed = True


def checks_with(settings: Settings, images: dict[str, dict[str, Any]]) -> dict[str, Check]:
    client = FakeDocker(images)
    checks = run_checks(settings, lambda: client)  # type: ignore[arg-type, return-value]
    assert client.closed
    return {check.name: check for check in checks}


def source_hash(settings: Settings, base_id: str) -> str:
    return context_hash(context_sources(settings.project_root / "container"), base_id, PYTHON_VERSION)


def test_a_stopped_engine_is_reported_with_a_fix(runner: CliRunner) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    checks = by_name(report["checks"])
    engine = checks["docker engine"]
    assert engine["outcome"] == "fail"
    assert "does not answer" in engine["detail"]
    assert engine["fix"]
    assert checks["agent image"]["outcome"] == "skip"
    assert checks["python"]["outcome"] == "ok"
    assert checks["data directory"]["outcome"] == "ok"


def test_the_table_says_what_to_fix(runner: CliRunner) -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "docker engine" in result.stdout and "does not answer" in result.stdout
    assert "problem(s) to fix" in result.stdout


def test_a_missing_image_is_reported(settings: Settings) -> None:
    checks = checks_with(settings, {})
    assert checks["docker engine"].outcome == "ok"
    assert checks["agent image"].outcome == "fail"
    assert "missing" in checks["agent image"].detail
    assert "hermitcrab image build" in checks["agent image"].fix


def test_an_image_built_from_this_source_passes(settings: Settings) -> None:
    images = {
        str(base_image_name(settings)): {"Id": "sha256:base"},
        settings.image: {
            "Id": "sha256:agent",
            "Config": {"Labels": {CONTEXT_HASH_LABEL: source_hash(settings, "sha256:base")}},
        },
    }
    checks = checks_with(settings, images)
    assert checks["agent image"].outcome == "ok"
    assert checks["image matches source"].outcome == "ok"


def test_a_stale_image_must_be_rebuilt(settings: Settings) -> None:
    images = {
        str(base_image_name(settings)): {"Id": "sha256:base"},
        settings.image: {"Id": "sha256:agent", "Config": {"Labels": {CONTEXT_HASH_LABEL: "an-older-build"}}},
    }
    checks = checks_with(settings, images)
    assert checks["agent image"].outcome == "ok"
    stale = checks["image matches source"]
    assert stale.outcome == "fail" and "--if-changed" in stale.fix


def test_credentials_are_named_never_shown(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-very-secret-value")
    result = runner.invoke(app, ["doctor", "--json"])
    assert "sk-ant-very-secret-value" not in result.stdout + result.stderr
    credentials = by_name(json.loads(result.stdout)["checks"])["credentials"]
    assert credentials["outcome"] == "ok" and "ANTHROPIC_API_KEY" in credentials["detail"]


def test_no_credential_is_a_warning_unless_claude_is_required(
    settings_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    checks = checks_with(
        load_settings(env={**settings_env, "HERMITCRAB_PROVIDER": "auto"}, env_file=tmp_path / "x"), {}
    )
    assert checks["credentials"].outcome == "warn" and ".env" in checks["credentials"].fix
    strict = load_settings(env={**settings_env, "HERMITCRAB_PROVIDER": "claude"}, env_file=tmp_path / "x")
    assert checks_with(strict, {})["credentials"].outcome == "fail"


def test_a_broken_allowlist_fails_a_missing_one_is_fine(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowlist = tmp_path / "allowlist.json"
    monkeypatch.setenv("HERMITCRAB_MOUNT_ALLOWLIST", str(allowlist))
    fine = by_name(json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)["checks"])
    assert fine["mount allowlist"]["outcome"] == "ok"
    allowlist.write_text("{not json")
    broken = by_name(json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)["checks"])
    assert broken["mount allowlist"]["outcome"] == "fail"
    assert str(allowlist) in broken["mount allowlist"]["detail"]


def test_an_unwritable_data_directory_fails(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HERMITCRAB_DATA_DIR", str(blocker / "data"))
    checks = by_name(json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)["checks"])
    assert checks["data directory"]["outcome"] == "fail"
    assert "HERMITCRAB_DATA_DIR" in checks["data directory"]["fix"]


def test_bad_settings_are_a_failed_check(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDLE_TIMEOUT", "banana")
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1
    settings_check = by_name(json.loads(result.stdout)["checks"])["settings"]
    assert "IDLE_TIMEOUT" in settings_check["detail"]


def test_an_old_python_fails() -> None:
    assert check_python((3, 10, 4)).outcome == "fail"
    assert check_python((3, 12, 0)).outcome == "ok"


def test_status_without_engine_and_host(runner: CliRunner, settings: Settings) -> None:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["host_running"] is False and report["pid"] is None
    assert report["docker"]["ok"] is False
    assert report["image"] is None
    assert report["sessions"] == []
    assert not settings.central_db.exists()  # looking never creates anything
    table = runner.invoke(app, ["status"]).stdout
    assert "not running" in table and "not answering" in table


def test_status_shows_model_usage_per_group(runner: CliRunner, settings: Settings) -> None:
    with EventLog.open(settings.central_db) as log:
        log.append("group:g1", [ev.GroupCreated(group_id="g1", name="Main", folder="main")])
        for tokens in (100, 250):
            log.append(
                "usage:g1",
                [ev.UsageRecorded(agent_group_id="g1", session_id="s1", input_tokens=tokens, output_tokens=10)],
            )
    report = json.loads(runner.invoke(app, ["status", "--json"]).stdout)
    [usage] = report["usage"]
    assert usage["group"] == "main"
    assert (usage["totals"]["requests"], usage["totals"]["input_tokens"], usage["totals"]["output_tokens"]) == (
        2,
        350,
        20,
    )
    assert "model usage" in runner.invoke(app, ["status"]).stdout
