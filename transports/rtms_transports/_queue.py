"""The bounded queue between a driver and the application, with its backpressure policy.

See the package docstring for the exact bound.
"""

from __future__ import annotations

import collections

from rtms_proto import SocketId
from rtms_proto import events as ev

from ._common import Backpressure, StreamLog

__all__ = ["EventBuffer"]

_MEDIA_TYPES = frozenset({ev.AudioReceived, ev.VideoReceived, ev.DeskshareReceived})


class EventBuffer:
    """A bounded FIFO of events, with the backpressure policy of :class:`Backpressure`.

    Each event remembers the socket whose input produced it (``origin``;
    None for timers and commands).  Under ``BLOCK`` a socket may be read
    while the queue holds fewer than ``max_events`` events, or while none of
    the queued events came from it; so an idle socket (the signaling socket,
    usually) is still read and its keep-alives answered while a busy media
    socket waits for the application.  Under ``DROP_OLDEST_MEDIA`` every
    socket is read while there is a media frame to drop.
    """

    __slots__ = (
        "_dropping",
        "_held",
        "_log",
        "_media",
        "_q",
        "burst",
        "discarding",
        "dropped",
        "max_events",
        "policy",
        "unblocked",
    )

    def __init__(self, max_events: int, policy: Backpressure, log: StreamLog) -> None:
        self.max_events = max_events
        self.policy = policy
        self._log = log
        # (event, number of the socket it came from, or 0): socket numbers are ints
        # from 1, cheaper to hash than SocketId.
        self._q: collections.deque[tuple[ev.Event, int]] = collections.deque()
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
        return len(self._q)

    def push(self, event: ev.Event, origin: SocketId | None) -> None:
        if self.discarding:
            return
        q = self._q
        if type(event) in _MEDIA_TYPES:
            self._media += 1
        if (
            len(q) >= self.max_events
            and self._media
            and self.policy is Backpressure.DROP_OLDEST_MEDIA
        ):
            self._drop_oldest_media()
        if origin is None:
            q.append((event, 0))
        else:
            number = origin.number
            q.append((event, number))
            held = self._held
            held[number] = held.get(number, 0) + 1

    def deliver(self) -> bool:
        return False

    def pop(self) -> ev.Event | None:
        """The oldest event, or None when the queue is empty."""
        q = self._q
        if not q:
            return None
        event, origin = q.popleft()
        left = len(q)
        if origin:
            held = self._held
            count = held[origin] - 1
            if count:
                held[origin] = count
            else:
                del held[origin]
                if left >= self.max_events:
                    self.unblocked = True
        if type(event) in _MEDIA_TYPES:
            self._media -= 1
        if left == self.max_events - 1:
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
        if len(self._q) < self.max_events or self.discarding:
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
        self.unblocked = True

    def _drop_oldest_media(self) -> None:
        q = self._q
        for index, (event, origin) in enumerate(q):  # noqa: B007 - origin used below
            if type(event) in _MEDIA_TYPES:
                del q[index]
                break
        else:  # pragma: no cover - _media counts them
            return
        self._media -= 1
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
                "the application is not keeping up: the event queue is full (%d events),"
                " dropping the oldest media frames",
                self.max_events,
            )
        self.burst += 1
