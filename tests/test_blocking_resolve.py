"""The blocking driver looks host names up off its I/O thread: a lookup that hangs
(a DNS server that does not answer) stalls no other stream of that thread, counts
against ``connect_timeout``, is forgotten by a stream that leaves, and does not keep
the thread from ending; lookup errors read as before; lookups waiting for a thread
are bounded; IP literals start no thread.

``socket.getaddrinfo`` is replaced by :class:`SlowNames`, a system resolver as a user
could meet it: names under ``.test`` are 127.0.0.1, some take as long as a test
wants, some fail."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_blocking_shared import next_audio
from test_proxies import NAME, LoopbackProxy, named_tls, server_named
from test_transport_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    WAIT,
    add_stream,
    closed_port,
    fake_server,
    fd_count,
    knocked_listener,
    of,
    options,
    rtms_threads,
    wait_until,
    webhook_body,
    write_ca,
)

from rtms_conformance.net import ServerThread
from rtms_conformance.server import StreamInfo
from rtms_proto import ConnectionClosed
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_transports import ConnectError, ConnectTimeout
from rtms_transports._resolver import MAX_THREADS, MAX_WAITING
from rtms_transports.blocking import Pool, PoolSession, connect

KW: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "allowed_hosts": ("test", "127.0.0.1"),  # every name under .test, NAME included
}

STALL = 1.0
"""How long a lookup stays stuck while another stream is watched."""


class SlowNames:
    """``socket.getaddrinfo`` where a name under ``.test`` is 127.0.0.1, after
    :meth:`release` for a name made :meth:`stuck` (at most :data:`WAIT` s), or an error
    for one made :meth:`failing`.  Every other call is the real function's, IP literals
    and ``AI_NUMERICHOST`` (which never looks a name up) included."""

    def __init__(self) -> None:
        self._real = socket.getaddrinfo
        self._gates: dict[str, threading.Event] = {}
        self._errors: dict[str, OSError] = {}
        self._entered: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def stuck(self, *names: str) -> None:
        for name in names:
            self._gates[name] = threading.Event()

    def release(self, *names: str) -> None:
        """Let the stuck lookups of ``names`` (of every name, by default) go on."""
        for name in names or list(self._gates):
            self._gates[name].set()

    def failing(self, name: str, error: OSError) -> None:
        self._errors[name] = error

    def entered(self, name: str) -> threading.Event:
        """Set once a lookup of ``name`` has started."""
        with self._lock:
            return self._entered.setdefault(name, threading.Event())

    def __call__(  # noqa: PLR0917 - socket.getaddrinfo's signature
        self,
        host: bytes | str | None,
        port: bytes | str | int | None,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        if not isinstance(host, str) or not host.endswith(".test") or flags & socket.AI_NUMERICHOST:
            return self._real(host, port, family, type, proto, flags)
        self.entered(host).set()
        gate = self._gates.get(host)
        if gate is not None:
            gate.wait(WAIT)
        error = self._errors.get(host)
        if error is not None:
            raise error
        return self._real("127.0.0.1", port, family, type, proto, flags)


def lookup_threads() -> list[threading.Thread]:
    """The blocking driver's lookup threads still alive."""
    return [t for t in threading.enumerate() if t.name == "rtms-resolve" and t.is_alive()]


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowNames]:
    """:class:`SlowNames` as the system's resolver, and no proxy from the environment
    (names under .test are not loopback: one would be used)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    slow = SlowNames()
    monkeypatch.setattr(socket, "getaddrinfo", slow)
    try:
        yield slow
    finally:
        slow.release()
        assert wait_until(lambda: not lookup_threads(), WAIT)


def keepalive_answers(server: ServerThread, info: StreamInfo) -> int:
    """The keep-alive answers the server received on the stream's sockets."""
    return server.call(
        lambda r: sum(isinstance(x, m.KeepAliveResponse) for x in r.server.received(info))
    )


def body_for(host: str, port: int) -> bytes:
    return webhook_body(f"wss://{host}:{port}/signaling")


