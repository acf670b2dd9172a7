"""Helpers for the per-socket machine tests (SignalingConnection, MediaConnection).

A :class:`Wire` pairs one connection with the server end of its socket, a
wsproto server :class:`~wire.Peer`.  :meth:`Wire.drain` returns the
connection's outputs with every ``SendBytes`` replaced by what the server
decoded from it (client frames are masked with random keys, so their bytes
cannot be compared), which lets a test assert the exact output list.

Only the public API of the machines is used: constructors, the input methods,
``drain``, ``next_deadline`` and ``state``.
"""

from __future__ import annotations

from dataclasses import dataclass

from wire import Peer
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request

from rtms_proto import (
    ConnectionOptions,
    Credentials,
    MediaConnection,
    MediaParams,
    SignalingConnection,
    StreamIdentity,
    handshake_signature,
)
from rtms_proto import messages as m
from rtms_proto._connection import Connection, ConnState, Output
from rtms_proto.actions import SendBytes, SocketId, SocketRole
from rtms_proto.enums import MediaType, Product

SIG = SocketId(1, SocketRole.SIGNALING)
AUDIO = SocketId(2, SocketRole.AUDIO)
SIGNALING_URL = "wss://rtms-sjc1.zoom.us/signaling?id=7"
MEDIA_URL = "wss://rtms-sjc1.zoom.us/audio"
MEDIA_URLS = {
    "audio": "wss://rtms-sjc1.zoom.us/audio",
    "video": "wss://rtms-sjc1.zoom.us/video",
    "all": "wss://rtms-sjc1.zoom.us/all",
}
SECRET = "client-secret-7f3a9c1e5b"
CREDENTIALS = Credentials(client_id="client-id-42", client_secret=SECRET)
STREAM = StreamIdentity(instance_id="meeting-uuid==", rtms_stream_id="stream-1")
SIGNATURE = handshake_signature(
    client_id="client-id-42",
    client_secret=SECRET,
    instance_id="meeting-uuid==",
    rtms_stream_id="stream-1",
)
SIGNALING_OK = m.SignalingHandshakeResponse(
    status_code=0, media_urls=MEDIA_URLS, datacenter_region="sjc"
)
MEDIA_OK = m.MediaHandshakeResponse(status_code=0)


def signaling(
    *,
    options: ConnectionOptions | None = None,
    url: str = SIGNALING_URL,
    stream: StreamIdentity = STREAM,
    buffer_data: bool | None = None,
    sequence: int = 1,
) -> SignalingConnection:
    return SignalingConnection(
        sock=SIG,
        url=url,
        stream=stream,
        credentials=CREDENTIALS,
        options=options,
        buffer_data=buffer_data,
        sequence=sequence,
    )


def media(
    media_type: MediaType = MediaType.AUDIO,
    *,
    params: MediaParams | None = None,
    options: ConnectionOptions | None = None,
    stream: StreamIdentity = STREAM,
    sequence: int = 1,
) -> MediaConnection:
    return MediaConnection(
        sock=AUDIO,
        url=MEDIA_URL,
        stream=stream,
        credentials=CREDENTIALS,
        media_type=media_type,
        params=params,
        options=options,
        sequence=sequence,
    )


def product_stream(product: Product) -> StreamIdentity:
    return StreamIdentity(instance_id="meeting-uuid==", rtms_stream_id="stream-1", product=product)


# --- what the server decoded from one SendBytes ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Upgrade:
    """The HTTP upgrade request."""

    host: str
    target: str


@dataclass(frozen=True, slots=True)
class Close:
    """A close frame."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Pong:
    """A pong frame."""

    payload: bytes


Sent = Upgrade | Close | Pong | m.Message | m.DecodeError
Item = Sent | Output


class Wire:
    """One connection and the server end of its socket."""

    def __init__(self, conn: Connection, *, accept: bool = True) -> None:
        self.conn = conn
        self.peer = Peer(accept=accept)
        self.answers = b""
        """The server's automatic answers (101, close reply) not yet taken."""

    def drain(self) -> list[Item]:
        """The outputs, each SendBytes replaced by what the server decoded from it."""
        return [self.decode(o) if isinstance(o, SendBytes) else o for o in self.conn.drain()]

    def take_answers(self) -> bytes:
        data, self.answers = self.answers, b""
        return data

    def decode(self, out: SendBytes) -> Sent:
        """Feed one SendBytes to the server; what it carried (exactly one item)."""
        assert out.sock == self.conn.sock
        peer = self.peer
        before = (len(peer.requests), len(peer.received), len(peer.closes), len(peer.pongs))
        self.answers += peer.feed(out.data)
        new: list[Sent] = [
            *(Upgrade(r.host, r.target) for r in peer.requests[before[0] :]),
            *peer.received[before[1] :],
            *(Close(int(c.code), c.reason or "") for c in peer.closes[before[2] :]),
            *(Pong(p) for p in peer.pongs[before[3] :]),
        ]
        assert len(new) == 1, f"one SendBytes must carry exactly one item, got {new!r}"
        return new[0]


def handshake_ok(conn: Connection) -> m.Message:
    return SIGNALING_OK if isinstance(conn, SignalingConnection) else MEDIA_OK


def reach(conn: Connection, state: ConnState, now: float = 0.0) -> Wire:
    """Walk ``conn`` to ``state`` through the public API; outputs are drained.

    CLOSING is reached by ``close`` from OPEN, CLOSED by the peer's close
    frame in OPEN, FAILED by end of stream in OPEN.
    """
    w = Wire(conn)
    path = [ConnState.OPENING, ConnState.UPGRADING, ConnState.HANDSHAKING, ConnState.OPEN]
    for step in path:
        if conn.state is state:
            break
        if step is ConnState.OPENING:
            conn.start(now=now)
        elif step is ConnState.UPGRADING:
            conn.socket_opened(now=now)
        elif step is ConnState.HANDSHAKING:
            w.drain()
            conn.receive_data(w.take_answers(), now=now)
        else:
            conn.receive_data(w.peer.send(handshake_ok(conn)), now=now)
        w.drain()
    if state is ConnState.CLOSING:
        conn.close(now=now)
    elif state is ConnState.CLOSED:
        conn.receive_data(w.peer.close(), now=now)
    elif state is ConnState.FAILED:
        conn.receive_eof(now=now)
    w.drain()
    assert conn.state is state
    return w


def open_server_peer() -> Peer:
    """A server Peer already past the upgrade, for framing server bytes by themselves.

    Server frames are not masked, so the same message always gives the same bytes.
    """
    client = WSConnection(ConnectionType.CLIENT)
    peer = Peer()
    client.receive_data(peer.feed(client.send(Request(host="x", target="/"))))
    assert any(isinstance(e, AcceptConnection) for e in client.events())
    return peer
