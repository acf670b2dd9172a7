"""A thin layer over a wsproto client: bytes in, whole messages out.

It answers pings, replies to close frames, reassembles fragmented messages
under a size cap and turns every wsproto complaint into a :class:`WsFault`
value, so the connection machines never see a wsproto exception.
"""

from __future__ import annotations

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
CLOSE_TOO_BIG = 1009


@dataclass(frozen=True, slots=True)
class WsOpened:
    """The server accepted the upgrade."""


@dataclass(frozen=True, slots=True)
class WsMessage:
    """One whole message: ``str`` from a text frame, ``bytes`` from a binary one."""

    data: bytes | str


@dataclass(frozen=True, slots=True)
class WsClosed:
    """The server sent a close frame (our reply, if due, is in :class:`WsSend`)."""

    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class WsFault:
    """The peer broke the WebSocket protocol or a limit; the connection is unusable."""

    reason: FailureReason
    detail: str


@dataclass(frozen=True, slots=True)
class WsSend:
    """Bytes the layer itself must send (pong, close reply)."""

    data: bytes


WsItem = WsOpened | WsMessage | WsClosed | WsFault | WsSend


class WsClient:
    """One client-side WebSocket over one byte stream."""

    __slots__ = ("_byte_parts", "_max_size", "_size", "_text_parts", "_upgraded", "_ws")

    def __init__(self, *, max_message_size: int) -> None:
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._max_size = max_message_size
        self._text_parts: list[str] = []
        self._byte_parts: list[bytes] = []
        self._size = 0
        self._upgraded = False

    def upgrade_request(self, *, host: str, resource: str) -> bytes:
        """The HTTP upgrade request to send first."""
        return self._ws.send(Request(host=host, target=resource))

    @property
    def can_send(self) -> bool:
        return self._upgraded and self._ws.state is ConnectionState.OPEN

    def send_text(self, text: str) -> bytes:
        """Frame one text message (JSON is sent as text, as Zoom's docs show)."""
        return self._ws.send(TextMessage(data=text))

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> bytes:
        """A close frame, or nothing when the state does not allow one."""
        if not self._upgraded or self._ws.state not in (
            ConnectionState.OPEN,
            ConnectionState.REMOTE_CLOSING,
        ):
            return b""
        return self._ws.send(CloseConnection(code=code, reason=reason))

    @property
    def closed(self) -> bool:
        return self._ws.state is ConnectionState.CLOSED

    def feed(self, data: bytes) -> list[WsItem]:
        """Everything ``data`` completes, in order.  Never raises."""
        ws = self._ws
        try:
            ws.receive_data(data)
        except WsRemoteProtocolError as exc:
            return [WsFault(FailureReason.PROTOCOL_ERROR, f"bad upgrade response: {exc}")]
        items: list[WsItem] = []
        for event in ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                fault = self._add_part(event.data, event.message_finished, items)
                if fault is not None:
                    items.append(fault)
                    return items
            elif isinstance(event, Ping):
                if ws.state is ConnectionState.OPEN:
                    items.append(WsSend(ws.send(event.response())))
            elif isinstance(event, CloseConnection):
                if ws.state is ConnectionState.OPEN:
                    # wsproto reports a frame it could not parse as a close
                    # event without changing state.
                    items.append(WsFault(FailureReason.PROTOCOL_ERROR, event.reason or "bad frame"))
                    return items
                if ws.state is ConnectionState.REMOTE_CLOSING:
                    items.append(WsSend(ws.send(event.response())))
                items.append(WsClosed(event.code, event.reason or ""))
            elif isinstance(event, AcceptConnection):
                self._upgraded = True
                items.append(WsOpened())
            elif isinstance(event, RejectConnection):
                items.append(
                    WsFault(
                        FailureReason.WEBSOCKET_UPGRADE_REJECTED,
                        f"server answered the upgrade with HTTP {event.status_code}",
                    )
                )
                return items
            # Pong and RejectData carry nothing the protocol needs.
        return items

    def _add_part(
        self, part: bytes | bytearray | str, finished: bool, items: list[WsItem]
    ) -> WsFault | None:
        """Collect fragments; sizes count characters for text, bytes for binary."""
        if finished and not self._text_parts and not self._byte_parts:
            if len(part) > self._max_size:
                return self._too_big(len(part))
            items.append(WsMessage(part if isinstance(part, str) else bytes(part)))
            return None
        self._size += len(part)
        if self._size > self._max_size:
            return self._too_big(self._size)
        if isinstance(part, str):
            self._text_parts.append(part)
        else:
            self._byte_parts.append(bytes(part))
        if finished:
            whole: bytes | str = (
                "".join(self._text_parts) if self._text_parts else b"".join(self._byte_parts)
            )
            self._text_parts = []
            self._byte_parts = []
            self._size = 0
            items.append(WsMessage(whole))
        return None

    def _too_big(self, size: int) -> WsFault:
        return WsFault(
            FailureReason.MESSAGE_TOO_BIG,
            f"message of at least {size} bytes exceeds the {self._max_size}-byte limit",
        )
