"""The per-socket state machine shared by signaling and media sockets.

One :class:`Connection` owns one WebSocket client (``_ws``) and walks the transition
table :data:`TRANSITIONS`: open the socket, upgrade to WebSocket, do the RTMS
handshake, stay open (answering keep-alives, watching liveness), close.  It
takes bytes, end-of-stream, socket errors and the time in; it returns actions
and events through :meth:`drain`, or message by message from
:meth:`receive_batches` for an owner that reacts in between (the Session).  It
never calls anything back.  Faults of the peer never raise: they end the
connection with exactly one :class:`~rtms_proto.events.ConnectionFailed`.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterator, Mapping

from . import events as ev
from . import messages as m
from ._auth import Credentials, handshake_signature
from ._config import ConnectionOptions, StreamIdentity
from ._errors import ConnectionClosed, InvalidConfig, LocalProtocolError, RemoteProtocolError
from ._status import classify_status, name_status
from ._translate import translate
from ._urls import ServerUrl, parse_server_url
from ._wire.codec import decode_media as _decode_media
from ._ws import (
    CLOSE_NORMAL,
    SENDABLE_CLOSE_CODES,
    WsClient,
    WsClosed,
    WsFault,
    WsOpened,
    WsSend,
)
from .actions import Action, CloseSocket, OpenSocket, SendBytes, SocketId
from .enums import FailureReason, LegacyStatusCode, MessageType, StatusCode

__all__ = ["ConnInput", "ConnState", "Connection", "Output", "TRANSITIONS"]

Output = Action | ev.Event
WsSignal = WsOpened | WsClosed | WsFault | WsSend


class ConnState(enum.Enum):
    """Where a socket is in its life."""

    IDLE = "idle"
    OPENING = "opening"
    UPGRADING = "upgrading"
    HANDSHAKING = "handshaking"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


class ConnInput(enum.Enum):
    """What moves a socket from one state to the next."""

    START = "start"
    SOCKET_OPENED = "socket_opened"
    UPGRADED = "upgraded"
    HANDSHAKE_ACCEPTED = "handshake_accepted"
    CLOSE = "close"
    PEER_CLOSED = "peer_closed"
    CLOSE_DONE = "close_done"
    FAIL = "fail"


_S = ConnState
_I = ConnInput
_LIVE = (_S.OPENING, _S.UPGRADING, _S.HANDSHAKING, _S.OPEN)

TRANSITIONS: Mapping[tuple[ConnState, ConnInput], ConnState] = {
    (_S.IDLE, _I.START): _S.OPENING,
    (_S.OPENING, _I.SOCKET_OPENED): _S.UPGRADING,
    (_S.UPGRADING, _I.UPGRADED): _S.HANDSHAKING,
    (_S.HANDSHAKING, _I.HANDSHAKE_ACCEPTED): _S.OPEN,
    # Before the WebSocket is up there is nobody to say goodbye to.
    (_S.OPENING, _I.CLOSE): _S.CLOSED,
    (_S.UPGRADING, _I.CLOSE): _S.CLOSED,
    (_S.HANDSHAKING, _I.CLOSE): _S.CLOSING,
    (_S.OPEN, _I.CLOSE): _S.CLOSING,
    (_S.OPEN, _I.PEER_CLOSED): _S.CLOSED,
    (_S.CLOSING, _I.PEER_CLOSED): _S.CLOSED,
    (_S.CLOSING, _I.CLOSE_DONE): _S.CLOSED,
    **{(state, _I.FAIL): _S.FAILED for state in _LIVE},
}
"""Every legal ``(state, input) -> next state``; anything else is refused."""

TERMINAL_STATES = frozenset({ConnState.CLOSED, ConnState.FAILED})

# The states tested for every message, as module names: reading an attribute of an
# Enum class costs several times as much as a global.
_OPEN = ConnState.OPEN
_HANDSHAKING = ConnState.HANDSHAKING
_CLOSING = ConnState.CLOSING
_CLOSED = ConnState.CLOSED
_FAILED = ConnState.FAILED

_MEDIA_DATA = frozenset(
    {
        MessageType.MEDIA_DATA_AUDIO,
        MessageType.MEDIA_DATA_VIDEO,
        MessageType.MEDIA_DATA_SHARE,
        MessageType.MEDIA_DATA_TRANSCRIPT,
        MessageType.MEDIA_DATA_CHAT,
    }
)
"""Messages that are media data (docs/protocol.md msg 14-18)."""


class Connection(abc.ABC):
    """Base of :class:`SignalingConnection` and :class:`MediaConnection`.

    Drive it with ``start``, ``socket_opened``, ``receive_data``,
    ``receive_eof``, ``socket_failed`` and ``handle_timer`` (each takes
    ``now``, monotonic seconds, as its last keyword argument); perform what
    :meth:`drain` returns; call :meth:`handle_timer` at :meth:`next_deadline`.
    """

    _response_type: MessageType

    def __init__(
        self,
        *,
        sock: SocketId,
        url: ServerUrl | str,
        stream: StreamIdentity,
        credentials: Credentials,
        options: ConnectionOptions | None = None,
    ) -> None:
        self.options = options if options is not None else ConnectionOptions()
        self.sock = sock
        self.url = (
            url
            if isinstance(url, ServerUrl)
            else parse_server_url(url, allowed_hosts=self.options.allowed_hosts)
        )
        self.stream = stream
        self._credentials = credentials
        self._state = ConnState.IDLE
        self._ws = WsClient(max_message_size=self.options.max_message_size)
        self._out: list[Output] = []
        self._deadline: float | None = None
        self.messages_received = 0
        """WebSocket messages read so far (the Session's proof that a reconnect delivers)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.sock} {self._state.value} {self.url.url}>"

    # --- state --------------------------------------------------------------

    @property
    def state(self) -> ConnState:
        return self._state

    @property
    def is_terminal(self) -> bool:
        # Identity tests: hashing an Enum member runs Python code (this is per message).
        state = self._state
        return state is _CLOSED or state is _FAILED

    def _move(self, event: ConnInput) -> None:
        target = TRANSITIONS.get((self._state, event))
        if target is None:
            if self._state in TERMINAL_STATES or self._state is ConnState.CLOSING:
                raise ConnectionClosed(f"{self.sock} is {self._state.value}")
            raise LocalProtocolError(f"cannot {event.value} {self.sock} while {self._state.value}")
        self._state = target

    # --- outputs ------------------------------------------------------------

    def drain(self) -> list[Output]:
        """Everything to do and to report since the last call, in order."""
        out = self._out
        self._out = []
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next, or ``None``."""
        return self._deadline

    # --- inputs -------------------------------------------------------------

    def start(self, *, now: float) -> None:
        """Ask the driver to open the socket."""
        self._move(ConnInput.START)
        url = self.url
        self._out.append(
            OpenSocket(
                sock=self.sock,
                url=url.url,
                host=url.host,
                port=url.port,
                secure=url.secure,
                resource=url.resource,
            )
        )
        self._deadline = now + self.options.handshake_timeout

    def socket_opened(self, *, now: float) -> None:
        """The TCP (and TLS) connection is up: send the WebSocket upgrade."""
        self._move(ConnInput.SOCKET_OPENED)
        url = self.url
        default_port = 443 if url.secure else 80
        host = url.host if ":" not in url.host else f"[{url.host}]"
        if url.port != default_port:
            host = f"{host}:{url.port}"
        self._send_raw(self._ws.upgrade_request(host=host, resource=url.resource))

    def receive_data(self, data: bytes | bytearray | memoryview, *, now: float) -> None:
        """Bytes from the socket; what they cause is queued for :meth:`drain`.

        Never raises because of what they contain.  A ``bytearray`` or
        ``memoryview`` (a ``recv_into`` buffer) is copied before use, so the
        caller may reuse its buffer at once.
        """
        if self._accepts_data():
            for item in self._ws.feed(data):
                state = self._state
                if state is _CLOSED or state is _FAILED:
                    return
                if isinstance(item, (str, bytes)):
                    self._on_message(item, now)
                else:
                    self._on_signal(item)

    def receive_batches(
        self, data: bytes | bytearray | memoryview, *, now: float
    ) -> Iterator[list[Output]]:
        """Like :meth:`receive_data`, but hands the outputs over message by message.

        Yields one batch per WebSocket message (or signal) that produced
        output, read only when the caller asks for the next one: an owner that
        reacts between batches (the Session does) sees the same messages in
        the same order however the peer's bytes were cut.  Commands issued in
        between take effect before the next message is read; their outputs
        come with the next batch, or from :meth:`drain`.  Consume it whole
        before the next input, and before reusing ``data``'s buffer.
        """
        if self._accepts_data():
            for item in self._ws.feed(data):
                state = self._state
                if state is _CLOSED or state is _FAILED:
                    return
                if isinstance(item, (str, bytes)):
                    self._on_message(item, now)
                else:
                    self._on_signal(item)
                out = self._out
                if out:
                    self._out = []
                    yield out

    def receive_run(
        self, data: bytes | bytearray | memoryview, *, now: float
    ) -> tuple[list[Output], bool] | None:
        """The outputs of the whole text messages ``data`` completes on an open socket, up
        to and including the first that is not a media packet; and whether bytes were
        left for :meth:`receive_batches` (then call it with ``b""``).

        The usual read of a live stream (a few audio packets, the last one
        maybe cut), without :meth:`receive_batches`' generators and one batch
        per read: a media packet needs no reaction from the owner, so the
        packets before a message that may need one are handed over with it.
        None when ``data`` cannot be read this way (nothing was read: pass it
        to :meth:`receive_data` or :meth:`receive_batches`).  A property test
        holds the two to the same outputs and the same state.
        """
        if self._state is not _OPEN or type(data) is not bytes:
            return None
        read = self._ws.read_texts(data)
        if read is None:
            return None
        texts, ends, buf, other = read
        out = self._out
        self._out = []
        done = 0
        for text in texts:
            packet = _decode_media(text)
            if packet is not None:
                out.append(packet)  # a media packet decodes as its event: the hot path
                done += 1
                continue
            # Anything else takes the general path, and so does the rest of the read.
            self.messages_received += done
            self._out = out
            end = ends[done]
            self._ws.keep(buf, end)
            self._on_message(text, now)
            out = self._out
            self._out = []
            return out, other or end < len(buf)
        if done:
            self.messages_received += done
            self._deadline = now + self.options.keepalive_timeout
        return out, other

    def _accepts_data(self) -> bool:
        """False once the socket is over; refuses data before it is open."""
        state = self._state
        if state is ConnState.CLOSED or state is ConnState.FAILED:
            return False
        if state is ConnState.IDLE or state is ConnState.OPENING:
            raise LocalProtocolError(f"data for {self.sock} before socket_opened")
        return True

    def _on_signal(self, item: WsSignal) -> None:
        """Act on what the WebSocket reader found besides a message."""
        if isinstance(item, WsSend):
            self._send_raw(item.data)
        elif isinstance(item, WsOpened):
            self._move(ConnInput.UPGRADED)
            self._send(self._handshake_request())
        elif isinstance(item, WsClosed):
            self._on_peer_close(item)
        elif self._state is ConnState.CLOSING:
            # Our close frame is out: a broken answer ends the close all the same.
            self._finish_close(by_peer=False, code=None, reason="")
        else:
            self._fail(item.reason, item.detail, close_code=item.close_code)

    def receive_eof(self, *, now: float) -> None:
        """The peer closed the byte stream."""
        state = self._state
        if state in TERMINAL_STATES:
            return
        if state is ConnState.CLOSING:
            self._finish_close(by_peer=False, code=None, reason="")
            return
        if state is ConnState.IDLE:
            raise LocalProtocolError(f"end of stream for {self.sock} before start")
        self._fail(
            FailureReason.CONNECTION_LOST,
            "the server closed the connection without a close frame",
            send_close=False,
        )

    def socket_failed(self, detail: str, *, now: float) -> None:
        """Opening, reading or writing the socket failed (``detail`` is logged text)."""
        state = self._state
        if state in TERMINAL_STATES:
            return
        if state is ConnState.CLOSING:
            self._finish_close(by_peer=False, code=None, reason="")
            return
        if state is ConnState.IDLE:
            raise LocalProtocolError(f"socket failure for {self.sock} before start")
        reason = (
            FailureReason.CONNECT_FAILED
            if state is ConnState.OPENING
            else FailureReason.CONNECTION_LOST
        )
        self._fail(reason, detail, send_close=False)

    def handle_timer(self, *, now: float) -> None:
        """Act on a deadline that has passed; early calls do nothing."""
        deadline = self._deadline
        if deadline is None or now < deadline:
            return
        state = self._state
        if state is ConnState.OPEN:
            self._fail(
                FailureReason.KEEPALIVE_TIMEOUT,
                f"nothing received for {self.options.keepalive_timeout:g} s",
            )
        elif state is ConnState.CLOSING:
            self._finish_close(by_peer=False, code=None, reason="")
        else:
            self._fail(
                FailureReason.HANDSHAKE_TIMEOUT,
                f"not connected within {self.options.handshake_timeout:g} s",
            )

    def close(self, code: int = CLOSE_NORMAL, reason: str = "", *, now: float) -> None:
        """Close in order: send a close frame and wait (bounded) for the reply."""
        if isinstance(code, bool) or not isinstance(code, int) or code not in SENDABLE_CLOSE_CODES:
            raise InvalidConfig(f"{code!r} is not a close code an endpoint may send")
        if not isinstance(reason, str):
            raise InvalidConfig(f"close reason must be a str, not {type(reason).__name__}")
        state = self._state
        self._move(ConnInput.CLOSE)
        if state is ConnState.OPENING or state is ConnState.UPGRADING:
            self._out.append(CloseSocket(sock=self.sock))
            self._out.append(ev.SocketClosed(sock=self.sock, by_peer=False, code=None, reason=""))
            self._deadline = None
            return
        self._send_raw(self._ws.close(code, reason))
        self._deadline = now + self.options.close_timeout

    # --- internals ----------------------------------------------------------

    def _send_raw(self, data: bytes) -> None:
        self._out.append(SendBytes(sock=self.sock, data=data))

    def _send(self, msg: m.Message) -> None:
        self._out.append(
            SendBytes(sock=self.sock, data=self._ws.send_text(m.encode_message(msg).decode()))
        )

    def _require_open(self) -> None:
        if self._state is not ConnState.OPEN:
            if self._state in TERMINAL_STATES or self._state is ConnState.CLOSING:
                raise ConnectionClosed(f"{self.sock} is {self._state.value}")
            raise LocalProtocolError(f"{self.sock} is not open yet ({self._state.value})")

    def _signature(self) -> str:
        return handshake_signature(
            client_id=self._credentials.client_id,
            client_secret=self._credentials.client_secret,
            instance_id=self.stream.instance_id,
            rtms_stream_id=self.stream.rtms_stream_id,
        )

    def _on_message(self, data: bytes | str, now: float) -> None:
        self.messages_received += 1
        if self._state is _OPEN:
            self._deadline = now + self.options.keepalive_timeout
        msg = m.decode_message(data)
        if (
            type(msg) is ev.AudioReceived
            or type(msg) is ev.VideoReceived
            or type(msg) is ev.DeskshareReceived
        ):
            if self._state is _HANDSHAKING:
                self._media_before_handshake(now)
            self._out.append(msg)  # a media packet decodes as its event: the hot path
            return
        if type(msg) is m.KeepAliveRequest:
            if self._state is not _CLOSING:  # nothing may follow our close frame
                self._send(m.KeepAliveResponse(timestamp=msg.timestamp, sequence=msg.sequence))
            return
        if isinstance(msg, m.DecodeError):
            if self._state is ConnState.HANDSHAKING and msg.msg_type == self._response_type:
                self._fail(FailureReason.BAD_HANDSHAKE_RESPONSE, str(msg))
            else:
                self._out.append(ev.MalformedMessage(sock=self.sock, error=msg))
            return
        if msg.msg_type == self._response_type:
            if self._state is ConnState.HANDSHAKING:
                self._on_handshake_response(msg, now)
            elif self._state is ConnState.OPEN:
                self._out.append(
                    ev.MalformedMessage(
                        sock=self.sock,
                        error=m.DecodeError(
                            msg_type=msg.msg_type,
                            field=None,
                            detail="handshake response after the handshake",
                        ),
                    )
                )
            # While closing (close() during the handshake) a late answer is moot.
            return
        if self._state is _HANDSHAKING and msg.msg_type in _MEDIA_DATA:
            self._media_before_handshake(now)
        self._out.append(translate(msg, self.sock, self.stream.product))

    def _accept_handshake(self, event: ev.Event, now: float) -> None:
        self._move(ConnInput.HANDSHAKE_ACCEPTED)
        self._deadline = now + self.options.keepalive_timeout
        self._out.append(event)

    def _on_peer_close(self, item: WsClosed) -> None:
        if self._state is ConnState.OPEN or self._state is ConnState.CLOSING:
            self._finish_close(
                by_peer=self._state is ConnState.OPEN, code=item.code, reason=item.reason
            )
            return
        self._fail(
            FailureReason.CLOSED_BY_SERVER,
            f"the server closed the connection during the handshake (code {item.code})",
        )

    def _finish_close(self, *, by_peer: bool, code: int | None, reason: str) -> None:
        """The end of an orderly close: a close frame arrived, or ours timed out."""
        self._move(ConnInput.PEER_CLOSED if by_peer or code is not None else ConnInput.CLOSE_DONE)
        self._out.append(CloseSocket(sock=self.sock))
        self._out.append(ev.SocketClosed(sock=self.sock, by_peer=by_peer, code=code, reason=reason))
        self._deadline = None

    def _fail(
        self,
        reason: FailureReason,
        detail: str,
        *,
        status: int | None = None,
        status_reason: str | None = None,
        close_code: int = CLOSE_NORMAL,
        send_close: bool = True,
    ) -> None:
        error = RemoteProtocolError(
            reason,
            detail,
            status=None if status is None else self._name_status(status),
            status_reason=status_reason,
        )
        self._move(ConnInput.FAIL)
        self._out.append(ev.ConnectionFailed(sock=self.sock, error=error))
        close = self._ws.close(close_code) if send_close else b""
        if close:
            self._send_raw(close)
        self._out.append(CloseSocket(sock=self.sock))
        self._deadline = None

    def _name_status(self, status: int) -> StatusCode | LegacyStatusCode | int:
        return name_status(status, self.options.status_table)

    def _reject(self, status: int | None, status_reason: str, what: str) -> bool:
        """Fail the handshake unless ``status`` is success; True when it failed."""
        reason = classify_status(status, status_reason, self.options.status_table)
        if reason is None:
            return False
        self._fail(
            reason,
            f"{what} rejected",
            status=status,
            status_reason=status_reason or None,
        )
        return True

    # --- hooks for the two kinds of socket ----------------------------------

    @abc.abstractmethod
    def _handshake_request(self) -> m.Message:
        """The RTMS handshake to send once the WebSocket is up."""

    @abc.abstractmethod
    def _on_handshake_response(self, msg: m.Message, now: float) -> None:
        """Check the handshake answer; accept or fail."""

    def _media_before_handshake(self, now: float) -> None:  # noqa: B027 - an optional hook
        """Media data arrived before the handshake answer (a media socket accepts itself).

        On a signaling socket the data just passes on, as any other message.
        """
