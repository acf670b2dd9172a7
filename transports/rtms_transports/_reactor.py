"""The blocking driver's reactor: ``selectors`` loops over sessions' sockets.

A :class:`Reactor` is one session's sockets: it opens them without blocking
(host names are looked up on threads of the hub's
:class:`~rtms_transports._resolver.Resolver`), through a proxy when configured,
with TLS through memory buffers (:class:`~rtms_transports._tls_pipe.TlsPipe`);
it writes what is queued as the kernel takes it, reads at most ``read_size``
bytes per ready socket, and is the :class:`~rtms_transports._loop.DriverIO`
of the shared :class:`~rtms_transports._loop.DriverLoop`, with
``time.monotonic()`` for the clock.  A :class:`Hub` is one selector on one
thread serving one reactor (``SessionRunner``) or many (the I/O thread that
every ``blocking.connect()`` stream shares, a ``blocking.Pool``): the
selector's timeout is the earliest session timer, and a socket pair wakes it
when another thread hands a session a command, an abort or more room in its
queue, or a lookup thread an answer.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import errno
import heapq
import itertools
import math
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from rtms_proto import ConnectionClosed, OpenSocket, Session, SocketId

from ._common import StreamLog, TlsSetup, TransportOptions, tls_setup
from ._errors import CLOSED_DURING_TLS, as_transport_error, check_plaintext
from ._loop import DriverLoop, Sink
from ._proxy import ProxyConfig, Tunnel, open_tunnel, resolve_for_tunnel
from ._resolver import Addresses, Lookup, Resolver, numeric
from ._tls_pipe import TlsPipe

__all__ = ["Hub", "Reactor"]

T = TypeVar("T")

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_IN_PROGRESS = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY, 0}
_MAX_WRITE = 1 << 18


class _Phase(enum.Enum):
    RESOLVE = "resolve"
    CONNECT = "connect"
    PROXY = "proxy"
    TLS = "tls"
    OPEN = "open"


class _Sock:
    """One socket of the session and where it is in opening it."""

    __slots__ = (
        "action",
        "addrs",
        "closed",
        "deadline",
        "eof",
        "id",
        "last_error",
        "lookup",
        "mask",
        "outbox",
        "owner",
        "phase",
        "proxy",
        "registered",
        "sock",
        "tls",
        "wire",
    )

    def __init__(self, action: OpenSocket, owner: Reactor) -> None:
        self.action = action
        self.owner = owner
        self.id = action.sock
        self.phase = _Phase.RESOLVE
        self.lookup: Lookup | None = None  # while a lookup thread resolves a name for it
        self.sock: socket.socket | None = None
        self.registered: socket.socket | None = None
        self.mask = 0
        self.addrs: list[tuple[socket.AddressFamily, socket.SocketKind, int, object]] = []
        self.last_error: OSError | None = None
        self.deadline: float | None = None  # connect timeout, then flush-on-close timeout
        self.outbox = bytearray()  # bytes to send (encrypted first under TLS)
        self.tls: TlsPipe | None = None
        self.wire = bytearray()  # TLS records to send
        self.proxy: Tunnel | None = None
        self.closed = False  # CloseSocket performed: feed nothing more, flush and close
        self.eof = False

    @property
    def log(self) -> StreamLog:
        """This socket's logger, made when it logs (a socket logs a few lines in its life:
        not worth an object per socket kept for it)."""
        return self.owner.log.for_socket(self.id)


class Hub:
    """One selector on one thread, serving any number of sessions (:class:`Reactor`).

    Work per wake-up is proportional to what happened, not to how many
    sessions there are: a session is visited (its sockets flushed and their
    registrations updated) only after one of its sockets was ready, its timer
    fired, or another thread woke it.  Timers are a heap of one entry per
    session, moved lazily: a session's deadline moves later with every message
    received, and that costs nothing until the old entry comes due.  Another
    thread adds a session (:meth:`add`) or wakes one (:meth:`touch`) through a
    list under :attr:`lock` and one byte on a socket pair; a lookup thread hands
    an answer over the same way (:meth:`post`).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sel: selectors.BaseSelector = selectors.DefaultSelector()
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        self.sel.register(wake_r, _READ, None)
        self._wake_r: socket.socket | None = wake_r
        self._wake_w: socket.socket | None = wake_w
        self._woken: list[Reactor] = []  # under lock
        self._posted: list[Callable[[], None]] = []  # under lock
        self._resolver: Resolver | None = None  # made by the first lookup of a name
        self._reactors: set[Reactor] = set()
        self._active: dict[Reactor, None] = {}  # ordered: visited in the order touched
        self._timers: list[tuple[float, int, Reactor]] = []
        self._seq = itertools.count()
        self.thread: int | None = None
        self.closing = False
        self._aborting = False
        """No session is accepted any more; the loop stops when the last one ended."""
        self.stopped = False
        """The loop ended (under :attr:`lock`)."""

    # --- from any thread -------------------------------------------------------------------

    def touch(self, reactor: Reactor) -> None:
        """Make the loop visit ``reactor`` (it starts it the first time)."""
        with self.lock:
            first = not self._woken
            self._woken.append(reactor)
        wake_w = self._wake_w
        if first and wake_w is not None:
            with contextlib.suppress(OSError):  # full (already woken) or closed
                wake_w.send(b"\0")

    def post(self, fn: Callable[[], None]) -> bool:
        """From any thread: run ``fn`` on the loop's thread before its next wait; False
        (``fn`` never runs) once the loop has stopped."""
        with self.lock:
            if self.stopped:
                return False
            self._posted.append(fn)
        wake_w = self._wake_w
        if wake_w is not None:
            with contextlib.suppress(OSError):  # full (already woken) or closed
                wake_w.send(b"\0")
        return True

    def add(self, reactor: Reactor) -> None:
        """Serve ``reactor`` (from any thread); raises ConnectionClosed once closing."""
        with self.lock:
            if self.closing or self.stopped:
                raise ConnectionClosed("the pool is closed")
        self.touch(reactor)

    def close(self, *, abort: bool = False) -> None:
        """Accept no more sessions; the loop ends once the running ones ended (at once,
        their sockets closed without goodbye, with ``abort``)."""
        with self.lock:
            self.closing = True
            self._aborting = self._aborting or abort
        wake_w = self._wake_w
        if wake_w is not None:
            with contextlib.suppress(OSError):
                wake_w.send(b"\0")

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        """Serve sessions until :meth:`close` was called and none is left."""
        self.thread = threading.get_ident()
        sel = self.sel
        active = self._active
        try:
            while True:
                self._take_woken()
                while active:
                    reactor = next(iter(active))
                    del active[reactor]
                    self._guard(reactor, reactor.step)
                if self.closing and not self._reactors:
                    break
                for key, mask in sel.select(self._timeout()):
                    sock = key.data
                    if sock is None:
                        self._drain_wake()
                    else:
                        reactor = sock.owner
                        self._guard(reactor, reactor._ready, sock, mask)
                        active[reactor] = None
                self._fire_timers()
        finally:
            self._stop()

    def _guard(self, reactor: Reactor, fn: Callable[..., None], *args: object) -> None:
        """Run one session's code: an exception is that session's bug (it stops), not
        the loop's."""
        try:
            fn(*args)
        except Exception as exc:  # pragma: no cover - a bug: report it, close that session
            reactor.loop.crash(exc)
            self.visit(reactor)

    def _take_woken(self) -> None:
        with self.lock:
            woken, self._woken = self._woken, []
            posted, self._posted = self._posted, []
            closing = self.closing
            aborting = self._aborting
        for fn in posted:
            fn()  # a lookup's answer: guarded per session (Reactor._resolve)
        if aborting:
            for reactor in self._reactors:
                reactor.abort()
        for reactor in woken:
            if reactor not in self._reactors:
                if reactor.started:
                    continue  # a late wake of a session that ended
                if closing and reactor.pooled:
                    reactor.refuse()
                    continue
                self._reactors.add(reactor)
                self._guard(reactor, reactor.begin)
            self._active[reactor] = None

    def resolve(
        self, host: str, port: int, done: Callable[[Addresses | Exception], None]
    ) -> Lookup:
        """On the loop's thread: look ``host`` up on a lookup thread; ``done`` runs on this
        thread with the addresses or the error, unless the lookup is cancelled first."""
        if self._resolver is None:
            self._resolver = Resolver(self.post)
        return self._resolver.lookup(host, port, done)

    def visit(self, reactor: Reactor) -> None:
        """On the loop's thread: visit ``reactor`` before the next wait."""
        self._active[reactor] = None

    def ended(self, reactor: Reactor) -> None:
        self._reactors.discard(reactor)
        self._active.pop(reactor, None)

    def schedule(self, reactor: Reactor, when: float) -> None:
        """Wake ``reactor`` at ``when`` (earlier entries stand; see the class docstring)."""
        if when < reactor.scheduled:
            reactor.scheduled = when
            heapq.heappush(self._timers, (when, next(self._seq), reactor))

    def _timeout(self) -> float | None:
        if self._active:
            return 0.0
        timers = self._timers
        while timers and timers[0][2].scheduled != timers[0][0]:
            heapq.heappop(timers)  # moved earlier since, or ended
        if not timers:
            return None
        return max(0.0, timers[0][0] - time.monotonic())

    def _fire_timers(self) -> None:
        timers = self._timers
        if not timers:
            return
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            when, _, reactor = heapq.heappop(timers)
            if reactor.scheduled != when or reactor not in self._reactors:
                continue
            reactor.scheduled = math.inf
            self._guard(reactor, reactor._fire_timers)
            self._active[reactor] = None

    def _drain_wake(self) -> None:
        wake_r = self._wake_r
        assert wake_r is not None
        with contextlib.suppress(OSError):
            while wake_r.recv(4096):
                pass

    def _stop(self) -> None:
        for reactor in list(self._reactors):
            reactor.abort()
            reactor.shutdown()
        with self.lock:
            self.stopped = True
            woken, self._woken = self._woken, []
            self._posted.clear()
        if self._resolver is not None:
            self._resolver.close()  # its stuck lookups end unheard: not waited for
        for reactor in woken:
            if not reactor.started:
                reactor.refuse()
        self.sel.close()
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._wake_r = self._wake_w = None


