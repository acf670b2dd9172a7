"""The part of a driver that is the same in every transport, and does no I/O.

:class:`Engine` wraps a :class:`~rtms_proto.Session`: each driver input
(``start``, ``opened``, ``data``, ``eof``, ``failed``, ``timer``, ``command``)
calls the session, drains it, hands the events to a sink and returns the
actions for the driver to perform, in order.  The driver never looks inside
an event except through the engine's flags (``connected``, ``ended``,
``fatal``).

:class:`EventBuffer` is the bounded queue between a driver and the
application, with the backpressure policy (see the package docstring for
the exact bound).
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from rtms_proto import (
    CloseSocket,
    ConnectionClosed,
    OpenSocket,
    SendBytes,
    Session,
    SessionConfig,
    SocketId,
    SocketRole,
)
from rtms_proto import events as ev
from rtms_proto.actions import Action
from rtms_proto.enums import EventType

from ._common import Backpressure, StreamLog
from ._errors import TransportError

__all__ = [
    "AsyncStream",
    "Engine",
    "EventBuffer",
    "HandlerSink",
    "Sink",
    "StreamBase",
    "StreamCommands",
]

T = TypeVar("T")

_ACTIONS = (SendBytes, OpenSocket, CloseSocket)
_MEDIA_TYPES = frozenset({ev.AudioReceived, ev.VideoReceived, ev.DeskshareReceived})
_NOTABLE = frozenset(
    {
        ev.SignalingConnected,
        ev.MediaConnected,
        ev.ConnectionFailed,
        ev.SocketClosed,
        ev.MediaUnavailable,
        ev.ReconnectScheduled,
        ev.ReconnectStarted,
        ev.ReconnectCompleted,
        ev.SessionEnded,
    }
)
_NO_ACTIONS: list[Action] = []


class Sink(Protocol):
    """Where the engine puts events, and whether a socket may be read."""

    def push(self, event: ev.Event, origin: SocketId | None) -> None: ...

    def reading_allowed(self, sock: SocketId) -> bool: ...

    def deliver(self) -> bool:
        """Called after the actions of a batch are performed; True if it ran user code."""
        ...


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


class HandlerSink:
    """Events go to a callback, after the driver performed the actions of the batch.

    Re-entrant: the handler may issue commands (through the runner), whose
    events are delivered by the same loop, in order.
    """

    def __init__(self, handler: Callable[[ev.Event], object]) -> None:
        self._handler = handler
        self._pending: collections.deque[ev.Event] = collections.deque()
        self._delivering = False

    def push(self, event: ev.Event, origin: SocketId | None) -> None:
        self._pending.append(event)

    def reading_allowed(self, sock: SocketId) -> bool:
        return True

    def deliver(self) -> bool:
        if self._delivering or not self._pending:
            return False
        self._delivering = True
        try:
            while self._pending:
                self._handler(self._pending.popleft())
        finally:
            self._delivering = False
        return True


class Engine:
    """A :class:`Session`, its sink and the flags a driver needs; no I/O, no clock.

    With ``fail_fast``, a transport failure of the first signaling socket
    (before any signaling handshake succeeded) ends the session at once and is
    kept in :attr:`fatal`, for ``connect()`` to raise.
    """

    def __init__(self, session: Session, sink: Sink, log: StreamLog, *, fail_fast: bool) -> None:
        self.session = session
        self.sink = sink
        self.log = log
        self.fail_fast = fail_fast
        self.connected = False
        self.ended: ev.SessionEnded | None = None
        self.fatal: TransportError | None = None

    # --- inputs: each returns the actions to perform, in order -------------------------

    def start(self, now: float) -> list[Action]:
        self.session.start(now=now)
        return self.collect(None)

    def opened(self, now: float, sock: SocketId) -> list[Action]:
        self.session.socket_opened(sock, now=now)
        return self.collect(sock)

    def data(self, now: float, sock: SocketId, data: bytes) -> list[Action]:
        self.session.receive_data(sock, data, now=now)
        return self.collect(sock)

    def eof(self, now: float, sock: SocketId) -> list[Action]:
        self.session.receive_eof(sock, now=now)
        return self.collect(sock)

    def failed(self, now: float, sock: SocketId, error: TransportError) -> list[Action]:
        # The session says whether it is a failure (ConnectionFailed, logged as a
        # warning) or the end of a close that was under way.
        self.log.for_socket(sock).debug("%s", error)
        self.session.socket_failed(sock, str(error), now=now)
        if (
            self.fail_fast
            and not self.connected
            and self.fatal is None
            and sock.role is SocketRole.SIGNALING
        ):
            self.fatal = error
            with contextlib.suppress(ConnectionClosed):  # unless it is ending on its own
                self.session.stop(now=now)
        return self.collect(sock)

    def timer(self, now: float, deadline: float) -> list[Action]:
        """The timer armed at ``deadline`` fired at ``now`` (maybe a little early)."""
        self.session.handle_timer(now=max(deadline, now))
        return self.collect(None)

    def command(self, now: float, fn: Callable[[Session, float], T]) -> tuple[T, list[Action]]:
        """Run ``fn(session, now)`` (a command); its exceptions propagate, nothing changed."""
        result = fn(self.session, now)
        return result, self.collect(None)

    # --- outputs -----------------------------------------------------------------------

    def collect(self, origin: SocketId | None) -> list[Action]:
        """Drain the session: events to the sink, actions returned."""
        out = self.session.drain()
        if not out:
            return _NO_ACTIONS
        actions: list[Action] = []
        push = self.sink.push
        for item in out:
            if isinstance(item, _ACTIONS):
                actions.append(item)
                continue
            if type(item) in _NOTABLE:
                self._note(item)
            push(item, origin)
        return actions

    def raise_not_connected(self) -> None:
        """Raise why the session ended before its signaling handshake, if it says."""
        if self.fatal is not None:
            raise self.fatal
        ended = self.ended
        if ended is not None and ended.error is not None:
            raise ended.error

    def _note(self, event: ev.Event) -> None:
        log = self.log
        if isinstance(event, ev.SignalingConnected):
            self.connected = True
            log.for_socket(event.sock).info("signaling handshake done")
        elif isinstance(event, ev.MediaConnected):
            log.for_socket(event.sock).info("media handshake done")
        elif isinstance(event, ev.ConnectionFailed):
            log.for_socket(event.sock).warning("socket failed: %s", event.error)
        elif isinstance(event, ev.SessionEnded):
            self.ended = event
            log.info("session ended: %s (%s)", event.why.value, event.detail)
        elif isinstance(event, ev.SocketClosed):
            log.for_socket(event.sock).debug("closed (by peer: %s)", event.by_peer)
        else:
            log.info("%s", type(event).__name__)


class StreamCommands:
    """The commands of a stream, forwarded to its session through the driver's loop.

    Each raises what the session raises (:class:`~rtms_proto.LocalProtocolError`,
    :class:`~rtms_proto.ConnectionClosed`) and then nothing has changed.
    """

    _config: SessionConfig

    def _command(self, fn: Callable[[Session, float], T]) -> T:  # pragma: no cover
        raise NotImplementedError

    @property
    def config(self) -> SessionConfig:
        return self._config

    @property
    def rtms_stream_id(self) -> str:
        return self._config.stream.rtms_stream_id

    def subscribe_events(
        self, event_types: Iterable[EventType | int], subscribe: bool = True
    ) -> None:
        """(Un)subscribe in-meeting events (remembered across reconnects)."""
        types = list(event_types)
        self._command(lambda s, now: s.subscribe_events(types, subscribe, now=now))

    def subscribe_video(self, user_id: int, subscribe: bool = True) -> None:
        """Ask for one participant's video (needs single-stream video)."""
        self._command(lambda s, now: s.subscribe_video(user_id, subscribe, now=now))

    def request_stream_state(self) -> None:
        self._command(lambda s, now: s.request_stream_state(now=now))

    def request_session_state(self, rtms_session_id: str) -> None:
        self._command(lambda s, now: s.request_session_state(rtms_session_id, now=now))

    def close_stream(self) -> None:
        """Ask Zoom to end the stream; the session ends when Zoom answers (or times out)."""
        self._command(lambda s, now: s.close_stream(now=now))

    def stop(self) -> None:
        """End locally: close the sockets in order; Zoom keeps the stream for a while."""
        self._command(lambda s, now: s.stop(now=now))

    def notify_stopped(self, stop_reason: object = None) -> None:
        """The stream's ``rtms_stopped`` webhook arrived: end."""
        self._command(lambda s, now: s.notify_stopped(stop_reason, now=now))

    def failover(self, new_signaling_url: str) -> None:
        """A new ``rtms_started`` for this stream arrived: reconnect to its URL."""
        self._command(lambda s, now: s.failover(new_signaling_url, now=now))


