"""Run an RTMS session on asyncio.

High level::

    async with connect(webhook_body) as stream:
        async for event in stream:
            ...

Low level, for an application that builds its own :class:`~rtms_proto.Session`:
:func:`run_session` (or :class:`SessionRunner`) performs the session's actions
and calls a handler with each event.

The driver gives the shared :class:`~rtms_transports._loop.DriverLoop` its
primitives: sockets are asyncio protocols (``BufferedProtocol``) whose bytes
go straight into the loop, writes go to the transports, the one timer is a
``loop.call_at`` handle, and the clock is ``loop.time()``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from rtms_proto import (
    ConnectionClosed,
    Credentials,
    Layout,
    MediaParams,
    MediaType,
    OpenSocket,
    Session,
    SocketId,
)
from rtms_proto import events as ev

from ._common import (
    StreamLog,
    TlsSetup,
    TransportOptions,
    WebhookSource,
    prepare,
    session_log,
    tls_setup,
)
from ._errors import CLOSED_DURING_TLS, ProxyError, as_transport_error, check_plaintext
from ._loop import DriverLoop, HandlerSink, Sink
from ._proxy import ProxyConfig, Tunnel, open_tunnel, resolve_for_tunnel
from ._queue import EventBuffer
from ._stream import AsyncStream

__all__ = ["SessionRunner", "Stream", "connect", "run_session"]

T = TypeVar("T")


class _Sock:
    """One socket of the session, from OpenSocket to its connection_lost."""

    __slots__ = (
        "action",
        "close_timer",
        "closed",
        "eof",
        "id",
        "log",
        "proto",
        "reading",
        "task",
        "transport",
    )

    def __init__(self, action: OpenSocket, log: StreamLog) -> None:
        self.action = action
        self.id = action.sock
        self.log = log
        self.task: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.proto: _Protocol | None = None
        self.closed = False  # CloseSocket performed: feed nothing more
        self.close_timer: asyncio.TimerHandle | None = None  # aborts a flush that takes too long
        self.eof = False
        self.reading = True


_READ_BUFFERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, memoryview]] = (
    weakref.WeakKeyDictionary()
)


def _read_buffer(loop: asyncio.AbstractEventLoop, size: int) -> memoryview:
    """The receive buffer of ``size`` bytes that every socket of ``loop`` reads into.

    One per event loop (and size), not one per socket: asyncio fills a
    protocol's buffer and calls ``buffer_updated`` before it runs anything
    else (plain sockets and ``start_tls`` alike), and ``buffer_updated``
    copies the bytes out first, so a read is consumed before the next one
    starts.  An idle socket then costs no receive buffer at all.  (A loop that
    cannot be weakly referenced gets a buffer per call, as sockets once did.)
    """
    try:
        buffers = _READ_BUFFERS.get(loop)
        if buffers is None:
            buffers = _READ_BUFFERS[loop] = {}
    except TypeError:
        return memoryview(bytearray(size))
    view = buffers.get(size)
    if view is None:
        view = buffers[size] = memoryview(bytearray(size))
    return view


class _Protocol(asyncio.BufferedProtocol):
    """Bytes of one socket into the driver; first the proxy's answer, if any."""

    def __init__(self, driver: _Driver, sock: _Sock, read_size: int) -> None:
        self._driver = driver
        self._sock = sock
        self._view = _read_buffer(driver.aio, read_size)
        self.lost: asyncio.Future[None] = driver.aio.create_future()
        self.proxy: Tunnel | None = None
        self.tunnel: asyncio.Future[None] | None = None
        self._raw: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.proxy is not None and not self.proxy.done:
            assert isinstance(transport, asyncio.WriteTransport)
            self._raw = transport
            transport.write(self.proxy.data_to_send())

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        data = self._view[:nbytes].tobytes()  # first: the buffer is shared (_read_buffer)
        proxy = self.proxy
        if proxy is not None and not proxy.done:
            self._tunnel_step(lambda: proxy.receive_data(data))
            return
        sock = self._sock
        if not sock.closed:  # CloseSocket performed: feed nothing more
            self._driver.loop.data(sock.id, data)

    def resume_writing(self) -> None:
        # The peer took bytes again: reading may resume (write backpressure).
        self._driver.update_reading()

    def eof_received(self) -> bool:
        proxy = self.proxy
        if proxy is not None and not proxy.done:
            self._tunnel_step(proxy.eof)
            return False
        self._driver.on_eof(self._sock)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if self.tunnel is not None and not self.tunnel.done():
            self.tunnel.set_exception(
                exc or ConnectionResetError("the proxy closed the connection")
            )
        self._driver.on_lost(self._sock, exc)

    def _tunnel_step(self, step: Callable[[], object]) -> None:
        tunnel = self.tunnel
        assert tunnel is not None
        try:
            opened = step()
            assert self.proxy is not None and self._raw is not None
            pending = self.proxy.data_to_send()  # the next SOCKS5 request, if any
            if pending:
                self._raw.write(pending)
            if opened and not tunnel.done():
                tunnel.set_result(None)
        except ProxyError as exc:
            if not tunnel.done():
                tunnel.set_exception(exc)


