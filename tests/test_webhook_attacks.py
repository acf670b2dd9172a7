"""HTTP attacks on the webhook receiver behind ``rtms-proto listen`` (issue 10, item 3).

The real :class:`~rtms_app.webhook_server.WebhookServer` runs on its own loop
in a thread on 127.0.0.1; attackers are raw sockets that trickle, hoard
connections, send oversize or malformed requests.  Each attack asserts a bound
on what the attacker gets (when its connection is closed, with which answer,
how many connections the server holds) and that a real signed webhook is
answered, and acted on, within :data:`PROMPT` seconds while the attack goes on.
Counts and times are small so that the file runs in a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest

from rtms_app.webhook_server import StreamAction, WebhookReceiver, WebhookServer
from rtms_proto.webhooks import Disposition, sign_webhook

SECRET = "attack-test-webhook-secret"
TIMEOUT = 1.0
"""The whole-request deadline the servers here run with (the default is 10 s)."""
PROMPT = 1.0
"""How long a real webhook may take to be answered during an attack."""
SLACK = 1.0
"""How late after its deadline an attacker's connection may be seen closed."""


@dataclass
class Running:
    server: WebhookServer
    loop: asyncio.AbstractEventLoop
    actions: list[StreamAction] = field(default_factory=list)
    fail_actions: bool = False

    @property
    def port(self) -> int:
        return self.server.port

    def connections(self) -> int:
        """The server's count of open connections, read on its own loop."""
        return asyncio.run_coroutine_threadsafe(_count(self.server), self.loop).result(5)

    def on_action(self, action: StreamAction) -> None:
        if self.fail_actions:
            raise OSError(28, "No space left on device")
        self.actions.append(action)


async def _count(server: WebhookServer) -> int:
    return server.connections


