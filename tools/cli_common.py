"""What every CLI module shares: the user-error type, consoles and settings loading."""

from __future__ import annotations

from msgspec.structs import replace
from rich.console import Console

from config.logs import configure_logging
from config.settings import Settings, SettingsError, load_settings

out = Console()
err = Console(stderr=True)


class UserError(Exception):
    """A mistake the user can fix: printed as one line plus a hint, never as a traceback."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def settings_or_exit() -> Settings:
    """Load settings, turning a bad value into a clear one-line error; logs go to stderr, never into --json output.

    A short command logs warnings and errors only, unless debug logging is asked for.
    """
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise UserError(str(exc), "fix the variable in your environment or in .env") from None
    quiet = settings if settings.log_level in ("debug", "warning", "error") else replace(settings, log_level="warning")
    configure_logging(quiet)
    return settings