class _Driver:
    """One session's sockets and timer on the running loop: the primitives of a
    :class:`DriverLoop`."""

    def __init__(
        self,
        session: Session,
        sink: Sink,
        options: TransportOptions,
        log: StreamLog,
        tls: TlsSetup | None,
    ) -> None:
        self.aio = asyncio.get_running_loop()
        self.clock = self.aio.time
        self.sink = sink
        self.options = options
        self.log = log
        self._tls = tls
        self._socks: dict[SocketId, _Sock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._protos: set[_Protocol] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._buffer = sink if isinstance(sink, EventBuffer) else None
        self._paused = 0  # sockets update_reading paused (at its last full pass)
        self.done = asyncio.Event()
        self.loop = DriverLoop(
            session,
            sink,
            self,
            log,
            close_timeout=options.close_timeout,
            max_write_buffer=options.max_write_buffer,
        )

    @property
    def finished(self) -> bool:
        return self.loop.finished or self.loop.error is not None

    def command(self, fn: Callable[[Session, float], T]) -> T:
        """Run ``fn(session, now)`` and perform what it caused (from the loop's thread)."""
        return self.loop.command(fn)

    # --- socket inputs -------------------------------------------------------------------

    def on_eof(self, sock: _Sock) -> None:
        if not sock.closed and not sock.eof:
            sock.eof = True
            self.loop.eof(sock.id)

    def on_lost(self, sock: _Sock, exc: Exception | None) -> None:
        if sock.close_timer is not None:
            sock.close_timer.cancel()
            sock.close_timer = None
        if sock.proto is not None:
            self._protos.discard(sock.proto)
        if sock.transport is None:
            return  # still opening: the opening task reports it
        if self._socks.get(sock.id) is sock:
            del self._socks[sock.id]
        if not sock.closed and not sock.eof:
            sock.closed = True
            a = sock.action
            self.loop.failed(
                sock.id, as_transport_error(exc, host=a.host, port=a.port, opened=True)
            )
        self.loop.released(sock.id)

    # --- primitives ----------------------------------------------------------------------

    def open(self, action: OpenSocket) -> None:
        sock = _Sock(action, self.log.for_socket(action.sock))
        self._socks[action.sock] = sock
        task = self.aio.create_task(self._connect(sock), name=f"rtms-open-{action.sock}")
        sock.task = task
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(t, sock))

    def write(self, sock_id: SocketId, data: bytes) -> None:
        sock = self._socks.get(sock_id)
        if sock is not None and sock.transport is not None and not sock.closed:
            sock.transport.write(data)

    def buffered(self, sock_id: SocketId) -> int:
        sock = self._socks.get(sock_id)
        if sock is None or sock.transport is None:
            return 0
        return sock.transport.get_write_buffer_size()

    def drop(self, sock_id: SocketId) -> None:
        sock = self._socks.get(sock_id)
        if sock is None or sock.closed:
            return
        sock.closed = True  # connection_lost reports nothing, and releases it
        if sock.transport is not None:
            sock.transport.abort()

    def close(self, sock_id: SocketId) -> None:
        sock = self._socks.get(sock_id)
        if sock is None or sock.closed:
            return  # unknown, or never opened: nothing to close
        sock.closed = True
        if sock.transport is None:
            del self._socks[sock_id]
            task = sock.task
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
        else:
            sock.log.debug("closing")
            sock.transport.close()  # flushes what was written, then closes...
            # ... within close_timeout: a peer that does not read cannot hold it open.
            sock.close_timer = self.aio.call_later(
                self.options.close_timeout, self._close_overdue, sock
            )

    def _close_overdue(self, sock: _Sock) -> None:
        sock.close_timer = None
        transport = sock.transport
        if transport is not None and sock.proto is not None and not sock.proto.lost.done():
            sock.log.debug(
                "could not flush within close_timeout (%g s): aborting", self.options.close_timeout
            )
            transport.abort()

    def arm_timer(self, deadline: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self.aio.call_at(deadline, self._fire)

    def wake_consumer(self) -> None:
        buffer = self._buffer
        loop = self.loop
        if self._paused or loop.stalled or (buffer is not None and buffer.full):
            self.update_reading()  # (its own first test, inline: this is every input)
        if loop.finished:
            self._stop_timer()
            self.done.set()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():  # cancelled with the task that awaited it
                waiter.set_result(None)

    def abort(self) -> None:
        """Close everything now: no goodbye, pending opens cancelled."""
        self._stop_timer()
        for sock in list(self._socks.values()):
            sock.closed = True
            if sock.transport is not None:
                sock.transport.abort()
            elif sock.task is not None:
                sock.task.cancel()
        self._socks.clear()
        for task in self._tasks:
            task.cancel()

    # --- opening -------------------------------------------------------------------------

    def _task_done(self, task: asyncio.Task[None], sock: _Sock) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # pragma: no cover - a bug
            self.loop.crash(task.exception() or RuntimeError("opening task failed"))
        if sock.transport is None:
            self.loop.released(sock.id)  # never opened; an open socket is let go when lost

    async def _connect(self, sock: _Sock) -> None:
        a = sock.action
        proto = _Protocol(self, sock, self.options.read_size)
        sock.proto = proto
        self._protos.add(proto)
        timeout = self.options.connect_timeout
        trust = ""
        try:
            check_plaintext(a.host, a.port, a.secure)
            proxy = self.options.proxy_for(a.host, a.port, a.secure)
            tls = self._tls_setup() if a.secure else None
            trust = tls.trust if tls is not None else ""
            sock.log.connecting(a.host, a.port, a.secure, proxy)
            async with asyncio.timeout(timeout):
                transport = await self._open_transport(a, proto, tls, proxy)
        except BaseException as exc:
            self._protos.discard(proto)  # its transport, if any, was aborted
            if not isinstance(exc, Exception):
                raise  # cancelled (CloseSocket, or the driver stopping)
            if sock.closed:
                return
            error = as_transport_error(exc, host=a.host, port=a.port, trust=trust, timeout=timeout)
            self.loop.failed(sock.id, error)
            return
        if sock.closed:  # closed while the last step completed
            transport.abort()
            return
        if proto.lost.done():  # lost before we could use it
            error = as_transport_error(None, host=a.host, port=a.port, opened=True)
            self.loop.failed(sock.id, error)
            return
        sock.transport = transport
        # pause_writing/resume_writing from the bound on; resume_writing resumes reading.
        transport.set_write_buffer_limits(high=self.options.max_write_buffer)
        sock.log.info("connected to %s:%d", a.host, a.port)
        self.loop.opened(sock.id)

    def _tls_setup(self) -> TlsSetup:
        if self._tls is None:
            self._tls = tls_setup(self.options)
        return self._tls

    async def _open_transport(
        self, a: OpenSocket, proto: _Protocol, tls: TlsSetup | None, proxy: ProxyConfig | None
    ) -> asyncio.Transport:
        """TCP (through the proxy if any), then TLS with ``start_tls``.

        Always in two steps: ``start_tls`` closes the socket when cancelled, while
        ``create_connection(ssl=...)`` on Python 3.11 can leave it open when the
        cancellation lands before the TLS protocol saw the connection.
        """
        loop = self.aio
        if proxy is not None:
            address = None
            if proxy.resolves_here(a.host):  # socks5:// sends an address, not the name
                address = resolve_for_tunnel(await loop.getaddrinfo(a.host, a.port))
            proto.proxy = open_tunnel(proxy, a.host, a.port, address)
            proto.tunnel = loop.create_future()
        host, port = (proxy.host, proxy.port) if proxy is not None else (a.host, a.port)
        raw, _ = await loop.create_connection(lambda: proto, host, port)
        try:
            if proto.tunnel is not None:
                await proto.tunnel
            if tls is None:
                return raw
            try:
                secured = await loop.start_tls(
                    raw,
                    proto,
                    tls.context,
                    server_hostname=a.host,
                    ssl_handshake_timeout=self.options.connect_timeout,
                    ssl_shutdown_timeout=self.options.close_timeout,
                )
            except ConnectionResetError as exc:
                if exc.args:
                    raise
                # asyncio reports the end of the stream here with no text at all.
                raise ConnectionResetError(CLOSED_DURING_TLS) from None
            if secured is None:  # pragma: no cover - only if the socket closed meanwhile
                raise ConnectionResetError(CLOSED_DURING_TLS)
            return secured
        except BaseException:
            raw.abort()
            raise

    # --- timer, reading, waiting ---------------------------------------------------------

    def _fire(self) -> None:
        deadline = self._timer_at
        self._timer = self._timer_at = None
        assert deadline is not None
        self.loop.timer(deadline)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._timer_at = None

    def update_reading(self) -> None:
        """Pause or resume each socket as the loop allows (backpressure).

        Runs after every input: when no socket is paused and nothing could
        pause one (no write stall, the event queue not full), there is
        nothing to look at.
        """
        loop = self.loop
        buffer = self._buffer
        if not self._paused and not loop.stalled and (buffer is None or not buffer.full):
            return
        allowed = loop.reading_allowed
        paused = 0
        for sock in self._socks.values():
            transport = sock.transport
            if transport is None or sock.closed or sock.eof:
                continue
            want = allowed(sock.id)
            if want is not sock.reading:
                sock.reading = want
                if want:
                    transport.resume_reading()
                else:
                    sock.log.debug("event queue full or peer not reading: reading paused")
                    transport.pause_reading()
            if not want:
                paused += 1
        self._paused = paused

    def wait_change(self) -> asyncio.Future[None]:
        """What to await until events arrive or the driver finishes.

        A bare future rather than a coroutine: the consumer waits once per
        read when it keeps up, so this is on the path of every message.
        """
        waiter = self._waiter
        if waiter is None or waiter.done():
            waiter = self._waiter = self.aio.create_future()
        return waiter

    # --- shutting down ------------------------------------------------------------------

    async def wait_closed(self, timeout: float = 2.0) -> None:
        """Wait (bounded) until every opening task ended and every socket is closed."""
        if self._tasks:  # first: a cancelled opening task forgets its protocol
            await asyncio.wait(set(self._tasks), timeout=timeout)
        lost = {p.lost for p in self._protos}
        if lost:
            await asyncio.wait(lost, timeout=timeout)
        await asyncio.sleep(0)  # let transports run their close callbacks

    async def finish(self, graceful: bool) -> None:
        """End the session: in order (``stop()``, bounded) when ``graceful``, else at once."""
        deadline = self.loop.leave() if graceful else None
        if deadline is not None:
            try:
                async with asyncio.timeout_at(deadline):
                    await self.done.wait()
            except TimeoutError:
                self.loop.left_unfinished()
        self.abort()
        await self.wait_closed()


class Stream(AsyncStream):
    """One RTMS stream: ``async for event in stream``; its commands go to the session.

    Iteration ends after :class:`~rtms_proto.events.SessionEnded`.  Commands
    (:meth:`close_stream`, :meth:`subscribe_video`, ...) are plain methods:
    they take effect at once and raise what the session raises.
    """


@asynccontextmanager
async def connect(
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
) -> AsyncIterator[Stream]:
    """Join the stream of an ``rtms_started`` webhook; yields a :class:`Stream`.

    Returns once the signaling handshake succeeded.  Raises
    :class:`~rtms_transports.TransportError` when the signaling socket cannot
    be opened (with ``options.fail_fast``), or the session's
    :class:`~rtms_proto.RemoteProtocolError` when it ends before connecting.
    Leaving the block stops the session in order (close frames, bounded by
    ``options.close_timeout``); leaving it by an exception (cancellation
    included) closes every socket at once.
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
    buffer = EventBuffer(
        prep.options.max_events,
        prep.options.backpressure,
        prep.log,
        prep.options.max_queue_bytes,
    )
    driver = _Driver(Session(prep.config, jitter=jitter), buffer, prep.options, prep.log, prep.tls)
    loop = driver.loop
    graceful = False
    try:
        loop.start()
        while not loop.session.has_connected and not driver.finished:
            await driver.wait_change()
        loop.check_connected()
        yield Stream(driver, buffer)
        graceful = True
    finally:
        buffer.discard()
        await driver.finish(graceful)


class SessionRunner:
    """Drive a :class:`~rtms_proto.Session` you built, calling ``handler`` with each event.

    ``handler`` runs on the loop, after the actions of its batch were
    performed; it must not block.  It may issue commands through
    :meth:`command` (or on the session directly with ``now=loop.time()``).
    Transport failures are the session's to handle (it retries per its
    policy).  :meth:`run` returns the :class:`~rtms_proto.events.SessionEnded`.
    """

    def __init__(
        self,
        session: Session,
        handler: Callable[[ev.Event], object],
        *,
        options: TransportOptions | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._session = session
        self._handler = handler
        self._options = options if options is not None else TransportOptions()
        self._log = session_log(session.config, logger)
        self._driver: _Driver | None = None
        self._aborted = False

    async def run(self) -> ev.SessionEnded:
        """Run until the session ended and every socket is closed (or :meth:`abort`)."""
        if self._driver is not None:
            raise RuntimeError("a SessionRunner runs once")
        driver = self._driver = _Driver(
            self._session, HandlerSink(self._handler), self._options, self._log, None
        )
        try:
            driver.loop.start()
            while not driver.finished and not self._aborted:
                await driver.wait_change()
            if driver.loop.error is not None:
                raise driver.loop.error
        finally:
            driver.abort()
            await driver.wait_closed()
        ended = driver.loop.end
        if ended is None:
            raise ConnectionClosed("the runner was stopped before the session ended")
        return ended

    def abort(self) -> None:
        """Close every socket now (no goodbye); :meth:`run` returns the session's end, or
        raises :class:`~rtms_proto.ConnectionClosed` if it had not ended (a second Ctrl-C)."""
        self._aborted = True
        driver = self._driver
        if driver is not None:
            driver.abort()
            driver.wake_consumer()

    def command(self, fn: Callable[[Session, float], T]) -> T:
        """Run ``fn(session, now)`` on the session and perform what it caused."""
        if self._driver is None:
            raise RuntimeError("the runner is not running")
        return self._driver.command(fn)


async def run_session(
    session: Session,
    handler: Callable[[ev.Event], object],
    *,
    options: TransportOptions | None = None,
    logger: logging.Logger | None = None,
) -> ev.SessionEnded:
    """Run ``session`` until it ends, calling ``handler`` with each event (see
    :class:`SessionRunner`)."""
    return await SessionRunner(session, handler, options=options, logger=logger).run()