class StreamDriver(Protocol):
    """What a stream needs of its driver (every driver has these)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def error(self) -> BaseException | None: ...

    @property
    def finished(self) -> bool: ...

    def command(self, fn: Callable[[Session, float], T]) -> T: ...


class StreamBase(StreamCommands):
    """What the three drivers' ``Stream`` classes share: commands and counters."""

    def __init__(self, driver: StreamDriver, buffer: EventBuffer) -> None:
        self._driver = driver
        self._buffer = buffer
        self._config = driver.engine.session.config
        self._over = False

    def _command(self, fn: Callable[[Session, float], T]) -> T:
        return self._driver.command(fn)

    @property
    def ended(self) -> ev.SessionEnded | None:
        """The session's end, once it happened."""
        return self._driver.engine.ended

    @property
    def dropped(self) -> int:
        """Media frames dropped under ``Backpressure.DROP_OLDEST_MEDIA``."""
        return self._buffer.dropped

    @property
    def queued(self) -> int:
        """Events waiting for the application (how far behind it is)."""
        return len(self._buffer)


class AsyncStreamDriver(StreamDriver, Protocol):
    """An event-loop driver: it can be told to read again, and waited on."""

    def update_reading(self) -> None: ...

    async def wait_change(self) -> None: ...


class AsyncStream(StreamBase):
    """The asyncio and trio ``Stream``: ``async for event in stream``.

    Iteration ends after :class:`~rtms_proto.events.SessionEnded`.  Commands
    (:meth:`close_stream`, :meth:`subscribe_video`, ...) are plain methods:
    they take effect at once and raise what the session raises.
    """

    _driver: AsyncStreamDriver

    def __init__(self, driver: AsyncStreamDriver, buffer: EventBuffer) -> None:
        super().__init__(driver, buffer)

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> ev.Event:
        buffer = self._buffer
        driver = self._driver
        while True:
            event = buffer.pop()
            if event is not None:
                if buffer.unblocked:
                    buffer.unblocked = False
                    driver.update_reading()
                if type(event) is ev.SessionEnded:
                    self._over = True
                return event
            if driver.error is not None:
                raise driver.error
            if self._over or driver.finished:
                raise StopAsyncIteration
            await driver.wait_change()

    async def receive(self) -> ev.Event:
        """The next event; raises :class:`ConnectionClosed` after the session ended."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise ConnectionClosed("the session has ended") from None
