"""Run an RTMS session on trio.

High level::

    async with connect(webhook_body) as stream:
        async for event in stream:
            ...

Low level, for an application that builds its own :class:`~rtms_proto.Session`:
:func:`run_session` (or :class:`SessionRunner`) performs the session's actions
and calls a handler with each event.

Each socket has a reader and a writer task; one timer task sleeps until the
session's next deadline (``trio.current_time()``, so ``trio.testing.MockClock``
drives it too).  All of them live in one cancel scope of their own: leaving
``connect()`` by an exception or a cancellation closes every socket at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

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
from ._errors import CLOSED_DURING_TLS, TransportError, as_transport_error, check_plaintext
from ._loop import DriverLoop, HandlerSink, Sink
from ._proxy import ProxyConfig, ProxyHandshake
from ._queue import EventBuffer
from ._stream import AsyncStream

__all__ = ["SessionRunner", "Stream", "connect", "run_session"]

T = TypeVar("T")

_IO_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)


class _TlsStream:
    """TLS over a trio byte stream with :class:`ssl.MemoryBIO`.

    Unlike :class:`trio.SSLStream`, whose ``receive_some`` returns one TLS record
    per call, a read here returns every record that one transport read
    completed (up to ``max_bytes``): a server that sends one record per
    message costs one scheduling round per read, not per message.  One task
    may receive while another sends (they never interleave inside OpenSSL:
    trio switches tasks only at ``await``).  A TCP close without close_notify
    reads as end of stream, as with ``https_compatible=True``.
    """

    def __init__(self, transport: _SocketStream, context: ssl.SSLContext, hostname: str) -> None:
        self.transport = transport
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname=hostname)
        self._eof = False

    async def do_handshake(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            else:
                await self._flush()
                return
            await self._flush()
            if not await self._fill():
                raise ConnectionResetError(CLOSED_DURING_TLS)

    async def receive_some(self, max_bytes: int) -> bytes:
        while True:
            data = self._read(max_bytes)
            if data or self._eof:
                return data
            if not await self._fill():
                self._in.write_eof()

    def _read(self, max_bytes: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        tls = self._tls
        while size < max_bytes:
            try:
                part = tls.read(max_bytes - size)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof = True
                break
            if not part:
                self._eof = True
                break
            parts.append(part)
            size += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _fill(self) -> bool:
        data = await self.transport.receive_some(1 << 16)
        if not data:
            return False
        self._in.write(data)
        return True

    @property
    def wants_flush(self) -> bool:
        """TLS produced bytes of its own (post-handshake messages) to send."""
        return bool(self._out.pending)

    async def _flush(self) -> None:
        if self._out.pending:
            await self.transport.send_all(self._out.read())

    async def send_all(self, data: bytes) -> None:
        if data:
            self._tls.write(data)
        await self._flush()

    async def aclose(self) -> None:
        """Send close_notify (best effort), then close the transport."""
        try:
            with contextlib.suppress(ssl.SSLError):
                self._tls.unwrap()
            with contextlib.suppress(*_IO_ERRORS):
                await self._flush()
        finally:
            await self.transport.aclose()


class _SocketStream:
    """A connected socket, read and written without trio's per-call checkpoints.

    ``trio.SocketStream.receive_some`` tries ``recv`` first and, when it got
    data, yields to the scheduler before returning it; the next call then finds
    nothing and waits: two scheduling rounds per read, and a read of a real-time
    stream usually carries one message.  Here a read waits for readability
    first, then receives: one round per read, and every read is still a
    checkpoint (a flooding peer cannot starve the other tasks).  The socket is
    detached from the trio stream that opened it (trio did the connecting and
    the proxy handshake); closing goes through ``notify_closing``, as trio's own.
    """

    __slots__ = ("sock",)

    def __init__(self, opened: trio.SocketStream) -> None:
        tsock = opened.socket
        family, kind, proto = tsock.family, tsock.type, tsock.proto
        self.sock = socket.socket(family, kind, proto, fileno=tsock.detach())
        self.sock.setblocking(False)

    @property
    def transport(self) -> _SocketStream:
        return self

    async def receive_some(self, max_bytes: int) -> bytes:
        sock = self.sock
        while True:
            if sock.fileno() < 0:
                raise trio.ClosedResourceError("the socket was closed")
            await trio.lowlevel.wait_readable(sock)
            try:
                return sock.recv(max_bytes)
            except (BlockingIOError, InterruptedError):
                continue  # woken without data: wait again

    async def send_all(self, data: bytes) -> None:
        sock = self.sock
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                if sock.fileno() < 0:
                    raise trio.ClosedResourceError("the socket was closed")
                try:
                    sent += sock.send(view[sent:])
                except (BlockingIOError, InterruptedError):
                    await trio.lowlevel.wait_writable(sock)

    def close(self) -> None:
        sock = self.sock
        if sock.fileno() >= 0:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


_Stream = _SocketStream | _TlsStream


class _Sock:
    """One socket of the session, from OpenSocket to the end of its task."""

    __slots__ = (
        "action",
        "close_by",
        "closed",
        "eof",
        "id",
        "io_scope",
        "log",
        "open_scope",
        "outbox",
        "sending",
        "stream",
        "wake",
    )

    def __init__(self, action: OpenSocket, log: StreamLog) -> None:
        self.action = action
        self.id = action.sock
        self.log = log
        self.stream: _Stream | None = None
        self.outbox = bytearray()
        self.sending = 0  # bytes handed to send_all and not yet sent
        self.closed = False  # CloseSocket performed: feed nothing more, flush and close
        self.eof = False
        self.open_scope = trio.CancelScope()
        self.io_scope = trio.CancelScope()  # the reader and the writer, once open
        self.close_by = float("inf")  # CloseSocket's flush and goodbye end by then
        self.wake = trio.lowlevel.ParkingLot()  # the writer waits here


def _closed(sock: _Sock) -> bool:
    """Whether CloseSocket was performed (a call, so that it is re-read after awaits)."""
    return sock.closed


class _Driver:
    """One session's sockets and timer, in a cancel scope of their own: the primitives
    of a :class:`DriverLoop`."""

    def __init__(
        self,
        session: Session,
        sink: Sink,
        options: TransportOptions,
        log: StreamLog,
        tls: TlsSetup | None,
    ) -> None:
        self.clock = trio.current_time
        self.sink = sink
        self.options = options
        self.log = log
        self._tls = tls
        self._proxy: ProxyConfig | None = options.proxy_config
        self._socks: dict[SocketId, _Sock] = {}
        self._scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._timer_at: float | None = None
        self._timer_scope: trio.CancelScope | None = None
        self._room = trio.lowlevel.ParkingLot()  # readers waiting for queue room
        self._change = trio.lowlevel.ParkingLot()  # the application waiting for events
        self.done = trio.Event()
        self.loop = DriverLoop(
            session,
            sink,
            self,
            log,
            close_timeout=options.close_timeout,
            max_write_buffer=options.max_write_buffer,
        )

    # --- the host task -------------------------------------------------------------------

    async def host(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the driver's tasks until :meth:`abort` (start it with ``nursery.start``)."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._timer_task)
                task_status.started()
                await trio.sleep_forever()

    @property
    def finished(self) -> bool:
        return self.loop.finished or self.loop.error is not None

    def command(self, fn: Callable[[Session, float], T]) -> T:
        """Run ``fn(session, now)`` and perform what it caused."""
        return self.loop.command(fn)

    def update_reading(self) -> None:
        """The queue has room again: let waiting readers check."""
        self._room.unpark_all()

    async def wait_change(self) -> None:
        await self._change.park()

    # --- primitives ----------------------------------------------------------------------

    def open(self, action: OpenSocket) -> None:
        sock = _Sock(action, self.log.for_socket(action.sock))
        self._socks[action.sock] = sock
        assert self._nursery is not None, "the driver's host task is not running"
        self._nursery.start_soon(self._socket_task, sock, name=f"rtms-{action.sock}")

    def write(self, sock_id: SocketId, data: bytes) -> None:
        sock = self._socks.get(sock_id)
        if sock is not None and not sock.closed:
            sock.outbox += data
            sock.wake.unpark_all()

    def buffered(self, sock_id: SocketId) -> int:
        sock = self._socks.get(sock_id)
        return 0 if sock is None else len(sock.outbox) + sock.sending

    def drop(self, sock_id: SocketId) -> None:
        sock = self._socks.get(sock_id)
        if sock is None or sock.closed:
            return
        sock.closed = True  # its task closes it at once, reports nothing, and releases it
        sock.eof = True
        sock.outbox.clear()
        sock.close_by = trio.current_time()
        sock.open_scope.cancel()
        sock.io_scope.cancel()
        self._room.unpark_all()

    def close(self, sock_id: SocketId) -> None:
        sock = self._socks.get(sock_id)
        if sock is None or sock.closed:
            return  # unknown, or already closed: nothing to do
        sock.closed = True
        if sock.stream is None:
            sock.open_scope.cancel()
        # The flush and the goodbye are bounded: a peer that does not read cannot hold it.
        sock.close_by = trio.current_time() + self.options.close_timeout
        sock.io_scope.deadline = sock.close_by
        sock.wake.unpark_all()
        self._room.unpark_all()

    def arm_timer(self, deadline: float | None) -> None:
        # Every message received moves the session's keep-alive deadline later: that
        # must cost no wake-up.  The timer task sleeps in a cancel scope whose deadline
        # is only ever moved earlier here; when it fires before _timer_at, it sleeps on.
        self._timer_at = deadline
        scope = self._timer_scope
        if deadline is not None and scope is not None and deadline < scope.deadline:
            scope.deadline = deadline

    def wake_consumer(self) -> None:
        if self.loop.finished:
            self.done.set()
        self._change.unpark_all()

    def abort(self) -> None:
        """Close everything now (sockets are closed as their tasks are cancelled)."""
        for sock in self._socks.values():
            sock.closed = True
        self._scope.cancel()

    # --- socket tasks --------------------------------------------------------------------

    async def _socket_task(self, sock: _Sock) -> None:
        try:
            stream = await self._connect(sock)
            if stream is None:
                return
            try:
                if sock.closed:
                    return
                sock.stream = stream
                sock.log.info("connected to %s:%d", sock.action.host, sock.action.port)
                self.loop.opened(sock.id)
                with sock.io_scope:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._writer, sock, nursery.cancel_scope)
                        await self._reader(sock)
            finally:
                await self._close_stream(sock, stream)
        finally:
            if self._socks.get(sock.id) is sock:
                del self._socks[sock.id]
            self.loop.released(sock.id)

    async def _connect(self, sock: _Sock) -> _Stream | None:
        a = sock.action
        timeout = self.options.connect_timeout
        trust = ""
        error: TransportError | None = None
        with sock.open_scope:
            try:
                check_plaintext(a.host, a.port, a.secure)
                tls = self._tls_setup() if a.secure else None
                trust = tls.trust if tls is not None else ""
                sock.log.debug(
                    "connecting to %s:%d%s%s",
                    a.host,
                    a.port,
                    " with TLS" if a.secure else "",
                    f" via proxy {self._proxy.display}" if self._proxy else "",
                )
                try:
                    with trio.fail_after(timeout):
                        return await self._open_stream(a, tls)
                except trio.TooSlowError:
                    raise TimeoutError("connect timeout") from None
            except Exception as exc:
                error = as_transport_error(
                    exc, host=a.host, port=a.port, trust=trust, timeout=timeout
                )
        if error is not None and not sock.closed:
            self.loop.failed(sock.id, error)
        return None

    def _tls_setup(self) -> TlsSetup:
        if self._tls is None:
            self._tls = tls_setup(self.options)
        return self._tls

    async def _open_stream(self, a: OpenSocket, tls: TlsSetup | None) -> _Stream:
        proxy = self._proxy
        if proxy is None:
            tcp = await trio.open_tcp_stream(a.host, a.port)
        else:
            tcp = await trio.open_tcp_stream(proxy.host, proxy.port)
        try:
            if proxy is not None:
                handshake = ProxyHandshake(proxy, a.host, a.port)
                await tcp.send_all(handshake.request)
                while not handshake.receive_data(await tcp.receive_some(4096)):
                    pass
        except BaseException:
            await trio.aclose_forcefully(tcp)
            raise
        raw = _SocketStream(tcp)
        if tls is None:
            return raw
        try:
            stream = _TlsStream(raw, tls.context, a.host)
            await stream.do_handshake()
            return stream
        except BaseException:
            raw.close()
            raise

    async def _reader(self, sock: _Sock) -> None:
        stream = sock.stream
        assert stream is not None
        allowed = self.loop.reading_allowed
        size = self.options.read_size
        data_input = self.loop.data
        while not _closed(sock):
            if not allowed(sock.id):
                sock.log.debug("event queue full or peer not reading: reading paused")
                await self._room.park()
                continue
            try:
                data = await stream.receive_some(size)
            except _IO_ERRORS as exc:
                self._lost(sock, exc)
                return
            if isinstance(stream, _TlsStream) and stream.wants_flush:
                sock.wake.unpark_all()
            if _closed(sock):
                return
            if not data:
                sock.eof = True
                self.loop.eof(sock.id)
                return
            data_input(sock.id, data)

    async def _writer(self, sock: _Sock, scope: trio.CancelScope) -> None:
        stream = sock.stream
        assert stream is not None
        while True:
            if sock.outbox or (isinstance(stream, _TlsStream) and stream.wants_flush):
                data = bytes(sock.outbox)
                sock.outbox.clear()
                sock.sending = len(data)
                try:
                    await stream.send_all(data)
                except _IO_ERRORS as exc:
                    self._lost(sock, exc)
                finally:
                    sock.sending = 0
                if len(self._room):
                    self._room.unpark_all()  # the peer took bytes: a paused reader may go on
                continue
            if sock.closed:
                scope.cancel()  # flushed: stop the reader, close
                return
            await sock.wake.park()

    def _lost(self, sock: _Sock, exc: BaseException) -> None:
        sock.outbox.clear()
        if sock.closed or sock.eof:
            return
        a = sock.action
        error = as_transport_error(exc, host=a.host, port=a.port, opened=True)
        sock.eof = True  # nothing more from this socket
        self.loop.failed(sock.id, error)

    async def _close_stream(self, sock: _Sock, stream: _Stream) -> None:
        if sock.closed and not self._scope.cancel_called:
            # Closed by the session: say goodbye (TLS close_notify), within close_timeout.
            with trio.move_on_at(sock.close_by):
                with contextlib.suppress(*_IO_ERRORS):
                    await stream.aclose()
        stream.transport.close()

    # --- the timer -----------------------------------------------------------------------

    async def _timer_task(self) -> None:
        """Call the loop's timer at ``_timer_at``; see :meth:`arm_timer` for the laziness."""
        while True:
            deadline = self._timer_at
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            deadline = self._timer_at
            if deadline is not None and deadline <= trio.current_time():
                self._timer_at = None
                self.loop.timer(deadline)

    # --- ending --------------------------------------------------------------------------

    async def finish(self, graceful: bool) -> None:
        """End the session: in order (``stop()``, bounded) when ``graceful``, else at once."""
        deadline = self.loop.leave() if graceful else None
        if deadline is not None:
            with trio.move_on_at(deadline):
                await self.done.wait()
            if not self.done.is_set():
                self.loop.left_unfinished()
        self.abort()


