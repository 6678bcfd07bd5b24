"""What happens to the messages a container held when it died or was stopped as stuck.

Called by the SessionActor at the instant it records the stop, before any new
container can start (a fresh container would otherwise drop the claims and
redo them without counting a try). Each claim of *this* container — claims
older than its own start belong to a predecessor and are not its failures — is
reset with exponential backoff, or failed for good after the last try, when
its sender is told. The reset is idempotent (sessiondb.reset_for_retry), so a
repeated stop changes nothing; the host still never writes outbound.db.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sessiondb
from actors.services import HostServices
from channels.adapter import OutboundDelivery
from config.logs import get_logger
from events import types as ev

log = get_logger("retry")

AGENT_CHANNEL = "agent"
CLOCK_SLACK_S = 1.0
"""Ack times are whole seconds: a claim up to a second before the recorded start is still this container's."""


def is_failure(reason: str, exit_code: int | None) -> bool:
    """Stops that mean the work did not get done: stuck, crashed (non-zero exit) or gone without a trace.

    An idle timeout, an admin stop or a rebuild ends a container cleanly: the
    runner exits on SIGTERM and the next container takes the messages again
    without counting a failed try.
    """
    if reason.startswith("stuck"):
        return True
    if reason.startswith("exited"):  # "exited", or "exited with code N: <the runner's last words>"
        return exit_code not in (0, None)
    return reason == "vanished"


def failure_text(tries: int, reason: str) -> str:
    return (
        f"Sorry, your message could not be processed: the agent failed {tries} times in a row ({reason}). "
        "Please try again later."
    )


def retry_claims(
    services: HostServices, session_id: str, folder: Path, started_at: float | None, reason: str
) -> list[sessiondb.RetryOutcome]:
    """Reset (or fail) the container's current claims; record each change; tell the sender of each failure."""
    if not sessiondb.inbound_path(folder).exists():
        return []
    settings = services.settings
    since = (started_at or 0.0) - CLOCK_SLACK_S
    now = datetime.now(UTC)
    outcomes = []
    for claim in sessiondb.claimed_messages(folder):
        if claim.claimed_at.timestamp() < since:
            continue
        try:
            outcome = sessiondb.reset_for_retry(
                folder,
                claim.message_id,
                now=now,
                base_delay_s=settings.retry_base_delay_s,
                max_tries=settings.max_tries,
            )
        except sessiondb.SessionDbError as exc:  # a row the container's file names but inbound.db lacks
            log.error("message.retry_failed", session_id=session_id, message_id=claim.message_id, error=str(exc))
            continue
        if not outcome.changed:
            continue
        outcomes.append(outcome)
        services.log.append(
            f"session:{session_id}",
            [
                ev.MessageRetried(
                    session_id=session_id,
                    message_id=claim.message_id,
                    tries=outcome.tries,
                    status=outcome.status,
                    retry_at=sessiondb.to_db_time(outcome.retry_at) if outcome.retry_at else None,
                    reason=reason,
                )
            ],
        )
        log.info(
            "message.retry",
            session_id=session_id,
            message_id=claim.message_id,
            tries=outcome.tries,
            status=outcome.status,
        )
        if outcome.status == "failed":
            _tell_sender(services, claim, outcome.tries, reason)
    return outcomes


def _tell_sender(services: HostServices, claim: sessiondb.Claim, tries: int, reason: str) -> None:
    if (
        services.outlet is None
        or not claim.channel_type
        or not claim.platform_id
        or claim.channel_type == AGENT_CHANNEL
    ):
        log.warning("message.failed_untold", message_id=claim.message_id, channel_type=claim.channel_type)
        return
    services.outlet.post(
        claim.channel_type,
        OutboundDelivery(
            idempotency_key=f"failed-{claim.message_id}",
            platform_id=claim.platform_id,
            thread_id=claim.thread_id,
            text=failure_text(tries, reason),
        ),
    )
