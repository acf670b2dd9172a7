"""Helpers for the transport tests (no tests here): the fake server over TLS, a
CONNECT proxy, a listener that never answers, fd counting, and a harness per
driver, so that one test runs on each of the three drivers."""

from __future__ import annotations

import abc
import asyncio
import base64
import concurrent.futures
import contextlib
import functools
import json
import multiprocessing
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import trio

import rtms_transports.asyncio as rt_asyncio
import rtms_transports.blocking as rt_blocking
import rtms_transports.trio as rt_trio
from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import RunningServer, ServerThread, serve
from rtms_conformance.server import ServerConfig, StreamInfo, StreamSpec, StreamStatus
from rtms_conformance.tls import LoopbackTLS, make_test_ca
from rtms_proto import MediaType, Session
from rtms_proto import events as ev
from rtms_transports import TransportOptions

CLIENT_ID = "transport-test-client"
CLIENT_SECRET = "transport-test-secret-7f3a9c"
ALLOWED = ("127.0.0.1", "localhost")

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


def driver_threads() -> list[str]:
    """Names of the driver's threads alive (the shared ``rtms-io``, a pool's, a stream's
    own would show here): every "rtms" thread but the fake server's."""
    return sorted(
        t.name
        for t in threading.enumerate()
        if t.is_alive() and t.name.startswith("rtms") and t.name != "rtms-fake-server"
    )


