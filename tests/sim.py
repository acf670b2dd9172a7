"""A deterministic little network for Session tests: one Peer per socket.

Time only moves when a test says so; every output of the session is kept in
``log`` in order, and the server side answers handshakes automatically
unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from wire import Peer

from rtms_proto import Credentials, Output, Session, SessionConfig, StreamIdentity
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import CloseSocket, OpenSocket, SendBytes, SocketId, SocketRole

T = TypeVar("T")

SIGNALING_URL = "wss://rtms-sjc1.zoom.us/signaling"
MEDIA_URLS = {
    "audio": "wss://rtms-sjc1.zoom.us/audio",
    "video": "wss://rtms-sjc1.zoom.us/video",
    "deskshare": "wss://rtms-sjc1.zoom.us/deskshare",
    "transcript": "wss://rtms-sjc1.zoom.us/transcript",
    "chat": "wss://rtms-sjc1.zoom.us/chat",
    "all": "wss://rtms-sjc1.zoom.us/all",
}
CREDENTIALS = Credentials(client_id="client-id", client_secret="client-secret-value")
STREAM = StreamIdentity(instance_id="meeting-uuid==", rtms_stream_id="stream-1")


def make_config(**changes: object) -> SessionConfig:
    base: dict[str, object] = {
        "stream": STREAM,
        "server_url": SIGNALING_URL,
        "credentials": CREDENTIALS,
    }
    base.update(changes)
    return SessionConfig(**base)  # type: ignore[arg-type]


Responder = Callable[[SocketId, m.Message | m.DecodeError], m.Message | None]


class Sim:
    """Drives a Session over Peers; ``auto`` answers handshakes with success."""

    def __init__(
        self,
        config: SessionConfig | None = None,
        *,
        jitter: float = 0.5,
        auto: bool = True,
        media_urls: dict[str, str] | None = None,
    ) -> None:
        self.session = Session(config or make_config(), jitter=lambda: jitter)
        self.now = 0.0
        self.peers: dict[SocketId, Peer] = {}
        self.order: list[SocketId] = []
        self.open: set[SocketId] = set()
        self.closed: list[SocketId] = []
        self.log: list[Output] = []
        self.auto = auto
        self.media_urls = dict(MEDIA_URLS if media_urls is None else media_urls)
        self.hold_open: set[SocketRole] = set()
        self.answered: dict[SocketId, int] = {}

    # --- driving ---------------------------------------------------------------

    def start(self) -> list[Output]:
        self.session.start(now=self.now)
        return self.run()

    def run(self) -> list[Output]:
        """Drain and perform until quiet; return what was drained."""
        got: list[Output] = []
        while True:
            out = self.session.drain()
            if not out:
                return got
            got.extend(out)
            self.log.extend(out)
            for item in out:
                self._perform(item)

    def _perform(self, item: Output) -> None:
        if isinstance(item, OpenSocket):
            assert item.sock not in self.peers
            self.peers[item.sock] = Peer()
            self.order.append(item.sock)
            if item.sock.role not in self.hold_open:
                self.open.add(item.sock)
                self.session.socket_opened(item.sock, now=self.now)
        elif isinstance(item, SendBytes):
            assert item.sock in self.open, f"bytes for {item.sock} which is not open"
            peer = self.peers[item.sock]
            before = len(peer.received)
            back = peer.feed(item.data)
            if back:
                self.session.receive_data(item.sock, back, now=self.now)
            if self.auto:
                for msg in peer.received[before:]:
                    reply = self.auto_reply(item.sock, msg)
                    if reply is not None:
                        self.session.receive_data(item.sock, peer.send(reply), now=self.now)
        elif isinstance(item, CloseSocket):
            self.open.discard(item.sock)
            self.closed.append(item.sock)

    def auto_reply(self, sock: SocketId, msg: m.Message | m.DecodeError) -> m.Message | None:
        if isinstance(msg, m.SignalingHandshakeRequest):
            return m.SignalingHandshakeResponse(status_code=0, media_urls=self.media_urls)
        if isinstance(msg, m.MediaHandshakeRequest):
            return m.MediaHandshakeResponse(status_code=0, media_params=msg.media_params)
        return None

    def open_socket(self, sock: SocketId) -> list[Output]:
        self.open.add(sock)
        self.session.socket_opened(sock, now=self.now)
        return self.run()

    def send(
        self, sock: SocketId, msg: m.Message | dict[str, object] | str, *, binary: bool = False
    ) -> list[Output]:
        self.session.receive_data(sock, self.peers[sock].send(msg, binary=binary), now=self.now)
        return self.run()

    def eof(self, sock: SocketId) -> list[Output]:
        self.open.discard(sock)
        self.session.receive_eof(sock, now=self.now)
        return self.run()

    def fail(self, sock: SocketId, detail: str = "connection reset") -> list[Output]:
        self.open.discard(sock)
        self.session.socket_failed(sock, detail, now=self.now)
        return self.run()

    def advance_to(self, when: float) -> list[Output]:
        """Move the clock to ``when``, firing every deadline on the way."""
        got: list[Output] = []
        while True:
            deadline = self.session.next_deadline()
            if deadline is None or deadline > when:
                break
            assert deadline >= self.now, "deadline in the past"
            self.now = deadline
            self.session.handle_timer(now=self.now)
            got.extend(self.run())
        self.now = when
        return got

    def advance(self, seconds: float) -> list[Output]:
        return self.advance_to(self.now + seconds)

    # --- looking -----------------------------------------------------------------

    def socks(self, role: SocketRole) -> list[SocketId]:
        return [s for s in self.order if s.role is role]

    def latest(self, role: SocketRole) -> SocketId:
        return self.socks(role)[-1]

    def received(self, sock: SocketId) -> list[m.Message | m.DecodeError]:
        return self.peers[sock].received


def events_of(outputs: list[Output]) -> list[ev.Event]:
    return [o for o in outputs if not isinstance(o, (OpenSocket, SendBytes, CloseSocket))]


def only(outputs: list[Output], cls: type[T]) -> list[T]:
    """The outputs of one class, typed."""
    return [o for o in outputs if isinstance(o, cls)]


def kinds(outputs: list[Output]) -> list[str]:
    """A compact trace: event class names and actions with their socket."""
    trace = []
    for o in outputs:
        if isinstance(o, OpenSocket):
            trace.append(f"open {o.sock}")
        elif isinstance(o, CloseSocket):
            trace.append(f"close {o.sock}")
        elif isinstance(o, SendBytes):
            continue
        else:
            trace.append(type(o).__name__)
    return trace
