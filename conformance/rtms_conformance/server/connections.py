"""The fake server's sockets: bytes in, WebSocket items out, each routed to its part.

:class:`Connections` keeps the live connections by the driver's ids, runs the
WebSocket layer (:mod:`.ws_server`) on their bytes, routes an upgrade to the
stream and socket role its path names (:mod:`.routes`), and hands each
message to the part it concerns: the handshake while a socket is not open,
then keep-alives, then the stream's signaling commands.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping

from rtms_proto import InvalidConfig
from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import MediaType, StopReason

from .endings import Endings
from .handshakes import Handshakes
from .liveness import Liveness
from .output import Output
from .routes import parse_target
from .schedule import Agenda
from .signaling import Signaling
from .state import Conn, ConnState, Stream
from .types import ConnId, ServerConfig
from .ws_server import Phase, WsClosed, WsFault, WsItem, WsMessage, WsOut, WsUpgrade

__all__ = ["Connections"]


class Connections:
    """What arrives on the connections.

    ``conns`` is the server's registry of live connections (by the driver's
    ids, in the order they were made), kept here; ``streams`` its registry of
    streams, read for routing.  New connections schedule their deadlines on
    ``timeouts``.  Each input returns the connection it concerned (its stream
    is the only one the input may have changed), or None when it concerned none.
    """

    def __init__(
        self,
        config: ServerConfig,
        conns: dict[ConnId, Conn],
        streams: Mapping[str, Stream],
        timeouts: Agenda[Conn],
        *,
        output: Output,
        endings: Endings,
        handshakes: Handshakes,
        liveness: Liveness,
        signaling: Signaling,
        renew: Callable[[Stream, float], Stream] | None = None,
    ) -> None:
        self._config = config
        self._conns = conns
        self._streams = streams
        self._timeouts = timeouts
        self._output = output
        self._endings = endings
        self._handshakes = handshakes
        self._liveness = liveness
        self._signaling = signaling
        self._renew = renew
        self._order = itertools.count()

    # --- driver inputs ----------------------------------------------------------------------

    def made(self, conn: ConnId, now: float) -> None:
        """A client connected (TCP and, for wss, TLS are up) under a new id."""
        if conn in self._conns:
            raise InvalidConfig(f"connection {conn!r} is already known")
        self._conns[conn] = Conn(conn, now, self._config, next(self._order), self._timeouts)

    def receive(self, conn: ConnId, data: bytes, now: float) -> Conn | None:
        """Bytes from a client (ignored once it is closed).  Never raises because of what
        they contain."""
        c = self._conns.get(conn)
        if c is None or c.state is ConnState.CLOSED:
            return None
        self._handle_items(c, c.ws.feed(data), now)
        return c

    def lost(self, conn: ConnId, now: float) -> Conn | None:
        """The TCP connection is gone (whoever closed it)."""
        c = self._conns.pop(conn, None)
        if c is None:
            return None
        if c.stream is not None:
            c.stream.clients.pop(c.order, None)
        was_live = c.state is not ConnState.CLOSED
        c.state = ConnState.CLOSED
        c.ws.lost()
        if was_live:
            self._output.note(c, now, "connection lost")
            self._endings.gone(c, now, StopReason.AWAIT_RECONNECTION_TIMEOUT)
        return c

    # --- WebSocket items --------------------------------------------------------------------

    def _handle_items(self, c: Conn, items: Iterable[WsItem], at: float) -> None:
        for item in items:
            if isinstance(item, WsOut):
                self._output.send_out(c, item)
            elif isinstance(item, WsUpgrade):
                self._on_upgrade(c, item, at)
            elif isinstance(item, WsMessage):
                if c.state in (ConnState.HANDSHAKING, ConnState.OPEN):
                    self._on_message(c, item.data, at)
            elif isinstance(item, WsClosed):
                self._on_close_frame(c, item, at)
            else:
                assert isinstance(item, WsFault)
                self._on_fault(c, item, at)

    def _route(self, target: str, at: float) -> tuple[Stream, SocketRole, MediaType] | None:
        parsed = parse_target(target)
        if parsed is None:
            return None
        stream_id, generation, role, flag = parsed
        stream = self._streams.get(stream_id)
        if (
            stream is not None
            and self._renew is not None
            and role is SocketRole.SIGNALING
            and not stream.clients
            and (stream.ended or not stream.ever_connected)
        ):
            stream = self._renew(stream, at)
        if stream is None or generation != stream.generation:
            return None
        return stream, role, flag

    def _on_upgrade(self, c: Conn, item: WsUpgrade, at: float) -> None:
        route = self._route(item.target, at)
        if route is None:
            self._output.send_out(c, c.ws.reject(404))
            self._output.close_now(c)
            self._output.note(c, at, f"no such path: {item.target[:200]}")
            return
        stream, role, flag = route
        c.stream, c.role, c.url_type = stream, role, flag
        stream.clients[c.order] = c
        c.state = ConnState.HANDSHAKING
        # Zoom's client offers the subprotocol "websocket"; echo what was offered.
        sub = item.subprotocols[0] if item.subprotocols else None
        self._handle_items(c, c.ws.accept(sub), at)

    def _on_close_frame(self, c: Conn, item: WsClosed, at: float) -> None:
        was = c.state
        self._output.close_now(c)
        if was in (ConnState.HANDSHAKING, ConnState.OPEN):
            self._output.note(c, at, f"client sent a close frame (code {item.code})")
            self._endings.gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)

    def _on_fault(self, c: Conn, item: WsFault, at: float) -> None:
        self._output.note(c, at, f"WebSocket fault: {item.detail}")
        if c.ws.phase is Phase.CLOSED:
            self._output.close_now(c)
            return
        was_live = c.state in (ConnState.HANDSHAKING, ConnState.OPEN)
        self._output.close(c, at, item.code)
        if was_live:
            self._endings.gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)

    # --- messages ---------------------------------------------------------------------------

    def _on_message(self, c: Conn, data: str | bytes, at: float) -> None:
        msg = m.decode_message(data)
        self._output.message(c, "in", msg, at)
        s = c.stream
        assert s is not None
        if c.state is ConnState.HANDSHAKING:
            if c.role is SocketRole.SIGNALING:
                self._handshakes.signaling(c, s, msg, at)
            else:
                self._handshakes.media(c, s, msg, data, at)
            return
        if self._liveness.on_message(c, msg, at):
            return
        if c is s.signaling and not s.ended:
            self._signaling.command(c, s, msg, at)
        elif not isinstance(msg, m.DecodeError):
            self._output.note(c, at, f"ignored msg_type {int(msg.msg_type)} on {c.role}")