def rtms_threads() -> list[threading.Thread]:
    """The blocking driver's I/O threads still alive: the one of connect() streams."""
    return [t for t in threading.enumerate() if t.name == "rtms-io" and t.is_alive()]


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP (in the kernel's backlog) and never says anything."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@contextlib.contextmanager
def knocked_listener() -> Iterator[tuple[int, Callable[[], bool]]]:
    """:func:`silent_listener`, and whether a client's connection waits in its backlog
    (the client is then in its TLS handshake)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)

    def knocked() -> bool:
        readable, _, _ = select.select([listener], [], [], 0)
        return bool(readable)

    try:
        yield listener.getsockname()[1], knocked
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


class FailFirst:
    """A TCP forwarder on 127.0.0.1 to ``target``, that hangs up on its first connection."""

    def __init__(self, target: int) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.accepted = 0
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def rewrite(self, body: bytes, port: int) -> bytes:
        """``body`` with its signaling URL pointing here instead of at ``port``."""
        return body.replace(f":{port}/".encode(), f":{self.port}/".encode())

    def __enter__(self) -> FailFirst:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for s in list(self._socks):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self._threads:
            t.join(5)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="test-forward")
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted == 1:
                conn.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target), timeout=5)
            upstream.settimeout(None)
            self._socks += [conn, upstream]
            self._spawn(ConnectProxy._pipe, upstream, conn)
            self._spawn(ConnectProxy._pipe, conn, upstream)


# --------------------------------------------------------------------------- any driver

Script = Callable[[Any], None]
"""Called with the stream once ``connect()`` returned (commands)."""
Until = Callable[[], bool]
"""A condition the application waits for (bounded) before taking the next event."""
OnEvent = Callable[[Any, ev.Event], bool | Until | None]
"""Called with the stream and each event: True leaves the block, a condition makes the
application busy until it holds, an exception propagates."""
Handler = Callable[[ev.Event], object]

WAIT = 10.0
"""How long a harness waits for a condition before failing the test."""
MANY_WAIT = 60.0
"""The same, for many streams at once on a busy machine."""


class Interrupted(Exception):
    """What the blocking harness's signal handler raises, as KeyboardInterrupt would."""


@dataclass
class Outcome:
    """What a harness saw of one stream."""

    events: list[ev.Event]
    stream: Any
    after_end: BaseException | None = None
    """What ``receive()`` raised when called once more after the iteration ended."""


@dataclass
class Fds:
    """Descriptors open inside the driver's framework, before joining and after leaving."""

    before: int
    after: int


class Harness(abc.ABC):
    """One driver behind one interface, so that a test runs on every driver.

    Each method runs the driver's own framework (``asyncio.run``, ``trio.run``,
    or plain calls) to completion and returns what happened.
    """

    name: str
    module: Any
    concurrent_streams: int
    """How many streams run at once in the many-streams test."""

    def __repr__(self) -> str:
        return self.name

    @abc.abstractmethod
    def stream(
        self,
        source: object,
        *,
        script: Script | None = None,
        on_event: OnEvent | None = None,
        receive_after_end: bool = False,
        **kwargs: Any,
    ) -> Outcome:
        """``connect(source, **kwargs)``, ``script(stream)``, then take events until
        the end or until ``on_event`` says leave (see :data:`OnEvent`)."""

    @abc.abstractmethod
    def interrupt(
        self, source: object, when: Callable[[], bool], *, iterate: bool, **kwargs: Any
    ) -> Fds:
        """Join (and iterate, with ``iterate``) and interrupt it as the framework does
        (cancellation; a signal for blocking) once ``when()``; fails if not interrupted."""

    @abc.abstractmethod
    def run(self, runner: Any) -> ev.SessionEnded:
        """``runner.run()`` (a ``SessionRunner`` of :attr:`module`)."""

    @abc.abstractmethod
    def run_session(self, session: Session, handler: Handler, **kwargs: Any) -> ev.SessionEnded:
        """``module.run_session(session, handler, **kwargs)``."""

    @abc.abstractmethod
    def clock(self) -> float:
        """The driver's clock, as a handler reads it to call the session directly."""

    @abc.abstractmethod
    def many(
        self,
        bodies: list[bytes],
        options: TransportOptions,
        ready: Callable[[list[list[ev.Event]]], bool],
        then: Callable[[], None],
        **kwargs: Any,
    ) -> list[list[ev.Event]]:
        """Every body's stream at once: collect their events; once ``ready(events)``,
        call ``then()`` (blocking: it may talk to a server process) and wait for every end."""


async def _async_wait(
    predicate: Callable[[], bool], sleep: Callable[[float], Any], timeout: float = WAIT
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        await sleep(0.01)


class AsyncioHarness(Harness):
    name = "asyncio"
    module = rt_asyncio
    concurrent_streams = 100

    def stream(
        self,
        source: object,
        *,
        script: Script | None = None,
        on_event: OnEvent | None = None,
        receive_after_end: bool = False,
        **kwargs: Any,
    ) -> Outcome:
        got: list[ev.Event] = []
        outcome = Outcome(got, None)

        async def main() -> None:
            async with rt_asyncio.connect(source, **kwargs) as stream:  # type: ignore[arg-type]
                outcome.stream = stream
                if script is not None:
                    script(stream)
                async for event in stream:
                    got.append(event)
                    then = None if on_event is None else on_event(stream, event)
                    if then is True:
                        return
                    if callable(then):
                        await _async_wait(then, asyncio.sleep)
                if receive_after_end:
                    try:
                        await stream.receive()
                    except BaseException as exc:
                        outcome.after_end = exc

        asyncio.run(main())
        return outcome

    def interrupt(
        self, source: object, when: Callable[[], bool], *, iterate: bool, **kwargs: Any
    ) -> Fds:
        async def join() -> None:
            async with rt_asyncio.connect(source, **kwargs) as stream:  # type: ignore[arg-type]
                if not iterate:
                    raise AssertionError("joined what should not be joinable")
                async for _ in stream:
                    pass

        async def main() -> Fds:
            before = fd_count()  # the loop has descriptors of its own
            task = asyncio.create_task(join())
            await _async_wait(lambda: when() or task.done(), asyncio.sleep)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            else:  # pragma: no cover - a failure of the driver under test
                raise AssertionError("the stream ended before it was cancelled")
            assert not asyncio.all_tasks() - {asyncio.current_task()}
            return Fds(before, fd_count())

        return asyncio.run(main())

    def run(self, runner: Any) -> ev.SessionEnded:
        ended: ev.SessionEnded = asyncio.run(runner.run())
        return ended

    def run_session(self, session: Session, handler: Handler, **kwargs: Any) -> ev.SessionEnded:
        return asyncio.run(rt_asyncio.run_session(session, handler, **kwargs))

    def clock(self) -> float:
        return asyncio.get_running_loop().time()

    def many(
        self,
        bodies: list[bytes],
        options: TransportOptions,
        ready: Callable[[list[list[ev.Event]]], bool],
        then: Callable[[], None],
        **kwargs: Any,
    ) -> list[list[ev.Event]]:
        results: list[list[ev.Event]] = [[] for _ in bodies]

        async def one(body: bytes, got: list[ev.Event]) -> None:
            async with rt_asyncio.connect(body, options=options, **kwargs) as stream:
                async for event in stream:
                    got.append(event)

        async def main() -> None:
            async with asyncio.TaskGroup() as group:
                for body, got in zip(bodies, results, strict=True):
                    group.create_task(one(body, got))
                await _async_wait(lambda: ready(results), asyncio.sleep, MANY_WAIT)
                await asyncio.to_thread(then)
            assert not asyncio.all_tasks() - {asyncio.current_task()}

        asyncio.run(main())
        return results


class TrioHarness(Harness):
    name = "trio"
    module = rt_trio
    concurrent_streams = 100

    def stream(
        self,
        source: object,
        *,
        script: Script | None = None,
        on_event: OnEvent | None = None,
        receive_after_end: bool = False,
        **kwargs: Any,
    ) -> Outcome:
        got: list[ev.Event] = []
        outcome = Outcome(got, None)

        async def main() -> None:
            async with rt_trio.connect(source, **kwargs) as stream:  # type: ignore[arg-type]
                outcome.stream = stream
                if script is not None:
                    script(stream)
                async for event in stream:
                    got.append(event)
                    then = None if on_event is None else on_event(stream, event)
                    if then is True:
                        return
                    if callable(then):
                        await _async_wait(then, trio.sleep)
                if receive_after_end:
                    try:
                        await stream.receive()
                    except BaseException as exc:
                        outcome.after_end = exc

        trio.run(main)
        return outcome

    def interrupt(
        self, source: object, when: Callable[[], bool], *, iterate: bool, **kwargs: Any
    ) -> Fds:
        async def join(done: trio.Event) -> None:
            try:
                async with rt_trio.connect(source, **kwargs) as stream:  # type: ignore[arg-type]
                    if not iterate:
                        raise AssertionError("joined what should not be joinable")
                    async for _ in stream:
                        pass
            finally:
                done.set()

        async def main() -> Fds:
            rt_trio._poller()  # the run's reader has a descriptor of its own (its epoll)
            before = fd_count()
            done = trio.Event()
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(join, done)
                    await _async_wait(lambda: when() or done.is_set(), trio.sleep)
                    assert not done.is_set(), "the stream ended before it was cancelled"
                    scope.cancel()
            assert scope.cancelled_caught
            return Fds(before, fd_count())

        return trio.run(main)

    def run(self, runner: Any) -> ev.SessionEnded:
        ended: ev.SessionEnded = trio.run(runner.run)
        return ended

    def run_session(self, session: Session, handler: Handler, **kwargs: Any) -> ev.SessionEnded:
        async def main() -> ev.SessionEnded:
            return await rt_trio.run_session(session, handler, **kwargs)

        return trio.run(main)

    def clock(self) -> float:
        return trio.current_time()

    def many(
        self,
        bodies: list[bytes],
        options: TransportOptions,
        ready: Callable[[list[list[ev.Event]]], bool],
        then: Callable[[], None],
        **kwargs: Any,
    ) -> list[list[ev.Event]]:
        results: list[list[ev.Event]] = [[] for _ in bodies]

        async def one(body: bytes, got: list[ev.Event]) -> None:
            async with rt_trio.connect(body, options=options, **kwargs) as stream:
                async for event in stream:
                    got.append(event)

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                for body, got in zip(bodies, results, strict=True):
                    nursery.start_soon(one, body, got)
                await _async_wait(lambda: ready(results), trio.sleep, MANY_WAIT)
                await trio.to_thread.run_sync(then)

        trio.run(main)
        return results


class BlockingHarness(Harness):
    name = "blocking"
    module = rt_blocking
    concurrent_streams = 20  # a thread each

    def stream(
        self,
        source: object,
        *,
        script: Script | None = None,
        on_event: OnEvent | None = None,
        receive_after_end: bool = False,
        **kwargs: Any,
    ) -> Outcome:
        got: list[ev.Event] = []
        outcome = Outcome(got, None)
        with rt_blocking.connect(source, **kwargs) as stream:  # type: ignore[arg-type]
            outcome.stream = stream
            if script is not None:
                script(stream)
            for event in stream:
                got.append(event)
                then = None if on_event is None else on_event(stream, event)
                if then is True:
                    break
                if callable(then):
                    assert wait_until(then, WAIT), "the condition did not hold in time"
            else:
                if receive_after_end:
                    try:
                        stream.receive(timeout=WAIT)
                    except BaseException as exc:
                        outcome.after_end = exc
        assert not rtms_threads()
        return outcome

    def interrupt(
        self, source: object, when: Callable[[], bool], *, iterate: bool, **kwargs: Any
    ) -> Fds:
        """A signal (as Ctrl-C) interrupts the main thread, inside connect() or the loop."""
        assert threading.current_thread() is threading.main_thread()
        armed = threading.Event()
        leaving = threading.Event()

        def handler(signum: int, frame: FrameType | None) -> None:
            if armed.is_set():
                armed.clear()
                raise Interrupted

        def watch() -> None:
            if wait_until(lambda: when() or leaving.is_set(), WAIT) and not leaving.is_set():
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGALRM)

        before = fd_count()
        previous = signal.signal(signal.SIGALRM, handler)
        watcher = threading.Thread(target=watch, name="test-interrupt", daemon=True)
        armed.set()
        watcher.start()
        try:
            try:
                with rt_blocking.connect(source, **kwargs) as stream:  # type: ignore[arg-type]
                    if not iterate:
                        raise AssertionError("joined what should not be joinable")
                    for _ in stream:
                        pass
            except Interrupted:
                pass
            else:  # pragma: no cover - a failure of the driver under test
                raise AssertionError("the stream ended before it was interrupted")
        finally:
            armed.clear()
            leaving.set()
            watcher.join(WAIT)
            signal.signal(signal.SIGALRM, previous)
        assert not rtms_threads()
        return Fds(before, fd_count())

    def run(self, runner: Any) -> ev.SessionEnded:
        ended: ev.SessionEnded = runner.run()
        return ended

    def run_session(self, session: Session, handler: Handler, **kwargs: Any) -> ev.SessionEnded:
        return rt_blocking.run_session(session, handler, **kwargs)

    def clock(self) -> float:
        return time.monotonic()

    def many(
        self,
        bodies: list[bytes],
        options: TransportOptions,
        ready: Callable[[list[list[ev.Event]]], bool],
        then: Callable[[], None],
        **kwargs: Any,
    ) -> list[list[ev.Event]]:
        results: list[list[ev.Event]] = [[] for _ in bodies]
        errors: list[BaseException] = []

        def one(body: bytes, got: list[ev.Event]) -> None:
            try:
                with rt_blocking.connect(body, options=options, **kwargs) as stream:
                    got.extend(stream)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=one, args=(body, got))
            for body, got in zip(bodies, results, strict=True)
        ]
        for t in threads:
            t.start()
        assert wait_until(lambda: ready(results), MANY_WAIT), "the streams did not all flow"
        then()
        for t in threads:
            t.join(MANY_WAIT)
        assert not errors and not rtms_threads()
        return results


HARNESSES: tuple[Harness, ...] = (AsyncioHarness(), TrioHarness(), BlockingHarness())
"""Every driver, for ``pytest.mark.parametrize("driver", HARNESSES)``."""


def of(events: list[ev.Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]
