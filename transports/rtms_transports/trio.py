"""Run an RTMS session on trio.

High level::

    async with connect(webhook_body) as stream:
        async for event in stream:
            ...

Low level, for an application that builds its own :class:`~rtms_proto.Session`:
:func:`run_session` (or :class:`SessionRunner`) performs the session's actions
and calls a handler with each event.

Each socket has one task, in ``connect()``'s nursery, that opens it and
holds it until it closes; writes go out at once from the loop (a flusher
task exists only while the kernel does not take them).  Two system tasks per
trio run serve every session: one reads every connected socket (on Linux,
through an epoll of its own, level-triggered, that trio waits on: one wake-up
reads every socket that is ready, as asyncio's selector loop does; elsewhere
each socket's task reads it), one runs the timers (``trio.current_time()``,
so ``trio.testing.MockClock`` drives it too).  Leaving ``connect()`` by an
exception or a cancellation closes every socket at once.  So an idle meeting
costs its three tasks (the application's and two sockets'), not seven.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import logging
import math
import random
import select
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
from ._errors import CLOSED_DURING_TLS, as_transport_error, check_plaintext
from ._loop import DriverLoop, HandlerSink, Sink
from ._proxy import ProxyConfig, open_tunnel, resolve_for_tunnel
from ._queue import EventBuffer
from ._stream import AsyncStream

__all__ = ["SessionRunner", "Stream", "connect", "run_session"]

T = TypeVar("T")

_IO_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)

_TLS_RECORD = 1 << 14
"""The most plaintext one TLS record holds."""

_POLL_BATCH = 256
"""Ready sockets the reading task reads per wake-up; any others (epoll is level-triggered)
on the next, after the other tasks ran."""


class _SocketStream:
    """A connected socket, read and written without trio's per-call checkpoints.

    Once the session reads it, the run's :class:`_Poller` reads it
    (:meth:`read_ready`); :meth:`receive_some` serves the TLS handshake, and
    the reads where there is no poller.  It waits for readability first, then
    receives: one scheduling round per read, where ``trio.SocketStream``
    takes two (it tries ``recv`` first and, when it got data, yields before
    returning it; the next call then finds nothing and waits).  Writes are
    tried at once (:meth:`send_nowait`), so that answering a keep-alive costs
    no task.  The socket is detached from the trio stream that opened it (trio
    did the connecting and the proxy handshake); closing goes through
    ``notify_closing``, as trio's own.
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

    def seal(self, data: bytes) -> bytes:
        """The bytes to put on the wire for ``data`` (itself: no TLS)."""
        return data

    def _check_open(self) -> socket.socket:
        sock = self.sock
        if sock.fileno() < 0:
            raise trio.ClosedResourceError("the socket was closed")
        return sock

    async def receive_some(self, max_bytes: int) -> bytes:
        sock = self._check_open()
        while True:
            # A socket closed while we wait wakes us with ClosedResourceError
            # (notify_closing): no need to check again after the wait.
            await trio.lowlevel.wait_readable(sock)
            try:
                return sock.recv(max_bytes)
            except (BlockingIOError, InterruptedError):
                continue  # woken without data: wait again

    def read_ready(self, max_bytes: int) -> bytes | None:
        """What a socket the poller found readable holds (``b""``: the peer closed);
        None when it holds nothing after all."""
        try:
            return self.sock.recv(max_bytes)
        except (BlockingIOError, InterruptedError):
            return None

    def send_nowait(self, data: bytes | memoryview) -> int:
        """Send what the kernel takes now; how many bytes it took."""
        try:
            return self._check_open().send(data)
        except (BlockingIOError, InterruptedError):
            return 0

    async def send_all(self, data: bytes) -> None:
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                taken = self.send_nowait(view[sent:])
                if taken:
                    sent += taken
                else:
                    await trio.lowlevel.wait_writable(self._check_open())

    def close(self) -> None:
        sock = self.sock
        if sock.fileno() >= 0:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


