"""The fake server and its clients on one simulated clock, without sockets.

:class:`MemoryNetwork` moves bytes between a :class:`FakeRtmsServer` and
clients that follow rtms_proto's driving contract (``Session`` does; see
:class:`ClientLike`), or raw WebSocket peers (:class:`WsPeer`) for wire-level
tests.  Delivery is instant and in order; time advances only in
:meth:`MemoryNetwork.run_until`, jumping from one deadline to the next, so a
60-second scenario runs in milliseconds and the same way every time.

TCP is modelled as far as the protocol can tell: a server ``Close`` gives the
client end-of-stream, an ``Abort`` a connection reset, ``PauseReading``
holds the client's bytes, and either side's close reaches the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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

from rtms_proto import messages as m
from rtms_proto import parse_server_url
from rtms_proto.actions import CloseSocket, OpenSocket, SendBytes, SocketId

from .server import (
    Abort,
    Close,
    ConnId,
    EmitWebhook,
    FakeRtmsServer,
    PauseReading,
    Send,
)

__all__ = ["ClientLike", "ClientRecord", "MemoryNetwork", "WsPeer"]


class ClientLike(Protocol):
    """What :class:`MemoryNetwork` drives: rtms_proto's ``Session`` contract (time is
    always passed as the keyword ``now``)."""

    def start(self, *, now: float) -> None: ...
    def socket_opened(self, sock: SocketId, *, now: float) -> None: ...
    def receive_data(self, sock: SocketId, data: bytes, *, now: float) -> None: ...
    def receive_eof(self, sock: SocketId, *, now: float) -> None: ...
    def socket_failed(self, sock: SocketId, detail: str, *, now: float) -> None: ...
    def handle_timer(self, *, now: float) -> None: ...
    def next_deadline(self) -> float | None: ...
    def drain(self) -> Sequence[object]: ...


@dataclass(slots=True)
class ClientRecord:
    """A client on the network and the events it produced, as ``(time, event)``."""

    client: ClientLike
    events: list[tuple[float, object]] = field(default_factory=list)

    def of(self, kind: type[object]) -> list[object]:
        """The events of one type, in order."""
        return [e for _, e in self.events if isinstance(e, kind)]


class _End(Protocol):
    """The client end of one simulated TCP connection."""

    def on_data(self, data: bytes, now: float) -> None: ...
    def on_eof(self, now: float) -> None: ...
    def on_reset(self, now: float) -> None: ...


@dataclass(slots=True)
class _Link:
    conn: ConnId
    end: _End
    open: bool = True
    paused_until: float | None = None
    held: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class _SessionEnd:
    record: ClientRecord
    sock: SocketId

    def on_data(self, data: bytes, now: float) -> None:
        self.record.client.receive_data(self.sock, data, now=now)

    def on_eof(self, now: float) -> None:
        self.record.client.receive_eof(self.sock, now=now)

    def on_reset(self, now: float) -> None:
        self.record.client.socket_failed(self.sock, "connection reset by peer", now=now)


class MemoryNetwork:
    """A simulated network with one fake server; see the module docstring."""

    def __init__(self, server: FakeRtmsServer, *, now: float = 0.0) -> None:
        self.server = server
        self.now = now
        self.webhooks: list[EmitWebhook] = []
        """Every webhook the server emitted, in order."""
        url = parse_server_url(server.config.base_url, allowed_hosts=("*",))
        self._address = (url.host, url.port)
        self._records: list[ClientRecord] = []
        self._links: dict[ConnId, _Link] = {}
        self._socks: dict[tuple[int, SocketId], _Link] = {}
        self._next_conn = 1

    # --- clients ----------------------------------------------------------------------------

    def add_client(self, client: ClientLike, *, start: bool = True) -> ClientRecord:
        """Put a client on the network (and start it at the current time)."""
        record = ClientRecord(client)
        self._records.append(record)
        if start:
            client.start(now=self.now)
            self.pump()
        return record

    def open(self, resource: str, *, subprotocols: Sequence[str] = ()) -> WsPeer:
        """Open a raw WebSocket to ``resource`` (a path such as ``/signaling/<id>``)."""
        peer = WsPeer(self, resource, tuple(subprotocols))
        peer.link = self._connect(peer)
        peer.start()
        self.pump()
        return peer

    def _connect(self, end: _End) -> _Link:
        conn = self._next_conn
        self._next_conn += 1
        link = _Link(conn=conn, end=end)
        self._links[conn] = link
        self.server.connection_made(conn, self.now)
        return link

    # --- moving bytes -----------------------------------------------------------------------

    def to_server(self, link: _Link, data: bytes) -> None:
        """Client bytes for the server (held while the server pauses reading)."""
        if not link.open:
            return
        if link.paused_until is not None:
            link.held.append(data)
            return
        self.server.receive_data(link.conn, data, self.now)

    def client_closed(self, link: _Link) -> None:
        """The client closed its end (or reset it)."""
        if link.open:
            link.open = False
            self.server.connection_lost(link.conn, self.now)

    def pump(self) -> None:
        """Deliver everything queued on both sides until nothing moves."""
        progress = True
        while progress:
            progress = False
            for record in self._records:
                outputs = record.client.drain()
                if outputs:
                    progress = True
                for out in outputs:
                    self._client_output(record, out)
            actions = self.server.drain()
            if actions:
                progress = True
            for action in actions:
                self._server_action(action)

    def _client_output(self, record: ClientRecord, out: object) -> None:
        if isinstance(out, OpenSocket):
            if (out.host, out.port) != self._address:
                record.client.socket_failed(out.sock, "connection refused", now=self.now)
                return
            end = _SessionEnd(record, out.sock)
            self._socks[(id(record), out.sock)] = self._connect(end)
            record.client.socket_opened(out.sock, now=self.now)
        elif isinstance(out, SendBytes):
            link = self._socks.get((id(record), out.sock))
            if link is not None:
                self.to_server(link, out.data)
        elif isinstance(out, CloseSocket):
            link = self._socks.pop((id(record), out.sock), None)
            if link is not None:
                self.client_closed(link)
        else:
            record.events.append((self.now, out))

    def _server_action(self, action: object) -> None:
        if isinstance(action, EmitWebhook):
            self.webhooks.append(action)
            return
        assert isinstance(action, Send | Close | Abort | PauseReading)
        link = self._links.get(action.conn)
        if link is None:
            return
        if isinstance(action, Send):
            if link.open:
                link.end.on_data(action.data, self.now)
        elif isinstance(action, PauseReading):
            link.paused_until = self.now + action.seconds
        else:
            was_open = link.open
            link.open = False
            del self._links[action.conn]
            self.server.connection_lost(action.conn, self.now)
            if was_open:
                if isinstance(action, Close):
                    link.end.on_eof(self.now)
                else:
                    link.end.on_reset(self.now)

    # --- time -------------------------------------------------------------------------------

    def _next_time(self) -> float | None:
        times = [t for t in (self.server.next_deadline(),) if t is not None]
        times.extend(t for r in self._records if (t := r.client.next_deadline()) is not None)
        times.extend(
            link.paused_until for link in self._links.values() if link.paused_until is not None
        )
        return min(times) if times else None

    def run_until(self, t: float) -> None:
        """Advance the clock to ``t``, firing every deadline on the way."""
        self.pump()
        spins = 0
        while True:
            nt = self._next_time()
            if nt is None or nt > t:
                break
            spins = spins + 1 if nt <= self.now else 0
            if spins > 10_000:
                raise RuntimeError(f"no progress at t={self.now}: a deadline stays in the past")
            self.now = max(self.now, nt)
            for link in list(self._links.values()):
                if link.paused_until is not None and link.paused_until <= self.now:
                    link.paused_until = None
                    held, link.held = link.held, []
                    for data in held:
                        self.to_server(link, data)
            self.server.handle_timer(self.now)
            for record in self._records:
                record.client.handle_timer(now=self.now)
            self.pump()
        self.now = max(self.now, t)

    def run_for(self, seconds: float) -> None:
        """Advance the clock by ``seconds``."""
        self.run_until(self.now + seconds)

    def run_until_true(self, condition: Callable[[], bool], *, limit: float) -> bool:
        """Advance deadline by deadline until ``condition()`` holds or ``limit`` seconds pass."""
        end = self.now + limit
        self.pump()
        while not condition():
            nt = self._next_time()
            if nt is None or nt > end:
                self.now = end
                return condition()
            self.run_until(max(nt, self.now))
        return True


class WsPeer:
    """A raw client WebSocket on a :class:`MemoryNetwork`: send what you like, see what comes.

    Keep-alive requests are answered automatically unless ``auto_keepalive``
    is set to False.  ``messages`` holds every decoded server message.
    """

    def __init__(self, net: MemoryNetwork, resource: str, subprotocols: tuple[str, ...]) -> None:
        self.net = net
        self.resource = resource
        self.subprotocols = subprotocols
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.link: _Link | None = None
        self.accepted = False
        self.rejected_status: int | None = None
        self.subprotocol: str | None = None
        self.messages: list[m.Message | m.DecodeError] = []
        self.frames: list[str | bytes] = []
        self.close_code: int | None = None
        self.eof = False
        self.reset = False
        self.auto_keepalive = True

    def start(self) -> None:
        request = Request(
            host="localhost", target=self.resource, subprotocols=list(self.subprotocols)
        )
        self._write(self.ws.send(request))

    @property
    def closed(self) -> bool:
        """The connection is over (close frame, end of stream or reset)."""
        return self.eof or self.reset or self.ws.state is ConnectionState.CLOSED

    def of(self, kind: type[m.Message]) -> list[m.Message]:
        """Received messages of one type."""
        return [x for x in self.messages if isinstance(x, kind)]

    def _write(self, data: bytes) -> None:
        if self.link is not None and data:
            self.net.to_server(self.link, data)

    def send(
        self, msg: m.Message | Mapping[str, object] | str | bytes, *, binary: bool = False
    ) -> None:
        """Send a message (typed, a dict, or raw text/bytes) in a text or binary frame."""
        if isinstance(msg, Mapping):
            text = json.dumps(dict(msg))
        elif isinstance(msg, str):
            text = msg
        elif isinstance(msg, bytes):
            self._write(self.ws.send(BytesMessage(data=msg)))
            self.net.pump()
            return
        else:
            text = m.encode_message(msg).decode()
        event = BytesMessage(data=text.encode()) if binary else TextMessage(data=text)
        self._write(self.ws.send(event))
        self.net.pump()

    def send_raw(self, data: bytes) -> None:
        """Write bytes to the TCP stream as they are."""
        self._write(data)
        self.net.pump()

    def close(self, code: int = 1000) -> None:
        """Send a close frame."""
        if self.ws.state is ConnectionState.OPEN:
            self._write(self.ws.send(CloseConnection(code=code)))
            self.net.pump()

    def drop(self) -> None:
        """Drop the TCP connection without a close frame."""
        if self.link is not None:
            self.net.client_closed(self.link)
            self.net.pump()

    # --- _End -------------------------------------------------------------------------------

    def on_data(self, data: bytes, now: float) -> None:
        if self.ws.state is ConnectionState.CLOSED:
            return
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
                self.subprotocol = event.subprotocol
            elif isinstance(event, RejectConnection):
                self.rejected_status = event.status_code
            elif isinstance(event, TextMessage | BytesMessage):
                data_in = event.data if isinstance(event, TextMessage) else bytes(event.data)
                self.frames.append(data_in)
                msg = m.decode_message(data_in)
                self.messages.append(msg)
                if self.auto_keepalive and isinstance(msg, m.KeepAliveRequest):
                    reply = m.KeepAliveResponse(timestamp=msg.timestamp, sequence=msg.sequence)
                    self._write(self.ws.send(TextMessage(data=m.encode_message(reply).decode())))
            elif isinstance(event, Ping):
                self._write(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
                if self.ws.state is ConnectionState.REMOTE_CLOSING:
                    self._write(self.ws.send(event.response()))

    def on_eof(self, now: float) -> None:
        self.eof = True

    def on_reset(self, now: float) -> None:
        self.reset = True
