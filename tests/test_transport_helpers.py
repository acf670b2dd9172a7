"""Helpers for the transport tests (no tests here): the fake server over TLS, a
CONNECT proxy, a listener that never answers, fd counting, and one way to run
a stream with any of the three drivers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import trio

import rtms_transports.asyncio as rt_asyncio
import rtms_transports.blocking as rt_blocking
import rtms_transports.trio as rt_trio
from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import ServerThread
from rtms_conformance.server_core import ServerConfig, StreamInfo, StreamSpec
from rtms_conformance.tls import LoopbackTLS, make_test_ca
from rtms_proto import MediaType
from rtms_proto import events as ev
from rtms_transports import TransportOptions
from rtms_transports._engine import StreamCommands

CLIENT_ID = "transport-test-client"
CLIENT_SECRET = "transport-test-secret-7f3a9c"
ALLOWED = ("127.0.0.1", "localhost")
DRIVERS = ("asyncio", "trio", "blocking")


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


@contextlib.contextmanager
def fake_servers(count: int) -> Iterator[list[ServerThread]]:
    """Several servers: one fake server's work per input grows with its streams, so
    many concurrent streams are spread over a few servers to stay real-time."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(fake_server()) for _ in range(count)]


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


def add_stream(
    server: ServerThread,
    name: str,
    *,
    duration: float | None = 1.0,
    scopes: MediaType = MediaType.AUDIO | MediaType.TRANSCRIPT,
    **spec: Any,
) -> StreamInfo:
    return server.add_stream(
        StreamSpec(
            meeting_uuid=f"meeting-{name}==",
            rtms_stream_id=name,
            scopes=scopes,
            offer_all=False,
            meeting=meeting(duration),
            **spec,
        )
    )


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
    return [t for t in threading.enumerate() if t.name.startswith("rtms-") and t.is_alive()]


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