class Reactor:
    """The loop of one session: its sockets on a :class:`Hub`'s selector and thread.

    :meth:`run` runs it on a hub of its own in the calling thread until the
    session ended and its sockets are closed, or an abort; with ``hub=`` it is
    one of the sessions of a shared hub (:meth:`Hub.add`).  :meth:`command`,
    :meth:`wake` and :meth:`request_abort` may be called from any thread.
    ``cond`` guards :attr:`finished` and is notified when the session's loop
    stops.
    """

    def __init__(
        self,
        session: Session,
        sink: Sink,
        options: TransportOptions,
        log: StreamLog,
        tls: TlsSetup | None,
        *,
        cond: threading.Condition | None = None,
        hub: Hub | None = None,
    ) -> None:
        self.clock = time.monotonic
        self.sink = sink
        self.options = options
        self.log = log
        self.cond = cond if cond is not None else threading.Condition()
        self.pooled = hub is not None
        self.hub = hub if hub is not None else Hub()
        self._tls = tls
        self._socks: dict[SocketId, _Sock] = {}
        self._new: list[_Sock] = []
        # A list, not a deque: calls are rare, and an empty deque holds a block of
        # 64 entries (about 0.7 KiB per idle session).
        self._calls: list[tuple[Callable[[], object], concurrent.futures.Future[object]]] = []
        self._abort = False
        self._deadline: float | None = None  # the session's timer
        self.scheduled = math.inf  # the hub's timer entry for this session
        self.started = False  # the hub took it (on the hub's thread)
        self.running = False
        self.finished = False
        """The session's loop has stopped (under ``cond``)."""
        self.loop = DriverLoop(
            session,
            sink,
            self,
            log,
            close_timeout=options.close_timeout,
            max_write_buffer=options.max_write_buffer,
        )

    # --- thread-safe entry points --------------------------------------------------------

    def wake(self) -> None:
        """Make the loop look again (from any thread)."""
        self.hub.touch(self)

    def request_abort(self) -> None:
        self._abort = True
        self.wake()

    def command(self, fn: Callable[[Session, float], T]) -> T:
        """Run ``fn(session, now)`` on the loop's thread and perform what it caused."""
        return self.call(lambda: self.loop.command(fn))

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the loop's thread (at once from that thread); its result.

        Raises what ``fn`` raises, or :class:`ConnectionClosed` when the loop
        is not running.
        """
        if threading.get_ident() == self.hub.thread:
            try:
                return fn()
            finally:
                self.hub.visit(self)  # perform what it caused (a handler may command another)
        future: concurrent.futures.Future[object] = concurrent.futures.Future()
        with self.cond:
            # A pooled session not yet taken by its hub's thread runs its calls once taken.
            if self.finished or self._abort or not (self.running or self.pooled):
                raise ConnectionClosed("the session's loop is not running")
            self._calls.append((fn, future))
        self.wake()
        return future.result()  # type: ignore[return-value]

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Run on a hub of its own in this thread until the session ended and its sockets
        are closed, or an abort."""
        hub = self.hub
        hub.touch(self)
        hub.close()  # this one session, then the loop ends
        hub.run()

    def begin(self) -> None:
        """On the hub's thread: start the session."""
        self.started = True
        with self.cond:
            self.running = True
        self.loop.start()

    def refuse(self) -> None:
        """The hub closed before taking this session: it never runs."""
        self.started = True
        self._abort = True
        with self.cond:
            self.finished = True
            calls = list(self._calls)
            self._calls.clear()
            self.cond.notify_all()
        for _, future in calls:
            future.set_exception(ConnectionClosed("the pool was closed"))

    def step(self) -> None:
        """On the hub's thread, after anything happened to this session: run the calls
        handed over, open new sockets, flush, stop if done, re-register, re-arm."""
        if self.finished:
            return
        if self._calls:
            self._run_calls()
        if self._abort:
            self.shutdown()  # before opening anything more
            return
        if self._new:
            self._start_opens()
        self._flush_all()  # may close sockets that waited to flush
        if self._abort or self.loop.finished:
            self.shutdown()
            return
        self._update_registrations()
        if self._new:
            self.hub.touch(self)  # opened during this step (a retry): start them next
        times = [s.deadline for s in self._socks.values() if s.deadline is not None]
        if self._deadline is not None:
            times.append(self._deadline)
        if times:
            self.hub.schedule(self, min(times))

    def shutdown(self) -> None:
        """Close every socket, and say the session's loop stopped."""
        for sock in list(self._socks.values()):
            self._discard(sock)
        for sock in self._new:
            self._discard(sock)
        self._new.clear()
        self.hub.ended(self)
        self.scheduled = math.inf
        with self.cond:
            self.finished = True
            calls = list(self._calls)
            self._calls.clear()
            self.cond.notify_all()
        for _, future in calls:
            future.set_exception(ConnectionClosed("the session's loop stopped"))

    def _run_calls(self) -> None:
        while True:
            with self.cond:
                if not self._calls:
                    return
                fn, future = self._calls.pop(0)
            try:
                result = fn()
            except Exception as exc:
                future.set_exception(exc)
                continue
            future.set_result(result)

    # --- primitives ----------------------------------------------------------------------

    def open(self, action: OpenSocket) -> None:
        sock = _Sock(action, self)
        self._socks[action.sock] = sock
        self._new.append(sock)  # started by the loop, after this batch

    def write(self, sock_id: SocketId, data: bytes) -> None:
        sock = self._socks.get(sock_id)
        if sock is not None and not sock.closed and sock.sock is not None:
            sock.outbox += data  # written by the loop, after this batch

    def buffered(self, sock_id: SocketId) -> int:
        sock = self._socks.get(sock_id)
        return 0 if sock is None else len(sock.outbox) + len(sock.wire)

    def drop(self, sock_id: SocketId) -> None:
        sock = self._socks.get(sock_id)
        if sock is not None and not sock.closed:
            sock.closed = True
            self._discard(sock)

    def close(self, sock_id: SocketId) -> None:
        sock = self._socks.get(sock_id)
        if sock is None or sock.closed:
            return  # unknown, or already closed: nothing to do
        sock.closed = True
        if sock.phase is _Phase.OPEN and (sock.outbox or sock.wire):
            sock.deadline = time.monotonic() + self.options.close_timeout  # flush, bounded
        else:
            self._discard(sock)

    def arm_timer(self, deadline: float | None) -> None:
        self._deadline = deadline  # the selector's timeout

    def wake_consumer(self) -> None:
        """Nothing to do: the sink notifies the consumer as it hands events over."""

    def abort(self) -> None:
        self._abort = True
        self.hub.visit(self)

    def _discard(self, sock: _Sock) -> None:
        """Close the socket now and forget it."""
        self._cancel_lookup(sock)
        self._unregister(sock)
        if sock.sock is not None:
            sock.sock.close()
            sock.sock = None
            sock.log.debug("closed")
        if self._socks.get(sock.id) is sock:
            del self._socks[sock.id]
            self.loop.released(sock.id)

    # --- opening -------------------------------------------------------------------------

    def _start_opens(self) -> None:
        new, self._new = self._new, []
        for sock in new:
            if sock.closed:
                continue
            sock.deadline = time.monotonic() + self.options.connect_timeout  # lookups included
            try:
                self._start_open(sock)
            except Exception as exc:
                self._open_failed(sock, exc)

    def _start_open(self, sock: _Sock) -> None:
        """Check the socket's URL, then look names up and connect; raises what fails."""
        a = sock.action
        check_plaintext(a.host, a.port, a.secure)
        if a.secure:
            self._tls_setup()
        proxy = self.options.proxy_for(a.host, a.port, a.secure)
        if proxy is not None and proxy.resolves_here(a.host):  # socks5:// sends an address
            self._resolve(
                sock,
                a.host,
                a.port,
                lambda infos: self._dial(sock, proxy, resolve_for_tunnel(infos)),
            )
        else:
            self._dial(sock, proxy, None)

    def _dial(self, sock: _Sock, proxy: ProxyConfig | None, address: str | None) -> None:
        """Look up the server (the proxy, with one) and connect to its first address."""
        a = sock.action
        if proxy is not None:
            sock.proxy = open_tunnel(proxy, a.host, a.port, address)
        host, port = (proxy.host, proxy.port) if proxy else (a.host, a.port)
        sock.log.connecting(a.host, a.port, a.secure, proxy)
        self._resolve(sock, host, port, lambda infos: self._connect(sock, infos))

    def _connect(self, sock: _Sock, infos: Addresses) -> None:
        sock.addrs = [(f, t, p, addr) for f, t, p, _, addr in infos]
        self._next_address(sock)

    def _resolve(
        self, sock: _Sock, host: str, port: int, then: Callable[[Addresses], None]
    ) -> None:
        """``then(addresses of host)``: at once for an IP literal, else once a lookup
        thread of the hub has the answer (the socket stays in RESOLVE meanwhile, under
        its connect deadline).  Raises what ``then`` raises, or the hub's refusal."""
        infos = numeric(host, port)
        if infos is not None:
            then(infos)
            return

        def done(result: Addresses | Exception) -> None:
            self.hub._guard(self, self._resolved, sock, then, result)

        sock.lookup = self.hub.resolve(host, port, done)

    def _resolved(
        self, sock: _Sock, then: Callable[[Addresses], None], result: Addresses | Exception
    ) -> None:
        """On the hub's thread: the lookup of a socket still opening ended (a socket that
        went away cancelled its lookup and is not called)."""
        sock.lookup = None
        if isinstance(result, Exception):  # shared by the sockets that joined the lookup
            self._open_failed(sock, result)
        else:
            try:
                then(result)
            except Exception as exc:
                self._open_failed(sock, exc)
        self.hub.visit(self)  # register the new socket, re-arm timers

    def _cancel_lookup(self, sock: _Sock) -> None:
        lookup = sock.lookup
        if lookup is not None:
            sock.lookup = None
            lookup.cancel()

    def _tls_setup(self) -> TlsSetup:
        if self._tls is None:
            self._tls = tls_setup(self.options)
        return self._tls

    def _next_address(self, sock: _Sock) -> None:
        while sock.addrs:
            family, kind, proto, addr = sock.addrs.pop(0)
            raw = socket.socket(family, kind, proto)
            raw.setblocking(False)
            try:
                code = raw.connect_ex(addr)  # type: ignore[arg-type]
            except OSError as exc:
                raw.close()
                sock.last_error = exc
                continue
            if code in _IN_PROGRESS:
                sock.sock = raw
                sock.phase = _Phase.CONNECT
                return
            raw.close()
            sock.last_error = OSError(code, errno.errorcode.get(code, "connect failed"))
        raise sock.last_error or OSError("no address to connect to")

    def _open_failed(self, sock: _Sock, exc: BaseException) -> None:
        self._cancel_lookup(sock)
        self._unregister(sock)
        if sock.sock is not None:
            sock.sock.close()
            sock.sock = None
        if sock.closed:
            return
        a = sock.action
        trust = self._tls.trust if self._tls is not None else ""
        error = as_transport_error(
            exc, host=a.host, port=a.port, trust=trust, timeout=self.options.connect_timeout
        )
        self.loop.failed(sock.id, error)

    def _connected(self, sock: _Sock) -> None:
        raw = sock.sock
        assert raw is not None
        code = raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._unregister(sock)
            raw.close()
            sock.sock = None
            sock.last_error = OSError(code, errno.errorcode.get(code, "connect failed"))
            self._next_address(sock)  # raises when none is left
            return
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if sock.proxy is not None:
            sock.outbox += sock.proxy.data_to_send()
            sock.phase = _Phase.PROXY
            return
        self._begin_tls(sock)

    def _begin_tls(self, sock: _Sock) -> None:
        a = sock.action
        if not a.secure:
            self._opened(sock)
            return
        sock.tls = TlsPipe(self._tls_setup().context, a.host)
        sock.phase = _Phase.TLS
        self._handshake(sock)

    def _handshake(self, sock: _Sock) -> None:
        """One handshake step; raises what the handshake raises (``_ready`` reports it)."""
        tls = sock.tls
        assert tls is not None
        done = tls.handshake()
        sock.wire += tls.take_output()
        if done:
            self._opened(sock)

    def _handshake_input(self, sock: _Sock) -> None:
        raw = sock.sock
        tls = sock.tls
        assert raw is not None and tls is not None
        try:
            data = raw.recv(self.options.read_size)
        except (BlockingIOError, InterruptedError):
            return
        if not data:
            raise ConnectionResetError(CLOSED_DURING_TLS)
        tls.receive(data)
        self._handshake(sock)

    def _opened(self, sock: _Sock) -> None:
        sock.phase = _Phase.OPEN
        sock.deadline = None
        sock.addrs = []  # the addresses it did not need to try
        sock.log.info("connected to %s:%d", sock.action.host, sock.action.port)
        self.loop.opened(sock.id)

    # --- I/O readiness -------------------------------------------------------------------

    def _ready(self, sock: _Sock, mask: int) -> None:
        if sock.sock is None:
            return
        try:
            if sock.phase is _Phase.OPEN:
                if mask & _WRITE:
                    self._flush(sock)
                if mask & _READ and sock.sock is not None and not sock.closed:
                    self._read(sock)
            elif sock.phase is _Phase.CONNECT:
                self._connected(sock)
            elif sock.phase is _Phase.PROXY:
                self._proxy_step(sock, mask)
            elif sock.phase is _Phase.TLS:
                if mask & _WRITE:
                    self._send_wire(sock)
                if mask & _READ:
                    self._handshake_input(sock)
        except Exception as exc:
            if sock.phase is _Phase.OPEN:  # pragma: no cover - I/O errors are handled inside
                raise
            self._open_failed(sock, exc)

    def _proxy_step(self, sock: _Sock, mask: int) -> None:
        raw = sock.sock
        assert raw is not None and sock.proxy is not None
        if sock.outbox:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                del sock.outbox[: raw.send(sock.outbox)]
            return
        if mask & _READ:
            try:
                data = raw.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            if sock.proxy.receive_data(data):
                self._begin_tls(sock)
            else:
                sock.outbox += sock.proxy.data_to_send()  # the next SOCKS5 request, if any

    def _read(self, sock: _Sock) -> None:
        """One ``recv`` of at most ``read_size`` bytes (decrypted, under TLS) into the session."""
        conn = sock.sock
        assert conn is not None
        eof = False
        error: BaseException | None = None
        try:
            data = conn.recv(self.options.read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            data, error = b"", exc
        tls = sock.tls
        if tls is not None and error is None:
            try:
                tls.receive(data)
                data, eof = tls.read(self.options.read_size)
            except ssl.SSLError as exc:
                data, error = b"", exc
            sock.wire += tls.take_output()  # alerts, key update answers: sent by the loop
        elif not data:
            eof = error is None
        if data:
            self.loop.data(sock.id, data)
        if sock.closed:
            return
        if error is not None:
            self._lost(sock, error)
        elif eof:
            sock.eof = True
            self.loop.eof(sock.id)

    def _flush(self, sock: _Sock) -> None:
        """Send what is queued: encrypted first under TLS, then as much as the kernel takes."""
        tls = sock.tls
        if tls is not None and sock.outbox:
            try:
                tls.write(sock.outbox)
            except ssl.SSLError as exc:
                self._lost(sock, exc)
                return
            sock.outbox.clear()
            sock.wire += tls.take_output()
        if self._send_wire(sock) and sock.closed:
            self._discard(sock)

    def _send_wire(self, sock: _Sock) -> bool:
        """Write the bytes due on the socket; True once none is left."""
        conn = sock.sock
        if conn is None:
            return False
        buf = sock.wire if sock.tls is not None else sock.outbox
        while buf:
            try:
                sent = conn.send(buf[:_MAX_WRITE])
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                if sock.phase is not _Phase.OPEN:
                    raise
                self._lost(sock, exc)
                return False
            del buf[:sent]
        return True

    def _flush_all(self) -> None:
        for sock in list(self._socks.values()):
            if (sock.outbox or sock.wire) and sock.phase is _Phase.OPEN:
                self._flush(sock)

    def _lost(self, sock: _Sock, exc: BaseException) -> None:
        sock.outbox.clear()
        sock.wire.clear()
        if sock.closed:
            self._discard(sock)
            return
        if sock.eof:
            return
        sock.eof = True
        a = sock.action
        error = as_transport_error(exc, host=a.host, port=a.port, opened=True)
        self.loop.failed(sock.id, error)

    # --- registrations and timers --------------------------------------------------------

    def _wanted(self, sock: _Sock) -> int:
        phase = sock.phase
        if phase is _Phase.OPEN:
            mask = _WRITE if sock.outbox or sock.wire else 0
            if not sock.closed and not sock.eof and self.loop.reading_allowed(sock.id):
                mask |= _READ
            return mask
        if phase is _Phase.CONNECT:
            return _WRITE
        if phase is _Phase.PROXY:
            return _WRITE if sock.outbox else _READ
        if phase is _Phase.TLS:
            return _READ | _WRITE if sock.wire else _READ
        return 0

    def _update_registrations(self) -> None:
        sel = self.hub.sel
        for sock in self._socks.values():
            conn = sock.sock
            if conn is None:
                continue
            mask = self._wanted(sock)
            if sock.registered is not conn:
                self._unregister(sock)
                if mask:
                    sel.register(conn, mask, sock)
                    sock.registered, sock.mask = conn, mask
            elif mask != sock.mask:
                if mask:
                    sel.modify(conn, mask, sock)
                else:
                    sel.unregister(conn)
                    sock.registered = None
                sock.mask = mask

    def _unregister(self, sock: _Sock) -> None:
        if sock.registered is not None:
            with contextlib.suppress(KeyError, ValueError, RuntimeError):
                self.hub.sel.unregister(sock.registered)
        sock.registered = None
        sock.mask = 0

    def _fire_timers(self) -> None:
        now = time.monotonic()
        for sock in list(self._socks.values()):
            if sock.deadline is None or sock.deadline > now:
                continue
            sock.deadline = None
            if sock.closed:
                sock.log.debug("could not flush before closing")
                self._discard(sock)
            else:
                self._open_failed(sock, TimeoutError("connect timeout"))
        deadline = self._deadline
        if deadline is not None and deadline <= now:
            self._deadline = None
            self.loop.timer(deadline)
