"""Shared pieces for the message-flow unit tests: a real event log, groups wired to a chat, a recording actor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from actors import admin
from config.settings import Settings
from events.log import EventLog
from events.model import AgentGroup, MessagingGroup, SessionMode, TriggerRules


class Recorder(pykka.ThreadingActor):
    """Stands in for the SessionManager (or the hub, or the system actor): keeps what it was told."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.lock = threading.Lock()

    def on_receive(self, message: Any) -> Any:
        with self.lock:
            self.seen.append(message)
        return None


def told(recorder: pykka.ActorRef[Any], kind: type) -> list[Any]:
    proxy = recorder.proxy()
    seen: list[Any] = proxy.seen.get(timeout=5)
    return [message for message in seen if isinstance(message, kind)]


def eventually(predicate: Callable[[], object], timeout_s: float = 5.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def group(log: EventLog, settings: Settings, name: str) -> AgentGroup:
    return admin.create_group(log, settings, name=name)


def chat(log: EventLog, channel_type: str, platform_id: str) -> MessagingGroup:
    return admin.ensure_messaging_group(log, channel_type, platform_id)


def wire(
    log: EventLog,
    messaging_group: MessagingGroup,
    agent_group: AgentGroup,
    *,
    mode: SessionMode = "shared",
    rules: TriggerRules | None = None,
    priority: int = 0,
) -> None:
    admin.wire(log, messaging_group, agent_group, mode=mode, trigger_rules=rules, priority=priority)
