"""Capability tokens: issued per container start, verified by HMAC, and useless once altered or foreign."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from credentials.tokens import SECRET_FILE, CapabilityTokens, SecretFileError, load_or_create_secret


def test_a_token_names_the_session_it_was_issued_for(tmp_path: Path) -> None:
    tokens = CapabilityTokens.for_data_dir(tmp_path)
    for session_id in ("sess-1a2b3c", "sess.with.dots", "s"):
        token = tokens.issue(session_id)
        assert token.startswith("hc1.")
        assert tokens.session_of(token) == session_id


def test_every_issue_is_a_distinct_token(tmp_path: Path) -> None:
    tokens = CapabilityTokens.for_data_dir(tmp_path)
    issued = {tokens.issue("sess-1") for _ in range(50)}
    assert len(issued) == 50
    assert {tokens.session_of(t) for t in issued} == {"sess-1"}


def test_a_tampered_token_is_rejected(tmp_path: Path) -> None:
    tokens = CapabilityTokens.for_data_dir(tmp_path)
    token = tokens.issue("sess-victim")
    body, _, mac = token.rpartition(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    assert tokens.session_of(f"{body}.{flipped}") is None
    # Same mac, another session: the mac covers the session id.
    assert tokens.session_of(token.replace("sess-victim", "sess-other")) is None
    assert tokens.session_of(token + "x") is None
    assert tokens.session_of(token[:-1]) is None


@pytest.mark.parametrize(
    "garbage",
    ["", "hc1", "hc1.", "hc1..", "hc1.s..mac", "sk-ant-api03-x", "hc2.s.nonce.mac", "hc1.s.nonce.", "ünï.cödé"],
)
def test_malformed_tokens_are_rejected(tmp_path: Path, garbage: str) -> None:
    assert CapabilityTokens.for_data_dir(tmp_path).session_of(garbage) is None


def test_another_hosts_token_is_rejected(tmp_path: Path) -> None:
    ours = CapabilityTokens.for_data_dir(tmp_path / "ours")
    theirs = CapabilityTokens.for_data_dir(tmp_path / "theirs")
    assert ours.session_of(theirs.issue("sess-1")) is None


def test_tokens_survive_a_host_restart(tmp_path: Path) -> None:
    """A new process reading the same data directory honours what the old one issued (adopted containers)."""
    token = CapabilityTokens.for_data_dir(tmp_path).issue("sess-adopted")
    assert CapabilityTokens.for_data_dir(tmp_path).session_of(token) == "sess-adopted"


def test_the_secret_file_is_private_and_created_once(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path / "data")
    path = tmp_path / "data" / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32
    assert load_or_create_secret(tmp_path / "data") == first
    assert [p.name for p in (tmp_path / "data").iterdir()] == [SECRET_FILE]


def test_a_secret_readable_by_others_is_restricted(tmp_path: Path) -> None:
    secret = load_or_create_secret(tmp_path)
    path = tmp_path / SECRET_FILE
    path.chmod(0o644)
    assert load_or_create_secret(tmp_path) == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_damaged_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE).write_text("not hex at all\n")
    with pytest.raises(SecretFileError, match=SECRET_FILE):
        load_or_create_secret(tmp_path)


def test_a_session_id_that_cannot_be_a_token_is_refused(tmp_path: Path) -> None:
    tokens = CapabilityTokens.for_data_dir(tmp_path)
    for bad in ("", "two words", "tab\there"):
        with pytest.raises(ValueError, match="cannot be put in a token"):
            tokens.issue(bad)
