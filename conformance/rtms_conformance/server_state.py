"""The fake server's per-stream and per-connection state, and when each has work due.

Plain data the server's concerns share, kept apart from the code that acts
on it so that each concern's module reads as behaviour only.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from rtms_proto import MediaParams
from rtms_proto.actions import SocketRole
from rtms_proto.enums import MediaType, StopReason

from . import faults as f
from .meeting import MeetingScript
from .server_types import ConnId, ServerConfig, StreamInfo, StreamSpec
from .ws_server import WsServer

__all__ = ["Agenda", "Conn", "ConnState", "Due", "Stream", "Work", "keepalive_due", "next_due"]

_T = TypeVar("_T")


class Agenda(Generic[_T]):
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


class ConnState(enum.Enum):
    UPGRADING = "upgrading"
    HANDSHAKING = "handshaking"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Conn:
    """One socket as the server sees it."""

    def __init__(
        self,
        conn_id: ConnId,
        now: float,
        config: ServerConfig,
        order: int,
        timeouts: Agenda[Conn],
    ) -> None:
        self.id = conn_id
        self.order = order
        """Rank among all connections ever made: the order deadlines are handled in."""
        self._timeouts = timeouts
        self._deadline: float | None = None
        self.ws = WsServer(max_message_size=config.max_message_size)
        self.state = ConnState.UPGRADING
        self.deadline = now + config.handshake_timeout
        self.stream: Stream | None = None
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


class Stream:
    """One stream's state."""

    def __init__(self, spec: StreamSpec, info: StreamInfo, start: float, order: int) -> None:
        self.spec = spec
        self.info = info
        self.start = start
        self.order = order
        """Rank among the streams: the order streams due at once are served in."""
        self.queued: float | None = None
        """The due time last put on the agenda (None: nothing due, or being served)."""
        self.clients: dict[int, Conn] = {}
        """Connections routed to this stream and not lost, by ``Conn.order``."""
        self.script = MeetingScript(spec.meeting, spec.timeline)
        self.ended = False
        self.stop_reason: StopReason | int | None = None
        self.generation = 0
        self.signaling: Conn | None = None
        self.media: dict[MediaType, Conn] = {}
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

    def conns(self) -> Iterator[Conn]:
        if self.signaling is not None:
            yield self.signaling
        yield from self.media.values()

    def clients_in_order(self) -> list[Conn]:
        """Routed, not lost connections in the order they were made (``_conns`` order)."""
        return [self.clients[k] for k in sorted(self.clients)]


class Work(enum.IntEnum):
    """Kinds of timed work, in the order they run when due at the same instant."""

    SILENCE_END = 0
    AUDIO = 1
    VIDEO = 2
    SHARE = 3
    KEEPALIVE = 4
    SCRIPT = 5
    FAULT = 6
    EXPIRY = 7


Due = tuple[float, Work, Conn | None, MediaType | None, int]
"""When, what, on which socket, for which lost media type, at which script millisecond."""


def keepalive_due(c: Conn, config: ServerConfig) -> float | None:
    """When ``c`` sends its next keep-alive request (None: it is not open)."""
    if c.state is not ConnState.OPEN:
        return None
    base = c.ka_last
    if not c.ka_outstanding and not config.keepalive_while_data:
        base = max(base, c.last_send)
    return base + config.keepalive_interval


def next_due(s: Stream, config: ServerConfig) -> Due | None:
    """The stream's earliest piece of timed work, or None when nothing is due."""
    best: Due | None = None

    def consider(
        t: float,
        kind: Work,
        c: Conn | None = None,
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
                consider(c.silent_until, Work.SILENCE_END, c)
            continue
        if c.state is not ConnState.OPEN:
            continue
        ka = keepalive_due(c, config)
        if ka is not None:
            consider(ka, Work.KEEPALIVE, c)
        if not c.released or c.params is None:
            continue
        audio = c.params.audio
        if audio is not None and s.audio_cursor is not None:
            consider(s.start + (s.audio_cursor + int(audio.send_rate)) / 1000, Work.AUDIO, c)
        video = c.params.video
        if video is not None:
            consider(s.start + c.video_next * 1000 // video.fps / 1000, Work.VIDEO, c)
        share = c.params.deskshare
        if share is not None:
            consider(s.start + c.share_next * 1000 // share.fps / 1000, Work.SHARE, c)
    nxt = s.script.next_event_ms(s.script_ms)
    if nxt is not None:
        consider(s.start + nxt / 1000, Work.SCRIPT, ms=nxt)
    if s.timed_next < len(s.timed):
        consider(s.start + s.timed[s.timed_next].at, Work.FAULT)
    if s.sig_lost is not None:
        consider(s.sig_lost[0] + config.signaling_reconnect_window, Work.EXPIRY)
    for key, (lost_at, _) in s.media_lost.items():
        consider(lost_at + config.media_reconnect_window, Work.EXPIRY, None, key)
    if not s.ever_connected and s.spec.connect_window is not None:
        consider(s.start + s.spec.connect_window, Work.EXPIRY)
    return best
