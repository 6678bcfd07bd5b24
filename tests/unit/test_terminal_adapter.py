"""The terminal adapter over a real Unix socket, with a recording host in place of the router."""

from __future__ import annotations

import getpass
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from channels.adapter import Card, CardAction, CardOption, DeliveryError, InboundChat, OutboundDelivery, OutboundFile
from channels.terminal import TerminalAdapter
from channels.terminal_client import HostNotRunningError, TerminalClient
from channels.terminal_protocol import (
    Ack,
    CardChoice,
    CardClosed,
    CardFrame,
    ErrorFrame,
    Hello,
    HostMessage,
    Reply,
    Say,
    Typing,
    UserLine,
    Welcome,
    socket_path,
)
from channels.unix_socket import SocketInUseError
from config.settings import Settings

WAIT_S = 5.0


class RecordingHost:
    """HostCallbacks that remember every call; `fail` makes the next calls raise."""

    def __init__(self) -> None:
        self.inbound: list[InboundChat] = []
        self.metadata: list[tuple[str, str, str | None, bool]] = []
        self.actions: list[CardAction] = []
        self.fail: Exception | None = None
        self.called = threading.Event()

    def _record(self) -> None:
        self.called.set()
        if self.fail is not None:
            raise self.fail

    def on_inbound(self, channel_type: str, message: InboundChat) -> None:
        assert channel_type == "terminal"
        self.inbound.append(message)
        self._record()

    def on_metadata(self, channel_type: str, platform_id: str, name: str | None, is_group: bool) -> None:
        self.metadata.append((channel_type, platform_id, name, is_group))

    def on_card_action(self, channel_type: str, action: CardAction) -> None:
        self.actions.append(action)
        self._record()


@pytest.fixture
def host() -> RecordingHost:
    return RecordingHost()


@pytest.fixture
def adapter(settings: Settings, host: RecordingHost) -> Iterator[TerminalAdapter]:
    terminal = TerminalAdapter(settings)
    terminal.setup(host, [])
    yield terminal
    terminal.teardown()


def connect(settings: Settings, conversation: str = "main", user: str = "ann") -> tuple[TerminalClient, Welcome]:
    client = TerminalClient.connect(socket_path(settings.data_dir))
    client.send(Hello(conversation=conversation, user=user))
    first = next_frame(client)
    assert isinstance(first, Welcome), first
    return client, first


def next_frame(client: TerminalClient) -> HostMessage:
    frame = client.next_frame(WAIT_S)
    assert frame is not None, "no frame arrived in time"
    return frame


def frames_until(client: TerminalClient, count: int) -> list[HostMessage]:
    return [next_frame(client) for _ in range(count)]


def nothing_more(client: TerminalClient) -> bool:
    return client.next_frame(0.3) is None


def text_delivery(key: str, text: str, conversation: str = "main", **extra: object) -> OutboundDelivery:
    return OutboundDelivery(idempotency_key=key, platform_id=conversation, text=text, **extra)  # type: ignore[arg-type]


# -- the socket ----------------------------------------------------------------------------------


def test_the_socket_is_private_to_its_owner(adapter: TerminalAdapter, settings: Settings) -> None:
    mode = os.stat(socket_path(settings.data_dir)).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_a_stale_socket_from_a_crash_is_replaced(settings: Settings, host: RecordingHost) -> None:
    path = socket_path(settings.data_dir)
    path.parent.mkdir(parents=True)
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(str(path))
    crashed.close()  # the file stays, nobody listens: what a killed host leaves behind
    terminal = TerminalAdapter(settings)
    terminal.setup(host, [])
    try:
        client, welcome = connect(settings)
        assert welcome.conversation == "main"
        client.close()
    finally:
        terminal.teardown()
    assert not path.exists()


def test_a_live_socket_is_never_taken_over(adapter: TerminalAdapter, settings: Settings, host: RecordingHost) -> None:
    with pytest.raises(SocketInUseError):
        TerminalAdapter(settings).setup(host, [])
    client, _ = connect(settings)  # the first adapter still serves
    client.close()


def test_a_file_in_the_way_is_not_deleted(settings: Settings, host: RecordingHost) -> None:
    path = socket_path(settings.data_dir)
    path.parent.mkdir(parents=True)
    path.write_text("precious")
    with pytest.raises(OSError, match="not a socket"):
        TerminalAdapter(settings).setup(host, [])
    assert path.read_text() == "precious"


def test_no_host_means_a_clear_connection_error(settings: Settings) -> None:
    with pytest.raises(HostNotRunningError):
        TerminalClient.connect(socket_path(settings.data_dir))


# -- inbound -------------------------------------------------------------------------------------