@contextmanager
def serving(**bounds: Any) -> Iterator[Running]:
    """A WebhookServer on 127.0.0.1 with ``bounds`` (and a 1 s deadline unless given)."""
    bounds.setdefault("request_timeout", TIMEOUT)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: list[Running] = []

    async def main() -> None:
        receiver = WebhookReceiver(SECRET, allowed_hosts=("zoom.us",))
        running = Running(server=None, loop=loop)  # type: ignore[arg-type]
        running.server = WebhookServer(receiver, running.on_action, clock=time.time, **bounds)
        await running.server.start("127.0.0.1", 0)
        holder.append(running)
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(main(), loop).result(10)
    assert ready.wait(10)
    running = holder[0]
    try:
        yield running
    finally:
        asyncio.run_coroutine_threadsafe(running.server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# --- the real webhook ----------------------------------------------------------------------------

_serial = iter(range(1_000_000))


def started_body(sid: str) -> bytes:
    payload = {
        "meeting_uuid": "m==",
        "rtms_stream_id": sid,
        "server_urls": "wss://rtms-sjc1.zoom.us/s",
    }
    return json.dumps({"event": "meeting.rtms_started", "event_ts": 1, "payload": payload}).encode()


def signed_request(raw: bytes, *, close: bool = True, target: bytes = b"/webhook") -> bytes:
    headers = sign_webhook(raw_body=raw, secret=SECRET, timestamp=int(time.time()))
    lines = [
        b"POST " + target + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Content-Type: application/json",
        b"Content-Length: " + str(len(raw)).encode(),
        *(f"{k}: {v}".encode() for k, v in headers.items()),
    ]
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + raw


class Responses:
    """Reads responses one after the other from ``sock`` (a read may hold several)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(
        self, deadline: float, *, head_only: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        """One whole response (status, headers, body), by ``deadline`` (``head_only``:
        the answer to HEAD, which has no body whatever its headers say)."""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += _recv(self.sock, deadline)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = 0 if head_only else int(headers["content-length"])
        while len(self.buffer) < length:
            self.buffer += _recv(self.sock, deadline)
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body


def read_response(
    sock: socket.socket, deadline: float, *, head_only: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """The one response expected on ``sock``."""
    reader = Responses(sock)
    response = reader.next(deadline, head_only=head_only)
    assert reader.buffer == b"", "more than one response"
    return response


def _recv(sock: socket.socket, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no complete response in time")
    sock.settimeout(left)
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("closed before a complete response")
    return chunk


def real_webhook(running: Running) -> float:
    """Post a real signed rtms_started; assert it is answered 200 and acted on; the time taken."""
    sid = f"real-{next(_serial)}"
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
        sock.sendall(signed_request(started_body(sid)))
        status, _, body = read_response(sock, began + PROMPT)
    took = time.monotonic() - began
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert took < PROMPT
    _wait(lambda: any(a.rtms_stream_id == sid for a in running.actions), began + PROMPT)
    action = next(a for a in running.actions if a.rtms_stream_id == sid)
    assert action.disposition is Disposition.NEW_STREAM
    return took


def _wait(predicate: Callable[[], bool], deadline: float) -> None:
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


# --- attackers -----------------------------------------------------------------------------------


def connect(running: Running) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", running.port), timeout=5)
    sock.setblocking(False)
    return sock


def drain(sock: socket.socket) -> tuple[bytes, bool]:
    """What ``sock`` has received so far, and whether the server closed it."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return data, False
        except ConnectionError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send what the socket takes; a closed connection is no error for an attacker."""
    with suppress(BlockingIOError, ConnectionError):
        sock.send(data)


def wait_closed(sock: socket.socket, deadline: float) -> bytes:
    """Everything received until the server closes ``sock``; fails after ``deadline``."""
    received = b""
    while True:
        data, closed = drain(sock)
        received += data
        if closed:
            return received
        left = deadline - time.monotonic()
        assert left > 0, f"still open; received {received[:80]!r}"
        select.select([sock], [], [], left)


def status_of(received: bytes) -> int | None:
    if not received.startswith(b"HTTP/1.1 "):
        return None
    return int(received.split(b" ", 2)[1])


def fd_budget(wanted: int) -> int:
    """``wanted`` connections, or fewer if the file-descriptor limit is low (two fds each:
    the attacker's socket and the server's, in this one process)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(8, min(wanted, (soft - 64) // 2))


HEAD = b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@dataclass
class Trickler:
    """Attackers that each send the next byte of ``payload`` every ``every`` seconds."""

    socks: list[socket.socket]
    payload: bytes
    every: float
    sent: int = 0
    received: dict[int, bytes] = field(default_factory=dict)
    closed_at: dict[int, float] = field(default_factory=dict)

    def step(self) -> None:
        if self.sent < len(self.payload):
            byte = self.payload[self.sent : self.sent + 1]
            self.sent += 1
            for i, sock in enumerate(self.socks):
                if i not in self.closed_at:
                    send_quietly(sock, byte)
        self.poll()

    def poll(self) -> None:
        for i, sock in enumerate(self.socks):
            if i in self.closed_at:
                continue
            data, closed = drain(sock)
            self.received[i] = self.received.get(i, b"") + data
            if closed:
                self.closed_at[i] = time.monotonic()

    def run_until(self, end: float, during: Callable[[], object] | None = None) -> None:
        """Trickle until ``end`` or every attacker is closed; ``during`` runs once, midway."""
        midway = time.monotonic() + (end - time.monotonic()) / 3
        while time.monotonic() < end and len(self.closed_at) < len(self.socks):
            self.step()
            if during is not None and time.monotonic() >= midway:
                during()
                during = None
            time.sleep(self.every)
        assert during is None, "the attack ended before the real webhook was sent"

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


# --- slow requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        HEAD + b"X-Pad: " + b"a" * 500,  # a head that never ends
        HEAD + b"Content-Length: 400\r\n\r\n" + b"{" * 400,  # a body that comes too slowly
    ],
    ids=["slow-head", "slow-body"],
)
def test_a_trickling_request_is_closed_at_its_deadline(payload: bytes) -> None:
    """One byte every 50 ms restarts no timer: every attacker gets 408 and is closed
    one deadline after it connected, and real webhooks are answered meanwhile."""
    with serving() as running:
        count = fd_budget(40)
        began = time.monotonic()
        attack = Trickler([connect(running) for _ in range(count)], payload, every=0.05)
        if b"Content-Length" in payload:
            # The head arrives whole and at once: only the body is slow.
            head_end = payload.index(b"\r\n\r\n") + 4
            for sock in attack.socks:
                sock.sendall(payload[:head_end])
            attack.sent = head_end
        try:
            attack.run_until(began + TIMEOUT + SLACK, during=lambda: real_webhook(running))
            assert len(attack.closed_at) == count, "an attacker outlived its deadline"
            for i in range(count):
                assert status_of(attack.received[i]) == 408
                assert TIMEOUT * 0.9 <= attack.closed_at[i] - began <= TIMEOUT + SLACK
            assert attack.sent < len(payload)  # closed mid-request, not after finishing it
            real_webhook(running)
            _wait(lambda: running.connections() == 0, time.monotonic() + 1)
        finally:
            attack.close()


def test_an_idle_connection_is_closed_at_its_deadline_without_an_answer() -> None:
    with serving() as running:
        began = time.monotonic()
        sock = connect(running)
        try:
            assert wait_closed(sock, began + TIMEOUT + SLACK) == b""
            assert time.monotonic() - began >= TIMEOUT * 0.9
        finally:
            sock.close()


def test_a_kept_alive_connection_gets_a_new_deadline_per_request_and_no_more() -> None:
    """Each request on a kept-alive connection has a whole deadline from the previous
    answer; the connection is closed (silently) when none comes."""
    with serving() as running:
        sock = connect(running)
        try:
            for i in range(3):
                sock.setblocking(True)
                sock.sendall(signed_request(started_body(f"kept-{i}"), close=False))
                status, headers, _ = read_response(sock, time.monotonic() + PROMPT)
                assert status == 200 and "connection" not in headers
                time.sleep(TIMEOUT / 2)  # half a deadline idle: still open
            sock.setblocking(False)
            answered = time.monotonic()
            assert wait_closed(sock, answered + TIMEOUT + SLACK) == b""
            assert time.monotonic() - answered >= TIMEOUT * 0.4
            _wait(lambda: len(running.actions) == 3, time.monotonic() + PROMPT)
            assert [a.rtms_stream_id for a in running.actions] == ["kept-0", "kept-1", "kept-2"]
        finally:
            sock.close()


# --- hoarded connections -------------------------------------------------------------------------


def test_more_idle_connections_than_the_cap_cannot_lock_out_a_real_webhook() -> None:
    """Beyond the cap, each new connection closes the one waiting longest (503): the
    server never holds more than the cap, and the real webhook, newest, is served.
    (A long deadline here, so that only eviction closes anything.)"""
    cap = 32
    with serving(max_connections=cap, request_timeout=30.0) as running:
        count = fd_budget(200)
        assert count > 2 * cap
        socks = [connect(running) for _ in range(count)]
        try:
            _wait(lambda: running.connections() == cap, time.monotonic() + 2)
            took = [real_webhook(running) for _ in range(5)]
            assert max(took) < PROMPT
            assert running.connections() <= cap
            # Every attacker beyond the cap was closed at once (the deadline is far), with a 503.
            refused: list[int] = []
            open_ones: list[int] = []
            for i, sock in enumerate(socks):
                received, closed = drain(sock)
                if closed:
                    assert status_of(received) == 503, received
                    refused.append(i)
                else:
                    assert received == b""
                    open_ones.append(i)
            # The first real webhook took an attacker's place; each closed when answered.
            assert len(refused) == count - cap + 1
            assert len(open_ones) == cap - 1
            # The kept ones are really held (not closed behind our back), until they leave.
            for i in open_ones:
                socks[i].close()
            _wait(lambda: running.connections() == 0, time.monotonic() + PROMPT)
        finally:
            for sock in socks:
                sock.close()


def test_a_flood_of_connections_that_send_half_a_head_keeps_the_server_within_its_cap() -> None:
    cap = 16
    with serving(max_connections=cap) as running:
        socks: list[socket.socket] = []
        try:
            for _ in range(fd_budget(120)):
                sock = connect(running)
                sock.sendall(HEAD[:20])
                socks.append(sock)
            assert running.connections() <= cap
            real_webhook(running)
            assert running.connections() <= cap
        finally:
            for sock in socks:
                sock.close()


# --- oversize requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_bytes",
    [
        HEAD + b"X-Pad: " + b"a" * 40_000,  # never ends, arrives at once
        HEAD + b"X-Pad: " + b"a" * 40_000 + b"\r\n\r\n",  # complete, but too long
        HEAD + b"".join(b"X-%d: v\r\n" % i for i in range(3000)) + b"\r\n",  # many headers
        b"POST /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n",  # a long target
    ],
    ids=["endless", "complete", "many-headers", "long-target"],
)
def test_an_oversize_head_is_refused_431_before_its_end(request_bytes: bytes) -> None:
    with serving() as running:
        sock = connect(running)
        try:
            sock.setblocking(True)
            with suppress(ConnectionError):
                sock.sendall(request_bytes)
            sock.setblocking(False)
            began = time.monotonic()
            received = wait_closed(sock, began + PROMPT)
            assert status_of(received) in (431, None)  # None: a reset may discard the answer
            assert time.monotonic() - began < TIMEOUT / 2  # at once, not at the deadline
            real_webhook(running)
        finally:
            sock.close()


