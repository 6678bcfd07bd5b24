"""The terminal chat's wire format: one JSON object per line over a Unix socket (docs/terminal-protocol.md).

Shared by the host side (`channels.terminal`) and the `hermitcrab chat`
client, so both always agree on every frame. Frames are tagged by `type`;
a reader refuses a line that is not one of its direction's frames.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import msgspec

PROTOCOL_VERSION = 1
SOCKET_NAME = "terminal.sock"
MAX_LINE_BYTES = 1024 * 1024
DEFAULT_CONVERSATION = "main"

_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
"""A conversation, user or client name: 1 to 200 characters, no leading or trailing space."""


def socket_path(data_dir: Path) -> Path:
    return data_dir / SOCKET_NAME


def downloads_dir(data_dir: Path, conversation: str) -> Path:
    """Where files the agent sends to a conversation are saved: one folder per conversation."""
    folder = _UNSAFE_PATH_CHARS.sub("_", conversation).strip("._") or "conversation"
    return data_dir / "downloads" / folder


class ProtocolError(ValueError):
    """A line that is not a valid frame; the message says what is wrong with it."""


# -- client -> host ------------------------------------------------------------------------


class ClientFrame(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class Hello(ClientFrame, tag="hello", frozen=True, kw_only=True):
    """The first frame: which conversation this client shows, and who is typing.

    `client` names the reader whose acknowledged position is remembered (default: `user`);
    a client that reconnects under the same name gets every reply it has not acknowledged.
    """

    conversation: Name = DEFAULT_CONVERSATION
    user: Name
    client: Name | None = None
    version: int = PROTOCOL_VERSION


class Say(ClientFrame, tag="message", frozen=True, kw_only=True):
    text: str
    id: str | None = None


class CardChoice(ClientFrame, tag="card_choice", frozen=True, kw_only=True):
    card_id: str
    option_id: str


class Ack(ClientFrame, tag="ack", frozen=True, kw_only=True):
    """Everything up to and including `seq` was shown; it is not replayed on reconnect."""

    seq: int


# -- host -> client ------------------------------------------------------------------------


class HostFrame(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class Welcome(HostFrame, tag="welcome", frozen=True, kw_only=True):
    conversation: str
    sender_id: str
    replay: int = 0
    version: int = PROTOCOL_VERSION


class Reply(HostFrame, tag="message", frozen=True, kw_only=True):
    """An agent's message; `files` are absolute paths of the saved copies."""

    seq: int = 0
    id: str = ""
    text: str = ""
    files: list[str] = []
    edit_of: str | None = None


class CardOptionFrame(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    label: str


class CardFrame(HostFrame, tag="card", frozen=True, kw_only=True):
    seq: int = 0
    id: str = ""
    card_id: str
    title: str
    body: str = ""
    options: list[CardOptionFrame] = []


class Typing(HostFrame, tag="typing", frozen=True, kw_only=True):
    on: bool


class UserLine(HostFrame, tag="user_message", frozen=True, kw_only=True):
    """Another client of the same conversation wrote this (shown, never stored)."""

    user: str
    text: str


class CardClosed(HostFrame, tag="card_closed", frozen=True, kw_only=True):
    """Someone chose an option of this card; clients stop offering it."""

    card_id: str
    option_id: str
    user: str


class ErrorFrame(HostFrame, tag="error", frozen=True, kw_only=True):
    message: str


ClientMessage = Hello | Say | CardChoice | Ack
HostMessage = Welcome | Reply | CardFrame | Typing | UserLine | CardClosed | ErrorFrame
StoredFrame = Reply | CardFrame

_encoder = msgspec.json.Encoder()
_client_decoder: msgspec.json.Decoder[ClientMessage] = msgspec.json.Decoder(ClientMessage)
_host_decoder: msgspec.json.Decoder[HostMessage] = msgspec.json.Decoder(HostMessage)
_stored_decoder: msgspec.json.Decoder[StoredFrame] = msgspec.json.Decoder(StoredFrame)


def encode(frame: ClientFrame | HostFrame) -> bytes:
    """One frame as a line, newline included."""
    return _encoder.encode(frame) + b"\n"


def decode_client(line: bytes) -> ClientMessage:
    _check_size(line)
    try:
        return _client_decoder.decode(line.strip())
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"not a valid client frame: {exc}") from None


def decode_host(line: bytes) -> HostMessage:
    _check_size(line)
    try:
        return _host_decoder.decode(line.strip())
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"not a valid host frame: {exc}") from None


def decode_stored(data: bytes) -> StoredFrame:
    return _stored_decoder.decode(data)


def _check_size(line: bytes) -> None:
    if len(line) > MAX_LINE_BYTES:
        raise ProtocolError(f"a frame may be at most {MAX_LINE_BYTES} bytes")