def test_a_typed_message_reaches_the_host(adapter: TerminalAdapter, settings: Settings, host: RecordingHost) -> None:
    client, welcome = connect(settings, user="Ann Example")
    assert welcome.sender_id == getpass.getuser()
    client.send(Say(text="hello crab", id="m-1"))
    assert host.called.wait(WAIT_S)
    [message] = host.inbound
    assert message.platform_id == "main"
    assert message.message_id == "m-1"
    assert message.text == "hello crab"
    assert message.sender_id == getpass.getuser()  # from the socket's peer credentials, not from the client
    assert message.sender_name == "Ann Example"
    assert message.is_mention and not message.is_group
    assert ("terminal", "main", "main", False) in host.metadata
    client.close()


def test_other_clients_of_the_conversation_see_the_line(adapter: TerminalAdapter, settings: Settings) -> None:
    ann, _ = connect(settings, user="ann")
    bob, _ = connect(settings, user="bob")
    elsewhere, _ = connect(settings, conversation="research", user="cy")
    ann.send(Say(text="hi all"))
    assert next_frame(bob) == UserLine(user="ann", text="hi all")
    assert nothing_more(elsewhere)
    assert nothing_more(ann)
    for client in (ann, bob, elsewhere):
        client.close()


def test_frames_before_hello_and_bad_lines_get_an_error_and_keep_the_connection(
    adapter: TerminalAdapter, settings: Settings, host: RecordingHost
) -> None:
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(str(socket_path(settings.data_dir)))
    client = TerminalClient(raw)
    client.send(Say(text="too early"))
    first = next_frame(client)
    assert isinstance(first, ErrorFrame) and "hello" in first.message
    raw.sendall(b"{broken\n")
    second = next_frame(client)
    assert isinstance(second, ErrorFrame) and "not a valid" in second.message
    client.send(Hello(user="ann"))
    assert isinstance(next_frame(client), Welcome)
    client.send(Say(text="   "))
    assert isinstance(next_frame(client), ErrorFrame)
    assert host.inbound == []
    client.close()


def test_a_failing_host_callback_is_reported_to_the_client(
    adapter: TerminalAdapter, settings: Settings, host: RecordingHost
) -> None:
    host.fail = RuntimeError("router is gone")
    client, _ = connect(settings)
    client.send(Say(text="anyone?"))
    error = next_frame(client)
    assert isinstance(error, ErrorFrame) and "router is gone" in error.message
    client.send(Say(text="still here"))  # the reader thread survived
    assert isinstance(next_frame(client), ErrorFrame)
    client.close()


# -- outbound ------------------------------------------------------------------------------------


def test_a_delivery_reaches_every_client_of_its_conversation(adapter: TerminalAdapter, settings: Settings) -> None:
    ann, _ = connect(settings, user="ann")
    bob, _ = connect(settings, user="bob")
    platform_message_id = adapter.deliver(text_delivery("out-1", "echo: hi"))
    for client in (ann, bob):
        reply = next_frame(client)
        assert isinstance(reply, Reply)
        assert (reply.text, reply.id, reply.seq) == ("echo: hi", platform_message_id, 1)
        client.close()


def test_a_retried_delivery_is_shown_once_and_keeps_its_id(adapter: TerminalAdapter, settings: Settings) -> None:
    client, _ = connect(settings)
    first = adapter.deliver(text_delivery("out-1", "once"))
    again = adapter.deliver(text_delivery("out-1", "once"))
    assert first == again
    assert len(frames_until(client, 1)) == 1
    assert nothing_more(client)
    client.close()


def test_replies_wait_for_a_client_that_was_away(adapter: TerminalAdapter, settings: Settings) -> None:
    client, _ = connect(settings)
    client.close()
    adapter.deliver(text_delivery("out-1", "while you were away"))
    adapter.deliver(text_delivery("out-2", "and this"))
    back, welcome = connect(settings)
    assert welcome.replay == 2
    replies = frames_until(back, 2)
    assert [r.text for r in replies if isinstance(r, Reply)] == ["while you were away", "and this"]
    back.send(Ack(seq=2))
    back.close()
    again, welcome = connect(settings)
    assert welcome.replay == 0
    assert nothing_more(again)
    again.close()


def test_unacknowledged_replies_are_shown_again(adapter: TerminalAdapter, settings: Settings) -> None:
    client, _ = connect(settings)
    adapter.deliver(text_delivery("out-1", "seen"))
    adapter.deliver(text_delivery("out-2", "not acknowledged"))
    assert len(frames_until(client, 2)) == 2
    client.send(Ack(seq=1))
    client.close()
    back, welcome = connect(settings)
    assert welcome.replay == 1
    [reply] = frames_until(back, 1)
    assert isinstance(reply, Reply) and reply.text == "not acknowledged"
    back.close()


def test_the_outbox_outlives_the_adapter(settings: Settings, host: RecordingHost) -> None:
    first = TerminalAdapter(settings)
    first.setup(host, [])
    sent = first.deliver(text_delivery("out-1", "before the restart"))
    first.teardown()
    second = TerminalAdapter(settings)
    second.setup(host, [])
    try:
        assert second.deliver(text_delivery("out-1", "before the restart")) == sent
        client, welcome = connect(settings)
        assert welcome.replay == 1
        [reply] = frames_until(client, 1)
        assert isinstance(reply, Reply) and reply.text == "before the restart"
        client.close()
    finally:
        second.teardown()