def test_an_oversize_head_is_answered_431_when_sent_in_pieces() -> None:
    with serving(max_head=4096) as running:
        sock = connect(running)
        try:
            for _ in range(5):
                send_quietly(sock, HEAD + b"X-Pad: " + b"a" * 1000)
                time.sleep(0.01)
            received = wait_closed(sock, time.monotonic() + PROMPT)
            assert status_of(received) == 431
            assert json.loads(received.partition(b"\r\n\r\n")[2]) == {"error": "head_too_large"}
        finally:
            sock.close()


def test_an_oversize_body_is_refused_413_from_its_head() -> None:
    """The Content-Length decides: 413 comes before any body byte is sent or read."""
    with serving() as running:
        for length in (64 * 1024 + 1, 10**9, 10**19):
            sock = connect(running)
            try:
                send_quietly(sock, HEAD + b"Content-Length: %d\r\n\r\n" % length)
                received = wait_closed(sock, time.monotonic() + PROMPT)
                assert status_of(received) == 413
                assert json.loads(received.partition(b"\r\n\r\n")[2]) == {"error": "body_too_large"}
            finally:
                sock.close()
        real_webhook(running)


def test_an_oversize_body_sent_anyway_is_not_read() -> None:
    with serving(max_body=1024) as running:
        sock = connect(running)
        try:
            sock.setblocking(True)
            with suppress(ConnectionError):
                sock.sendall(HEAD + b"Content-Length: 4000000\r\n\r\n" + b"x" * 4_000_000)
            sock.setblocking(False)
            began = time.monotonic()
            wait_closed(sock, began + PROMPT)
            real_webhook(running)
        finally:
            sock.close()


