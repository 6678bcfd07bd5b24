"""The courier of the internal lane: rows that never reach a platform.

- `kind='system'` rows are handed to the system-actions actor (SystemRequest);
  the row is then recorded as delivered, so it is handed over once.
- Rows to `agent`/<group id> are written into the target group's agent-shared
  session (created when missing) as a chat message whose sender is the name
  the target itself uses for the source, and the target is woken. The source
  must hold a destination for the target; at most `agent_rate_limit` messages
  a minute go from one group to another, past that they are held (both agents
  are told once per hold) and go out when the window allows.
- Rows for a channel with no running adapter fail like an unreachable platform.
"""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path
from typing import Any

import msgspec
import pykka

import sessiondb
from actors import messages as m
from actors.authorization import agent_grant
from actors.delivery import Held, Job, Outcome, Refused, Sent
from actors.delivery_notes import tell_agent
from actors.outbound_plan import Undeliverable, declared_files, parse_content
from actors.outbox_files import OutboxError, remove_outbox, stage_files, staging_dir
from actors.rate_limit import PairRateLimiter
from actors.services import HostServices
from actors.session_modes import resolve_session
from channels.adapter import DeliveryError, OutboundDelivery
from events import types as ev
from events.model import AgentGroup, Session

AGENT_CHANNEL = "agent"


class InternalCourier:
    def __init__(
        self,
        services: HostServices,
        manager: pykka.ActorRef[Any],
        system_actions: pykka.ActorRef[Any] | None,
        limiter: PairRateLimiter | None = None,
    ) -> None:
        self._log = services.log
        self._settings = services.settings
        self._manager = manager
        self._system_actions = system_actions
        self._limiter = limiter or PairRateLimiter(services.settings.agent_rate_limit)
        self._held_pairs: set[tuple[str, str]] = set()

    def send(self, job: Job) -> Outcome:
        if job.row.kind == "system":
            if self._system_actions is None:
                raise DeliveryError("no system-action handler is running on this host")
            self._system_actions.tell(m.SystemRequest(job.session.id, job.row.id, job.row.content))
            return Sent(None, "system")
        if job.channel_type == AGENT_CHANNEL:
            return self._to_agent(job)
        raise DeliveryError(f"no channel adapter for {job.channel_type!r} is running on this host")

    def after_delivery(self, job: Job) -> None:
        if job.channel_type == AGENT_CHANNEL:
            remove_outbox(job.folder, job.row.id)

    def show_typing(self, platform_id: str, thread_id: str | None) -> None:
        return None

    def post(self, delivery: OutboundDelivery) -> str | None:
        raise DeliveryError("the internal lane reaches no platform")

    # -- agent to agent --------------------------------------------------------------------------------

    def _to_agent(self, job: Job) -> Outcome:
        store = self._log.store
        source_id, target_id = job.session.agent_group_id, job.platform_id or ""
        grant = agent_grant(store, source_id, target_id)
        if grant is None:
            return Refused(
                f"unauthorized destination agent/{target_id}: agent group {source_id} holds no destination for it"
            )
        target = store.agent_group(target_id)
        if target is None:
            return Refused(f"the agent group {target_id} no longer exists")
        source_name = self._name_for(target, source_id)
        pair = (source_id, target_id)
        now = time.time()
        wait = self._limiter.wait_time(pair, now)
        if wait > 0:
            if pair not in self._held_pairs:
                self._held_pairs.add(pair)
                self._tell_held(job, grant.name, target, source_name, wait)
            return Held(now + wait, f"more than {self._settings.agent_rate_limit} messages a minute to {grant.name}")
        self._held_pairs.discard(pair)
        try:
            content = self._content(job, source_name, source_id)
        except (Undeliverable, OutboxError) as exc:
            raise DeliveryError(f"the message cannot be passed on: {exc}", retryable=False) from None
        target_session = self._agent_shared_session(target)
        folder = sessiondb.session_dir(self._settings.sessions_dir, target.id, target_session.id)
        message_id = f"a2a-{job.session.id}-{job.row.id}"
        seq = sessiondb.insert_message(
            folder,
            sessiondb.InboundMessage(
                id=message_id, kind="chat", content=content, channel_type=AGENT_CHANNEL, platform_id=source_id
            ),
        )
        self._log.append(
            f"session:{target_session.id}",
            [ev.MessageRouted(message_id=message_id, session_id=target_session.id, kind="chat", seq=seq)],
        )
        self._limiter.record(pair, now)
        self._manager.tell(m.WakeSession(target_session.id, f"message from agent {source_name}"))
        self._manager.tell(m.SessionActivity(target_session.id))
        return Sent(message_id, AGENT_CHANNEL)

    def _name_for(self, target: AgentGroup, source_id: str) -> str:
        """What the target calls the source: its own destination name for it, else the source's group name."""
        own = agent_grant(self._log.store, target.id, source_id)
        if own is not None:
            return own.name
        source = self._log.store.agent_group(source_id)
        return source.name if source is not None else source_id

    def _agent_shared_session(self, target: AgentGroup) -> Session:
        return resolve_session(self._log, self._settings, target, None, None, "agent-shared").session

    def _content(self, job: Job, source_name: str, source_id: str) -> str:
        """The target's chat row: the text, the sender as the target knows it, files as base64 attachments."""
        parsed = parse_content(job.row)
        text = parsed.get("text")
        content: dict[str, Any] = {
            "text": text if isinstance(text, str) else "",
            "sender": source_name,
            "senderId": f"agent:{source_id}",
        }
        names = declared_files(parsed)
        if names:
            staging = staging_dir(self._settings.data_dir, job.session.id, job.row.id)
            try:
                files = stage_files(job.folder, job.row.id, names, staging)
                content["attachments"] = [
                    {"name": f.filename, "data": base64.b64encode(Path(f.path).read_bytes()).decode(), "type": "file"}
                    for f in files
                ]
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return msgspec.json.encode(content).decode()

    def _tell_held(self, job: Job, target_label: str, target: AgentGroup, source_name: str, wait: float) -> None:
        limit = self._settings.agent_rate_limit
        seconds = max(1, round(wait))
        tell_agent(
            self._log,
            self._settings,
            self._manager,
            job.session,
            f"held-{job.row.id}",
            f"Your messages to {target_label} are held: at most {limit} a minute may go to another agent. "
            f"They go out in about {seconds} s. Consider whether this exchange needs to continue.",
        )
        tell_agent(
            self._log,
            self._settings,
            self._manager,
            self._agent_shared_session(target),
            f"held-{job.session.id}-{job.row.id}",
            f"Messages from {source_name} to you are held: at most {limit} a minute may come from one agent. "
            f"They arrive in about {seconds} s.",
        )
