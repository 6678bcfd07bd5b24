"""The header swap: the container's token goes, the real credential comes, everything else passes unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import load_settings
from credentials.upstream import (
    OAUTH_BETA,
    UpstreamCredential,
    client_headers,
    presented_token,
    upstream_headers,
)

TOKEN = "hc1.sess-1.nonce.mac"
API_KEY = UpstreamCredential("api_key", "sk-ant-api03-REAL")
OAUTH = UpstreamCredential("oauth", "sk-ant-oat01-REAL")

CLIENT_REQUEST = [
    ("Host", "host.docker.internal:3001"),
    ("X-Api-Key", TOKEN),
    ("Authorization", f"Bearer {TOKEN}"),
    ("anthropic-version", "2023-06-01"),
    ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
    ("content-type", "application/json"),
    ("content-length", "123"),
    ("accept-encoding", "gzip, br"),
    ("connection", "keep-alive"),
    ("user-agent", "claude-cli/2.1.332 (external, sdk-cli)"),
    ("x-app", "cli"),
]


def lowered(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for name, value in headers:
        result.setdefault(name.lower(), []).append(value)
    return result


def test_an_api_key_replaces_the_token_and_the_rest_passes_unchanged() -> None:
    out = lowered(upstream_headers(CLIENT_REQUEST, API_KEY))
    assert out["x-api-key"] == ["sk-ant-api03-REAL"]
    assert "authorization" not in out
    assert out["anthropic-version"] == ["2023-06-01"]
    assert out["anthropic-beta"] == ["claude-code-20250219,interleaved-thinking-2025-05-14"]
    assert out["content-type"] == ["application/json"]
    assert out["user-agent"] == ["claude-cli/2.1.332 (external, sdk-cli)"]
    assert out["x-app"] == ["cli"]
    for framing in ("host", "content-length", "accept-encoding", "connection"):
        assert framing not in out
    assert TOKEN not in str(out)


def test_an_oauth_token_goes_as_bearer_with_the_oauth_beta_added() -> None:
    out = lowered(upstream_headers(CLIENT_REQUEST, OAUTH))
    assert out["authorization"] == ["Bearer sk-ant-oat01-REAL"]
    assert "x-api-key" not in out
    assert out["anthropic-beta"] == [f"claude-code-20250219,interleaved-thinking-2025-05-14,{OAUTH_BETA}"]
    assert TOKEN not in str(out)


def test_the_oauth_beta_is_not_doubled_and_is_added_when_no_beta_was_sent() -> None:
    already = [("x-api-key", TOKEN), ("anthropic-beta", f"{OAUTH_BETA}, files-api-2025-04-14")]
    assert lowered(upstream_headers(already, OAUTH))["anthropic-beta"] == [f"{OAUTH_BETA}, files-api-2025-04-14"]
    bare = [("x-api-key", TOKEN), ("anthropic-version", "2023-06-01")]
    assert lowered(upstream_headers(bare, OAUTH))["anthropic-beta"] == [OAUTH_BETA]


def test_the_presented_token_comes_from_x_api_key_or_a_bearer_header() -> None:
    assert presented_token([("X-API-KEY", f" {TOKEN} ")]) == TOKEN
    assert presented_token([("authorization", f"Bearer {TOKEN}")]) == TOKEN
    assert presented_token([("authorization", f"bearer {TOKEN}"), ("x-api-key", "hc1.other")]) == "hc1.other"
    assert presented_token([("authorization", "Basic abc"), ("content-type", "application/json")]) is None
    assert presented_token([("x-api-key", "  ")]) is None
    assert presented_token([]) is None


def test_response_headers_lose_only_their_framing() -> None:
    upstream = [
        ("content-type", "text/event-stream"),
        ("request-id", "req_1"),
        ("anthropic-ratelimit-tokens-remaining", "9000"),
        ("content-length", "10"),
        ("content-encoding", "gzip"),
        ("transfer-encoding", "chunked"),
        ("connection", "close"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]
    assert client_headers(upstream) == [
        ("content-type", "text/event-stream"),
        ("request-id", "req_1"),
        ("anthropic-ratelimit-tokens-remaining", "9000"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]


def test_the_credential_never_shows_in_its_repr() -> None:
    assert "REAL" not in repr(API_KEY)
    assert "REAL" not in repr(OAUTH)
    assert "REAL" not in str([API_KEY])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ANTHROPIC_API_KEY": "sk-a", "CLAUDE_CODE_OAUTH_TOKEN": "sk-o"}, UpstreamCredential("api_key", "sk-a")),
        ({"CLAUDE_CODE_OAUTH_TOKEN": "sk-o"}, UpstreamCredential("oauth", "sk-o")),
        ({"ANTHROPIC_API_KEY": ""}, None),
    ],
)
def test_the_credential_comes_from_settings(
    settings_env: dict[str, str], tmp_path: Path, env: dict[str, str], expected: UpstreamCredential | None
) -> None:
    settings = load_settings(env={**settings_env, **env}, env_file=tmp_path / "no.env")
    assert UpstreamCredential.from_settings(settings) == expected