def test_a_body_at_the_limit_is_read() -> None:
    raw = started_body("at-limit")
    with serving(max_body=len(raw)) as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
            sock.sendall(signed_request(raw))
            assert read_response(sock, time.monotonic() + PROMPT)[0] == 200
        with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
            sock.sendall(signed_request(raw + b" "))
            assert read_response(sock, time.monotonic() + PROMPT)[0] == 413


# --- malformed requests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST /webhook HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
        (b"POST /webhook HTTP/1.1\r\n\r\n", 400),  # no Host
        (b"\x00\x01\x02\xff\r\n\r\n", 400),
        (b"POST /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400),  # non-ASCII target
        (b"POST / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1%s\r\n\r\n" % (b"0" * 30), 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 411),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ],
    ids=[
        "garbage",
        "bad-request-line",
        "no-host",
        "binary",
        "non-ascii-target",
        "bad-header-name",
        "bad-content-length",
        "negative-content-length",
        "31-digit-content-length",
        "conflicting-content-length",
        "chunked",
        "unknown-transfer-encoding",
    ],
)
def test_a_malformed_request_is_refused_and_closed(request_bytes: bytes, status: int) -> None:
    with serving() as running:
        sock = connect(running)
        try:
            send_quietly(sock, request_bytes)
            began = time.monotonic()
            received = wait_closed(sock, began + PROMPT)
            assert status_of(received) == status
            assert b"connection: close" in received.lower()
            real_webhook(running)
            assert not running.actions[:-1]  # the malformed request did nothing
        finally:
            sock.close()


