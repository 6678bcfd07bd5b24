"""`hermitcrab chat`: what the user sees and what typing sends; and first-run setup."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from channels.terminal_protocol import (
    Ack,
    CardChoice,
    CardClosed,
    CardFrame,
    CardOptionFrame,
    ClientFrame,
    ErrorFrame,
    Reply,
    Say,
    Typing,
    UserLine,
    Welcome,
)
from config.settings import Settings
from events.log import EventLog
from tools.cli_chat import ChatScreen, ChatSession, warn_if_unwired
from tools.first_run import ensure_main_group


class SentFrames:
    """Stands in for the socket client: remembers what the session sends."""

    def __init__(self) -> None:
        self.sent: list[ClientFrame] = []

    def send(self, frame: ClientFrame) -> None:
        self.sent.append(frame)


@pytest.fixture
def screen_text() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def client() -> SentFrames:
    return SentFrames()


@pytest.fixture
def session(client: SentFrames, screen_text: io.StringIO) -> ChatSession:
    console = Console(file=screen_text, width=120, color_system=None)
    return ChatSession(client, ChatScreen(console, "Crab", prompt=False))  # type: ignore[arg-type]


COLOURS = CardFrame(
    seq=2,
    id="term-2",
    card_id="q:1",
    title="Pick a colour",
    body="for the logo",
    options=[CardOptionFrame(id="opt-red", label="red"), CardOptionFrame(id="opt-blue", label="blue")],
)


def test_replies_are_shown_and_acknowledged(session: ChatSession, client: SentFrames, screen_text: io.StringIO) -> None:
    session.receive(Welcome(conversation="main", sender_id="ann", replay=1))
    session.receive(Reply(seq=1, id="term-1", text="echo: hi", files=["/data/downloads/main/a.txt"]))
    shown = screen_text.getvalue()
    assert "connected to main as ann, 1 message(s) you have not seen yet" in shown
    assert "Crab › echo: hi" in shown
    assert "file saved: /data/downloads/main/a.txt" in shown
    assert client.sent == [Ack(seq=1)]


def test_a_replayed_reply_is_not_shown_twice(
    session: ChatSession, client: SentFrames, screen_text: io.StringIO
) -> None:
    session.receive(Reply(seq=5, id="term-5", text="once"))
    session.receive(Reply(seq=5, id="term-5", text="once"))
    assert screen_text.getvalue().count("once") == 1
    assert client.sent == [Ack(seq=5)]


def test_a_card_is_numbered_and_a_number_picks_an_option(
    session: ChatSession, client: SentFrames, screen_text: io.StringIO
) -> None:
    session.receive(COLOURS)
    shown = screen_text.getvalue()
    for piece in ("Pick a colour", "for the logo", "1. red", "2. blue", "type the number"):
        assert piece in shown
    assert session.typed("2")
    assert client.sent == [Ack(seq=2), CardChoice(card_id="q:1", option_id="opt-blue")]
    assert session.typed("2")  # the card is answered: now it is just text
    assert isinstance(client.sent[-1], Say) and client.sent[-1].text == "2"


def test_numbers_outside_the_options_are_text(session: ChatSession, client: SentFrames) -> None:
    session.receive(COLOURS)
    session.typed("7")
    assert isinstance(client.sent[-1], Say) and client.sent[-1].text == "7"


def test_a_card_answered_elsewhere_is_closed(
    session: ChatSession, client: SentFrames, screen_text: io.StringIO
) -> None:
    session.receive(COLOURS)
    session.receive(CardClosed(card_id="q:1", option_id="opt-red", user="bob"))
    assert "bob chose opt-red" in screen_text.getvalue()
    session.typed("1")
    assert isinstance(client.sent[-1], Say)


def test_typing_other_users_and_errors(session: ChatSession, screen_text: io.StringIO) -> None:
    session.receive(Typing(on=True))
    session.receive(Typing(on=True))
    session.receive(UserLine(user="bob", text="hello from bob"))
    session.receive(ErrorFrame(message="something broke"))
    shown = screen_text.getvalue()
    assert shown.count("Crab is typing…") == 1
    assert "bob › hello from bob" in shown
    assert "host: something broke" in shown


def test_typed_lines(session: ChatSession, client: SentFrames, screen_text: io.StringIO) -> None:
    assert session.typed("  hello there  ")
    [said] = client.sent
    assert isinstance(said, Say) and said.text == "hello there" and said.id
    assert session.typed("")
    assert session.typed("/help")
    assert "/quit" in screen_text.getvalue()
    assert len(client.sent) == 1
    assert not session.typed("/quit")
    assert not session.typed("/exit")


def test_chat_without_a_host_says_how_to_start_it(settings_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from tools.cli import main; main()", "chat"],
        env={**settings_env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("error: the hermitcrab host is not running")
    assert "hermitcrab up" in lines[1]


# -- first run -----------------------------------------------------------------------------------


def test_first_run_creates_main_wired_to_the_terminal_once(settings: Settings) -> None:
    with EventLog.open(settings.central_db) as log:
        first = ensure_main_group(log, settings, "ann")
        assert first.created_group and first.created_wiring
        assert first.group.is_admin and first.group.folder == "main"
        assert (first.conversation.channel_type, first.conversation.platform_id) == ("terminal", "main")
        assert first.conversation.admin_user_id == "ann"
        claude_md = (settings.groups_dir / "main" / "CLAUDE.md").read_text()
        template = (settings.project_root / "groups" / "main" / "CLAUDE.md").read_text()
        assert template.strip().splitlines()[-1] in claude_md
        events_after_first = len(list(log.read()))

        second = ensure_main_group(log, settings, "ann")
        assert not second.created_group and not second.created_wiring
        assert second.group.id == first.group.id
        assert len(list(log.read())) == events_after_first
        [wiring] = log.store.wirings(first.conversation.id)
        assert wiring.agent_group_id == first.group.id


def test_an_unwired_conversation_is_pointed_out(settings: Settings) -> None:
    shown = io.StringIO()
    screen = ChatScreen(Console(file=shown, width=200, color_system=None), "Crab", prompt=False)
    warn_if_unwired(settings, "main", screen)  # no event log yet: nothing to say
    assert shown.getvalue() == ""
    with EventLog.open(settings.central_db) as log:
        ensure_main_group(log, settings, "ann")
    warn_if_unwired(settings, "main", screen)
    assert shown.getvalue() == ""
    warn_if_unwired(settings, "lab", screen)
    assert "'lab' is not wired to an agent group yet" in shown.getvalue()
    assert "hermitcrab wire terminal lab <group>" in shown.getvalue()
