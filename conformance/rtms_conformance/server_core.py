"""The fake RTMS server's protocol core: pure, Sans-I/O, deterministic.

:class:`FakeRtmsServer` serves any number of streams.  A driver feeds it
connections by opaque ids (``connection_made``, ``receive_data``,
``connection_lost``), calls ``handle_timer`` at ``next_deadline()`` and
performs what ``drain()`` returns (:class:`Send`, :class:`Close`,
:class:`Abort`, :class:`PauseReading`, :class:`EmitWebhook`), in order.  Time
is the ``now`` the driver passes (monotonic seconds); nothing is random, and
wall-clock timestamps in messages are ``config.epoch_ms + round(t * 1000)``
where ``t`` is the time an action was *due*, so a run is reproducible however
late the driver's timer fires.

Each stream has a signaling URL ``/signaling/<stream id>`` and media URLs
``/media/<stream id>/<kind>`` (kind audio, video, deskshare, transcript, chat,
all) under ``config.base_url``; after a failover the prefixes become
``/signaling2``, ``/media2`` and so on.  What the server checks and answers
follows protocol.md §3-§10 and satisfies Zoom's own client (§13).

This module holds the public API, the driver inputs, WebSocket framing and
routing, and the scheduler; each other concern has its own module, combined
here: the handshakes (:mod:`.server_handshakes`), signaling commands
(:mod:`.server_signaling`), media generation (:mod:`.server_media`), the
meeting timeline and timed faults (:mod:`.server_timeline`), on top of the
shared output and stream-ending primitives (:mod:`.server_base`), the state
and due times (:mod:`.server_state`) and the URLs (:mod:`.server_routes`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from types import MappingProxyType

from rtms_proto import AudioParams, InvalidConfig
from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import MediaType, StopReason

from .meeting import expected_audio
from .server_handshakes import HandshakeMixin
from .server_routes import KIND_OF, parse_target, signaling_url
from .server_signaling import SignalingMixin
from .server_state import Agenda, Conn, ConnState, Due, Stream, Work, next_due
from .server_timeline import TimelineMixin
from .server_types import (
    ALL_SCOPES,
    Abort,
    Close,
    ConnId,
    EmitWebhook,
    PauseReading,
    Send,
    ServerAction,
    ServerConfig,
    StreamInfo,
    StreamSpec,
    StreamStatus,
    TraceEntry,
)
from .ws_server import Phase, WsClosed, WsFault, WsItem, WsMessage, WsOut, WsUpgrade

__all__ = [
    "ALL_SCOPES",
    "Abort",
    "Close",
    "ConnId",
    "EmitWebhook",
    "FakeRtmsServer",
    "PauseReading",
    "Send",
    "ServerAction",
    "ServerConfig",
    "StreamInfo",
    "StreamSpec",
    "StreamStatus",
    "TraceEntry",
]

# --- the server -------------------------------------------------------------------------------


class FakeRtmsServer(HandshakeMixin, SignalingMixin, TimelineMixin):
    """A faithful fake of Zoom's RTMS servers for any number of streams (see the module doc).

    An input costs the same however many other streams and connections there
    are: streams' next due times and connections' deadlines wait on agendas
    (heaps), and a stream's due time is recomputed only when something may
    have changed it (see :meth:`_touch`).
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._conns: dict[ConnId, Conn] = {}
        self._streams: dict[str, Stream] = {}
        self._due = Agenda[Stream]()
        self._timeouts = Agenda[Conn]()
        self._touched: dict[int, Stream] = {}
        self._conn_order = itertools.count()
        self._out: list[ServerAction] = []
        self.trace: list[TraceEntry] = []
        """Messages in and out (media data counted in ``StreamStatus.sent``), and notes."""

    # --- streams ----------------------------------------------------------------------------

    def add_stream(self, spec: StreamSpec, now: float) -> StreamInfo:
        """Start serving a stream at ``now``; its meeting and faults are timed from here."""
        if spec.rtms_stream_id in self._streams:
            raise InvalidConfig(f"stream {spec.rtms_stream_id!r} is already served")
        info = StreamInfo(
            rtms_stream_id=spec.rtms_stream_id,
            instance_id=spec.meeting_uuid,
            product=spec.product,
            rtms_session_id=spec.session_id,
            signaling_url=signaling_url(self.config.base_url, spec.rtms_stream_id, 0),
            started_at=now,
            media_epoch_ms=self._wall(now),
        )
        stream = Stream(spec, info, now, len(self._streams))
        stream.started_body = self._started_body(stream, now)
        self._streams[spec.rtms_stream_id] = stream
        self._touch(stream)
        self._run_due(now)
        return info

    def streams(self) -> tuple[StreamInfo, ...]:
        """Every stream ever added."""
        return tuple(s.info for s in self._streams.values())

    def rtms_started_body(self, stream: StreamInfo | str) -> bytes:
        """The current ``*.rtms_started`` webhook body (after a failover: the new one)."""
        return self._stream(stream).started_body

    def webhooks(self, stream: StreamInfo | str) -> tuple[tuple[str, bytes], ...]:
        """Every webhook the stream produced, ``(event, body)``, the first ``rtms_started`` too."""
        return tuple(self._stream(stream).webhooks)

    def status(self, stream: StreamInfo | str) -> StreamStatus:
        """A snapshot of the stream's state."""
        s = self._stream(stream)
        return StreamStatus(
            rtms_stream_id=s.info.rtms_stream_id,
            ended=s.ended,
            stop_reason=s.stop_reason,
            generation=s.generation,
            signaling_connected=s.signaling is not None,
            media_connected=frozenset(c.role for c in s.media.values() if c.role is not None),
            media_released=frozenset(
                c.role for c in s.media.values() if c.role is not None and c.released
            ),
            signaling_handshakes=s.handshakes.get(SocketRole.SIGNALING, 0),
            subscribed_events=frozenset(s.subscribed),
            audio_cursor_ms=s.audio_cursor,
            video_subscription=s.video_sub,
            sent=MappingProxyType(dict(s.sent)),
        )

    def end_stream(
        self,
        stream: StreamInfo | str,
        now: float,
        reason: StopReason | int = StopReason.MEETING_ENDED,
    ) -> None:
        """End a stream now, as Zoom does (state updates, close frames, ``rtms_stopped``)."""
        self._run_due(now)
        s = self._stream(stream)
        self._end_stream(s, now, reason)
        self._touch(s)

    def expected_audio(
        self,
        stream: StreamInfo | str,
        params: AudioParams,
        first_timestamp: int,
        end_timestamp: int,
        *,
        user_id: int | None = None,
    ) -> bytes:
        """The audio bytes this server sends for packet timestamps in
        ``[first_timestamp, end_timestamp)`` (mixed, or ``user_id``'s multi-stream packets)."""
        s = self._stream(stream)
        epoch = s.info.media_epoch_ms
        return expected_audio(
            s.script, params, first_timestamp - epoch, end_timestamp - epoch, user_id=user_id
        )

    def received(
        self, stream: StreamInfo | str, role: SocketRole | None = None
    ) -> list[m.Message | m.DecodeError]:
        """What clients sent on the stream's sockets (of ``role``), in order."""
        sid = self._stream(stream).info.rtms_stream_id
        return [
            e.message
            for e in self.trace
            if e.direction == "in"
            and e.rtms_stream_id == sid
            and e.message is not None
            and (role is None or e.role == role)
        ]

    # --- driver inputs ----------------------------------------------------------------------

    def connection_made(self, conn: ConnId, now: float) -> None:
        """A client connected (TCP and, for wss, TLS are up)."""
        if conn in self._conns:
            raise InvalidConfig(f"connection {conn!r} is already known")
        self._run_due(now)
        self._conns[conn] = Conn(conn, now, self.config, next(self._conn_order), self._timeouts)

    def receive_data(self, conn: ConnId, data: bytes, now: float) -> None:
        """Bytes from a client.  Never raises because of what they contain."""
        self._run_due(now)
        c = self._conns.get(conn)
        if c is None or c.state is ConnState.CLOSED:
            return
        self._handle_items(c, c.ws.feed(data), now)
        self._touch(c.stream)
        self._run_due(now)

    def connection_lost(self, conn: ConnId, now: float) -> None:
        """The TCP connection is gone (whoever closed it)."""
        self._run_due(now)
        c = self._conns.pop(conn, None)
        if c is None:
            return
        if c.stream is not None:
            c.stream.clients.pop(c.order, None)
        was_live = c.state is not ConnState.CLOSED
        c.state = ConnState.CLOSED
        c.ws.lost()
        if was_live:
            self._note(c, now, "connection lost")
            self._gone(c, now, StopReason.AWAIT_RECONNECTION_TIMEOUT)
        self._touch(c.stream)
        self._run_due(now)

    def handle_timer(self, now: float) -> None:
        """Do everything that is due; early calls do nothing."""
        self._run_due(now)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next, or None."""
        self._settle()
        times = [
            t
            for t in (
                self._due.first(lambda at, s: at == s.queued),
                self._timeouts.first(self._conn_current),
            )
            if t is not None
        ]
        return min(times) if times else None

    def drain(self) -> list[ServerAction]:
        """Everything to do since the last call, in order."""
        out, self._out = self._out, []
        return out

    # --- routing and lookup -----------------------------------------------------------------

    def _route(self, target: str) -> tuple[Stream, SocketRole, MediaType] | None:
        parsed = parse_target(target)
        if parsed is None:
            return None
        stream_id, generation, role, flag = parsed
        stream = self._streams.get(stream_id)
        if stream is None or generation != stream.generation:
            return None
        return stream, role, flag

    def _stream(self, stream: StreamInfo | str) -> Stream:
        sid = stream if isinstance(stream, str) else stream.rtms_stream_id
        found = self._streams.get(sid)
        if found is None:
            raise InvalidConfig(f"unknown stream {sid!r}")
        return found

    # --- WebSocket items --------------------------------------------------------------------

    def _handle_items(self, c: Conn, items: Iterable[WsItem], at: float) -> None:
        for item in items:
            if isinstance(item, WsOut):
                self._send_out(c, item)
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

    def _on_upgrade(self, c: Conn, item: WsUpgrade, at: float) -> None:
        route = self._route(item.target)
        if route is None:
            self._send_out(c, c.ws.reject(404))
            self._out.append(Close(conn=c.id))
            c.state = ConnState.CLOSED
            c.deadline = None
            self._note(c, at, f"no such path: {item.target[:200]}")
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
        c.state = ConnState.CLOSED
        c.deadline = None
        self._out.append(Close(conn=c.id))
        if was in (ConnState.HANDSHAKING, ConnState.OPEN):
            self._note(c, at, f"client sent a close frame (code {item.code})")
            self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)

    def _on_fault(self, c: Conn, item: WsFault, at: float) -> None:
        self._note(c, at, f"WebSocket fault: {item.detail}")
        if c.ws.phase is Phase.CLOSED:
            c.state = ConnState.CLOSED
            c.deadline = None
            self._out.append(Close(conn=c.id))
            return
        was_live = c.state in (ConnState.HANDSHAKING, ConnState.OPEN)
        self._close(c, at, item.code)
        if was_live:
            self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)

    # --- messages ---------------------------------------------------------------------------

    def _on_message(self, c: Conn, data: str | bytes, at: float) -> None:
        msg = m.decode_message(data)
        self._trace(c, "in", msg, at)
        s = c.stream
        assert s is not None
        if c.state is ConnState.HANDSHAKING:
            if c.role is SocketRole.SIGNALING:
                self._signaling_handshake(c, s, msg, at)
            else:
                self._media_handshake(c, s, msg, data, at)
            return
        if isinstance(msg, m.KeepAliveResponse):
            if msg.timestamp in c.ka_outstanding:
                c.ka_outstanding.clear()
            else:
                self._note(c, at, "keep-alive response matches no outstanding request")
        elif isinstance(msg, m.KeepAliveRequest):
            self._send(c, m.KeepAliveResponse(timestamp=msg.timestamp, sequence=msg.sequence), at)
        elif c is s.signaling and not s.ended:
            self._signaling_command(c, s, msg, at)
        elif not isinstance(msg, m.DecodeError):
            self._note(c, at, f"ignored msg_type {int(msg.msg_type)} on {c.role}")

    # --- timed work -------------------------------------------------------------------------

    def _next_due(self, s: Stream) -> Due | None:
        """The stream's earliest timed work (see :func:`~.server_state.next_due`)."""
        return next_due(s, self.config)

    def _touch(self, s: Stream | None) -> None:
        """``s`` may have changed: recompute its due time before the next scheduling pass.

        Every input touches the stream of its connection (the only stream an
        input can change), and the public methods touch the stream they act
        on; timed work reschedules its own stream in :meth:`_run_due`.
        """
        if s is not None:
            self._touched[s.order] = s

    def _reschedule(self, s: Stream) -> None:
        due = self._next_due(s)
        at = None if due is None else due[0]
        if at != s.queued:
            s.queued = at
            if at is not None:
                self._due.push(at, s)

    def _settle(self) -> None:
        """Put every touched stream's current due time on the agenda."""
        for s in self._touched.values():
            self._reschedule(s)
        self._touched.clear()
        if len(self._due) > 2 * len(self._streams) + 64:
            self._due.rebuild((s.queued, s) for s in self._streams.values() if s.queued is not None)
        if len(self._timeouts) > 2 * len(self._conns) + 64:
            self._timeouts.rebuild(
                (c.deadline, c) for c in self._conns.values() if c.deadline is not None
            )

    def _conn_current(self, at: float, c: Conn) -> bool:
        return at == c.deadline and self._conns.get(c.id) is c

    def _run_due(self, now: float) -> None:
        """Do every piece of timed work due at or before ``now``, earliest first per stream.

        Streams are served in the order they were added, each up to ``now``
        before the next, then connection deadlines in the order connections
        were made: what scanning every stream and connection would do, since
        one stream's work never changes another stream or its connections.
        """
        self._settle()
        streams: list[Stream] = []
        for at, s in self._due.pop_due(now):
            if at == s.queued:
                s.queued = None
                streams.append(s)
        streams.sort(key=lambda s: s.order)
        for s in streams:
            while True:
                due = self._next_due(s)
                if due is None or due[0] > now:
                    break
                self._do(s, due)
            self._reschedule(s)
        # Deadlines set from here on wait for the next pass, as they did when scanning.
        expired = {c.order: c for at, c in self._timeouts.pop_due(now) if self._conn_current(at, c)}
        for order in sorted(expired):
            self._time_out(expired[order])

    def _time_out(self, c: Conn) -> None:
        """``c``'s deadline has come: the close handshake or the handshake took too long."""
        at = c.deadline
        assert at is not None
        c.deadline = None
        if c.state is ConnState.CLOSING:
            c.state = ConnState.CLOSED
            self._out.append(Close(conn=c.id))
        elif c.state in (ConnState.UPGRADING, ConnState.HANDSHAKING):
            self._note(c, at, "no handshake in time")
            self._close(c, at)
        self._touch(c.stream)

    def _do(self, s: Stream, due: Due) -> None:
        at, kind, c, key, ms = due
        if kind is Work.SILENCE_END:
            assert c is not None
            c.silent_until = None
            c.ka_last = max(c.ka_last, at)
            rel = s.rel_ms(at)
            if c.params is not None and c.params.video is not None:
                c.video_next = max(c.video_next, math.ceil(rel * c.params.video.fps / 1000))
            if c.params is not None and c.params.deskshare is not None:
                c.share_next = max(c.share_next, math.ceil(rel * c.params.deskshare.fps / 1000))
            self._note(c, at, "silence ends")
        elif kind is Work.AUDIO:
            assert c is not None
            self._send_audio(s, c, at)
        elif kind is Work.VIDEO or kind is Work.SHARE:
            assert c is not None
            self._send_frame(s, c, at, share=kind is Work.SHARE)
        elif kind is Work.KEEPALIVE:
            assert c is not None
            self._keepalive(s, c, at)
        elif kind is Work.SCRIPT:
            events = s.script.events_between(s.script_ms, ms)
            s.script_ms = ms
            for scripted in events:
                if s.ended:
                    break
                self._apply(s, scripted.event, at)
        elif kind is Work.FAULT:
            fault = s.timed[s.timed_next]
            s.timed_next += 1
            self._apply_fault(s, fault, at)
        else:
            self._expire(s, at, key)

    def _keepalive(self, s: Stream, c: Conn, at: float) -> None:
        if len(c.ka_outstanding) >= self.config.keepalive_misses:
            self._abort(c, at, f"{len(c.ka_outstanding)} keep-alives unanswered")
            self._gone(c, at, StopReason.KEEP_ALIVE_TIMEOUT)
            return
        c.ka_seq += 1
        stamp = self._wall(at)
        c.ka_outstanding.append(stamp)
        c.ka_last = at
        self._send(c, m.KeepAliveRequest(timestamp=stamp, sequence=c.ka_seq), at)

    def _expire(self, s: Stream, at: float, key: MediaType | None) -> None:
        if key is not None:
            reason = s.media_lost[key][1]
            self._note(None, at, f"{KIND_OF[key]} was not reconnected in time", s)
        elif s.sig_lost is not None:
            reason = s.sig_lost[1]
            self._note(None, at, "signaling was not reconnected in time", s)
        else:
            reason = StopReason.CONNECTION_TIMEOUT
            self._note(None, at, "no signaling connection in time", s)
        self._end_stream(s, at, reason)
