"""`hermitcrab chat`: talk to an agent from the terminal, through the running host's terminal channel.

One thread waits on both the keyboard and the socket (select), so a reply
prints the moment it is delivered, even while the user is typing. Cards are
shown as numbered options; typing a number picks one. Every reply shown is
acknowledged, so the host replays only what this client never saw.
"""

from __future__ import annotations

import getpass
import os
import select
import sys
import uuid
from typing import TextIO

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from channels.terminal_client import ConnectionClosedError, HostNotRunningError, TerminalClient
from channels.terminal_protocol import (
    DEFAULT_CONVERSATION,
    Ack,
    CardChoice,
    CardClosed,
    CardFrame,
    ErrorFrame,
    Hello,
    HostMessage,
    ProtocolError,
    Reply,
    Say,
    Typing,
    UserLine,
    Welcome,
    decode_client,
    encode,
    socket_path,
)
from config.settings import Settings
from tools.cli_common import UserError, out, settings_or_exit
from tools.cli_store import read_store

CHANNEL = "terminal"
QUIT_COMMANDS = ("/quit", "/exit")
HELP_TEXT = "Type a message and press Enter. A number answers the open card. /quit (or Ctrl-D) leaves."


class ChatScreen:
    """Renders the conversation: the agent's messages, cards, typing, other clients' lines."""

    def __init__(self, console: Console, assistant: str, prompt: bool) -> None:
        self._console = console
        self._assistant = assistant
        self._prompt = prompt
        self._prompt_shown = False
        self._typing = False

    def prompt(self) -> None:
        """Show the input prompt (in a terminal); it is redrawn under every message that arrives."""
        if self._prompt:
            self._console.print(Text("you › ", style="bold green"), end="")
            self._prompt_shown = True

    def typed(self) -> None:
        """The user pressed Enter: the terminal's echo already moved to a fresh line."""
        self._prompt_shown = False

    def show(self, frame: HostMessage) -> None:
        if isinstance(frame, Typing):
            if frame.on and not self._typing:
                self._line(Text(f"{self._assistant} is typing…", style="dim italic"))
            self._typing = frame.on
            return
        self._typing = False
        if isinstance(frame, Reply):
            self._reply(frame)
        elif isinstance(frame, CardFrame):
            self._card(frame)
        elif isinstance(frame, UserLine):
            self._line(Text.assemble((f"{frame.user} › ", "bold blue"), frame.text))
        elif isinstance(frame, CardClosed):
            self._line(Text(f"{frame.user} chose {frame.option_id}", style="dim"))
        elif isinstance(frame, ErrorFrame):
            self._line(Text(f"host: {frame.message}", style="red"))
        elif isinstance(frame, Welcome):
            self._welcome(frame)

    def note(self, text: str, style: str = "dim") -> None:
        self._line(Text(text, style=style))

    def _welcome(self, frame: Welcome) -> None:
        waiting = f", {frame.replay} message(s) you have not seen yet" if frame.replay else ""
        self._line(Text(f"connected to {frame.conversation} as {frame.sender_id}{waiting}. {HELP_TEXT}", style="dim"))

    def _reply(self, frame: Reply) -> None:
        label = f"{self._assistant} (edit) › " if frame.edit_of else f"{self._assistant} › "
        text = frame.text or (f"sent {len(frame.files)} file(s)" if frame.files else "")
        parts = [Text.assemble((label, "bold cyan"), text)]
        parts += [Text.assemble(("  file saved: ", "cyan"), path) for path in frame.files]
        self._line(Group(*parts))

    def _card(self, frame: CardFrame) -> None:
        body: list[Text] = []
        if frame.body:
            body.append(Text(frame.body))
        for number, option in enumerate(frame.options, start=1):
            body.append(Text.assemble((f" {number}. ", "bold"), option.label))
        if frame.options:
            body.append(Text("type the number of your choice", style="dim"))
        self._line(Panel(Group(*body), title=Text(frame.title, style="bold"), title_align="left", expand=False))

    def _line(self, renderable: Text | Group | Panel) -> None:
        if self._prompt_shown:
            self._console.file.write("\r\x1b[K")  # replace the prompt line; the message goes above the next one
        self._console.print(renderable, soft_wrap=True)
        self.prompt()