class Stream(AsyncStream):
    """One RTMS stream: ``async for event in stream``; its commands go to the session.

    Iteration ends after :class:`~rtms_proto.events.SessionEnded`.  Commands
    (:meth:`close_stream`, :meth:`subscribe_video`, ...) are plain methods:
    they take effect at once and raise what the session raises.  Taking an
    event is a cancellation point, as trio expects of every async call.
    """

    async def __anext__(self) -> ev.Event:
        await trio.lowlevel.checkpoint_if_cancelled()
        return await super().__anext__()


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
    included) closes every socket at once.  Exceptions come out as they are,
    never wrapped in an exception group.
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
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.host)
        graceful = False
        try:
            loop.start()
            while not loop.session.has_connected and not driver.finished:
                await driver.wait_change()
            loop.check_connected()
            yield Stream(driver, buffer)
            graceful = True
        except BaseException as exc:
            # Re-raised outside the nursery, so that it is not wrapped in a group.
            error = exc
        buffer.discard()
        if graceful:
            await driver.finish(True)
        driver.abort()
    if error is not None:
        raise error


class SessionRunner:
    """Drive a :class:`~rtms_proto.Session` you built, calling ``handler`` with each event.

    ``handler`` runs in the driver's tasks, after the actions of its batch were
    performed; it must not block.  It may issue commands through
    :meth:`command` (or on the session directly with ``now=trio.current_time()``).
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
        error: BaseException | None = None
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.host)
            try:
                driver.loop.start()
                while not driver.finished and not self._aborted:
                    await driver.wait_change()
                if driver.loop.error is not None:
                    raise driver.loop.error
            except BaseException as exc:
                error = exc
            driver.abort()
        if error is not None:
            raise error
        ended = driver.loop.end
        if ended is None:
            raise ConnectionClosed("the runner was stopped before the session ended")
        return ended

    def abort(self) -> None:
        """Close every socket now (no goodbye); :meth:`run` returns the session's end, or
        raises :class:`~rtms_proto.ConnectionClosed` if it had not ended (a second Ctrl-C).
        From the driver's trio thread."""
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
