"""A thin layer over a wsproto *server* connection: bytes in, whole messages out.

It answers pings and close frames, reassembles fragmented messages under a
size cap, and turns every wsproto complaint into a value, so the server core
never sees a wsproto exception.  Bytes to write come back as :class:`WsOut`
items, in order with everything else.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

__all__ = ["WsClosed", "WsFault", "WsMessage", "WsOut", "WsServer", "WsUpgrade"]

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009

_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@dataclass(frozen=True, slots=True)
class WsUpgrade:
    """The client asks to upgrade ``target``; answer with :meth:`WsServer.accept` or ``reject``."""

    target: str
    subprotocols: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WsMessage:
    """One whole message: ``str`` from a text frame, ``bytes`` from a binary frame."""

    data: str | bytes


@dataclass(frozen=True, slots=True)
class WsClosed:
    """The client sent a close frame (or answered ours); the reply, if due, is queued."""

    code: int | None
    reason: str
    answered_ours: bool


@dataclass(frozen=True, slots=True)
class WsFault:
    """The client broke the WebSocket protocol or a limit; close with ``code``."""

    detail: str
    code: int = CLOSE_PROTOCOL_ERROR


@dataclass(frozen=True, slots=True)
class WsOut:
    """Bytes to write to the socket."""

    data: bytes


WsItem = WsUpgrade | WsMessage | WsClosed | WsFault | WsOut


class Phase(enum.Enum):
    """Where the WebSocket is: before the upgrade, open, closing, or done."""

    UPGRADING = "upgrading"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class WsServer:
    """One server-side WebSocket over one byte stream."""

    __slots__ = ("_parts", "_size", "_ws", "max_size", "phase")

    def __init__(self, *, max_message_size: int) -> None:
        self._ws = WSConnection(ConnectionType.SERVER)
        self.max_size = max_message_size
        self.phase = Phase.UPGRADING
        self._parts: list[str | bytes] = []
        self._size = 0

    # --- answers to the upgrade -------------------------------------------------------------

    def accept(self, subprotocol: str | None) -> Iterator[WsItem]:
        """Accept the upgrade (echoing ``subprotocol`` when the client offered one).

        Frames the client sent right behind its request come back too.
        """
        self.phase = Phase.OPEN
        items: list[WsItem] = [WsOut(self._ws.send(AcceptConnection(subprotocol=subprotocol)))]
        self._ws.receive_data(b"")
        return itertools.chain(items, self._events())

    def reject(self, status: int) -> WsOut:
        """Refuse the upgrade with an empty HTTP response; close the socket afterwards."""
        self.phase = Phase.CLOSED
        data = self._ws.send(
            RejectConnection(
                status_code=status, headers=[(b"content-length", b"0")], has_body=False
            )
        )
        return WsOut(data)

    # --- sending ----------------------------------------------------------------------------

    @property
    def can_send(self) -> bool:
        return self.phase is Phase.OPEN and self._ws.state is ConnectionState.OPEN

    def message(self, data: str | bytes) -> WsOut | None:
        """Frame one message: ``str`` as a text frame, ``bytes`` as a binary frame."""
        if not self.can_send:
            return None
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        return WsOut(self._ws.send(event))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> WsOut | None:
        """Start a close handshake; None when the state does not allow one."""
        if not self.can_send:
            return None
        self.phase = Phase.CLOSING
        return WsOut(self._ws.send(CloseConnection(code=code, reason=reason)))

    def lost(self) -> None:
        """The byte stream is gone."""
        self.phase = Phase.CLOSED

    # --- receiving --------------------------------------------------------------------------

    def feed(self, data: bytes) -> Iterator[WsItem]:
        """Everything ``data`` completes, in order.  Never raises.

        Frames are parsed as the caller iterates, so the caller's answer to a
        message goes out before a close frame later in the same read is
        handled: the outcome does not depend on how the client's bytes were cut.
        """
        if self.phase is Phase.CLOSED:
            return
        ws = self._ws
        try:
            ws.receive_data(data)
        except WsRemoteProtocolError as exc:
            self.phase = Phase.CLOSED
            yield WsOut(_BAD_REQUEST)
            yield WsFault(f"bad upgrade request: {exc}")
            return
        yield from self._events()

    def _events(self) -> Iterator[WsItem]:
        ws = self._ws
        for event in ws.events():
            if isinstance(event, Request):
                yield WsUpgrade(
                    target=event.target,
                    subprotocols=tuple(event.subprotocols),
                    headers=tuple(
                        (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                        for k, v in event.extra_headers
                    ),
                )
            elif isinstance(event, TextMessage | BytesMessage):
                items: list[WsItem] = []
                fault = self._add_part(event.data, event.message_finished, items)
                yield from items
                if fault is not None:
                    yield fault
                    return
            elif isinstance(event, Ping):
                if ws.state is ConnectionState.OPEN:
                    yield WsOut(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if ws.state is ConnectionState.OPEN:
                    # wsproto reports an unparsable frame as a close event
                    # without changing state.
                    yield WsFault(event.reason or "bad frame")
                    return
                answered = ws.state is ConnectionState.CLOSED
                if ws.state is ConnectionState.REMOTE_CLOSING:
                    yield WsOut(ws.send(event.response()))
                self.phase = Phase.CLOSED
                yield WsClosed(event.code, event.reason or "", answered)
                return
            # Pong carries nothing the protocol needs.

    def _add_part(
        self, part: str | bytes | bytearray, finished: bool, items: list[WsItem]
    ) -> WsFault | None:
        """Collect fragments; sizes count characters for text, bytes for binary."""
        if not self._parts and finished:
            if len(part) > self.max_size:
                return self._too_big(len(part))
            items.append(WsMessage(part if isinstance(part, str) else bytes(part)))
            return None
        self._size += len(part)
        if self._size > self.max_size:
            return self._too_big(self._size)
        self._parts.append(part if isinstance(part, str) else bytes(part))
        if finished:
            parts, self._parts, self._size = self._parts, [], 0
            if isinstance(parts[0], str):
                items.append(WsMessage("".join(p for p in parts if isinstance(p, str))))
            else:
                items.append(WsMessage(b"".join(p for p in parts if isinstance(p, bytes))))
        return None

    def _too_big(self, size: int) -> WsFault:
        self._parts, self._size = [], 0
        return WsFault(
            f"message of at least {size} bytes exceeds the {self.max_size}-byte limit",
            CLOSE_TOO_BIG,
        )
