"""When the fake server has work due, and doing it in order.

:func:`next_due` says what a stream's earliest piece of timed work is;
:class:`Scheduler` keeps every stream's due time and every connection's
deadline on agendas (heaps), so that an input costs the same however many other
streams and connections there are, and runs what is due in the order a scan of
every stream, then every connection, would.  What each piece of work *does* is
the business of the parts the scheduler is given (see
:class:`~rtms_conformance.server.core.FakeRtmsServer`).
"""

from __future__ import annotations

import enum
import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

from rtms_proto.enums import MediaType

from .state import Conn, ConnState, Stream
from .types import ConnId, ServerConfig

__all__ = ["Agenda", "Due", "Scheduler", "Work", "keepalive_due", "next_due"]

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


class Scheduler:
    """The streams' due times and the connections' deadlines, and running what is due.

    ``streams`` and ``conns`` are the server's registries (read, never
    changed here); ``perform(stream, due)`` does one piece of a stream's timed
    work and ``time_out(conn)`` handles a connection whose deadline came.
    A stream's due time is recomputed only when something may have changed it:
    whoever changes a stream passes it to :meth:`touch`.
    """

    def __init__(
        self,
        config: ServerConfig,
        streams: Mapping[str, Stream],
        conns: Mapping[ConnId, Conn],
        *,
        perform: Callable[[Stream, Due], None],
        time_out: Callable[[Conn], None],
    ) -> None:
        self._config = config
        self._streams = streams
        self._conns = conns
        self._perform = perform
        self._time_out = time_out
        self.due = Agenda[Stream]()
        """Streams by the due time last put on the agenda (``Stream.queued``)."""
        self.timeouts = Agenda[Conn]()
        """Connections by deadline (``Conn.deadline`` pushes here when set)."""
        self._touched: dict[int, Stream] = {}

    def touch(self, s: Stream | None) -> None:
        """``s`` may have changed: recompute its due time before the next scheduling pass.

        Every input touches the stream of its connection (the only stream an
        input can change), and the server's public methods touch the stream
        they act on; timed work reschedules its own stream in :meth:`run_due`.
        """
        if s is not None:
            self._touched[s.order] = s

    def next_deadline(self) -> float | None:
        """When :meth:`run_due` must be called next, or None."""
        self._settle()
        times = [
            t
            for t in (
                self.due.first(lambda at, s: at == s.queued),
                self.timeouts.first(self._conn_current),
            )
            if t is not None
        ]
        return min(times) if times else None

    def run_due(self, now: float) -> None:
        """Do every piece of timed work due at or before ``now``, earliest first per stream.

        Streams are served in the order they were added, each up to ``now``
        before the next, then connection deadlines in the order connections
        were made: what scanning every stream and connection would do, since
        one stream's work never changes another stream or its connections.
        """
        self._settle()
        streams: list[Stream] = []
        for at, s in self.due.pop_due(now):
            if at == s.queued:
                s.queued = None
                streams.append(s)
        streams.sort(key=lambda s: s.order)
        config, perform = self._config, self._perform
        for s in streams:
            while True:
                due = next_due(s, config)
                if due is None or due[0] > now:
                    break
                perform(s, due)
            self._reschedule(s)
        # Deadlines set from here on wait for the next pass, as they did when scanning.
        expired = {c.order: c for at, c in self.timeouts.pop_due(now) if self._conn_current(at, c)}
        for order in sorted(expired):
            c = expired[order]
            self._time_out(c)
            self.touch(c.stream)

    def _reschedule(self, s: Stream) -> None:
        due = next_due(s, self._config)
        at = None if due is None else due[0]
        if at != s.queued:
            s.queued = at
            if at is not None:
                self.due.push(at, s)

    def _settle(self) -> None:
        """Put every touched stream's current due time on the agenda."""
        for s in self._touched.values():
            self._reschedule(s)
        self._touched.clear()
        if len(self.due) > 2 * len(self._streams) + 64:
            self.due.rebuild((s.queued, s) for s in self._streams.values() if s.queued is not None)
        if len(self.timeouts) > 2 * len(self._conns) + 64:
            self.timeouts.rebuild(
                (c.deadline, c) for c in self._conns.values() if c.deadline is not None
            )

    def _conn_current(self, at: float, c: Conn) -> bool:
        return at == c.deadline and self._conns.get(c.id) is c