def test_a_stuck_lookup_stalls_no_other_stream_of_the_io_thread(
    names: SlowNames, tmp_path: Path
) -> None:
    """While one stream's lookup hangs, another stream of the shared I/O thread keeps
    receiving media and answering keep-alives; the stuck one connects once it ends."""
    ca = write_ca(tmp_path)
    named_ca = str(named_tls().write_ca(tmp_path / "named-ca.pem"))
    names.stuck(NAME)
    often: dict[str, Any] = {  # keep-alives on busy sockets too, never enough missed
        "keepalive_interval": 0.2,
        "keepalive_while_data": True,
        "keepalive_misses": 100,
    }
    with fake_server(**often) as server, server_named(NAME) as named:
        kept_info = add_stream(server, "resolve-kept", duration=None)
        slow_info = add_stream(named, "resolve-slow", duration=None)
        slow_audio: list[ev.AudioReceived] = []
        errors: list[BaseException] = []

        def join_slow() -> None:
            try:
                body = named.rtms_started_body(slow_info)
                with connect(body, options=options(named_ca), **KW) as slow:
                    slow_audio.append(next_audio(slow))
            except BaseException as exc:
                errors.append(exc)

        with connect(server.rtms_started_body(kept_info), options=options(ca), **KW) as kept:
            next_audio(kept)
            joiner = threading.Thread(target=join_slow, name="test-join-slow")
            joiner.start()
            try:
                assert names.entered(NAME).wait(WAIT)
                (io,) = rtms_threads()
                answered = keepalive_answers(server, kept_info)
                stalled_at = time.monotonic()
                arrivals: list[float] = []  # audio of the kept stream, s into the stall
                while (left := stalled_at + STALL - time.monotonic()) > 0:
                    try:
                        event = kept.receive(timeout=left)
                    except TimeoutError:
                        break
                    if isinstance(event, ev.AudioReceived):
                        arrivals.append(time.monotonic() - stalled_at)
                answered = keepalive_answers(server, kept_info) - answered
                still_stuck = joiner.is_alive() and len(lookup_threads()) == 1
            finally:
                names.release()
                joiner.join(WAIT)
            assert rtms_threads() == [io]  # the same I/O thread for both, all along
            next_audio(kept)
    # Not only what was queued before the lookup started: media kept coming.
    assert any(at > STALL / 2 for at in arrivals), arrivals
    assert answered >= 2
    assert still_stuck  # all along, on a thread of its own
    assert not errors and len(slow_audio) == 1  # connected once its lookup ended
    assert rtms_threads() == []


@pytest.mark.parametrize("proxied", [False, True], ids=["direct", "socks5"])
def test_a_lookup_outlasting_connect_timeout_times_out_in_time(
    names: SlowNames, tmp_path: Path, proxied: bool
) -> None:
    """The usual ConnectTimeout after ``connect_timeout``, not after the lookup (with a
    ``socks5://`` proxy, the name of the server is looked up here); the I/O thread
    ends with the stream though the lookup thread is still stuck."""
    ca = write_ca(tmp_path)
    names.stuck(NAME)
    port = closed_port()
    fds = fd_count()
    with LoopbackProxy({}) as proxy:
        opts = options(ca, connect_timeout=0.5, proxy=proxy.url("socks5") if proxied else None)
        started = time.monotonic()
        with (
            pytest.raises(ConnectTimeout) as raised,
            connect(body_for(NAME, port), options=opts, **KW),
        ):
            pass
        took = time.monotonic() - started
        assert rtms_threads() == []  # ended with its only stream
        assert len(lookup_threads()) == 1  # still stuck
        assert proxy.seen == []
    assert str(raised.value) == f"connecting to {NAME}:{port} timed out after 0.5 s"
    assert 0.45 <= took < 3.0
    names.release()
    assert wait_until(lambda: not lookup_threads(), WAIT)
    assert fd_count() == fds


