"""A thin layer over a wsproto client: bytes in, whole messages out.

It answers pings, replies to close frames, reassembles fragmented messages
under a size cap and turns every wsproto complaint into a :class:`WsFault`
value, so the connection machines never see a wsproto exception.
"""

from __future__ import annotations

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

from .enums import FailureReason

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009


@dataclass(frozen=True, slots=True)
class WsOpened:
    """The server accepted the upgrade."""


@dataclass(frozen=True, slots=True)
class WsClosed:
    """The server sent a close frame (our reply, if due, is in :class:`WsSend`)."""

    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class WsFault:
    """The peer broke the WebSocket protocol or a limit; the connection is unusable.

    ``close_code`` is the code of the close frame to send, when one can be sent.
    ``detail`` never depends on how the bytes were cut into pieces.
    """

    reason: FailureReason
    detail: str
    close_code: int = CLOSE_PROTOCOL_ERROR


@dataclass(frozen=True, slots=True)
class WsSend:
    """Bytes the layer itself must send (pong, close reply)."""

    data: bytes


WsItem = bytes | str | WsOpened | WsClosed | WsFault | WsSend
"""A whole message (``str`` from a text frame, ``bytes`` from a binary one) or a signal."""


class WsClient:
    """One client-side WebSocket over one byte stream."""

    __slots__ = ("_max_size", "_parts", "_size", "_ws")

    def __init__(self, *, max_message_size: int) -> None:
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._max_size = max_message_size
        self._parts: list[bytes | str] = []
        self._size = 0

    def upgrade_request(self, *, host: str, resource: str) -> bytes:
        """The HTTP upgrade request to send first."""
        return self._ws.send(Request(host=host, target=resource))

    def send_text(self, text: str) -> bytes:
        """Frame one text message (JSON is sent as text, as Zoom's docs show)."""
        return self._ws.send(TextMessage(data=text))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
        """A close frame, or nothing when the state does not allow one.

        Only an open WebSocket can send one: before the upgrade there is
        nothing to close, and a close frame from the server was already
        answered by :meth:`feed`.
        """
        if self._ws.state is not ConnectionState.OPEN:
            return b""
        return self._ws.send(CloseConnection(code=code, reason=reason))

    def feed(self, data: bytes) -> Iterator[WsItem]:
        """Everything ``data`` completes, in order.  Never raises.

        Frames are parsed as the caller iterates, so what the caller sends for
        one item (a keep-alive answer, the RTMS handshake) goes out before a
        close frame later in the same ``data`` is answered: the result does not
        depend on how the peer's bytes were cut into pieces.  Nothing follows
        a :class:`WsFault` or a :class:`WsClosed`.
        """
        if not data:
            # Nothing to do; wsproto's HTTP parser would read b"" as end of stream.
            return
        ws = self._ws
        conn = ws.connection
        events: Iterator[object]
        if conn is not None:
            # Upgraded: talk to the frame layer directly (one generator less per frame).
            conn.receive_data(data)
            events = conn.events()
        else:
            try:
                ws.receive_data(data)
            except WsRemoteProtocolError as exc:
                yield WsFault(FailureReason.PROTOCOL_ERROR, f"bad upgrade response: {exc}")
                return
            events = ws.events()
        for event in events:
            tp = type(event)
            if tp is TextMessage or tp is BytesMessage:
                assert isinstance(event, (TextMessage, BytesMessage))
                part = event.data
                if event.message_finished and not self._size and not self._parts:
                    # The usual case: a whole message in one frame.
                    if len(part) > self._max_size:
                        yield self._too_big()
                        return
                    yield part if isinstance(part, str) else bytes(part)
                    continue
                item = self._add_part(part, event.message_finished)
                if item is not None:
                    yield item
                    if isinstance(item, WsFault):
                        return
            elif tp is Ping:
                assert isinstance(event, Ping)
                if ws.state is ConnectionState.OPEN:
                    yield WsSend(ws.send(event.response()))
            elif tp is CloseConnection:
                assert isinstance(event, CloseConnection)
                if ws.state is ConnectionState.OPEN or ws.state is ConnectionState.LOCAL_CLOSING:
                    # wsproto reports a frame it could not parse as a close
                    # event without changing state.
                    yield _bad_frame(event)
                    return
                if ws.state is ConnectionState.REMOTE_CLOSING:
                    yield WsSend(ws.send(event.response()))
                yield WsClosed(int(event.code), event.reason or "")
                return
            elif tp is AcceptConnection:
                yield WsOpened()
            elif tp is RejectConnection:
                assert isinstance(event, RejectConnection)
                yield WsFault(
                    FailureReason.WEBSOCKET_UPGRADE_REJECTED,
                    f"server answered the upgrade with HTTP {event.status_code}",
                )
                return
            # Pong and RejectData carry nothing the protocol needs.

    def _add_part(
        self, part: bytes | bytearray | str, finished: bool
    ) -> bytes | str | WsFault | None:
        """Collect fragments; sizes count characters for text, bytes for binary."""
        self._size += len(part)
        if self._size > self._max_size:
            return self._too_big()
        self._parts.append(part if isinstance(part, str) else bytes(part))
        if not finished:
            return None
        parts = self._parts
        self._parts = []
        self._size = 0
        first = parts[0]
        if isinstance(first, str):
            return "".join(p for p in parts if isinstance(p, str))
        return b"".join(p for p in parts if isinstance(p, bytes))

    def _too_big(self) -> WsFault:
        # No size in the text: it would depend on where the bytes were cut.
        return WsFault(
            FailureReason.MESSAGE_TOO_BIG,
            f"message exceeds the {self._max_size}-byte limit",
            CLOSE_TOO_BIG,
        )


def _bad_frame(event: CloseConnection) -> WsFault:
    if event.code == CLOSE_INVALID_DATA:
        # wsproto's text names a position inside the piece it was decoding.
        return WsFault(FailureReason.PROTOCOL_ERROR, "invalid UTF-8 text", CLOSE_INVALID_DATA)
    return WsFault(FailureReason.PROTOCOL_ERROR, event.reason or "bad frame", int(event.code))