class _TlsStream:
    """TLS over a :class:`_SocketStream` with :class:`ssl.MemoryBIO`.

    Unlike :class:`trio.SSLStream`, whose ``receive_some`` returns one TLS record
    per call, a read here returns every record that one transport read
    completed (the transport reads ``max_bytes`` at most): a server that sends one record per
    message costs one scheduling round per read, not per message.  Writes are
    sealed at once (:meth:`seal`) and the records go out as plain bytes.  A TCP
    close without close_notify reads as end of stream, as with
    ``https_compatible=True``.
    """

    __slots__ = ("_eof", "_in", "_out", "_tls", "transport")

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
            data = self._drain()
            if data or self._eof:
                return data
            if not await self._fill():
                self._in.write_eof()

    def read_ready(self, max_bytes: int) -> bytes | None:
        """Read ``max_bytes`` at most from a readable socket and decrypt every record
        they complete; None when none is complete, ``b""`` at the end.  Nothing is left
        decrypted and unread: the poller would not come back for it.  After a read
        that ended with the end (:attr:`at_eof`), the next gives ``b""`` at once."""
        if self._eof:
            return b""
        raw = self.transport.read_ready(max_bytes)
        if raw is None:
            if not self.buffered:
                return None
        elif raw:
            self._in.write(raw)
        else:
            self._in.write_eof()
        data = self._drain()
        return data if data or self._eof else None

    def _drain(self) -> bytes:
        """All the plaintext of the records received so far (as much as was read)."""
        parts: list[bytes] = []
        tls = self._tls
        while True:
            try:
                part = tls.read(_TLS_RECORD)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._eof = True
                break
            if not part:
                self._eof = True
                break
            parts.append(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    @property
    def at_eof(self) -> bool:
        """The peer ended the TLS stream (its last data may have come with the end)."""
        return self._eof

    @property
    def buffered(self) -> bool:
        """Whether received bytes wait inside (read with the handshake): a poller that
        waits for the socket alone would not see them."""
        return bool(self._in.pending or self._tls.pending())

    async def _fill(self) -> bool:
        data = await self.transport.receive_some(1 << 16)
        if not data:
            return False
        self._in.write(data)
        return True

    def take_output(self) -> bytes:
        """Records TLS produced on its own (post-handshake messages), to send."""
        return self._out.read() if self._out.pending else b""

    def seal(self, data: bytes) -> bytes:
        """The TLS records that carry ``data``; raises ``ssl.SSLError``."""
        self._tls.write(data)
        return self._out.read()

    async def _flush(self) -> None:
        if self._out.pending:
            await self.transport.send_all(self._out.read())

    async def aclose(self) -> None:
        """Send close_notify (best effort), then close the transport."""
        try:
            with contextlib.suppress(ssl.SSLError):
                self._tls.unwrap()
            with contextlib.suppress(*_IO_ERRORS):
                await self._flush()
        finally:
            self.transport.close()


_Stream = _SocketStream | _TlsStream


class _Sock:
    """One socket of the session, from OpenSocket to the end of its task (its logger is
    made when it logs: the few lines a socket logs do not pay for one per socket).

    One task per socket opens it and holds it until it closes; the run's
    :class:`_Poller` reads it (or, without epoll, its task).  Writes go out at once from
    the loop; only bytes the kernel would not take wait in ``pending``, sent by
    a flusher task that exists while they wait (and that the socket's close
    waits for, until ``close_by``).
    """

    __slots__ = (
        "action",
        "close_by",
        "closed",
        "eof",
        "error",
        "flush_scope",
        "flushed",
        "id",
        "pending",
        "scope",
        "sending",
        "stream",
    )

    def __init__(self, action: OpenSocket) -> None:
        self.action = action
        self.id = action.sock
        self.stream: _Stream | None = None
        self.pending = bytearray()  # wire bytes waiting for the flusher
        self.sending = 0  # bytes handed to send_all by the flusher and not yet sent
        self.closed = False  # CloseSocket performed: feed nothing more, flush and close
        self.eof = False
        self.error: BaseException | None = None  # a write failed: reported by the task
        self.scope = trio.CancelScope()  # opening and reading
        self.flush_scope: trio.CancelScope | None = None  # the flusher's, while it runs
        self.flushed: trio.Event | None = None  # set when the flusher ended
        self.close_by = math.inf  # CloseSocket's flush and goodbye end by then


def _closed(sock: _Sock) -> bool:
    """Whether CloseSocket was performed (a call, so that it is re-read after awaits)."""
    return sock.closed


def _done(sock: _Sock) -> bool:
    """Whether nothing more is to be read from ``sock``: closed, ended, or failed."""
    return sock.closed or sock.eof or sock.error is not None


class _Timers:
    """The timers of every driver of one trio run, in one task (a system task).

    A driver has at most one entry in the heap, moved only earlier
    (:meth:`schedule`); a session's deadline moves later with every message
    received, and that costs nothing until the old entry comes due: the driver
    then re-schedules at its current deadline (:meth:`_Driver.fire_timer`).
    The task sleeps in a cancel scope whose deadline is the heap's first.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Driver]] = []
        self._seq = itertools.count()
        self._scope: trio.CancelScope | None = None

    def schedule(self, driver: _Driver, when: float) -> None:
        if when < driver.timer_entry:
            driver.timer_entry = when
            heapq.heappush(self._heap, (when, next(self._seq), driver))
            scope = self._scope
            if scope is not None and when < scope.deadline:
                scope.deadline = when

    async def run(self) -> None:
        heap = self._heap
        while True:
            with trio.CancelScope(deadline=heap[0][0] if heap else math.inf) as scope:
                self._scope = scope
                await trio.sleep_forever()
            self._scope = None
            now = trio.current_time()
            while heap and heap[0][0] <= now:
                when, _, driver = heapq.heappop(heap)
                if driver.timer_entry != when:
                    continue  # moved earlier since, or let go
                driver.timer_entry = math.inf
                try:
                    driver.fire_timer(now)
                except Exception as exc:  # pragma: no cover - a bug: stop that session only
                    driver.loop.crash(exc)


_TIMERS: trio.lowlevel.RunVar[_Timers] = trio.lowlevel.RunVar("rtms_transports_timers")


def _timers() -> _Timers:
    """This trio run's timers (started on first use)."""
    try:
        return _TIMERS.get()
    except LookupError:
        timers = _Timers()
        _TIMERS.set(timers)
        trio.lowlevel.spawn_system_task(timers.run, name="rtms-timers")
        return timers


class _Poller:
    """Every connected socket of one trio run, read by one system task (Linux).

    A task per socket that waits with ``trio.lowlevel.wait_readable`` pays,
    per read, a wake-up through its chain of coroutines and trio's epoll
    bookkeeping (two ``epoll_ctl`` calls); a thousand sockets each delivering
    a message every 20 ms spend more on that than on the messages.  Here the
    sockets stay registered (level-triggered) in an epoll of their own, whose
    descriptor the task waits on: one wake-up reads every socket that is
    ready, each at most once (a flooding peer gets one read per round, as
    before), and yields.  A socket's reads run in its task's context (its
    context variables, as when its task read it).  A socket whose session may
    not read it now is paused (registered for nothing) until its driver
    resumes it.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._readers: dict[int, tuple[_Driver, _Sock, contextvars.Context]] = {}

    def add(self, fd: int, driver: _Driver, sock: _Sock) -> None:
        """Read ``sock`` (descriptor ``fd``) whenever it is readable, from now on."""
        self._epoll.register(fd, select.EPOLLIN)
        self._readers[fd] = (driver, sock, trio.lowlevel.current_task().context)

    def pause(self, fd: int) -> None:
        self._epoll.modify(fd, 0)

    def resume(self, fd: int) -> None:
        self._epoll.modify(fd, select.EPOLLIN)

    def remove(self, fd: int) -> None:
        """Forget ``fd`` (before it is closed: a descriptor number is reused)."""
        if self._readers.pop(fd, None) is not None:
            self._epoll.unregister(fd)

    async def run(self) -> None:
        epoll = self._epoll
        readers = self._readers
        try:
            while True:
                await trio.lowlevel.wait_readable(epoll.fileno())
                for fd, _ in epoll.poll(0, _POLL_BATCH):
                    reader = readers.get(fd)
                    if reader is None:
                        continue
                    driver, sock, context = reader
                    try:
                        context.run(driver.readable, sock)
                    except Exception as exc:  # pragma: no cover - a bug: stop that session only
                        driver.loop.crash(exc)
        finally:
            epoll.close()


_POLLER: trio.lowlevel.RunVar[_Poller | None] = trio.lowlevel.RunVar("rtms_transports_poller")

_HAVE_EPOLL = hasattr(select, "epoll")
"""Linux: the run's sockets are read by one :class:`_Poller`; elsewhere each by its task."""


def _poller() -> _Poller | None:
    """This trio run's poller (started on first use); None without epoll."""
    try:
        return _POLLER.get()
    except LookupError:
        poller = _Poller() if _HAVE_EPOLL else None
        _POLLER.set(poller)
        if poller is not None:
            trio.lowlevel.spawn_system_task(poller.run, name="rtms-reader")
        return poller


class _Driver:
    """One session's sockets, as tasks of the caller's nursery: the primitives of a
    :class:`DriverLoop`."""

    def __init__(
        self,
        session: Session,
        sink: Sink,
        options: TransportOptions,
        log: StreamLog,
        tls: TlsSetup | None,
    ) -> None:
        # The run's clock, bound once: ``trio.current_time()`` looks the runner up on
        # every call, and the loop reads the clock once per input (every read).
        self.clock = trio.lowlevel.current_clock().current_time
        self.sink = sink
        self.options = options
        self.log = log
        self._tls = tls
        self._socks: dict[SocketId, _Sock] = {}
        self._nursery: trio.Nursery | None = None
        self._aborted = False
        self._timer_at: float | None = None
        self.timer_entry = math.inf  # this driver's entry in the run's timer heap
        self._timers = _timers()
        self._poller = _poller()
        self._paused: list[_Sock] = []  # sockets the poller stopped reading (reading_allowed)
        # Whoever waits for the session: the application for events, a paused reader
        # for room in the queue, finish() for the end (see wait_change).
        self._waiting: dict[trio.lowlevel.Task, None] = {}
        self.loop = DriverLoop(
            session,
            sink,
            self,
            log,
            close_timeout=options.close_timeout,
            max_write_buffer=options.max_write_buffer,
        )

    def attach(self, nursery: trio.Nursery) -> None:
        """Run the socket tasks in ``nursery`` (the caller's, open while the driver runs)."""
        self._nursery = nursery

    @property
    def finished(self) -> bool:
        return self.loop.finished or self.loop.error is not None

    def command(self, fn: Callable[[Session, float], T]) -> T:
        """Run ``fn(session, now)`` and perform what it caused."""
        return self.loop.command(fn)

    def update_reading(self) -> None:
        """The queue has room again: let waiting readers check."""
        self._wake()

    async def wait_change(self) -> None:
        """Wait until the next input of the loop (or a wake-up of the driver).

        The consumer waits here once per read when it keeps up, and every input
        wakes it: a dict of waiting tasks rescheduled directly costs less than a
        :class:`trio.lowlevel.ParkingLot` (whose ``unpark_all`` builds a list and a
        generator even when nobody waits).  One set for every waiter: a paused
        reader may be woken for nothing, and re-checks.  Cancellable, as a
        checkpoint (it always yields).
        """
        task = trio.lowlevel.current_task()
        waiting = self._waiting
        waiting[task] = None

        def abort(
            _: trio.lowlevel.RaiseCancelT,
            task: trio.lowlevel.Task = task,
            waiting: dict[trio.lowlevel.Task, None] = waiting,
        ) -> trio.lowlevel.Abort:
            # Still waiting (a woken task is no longer abortable): the dict that holds it.
            # (Defaults rather than closure cells: fewer objects per wait.)
            del waiting[task]
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def _wake(self) -> None:
        """Reschedule every task in :meth:`wait_change`, and let the poller read the
        paused sockets that may be read again."""
        waiting = self._waiting
        if waiting:
            self._waiting = {}
            for task in waiting:
                trio.lowlevel.reschedule(task)
        if self._paused:
            self._resume_paused()

    def _resume_paused(self) -> None:
        assert self._poller is not None
        allowed = self.loop.reading_allowed
        still: list[_Sock] = []
        for sock in self._paused:
            if sock.stream is None or _done(sock):
                continue  # its task lets go of it
            if allowed(sock.id):
                self._poller.resume(sock.stream.transport.sock.fileno())
            else:
                still.append(sock)
        self._paused = still

    # --- primitives ----------------------------------------------------------------------

    def open(self, action: OpenSocket) -> None:
        sock = _Sock(action)
        self._socks[action.sock] = sock
        assert self._nursery is not None, "the driver is not attached to a nursery"
        if self._aborted:
            sock.closed = True
            sock.scope.cancel()
        self._nursery.start_soon(self._socket_task, sock, name=f"rtms-{action.sock}")

    def write(self, sock_id: SocketId, data: bytes) -> None:
        sock = self._socks.get(sock_id)
        stream = None if sock is None else sock.stream
        if sock is None or stream is None or sock.closed or sock.error is not None:
            return
        try:
            wire = stream.seal(data)
        except ssl.SSLError as exc:
            self._write_failed(sock, exc)
            return
        self._send(sock, wire)

    def _send(self, sock: _Sock, wire: bytes) -> None:
        """Send ``wire`` now, or leave what the kernel did not take to the flusher."""
        if sock.flush_scope is not None:
            sock.pending += wire  # behind what waits already
            return
        stream = sock.stream
        assert stream is not None
        try:
            sent = stream.transport.send_nowait(wire)
        except _IO_ERRORS as exc:
            self._write_failed(sock, exc)
            return
        if sent < len(wire):
            sock.pending += wire[sent:]
            scope = sock.flush_scope = trio.CancelScope(deadline=sock.close_by)
            sock.flushed = trio.Event()
            assert self._nursery is not None
            self._nursery.start_soon(self._flusher, sock, scope)

    def _write_failed(self, sock: _Sock, exc: BaseException) -> None:
        """A write failed (inside the loop): the socket's task reports it, after its scope."""
        if sock.error is None:
            sock.error = exc
        sock.pending.clear()
        sock.scope.cancel()

    def buffered(self, sock_id: SocketId) -> int:
        sock = self._socks.get(sock_id)
        return 0 if sock is None else len(sock.pending) + sock.sending

    def drop(self, sock_id: SocketId) -> None:
        sock = self._socks.get(sock_id)
        if sock is None or sock.closed:
            return
        sock.closed = True  # its task closes it at once, reports nothing, and releases it
        sock.eof = True
        sock.pending.clear()
        sock.close_by = trio.current_time()
        sock.scope.cancel()
        if sock.flush_scope is not None:
            sock.flush_scope.cancel()
        self._wake()

    def close(self, sock_id: SocketId) -> None:
        sock = self._socks.get(sock_id)
        if sock is None or sock.closed:
            return  # unknown, or already closed: nothing to do
        sock.closed = True
        # The flush and the goodbye are bounded: a peer that does not read cannot hold it.
        sock.close_by = trio.current_time() + self.options.close_timeout
        if sock.flush_scope is not None:
            sock.flush_scope.deadline = sock.close_by  # it stops the reading when done
        else:
            sock.scope.cancel()  # nothing waits to be sent: stop opening or reading now
        self._wake()

    def arm_timer(self, deadline: float | None) -> None:
        self._timer_at = deadline
        if deadline is not None:
            self._timers.schedule(self, deadline)

    def fire_timer(self, now: float) -> None:
        """This driver's entry in the timer heap came due (maybe before its deadline)."""
        deadline = self._timer_at
        if deadline is None or self._aborted:
            return
        if deadline <= now:
            self._timer_at = None
            self.loop.timer(deadline)
        else:
            self._timers.schedule(self, deadline)

    def wake_consumer(self) -> None:
        self._wake()

    def abort(self) -> None:
        """Close everything now (sockets are closed as their tasks are cancelled)."""
        self._aborted = True
        self._timer_at = None
        self.timer_entry = math.inf  # its heap entry, if any, is skipped
        for sock in self._socks.values():
            sock.closed = True
            sock.scope.cancel()
            if sock.flush_scope is not None:
                sock.flush_scope.cancel()
        self._wake()

    # --- socket tasks --------------------------------------------------------------------

    async def _socket_task(self, sock: _Sock) -> None:
        stream: _Stream | None = None
        try:
            with sock.scope:
                stream = await self._connect(sock)
                if stream is None or sock.closed:
                    return
                sock.stream = stream
                self.log.for_socket(sock.id).info(
                    "connected to %s:%d", sock.action.host, sock.action.port
                )
                self.loop.opened(sock.id)
                if self._poller is None:
                    await self._reader(sock)
                else:
                    await self._polled(sock, stream, self._poller)
            if sock.error is not None:
                self._lost(sock, sock.error)
            if sock.flushed is not None:
                await sock.flushed.wait()  # bounded by close_by once closed
        finally:
            try:
                if stream is not None:
                    await self._close_stream(sock, stream)
            finally:
                if self._socks.get(sock.id) is sock:
                    del self._socks[sock.id]
                self.loop.released(sock.id)

    async def _connect(self, sock: _Sock) -> _Stream | None:
        a = sock.action
        timeout = self.options.connect_timeout
        trust = ""
        try:
            check_plaintext(a.host, a.port, a.secure)
            proxy = self.options.proxy_for(a.host, a.port, a.secure)
            tls = self._tls_setup() if a.secure else None
            trust = tls.trust if tls is not None else ""
            self.log.for_socket(sock.id).connecting(a.host, a.port, a.secure, proxy)
            try:
                with trio.fail_after(timeout):
                    return await self._open_stream(a, tls, proxy)
            except trio.TooSlowError:
                raise TimeoutError("connect timeout") from None
        except Exception as exc:
            error = as_transport_error(exc, host=a.host, port=a.port, trust=trust, timeout=timeout)
        if not sock.closed:
            self.loop.failed(sock.id, error)
        return None

    def _tls_setup(self) -> TlsSetup:
        if self._tls is None:
            self._tls = tls_setup(self.options)
        return self._tls

    async def _open_stream(
        self, a: OpenSocket, tls: TlsSetup | None, proxy: ProxyConfig | None
    ) -> _Stream:
        address = None
        if proxy is not None and proxy.resolves_here(a.host):  # socks5:// sends an address
            address = resolve_for_tunnel(await trio.socket.getaddrinfo(a.host, a.port))
        if proxy is None:
            tcp = await trio.open_tcp_stream(a.host, a.port)
        else:
            tcp = await trio.open_tcp_stream(proxy.host, proxy.port)
        try:
            if proxy is not None:
                handshake = open_tunnel(proxy, a.host, a.port, address)
                await tcp.send_all(handshake.data_to_send())
                while not handshake.receive_data(await tcp.receive_some(4096)):
                    if pending := handshake.data_to_send():  # the next SOCKS5 request
                        await tcp.send_all(pending)
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

    async def _polled(self, sock: _Sock, stream: _Stream, poller: _Poller) -> None:
        """Hand the socket to the run's poller until it ends (its scope is cancelled)."""
        fd = stream.transport.sock.fileno()
        poller.add(fd, self, sock)
        try:
            if isinstance(stream, _TlsStream) and stream.buffered:
                self.readable(sock)  # received with the handshake: the socket will not say
            await trio.sleep_forever()
        finally:
            poller.remove(fd)
            if sock in self._paused:  # cancelled from outside while paused
                self._paused.remove(sock)

    def readable(self, sock: _Sock) -> None:
        """The poller found ``sock`` readable: read it once, feed the loop."""
        stream = sock.stream
        assert stream is not None and self._poller is not None
        if _done(sock):
            self._poller.pause(stream.transport.sock.fileno())  # its task lets go of it
            return
        if not self.loop.reading_allowed(sock.id):
            self.log.for_socket(sock.id).debug(
                "event queue full or peer not reading: reading paused"
            )
            self._poller.pause(stream.transport.sock.fileno())
            self._paused.append(sock)
            return
        try:
            data = stream.read_ready(self.options.read_size)
        except _IO_ERRORS as exc:
            self._lost(sock, exc)
            sock.scope.cancel()
            return
        if isinstance(stream, _TlsStream):
            wire = stream.take_output()
            if wire and not _closed(sock):
                self._send(sock, wire)
        if data is None or _done(sock):
            return
        if data:
            self.loop.data(sock.id, data)
            if not (isinstance(stream, _TlsStream) and stream.at_eof) or _done(sock):
                return
        # The end (with the last data, for TLS: the socket may not be readable again).
        sock.eof = True
        sock.scope.cancel()
        self.loop.eof(sock.id)

    async def _reader(self, sock: _Sock) -> None:
        stream = sock.stream
        assert stream is not None
        tls = stream if isinstance(stream, _TlsStream) else None
        allowed = self.loop.reading_allowed
        size = self.options.read_size
        data_input = self.loop.data
        receive = stream.receive_some
        sock_id = sock.id
        while not _closed(sock):
            if not allowed(sock_id):
                self.log.for_socket(sock_id).debug(
                    "event queue full or peer not reading: reading paused"
                )
                await self.wait_change()
                continue
            try:
                data = await receive(size)
            except _IO_ERRORS as exc:
                self._lost(sock, exc)
                return
            if tls is not None:
                wire = tls.take_output()
                if wire and not _closed(sock):
                    self._send(sock, wire)
            if _closed(sock):
                return
            if not data:
                sock.eof = True
                self.loop.eof(sock.id)
                return
            data_input(sock_id, data)

    async def _flusher(self, sock: _Sock, scope: trio.CancelScope) -> None:
        """Send what the kernel would not take at once, as it takes it."""
        stream = sock.stream
        assert stream is not None and sock.flushed is not None
        try:
            with scope:
                while sock.pending:
                    data = bytes(sock.pending)
                    sock.pending.clear()
                    sock.sending = len(data)
                    try:
                        await stream.transport.send_all(data)
                    except _IO_ERRORS as exc:
                        self._write_failed(sock, exc)
                        return
                    finally:
                        sock.sending = 0
                    self._wake()  # the peer took bytes: a paused reader may go on
        finally:
            sock.flush_scope = None
            if sock.closed:
                sock.scope.cancel()  # flushed (or out of time): stop the reader, close
            sock.flushed.set()

    def _lost(self, sock: _Sock, exc: BaseException) -> None:
        sock.pending.clear()
        if sock.closed or sock.eof:
            return
        a = sock.action
        error = as_transport_error(exc, host=a.host, port=a.port, opened=True)
        sock.eof = True  # nothing more from this socket
        self.loop.failed(sock.id, error)

    async def _close_stream(self, sock: _Sock, stream: _Stream) -> None:
        try:
            if sock.closed and not self._aborted:
                # Closed by the session: say goodbye (TLS close_notify), within close_timeout.
                with trio.move_on_at(sock.close_by), contextlib.suppress(*_IO_ERRORS):
                    await stream.aclose()
        finally:
            stream.transport.close()

    # --- ending --------------------------------------------------------------------------

    async def finish(self, graceful: bool) -> None:
        """End the session: in order (``stop()``, bounded) when ``graceful``, else at once."""
        deadline = self.loop.leave() if graceful else None
        if deadline is not None:
            with trio.move_on_at(deadline):
                while not self.finished:
                    await self.wait_change()
            if not self.finished:
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
        driver.attach(nursery)
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
            driver.attach(nursery)
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
