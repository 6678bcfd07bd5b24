"""Choosing the provider by name (AGENT_PROVIDER)."""

from __future__ import annotations

from agent_runner.providers.base import Provider, ProviderContext

PROVIDERS = ("claude", "echo")


class UnknownProvider(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown AGENT_PROVIDER {name!r}: expected one of {', '.join(PROVIDERS)}")


def create_provider(name: str, context: ProviderContext) -> Provider:
    """The provider called `name`. Claude's SDK is imported only when Claude is chosen."""
    if name == "echo":
        from agent_runner.providers.echo import EchoProvider

        return EchoProvider(context)
    if name == "claude":
        from agent_runner.providers.claude import ClaudeProvider

        return ClaudeProvider(context)
    raise UnknownProvider(name)