def test_a_card_is_shown_and_its_choice_goes_to_the_host(
    adapter: TerminalAdapter, settings: Settings, host: RecordingHost
) -> None:
    ann, _ = connect(settings, user="ann")
    bob, _ = connect(settings, user="bob")
    card = Card(
        card_id="q:1",
        title="Pick a colour",
        options=[CardOption(id="red", label="Red"), CardOption(id="blue", label="Blue")],
    )
    adapter.deliver(OutboundDelivery(idempotency_key="card-1", platform_id="main", card=card))
    shown = next_frame(ann)
    assert isinstance(shown, CardFrame)
    assert (shown.card_id, shown.title, [o.label for o in shown.options]) == ("q:1", "Pick a colour", ["Red", "Blue"])
    assert isinstance(next_frame(bob), CardFrame)
    ann.send(CardChoice(card_id="q:1", option_id="blue"))
    assert host.called.wait(WAIT_S)
    [action] = host.actions
    assert (action.card_id, action.option_id, action.platform_id) == ("q:1", "blue", "main")
    assert action.user_id == getpass.getuser()
    assert next_frame(bob) == CardClosed(card_id="q:1", option_id="blue", user="ann")
    ann.close()
    bob.close()


def test_a_replayed_card_shows_who_answered_it(adapter: TerminalAdapter, settings: Settings) -> None:
    card = Card(card_id="q:2", title="Ship it?", options=[CardOption(id="yes", label="Yes")])
    adapter.deliver(OutboundDelivery(idempotency_key="card-2", platform_id="main", card=card))
    ann, _ = connect(settings, user="ann")
    assert isinstance(next_frame(ann), CardFrame)
    ann.send(CardChoice(card_id="q:2", option_id="yes"))
    assert next_frame(ann) == CardClosed(card_id="q:2", option_id="yes", user="ann")
    ann.close()
    tablet, welcome = connect(settings, user="ann-tablet")
    assert welcome.replay == 1
    assert isinstance(next_frame(tablet), CardFrame)
    assert next_frame(tablet) == CardClosed(card_id="q:2", option_id="yes", user="ann")
    tablet.close()


def test_files_are_saved_to_the_downloads_folder(adapter: TerminalAdapter, settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "report.txt"
    source.write_text("quarterly numbers")
    client, _ = connect(settings)
    files = [OutboundFile(filename="report.txt", path=str(source))]
    adapter.deliver(text_delivery("file-1", "here it is", files=files))
    adapter.deliver(text_delivery("file-2", "and again", files=files))
    adapter.deliver(text_delivery("file-2", "and again", files=files))  # a retry copies nothing
    first, second = frames_until(client, 2)
    assert isinstance(first, Reply) and isinstance(second, Reply)
    saved = settings.data_dir / "downloads" / "main"
    assert first.files == [str(saved / "report.txt")]
    assert second.files == [str(saved / "report (2).txt")]
    assert (saved / "report.txt").read_text() == "quarterly numbers"
    assert sorted(p.name for p in saved.iterdir()) == ["report (2).txt", "report.txt"]
    client.close()


def test_a_vanished_file_is_a_final_delivery_error(adapter: TerminalAdapter, tmp_path: Path) -> None:
    files = [OutboundFile(filename="gone.txt", path=str(tmp_path / "gone.txt"))]
    with pytest.raises(DeliveryError) as failure:
        adapter.deliver(text_delivery("file-1", "", files=files))
    assert not failure.value.retryable
    # nothing was recorded: a later delivery under the same key is a new attempt
    (tmp_path / "gone.txt").write_text("back")
    assert adapter.deliver(text_delivery("file-1", "", files=files)) == "term-1"


def test_typing_shows_until_the_next_delivery(adapter: TerminalAdapter, settings: Settings) -> None:
    client, _ = connect(settings)
    adapter.set_typing("main", None, True)
    adapter.set_typing("main", None, True)  # no second frame for the same state
    assert next_frame(client) == Typing(on=True)
    late, _ = connect(settings, user="bob")
    assert next_frame(late) == Typing(on=True)
    adapter.deliver(text_delivery("out-1", "done"))
    assert isinstance(next_frame(client), Reply)
    third, _ = connect(settings, user="cy")
    assert isinstance(next_frame(third), Reply)  # the replay of "done", and no typing after it
    assert nothing_more(third)
    adapter.set_typing("main", None, True)
    adapter.set_typing("main", None, False)
    assert frames_until(third, 2) == [Typing(on=True), Typing(on=False)]
    for each in (client, late, third):
        each.close()


def test_teardown_disconnects_clients_and_removes_the_socket(settings: Settings, host: RecordingHost) -> None:
    terminal = TerminalAdapter(settings)
    terminal.setup(host, [])
    client, _ = connect(settings)
    terminal.teardown()
    assert not socket_path(settings.data_dir).exists()
    with pytest.raises(ConnectionError):
        client.next_frame(WAIT_S)
    client.close()
