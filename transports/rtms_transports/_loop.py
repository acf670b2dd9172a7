"""The driver loop, written once for every transport; no I/O.

:class:`DriverLoop` owns what is the same in asyncio, trio and blocking
sockets: feed one input into the :class:`~rtms_proto.Session` with the
driver's clock, perform the drained actions in order, hand the events to a
:class:`Sink`, re-arm the one timer at ``next_deadline()``, and wake whoever
waits for events.  A driver supplies only its primitives (:class:`DriverIO`)
and calls the loop's inputs from its sockets and its timer.

One owner for each fact a driver needs: the session says whether it has
ended (``Session.ended``) and whether it ever connected
(``Session.has_connected``); the loop keeps the :class:`SessionEnded` value,
an exception that escaped the core (:attr:`DriverLoop.error`), and the
sockets the driver still holds, so :attr:`DriverLoop.finished` (ended and
every socket let go) is decided here and nowhere else.

Write backpressure is decided here too.  Every byte leaves through the
``SendBytes`` branch of :meth:`DriverLoop._perform` (``DriverIO.write``);
when a socket then holds more than ``max_write_buffer`` bytes not yet taken
by the kernel (``DriverIO.buffered``), the peer is not reading: the loop
stops reading that socket (:meth:`DriverLoop.reading_allowed`, which the
drivers ask instead of the sink) until its buffer is back under the bound,
so a peer that floods pings or keep-alive requests without reading cannot
make the answers pile up.  One read may still complete before reading
stops, so a socket holds at most ``max_write_buffer`` plus the answers to
one read of ``read_size`` bytes (an answer is about as large as what it
answers: a pong, a keep-alive response).  A socket that stays over the bound
for ``close_timeout`` is dropped (``DriverIO.drop``) and reported to the
session as a socket failure whose detail says so.  Leaving a stream in order
goes through :meth:`DriverLoop.leave`, which returns the one close deadline
the driver waits for; every socket's own flush on close is bounded by the
same ``close_timeout`` in each driver.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable
from typing import Protocol, TypeVar

from rtms_proto import (
    CloseSocket,
    ConnectionClosed,
    OpenSocket,
    RemoteProtocolError,
    SendBytes,
    Session,
    SocketId,
)
from rtms_proto import events as ev
from rtms_proto.enums import media_name

from ._common import StreamLog
from ._errors import TransportError

__all__ = ["DriverIO", "DriverLoop", "HandlerSink", "Sink"]

T = TypeVar("T")

_EVENT = object()
"""The kind of a notable event in :data:`_KINDS` (an action's kind is its class)."""
_KINDS: dict[type, object] = {
    SendBytes: SendBytes,
    OpenSocket: OpenSocket,
    CloseSocket: CloseSocket,
    **dict.fromkeys(
        (
            ev.SignalingConnected,
            ev.MediaConnected,
            ev.ConnectionFailed,
            ev.SocketClosed,
            ev.MediaUnavailable,
            ev.ReconnectScheduled,
            ev.ReconnectStarted,
            ev.ReconnectCompleted,
            ev.SessionEnded,
        ),
        _EVENT,
    ),
}
"""What :meth:`DriverLoop._perform` does with an output, by its exact class: one dict
lookup per output; any other class is an event that only goes to the sink."""


class DriverIO(Protocol):
    """The primitives a driver gives the loop; each is called from the loop's thread.

    ``open`` starts opening a socket and later reports it with
    :meth:`DriverLoop.opened` or :meth:`DriverLoop.failed`; ``write`` queues
    bytes on an open socket (ignored when it is not open); ``close`` closes a
    socket after flushing what was written (or cancels its opening); and once
    the driver has let go of a socket for good it calls
    :meth:`DriverLoop.released`.  ``arm_timer`` replaces the one timer (None:
    no timer), which calls :meth:`DriverLoop.timer` with that deadline.
    ``wake_consumer`` runs after each input: events may be waiting, reading
    may resume, the loop may have finished.  The timer is armed lazily: it
    may fire before the session's deadline (nothing is due then, and it is
    armed again), so a deadline that every message moves later costs one
    timer per ``keepalive_timeout``, not one per message.  ``abort`` closes everything now.
    ``buffered`` is how many bytes written to a socket the kernel has not
    taken yet (0 for an unknown socket); ``drop`` closes one socket now,
    without flushing and without reporting it (the loop reports it), and
    releases it as ``close`` would.
    """

    def clock(self) -> float: ...

    def open(self, action: OpenSocket) -> None: ...

    def write(self, sock: SocketId, data: bytes) -> None: ...

    def close(self, sock: SocketId) -> None: ...

    def arm_timer(self, deadline: float | None) -> None: ...

    def wake_consumer(self) -> None: ...

    def abort(self) -> None: ...

    def buffered(self, sock: SocketId) -> int: ...

    def drop(self, sock: SocketId) -> None: ...


class Sink(Protocol):
    """Where the loop puts events, and whether a socket may be read."""

    def push(self, event: ev.Event, origin: SocketId | None) -> None: ...

    def reading_allowed(self, sock: SocketId) -> bool: ...

    def deliver(self) -> bool:
        """Called after the actions of a batch are performed; True if it ran user code."""
        ...


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


class DriverLoop:
    """One session driven through a driver's primitives (see the module docstring).

    Inputs (:meth:`start`, :meth:`opened`, :meth:`data`, :meth:`eof`,
    :meth:`failed`, :meth:`timer`, :meth:`command`) each read the clock once,
    call the session and perform what it drained.  An exception escaping the
    core is a bug: the loop keeps it in :attr:`error`, aborts the driver and
    ignores every later input.
    """

    __slots__ = (
        "_armed",
        "_cause",
        "_clock",
        "_failing",
        "_held",
        "_stalled",
        "close_timeout",
        "end",
        "error",
        "fatal",
        "finished",
        "io",
        "log",
        "max_write_buffer",
        "session",
        "sink",
    )

    def __init__(
        self,
        session: Session,
        sink: Sink,
        io: DriverIO,
        log: StreamLog,
        *,
        close_timeout: float,
        max_write_buffer: int = 1 << 20,
    ) -> None:
        self.session = session
        self.sink = sink
        self.io = io
        self.log = log
        self.close_timeout = close_timeout
        self.max_write_buffer = max_write_buffer
        self._stalled: dict[SocketId, float] = {}  # over max_write_buffer since (clock)
        self._clock = io.clock
        self.end: ev.SessionEnded | None = None
        """The session's :class:`SessionEnded`, once handed over."""
        self.error: BaseException | None = None
        """An exception that escaped the core (a bug): the driver stopped."""
        self.fatal: TransportError | None = None
        """The transport error that ended the session before it ever connected."""
        self.finished = False
        """The session ended and the driver let go of every socket."""
        self._held: set[SocketId] = set()
        self._armed: float | None = None
        self._failing: tuple[SocketId, TransportError] | None = None
        self._cause: tuple[RemoteProtocolError, TransportError] | None = None

    # --- inputs --------------------------------------------------------------------------

    def start(self) -> None:
        self._feed(None, self.session.start)

    def opened(self, sock: SocketId) -> None:
        self._feed(sock, self.session.socket_opened, sock)

    def data(self, sock: SocketId, data: bytes) -> None:
        # _feed(), inline: this is the input of every message.
        if self.error is None:
            try:
                self.session.receive_data(sock, data, now=self._clock())
            except Exception as exc:  # a bug in the core: stop, and tell the application
                self.crash(exc)
                return
            self._perform(sock)

    def eof(self, sock: SocketId) -> None:
        self._feed(sock, self.session.receive_eof, sock)

    def failed(self, sock: SocketId, error: TransportError) -> None:
        """Opening or using ``sock`` failed; the session says whether it matters."""
        if self.error is None:
            # A failure (ConnectionFailed, logged as a warning) or the end of a close
            # that was under way: the session knows which.
            self.log.for_socket(sock).debug("%s", error)
            self._failing = (sock, error)  # for _note: the failure this input caused
            try:
                self._feed(sock, self.session.socket_failed, sock, str(error))
            finally:
                self._failing = None

    def timer(self, deadline: float) -> None:
        """The timer armed at ``deadline`` fired (maybe a little early)."""
        self._armed = None
        if self._stalled and self.error is None:
            self._check_stalls(max(deadline, self._clock()))
        self._feed(None, lambda *, now: self.session.handle_timer(now=max(deadline, now)))

    @property
    def stalled(self) -> bool:
        """Some socket is over ``max_write_buffer``: :meth:`reading_allowed` may say no."""
        return bool(self._stalled)

    def reading_allowed(self, sock: SocketId) -> bool:
        """Whether the driver may read ``sock`` now: its peer takes what is written to it
        (write backpressure), and the sink has room for its events."""
        if self._stalled and sock in self._stalled:
            if self.io.buffered(sock) > self.max_write_buffer:
                return False
            del self._stalled[sock]
            self.log.for_socket(sock).debug("the peer reads again: reading resumed")
        return self.sink.reading_allowed(sock)

    def _check_stalls(self, now: float) -> None:
        """Drop the sockets that stayed over ``max_write_buffer`` for ``close_timeout``."""
        for sock, since in list(self._stalled.items()):
            waiting = self.io.buffered(sock)
            if waiting <= self.max_write_buffer:
                del self._stalled[sock]
            elif now - since >= self.close_timeout:
                del self._stalled[sock]
                self.io.drop(sock)
                self.failed(
                    sock,
                    TransportError(
                        f"the server stopped reading: {waiting} bytes waited to be sent for"
                        f" {self.close_timeout:g} s (max_write_buffer is"
                        f" {self.max_write_buffer} bytes)"
                    ),
                )

    def _feed(self, origin: SocketId | None, call: Callable[..., None], *args: object) -> None:
        """One input: ``call(*args, now=clock())``, then perform what it caused."""
        if self.error is None:
            try:
                call(*args, now=self._clock())
            except Exception as exc:  # a bug in the core: stop, and tell the application
                self.crash(exc)
                return
            self._perform(origin)

    def command(self, fn: Callable[[Session, float], T]) -> T:
        """Run ``fn(session, now)`` and perform what it caused.

        Raises what ``fn`` raises (the session then changed nothing), and
        :class:`~rtms_proto.ConnectionClosed` once the session ended or the
        driver stopped.
        """
        if self.error is not None:
            raise ConnectionClosed("the driver stopped") from self.error
        if self.session.ended:
            raise ConnectionClosed("the session has ended")
        result = fn(self.session, self._clock())
        self._perform(None)
        return result

    def released(self, sock: SocketId) -> None:
        """The driver let go of ``sock`` for good (closed, or never opened)."""
        self._stalled.pop(sock, None)
        held = self._held
        if sock in held:
            held.discard(sock)
            if not held and self.session.ended and not self.finished:
                self.finished = True
                self.io.wake_consumer()

    def crash(self, exc: BaseException) -> None:
        """An exception escaped the core or the driver (a bug): stop everything."""
        if self.error is None:
            self.error = exc
            self.log.error("the driver stopped on an unexpected error: %r", exc)
        self.io.abort()
        self.io.wake_consumer()

    # --- leaving ---------------------------------------------------------------------------

    def leave(self) -> float | None:
        """The application left the stream in order: stop the session unless it is ending.

        Returns the deadline (on the driver's clock) until which the driver
        waits for :attr:`finished` before closing every socket at once, or
        None when there is nothing to wait for.
        """
        if not self.finished and self.error is None and not self.session.ended:
            with contextlib.suppress(ConnectionClosed):  # unless it is ending already
                self.command(_stop)
        if self.finished or self.error is not None:
            return None
        return self._clock() + self.close_timeout

    def left_unfinished(self) -> None:
        """The close deadline of :meth:`leave` passed: say so (the driver aborts)."""
        self.log.warning(
            "the session did not end within %g s; closing its sockets", self.close_timeout
        )

    def check_connected(self) -> None:
        """After ``connect()`` waited for the first signaling handshake (or the end):
        raise what stopped it, if anything did."""
        if self.error is not None:
            raise self.error
        if self.session.has_connected:
            return
        if self.fatal is not None:
            raise self.fatal
        end = self.end
        if end is not None and end.error is not None:
            raise end.error

    # --- performing ------------------------------------------------------------------------

    def _perform(self, origin: SocketId | None) -> None:
        """Perform the session's actions in order and hand its events over, until quiet."""
        session = self.session
        sink = self.sink
        push = sink.push
        io = self.io
        try:
            out = session.drain()
            while True:
                acted = False  # an action or user code may have caused more output
                for item in out:
                    kind = _KINDS.get(type(item))
                    if kind is None:  # an event, most often a media packet
                        push(item, origin)  # type: ignore[arg-type]
                        continue
                    if kind is _EVENT:
                        self._note(item)  # type: ignore[arg-type]
                        push(item, origin)  # type: ignore[arg-type]
                        continue
                    acted = True
                    sock = item.sock  # type: ignore[union-attr]
                    if kind is SendBytes:
                        io.write(sock, item.data)  # type: ignore[union-attr]
                        if io.buffered(sock) > self.max_write_buffer:
                            self._over(sock)
                    elif kind is OpenSocket:
                        self._held.add(sock)
                        io.open(item)  # type: ignore[arg-type]
                    else:
                        self._stalled.pop(sock, None)  # its close is bounded on its own
                        io.close(sock)
                if sink.deliver():
                    acted = True
                if not acted:
                    break  # only events went to the sink: the session has nothing more
                out = session.drain()
                if not out:
                    break
                origin = None
        except Exception as exc:
            self.crash(exc)
            return
        deadline = session.next_deadline()
        if self._stalled:
            due = min(self._stalled.values()) + self.close_timeout
            deadline = due if deadline is None else min(deadline, due)
        armed = self._armed
        if deadline is None:
            if armed is not None:
                self._armed = None
                io.arm_timer(None)
        elif armed is None or deadline < armed:
            # Armed lazily: a deadline that moved later (each message moves the
            # keep-alive deadline) keeps the earlier timer, which fires early, finds
            # nothing due, and is armed again at the deadline of that time.
            self._armed = deadline
            io.arm_timer(deadline)
        if not self._held and not self.finished and session.ended:
            self.finished = True
        io.wake_consumer()

    def _over(self, sock: SocketId) -> None:
        """``sock`` holds more than ``max_write_buffer`` unsent bytes: stop reading it."""
        if sock not in self._stalled:
            self._stalled[sock] = self._clock()
            self.log.for_socket(sock).warning(
                "the server is not reading: %d bytes wait to be sent; reading paused"
                " (it fails if that lasts %g s)",
                self.io.buffered(sock),
                self.close_timeout,
            )

    def _note(self, event: ev.Event) -> None:
        log = self.log
        if isinstance(event, ev.SignalingConnected):
            log.for_socket(event.sock).info("signaling handshake done")
        elif isinstance(event, ev.MediaConnected):
            log.for_socket(event.sock).info("media handshake done")
        elif isinstance(event, ev.ConnectionFailed):
            log.for_socket(event.sock).warning("socket failed: %s", event.error)
            failing = self._failing
            if failing is not None and failing[0] == event.sock:
                self._cause = (event.error, failing[1])
        elif isinstance(event, ev.SessionEnded):
            self.end = event
            cause = self._cause
            if (
                cause is not None
                and event.why is ev.EndReason.FATAL_ERROR
                and event.error is cause[0]
                and not self.session.has_connected
            ):
                self.fatal = cause[1]
            log.info("session ended: %s (%s)", event.why.value, event.detail)
        elif isinstance(event, ev.SocketClosed):
            log.for_socket(event.sock).debug("closed (by peer: %s)", event.by_peer)
        elif isinstance(event, ev.ReconnectScheduled):
            what = event.scope.value
            if event.media_type is not None:
                what += f" ({media_name(event.media_type)})"
            log.info(
                "reconnect %s, attempt %d, in %.2f s: %s",
                what,
                event.attempt,
                event.delay,
                event.reason.value,
            )
        else:
            log.info("%s", type(event).__name__)


def _stop(session: Session, now: float) -> None:
    session.stop(now=now)
