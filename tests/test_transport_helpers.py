"""Helpers for the transport tests (no tests here): the fake server over TLS, a
CONNECT proxy, a listener that never answers, fd counting, and one way to run
a stream with any of the three drivers."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import json
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import trio

import rtms_transports.asyncio as rt_asyncio
import rtms_transports.blocking as rt_blocking
import rtms_transports.trio as rt_trio
from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import RunningServer, ServerThread, serve
from rtms_conformance.server import ServerConfig, StreamInfo, StreamSpec, StreamStatus
from rtms_conformance.tls import LoopbackTLS, make_test_ca
from rtms_proto import MediaType
from rtms_proto import events as ev
from rtms_transports import TransportOptions
from rtms_transports._engine import StreamCommands

CLIENT_ID = "transport-test-client"
CLIENT_SECRET = "transport-test-secret-7f3a9c"
ALLOWED = ("127.0.0.1", "localhost")
DRIVERS = ("asyncio", "trio", "blocking")

T = TypeVar("T")


@functools.cache
def loopback_tls() -> LoopbackTLS:
    """One throwaway CA (and server certificate for 127.0.0.1/localhost) per run."""
    return make_test_ca()


@functools.cache
def other_tls() -> LoopbackTLS:
    """Another CA: its certificates do not verify against :func:`loopback_tls`."""
    return make_test_ca()


def write_ca(directory: Path, tls: LoopbackTLS | None = None) -> str:
    return str((tls or loopback_tls()).write_ca(directory / "ca.pem"))


def options(ca: str, **changes: Any) -> TransportOptions:
    return TransportOptions(ca_file=ca, **changes)


@contextlib.contextmanager
def fake_server(tls: LoopbackTLS | None = None, **changes: Any) -> Iterator[ServerThread]:
    config = ServerConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **changes)
    context = (tls or loopback_tls()).server_context
    with ServerThread(config, ssl_context=context) as server:
        yield server


class ServerPool:
    """Several fake servers on one background thread and event loop.

    One fake server's work per input grows with its number of streams, so many
    concurrent streams are spread over several servers; one thread serves them
    all, because many I/O-bound threads would queue for the GIL behind the
    clients under test.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.servers: list[RunningServer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-server-pool", daemon=True)

    def __enter__(self) -> ServerPool:
        self._thread.start()
        assert self._ready.wait(10), "the servers did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        loop, stop = self._loop, self._stop
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        config = ServerConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(self.count):
                context = loopback_tls().server_context
                self.servers.append(
                    await stack.enter_async_context(serve(config, ssl_context=context))
                )
            self._ready.set()
            await self._stop.wait()

    def add_stream(self, index: int, spec: StreamSpec) -> StreamInfo:
        return self.call(lambda: self.servers[index].add_stream(spec))

    def rtms_started_body(self, index: int, info: StreamInfo) -> bytes:
        return self.call(lambda: self.servers[index].rtms_started_body(info))

    def status(self, index: int, info: StreamInfo | str) -> StreamStatus:
        return self.call(lambda: self.servers[index].status(info))

    def end_stream(self, index: int, info: StreamInfo | str) -> None:
        self.call(lambda: self.servers[index].end_stream(info))

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on the servers' thread."""
        loop = self._loop
        assert loop is not None
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def job() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(job)
        return done.result(10)


class ServerProcess:
    """Fake servers in a child process, driven through a pipe.

    Many concurrent streams mean thousands of messages a second; a server in a
    thread of the test's process would fight the clients under test for the
    GIL (every send and TLS read hands it over), so it gets a process of its own.
    Streams are open-ended; the CA is the child's (see :meth:`ca_file`).
    """

    def __init__(self, servers: int) -> None:
        self.servers = servers
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve_in_child, args=(child, servers), name="test-servers", daemon=True
        )
        self.ca_pem = b""

    def __enter__(self) -> ServerProcess:
        self._process.start()
        self.ca_pem = self._ask(("hello",))
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._conn.send(("quit",))
        self._process.join(10)
        self._conn.close()

    def ca_file(self, directory: Path) -> str:
        path = directory / "child-ca.pem"
        path.write_bytes(self.ca_pem)
        return str(path)

    def _ask(self, command: tuple[object, ...]) -> Any:
        self._conn.send(command)
        if not self._conn.poll(30):
            raise TimeoutError(f"the server process did not answer {command[0]!r}")
        kind, value = self._conn.recv()
        if kind == "error":
            raise RuntimeError(value)
        return value

    def add_stream(self, index: int, name: str) -> bytes:
        """Serve an open-ended stream on server ``index``; its rtms_started body."""
        return bytes(self._ask(("add", index, name)))

    def end_stream(self, index: int, name: str) -> None:
        self._ask(("end", index, name))

    def sent(self, index: int, name: str) -> dict[int, int]:
        """How many messages of each msg_type the stream sent."""
        return dict(self._ask(("sent", index, name)))


