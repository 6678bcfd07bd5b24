"""SystemActor: carries out what agents ask of the host (`kind='system'` rows) and resolves approvals.

Delivery hands each system row over once (SystemRequest); card clicks on
approval cards arrive as ApprovalAnswer; the sweep asks for expiry. One mailbox
serializes every approval decision, so a click racing an expiry or a second
click resolves an approval exactly once. Slow work never runs here: image
builds go to the RebuildWorker, card sends to the channel's delivery.

Outcomes reach the agent as `[SYSTEM]` notes in its inbound.db (delivery_notes), each with an id
derived from what it answers, so a repeat stores it once;
every decision is an event: TaskScheduled/..., AgentCreated and its
DestinationGranted pair, ApprovalRequested/Resolved, GroupConfigChanged, and
SystemActionRefused / ApprovalAnswerRefused for what was refused.

create_agent creates the group through `actors.admin.create_group`, which runs
the group's one-time filesystem init (with the instructions as its CLAUDE.md)
in this actor; no GroupActor exists for a group that did not exist a moment
ago, and the first spawn still asks the GroupActor's EnsureInitialized, which
finds everything in place.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import pykka

import sessiondb
from actors import admin, approvals, tasks
from actors import messages as m
from actors.delivery_notes import write_note
from actors.group_folder import InvalidFolderError, folder_from_name, group_folder_path
from actors.rebuild_worker import RebuildWorker
from actors.services import HostServices
from actors.system_messages import BuildFinished, BuildImage, CardPosted, ExpireApprovals, ResendUnsentCards
from actors.system_payloads import (
    AddMcpServer,
    CreateAgent,
    InstallPackages,
    InvalidRequest,
    RequestRebuild,
    ScheduleTask,
    SystemAction,
    TaskControl,
    action_of,
    parse_action,
)
from channels.adapter import OutboundDelivery
from config.logs import get_logger
from events import types as ev
from events.model import AgentGroup, PendingApproval, Session
from sessiondb.errors import SessionDbError

log = get_logger("system")

PARENT_NAME = "parent"
_DOMAIN_ERRORS = (OSError, sqlite3.Error, SessionDbError, admin.AdminError, InvalidFolderError, pykka.Timeout)
_TASK_UNCHANGED = {
    "cancel_task": "is not active any more",
    "pause_task": "is not waiting to run",
    "resume_task": "is not paused",
}


class SystemActor(pykka.ThreadingActor):
    def __init__(self, services: HostServices, manager: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self._services = services
        self._settings = services.settings
        self._log = services.log
        self._manager = manager
        self._building: set[str] = set()
        self._worker: pykka.ActorRef[Any] | None = None

    def on_start(self) -> None:
        self._worker = RebuildWorker.start(self._manager, self.actor_ref)

    def on_stop(self) -> None:
        if self._worker is not None:
            self._worker.stop(block=False)

    def on_receive(self, message: Any) -> Any:
        try:
            match message:
                case m.SystemRequest():
                    self._on_request(message)
                case m.ApprovalAnswer():
                    self._on_answer(message)
                case ExpireApprovals(now=now):
                    return self._expire_due(datetime.fromtimestamp(now, UTC))
                case CardPosted():
                    self._on_card_posted(message)
                case ResendUnsentCards():
                    return self._resend_unsent_cards()
                case BuildFinished():
                    self._on_build_finished(message)
                case _:
                    log.warning("system.unknown_message", message=repr(message))
        except _DOMAIN_ERRORS as exc:
            log.error("system.error", message=type(message).__name__, error=str(exc))
        return None

    # -- requests --------------------------------------------------------------------------------

    def _on_request(self, request: m.SystemRequest) -> None:
        session = self._log.store.session(request.session_id)
        if session is None:
            log.warning("system.unknown_session", session_id=request.session_id, message_out_id=request.message_out_id)
            return
        action_label, request_id = "system action", request.message_out_id
        try:
            action_label, request_id, fields = action_of(request.content)
            action = parse_action(action_label, fields, self._settings.timezone)
            self._apply(session, request_id, action)
        except InvalidRequest as exc:
            self._refuse(session, request_id, action_label, str(exc))

    def _apply(self, session: Session, request_id: str, action: SystemAction) -> None:
        log.info("system.request", session_id=session.id, request_id=request_id, action=type(action).__name__)
        if isinstance(action, ScheduleTask):
            tasks.schedule(self._settings, self._log, session, action)
        elif isinstance(action, TaskControl):
            if not tasks.control(self._settings, self._log, session, action):
                raise InvalidRequest(f"task {action.task_id} {_TASK_UNCHANGED[action.action]}")
        elif isinstance(action, CreateAgent):
            self._create_agent(session, action)
        else:
            self._request_approval(session, request_id, action)

    def _refuse(self, session: Session, request_id: str, action: str, reason: str) -> None:
        log.warning("system.refused", session_id=session.id, request_id=request_id, action=action, reason=reason)
        self._log.append(
            f"session:{session.id}",
            [ev.SystemActionRefused(session_id=session.id, request_id=request_id, action=action, reason=reason)],
        )
        self._note(session, f"note-{request_id}", f"Your {action} request was not carried out: {reason}")

    def _note(self, session: Session | None, note_id: str, text: str, *, on_wake: bool = False) -> None:
        """Tell the agent (a `[SYSTEM]` note) and wake its session; `on_wake` leaves it for the next container."""
        if session is None or session.status != "active":
            log.info("system.note_dropped", reason="no active session", text=text)
            return
        write_note(self._log, self._settings, session, note_id, {"text": text}, on_wake=on_wake)
        self._manager.tell(m.WakeSession(session.id, "host note"))

    # -- create_agent ------------------------------------------------------------------------------

    def _create_agent(self, session: Session, request: CreateAgent) -> None:
        store = self._log.store
        creator = store.agent_group(session.agent_group_id)
        if creator is None or not creator.is_admin:
            raise InvalidRequest("only the admin agent can create agents")
        taken = store.destination(creator.id, request.local_name)
        if taken is not None:
            child = store.agent_group(taken.target_agent_group_id or "")
            if child is not None and child.parent_group_id == creator.id and child.name == request.name:
                log.info("system.create_agent_repeated", group_id=child.id)  # a redelivered request: done already
                return
            raise InvalidRequest(f'you already have a destination named "{request.local_name}"; choose another name')
        try:
            folder = folder_from_name(request.name, [group.folder for group in store.agent_groups()])
            group_folder_path(self._settings.groups_dir, folder)
        except InvalidFolderError as exc:
            raise InvalidRequest(str(exc)) from None
        child = admin.create_group(
            self._log, self._settings, name=request.name, folder=folder, instructions=request.instructions
        )
        self._log.append_batch(
            [
                (
                    f"group:{creator.id}",
                    [
                        ev.DestinationGranted(
                            agent_group_id=creator.id,
                            name=request.local_name,
                            kind="agent",
                            display_name=child.name,
                            target_agent_group_id=child.id,
                        )
                    ],
                ),
                (
                    f"group:{child.id}",
                    [
                        ev.DestinationGranted(
                            agent_group_id=child.id,
                            name=PARENT_NAME,
                            kind="agent",
                            display_name=creator.name,
                            target_agent_group_id=creator.id,
                        ),
                        ev.AgentCreated(
                            group_id=child.id, parent_group_id=creator.id, name=child.name, folder=child.folder
                        ),
                    ],
                ),
            ]
        )
        self._refresh_destinations(creator)
        log.info("system.agent_created", group_id=child.id, parent=creator.id, folder=child.folder)
        self._note(
            session,
            f"note-{child.id}-created",
            f'Agent "{child.name}" is ready (folder {child.folder}). It is your destination "{request.local_name}" '
            f'(a message block or send_message addressed to "{request.local_name}"); it calls you "{PARENT_NAME}".',
        )

    def _refresh_destinations(self, group: AgentGroup) -> None:
        """Rewrite the destination map of the group's sessions, so running agents see the change without a restart."""
        store = self._log.store
        rows = [sessiondb.destination_row(d) for d in store.destinations(group.id)]
        for session in store.sessions_for_group(group.id):
            folder = tasks.session_folder(self._settings, session)
            if session.status == "active" and sessiondb.inbound_path(folder).exists():
                sessiondb.write_destinations(folder, rows)

    # -- approvals: request -------------------------------------------------------------------------

    def _request_approval(self, session: Session, request_id: str, action: approvals.ApprovalAction) -> None:
        store = self._log.store
        group = store.agent_group(session.agent_group_id)
        if group is None:
            raise InvalidRequest("your agent group no longer exists")
        approvals.check_applicable(action, group)
        channel = approvals.admin_channel(store)
        if channel is None:
            raise InvalidRequest("no admin conversation is configured to approve it (wire one to the admin group)")
        approval_id = approvals.approval_id_for(request_id)
        if store.pending_approval(approval_id) is not None:  # a redelivered request; this mailbox is the only writer
            log.info("system.approval_repeated", approval_id=approval_id)
            return
        expiry = approvals.expires_at(datetime.now(UTC), self._settings.approval_ttl_s)
        self._log.append(
            f"approval:{approval_id}",
            [
                ev.ApprovalRequested(
                    approval_id=approval_id,
                    request_id=request_id,
                    action=approvals.action_name(action),
                    payload=approvals.encode_payload(action),
                    session_id=session.id,
                    agent_group_id=group.id,
                    channel_type=channel.channel_type,
                    platform_id=channel.platform_id,
                    expires_at=expiry,
                )
            ],
        )
        self._send_card(approval_id, action, group, expiry, channel.channel_type, channel.platform_id)

    def _send_card(
        self,
        approval_id: str,
        action: approvals.ApprovalAction,
        group: AgentGroup,
        expiry: str,
        channel_type: str,
        platform_id: str,
    ) -> None:
        card = approvals.approval_card(approval_id, action, group, expiry, self._settings.timezone)
        outlet = self._services.outlet
        if outlet is None:
            log.warning("system.no_outlet", approval_id=approval_id)
            return
        me = self.actor_ref

        def done(platform_message_id: str | None, error: str | None) -> None:
            me.tell(CardPosted(approval_id, platform_message_id, error))

        delivery = OutboundDelivery(
            idempotency_key=card.card_id, platform_id=platform_id, text=f"{card.title}\n{card.body}", card=card
        )
        outlet.post(channel_type, delivery, done)

    def _resend_unsent_cards(self) -> int:
        """Post again the cards of pending approvals with no `approval.card_sent`; the card id is the
        idempotency key, so a channel that did receive it before the crash shows it once."""
        store = self._log.store
        resent = 0
        for approval in store.pending_approvals(status="pending"):
            if approval.platform_message_id is not None or approval.channel_type is None:
                continue
            group = store.agent_group(approval.agent_group_id) if approval.agent_group_id else None
            if group is None or approval.platform_id is None or approval.expires_at is None:
                continue
            action = approvals.decode_payload(approval.action, approval.payload)
            self._send_card(
                approval.approval_id, action, group, approval.expires_at, approval.channel_type, approval.platform_id
            )
            resent += 1
        if resent:
            log.info("system.cards_resent", count=resent)
        return resent

    def _on_card_posted(self, posted: CardPosted) -> None:
        approval = self._log.store.pending_approval(posted.approval_id)
        if approval is None or approval.status != "pending":
            return
        if posted.error is None:
            self._log.append(
                f"approval:{approval.approval_id}",
                [ev.ApprovalCardSent(approval_id=approval.approval_id, platform_message_id=posted.platform_message_id)],
            )
            return
        self._resolve(approval, "rejected", None, f"the approval card could not be delivered: {posted.error}")

    # -- approvals: answers ---------------------------------------------------------------------------

    def _on_answer(self, answer: m.ApprovalAnswer) -> None:
        store = self._log.store
        now = datetime.now(UTC)
        approval = store.pending_approval(answer.approval_id)
        if approval is None:
            self._refuse_answer(answer, "no such approval")
            return
        channel = store.messaging_group_by_platform(answer.channel_type, answer.platform_id)
        reason = approvals.refusal_reason(approval, channel, answer.user_id, now)
        if reason is None and approval.approval_id in self._building:
            reason = "the approval is already being applied"
        if reason is None and answer.option_id not in (approvals.APPROVE, approvals.REJECT):
            reason = f"unknown option {answer.option_id!r}"
        if reason is not None:
            self._refuse_answer(answer, reason)
            if approval.status == "pending" and approvals.is_expired(approval, now):
                self._expire(approval)
            return
        if answer.option_id == approvals.REJECT:
            self._resolve(approval, "rejected", answer.user_id, "rejected by the admin")
            return
        self._approve(approval, answer.user_id)

    def _refuse_answer(self, answer: m.ApprovalAnswer, reason: str) -> None:
        log.warning("approval.answer_refused", approval_id=answer.approval_id, user_id=answer.user_id, reason=reason)
        self._log.append(
            f"approval:{answer.approval_id}",
            [
                ev.ApprovalAnswerRefused(
                    approval_id=answer.approval_id,
                    reason=reason,
                    user_id=answer.user_id,
                    channel_type=answer.channel_type,
                    platform_id=answer.platform_id,
                )
            ],
        )

    def _approve(self, approval: PendingApproval, user_id: str) -> None:
        store = self._log.store
        group = store.agent_group(approval.agent_group_id or "")
        try:
            action = approvals.decode_payload(approval.action, approval.payload)
            if group is None:
                raise InvalidRequest("the agent group no longer exists")
            if isinstance(action, RequestRebuild):
                approvals.check_applicable(action, group)
                self._building.add(approval.approval_id)
                assert self._worker is not None
                self._worker.tell(BuildImage(approval.approval_id, group.id, user_id))
                return
            config = approvals.apply_to_config(action, group.config)
        except InvalidRequest as exc:
            self._resolve(approval, "rejected", user_id, f"approved, but it cannot be applied: {exc}")
            return
        self._log.append_batch(
            [
                (
                    f"approval:{approval.approval_id}",
                    [ev.ApprovalResolved(approval_id=approval.approval_id, status="approved", user_id=user_id)],
                ),
                (
                    f"group:{group.id}",
                    [
                        ev.GroupConfigChanged(
                            group_id=group.id,
                            config=config,
                            reason=f"{approval.action} approved ({approval.approval_id})",
                        )
                    ],
                ),
            ]
        )
        session = store.session(approval.session_id or "")
        facts = "; ".join(approvals.describe(action))
        if isinstance(action, InstallPackages):
            self._note(
                session,
                f"note-{approval.approval_id}-approved",
                f"Your install_packages request was approved ({facts}). Call request_rebuild so your "
                "next container has them.",
            )
        else:
            assert isinstance(action, AddMcpServer)
            self._restart_group(group.id, "mcp server added")
            self._note(
                session,
                f"note-{approval.approval_id}-approved",
                f"Your add_mcp_server request was approved ({facts}); this container has it.",
                on_wake=True,
            )

    def _on_build_finished(self, finished: BuildFinished) -> None:
        self._building.discard(finished.approval_id)
        approval = self._log.store.pending_approval(finished.approval_id)
        if approval is None or approval.status != "pending":
            return
        if finished.error is not None:
            self._resolve(approval, "approved", finished.user_id, f"approved, but the rebuild failed: {finished.error}")
            return
        self._log.append(
            f"approval:{approval.approval_id}",
            [
                ev.ApprovalResolved(
                    approval_id=approval.approval_id,
                    status="approved",
                    user_id=finished.user_id,
                    reason=f"image {finished.tag} built",
                )
            ],
        )
        self._restart_group(approval.agent_group_id or "", "rebuild applied")
        self._note(
            self._log.store.session(approval.session_id or ""),
            f"note-{approval.approval_id}-approved",
            f"Your container image was rebuilt as {finished.tag} with the approved packages; "
            "this container runs on it.",
            on_wake=True,
        )

    def _restart_group(self, group_id: str, reason: str) -> None:
        """Stop every running container of the group; the next wake starts one with the new image or config."""
        for session in self._log.store.sessions_for_group(group_id):
            if session.status == "active" and session.container_status != "stopped":
                self._manager.tell(m.StopSession(session.id, reason))

    def _resolve(self, approval: PendingApproval, status: str, user_id: str | None, reason: str) -> None:
        """Record the outcome and tell the requesting agent (for every outcome but a successful apply)."""
        self._log.append(
            f"approval:{approval.approval_id}",
            [ev.ApprovalResolved(approval_id=approval.approval_id, status=status, user_id=user_id, reason=reason)],
        )
        log.info("approval.resolved", approval_id=approval.approval_id, status=status, reason=reason)
        session = self._log.store.session(approval.session_id or "")
        self._note(
            session,
            f"note-{approval.approval_id}-{status}",
            f"Your {approval.action} request ({approval.approval_id}) was not applied: {reason}.",
        )

    # -- approvals: expiry ------------------------------------------------------------------------------

    def _expire_due(self, now: datetime) -> int:
        """Expire every pending approval past its time (not one being built); returns how many."""
        expired = 0
        for approval in self._log.store.pending_approvals("pending"):
            if approval.approval_id not in self._building and approvals.is_expired(approval, now):
                self._expire(approval)
                expired += 1
        return expired

    def _expire(self, approval: PendingApproval) -> None:
        hours = self._settings.approval_ttl_s / 3600
        self._resolve(approval, "expired", None, f"the admin did not answer within {hours:g} h")
