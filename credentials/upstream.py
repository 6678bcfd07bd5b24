"""The real credential and the header rewriting on each side of the proxy.

Outgoing: the container's token (in `x-api-key` or `Authorization`) is dropped
and the real credential put in its place; every other end-to-end header
(anthropic-version, anthropic-beta, content-type, user agent, ...) passes
unchanged. An API key travels as `x-api-key`. An OAuth token travels as
`Authorization: Bearer` together with the `oauth-2025-04-20` beta: that is
what Claude Code itself sends in OAuth mode (observed from the bundled CLI
2.1.332 against a local server: `authorization: Bearer …` and
`anthropic-beta: claude-code-20250219,oauth-2025-04-20,…`), while in API-key
mode, which is how the container sees the proxy, it sends no such beta, so the
proxy adds it. `accept-encoding` is left to the proxy's own client because the
proxy reads (decoded) bodies to count tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from config.settings import Settings

OAUTH_BETA = "oauth-2025-04-20"

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers that describe one connection, never forwarded (RFC 9110 §7.6.1)."""

_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "accept-encoding", "x-api-key", "authorization"}
_NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding"}

Header = tuple[str, str]


@dataclass(frozen=True)
class UpstreamCredential:
    """The real secret; its repr never shows it, so it cannot leak through a log line or a traceback."""

    kind: Literal["api_key", "oauth"]
    secret: str

    def __repr__(self) -> str:
        return f"UpstreamCredential(kind={self.kind!r}, secret=<redacted>)"

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamCredential | None:
        """An API key when one is set (it needs no beta), else the OAuth token, else None."""
        if settings.anthropic_api_key:
            return cls("api_key", settings.anthropic_api_key)
        if settings.claude_oauth_token:
            return cls("oauth", settings.claude_oauth_token)
        return None


def presented_token(headers: Iterable[Header]) -> str | None:
    """The token a client presents: `x-api-key`, or a Bearer `Authorization` (ANTHROPIC_AUTH_TOKEN style)."""
    bearer = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == "x-api-key" and value.strip():
            return value.strip()
        if lowered == "authorization" and value[:7].lower() == "bearer ":
            bearer = value[7:].strip() or None
    return bearer


def upstream_headers(incoming: Iterable[Header], credential: UpstreamCredential) -> list[Header]:
    """The request headers to send upstream: the client's end-to-end ones, with the real credential."""
    headers = [(name, value) for name, value in incoming if name.lower() not in _NOT_FORWARDED]
    if credential.kind == "api_key":
        headers.append(("x-api-key", credential.secret))
        return headers
    headers.append(("authorization", f"Bearer {credential.secret}"))
    betas = [beta.strip() for name, value in headers if name.lower() == "anthropic-beta" for beta in value.split(",")]
    if OAUTH_BETA not in betas:
        headers = [(name, value) for name, value in headers if name.lower() != "anthropic-beta"]
        headers.append(("anthropic-beta", ",".join([*(b for b in betas if b), OAUTH_BETA])))
    return headers


def client_headers(upstream: Iterable[Header]) -> list[Header]:
    """The response headers to pass back: the proxy re-frames the body (chunked, decoded), so framing ones go."""
    return [(name, value) for name, value in upstream if name.lower() not in _NOT_RETURNED]