def _serve_in_child(conn: Any, count: int) -> None:
    with ServerPool(count) as pool:
        while True:
            command = conn.recv()
            kind = command[0]
            if kind == "quit":
                return
            try:
                if kind == "hello":
                    conn.send(("ok", loopback_tls().ca_pem))
                elif kind == "add":
                    info = pool.add_stream(command[1], stream_spec(command[2], duration=None))
                    conn.send(("ok", pool.rtms_started_body(command[1], info)))
                elif kind == "end":
                    pool.end_stream(command[1], command[2])
                    conn.send(("ok", None))
                else:
                    conn.send(("ok", dict(pool.status(command[1], command[2]).sent)))
            except Exception as exc:
                conn.send(("error", repr(exc)))


def meeting(duration: float | None = 1.0, **changes: Any) -> MeetingSpec:
    base: dict[str, Any] = {
        "participants": 2,
        "turn": 0.5,
        "pause": 0.1,
        "duration": duration,
        "chat_interval": None,
        "share_at": None,
        "video": False,
    }
    base.update(changes)
    return MeetingSpec(**base)


def stream_spec(
    name: str,
    *,
    duration: float | None = 1.0,
    scopes: MediaType = MediaType.AUDIO | MediaType.TRANSCRIPT,
    **spec: Any,
) -> StreamSpec:
    return StreamSpec(
        meeting_uuid=f"meeting-{name}==",
        rtms_stream_id=name,
        scopes=scopes,
        offer_all=False,
        meeting=spec.pop("meeting", None) or meeting(duration),
        **spec,
    )


def add_stream(
    server: ServerThread,
    name: str,
    *,
    duration: float | None = 1.0,
    scopes: MediaType = MediaType.AUDIO | MediaType.TRANSCRIPT,
    **spec: Any,
) -> StreamInfo:
    return server.add_stream(stream_spec(name, duration=duration, scopes=scopes, **spec))


def webhook_body(url: str, stream_id: str = "no-server-stream") -> bytes:
    """An ``rtms_started`` body pointing at ``url``."""
    return json.dumps(
        {
            "event": "meeting.rtms_started",
            "event_ts": 1,
            "payload": {
                "meeting_uuid": "meeting==",
                "rtms_stream_id": stream_id,
                "server_urls": url,
                "operator_id": "op",
            },
        }
    ).encode()


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def rtms_threads() -> list[threading.Thread]:
    """The blocking driver's loop threads still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("rtms-stream-") and t.is_alive()]


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP (in the kernel's backlog) and never says anything."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


class ConnectProxy:
    """A tiny HTTP CONNECT proxy on 127.0.0.1 (threads), with optional basic auth."""

    def __init__(self, *, user: str | None = None, password: str | None = None) -> None:
        self._auth = (
            None
            if user is None
            else "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        )
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.tunnels: list[str] = []
        self.refused = 0
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def url(self, user: str | None = None, password: str | None = None) -> str:
        cred = "" if user is None else f"{user}:{password}@"
        return f"http://{cred}127.0.0.1:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self._threads:
            t.join(5)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="test-proxy")
        self._threads.append(thread)
        thread.start()

    def _keep(self, s: socket.socket) -> None:
        with self._lock:
            self._socks.append(s)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._keep(conn)
            self._spawn(self._handle, conn)

    def _handle(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            try:
                part = conn.recv(4096)
            except OSError:
                return
            if not part:
                return
            head += part
        lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
        if method != "CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            return
        if self._auth is not None and headers.get("proxy-authorization") != self._auth:
            self.refused += 1
            conn.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\ncontent-length: 0\r\n\r\n'
            )
            return
        host, port = target.rsplit(":", 1)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            return
        upstream.settimeout(None)
        self._keep(upstream)
        self.tunnels.append(target)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self._spawn(self._pipe, upstream, conn)
        self._pipe(conn, upstream)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


# --------------------------------------------------------------------------- any driver

Script = Callable[[StreamCommands], None]
Stop = Callable[[ev.Event], bool]


def run_stream(
    driver: str,
    source: object,
    *,
    script: Script | None = None,
    stop: Stop | None = None,
    **kwargs: Any,
) -> list[ev.Event]:
    """Connect with ``driver``, call ``script(stream)``, collect events until the end
    (or until ``stop(event)``, leaving the block then); ``connect`` errors propagate."""
    got: list[ev.Event] = []
    if driver == "asyncio":

        async def amain() -> None:
            async with rt_asyncio.connect(source, **kwargs) as stream:  # type: ignore[arg-type]
                if script is not None:
                    script(stream)
                async for event in stream:
                    got.append(event)
                    if stop is not None and stop(event):
                        break

        asyncio.run(amain())
    elif driver == "trio":

        async def tmain() -> None:
            async with rt_trio.connect(source, **kwargs) as stream:  # type: ignore[arg-type]
                if script is not None:
                    script(stream)
                async for event in stream:
                    got.append(event)
                    if stop is not None and stop(event):
                        break

        trio.run(tmain)
    else:
        assert driver == "blocking"
        with rt_blocking.connect(source, **kwargs) as stream:  # type: ignore[arg-type]
            if script is not None:
                script(stream)
            for event in stream:
                got.append(event)
                if stop is not None and stop(event):
                    break
    return got


def of(events: list[ev.Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]
