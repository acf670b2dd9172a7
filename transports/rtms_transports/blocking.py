"""Run an RTMS session on plain sockets: ``selectors`` and non-blocking sockets, no event loop.

High level::

    with connect(webhook_body) as stream:
        for event in stream:
            ...

The loops of every ``connect()`` stream of the process run on one shared I/O
thread ("rtms-io": one selector for all their sockets), started with the first
stream and stopped when the last one has left.  It feeds each stream's bounded
event queue, which ``for event in stream`` reads in the application's thread:
the loop keeps answering keep-alives and running timers while the application
works on an event.  Commands (``stream.close_stream()`` ...) are handed to the
I/O thread and return when performed; they may be called from any thread.
Host names are looked up on a few threads beside it ("rtms-resolve": at most
four per I/O thread, alive only while there are lookups to do; an IP literal
needs none), as on a pool's: a slow DNS server delays the sockets waiting for
their lookup (within ``connect_timeout``), not the other streams.

Low level, for an application that builds its own :class:`~rtms_proto.Session`:
:func:`run_session` (or :class:`SessionRunner`) runs the loop in the calling
thread and calls a handler with each event.

Many streams: a :class:`Pool` runs the loops of any number of streams on an
I/O thread of its own (one selector), which :meth:`Pool.close` stops with
every stream still running; :meth:`Pool.start` calls a handler with each event
on that thread, so that a stream needs no thread at all::

    with Pool() as pool:
        with pool.connect(webhook_body) as stream:   # the same Stream
            for event in stream:
                ...
        meeting = pool.start(other_webhook_body, handler)  # or a callback per event
        meeting.wait()

``connect()`` costs a thread per stream, the application's, that iterates it;
from a few dozen real-time streams on, handlers on a pool cost less memory per
stream and wake fewer threads per message (see the README).

The loop is the shared :class:`~rtms_transports._loop.DriverLoop` on the
reactor of :mod:`rtms_transports._reactor`: one ``selectors`` selector over
the sessions' sockets (TLS through memory buffers), ``time.monotonic()`` for
the clock, the selector's timeout for the sessions' next deadline, and a
socket pair to wake it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from rtms_proto import (
    ConnectionClosed,
    Credentials,
    Layout,
    MediaParams,
    MediaType,
    Session,
    SocketId,
)
from rtms_proto import events as ev

from ._common import (
    Prepared,
    StreamLog,
    TlsSetup,
    TransportOptions,
    WebhookSource,
    prepare,
    session_log,
)
from ._loop import HandlerSink
from ._queue import EventBuffer
from ._reactor import Hub, Reactor
from ._stream import StreamBase, StreamCommands

__all__ = ["Pool", "PoolSession", "SessionRunner", "Stream", "connect", "run_session"]

T = TypeVar("T")


class _ThreadSink:
    """Events of a step go to the shared buffer at once, under its lock."""

    def __init__(self, buffer: EventBuffer, cond: threading.Condition) -> None:
        self.buffer = buffer
        self.cond = cond
        self._batch: list[tuple[ev.Event, SocketId | None]] = []

    def push(self, event: ev.Event, origin: SocketId | None) -> None:
        self._batch.append((event, origin))

    def reading_allowed(self, sock: SocketId) -> bool:
        return self.buffer.reading_allowed(sock)

    def deliver(self) -> bool:
        if self._batch:
            with self.cond:
                push = self.buffer.push
                for event, origin in self._batch:
                    push(event, origin)
                self.cond.notify_all()
            self._batch.clear()
        return False


class Stream(StreamBase):
    """One RTMS stream: iterate it for events; its commands go to the session.

    Iteration blocks until an event arrives and ends after
    :class:`~rtms_proto.events.SessionEnded`.  Commands (:meth:`close_stream`,
    :meth:`subscribe_video`, ...) run on the stream's loop thread and return
    when done; they raise what the session raises.
    """

    _driver: Reactor

    def __init__(self, driver: Reactor, buffer: EventBuffer, lock: threading.RLock) -> None:
        super().__init__(driver, buffer)
        self._lock = lock  # the lock of driver.cond

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> ev.Event:
        return self._next(None)

    def receive(self, timeout: float | None = None) -> ev.Event:
        """The next event, waiting at most ``timeout`` seconds (:class:`TimeoutError`);
        raises :class:`ConnectionClosed` after the session ended."""
        try:
            return self._next(timeout)
        except StopIteration:
            raise ConnectionClosed("the session has ended") from None

    def _next(self, timeout: float | None) -> ev.Event:
        buffer = self._buffer
        driver = self._driver
        deadline = None if timeout is None else time.monotonic() + timeout
        # The condition's own lock, taken directly: Condition.__enter__/__exit__
        # are Python code, and this runs once per event.
        with self._lock:
            while True:
                event = buffer.pop()
                if event is not None:
                    unblocked = buffer.unblocked
                    buffer.unblocked = False
                    break
                if driver.loop.error is not None:
                    raise driver.loop.error
                if self._over or driver.finished:
                    raise StopIteration
                if deadline is None:
                    driver.cond.wait()
                elif not driver.cond.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError("no event in time")
        if unblocked:
            driver.wake()
        if type(event) is ev.SessionEnded:
            self._over = True
        return event


def connect(
    source: WebhookSource,
    *,
    credentials: Credentials | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    media: MediaType | None = None,
    layout: Layout | None = None,
    params: MediaParams | None = None,
    allowed_hosts: Sequence[str] | None = None,
    options: TransportOptions | None = None,
    logger: logging.Logger | None = None,
    jitter: Callable[[], float] = random.random,
) -> contextlib.AbstractContextManager[Stream]:
    """Join the stream of an ``rtms_started`` webhook; yields a :class:`Stream`.

    Runs the stream's loop on the I/O thread that every ``connect()`` stream
    of the process shares (started if none is running) and returns once the
    signaling handshake succeeded.  Raises :class:`~rtms_transports.TransportError`
    when the signaling socket cannot be opened (with ``options.fail_fast``), or
    the session's :class:`~rtms_proto.RemoteProtocolError` when it ends before
    connecting; ``RuntimeError`` on an I/O thread (a :class:`Pool`'s handler),
    where waiting for the stream would stall that thread.  Leaving the block
    stops the session in order (close frames, bounded by
    ``options.close_timeout``); leaving it by an exception (``KeyboardInterrupt``
    included) closes every socket at once.  Either way the stream's sockets are
    closed when ``connect()`` returns, and the I/O thread has ended if no other
    stream uses it.
    """
    _not_on_io_thread("connect()")
    prep = prepare(
        source,
        credentials=credentials,
        client_id=client_id,
        client_secret=client_secret,
        media=media,
        layout=layout,
        params=params,
        allowed_hosts=allowed_hosts,
        options=options,
        logger=logger,
    )
    return _Joined(prep, jitter, None)


_IO_THREADS: set[int] = set()
"""The threads that run a :class:`Hub` (a pool's or the shared one): :func:`connect`
refuses to wait on them.  A set of ids rather than a ``threading.local``, which would
give every thread that calls ``connect()`` a dictionary of its own."""


def _serve(hub: Hub) -> None:
    """Run ``hub`` on this thread, marked so that :func:`connect` refuses to wait on it."""
    me = threading.get_ident()
    _IO_THREADS.add(me)
    try:
        hub.run()
    finally:
        _IO_THREADS.discard(me)


class _SharedHub:
    """The one I/O thread of every :func:`connect` stream, counted by its streams.

    The first stream starts the thread, the last one to leave closes the hub and
    joins it, both under one lock, so a stream is never added to a hub that is
    closing and no thread outlives the streams.  A stream holds its count from
    before it is added to the hub until after its loop stopped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hub: Hub | None = None
        self._thread: threading.Thread | None = None
        self._users = 0

    def acquire(self) -> Hub:
        """The running hub (started if none is), counted as used until :meth:`release`."""
        with self._lock:
            hub = self._hub
            if hub is None:
                hub = Hub()
                thread = threading.Thread(target=_serve, args=(hub,), name="rtms-io", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # no thread could be started: close the hub's sockets
                    hub.close()
                    hub.run()
                    raise
                self._hub, self._thread = hub, thread
            self._users += 1
            return hub

    def release(self, hub: Hub) -> None:
        """One stream of ``hub`` has stopped; the last one stops the thread."""
        with self._lock:
            if hub is not self._hub:
                return  # acquired before a fork, in the parent
            self._users -= 1
            if self._users:
                return
            thread = self._thread
            self._hub = self._thread = None
            hub.close()
            if thread is not None:
                thread.join()

    def reset(self) -> None:
        """In a fork's child: the thread was not copied, and the lock may have been held."""
        _IO_THREADS.clear()  # no hub runs in the child: their ids may be reused
        self._lock = threading.Lock()
        self._hub = self._thread = None
        self._users = 0


_SHARED = _SharedHub()
os.register_at_fork(after_in_child=_SHARED.reset)


class _Joined:
    """The ``with`` block of one stream on a hub (:func:`connect`: the shared one;
    :meth:`Pool.connect`: the pool's).

    A class rather than a generator: a process holding a thousand idle streams
    holds a thousand of these, and a suspended generator (two, with
    ``connect``'s own) costs several times this object.
    """

    __slots__ = ("_buffer", "_driver", "_hub", "_jitter", "_prep", "_shared")

    def __init__(self, prep: Prepared, jitter: Callable[[], float], hub: Hub | None) -> None:
        self._prep = prep
        self._jitter = jitter
        self._shared = hub is None  # the shared I/O thread: counted while the block runs
        self._hub = hub
        self._driver: Reactor | None = None
        self._buffer: EventBuffer | None = None

    def __enter__(self) -> Stream:
        hub = self._hub = _SHARED.acquire() if self._shared else self._hub
        assert hub is not None
        try:
            return self._join(hub)
        except BaseException:
            if self._shared:
                _SHARED.release(hub)
            raise

    def _join(self, hub: Hub) -> Stream:
        prep = self._prep
        lock = threading.RLock()
        cond = threading.Condition(lock)
        buffer = self._buffer = EventBuffer(
            prep.options.max_events,
            prep.options.backpressure,
            prep.log,
            prep.options.max_queue_bytes,
        )
        driver = Reactor(
            Session(prep.config, jitter=self._jitter),
            _ThreadSink(buffer, cond),
            prep.options,
            prep.log,
            prep.tls,
            cond=cond,
            hub=hub,
        )
        loop = driver.loop
        hub.add(driver)
        self._driver = driver
        try:
            with cond:
                while not loop.session.has_connected and not driver.finished:
                    cond.wait()
            loop.check_connected()
            if not loop.session.has_connected and loop.end is None:
                raise ConnectionClosed("the pool was closed before the stream connected")
        except BaseException:
            self._leave(graceful=False)
            raise
        return Stream(driver, buffer, lock)

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            self._leave(graceful=exc_type is None)
        finally:
            if self._shared:
                assert self._hub is not None
                _SHARED.release(self._hub)

    def _leave(self, *, graceful: bool) -> None:
        """In order (``stop()``, bounded by ``close_timeout``) when ``graceful``, else at
        once; returns when the stream's loop has stopped."""
        driver, buffer = self._driver, self._buffer
        assert driver is not None and buffer is not None
        cond = driver.cond
        loop = driver.loop
        with cond:
            buffer.discard()
        if graceful and not driver.finished:
            with contextlib.suppress(ConnectionClosed):  # unless the loop already stopped
                deadline = driver.call(loop.leave)
                if deadline is not None:
                    with cond:
                        cond.wait_for(
                            lambda: driver.finished, max(0.0, deadline - time.monotonic())
                        )
                    if not driver.finished:
                        loop.left_unfinished()
        driver.request_abort()
        with cond:
            cond.wait_for(lambda: driver.finished)


def _not_on_io_thread(what: str) -> None:
    """Refuse to wait for an I/O thread on one (a pool's handler): it would hang, or stall
    every stream of that thread."""
    if threading.get_ident() in _IO_THREADS:
        raise RuntimeError(f"{what} waits for an I/O thread: not from a pool's handler")


class PoolSession(StreamCommands):
    """One stream of a :class:`Pool` whose events go to a handler (:meth:`Pool.start`).

    Has the commands of a :class:`Stream` (:meth:`stop`, :meth:`close_stream`
    ...), callable from any thread, the handler included.
    """

    def __init__(self, driver: Reactor) -> None:
        self._driver = driver
        self._config = driver.loop.session.config

    def _command(self, fn: Callable[[Session, float], T]) -> T:
        return self._driver.command(fn)

    @property
    def ended(self) -> ev.SessionEnded | None:
        """The session's end, once it happened."""
        return self._driver.loop.end

    @property
    def finished(self) -> bool:
        """The session's loop stopped: it ended (or was aborted) and its sockets are closed."""
        return self._driver.finished

    def wait(self, timeout: float | None = None) -> ev.SessionEnded:
        """Wait until the session ended and its sockets are closed; its
        :class:`~rtms_proto.events.SessionEnded`.

        Raises :class:`TimeoutError` after ``timeout`` seconds, the driver's
        error if it stopped on one, and :class:`~rtms_proto.ConnectionClosed`
        if it was aborted before the session ended.
        """
        driver = self._driver
        _not_on_io_thread("PoolSession.wait()")
        with driver.cond:
            if not driver.cond.wait_for(lambda: driver.finished, timeout):
                raise TimeoutError("the session has not ended yet")
        if driver.loop.error is not None:
            raise driver.loop.error
        ended = driver.loop.end
        if ended is None:
            raise ConnectionClosed("the session was aborted before it ended")
        return ended

    def abort(self) -> None:
        """Close every socket of this session now (no goodbye); from any thread."""
        self._driver.request_abort()


class Pool:
    """Many streams on one I/O thread: one ``selectors`` loop serves all their sockets.

    :meth:`connect` is :func:`connect` on the pool (a :class:`Stream` per
    stream, iterated by whichever thread the application likes);
    :meth:`start` and :meth:`start_session` call a handler with each event,
    on the pool's thread, so that a thousand streams need no thread of their
    own.  A handler must be quick: while it runs, no socket of the pool is
    read or answered; it may issue commands, but not wait for the pool
    (:meth:`PoolSession.wait` and :meth:`connect` raise ``RuntimeError`` there).
    Leaving the ``with`` block (or :meth:`close`) closes the sockets of the
    streams still running at once and stops the thread;
    end them first (``stop()`` then :meth:`PoolSession.wait`) to leave in order.
    """

    def __init__(self, *, name: str = "rtms-pool") -> None:
        self._hub = Hub()
        self._thread = threading.Thread(target=_serve, args=(self._hub,), name=name, daemon=True)
        self._thread.start()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Accept no more streams, abort the ones still running, stop the thread."""
        self._hub.close(abort=True)
        self._thread.join()

    def connect(
        self,
        source: WebhookSource,
        *,
        credentials: Credentials | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        media: MediaType | None = None,
        layout: Layout | None = None,
        params: MediaParams | None = None,
        allowed_hosts: Sequence[str] | None = None,
        options: TransportOptions | None = None,
        logger: logging.Logger | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> contextlib.AbstractContextManager[Stream]:
        """:func:`connect`, with the stream's loop on the pool's thread (same arguments,
        same behaviour); raises :class:`~rtms_proto.ConnectionClosed` once the pool
        is closed."""
        _not_on_io_thread("Pool.connect()")
        prep = prepare(
            source,
            credentials=credentials,
            client_id=client_id,
            client_secret=client_secret,
            media=media,
            layout=layout,
            params=params,
            allowed_hosts=allowed_hosts,
            options=options,
            logger=logger,
        )
        return _Joined(prep, jitter, self._hub)

    def start(
        self,
        source: WebhookSource,
        handler: Callable[[ev.Event], object],
        *,
        credentials: Credentials | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        media: MediaType | None = None,
        layout: Layout | None = None,
        params: MediaParams | None = None,
        allowed_hosts: Sequence[str] | None = None,
        options: TransportOptions | None = None,
        logger: logging.Logger | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> PoolSession:
        """Join the stream of an ``rtms_started`` webhook, calling ``handler`` with each
        event on the pool's thread; returns at once (the events tell how it goes).

        Raises what :func:`connect` raises for bad arguments (before any I/O), and
        :class:`~rtms_proto.ConnectionClosed` once the pool is closed.
        """
        prep = prepare(
            source,
            credentials=credentials,
            client_id=client_id,
            client_secret=client_secret,
            media=media,
            layout=layout,
            params=params,
            allowed_hosts=allowed_hosts,
            options=options,
            logger=logger,
        )
        session = Session(prep.config, jitter=jitter)
        return self._start(session, handler, prep.options, prep.log, prep.tls)

    def start_session(
        self,
        session: Session,
        handler: Callable[[ev.Event], object],
        *,
        options: TransportOptions | None = None,
        logger: logging.Logger | None = None,
    ) -> PoolSession:
        """Drive a :class:`~rtms_proto.Session` you built on the pool's thread, calling
        ``handler`` with each event (as :class:`SessionRunner`, without a thread)."""
        opts = options if options is not None else TransportOptions()
        return self._start(session, handler, opts, session_log(session.config, logger), None)

    def _start(
        self,
        session: Session,
        handler: Callable[[ev.Event], object],
        options: TransportOptions,
        log: StreamLog,
        tls: TlsSetup | None,
    ) -> PoolSession:
        driver = Reactor(session, HandlerSink(handler), options, log, tls, hub=self._hub)
        self._hub.add(driver)
        return PoolSession(driver)


class SessionRunner:
    """Drive a :class:`~rtms_proto.Session` you built, calling ``handler`` with each event.

    :meth:`run` runs the loop in the calling thread until the session ends and
    returns its :class:`~rtms_proto.events.SessionEnded`.  ``handler`` runs on
    that thread, after the actions of its batch were performed; while it runs
    nothing is read or answered, so it must be quick.  :meth:`command` may be
    called from the handler or from any other thread.  Transport failures are
    the session's to handle (it retries per its policy).
    """

    def __init__(
        self,
        session: Session,
        handler: Callable[[ev.Event], object],
        *,
        options: TransportOptions | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._driver = Reactor(
            session,
            HandlerSink(handler),
            options if options is not None else TransportOptions(),
            session_log(session.config, logger),
            None,
        )
        self._started = False

    def run(self) -> ev.SessionEnded:
        if self._started:
            raise RuntimeError("a SessionRunner runs once")
        self._started = True
        driver = self._driver
        driver.run()
        if driver.loop.error is not None:
            raise driver.loop.error
        ended = driver.loop.end
        if ended is None:
            raise ConnectionClosed("the runner was stopped before the session ended")
        return ended

    def command(self, fn: Callable[[Session, float], T]) -> T:
        """Run ``fn(session, now)`` on the session and perform what it caused."""
        return self._driver.command(fn)

    def abort(self) -> None:
        """Stop the loop at once (from any thread); :meth:`run` then raises ConnectionClosed."""
        self._driver.request_abort()


def run_session(
    session: Session,
    handler: Callable[[ev.Event], object],
    *,
    options: TransportOptions | None = None,
    logger: logging.Logger | None = None,
) -> ev.SessionEnded:
    """Run ``session`` in this thread until it ends, calling ``handler`` with each event
    (see :class:`SessionRunner`)."""
    return SessionRunner(session, handler, options=options, logger=logger).run()
