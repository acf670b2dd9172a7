"""Serve the fake RTMS server on real sockets (asyncio, loopback by default, optional TLS).

The driver holds no protocol logic: it turns socket callbacks into core inputs
(``now = loop.time()``), performs the core's actions in order, and keeps one
timer armed at the core's next deadline.  :func:`serve` is the asyncio entry
point; :class:`ServerThread` runs it on a background thread for trio and
blocking-socket code, with thread-safe calls into the core.  Webhooks go out
with :func:`post_webhook`, to loopback only unless told otherwise, because a
test server should never post to the world by accident.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import http.client
import ipaddress
import ssl
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from rtms_proto.enums import StopReason

from .server import (
    Abort,
    Close,
    ConnId,
    EmitWebhook,
    FakeRtmsServer,
    PauseReading,
    Send,
    ServerConfig,
    StreamInfo,
    StreamSpec,
    StreamStatus,
)
from .webhooks import webhook_headers

__all__ = ["RunningServer", "ServerThread", "post_webhook", "serve"]

T = TypeVar("T")


_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def post_webhook(
    url: str,
    body: bytes,
    secret: str,
    *,
    timestamp: int | None = None,
    timeout: float = 5.0,
    allow_remote: bool = False,
) -> int:
    """POST ``body`` signed with ``secret`` to ``url`` and return the HTTP status.

    ``timestamp`` defaults to the current Unix time (receivers reject
    signatures more than 300 s off).  Only ``http``/``https`` URLs on a
    loopback host are allowed unless ``allow_remote``; raises ``ValueError``
    for others and ``OSError`` when the receiver is unreachable.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook URL must be http:// or https:// with a host")
    if not allow_remote and not _is_loopback(parts.hostname):
        raise ValueError("webhook URL must name a loopback host (localhost, 127.0.0.1, ::1)")
    ts = int(time.time()) if timestamp is None else timestamp
    headers = webhook_headers(body, secret, ts)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class _Protocol(asyncio.Protocol):
    """One accepted connection; everything goes straight to the driver."""

    def __init__(self, driver: RunningServer) -> None:
        self.driver = driver
        self.conn_id = driver.new_conn_id()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.driver.made(self)

    def data_received(self, data: bytes) -> None:
        self.driver.data(self.conn_id, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.lost(self.conn_id)


class RunningServer:
    """A fake server bound to a port; use it from its event loop's thread only."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        webhook_url: str | None,
        webhook_secret: str | None,
    ) -> None:
        self.loop = loop
        self.host = ""
        self.port = 0
        self.base_url = ""
        self._core: FakeRtmsServer | None = None
        self._webhook = (webhook_url, webhook_secret) if webhook_url and webhook_secret else None
        self._protocols: dict[ConnId, _Protocol] = {}
        self._next_id = 1
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._changed = asyncio.Event()
        self._posts: set[asyncio.Future[int]] = set()
        self.webhook_errors: list[BaseException] = []
        """Failures of webhook POSTs (the server keeps running)."""

    @property
    def server(self) -> FakeRtmsServer:
        """The protocol core."""
        assert self._core is not None, "the server is not bound yet"
        return self._core

    # --- commands (call from the loop's thread) ---------------------------------------------

    def call(self, fn: Callable[[FakeRtmsServer, float], T]) -> T:
        """Run ``fn(core, now)``, then perform what it caused."""
        result = fn(self.server, self.loop.time())
        self._flush()
        return result

    def add_stream(self, spec: StreamSpec) -> StreamInfo:
        """Start serving a stream now."""
        return self.call(lambda core, now: core.add_stream(spec, now))

    def rtms_started_body(self, stream: StreamInfo | str) -> bytes:
        """The stream's current ``rtms_started`` webhook body."""
        return self.server.rtms_started_body(stream)

    def status(self, stream: StreamInfo | str) -> StreamStatus:
        return self.server.status(stream)

    def end_stream(
        self, stream: StreamInfo | str, reason: StopReason | int = StopReason.MEETING_ENDED
    ) -> None:
        """End a stream now (state updates, close frames, ``rtms_stopped``)."""
        self.call(lambda core, now: core.end_stream(stream, now, reason))

    async def wait_for(
        self, predicate: Callable[[FakeRtmsServer], bool], timeout: float | None
    ) -> bool:
        """Wait until ``predicate(core)`` holds (checked after every change) or ``timeout``
        seconds pass (None: no limit); returns whether it holds."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self.server):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return predicate(self.server)
        return True

    # --- transport callbacks ----------------------------------------------------------------

    def new_conn_id(self) -> int:
        conn_id = self._next_id
        self._next_id += 1
        return conn_id

    def made(self, proto: _Protocol) -> None:
        self._protocols[proto.conn_id] = proto
        self.server.connection_made(proto.conn_id, self.loop.time())
        self._flush()

    def data(self, conn_id: int, data: bytes) -> None:
        self.server.receive_data(conn_id, data, self.loop.time())
        self._flush()

    def lost(self, conn_id: int) -> None:
        if self._protocols.pop(conn_id, None) is not None:
            self.server.connection_lost(conn_id, self.loop.time())
            self._flush()

    # --- performing actions -----------------------------------------------------------------

    def _flush(self) -> None:
        """Perform the core's actions; one write per connection per flush.

        Writes are joined per connection (and flushed before that connection's
        close): fewer system calls, and a client that vanished gets one write
        per flush rather than one per message, so asyncio, which warns about
        each write to a lost connection from the fifth on, stays quiet while
        the loss travels up to the protocol.
        """
        core = self.server
        pending: dict[_Protocol, list[bytes]] = {}
        for action in core.drain():
            if isinstance(action, EmitWebhook):
                self._post(action)
                continue
            proto = self._protocols.get(action.conn)
            if proto is None or proto.transport is None:
                continue
            transport = proto.transport
            if isinstance(action, Send):
                pending.setdefault(proto, []).append(action.data)
                continue
            self._write(proto, pending.pop(proto, None))
            if isinstance(action, Close):
                transport.close()
            elif isinstance(action, Abort):
                transport.abort()
            else:
                assert isinstance(action, PauseReading)
                self._pause(transport, action.seconds)
        for proto, parts in pending.items():
            self._write(proto, parts)
        self._rearm()
        self._changed.set()

    @staticmethod
    def _write(proto: _Protocol, parts: list[bytes] | None) -> None:
        transport = proto.transport
        if parts and transport is not None and not transport.is_closing():
            transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def _pause(self, transport: asyncio.Transport, seconds: float) -> None:
        if transport.is_closing() or not transport.is_reading():
            return
        transport.pause_reading()

        def resume() -> None:
            if not transport.is_closing() and not transport.is_reading():
                transport.resume_reading()

        self.loop.call_later(seconds, resume)

    def _post(self, action: EmitWebhook) -> None:
        if self._webhook is None:
            return
        url, secret = self._webhook
        assert url is not None and secret is not None
        future = self.loop.run_in_executor(None, post_webhook, url, action.body, secret)
        self._posts.add(future)
        future.add_done_callback(self._posted)

    def _posted(self, future: asyncio.Future[int]) -> None:
        self._posts.discard(future)
        error = None if future.cancelled() else future.exception()
        if error is not None:
            self.webhook_errors.append(error)

    def _rearm(self) -> None:
        deadline = self.server.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        deadline = self._timer_at
        self._timer = self._timer_at = None
        now = self.loop.time()
        self.server.handle_timer(now if deadline is None else max(deadline, now))
        self._flush()

    async def _shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        for proto in list(self._protocols.values()):
            if proto.transport is not None:
                proto.transport.abort()
        if self._posts:
            await asyncio.wait(self._posts, timeout=5)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@asynccontextmanager
async def serve(
    config: ServerConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ssl_context: ssl.SSLContext | None = None,
    url_host: str | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> AsyncIterator[RunningServer]:
    """Bind, serve, and yield a :class:`RunningServer` (``.port``, ``.base_url``, ``.server``).

    The core's ``base_url`` becomes ``ws[s]://<url_host or host>:<port>``; with
    TLS, name a host the certificate covers (``localhost`` or ``127.0.0.1`` for
    :func:`rtms_conformance.tls.make_test_ca`).  Emitted webhooks are POSTed to
    ``webhook_url`` when both it and ``webhook_secret`` are given.
    """
    loop = asyncio.get_running_loop()
    running = RunningServer(loop, webhook_url=webhook_url, webhook_secret=webhook_secret)
    server = await loop.create_server(
        lambda: _Protocol(running), host, port, ssl=ssl_context, start_serving=False
    )
    try:
        bound = server.sockets[0].getsockname()
        running.host, running.port = host, int(bound[1])
        scheme = "wss" if ssl_context is not None else "ws"
        running.base_url = f"{scheme}://{_url_host(url_host or host)}:{running.port}"
        running._core = FakeRtmsServer(dataclasses.replace(config, base_url=running.base_url))
        await server.start_serving()
        yield running
    finally:
        server.close()
        await running._shutdown()
        await server.wait_closed()
        await _handshakes_gone(server, timeout=2.0)


async def _handshakes_gone(server: asyncio.Server, *, timeout: float) -> None:
    """Wait (bounded) for connections still in their TLS handshake to end.

    They have no protocol yet, so :meth:`RunningServer._shutdown` cannot abort
    them, and Python 3.11's ``wait_closed()`` returns without waiting for
    them: a client that gave up mid-handshake leaves one that closes a moment
    later, after the loop would otherwise be gone (an unclosed transport).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while getattr(server, "_active_count", 0) and loop.time() < deadline:
        await asyncio.sleep(0.01)


class ServerThread:
    """:func:`serve` on a background thread, for code that is not asyncio.

    Use as a context manager; every method is thread-safe and waits (at most
    ``timeout`` seconds) for the server thread to answer.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        url_host: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._config = config
        self._host, self._port, self._ssl, self._url_host = host, port, ssl_context, url_host
        self._webhook_url, self._webhook_secret = webhook_url, webhook_secret
        self.timeout = timeout
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._running: RunningServer | None = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ServerThread:
        """Start the thread and wait until the server listens."""
        if self._thread is not None:
            raise RuntimeError("the server thread was already started")
        self._thread = threading.Thread(target=self._run, name="rtms-fake-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.timeout):
            raise TimeoutError("the fake server did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(), never lost
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            self._config,
            host=self._host,
            port=self._port,
            ssl_context=self._ssl,
            url_host=self._url_host,
            webhook_url=self._webhook_url,
            webhook_secret=self._webhook_secret,
        ) as running:
            self._running = running
            self._ready.set()
            await self._stop.wait()

    @property
    def running(self) -> RunningServer:
        if self._running is None:
            raise RuntimeError("the server thread is not running")
        return self._running

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def base_url(self) -> str:
        return self.running.base_url

    def call(self, fn: Callable[[RunningServer], T]) -> T:
        """Run ``fn(running_server)`` on the server thread and return its result."""
        loop = self._loop
        if loop is None or self._running is None:
            raise RuntimeError("the server thread is not running")
        running = self._running
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job() -> None:
            try:
                result.set_result(fn(running))
            except BaseException as exc:
                result.set_exception(exc)

        loop.call_soon_threadsafe(job)
        return result.result(self.timeout)

    def add_stream(self, spec: StreamSpec) -> StreamInfo:
        return self.call(lambda r: r.add_stream(spec))

    def rtms_started_body(self, stream: StreamInfo | str) -> bytes:
        return self.call(lambda r: r.rtms_started_body(stream))

    def status(self, stream: StreamInfo | str) -> StreamStatus:
        return self.call(lambda r: r.status(stream))

    def end_stream(
        self, stream: StreamInfo | str, reason: StopReason | int = StopReason.MEETING_ENDED
    ) -> None:
        self.call(lambda r: r.end_stream(stream, reason))

    def wait_for(self, predicate: Callable[[FakeRtmsServer], bool], timeout: float) -> bool:
        """Block until ``predicate(core)`` holds on the server thread, or ``timeout``."""
        loop = self._loop
        if loop is None or self._running is None:
            raise RuntimeError("the server thread is not running")
        future = asyncio.run_coroutine_threadsafe(self._running.wait_for(predicate, timeout), loop)
        return future.result(timeout + self.timeout)

    def stop(self) -> None:
        """Stop serving and join the thread."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(self.timeout)
        self._thread = None
        self._running = None