def test_streams_leaving_while_their_lookups_are_stuck(
    names: SlowNames, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool's stream stopped during its lookup ends at once, and the answer arriving
    later opens nothing; closing the pool during another stuck lookup stops its
    thread at once, and that lookup ending afterwards does nothing."""
    stopped_name, left_name = "stopped.test", "left.test"
    names.stuck(stopped_name, left_name)
    failures: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", failures.append)
    with knocked_listener() as (port, knocked):
        fds = fd_count()
        with Pool(name="rtms-pool-resolve") as pool:
            stopped = pool.start(body_for(stopped_name, port), lambda _: None, **KW)
            assert names.entered(stopped_name).wait(WAIT)
            stopped.stop()
            assert stopped.wait(WAIT).why is ev.EndReason.STOPPED_LOCALLY
            names.release(stopped_name)
            assert wait_until(lambda: not lookup_threads(), WAIT)  # its answer is handed over
            left = pool.start(body_for(left_name, port), lambda _: None, **KW)
            assert names.entered(left_name).wait(WAIT)  # the pool took the answer before
            assert not knocked()  # and opened no connection with it
            (pool_thread,) = (t for t in threading.enumerate() if t.name == "rtms-pool-resolve")
            assert len(lookup_threads()) == 1
        assert not pool_thread.is_alive()  # closed without waiting for the lookup
        assert len(lookup_threads()) == 1
        with pytest.raises(ConnectionClosed):
            left.wait(0)
        names.release()
        assert wait_until(lambda: not lookup_threads(), WAIT)
        assert not knocked()
        assert fd_count() == fds
    assert failures == []


def test_a_lookup_error_reads_as_before(names: SlowNames) -> None:
    port = closed_port()
    names.failing("nowhere.test", socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    with pytest.raises(ConnectError) as raised, connect(body_for("nowhere.test", port), **KW):
        pass
    assert type(raised.value) is ConnectError
    assert str(raised.value) == f"cannot connect to nowhere.test:{port}: Name or service not known"
    assert (raised.value.host, raised.value.port) == ("nowhere.test", port)


def test_lookups_waiting_beyond_the_bound_fail_at_once(names: SlowNames, tmp_path: Path) -> None:
    """With every lookup thread stuck and MAX_WAITING lookups waiting for one, one more
    name fails at once with a ConnectError that says so; the waiting ones go on when
    the threads are free, and a name already being looked up is shared, not queued."""
    ca = write_ca(tmp_path)
    port = closed_port()
    busy = [f"busy-{n}.test" for n in range(MAX_THREADS)]
    names.stuck(*busy)
    opts = options(ca, connect_timeout=WAIT)

    def start(pool: Pool, host: str) -> PoolSession:
        return pool.start(body_for(host, port), lambda _: None, options=opts, **KW)

    with Pool(name="rtms-pool-resolve") as pool:
        running = [start(pool, host) for host in busy]
        for host in busy:
            assert names.entered(host).wait(WAIT)
        waiting = [start(pool, f"waiting-{n}.test") for n in range(MAX_WAITING)]
        shared = start(pool, busy[0])  # joins the stuck lookup of that name
        started = time.monotonic()
        with (
            pytest.raises(ConnectError) as raised,
            pool.connect(body_for("one-too-many.test", port), options=opts, **KW),
        ):
            pass
        took = time.monotonic() - started
        assert len(lookup_threads()) == MAX_THREADS
        assert not any(s.finished for s in [*running, *waiting, shared])
        names.release()
        ends = [s.wait(WAIT) for s in [*running, *waiting, shared]]
    assert str(raised.value) == (
        f"cannot connect to one-too-many.test:{port}: {MAX_WAITING} host-name lookups"
        " already wait for a thread (the system's resolver is slow)"
    )
    assert took < WAIT / 2  # not after connect_timeout
    assert not names.entered("one-too-many.test").is_set()
    for end in ends:  # looked up, then refused: the error of a closed port
        assert end.detail.endswith(f".test:{port}: ECONNREFUSED"), end


def test_ip_literals_start_no_lookup_thread(names: SlowNames, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "resolve-literal", duration=0.5)
        with connect(server.rtms_started_body(info), options=options(ca), **KW) as stream:
            events = list(stream)
            assert lookup_threads() == []
    assert isinstance(events[-1], ev.SessionEnded)
    assert len(of(events, ev.MediaConnected)) == 2
    assert lookup_threads() == []
