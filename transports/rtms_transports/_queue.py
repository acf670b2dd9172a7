"""The bounded queue between a driver and the application, with its backpressure policy.

Bounded in events (``max_events``) and in bytes (``max_queue_bytes``): a media
event costs the bytes of its payload plus :data:`EVENT_COST`, any other event
:data:`EVENT_COST`.  The queue is *full* when either bound is reached, and the
backpressure rule is the same for both.  See the package docstring for the
exact bound.
"""

from __future__ import annotations

import collections

from rtms_proto import SocketId
from rtms_proto import events as ev

from ._common import Backpressure, StreamLog

__all__ = ["EVENT_COST", "EventBuffer"]

_MEDIA_TYPES = frozenset({ev.AudioReceived, ev.VideoReceived, ev.DeskshareReceived})

_DROP = Backpressure.DROP_OLDEST_MEDIA

EVENT_COST = 512
"""Bytes an event counts for in ``max_queue_bytes`` besides a media payload: about what
a small decoded event (its object, strings, the queue entry) takes in memory."""


class EventBuffer:
    """A bounded FIFO of events, with the backpressure policy of :class:`Backpressure`.

    Each event remembers the socket whose input produced it (``origin``;
    None for timers and commands).  The queue is full when it holds
    ``max_events`` events or ``max_bytes`` bytes (see :data:`EVENT_COST`).
    Under ``BLOCK`` a socket may be read while the queue is not full, or
    while none of the queued events came from it; so an idle socket (the
    signaling socket, usually) is still read and its keep-alives answered
    while a busy media socket waits for the application.  Under
    ``DROP_OLDEST_MEDIA`` every socket is read while there is a media frame
    to drop, and the oldest frames are dropped until the queue is not full.
    """

    __slots__ = (
        "_dropping",
        "_entries",
        "_held",
        "_log",
        "_media",
        "_q",
        "burst",
        "bytes",
        "discarding",
        "dropped",
        "max_bytes",
        "max_events",
        "policy",
        "unblocked",
    )

    def __init__(
        self, max_events: int, policy: Backpressure, log: StreamLog, max_bytes: int = 64 << 20
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.policy = policy
        self._log = log
        # Each event, followed by the number of the socket it came from (or 0): ints
        # from 1, cheaper to hash than SocketId.  Side by side in one deque rather than
        # as pairs: a queued event then holds no second object for the garbage collector
        # to track (a lagging application has thousands queued), and an idle stream
        # holds one deque block, not two.  An event's cost is recomputed from the event.
        self._q: collections.deque[ev.Event | int] = collections.deque()
        self._entries = 2 * max_events  # max_events, counted in deque entries
        self.bytes = 0
        """What the queued events count for against ``max_bytes``."""

        self._held: dict[int, int] = {}
        self._media = 0
        self._dropping = False
        self.dropped = 0
        """Media frames dropped so far (``DROP_OLDEST_MEDIA`` only)."""
        self.burst = 0
        self.discarding = False
        """The application is gone: events are thrown away and every socket may be read."""
        self.unblocked = False
        """Set by :meth:`pop` when a socket may have become readable; the driver clears it."""

    def __len__(self) -> int:
        return len(self._q) >> 1

    def _full(self) -> bool:
        return len(self._q) >= self._entries or self.bytes >= self.max_bytes

    @property
    def full(self) -> bool:
        """Either bound is reached: :meth:`reading_allowed` may refuse a socket."""
        return self._full()

    def push(self, event: ev.Event, origin: SocketId | None) -> None:
        if self.discarding:
            return
        q = self._q
        if type(event) in _MEDIA_TYPES:  # its cost (EVENT_COST), and whether it is media
            cost = EVENT_COST + len(event.data)  # type: ignore[union-attr]
            self._media += 1
        else:
            cost = EVENT_COST
        if self.policy is _DROP:
            while self._media and (len(q) >= self._entries or self.bytes + cost > self.max_bytes):
                if not self._drop_oldest_media():
                    break  # the only media frame is this one: it goes in
        self.bytes += cost
        q.append(event)
        if origin is None:
            q.append(0)
        else:
            number = origin.number
            q.append(number)
            held = self._held
            held[number] = held.get(number, 0) + 1

    def deliver(self) -> bool:
        return False

    def pop(self) -> ev.Event | None:
        """The oldest event, or None when the queue is empty."""
        q = self._q
        if not q:
            return None
        # _full(), inline, before and after: this runs for every event.
        entries = self._entries
        max_bytes = self.max_bytes
        was_full = len(q) >= entries or self.bytes >= max_bytes
        event: ev.Event = q.popleft()  # type: ignore[assignment]
        origin: int = q.popleft()  # type: ignore[assignment]
        if type(event) in _MEDIA_TYPES:  # its cost, as push() counted it
            size = self.bytes - EVENT_COST - len(event.data)  # type: ignore[union-attr]
            self._media -= 1
        else:
            size = self.bytes - EVENT_COST
        self.bytes = size
        full = len(q) >= entries or size >= max_bytes
        if origin:
            held = self._held
            count = held[origin] - 1
            if count:
                held[origin] = count
            else:
                del held[origin]
                if full:
                    self.unblocked = True
        if was_full and not full:
            self.unblocked = True
            if self._dropping:
                self._dropping = False
                self._log.warning(
                    "the application caught up: %d media frames were dropped (%d in all)",
                    self.burst,
                    self.dropped,
                )
        return event

    def reading_allowed(self, sock: SocketId) -> bool:
        if self.discarding or not self._full():
            return True
        if self._media and self.policy is Backpressure.DROP_OLDEST_MEDIA:
            return True
        return sock.number not in self._held

    def discard(self) -> None:
        """The application stopped reading: drop what is queued and whatever comes."""
        self.discarding = True
        self._q.clear()
        self._held.clear()
        self._media = 0
        self.bytes = 0
        self.unblocked = True

    def _drop_oldest_media(self) -> bool:
        """Drop the oldest queued media frame; False when none is queued yet."""
        q = self._q
        for index in range(0, len(q), 2):
            event = q[index]
            if type(event) in _MEDIA_TYPES:
                break
        else:
            return False
        origin: int = q[index + 1]  # type: ignore[assignment]
        del q[index]
        del q[index]  # its origin, now at that index
        cost = EVENT_COST + len(event.data)  # type: ignore[union-attr]
        self._media -= 1
        self.bytes -= cost
        if origin:
            count = self._held[origin] - 1
            if count:
                self._held[origin] = count
            else:
                del self._held[origin]
        self.dropped += 1
        if not self._dropping:
            self._dropping = True
            self.burst = 0
            self._log.warning(
                "the application is not keeping up: the event queue is full (%d events,"
                " %d bytes), dropping the oldest media frames",
                (len(q) >> 1) + 1,
                self.bytes + cost,
            )
        self.burst += 1
        return True
