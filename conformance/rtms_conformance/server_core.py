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
"""

from __future__ import annotations

import enum
import heapq
import itertools
import json
import math
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import (
    DataOption,
    EventType,
    MediaType,
    SessionState,
    StatusCode,
    StopReason,
    StreamState,
)
from rtms_proto.errors import InvalidConfig
from rtms_proto.params import AudioParams, DeskshareParams, MediaParams, VideoParams

from . import faults as f
from . import timeline as tl
from .handshake import (
    Rejection,
    check_identity,
    confirm_media,
    decode_rejection,
    wire_status,
)
from .meeting import MeetingScript, audio_packets, expected_audio
from .payloads import SLOT_MS, video_frame
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
from .webhooks import rtms_interrupted_body, rtms_started_body, rtms_stopped_body
from .ws_server import (
    Phase,
    WsClosed,
    WsFault,
    WsItem,
    WsMessage,
    WsOut,
    WsServer,
    WsUpgrade,
)

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

_KINDS: dict[str, tuple[MediaType, SocketRole]] = {
    "audio": (MediaType.AUDIO, SocketRole.AUDIO),
    "video": (MediaType.VIDEO, SocketRole.VIDEO),
    "deskshare": (MediaType.DESKSHARE, SocketRole.DESKSHARE),
    "transcript": (MediaType.TRANSCRIPT, SocketRole.TRANSCRIPT),
    "chat": (MediaType.CHAT, SocketRole.CHAT),
    "all": (MediaType.ALL, SocketRole.ALL),
}
_KIND_OF = {flag: kind for kind, (flag, _) in _KINDS.items()}
_PATH = re.compile(r"/(signaling|media)([2-9]|[1-9][0-9]+)?/([^/]+)(?:/([a-z]+))?/?")

DUPLICATE_SIGNAL_REASON = "duplicate signal request"
_EVENT_TYPES = frozenset(int(e) for e in EventType if e != EventType.UNDEFINED)


# --- internal state ---------------------------------------------------------------------------

_T = TypeVar("_T")


class _Agenda(Generic[_T]):
    """Times at which items may have work due, earliest first.

    An entry is never updated in place: when an item's time changes a new entry
    is pushed, and whoever takes entries out checks each against the item's
    current time, so stale ones cost a pop instead of a search.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _T]] = []
        self._count = itertools.count()  # ties never compare the items

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, at: float, item: _T) -> None:
        heapq.heappush(self._heap, (at, next(self._count), item))

    def pop_due(self, now: float) -> list[tuple[float, _T]]:
        """Take out every entry at or before ``now``, current or not."""
        heap, out = self._heap, []
        while heap and heap[0][0] <= now:
            at, _, item = heapq.heappop(heap)
            out.append((at, item))
        return out

    def first(self, current: Callable[[float, _T], bool]) -> float | None:
        """The earliest time that is still ``current``; stale entries before it are dropped."""
        heap = self._heap
        while heap and not current(heap[0][0], heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def rebuild(self, entries: Iterable[tuple[float, _T]]) -> None:
        """Start again from the current times only (stale entries would pile up otherwise)."""
        self._heap = [(at, next(self._count), item) for at, item in entries]
        heapq.heapify(self._heap)


class _CS(enum.Enum):
    UPGRADING = "upgrading"
    HANDSHAKING = "handshaking"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class _Conn:
    """One socket as the server sees it."""

    def __init__(
        self,
        conn_id: ConnId,
        now: float,
        config: ServerConfig,
        order: int,
        timeouts: _Agenda[_Conn],
    ) -> None:
        self.id = conn_id
        self.order = order
        """Rank among all connections ever made: the order deadlines are handled in."""
        self._timeouts = timeouts
        self._deadline: float | None = None
        self.ws = WsServer(max_message_size=config.max_message_size)
        self.state = _CS.UPGRADING
        self.deadline = now + config.handshake_timeout
        self.stream: _Stream | None = None
        self.role: SocketRole | None = None
        self.url_type = MediaType.UNDEFINED
        self.carried = MediaType.UNDEFINED
        self.params: MediaParams | None = None
        self.released = False
        self.ka_last = now
        self.ka_seq = 0
        self.ka_outstanding: list[int] = []
        self.last_send = now
        self.silent_until: float | None = None
        self.video_next = 0
        self.video_since_idr = 0
        self.share_next = 0
        self.share_since_idr = 0
        self.idr_count = 0

    @property
    def deadline(self) -> float | None:
        """When the handshake or the close handshake times out."""
        return self._deadline

    @deadline.setter
    def deadline(self, at: float | None) -> None:
        # Every assignment is scheduled, so no code path can forget to.
        self._deadline = at
        if at is not None:
            self._timeouts.push(at, self)


class _Stream:
    """One stream's state."""

    def __init__(self, spec: StreamSpec, info: StreamInfo, start: float, order: int) -> None:
        self.spec = spec
        self.info = info
        self.start = start
        self.order = order
        """Rank among the streams: the order streams due at once are served in."""
        self.queued: float | None = None
        """The due time last put on the agenda (None: nothing due, or being served)."""
        self.clients: dict[int, _Conn] = {}
        """Connections routed to this stream and not lost, by ``_Conn.order``."""
        self.script = MeetingScript(spec.meeting, spec.timeline)
        self.ended = False
        self.stop_reason: StopReason | int | None = None
        self.generation = 0
        self.signaling: _Conn | None = None
        self.media: dict[MediaType, _Conn] = {}
        self.handshakes: dict[SocketRole, int] = {}
        self.ever_connected = False
        self.sig_lost: tuple[float, StopReason] | None = None
        self.media_lost: dict[MediaType, tuple[float, StopReason]] = {}
        self.buffer_data: bool | None = None
        self.audio_cursor: int | None = None
        self.subscribed: set[int] = set()
        self.roster: dict[int, str] = {}
        self.video_on: set[int] = set()
        self.sharer: int | None = None
        self.speaker: int | None = None
        self.paused = False
        self.video_sub: int | None = None
        self.script_ms = -1
        self.timed = sorted(
            (x for x in spec.faults if isinstance(x, f.TimedFault)), key=lambda x: x.at
        )
        self.timed_next = 0
        self.binary = False
        self.session_started = False
        self.active_sent = False
        self.chat_count = 0
        self.started_body = b""
        self.webhooks: list[tuple[str, bytes]] = []
        self.sent: dict[int, int] = {}

    def rel_ms(self, at: float) -> int:
        """Milliseconds from the stream start to ``at`` (rounded down, never negative)."""
        return max(0, math.floor((at - self.start) * 1000 + 1e-6))

    def conns(self) -> Iterator[_Conn]:
        if self.signaling is not None:
            yield self.signaling
        yield from self.media.values()

    def clients_in_order(self) -> list[_Conn]:
        """Routed, not lost connections in the order they were made (``_conns`` order)."""
        return [self.clients[k] for k in sorted(self.clients)]


class _Item(enum.IntEnum):
    """Kinds of timed work, in the order they run when due at the same instant."""

    SILENCE_END = 0
    AUDIO = 1
    VIDEO = 2
    SHARE = 3
    KEEPALIVE = 4
    SCRIPT = 5
    FAULT = 6
    EXPIRY = 7


_Due = tuple[float, _Item, _Conn | None, MediaType | None, int]
"""When, what, on which socket, for which lost media type, at which script millisecond."""


# --- the server -------------------------------------------------------------------------------


class FakeRtmsServer:
    """A faithful fake of Zoom's RTMS servers for any number of streams (see the module doc).

    An input costs the same however many other streams and connections there
    are: streams' next due times and connections' deadlines wait on agendas
    (heaps), and a stream's due time is recomputed only when something may
    have changed it (see :meth:`_touch`).
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._conns: dict[ConnId, _Conn] = {}
        self._streams: dict[str, _Stream] = {}
        self._due = _Agenda[_Stream]()
        self._timeouts = _Agenda[_Conn]()
        self._touched: dict[int, _Stream] = {}
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
            signaling_url=self._signaling_url(spec.rtms_stream_id, 0),
            started_at=now,
            media_epoch_ms=self._wall(now),
        )
        stream = _Stream(spec, info, now, len(self._streams))
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
        self._conns[conn] = _Conn(conn, now, self.config, next(self._conn_order), self._timeouts)

    def receive_data(self, conn: ConnId, data: bytes, now: float) -> None:
        """Bytes from a client.  Never raises because of what they contain."""
        self._run_due(now)
        c = self._conns.get(conn)
        if c is None or c.state is _CS.CLOSED:
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
        was_live = c.state is not _CS.CLOSED
        c.state = _CS.CLOSED
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

    # --- URLs -------------------------------------------------------------------------------

    def _prefix(self, name: str, generation: int) -> str:
        return f"{name}{generation + 1}" if generation else name

    def _signaling_url(self, stream_id: str, generation: int) -> str:
        sid = urllib.parse.quote(stream_id, safe="")
        return f"{self.config.base_url}/{self._prefix('signaling', generation)}/{sid}"

    def _media_urls(self, s: _Stream) -> dict[str, str]:
        sid = urllib.parse.quote(s.info.rtms_stream_id, safe="")
        base = f"{self.config.base_url}/{self._prefix('media', s.generation)}/{sid}"
        urls = {
            kind: f"{base}/{kind}"
            for kind, (flag, _) in _KINDS.items()
            if flag != MediaType.ALL and flag & s.spec.scopes
        }
        if s.spec.offer_all:
            urls["all"] = f"{base}/all"
        return urls

    def _route(self, target: str) -> tuple[_Stream, SocketRole, MediaType] | None:
        path = target.split("?", 1)[0]
        match = _PATH.fullmatch(path)
        if match is None:
            return None
        name, number, sid, kind = match.groups()
        stream = self._streams.get(urllib.parse.unquote(sid))
        generation = int(number) - 1 if number else 0
        if stream is None or generation != stream.generation:
            return None
        if name == "signaling":
            return (stream, SocketRole.SIGNALING, MediaType.UNDEFINED) if kind is None else None
        if kind not in _KINDS:
            return None
        flag, role = _KINDS[kind]
        return stream, role, flag

    # --- helpers ----------------------------------------------------------------------------

    def _stream(self, stream: StreamInfo | str) -> _Stream:
        sid = stream if isinstance(stream, str) else stream.rtms_stream_id
        found = self._streams.get(sid)
        if found is None:
            raise InvalidConfig(f"unknown stream {sid!r}")
        return found

    def _wall(self, at: float) -> int:
        return self.config.epoch_ms + round(at * 1000)

    def _note(self, c: _Conn | None, at: float, note: str, stream: _Stream | None = None) -> None:
        s = stream if stream is not None else (c.stream if c is not None else None)
        self.trace.append(
            TraceEntry(
                at=at,
                rtms_stream_id=None if s is None else s.info.rtms_stream_id,
                conn=None if c is None else c.id,
                role=None if c is None else c.role,
                direction="note",
                note=note,
            )
        )

    def _emit(self, s: _Stream, body: bytes) -> None:
        event = json.loads(body)["event"]
        s.webhooks.append((event, body))
        self._out.append(EmitWebhook(rtms_stream_id=s.info.rtms_stream_id, event=event, body=body))

    def _started_body(self, s: _Stream, at: float) -> bytes:
        body = rtms_started_body(
            product=s.spec.product,
            instance_id=s.spec.meeting_uuid,
            rtms_stream_id=s.info.rtms_stream_id,
            server_url=self._signaling_url(s.info.rtms_stream_id, s.generation),
            operator_id=s.spec.operator_id,
            event_ts=self._wall(at),
        )
        s.webhooks.append((json.loads(body)["event"], body))
        return body

    def _send_out(self, c: _Conn, out: WsOut | None) -> None:
        if out is not None and out.data:
            self._out.append(Send(conn=c.id, data=out.data))

    def _silent(self, c: _Conn, at: float) -> bool:
        return c.silent_until is not None and at < c.silent_until

    def _send(self, c: _Conn, msg: m.Message, at: float) -> None:
        """Encode and frame one message (text, or binary when the stream says so)."""
        s = c.stream
        if c.state not in (_CS.HANDSHAKING, _CS.OPEN) or self._silent(c, at):
            return
        data = m.encode_message(msg)
        binary = s is not None and s.binary
        self._send_out(c, c.ws.message(data if binary else data.decode("ascii")))
        c.last_send = max(c.last_send, at)
        if s is not None:
            s.sent[int(msg.msg_type)] = s.sent.get(int(msg.msg_type), 0) + 1
        if not isinstance(msg, m.AudioData | m.VideoData | m.DeskshareData):
            self.trace.append(
                TraceEntry(
                    at=at,
                    rtms_stream_id=None if s is None else s.info.rtms_stream_id,
                    conn=c.id,
                    role=c.role,
                    direction="out",
                    message=msg,
                )
            )

    def _send_raw(self, c: _Conn, data: str | bytes, at: float) -> None:
        if c.state is not _CS.OPEN:
            return
        self._send_out(c, c.ws.message(data))
        c.last_send = max(c.last_send, at)

    def _close(self, c: _Conn, at: float, code: int = 1000, reason: str = "") -> None:
        """Start a close handshake (or just close TCP before the upgrade)."""
        if c.state in (_CS.CLOSING, _CS.CLOSED):
            return
        out = c.ws.close(code, reason)
        if out is None:
            c.state = _CS.CLOSED
            self._out.append(Close(conn=c.id))
            return
        self._send_out(c, out)
        c.state = _CS.CLOSING
        c.deadline = at + self.config.close_timeout

    def _abort(self, c: _Conn, at: float, why: str) -> None:
        if c.state is _CS.CLOSED:
            return
        c.state = _CS.CLOSED
        c.ws.lost()
        c.deadline = None
        self._out.append(Abort(conn=c.id))
        self._note(c, at, f"dropped: {why}")

    # --- WebSocket items --------------------------------------------------------------------

    def _handle_items(self, c: _Conn, items: Iterable[WsItem], at: float) -> None:
        for item in items:
            if isinstance(item, WsOut):
                self._send_out(c, item)
            elif isinstance(item, WsUpgrade):
                self._on_upgrade(c, item, at)
            elif isinstance(item, WsMessage):
                if c.state in (_CS.HANDSHAKING, _CS.OPEN):
                    self._on_message(c, item.data, at)
            elif isinstance(item, WsClosed):
                self._on_close_frame(c, item, at)
            else:
                assert isinstance(item, WsFault)
                self._on_fault(c, item, at)

    def _on_upgrade(self, c: _Conn, item: WsUpgrade, at: float) -> None:
        route = self._route(item.target)
        if route is None:
            self._send_out(c, c.ws.reject(404))
            self._out.append(Close(conn=c.id))
            c.state = _CS.CLOSED
            c.deadline = None
            self._note(c, at, f"no such path: {item.target[:200]}")
            return
        stream, role, flag = route
        c.stream, c.role, c.url_type = stream, role, flag
        stream.clients[c.order] = c
        c.state = _CS.HANDSHAKING
        # Zoom's client offers the subprotocol "websocket"; echo what was offered.
        sub = item.subprotocols[0] if item.subprotocols else None
        self._handle_items(c, c.ws.accept(sub), at)

    def _on_close_frame(self, c: _Conn, item: WsClosed, at: float) -> None:
        was = c.state
        c.state = _CS.CLOSED
        c.deadline = None
        self._out.append(Close(conn=c.id))
        if was in (_CS.HANDSHAKING, _CS.OPEN):
            self._note(c, at, f"client sent a close frame (code {item.code})")
            self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)

    def _on_fault(self, c: _Conn, item: WsFault, at: float) -> None:
        self._note(c, at, f"WebSocket fault: {item.detail}")
        if c.ws.phase is Phase.CLOSED:
            c.state = _CS.CLOSED
            c.deadline = None
            self._out.append(Close(conn=c.id))
            return
        was_live = c.state in (_CS.HANDSHAKING, _CS.OPEN)
        self._close(c, at, item.code)
        if was_live:
            self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)

    # --- messages ---------------------------------------------------------------------------

    def _trace_in(self, c: _Conn, msg: m.Message | m.DecodeError, at: float) -> None:
        s = c.stream
        self.trace.append(
            TraceEntry(
                at=at,
                rtms_stream_id=None if s is None else s.info.rtms_stream_id,
                conn=c.id,
                role=c.role,
                direction="in",
                message=msg,
            )
        )

    def _on_message(self, c: _Conn, data: str | bytes, at: float) -> None:
        msg = m.decode_message(data)
        self._trace_in(c, msg, at)
        s = c.stream
        assert s is not None
        if c.state is _CS.HANDSHAKING:
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

    # --- handshakes -------------------------------------------------------------------------

    def _occurrence_fault(self, s: _Stream, role: SocketRole, n: int) -> f.Fault | None:
        """The occurrence fault that decides handshake number ``n`` on ``role`` sockets."""
        for fault in s.spec.faults:
            if isinstance(fault, f.RejectHandshake):
                hit = fault.role is role and fault.nth <= n < fault.nth + fault.count
            elif isinstance(fault, f.IgnoreHandshake):
                hit = fault.role is role and fault.nth == n
            elif isinstance(fault, f.DuplicateSignal):
                hit = role is SocketRole.SIGNALING and n <= fault.count
            else:
                hit = False
            if hit:
                return fault
        return None

    def _reject(
        self, c: _Conn, at: float, rejection: Rejection | tuple[int, str], *, signaling: bool
    ) -> None:
        if isinstance(rejection, Rejection):
            status, reason = wire_status(rejection, self.config.status_table), rejection.reason
        else:
            status, reason = rejection
        reply: m.Message
        if signaling:
            reply = m.SignalingHandshakeResponse(status_code=status, reason=reason)
        else:
            reply = m.MediaHandshakeResponse(status_code=status, reason=reason)
        self._send(c, reply, at)
        self._close(c, at)

    def _handshake_fault(
        self, c: _Conn, s: _Stream, role: SocketRole, at: float, *, signaling: bool
    ) -> bool:
        """Count the handshake; apply an occurrence fault.  True when it decided the answer."""
        n = s.handshakes[role] = s.handshakes.get(role, 0) + 1
        fault = self._occurrence_fault(s, role, n)
        if fault is None:
            return False
        self._note(c, at, f"fault on handshake {n}: {type(fault).__name__}")
        if isinstance(fault, f.IgnoreHandshake):
            return True
        if isinstance(fault, f.RejectHandshake):
            self._reject(c, at, (fault.status, fault.reason), signaling=signaling)
        else:
            dup = Rejection(StatusCode.DUPLICATE_SIGNAL_REQUEST, DUPLICATE_SIGNAL_REASON)
            self._reject(c, at, dup, signaling=True)
        return True

    def _identity(
        self, s: _Stream, msg: m.SignalingHandshakeRequest | m.MediaHandshakeRequest
    ) -> Rejection | None:
        rejection = check_identity(
            msg,
            instance_id=s.spec.meeting_uuid,
            rtms_stream_id=s.info.rtms_stream_id,
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
        )
        if rejection is None and s.ended:
            return Rejection(StatusCode.INVALID_RTMS_STREAM_ID, "the stream has ended")
        return rejection

    def _signaling_handshake(
        self, c: _Conn, s: _Stream, msg: m.Message | m.DecodeError, at: float
    ) -> None:
        if isinstance(msg, m.DecodeError) and msg.msg_type in (None, 1):
            if not self._handshake_fault(c, s, SocketRole.SIGNALING, at, signaling=True):
                self._reject(c, at, decode_rejection(msg), signaling=True)
            return
        if not isinstance(msg, m.SignalingHandshakeRequest):
            self._reject(
                c,
                at,
                Rejection(StatusCode.INVALID_MESSAGE_TYPE, "expected SIGNALING_HAND_SHAKE_REQ"),
                signaling=True,
            )
            return
        if self._handshake_fault(c, s, SocketRole.SIGNALING, at, signaling=True):
            return
        rejection = self._identity(s, msg)
        if rejection is None and s.signaling is not None:
            rejection = Rejection(StatusCode.DUPLICATE_SIGNAL_REQUEST, DUPLICATE_SIGNAL_REASON)
        if rejection is not None:
            self._reject(c, at, rejection, signaling=True)
            return
        c.state = _CS.OPEN
        c.deadline = None
        c.ka_last = at
        s.signaling = c
        s.sig_lost = None
        s.subscribed = set()
        if not s.ever_connected:
            s.ever_connected = True
            s.buffer_data = True if msg.buffer_data is None else msg.buffer_data
        self._send(
            c,
            m.SignalingHandshakeResponse(
                status_code=0,
                reason="",
                media_urls=self._media_urls(s),
                datacenter_region=self.config.datacenter_region,
            ),
            at,
        )
        first = s.info.media_epoch_ms if s.buffer_data else self._wall(at)
        self._send(
            c, m.EventUpdate(event_type=EventType.FIRST_PACKET_TIMESTAMP, timestamp=first), at
        )
        if not s.session_started:
            s.session_started = True
            self._send(
                c,
                m.SessionStateUpdate(
                    state=SessionState.STARTED,
                    timestamp=self._wall(at),
                    rtms_session_id=s.info.rtms_session_id,
                ),
                at,
            )

    def _media_handshake(
        self,
        c: _Conn,
        s: _Stream,
        msg: m.Message | m.DecodeError,
        data: str | bytes,
        at: float,
    ) -> None:
        assert c.role is not None
        if isinstance(msg, m.DecodeError) and msg.msg_type in (None, 3):
            if not self._handshake_fault(c, s, c.role, at, signaling=False):
                self._reject(c, at, decode_rejection(msg), signaling=False)
            return
        if not isinstance(msg, m.MediaHandshakeRequest):
            self._reject(
                c,
                at,
                Rejection(StatusCode.INVALID_MESSAGE_TYPE, "expected DATA_HAND_SHAKE_REQ"),
                signaling=False,
            )
            return
        if self._handshake_fault(c, s, c.role, at, signaling=False):
            return
        rejection = self._identity(s, msg)
        if rejection is None and s.signaling is None:
            rejection = Rejection(
                StatusCode.INTERNAL_EXCEPTION, "no signaling connection for this stream"
            )
        if rejection is not None:
            self._reject(c, at, rejection, signaling=False)
            return
        raw: Any = json.loads(data)
        confirmed = confirm_media(msg, raw, url_type=c.url_type, scopes=s.spec.scopes)
        if isinstance(confirmed, Rejection):
            self._reject(c, at, confirmed, signaling=False)
            return
        duplicate = self._duplicate(s, c.url_type)
        if duplicate is not None:
            self._reject(c, at, duplicate, signaling=False)
            return
        carried, params = confirmed
        c.state = _CS.OPEN
        c.deadline = None
        c.ka_last = at
        c.carried, c.params = carried, params
        s.media[c.url_type] = c
        if c.url_type == MediaType.ALL:
            s.media_lost.clear()
        else:
            s.media_lost.pop(c.url_type, None)
        self._send(
            c,
            m.MediaHandshakeResponse(
                status_code=0, reason="", media_params=params, payload_encrypted=False
            ),
            at,
        )

    def _duplicate(self, s: _Stream, key: MediaType) -> Rejection | None:
        if MediaType.ALL in s.media and key != MediaType.ALL:
            return Rejection(
                StatusCode.MEDIA_DATA_ALL_CONNECTION_EXIST, "an all-media connection exists"
            )
        if key in s.media or (key == MediaType.ALL and s.media):
            return Rejection(
                StatusCode.DUPLICATE_MEDIA_DATA_CONNECTION, "duplicate media data connection"
            )
        return None

    # --- signaling commands -----------------------------------------------------------------

    def _signaling_command(
        self, c: _Conn, s: _Stream, msg: m.Message | m.DecodeError, at: float
    ) -> None:
        if isinstance(msg, m.DecodeError):
            self._note(c, at, f"undecodable message: {msg}")
        elif isinstance(msg, m.ClientReady):
            if msg.rtms_stream_id != s.info.rtms_stream_id:
                self._note(c, at, "CLIENT_READY_ACK names another rtms_stream_id")
            self._release(s, at)
        elif isinstance(msg, m.EventSubscription):
            self._subscribe(c, s, msg, at)
        elif isinstance(msg, m.SessionStateRequest):
            known = msg.rtms_session_id == s.info.rtms_session_id
            state = SessionState.INACTIVE
            if known:
                state = SessionState.PAUSED if s.paused else SessionState.STARTED
            self._send(
                c,
                m.SessionStateResponse(
                    rtms_session_id=msg.rtms_session_id, state=state, timestamp=self._wall(at)
                ),
                at,
            )
        elif isinstance(msg, m.StreamStateRequest):
            self._send(
                c,
                m.StreamStateResponse(
                    state=self._stream_state(s),
                    rtms_stream_id=s.info.rtms_stream_id,
                    timestamp=self._wall(at),
                ),
                at,
            )
        elif isinstance(msg, m.StreamCloseRequest):
            self._stream_close(c, s, msg, at)
        elif isinstance(msg, m.VideoSubscriptionRequest):
            self._video_subscription(c, s, msg, at)
        else:
            self._note(c, at, f"ignored msg_type {int(msg.msg_type)} on signaling")

    def _stream_state(self, s: _Stream) -> StreamState:
        if s.paused:
            return StreamState.PAUSED
        return StreamState.ACTIVE if s.active_sent else StreamState.INACTIVE

    def _subscribe(self, c: _Conn, s: _Stream, msg: m.EventSubscription, at: float) -> None:
        unknown = [i.event_type for i in msg.events if i.event_type not in _EVENT_TYPES]
        if unknown:
            self._note(c, at, f"subscription names unknown event types {unknown}")
        for item in msg.events:
            if not item.subscribe:
                s.subscribed.discard(item.event_type)
                continue
            if item.event_type in s.subscribed:
                continue
            s.subscribed.add(item.event_type)
            # The roster (and who has video on) arrives as join/video-on events
            # when the app subscribes (protocol.md §3.6, ARLO's observation).
            if item.event_type == EventType.PARTICIPANT_JOIN and s.roster:
                people = tuple(m.Participant(user_id=u, user_name=n) for u, n in s.roster.items())
                self._event(s, at, EventType.PARTICIPANT_JOIN, participants=people)
            elif item.event_type == EventType.PARTICIPANT_VIDEO_ON and s.video_on:
                ids = tuple(m.Participant(user_id=u) for u in sorted(s.video_on))
                self._event(s, at, EventType.PARTICIPANT_VIDEO_ON, participants=ids)

    def _stream_close(self, c: _Conn, s: _Stream, msg: m.StreamCloseRequest, at: float) -> None:
        if msg.rtms_stream_id != s.info.rtms_stream_id:
            rejection = Rejection(StatusCode.INVALID_RTMS_STREAM_ID, "unknown rtms_stream_id")
            self._send(
                c,
                m.StreamCloseResponse(
                    rtms_stream_id=msg.rtms_stream_id,
                    status_code=wire_status(rejection, self.config.status_table),
                    reason=rejection.reason,
                    timestamp=self._wall(at),
                ),
                at,
            )
            return
        self._send(
            c,
            m.StreamCloseResponse(
                rtms_stream_id=s.info.rtms_stream_id,
                status_code=0,
                reason="OK",
                timestamp=self._wall(at),
            ),
            at,
        )
        self._end_stream(s, at, StopReason.RECEIVER_REQUEST_CLOSE)

    def _video_subscription(
        self, c: _Conn, s: _Stream, msg: m.VideoSubscriptionRequest, at: float
    ) -> None:
        status: Rejection | None = None
        if not s.spec.scopes & MediaType.VIDEO:
            status = Rejection(StatusCode.MEDIA_TYPE_VIDEO_NOT_SUPPORT, "video is not in scope")
        elif msg.subscribe:
            if msg.user_id not in s.roster:
                status = Rejection(StatusCode.INVALID_PAYLOAD, "unknown user_id")
            elif s.video_sub == msg.user_id:
                status = Rejection(
                    StatusCode.DUPLICATE_VIDEO_SUBSCRIPTION, "duplicate video subscription"
                )
            else:
                s.video_sub = msg.user_id
                for conn in s.media.values():
                    conn.video_since_idr = 0
        elif s.video_sub == msg.user_id:
            s.video_sub = None
        self._send(
            c,
            m.VideoSubscriptionResponse(
                user_id=msg.user_id,
                status_code=0 if status is None else wire_status(status, self.config.status_table),
                reason="OK" if status is None else status.reason,
                timestamp=self._wall(at),
                subscribe=msg.subscribe,
            ),
            at,
        )

    def _event(
        self,
        s: _Stream,
        at: float,
        event_type: EventType,
        *,
        user_id: int | None = None,
        user_name: str | None = None,
        participants: tuple[m.Participant, ...] = (),
        extra: Mapping[str, m.JsonValue] | None = None,
    ) -> None:
        """Send an EVENT_UPDATE on signaling if the app subscribed (1 and 7 always go)."""
        c = s.signaling
        automatic = event_type in (
            EventType.FIRST_PACKET_TIMESTAMP,
            EventType.MEDIA_CONNECTION_INTERRUPTED,
        )
        if c is None or (not automatic and int(event_type) not in s.subscribed):
            return
        self._send(
            c,
            m.EventUpdate(
                event_type=event_type,
                timestamp=self._wall(at),
                user_id=user_id,
                user_name=user_name,
                participants=participants,
                raw=extra or {},
            ),
            at,
        )

    # --- media flow -------------------------------------------------------------------------

    def _release(self, s: _Stream, at: float) -> None:
        """CLIENT_READY_ACK: every media socket whose handshake is done starts receiving.

        Zoom's samples send one per media handshake, Zoom's own client one
        after all of them (protocol.md §13); releasing every waiting socket
        serves both.
        """
        rel = s.rel_ms(at)
        released = False
        for c in s.media.values():
            if c.state is not _CS.OPEN or c.released:
                continue
            c.released = released = True
            if c.carried & MediaType.AUDIO:
                if s.audio_cursor is None:
                    s.audio_cursor = 0 if s.buffer_data else rel - rel % SLOT_MS
                oldest = rel - round(self.config.audio_buffer_limit * 1000)
                if s.audio_cursor < oldest:
                    s.audio_cursor = -(-oldest // SLOT_MS) * SLOT_MS
            if c.params is not None and c.params.video is not None:
                c.video_next = math.ceil(rel * c.params.video.fps / 1000)
                c.video_since_idr = 0
            if c.params is not None and c.params.deskshare is not None:
                c.share_next = math.ceil(rel * c.params.deskshare.fps / 1000)
                c.share_since_idr = 0
        if released and not s.active_sent and s.signaling is not None:
            s.active_sent = True
            self._send(
                s.signaling,
                m.StreamStateUpdate(state=StreamState.ACTIVE, timestamp=self._wall(at)),
                at,
            )

    def _audio_conn(self, s: _Stream) -> _Conn | None:
        for c in s.media.values():
            if c.released and c.carried & MediaType.AUDIO and c.state is _CS.OPEN:
                return c
        return None

    def _send_audio(self, s: _Stream, c: _Conn, at: float) -> None:
        assert c.params is not None and c.params.audio is not None and s.audio_cursor is not None
        params = c.params.audio
        start = s.audio_cursor
        s.audio_cursor = start + int(params.send_rate)
        if s.paused:
            return
        stamp = s.info.media_epoch_ms + start
        for user, data in audio_packets(
            s.script, params, start, packet_index=start // int(params.send_rate)
        ):
            name = None if user == 0 else (s.roster.get(user) or s.script.name_of(user))
            self._send(
                c,
                m.AudioData(
                    data=data, user_id=user, user_name=name, timestamp=stamp, length=len(data)
                ),
                at,
            )

    def _video_user(self, s: _Stream, c: _Conn) -> int | None:
        assert c.params is not None and c.params.video is not None
        if c.params.video.data_opt == DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM:
            user = s.video_sub
        else:
            user = s.speaker
        return user if user in s.video_on else None

    def _send_frame(self, s: _Stream, c: _Conn, at: float, *, share: bool) -> None:
        assert c.params is not None
        params: VideoParams | DeskshareParams | None
        if share:
            params = c.params.deskshare
            index, c.share_next = c.share_next, c.share_next + 1
            user = s.sharer
        else:
            params = c.params.video
            index, c.video_next = c.video_next, c.video_next + 1
            user = self._video_user(s, c)
        assert params is not None
        if user is None or s.paused:
            return
        stamp = s.info.media_epoch_ms + index * 1000 // params.fps
        since = c.share_since_idr if share else c.video_since_idr
        if since >= 2 * params.fps:  # a key frame every two seconds
            since = 0
        if since == 0:
            c.idr_count += 1
        data = video_frame(
            params.codec,
            params.resolution,
            frame_num=since,
            idr_id=c.idr_count,
            label=f"rtms-fake user={user} ts={stamp}".encode(),
        )
        if share:
            c.share_since_idr = since + 1
        else:
            c.video_since_idr = since + 1
        name = s.roster.get(user) or s.script.name_of(user)
        cls = m.DeskshareData if share else m.VideoData
        self._send(
            c, cls(data=data, user_id=user, user_name=name, timestamp=stamp, length=len(data)), at
        )

    def _deliver(self, s: _Stream, carried: MediaType, msg: m.Message, at: float) -> None:
        """Send a transcript or chat message to every released socket carrying it."""
        if s.paused:
            return
        for c in s.media.values():
            if c.released and c.carried & carried and c.state is _CS.OPEN:
                self._send(c, msg, at)

    # --- timed work -------------------------------------------------------------------------

    def _ka_due(self, c: _Conn) -> float | None:
        if c.state is not _CS.OPEN:
            return None
        base = c.ka_last
        if not c.ka_outstanding and not self.config.keepalive_while_data:
            base = max(base, c.last_send)
        return base + self.config.keepalive_interval

    def _next_due(self, s: _Stream) -> _Due | None:
        best: _Due | None = None

        def consider(
            t: float,
            kind: _Item,
            c: _Conn | None = None,
            key: MediaType | None = None,
            ms: int = 0,
        ) -> None:
            nonlocal best
            if best is None or (t, kind) < (best[0], best[1]):
                best = (t, kind, c, key, ms)

        if s.ended:
            return None
        for c in s.conns():
            if c.silent_until is not None:
                if c.silent_until != math.inf:
                    consider(c.silent_until, _Item.SILENCE_END, c)
                continue
            if c.state is not _CS.OPEN:
                continue
            ka = self._ka_due(c)
            if ka is not None:
                consider(ka, _Item.KEEPALIVE, c)
            if not c.released or c.params is None:
                continue
            audio = c.params.audio
            if audio is not None and s.audio_cursor is not None:
                consider(s.start + (s.audio_cursor + int(audio.send_rate)) / 1000, _Item.AUDIO, c)
            video = c.params.video
            if video is not None:
                consider(s.start + c.video_next * 1000 // video.fps / 1000, _Item.VIDEO, c)
            share = c.params.deskshare
            if share is not None:
                consider(s.start + c.share_next * 1000 // share.fps / 1000, _Item.SHARE, c)
        nxt = s.script.next_event_ms(s.script_ms)
        if nxt is not None:
            consider(s.start + nxt / 1000, _Item.SCRIPT, ms=nxt)
        if s.timed_next < len(s.timed):
            consider(s.start + s.timed[s.timed_next].at, _Item.FAULT)
        if s.sig_lost is not None:
            consider(s.sig_lost[0] + self.config.signaling_reconnect_window, _Item.EXPIRY)
        for key, (lost_at, _) in s.media_lost.items():
            consider(lost_at + self.config.media_reconnect_window, _Item.EXPIRY, None, key)
        if not s.ever_connected and s.spec.connect_window is not None:
            consider(s.start + s.spec.connect_window, _Item.EXPIRY)
        return best

    def _touch(self, s: _Stream | None) -> None:
        """``s`` may have changed: recompute its due time before the next scheduling pass.

        Every input touches the stream of its connection (the only stream an
        input can change), and the public methods touch the stream they act
        on; timed work reschedules its own stream in :meth:`_run_due`.
        """
        if s is not None:
            self._touched[s.order] = s

    def _reschedule(self, s: _Stream) -> None:
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

    def _conn_current(self, at: float, c: _Conn) -> bool:
        return at == c.deadline and self._conns.get(c.id) is c

    def _run_due(self, now: float) -> None:
        """Do every piece of timed work due at or before ``now``, earliest first per stream.

        Streams are served in the order they were added, each up to ``now``
        before the next, then connection deadlines in the order connections
        were made: what scanning every stream and connection would do, since
        one stream's work never changes another stream or its connections.
        """
        self._settle()
        streams: list[_Stream] = []
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

    def _time_out(self, c: _Conn) -> None:
        """``c``'s deadline has come: the close handshake or the handshake took too long."""
        at = c.deadline
        assert at is not None
        c.deadline = None
        if c.state is _CS.CLOSING:
            c.state = _CS.CLOSED
            self._out.append(Close(conn=c.id))
        elif c.state in (_CS.UPGRADING, _CS.HANDSHAKING):
            self._note(c, at, "no handshake in time")
            self._close(c, at)
        self._touch(c.stream)

    def _do(self, s: _Stream, due: _Due) -> None:
        at, kind, c, key, ms = due
        if kind is _Item.SILENCE_END:
            assert c is not None
            c.silent_until = None
            c.ka_last = max(c.ka_last, at)
            rel = s.rel_ms(at)
            if c.params is not None and c.params.video is not None:
                c.video_next = max(c.video_next, math.ceil(rel * c.params.video.fps / 1000))
            if c.params is not None and c.params.deskshare is not None:
                c.share_next = max(c.share_next, math.ceil(rel * c.params.deskshare.fps / 1000))
            self._note(c, at, "silence ends")
        elif kind is _Item.AUDIO:
            assert c is not None
            self._send_audio(s, c, at)
        elif kind is _Item.VIDEO or kind is _Item.SHARE:
            assert c is not None
            self._send_frame(s, c, at, share=kind is _Item.SHARE)
        elif kind is _Item.KEEPALIVE:
            assert c is not None
            self._keepalive(s, c, at)
        elif kind is _Item.SCRIPT:
            events = s.script.events_between(s.script_ms, ms)
            s.script_ms = ms
            for scripted in events:
                if s.ended:
                    break
                self._apply(s, scripted.event, at)
        elif kind is _Item.FAULT:
            fault = s.timed[s.timed_next]
            s.timed_next += 1
            self._apply_fault(s, fault, at)
        else:
            self._expire(s, at, key)

    def _keepalive(self, s: _Stream, c: _Conn, at: float) -> None:
        if len(c.ka_outstanding) >= self.config.keepalive_misses:
            self._abort(c, at, f"{len(c.ka_outstanding)} keep-alives unanswered")
            self._gone(c, at, StopReason.KEEP_ALIVE_TIMEOUT)
            return
        c.ka_seq += 1
        stamp = self._wall(at)
        c.ka_outstanding.append(stamp)
        c.ka_last = at
        self._send(c, m.KeepAliveRequest(timestamp=stamp, sequence=c.ka_seq), at)

    def _expire(self, s: _Stream, at: float, key: MediaType | None) -> None:
        if key is not None:
            reason = s.media_lost[key][1]
            self._note(None, at, f"{_KIND_OF[key]} was not reconnected in time", s)
        elif s.sig_lost is not None:
            reason = s.sig_lost[1]
            self._note(None, at, "signaling was not reconnected in time", s)
        else:
            reason = StopReason.CONNECTION_TIMEOUT
            self._note(None, at, "no signaling connection in time", s)
        self._end_stream(s, at, reason)

    # --- losing and ending ------------------------------------------------------------------

    def _gone(self, c: _Conn, at: float, reason: StopReason) -> None:
        """A live socket of a stream is gone: wait for the client to come back."""
        s = c.stream
        if s is None or s.ended:
            return
        if s.signaling is c:
            s.signaling = None
            s.sig_lost = (at, reason)
            for media in list(s.media.values()):
                self._abort(media, at, "the signaling connection was lost")
            s.media.clear()
            s.media_lost.clear()
            self._emit(
                s,
                rtms_interrupted_body(
                    product=s.spec.product,
                    instance_id=s.spec.meeting_uuid,
                    rtms_stream_id=s.info.rtms_stream_id,
                    event_ts=self._wall(at),
                ),
            )
            return
        key = next((k for k, media in s.media.items() if media is c), None)
        if key is None:
            return
        del s.media[key]
        s.media_lost[key] = (at, reason)
        self._event(s, at, EventType.MEDIA_CONNECTION_INTERRUPTED, extra={"media_type": int(key)})

    def _end_stream(self, s: _Stream, at: float, reason: StopReason | int) -> None:
        if s.ended:
            return
        for c in s.conns():
            c.silent_until = None  # the last words always go out
        sig = s.signaling
        if sig is not None and sig.state is _CS.OPEN:
            self._send(
                sig,
                m.StreamStateUpdate(
                    state=StreamState.TERMINATED, reason=reason, timestamp=self._wall(at)
                ),
                at,
            )
            self._send(
                sig,
                m.SessionStateUpdate(
                    state=SessionState.STOPPED,
                    stop_reason=reason,
                    timestamp=self._wall(at),
                    rtms_session_id=s.info.rtms_session_id,
                ),
                at,
            )
        s.ended = True
        s.stop_reason = reason
        s.sig_lost = None
        s.media_lost.clear()
        for c in s.clients_in_order():
            if c.state in (_CS.HANDSHAKING, _CS.OPEN):
                self._close(c, at)
        s.signaling = None
        s.media.clear()
        self._note(None, at, f"stream ended, stop reason {int(reason)}", s)
        self._emit(
            s,
            rtms_stopped_body(
                product=s.spec.product,
                instance_id=s.spec.meeting_uuid,
                rtms_stream_id=s.info.rtms_stream_id,
                stop_reason=reason,
                event_ts=self._wall(at),
            ),
        )

    # --- the meeting ------------------------------------------------------------------------

    def _name(self, s: _Stream, user: int) -> str | None:
        return s.roster.get(user) or s.script.name_of(user)

    def _apply(self, s: _Stream, event: tl.ServerEvent, at: float) -> None:
        if isinstance(event, tl.Join):
            new = [p for p in event.people if p.user_id not in s.roster]
            for p in new:
                s.roster[p.user_id] = p.user_name
            if new:
                people = tuple(m.Participant(user_id=p.user_id, user_name=p.user_name) for p in new)
                self._event(s, at, EventType.PARTICIPANT_JOIN, participants=people)
        elif isinstance(event, tl.Leave):
            gone = [u for u in event.user_ids if u in s.roster]
            for u in gone:
                del s.roster[u]
                s.video_on.discard(u)
            if s.sharer is not None and s.sharer in gone:
                self._apply(s, tl.SharingStop(), at)
            if gone:
                people = tuple(m.Participant(user_id=u) for u in gone)
                self._event(s, at, EventType.PARTICIPANT_LEAVE, participants=people)
        elif isinstance(event, tl.ActiveSpeaker):
            if s.speaker != event.user_id:
                s.speaker = event.user_id
                self._event(
                    s,
                    at,
                    EventType.ACTIVE_SPEAKER_CHANGE,
                    user_id=event.user_id,
                    user_name=self._name(s, event.user_id),
                )
        elif isinstance(event, tl.SharingStart):
            if s.sharer != event.user_id:
                s.sharer = event.user_id
                for c in s.media.values():
                    c.share_since_idr = 0
                if s.spec.scopes & MediaType.DESKSHARE:
                    self._event(
                        s,
                        at,
                        EventType.SHARING_START,
                        user_id=event.user_id,
                        user_name=self._name(s, event.user_id),
                    )
        elif isinstance(event, tl.SharingStop):
            if s.sharer is not None:
                s.sharer = None
                if s.spec.scopes & MediaType.DESKSHARE:
                    self._event(s, at, EventType.SHARING_STOP)
        elif isinstance(event, tl.VideoOn | tl.VideoOff):
            on = isinstance(event, tl.VideoOn)
            changed = [u for u in event.user_ids if (u in s.video_on) != on]
            for u in changed:
                if on:
                    s.video_on.add(u)
                else:
                    s.video_on.discard(u)
            if changed:
                kind = EventType.PARTICIPANT_VIDEO_ON if on else EventType.PARTICIPANT_VIDEO_OFF
                self._event(
                    s, at, kind, participants=tuple(m.Participant(user_id=u) for u in changed)
                )
        elif isinstance(event, tl.Utterance):
            epoch = s.info.media_epoch_ms
            start, end = epoch + round(event.start * 1000), epoch + round(event.end * 1000)
            msg = m.TranscriptData(
                text=event.text,
                user_id=event.user_id,
                user_name=self._name(s, event.user_id),
                timestamp=start,
                start_time=start,
                end_time=end,
                language=event.language,
            )
            self._deliver(s, MediaType.TRANSCRIPT, msg, at)
        elif isinstance(event, tl.Chat):
            self._deliver(s, MediaType.CHAT, self._chat(s, event, at), at)
        elif isinstance(event, tl.PauseSession | tl.ResumeSession):
            pause = isinstance(event, tl.PauseSession)
            if s.paused != pause and s.signaling is not None:
                s.paused = pause
                stamp = self._wall(at)
                self._send(
                    s.signaling,
                    m.StreamStateUpdate(
                        state=StreamState.PAUSED if pause else StreamState.RESUMED, timestamp=stamp
                    ),
                    at,
                )
                self._send(
                    s.signaling,
                    m.SessionStateUpdate(
                        state=SessionState.PAUSED if pause else SessionState.RESUMED,
                        timestamp=stamp,
                        rtms_session_id=s.info.rtms_session_id,
                    ),
                    at,
                )
            else:
                s.paused = pause
        elif isinstance(event, tl.EndStream):
            self._end_stream(s, at, event.reason)
        # Quiet changes nothing but the audio, which follows the script directly.

    def _chat(self, s: _Stream, event: tl.Chat, at: float) -> m.ChatData:
        s.chat_count += 1
        name = self._name(s, event.user_id)
        text = event.text
        if event.structured:
            obj: dict[str, object] = {
                "chat_session": {
                    "type": 2 if event.to_user is not None else 1,
                    "id": f"{s.info.rtms_stream_id}-chat",
                },
                "operation_type": 1,
                "message_id": f"{s.info.rtms_stream_id}-msg-{s.chat_count}",
                "sender": {"user_id": event.user_id, "user_name": name},
                "data": event.text,
            }
            if event.to_user is not None:
                obj["receiver"] = {
                    "user_id": event.to_user,
                    "user_name": self._name(s, event.to_user),
                }
            text = json.dumps(obj, separators=(",", ":"))
        return m.ChatData(
            text=text, user_id=event.user_id, user_name=name, timestamp=self._wall(at)
        )

    # --- faults -----------------------------------------------------------------------------

    def _targets(self, s: _Stream, role: SocketRole | None) -> list[_Conn]:
        return [c for c in s.conns() if c.state is _CS.OPEN and (role is None or c.role is role)]

    def _apply_fault(self, s: _Stream, fault: f.TimedFault, at: float) -> None:
        self._note(None, at, f"fault: {fault!r}", s)
        if isinstance(fault, f.BinaryFrames):
            s.binary = True
            return
        if isinstance(fault, f.Failover):
            self._failover(s, at)
            return
        if isinstance(fault, f.InterruptMedia):
            c = s.media.get(fault.media_type) or next(
                (x for x in s.media.values() if x.carried & fault.media_type), None
            )
            if fault.drop and c is not None:
                self._abort(c, at, "media interruption fault")
                self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
            else:
                self._event(
                    s,
                    at,
                    EventType.MEDIA_CONNECTION_INTERRUPTED,
                    extra={"media_type": int(fault.media_type)},
                )
            return
        targets = self._targets(s, fault.role)
        if not targets:
            self._note(None, at, "fault found no live socket", s)
        for c in targets:
            if isinstance(fault, f.DropSocket):
                self._abort(c, at, "drop fault")
                self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
            elif isinstance(fault, f.SendClose):
                self._close(c, at, fault.code, fault.reason)
                self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
            elif isinstance(fault, f.Silence):
                c.silent_until = math.inf if fault.duration is None else at + fault.duration
            elif isinstance(fault, f.SlowReads):
                self._out.append(PauseReading(conn=c.id, seconds=fault.seconds))
            elif isinstance(fault, f.SendOversized):
                head = '{"msg_type":23,"padding":"'
                self._send_raw(c, head + "x" * (fault.size - len(head) - 2) + '"}', at)
            elif isinstance(fault, f.SendMalformed):
                self._send_raw(c, fault.data, at)
            elif isinstance(fault, f.SendUnknownType):
                body = {"msg_type": fault.msg_type, "note": "an unknown message type"}
                self._send_raw(c, json.dumps(body, separators=(",", ":")), at)
            else:
                assert isinstance(fault, f.SendRaw)
                self._send_raw(c, fault.data, at)

    def _failover(self, s: _Stream, at: float) -> None:
        """The stream moves to a "new server": new URLs, a new ``rtms_started``."""
        for c in s.clients_in_order():
            if c.state in (_CS.HANDSHAKING, _CS.OPEN, _CS.CLOSING):
                self._abort(c, at, "failover")
        s.signaling = None
        s.media.clear()
        s.media_lost.clear()
        s.generation += 1
        s.sig_lost = (at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
        s.started_body = self._started_body(s, at)
        event = json.loads(s.started_body)["event"]
        self._out.append(
            EmitWebhook(rtms_stream_id=s.info.rtms_stream_id, event=event, body=s.started_body)
        )
        self._note(
            None,
            at,
            f"failover: now serving {self._signaling_url(s.info.rtms_stream_id, s.generation)}",
            s,
        )