@pytest.mark.parametrize(
    ("request_bytes", "status", "error"),
    [
        # Non-UTF-8 in a header value (obs-text, allowed by HTTP): unsigned, so refused.
        (HEAD + b"X-Name: \xff\xfe\r\nContent-Length: 2\r\n\r\n{}", 401, "missing_signature"),
        (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 405, None),
        (b"GET / HTTP/1.0\r\n\r\n", 405, "method_not_allowed"),
    ],
    ids=["non-utf8-header", "head", "http-1.0"],
)
def test_odd_but_wellformed_requests_get_an_answer(
    request_bytes: bytes, status: int, error: str | None
) -> None:
    with serving() as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
            sock.sendall(request_bytes)
            got, headers, body = read_response(
                sock, time.monotonic() + PROMPT, head_only=error is None
            )
            assert got == status
            if error is None:  # the answer to HEAD: headers alone
                assert body == b"" and int(headers["content-length"]) > 0
            else:
                assert json.loads(body) == {"error": error}
        real_webhook(running)


def test_a_signed_non_utf8_body_is_a_400() -> None:
    with serving() as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
            sock.sendall(signed_request(b'{"event":"\xff\xfe"}'))
            status, _, body = read_response(sock, time.monotonic() + PROMPT)
        assert (status, json.loads(body)) == (400, {"error": "malformed_body"})
        assert running.actions == []


def test_a_lone_surrogate_in_a_signed_webhook_is_a_400_not_a_silent_200() -> None:
    """Item 14: the id cannot be signed or written; it is refused at the boundary."""
    with serving() as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
            raw = started_body("s\ud800")
            assert b'"s\\ud800"' in raw  # the JSON escape, as it would travel
            sock.sendall(signed_request(raw))
            status, _, body = read_response(sock, time.monotonic() + PROMPT)
        assert (status, json.loads(body)) == (400, {"error": "malformed_body"})
        assert running.actions == []
        real_webhook(running)


