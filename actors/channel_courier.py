"""The courier of a channel lane: authorization, pending questions, outbox files, then the adapter calls.

Runs inside that channel's DeliveryActor, so the adapter's blocking calls
happen in the one actor that owns them. The order matters for retries: the
checks and the pending-question record come first and are idempotent, the
platform calls last; a retry repeats them all with the same idempotency keys.
"""

from __future__ import annotations

import shutil

from actors.authorization import channel_grant
from actors.delivery import Job, Outcome, Refused, Sent
from actors.outbound_plan import Undeliverable, declared_files, parse_content, plan_deliveries, question_id
from actors.outbox_files import OutboxError, remove_outbox, stage_files, staging_dir
from actors.services import HostServices
from channels.adapter import ChannelAdapter, DeliveryError, OutboundDelivery
from config.logs import get_logger
from events import types as ev

log = get_logger("delivery")


class ChannelCourier:
    def __init__(self, services: HostServices, adapter: ChannelAdapter) -> None:
        self._log = services.log
        self._settings = services.settings
        self._adapter = adapter
        self._channel_type = adapter.channel_type

    def send(self, job: Job) -> Outcome:
        row, session = job.row, job.session
        if not job.platform_id:
            return Refused("it names no conversation and the session has none to reply in")
        if channel_grant(self._log.store, session.agent_group_id, self._channel_type, job.platform_id) is None:
            return Refused(
                f"unauthorized destination {self._channel_type}/{job.platform_id}: agent group"
                f" {session.agent_group_id} holds no destination for it"
            )
        staging = staging_dir(self._settings.data_dir, session.id, row.id)
        try:
            content = parse_content(row)
            names = declared_files(content)
            files = stage_files(job.folder, row.id, names, staging) if names else []
            deliveries = plan_deliveries(
                row,
                content,
                session_id=session.id,
                platform_id=job.platform_id,
                thread_id=job.thread_id,
                capabilities=self._adapter.capabilities,
                files=files,
            )
            asked = question_id(row, content)
            if asked is not None and self._log.store.pending_question(asked) is None:
                self._log.append(
                    f"session:{session.id}",
                    [
                        ev.QuestionAsked(
                            question_id=asked,
                            session_id=session.id,
                            message_out_id=row.id,
                            channel_type=self._channel_type,
                            platform_id=job.platform_id,
                            thread_id=job.thread_id,
                        )
                    ],
                )
            platform_ids = [self._call(delivery) for delivery in deliveries]
        except (Undeliverable, OutboxError) as exc:
            raise DeliveryError(f"the message cannot be shown: {exc}", retryable=False) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Sent(platform_ids[0], self._channel_type)

    def _call(self, delivery: OutboundDelivery) -> str | None:
        """One adapter call; anything an adapter raises besides DeliveryError counts as a retryable failure."""
        try:
            return self._adapter.deliver(delivery)
        except DeliveryError:
            raise
        except Exception as exc:  # third-party adapter code: a bug there must not stop this lane
            raise DeliveryError(f"the {self._channel_type} adapter raised {exc!r}") from exc

    def post(self, delivery: OutboundDelivery) -> str | None:
        return self._call(delivery)

    def after_delivery(self, job: Job) -> None:
        if job.row.kind == "chat":
            remove_outbox(job.folder, job.row.id)

    def show_typing(self, platform_id: str, thread_id: str | None) -> None:
        try:
            self._adapter.set_typing(platform_id, thread_id, True)
        except Exception as exc:  # typing is cosmetic; a failing indicator must not cost a message
            log.debug("typing.failed", channel=self._channel_type, error=repr(exc))