class ChatSession:
    """The conversation state of one client: open cards, the last acknowledged delivery."""

    def __init__(self, client: TerminalClient, screen: ChatScreen) -> None:
        self._client = client
        self._screen = screen
        self._cards: dict[str, CardFrame] = {}
        self._last_seq = 0

    def receive(self, frame: HostMessage) -> None:
        if isinstance(frame, Reply | CardFrame) and frame.seq:
            if frame.seq <= self._last_seq:
                return  # already shown
            self._last_seq = frame.seq
        if isinstance(frame, CardFrame) and frame.options:
            self._cards[frame.card_id] = frame
        if isinstance(frame, CardClosed):
            self._cards.pop(frame.card_id, None)
        self._screen.show(frame)
        if isinstance(frame, Reply | CardFrame) and frame.seq:
            self._client.send(Ack(seq=frame.seq))

    def typed(self, line: str) -> bool:
        """Handle one typed line; False when the user asked to leave."""
        self._screen.typed()
        text = line.strip()
        if not text:
            self._screen.prompt()
            return True
        if text in QUIT_COMMANDS:
            return False
        if text == "/help":
            self._screen.note(HELP_TEXT)
            return True
        choice = self._card_choice(text)
        if choice is not None:
            self._client.send(choice)
        else:
            self._client.send(Say(text=text, id=f"term-in-{uuid.uuid4().hex}"))
        self._screen.prompt()
        return True

    def _card_choice(self, text: str) -> CardChoice | None:
        """A number answers the newest open card when it names one of its options."""
        if not text.isdigit() or not self._cards:
            return None
        card = list(self._cards.values())[-1]
        number = int(text)
        if not 1 <= number <= len(card.options):
            return None
        del self._cards[card.card_id]
        return CardChoice(card_id=card.card_id, option_id=card.options[number - 1].id)


def warn_if_unwired(settings: Settings, conversation: str, screen: ChatScreen) -> None:
    with read_store(settings) as store:
        if store is None:
            return
        messaging_group = store.messaging_group_by_platform(CHANNEL, conversation)
        if messaging_group is not None and store.wirings(messaging_group.id):
            return
        screen.note(
            f"the conversation {conversation!r} is not wired to an agent group yet, so nobody will answer; "
            f"wire it with `hermitcrab wire {CHANNEL} {conversation} <group>`",
            style="yellow",
        )


def _run(session: ChatSession, client: TerminalClient, keyboard: TextIO) -> None:
    keyboard_fd = keyboard.fileno()
    socket_fd = client.fileno()
    pending = b""
    while True:
        readable, _, _ = select.select([socket_fd, keyboard_fd], [], [])
        if socket_fd in readable:
            for frame in client.read_available():
                session.receive(frame)
        if keyboard_fd in readable:
            data = os.read(keyboard_fd, 65536)
            if not data:
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not session.typed(line.decode(errors="replace")):
                    return


def chat(
    group: str = typer.Option(
        DEFAULT_CONVERSATION, "--group", "-g", help="The terminal conversation to join (its platform id)."
    ),
    name: str | None = typer.Option(None, "--as", help="The name your messages carry (default: your login name)."),
) -> None:
    """Chat with the agent wired to a terminal conversation (the admin group `main` by default)."""
    settings = settings_or_exit()
    user = name or getpass.getuser()
    hello = Hello(conversation=group, user=user, client=user)
    try:
        decode_client(encode(hello))
    except ProtocolError:
        raise UserError(
            f"{group!r} / {user!r} is not a usable conversation / user name",
            "use 1 to 200 characters without leading or trailing spaces",
        ) from None
    path = socket_path(settings.data_dir)
    try:
        client = TerminalClient.connect(path)
    except HostNotRunningError:
        raise UserError(
            f"the hermitcrab host is not running (nothing listens on {path})",
            "start it with `hermitcrab up` (or `hermitcrab up --detach`), then run `hermitcrab chat` again",
        ) from None
    except PermissionError:
        raise UserError(f"no permission to use {path}", "run the chat as the user that runs the host") from None
    screen = ChatScreen(out, settings.assistant_name, prompt=sys.stdin.isatty())
    session = ChatSession(client, screen)
    try:
        client.send(hello)
        warn_if_unwired(settings, group, screen)
        _run(session, client, sys.stdin)
    except ConnectionClosedError:
        raise UserError("the host closed the connection", "is it still running? `hermitcrab status`") from None
    except ProtocolError as exc:
        raise UserError(f"the host sent something this client does not understand: {exc}") from None
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    if sys.stdin.isatty():
        out.print()