def test_pipelined_requests_are_answered_in_order() -> None:
    with serving() as running:
        data = b"".join(signed_request(started_body(f"pipe-{i}"), close=False) for i in range(5))
        with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
            sock.sendall(data + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            deadline = time.monotonic() + PROMPT
            reader = Responses(sock)
            statuses = [reader.next(deadline)[0] for _ in range(6)]
        assert statuses == [200] * 5 + [405]
        _wait(lambda: len(running.actions) == 5, time.monotonic() + PROMPT)
        assert [a.rtms_stream_id for a in running.actions] == [f"pipe-{i}" for i in range(5)]


def test_one_connection_is_answered_max_requests_times_then_closed() -> None:
    with serving(max_requests=10) as running:
        data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 50
        with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
            sock.sendall(data)
            deadline = time.monotonic() + PROMPT
            reader = Responses(sock)
            answers = [reader.next(deadline) for _ in range(10)]
            sock.setblocking(False)
            assert reader.buffer + wait_closed(sock, deadline) == b""  # and nothing more
        assert [status for status, _, _ in answers] == [405] * 10
        assert [h.get("connection") for _, h, _ in answers] == [None] * 9 + ["close"]
        real_webhook(running)


def test_expect_100_continue_is_honoured() -> None:
    raw = started_body("continued")
    request = signed_request(raw)
    head, _, body = request.partition(b"\r\n\r\n")
    with serving() as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
            sock.sendall(head + b"\r\nExpect: 100-continue\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 100 ")
            sock.sendall(body)
            assert read_response(sock, time.monotonic() + PROMPT)[0] == 200
        _wait(lambda: len(running.actions) == 1, time.monotonic() + PROMPT)
        assert [a.rtms_stream_id for a in running.actions] == ["continued"]


def test_a_client_that_never_reads_is_not_read_either() -> None:
    """Pipelined requests from a client that reads none of the answers, with no
    per-connection request cap to save the server: once the replies back up it
    stops reading (the client's sends block), answers real webhooks meanwhile,
    and drops the connection one deadline later."""
    one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 200
    with serving(max_requests=10**9) as running:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", running.port))
        sock.setblocking(False)
        try:
            began = time.monotonic()
            blocked_since: float | None = None
            longest = 0.0  # the longest time the client's sends stayed blocked
            while (now := time.monotonic()) - began < TIMEOUT / 2:
                try:
                    sock.send(one)
                    blocked_since = None
                except BlockingIOError:
                    blocked_since = blocked_since or now
                    longest = max(longest, now - blocked_since)
                    time.sleep(0.01)
            # (Not the last stretch: the kernel may grow the server's send buffer, and
            # the server then reads the few requests whose answers now fit.)
            assert longest > 0.1, "the server kept reading"
            real_webhook(running)
            # At most max_requests answers, then its last deadline: dropped.
            _wait(lambda: running.connections() == 0, began + TIMEOUT / 2 + TIMEOUT + SLACK)
        finally:
            sock.close()


# --- the action after the answer -----------------------------------------------------------------


def test_an_action_that_fails_after_the_200_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Item 14: never answer 200 for a stream that will not be recorded without saying why."""
    with serving() as running:
        running.fail_actions = True
        with caplog.at_level(logging.ERROR, logger="rtms_app.webhook"):
            with socket.create_connection(("127.0.0.1", running.port), timeout=PROMPT) as sock:
                sock.sendall(signed_request(started_body("doomed")))
                assert read_response(sock, time.monotonic() + PROMPT)[0] == 200
            _wait(lambda: bool(caplog.records), time.monotonic() + PROMPT)
        (record,) = caplog.records
        assert "'doomed' will not be recorded" in record.getMessage()
        assert "No space left on device" in record.getMessage()
        assert SECRET not in record.getMessage()
        running.fail_actions = False
        real_webhook(running)  # and the server goes on


@pytest.mark.parametrize(
    "bounds",
    [
        {"request_timeout": 0},
        {"request_timeout": float("nan")},
        {"max_connections": 0},
        {"max_head": -1},
        {"max_body": 1.5},
        {"max_body": True},
        {"max_requests": 0},
    ],
)
def test_bounds_must_be_positive(bounds: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WebhookServer(WebhookReceiver(SECRET), lambda _: None, clock=time.time, **bounds)


def test_the_defaults() -> None:
    server = WebhookServer(WebhookReceiver(SECRET), lambda _: None, clock=time.time)
    assert (server.request_timeout, server.max_connections) == (10.0, 256)
    assert (server.max_head, server.max_body) == (16 * 1024, 64 * 1024)
    assert server.max_requests == 100
