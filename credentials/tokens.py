"""Capability tokens: what a container presents as its "API key" instead of the real credential.

A token is `hc1.<session id>.<nonce>.<mac>`, the mac an HMAC-SHA256 of the rest
under a host secret kept in `<data_dir>/proxy-secret`. Self-verifying, so the
host keeps no token table: a container adopted after a host restart still holds
a valid token. A valid mac only proves the host issued the token for that
session; whether the session may use it *now* (its container is up) is the
proxy's check, which is what revokes a token when the container stops.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from config.logs import get_logger

PREFIX = "hc1"
SECRET_FILE = "proxy-secret"
SECRET_BYTES = 32

log = get_logger("credentials.tokens")


class SecretFileError(RuntimeError):
    """The proxy secret file exists but cannot be used; the message names the file."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_or_create_secret(data_dir: Path) -> bytes:
    """The host secret, created once (0600) on first use; concurrent first starts agree on one secret.

    The new secret is written to a private temporary file and hard-linked into
    place, so a reader never sees a half-written file and a second writer's
    link fails instead of replacing the first secret.
    """
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        temporary = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(SECRET_BYTES) + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink()
    if path.stat().st_mode & 0o077:
        log.warning("proxy secret readable by others: restricting it to its owner", path=str(path))
        path.chmod(0o600)
    text = path.read_text().strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < SECRET_BYTES:
        raise SecretFileError(
            f"{path} does not hold a {SECRET_BYTES}-byte hex secret; delete it and restart the host "
            "(running containers then need a restart to get new tokens)"
        )
    return secret


class CapabilityTokens:
    """Issues and checks the per-container tokens under one host secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> CapabilityTokens:
        return cls(load_or_create_secret(data_dir))

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest())

    def issue(self, session_id: str) -> str:
        """A fresh token for one start of a session's container (the nonce makes every start's token distinct)."""
        if not session_id or any(c.isspace() for c in session_id):
            raise ValueError(f"session id {session_id!r} cannot be put in a token")
        body = f"{PREFIX}.{session_id}.{_b64(secrets.token_bytes(12))}"
        return f"{body}.{self._mac(body)}"

    def session_of(self, token: str) -> str | None:
        """The session a token was issued for, or None when the host did not issue it (or it was altered)."""
        if not token.startswith(f"{PREFIX}."):
            return None
        body, _, mac = token.rpartition(".")
        session_id, _, nonce = body[len(PREFIX) + 1 :].rpartition(".")
        if not session_id or not nonce:
            return None
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        return session_id
