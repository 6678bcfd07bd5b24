"""The terminal chat channel: `hermitcrab chat` clients talk to the host over a private Unix socket.

The host side is this adapter. It listens on `<data_dir>/terminal.sock`
(mode 0600), speaks the line-delimited JSON of `channels.terminal_protocol`
(docs/terminal-protocol.md), and keeps every delivery in a durable outbox so a
client that was closed sees the replies it missed when it comes back. Each
connected client has a reader thread and a writer thread, so a slow client
never blocks `deliver` or the other clients.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from channels.adapter import (
    Capabilities,
    CardAction,
    ChannelAdapter,
    Conversation,
    DeliveryError,
    HostCallbacks,
    InboundChat,
    OutboundDelivery,
    OutboundFile,
)
from channels.terminal_outbox import Outbox
from channels.terminal_protocol import (
    MAX_LINE_BYTES,
    Ack,
    CardChoice,
    CardClosed,
    CardFrame,
    CardOptionFrame,
    ClientMessage,
    ErrorFrame,
    Hello,
    HostFrame,
    ProtocolError,
    Reply,
    Say,
    StoredFrame,
    Typing,
    UserLine,
    Welcome,
    decode_client,
    downloads_dir,
    encode,
    socket_path,
)
from channels.unix_socket import PrivateListener, listen_private, peer_user
from config.logs import get_logger
from config.settings import Settings, load_settings

log = get_logger("terminal")

CHANNEL_TYPE = "terminal"
REPLAY_LIMIT = 200
ACCEPT_POLL_S = 0.5
JOIN_TIMEOUT_S = 5.0
TYPING_SHOWN_S = 60.0

_HostCall = Callable[[HostCallbacks], None]


class _Client:
    """One connected chat client: its socket, its identity once it said hello, and its send queue."""

    def __init__(self, connection: socket.socket, sender_id: str) -> None:
        self.connection = connection
        self.sender_id = sender_id
        self.conversation: str | None = None
        self.user = ""
        self.reader_name = ""
        self._outgoing: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.reader: threading.Thread | None = None
        self.writer = threading.Thread(target=self._write, name="terminal-writer", daemon=True)
        self.writer.start()

    def send(self, frame: HostFrame) -> None:
        self._outgoing.put(encode(frame))

    def close(self) -> None:
        self._outgoing.put(None)
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write(self) -> None:
        while (data := self._outgoing.get()) is not None:
            try:
                self.connection.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class TerminalAdapter(ChannelAdapter):
    channel_type = CHANNEL_TYPE
    capabilities = Capabilities(cards=True, files=True, typing=True)

    def __init__(self, settings: Settings | None = None) -> None:
        """`settings` defaults to the environment's, which is what the registry's no-argument factory gets."""
        self._settings = settings
        self._host: HostCallbacks | None = None
        self._data_dir: Path | None = None
        self._outbox: Outbox | None = None
        self._listener: PrivateListener | None = None
        self._accepting: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._clients: set[_Client] = set()
        self._typing: dict[str, float] = {}

    @property
    def socket_path(self) -> Path:
        assert self._data_dir is not None, "setup() first"
        return socket_path(self._data_dir)

    # -- the adapter contract ------------------------------------------------------------------

    def setup(self, host: HostCallbacks, conversations: Sequence[Conversation]) -> None:
        settings = self._settings or load_settings()
        self._data_dir = settings.data_dir
        self._host = host
        self._outbox = Outbox(settings.data_dir / "terminal" / "outbox.db")
        try:
            self._listener = listen_private(socket_path(settings.data_dir))
        except BaseException:
            self._outbox.close()
            raise
        self._listener.server.settimeout(ACCEPT_POLL_S)
        self._stopping.clear()
        self._accepting = threading.Thread(target=self._accept_loop, name="terminal-accept", daemon=True)
        self._accepting.start()
        log.info("terminal.listening", socket=str(self.socket_path))

    def deliver(self, delivery: OutboundDelivery) -> str | None:
        outbox = self._require_outbox()
        conversation = delivery.platform_id
        with self._lock:
            known = outbox.find(delivery.idempotency_key)
            if known is not None:
                return known.id
            frame = self._frame_for(delivery)
            try:
                stored, _created = outbox.add(conversation, delivery.idempotency_key, frame)
            except sqlite3.Error as exc:
                raise DeliveryError(f"cannot record the delivery in {outbox.path}: {exc}") from exc
            self._typing.pop(conversation, None)
            self._broadcast(conversation, stored)
        return stored.id

    def set_typing(self, platform_id: str, thread_id: str | None, typing: bool) -> None:
        with self._lock:
            was_on = self._typing_on(platform_id)
            if typing:
                self._typing[platform_id] = time.monotonic()
            else:
                self._typing.pop(platform_id, None)
            if typing != was_on:
                self._broadcast(platform_id, Typing(on=typing))

    def _typing_on(self, conversation: str) -> bool:
        """Typing shows until the next delivery, or for TYPING_SHOWN_S when none comes (a silent agent)."""
        since = self._typing.get(conversation)
        return since is not None and time.monotonic() - since < TYPING_SHOWN_S

    def teardown(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes a blocked accept() at once on Linux
                self._listener.server.shutdown(socket.SHUT_RDWR)
        if self._accepting is not None:
            self._accepting.join(JOIN_TIMEOUT_S)
            self._accepting = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            clients = list(self._clients)
            self._clients.clear()
        for client in clients:
            client.close()
        for client in clients:
            if client.reader is not None:
                client.reader.join(JOIN_TIMEOUT_S)
            client.writer.join(JOIN_TIMEOUT_S)
        if self._outbox is not None:
            self._outbox.close()
            self._outbox = None
        log.info("terminal.stopped")

    # -- outgoing ------------------------------------------------------------------------------

    def _frame_for(self, delivery: OutboundDelivery) -> StoredFrame:
        if delivery.card is not None:
            card = delivery.card
            return CardFrame(
                card_id=card.card_id,
                title=card.title,
                body=card.body or delivery.text,
                options=[CardOptionFrame(id=option.id, label=option.label) for option in card.options],
            )
        text = delivery.text
        if delivery.reaction:
            text = f"(reacted {delivery.reaction})"
        files = [str(self._save_file(delivery.platform_id, item)) for item in delivery.files]
        return Reply(text=text, files=files, edit_of=delivery.edit_of)

    def _save_file(self, conversation: str, item: OutboundFile) -> Path:
        """Copy an outgoing file into the conversation's downloads folder under a name not yet taken."""
        assert self._data_dir is not None
        folder = downloads_dir(self._data_dir, conversation)
        source = Path(item.path)
        name = Path(item.filename).name or source.name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            data = source.read_bytes()
        except FileNotFoundError:
            raise DeliveryError(f"the file to deliver is gone: {source}", retryable=False) from None
        except OSError as exc:
            raise DeliveryError(f"cannot read {source} or create {folder}: {exc}") from exc
        stem, suffix = Path(name).stem, Path(name).suffix
        for attempt in range(1, 1000):
            target = folder / (name if attempt == 1 else f"{stem} ({attempt}){suffix}")
            try:
                with target.open("xb") as handle:
                    handle.write(data)
            except FileExistsError:
                continue
            except OSError as exc:
                raise DeliveryError(f"cannot save {target}: {exc}") from exc
            return target
        raise DeliveryError(f"too many files named {name} in {folder}", retryable=False)

    def _broadcast(self, conversation: str, frame: HostFrame, *, skip: _Client | None = None) -> None:
        with self._lock:
            for client in self._clients:
                if client.conversation == conversation and client is not skip:
                    client.send(frame)

    # -- incoming ------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        server = self._listener.server
        while not self._stopping.is_set():
            try:
                connection, _address = server.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stopping.is_set():
                    log.error("terminal.accept_failed", error=str(exc))
                return
            connection.settimeout(None)
            try:
                client = _Client(connection, peer_user(connection))
            except OSError as exc:
                log.warning("terminal.peer_unknown", error=str(exc))
                connection.close()
                continue
            with self._lock:
                if self._stopping.is_set():
                    client.close()
                    return
                self._clients.add(client)
            client.reader = threading.Thread(target=self._serve, args=(client,), name="terminal-reader", daemon=True)
            client.reader.start()

    def _serve(self, client: _Client) -> None:
        try:
            with client.connection.makefile("rb") as lines:
                while line := lines.readline(MAX_LINE_BYTES + 1):
                    if not line.endswith(b"\n") and len(line) > MAX_LINE_BYTES:
                        client.send(ErrorFrame(message=f"a frame may be at most {MAX_LINE_BYTES} bytes"))
                        break
                    if line.strip():
                        self._handle_line(client, line)
        except (OSError, sqlite3.Error, DeliveryError) as exc:
            log.info("terminal.client_gone", reason=str(exc))  # whatever it was sent stays in the outbox
        finally:
            with self._lock:
                self._clients.discard(client)
            client.close()

    def _handle_line(self, client: _Client, line: bytes) -> None:
        try:
            frame = decode_client(line)
        except ProtocolError as exc:
            client.send(ErrorFrame(message=str(exc)))
            return
        if isinstance(frame, Hello):
            self._hello(client, frame)
        elif client.conversation is None:
            client.send(ErrorFrame(message="send a hello frame first"))
        else:
            self._after_hello(client, frame)

    def _hello(self, client: _Client, hello: Hello) -> None:
        if client.conversation is not None:
            client.send(ErrorFrame(message=f"this connection already shows {client.conversation}"))
            return
        outbox = self._require_outbox()
        with self._lock:
            client.conversation = hello.conversation
            client.user = hello.user
            client.reader_name = hello.client or hello.user
            unread, older = outbox.unread(hello.conversation, client.reader_name, REPLAY_LIMIT)
            client.send(Welcome(conversation=hello.conversation, sender_id=client.sender_id, replay=len(unread)))
            if older:
                client.send(Reply(text=f"({older} earlier unread messages are not shown)"))
            for frame in unread:
                client.send(frame)
                if isinstance(frame, CardFrame) and (answered := outbox.answer(frame.card_id)) is not None:
                    client.send(CardClosed(card_id=frame.card_id, option_id=answered[0], user=answered[1]))
            if self._typing_on(hello.conversation):
                client.send(Typing(on=True))
        name = hello.conversation
        self._call_host(client, "hello", lambda host: host.on_metadata(CHANNEL_TYPE, name, name, False))

    def _after_hello(self, client: _Client, frame: ClientMessage) -> None:
        conversation = client.conversation
        assert conversation is not None
        if isinstance(frame, Say):
            if not frame.text.strip():
                client.send(ErrorFrame(message="an empty message was not sent"))
                return
            message = InboundChat(
                platform_id=conversation,
                message_id=frame.id or f"term-in-{uuid.uuid4().hex}",
                sender_id=client.sender_id,
                sender_name=client.user,
                text=frame.text,
                is_mention=True,  # a terminal conversation always speaks to the assistant
                is_group=False,
            )
            if self._call_host(client, "message", lambda host: host.on_inbound(CHANNEL_TYPE, message)):
                self._broadcast(conversation, UserLine(user=client.user, text=frame.text), skip=client)
        elif isinstance(frame, CardChoice):
            action = CardAction(
                card_id=frame.card_id, option_id=frame.option_id, user_id=client.sender_id, platform_id=conversation
            )
            if self._call_host(client, "card choice", lambda host: host.on_card_action(CHANNEL_TYPE, action)):
                self._require_outbox().record_answer(frame.card_id, frame.option_id, client.user)
                closed = CardClosed(card_id=frame.card_id, option_id=frame.option_id, user=client.user)
                self._broadcast(conversation, closed)
        elif isinstance(frame, Ack):
            self._require_outbox().ack(conversation, client.reader_name, frame.seq)

    def _call_host(self, client: _Client, what: str, call: _HostCall) -> bool:
        """Run a host callback; a failure is the client's to see, never the reader thread's death."""
        host = self._host
        if host is None:
            client.send(ErrorFrame(message="the host is not ready"))
            return False
        try:
            call(host)
        except Exception as exc:
            log.error("terminal.host_callback_failed", what=what, error=str(exc))
            client.send(ErrorFrame(message=f"the host could not take this {what}: {exc}"))
            return False
        return True

    def _require_outbox(self) -> Outbox:
        if self._outbox is None:
            raise DeliveryError("the terminal channel is not set up")
        return self._outbox
