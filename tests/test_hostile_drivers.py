"""The three drivers against issue 10's hostile servers (``tests/hostile.py``): the
bounds the drivers own.  A peer that stops reading cannot hold the process
(defect 2: ``close_timeout`` bounds every flush), nor make it buffer answers
without limit (defect 4: write backpressure), and a slow application cannot
make the event queue hold more than ``max_queue_bytes`` (defect 6).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hostile import (
    DRIVERS,
    HOST,
    TEXT,
    Driver,
    Flood,
    HostileServer,
    MemoryProbe,
    Peer,
    audio_msg,
    client_config,
    drive,
    flood_unread,
    frame,
    keep_alive_msg,
    no_leaks,
    routes,
    serve_media,
    stop_reading_after_handshake,
)

import rtms_transports.asyncio as rt_asyncio
import rtms_transports.blocking as rt_blocking
import rtms_transports.trio as rt_trio
from rtms_app.recording import StreamJob
from rtms_app.sinks import Recorder
from rtms_proto import ConnectionClosed, ConnectionOptions, Session, SessionConfig, SocketRole
from rtms_proto import events as ev
from rtms_transports import TransportOptions
from rtms_transports._queue import EVENT_COST

SLACK = 1.0
"""Scheduling allowance on a loaded 2-core machine (seconds)."""

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Every test: no descriptor and no server thread outlives it."""
    with no_leaks():
        yield


def unread_flood(max_bytes: int = 512 * KiB, seconds: float = 3.0) -> Any:
    """Defect 2's server, with its kernel buffers made to fill: the handshake, then
    it never reads again and floods pings (each wants a pong) as fast as the client
    reads them; with a 4 KiB receive buffer the client's answers soon pile up."""
    return flood_unread(Flood.PING, max_bytes=max_bytes, seconds=seconds)


def flooded(server: HostileServer, at_least: int) -> Callable[[], bool]:
    return lambda: any(p.bytes_out >= at_least for p in server.peers_on("/signaling"))


# --------------------------------------------------------------------------- defect 2


@pytest.mark.parametrize("driver", DRIVERS)
def test_leaving_connect_is_bounded_by_close_timeout_when_the_server_stops_reading(
    driver: Driver,
) -> None:
    """``stream.stop()`` while the server reads nothing and the client's answers fill the
    kernel buffers: the close frame can never be flushed, and ``connect()`` still
    returns within the session's close wait plus ``close_timeout``."""
    options = TransportOptions(connect_timeout=2.0, close_timeout=1.0)
    with HostileServer(routes(signaling=unread_flood()), rcvbuf=4096) as server:
        config = client_config(server)
        run = drive(driver, config, when=flooded(server, 128 * KiB), options=options)
    assert run.of(ev.SignalingConnected)
    assert run.ended is not None and run.ended.why is ev.EndReason.STOPPED_LOCALLY
    bound = config.signaling_options.close_timeout + options.close_timeout + SLACK
    assert run.exit_seconds is not None and run.exit_seconds < bound, run.exit_seconds


def run_low_level(
    driver: Driver,
    config: SessionConfig,
    options: TransportOptions,
    stop_when: Callable[[], bool],
    *,
    abort_after_end: bool = False,
) -> tuple[ev.SessionEnded | None, float]:
    """Run ``config`` with ``driver``'s ``SessionRunner``; once ``stop_when()`` holds (looked
    at on each event and every 20 ms) stop the session; with ``abort_after_end``, call
    ``abort()`` as soon as the session ended (a second Ctrl-C).  Returns the end and the
    seconds from the stop to ``run()`` returning."""
    marks: dict[str, float] = {}
    session = Session(config, jitter=lambda: 0.0)
    runners: dict[str, Any] = {}

    def handler(event: ev.Event) -> None:
        if isinstance(event, ev.SessionEnded) and abort_after_end:
            runners["r"].abort()

    def poll() -> bool:
        """True once stopped."""
        if "stop" not in marks and stop_when():
            marks["stop"] = time.monotonic()
            runners["r"].command(lambda s, now: s.stop(now=now))
        return "stop" in marks

    ended: ev.SessionEnded | None = None
    if driver == "asyncio":

        async def amain() -> ev.SessionEnded:
            runner = runners["r"] = rt_asyncio.SessionRunner(session, handler, options=options)
            task = asyncio.create_task(runner.run())
            while not task.done():
                if not poll():
                    await asyncio.sleep(0.02)
                else:
                    await asyncio.wait({task}, timeout=0.02)
            return task.result()

        async def bounded() -> ev.SessionEnded:
            async with asyncio.timeout(20):
                return await amain()

        ended = asyncio.run(bounded())
    elif driver == "trio":

        async def tmain() -> ev.SessionEnded:
            runner = runners["r"] = rt_trio.SessionRunner(session, handler, options=options)
            out: dict[str, ev.SessionEnded] = {}

            async def run() -> None:
                out["end"] = await runner.run()

            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(run)
                    while "end" not in out:
                        poll()
                        await trio.sleep(0.02)
            return out["end"]

        ended = trio.run(tmain)
    else:
        runner = runners["r"] = rt_blocking.SessionRunner(session, handler, options=options)
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["end"] = runner.run()
            except BaseException as exc:
                result["error"] = exc

        thread = threading.Thread(target=work)
        thread.start()
        deadline = time.monotonic() + 20
        while thread.is_alive() and time.monotonic() < deadline:
            poll()
            thread.join(0.02)
        runner.abort()
        thread.join()
        if "error" in result:
            raise result["error"]
        ended = result["end"]
    return ended, time.monotonic() - marks["stop"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_session_runner_ends_within_close_timeout_when_the_server_stops_reading(
    driver: Driver,
) -> None:
    """The low-level runner waits for its sockets to close after the session ended;
    a peer that never reads made it wait forever (asyncio, trio): each socket's
    flush is now bounded by ``close_timeout``, after which it is aborted."""
    options = TransportOptions(connect_timeout=2.0, close_timeout=1.0)
    with HostileServer(routes(signaling=unread_flood()), rcvbuf=4096) as server:
        config = client_config(server)
        ended, took = run_low_level(driver, config, options, flooded(server, 128 * KiB))
    assert ended is not None and ended.why is ev.EndReason.STOPPED_LOCALLY
    assert took < config.signaling_options.close_timeout + options.close_timeout + SLACK, took


@pytest.mark.parametrize("driver", DRIVERS)
def test_abort_ends_a_session_runner_at_once_while_its_sockets_flush(driver: Driver) -> None:
    """A second Ctrl-C is the runner's ``abort()``: called once the session ended, with
    the signaling socket still trying to flush to a peer that does not read, ``run()``
    returns at once rather than after ``close_timeout``."""
    options = TransportOptions(connect_timeout=2.0, close_timeout=30.0)
    with HostileServer(routes(signaling=unread_flood()), rcvbuf=4096) as server:
        config = client_config(server)
        ended, took = run_low_level(
            driver, config, options, flooded(server, 128 * KiB), abort_after_end=True
        )
    assert ended is not None and ended.why is ev.EndReason.STOPPED_LOCALLY
    assert took < config.signaling_options.close_timeout + SLACK, took


@pytest.mark.parametrize("driver", ["asyncio", "trio"])
def test_abort_before_the_end_makes_run_raise_connection_closed(driver: Driver) -> None:
    """``abort()`` while the session runs: every socket closes now and ``run()`` says the
    session did not end (as the blocking runner always did)."""
    options = TransportOptions(connect_timeout=2.0, close_timeout=30.0)
    signaling = stop_reading_after_handshake(keep_alive_every=0.01)
    with HostileServer(routes(signaling=signaling)) as server:
        session = Session(client_config(server), jitter=lambda: 0.0)

        def handler(event: ev.Event) -> None:
            if isinstance(event, ev.SignalingConnected):
                runner.abort()

        started = time.monotonic()
        with pytest.raises(ConnectionClosed, match="stopped before the session ended"):
            if driver == "asyncio":
                runner: Any = rt_asyncio.SessionRunner(session, handler, options=options)
                asyncio.run(runner.run())
            else:
                runner = rt_trio.SessionRunner(session, handler, options=options)
                trio.run(runner.run)
        assert time.monotonic() - started < SLACK
        assert not session.ended


# --------------------------------------------------------------------------- defect 4


def keep_alive_flood(max_bytes: int = 8 * MiB, seconds: float = 8.0) -> Any:
    """:func:`flood_unread`'s keep-alive flood, with the requests written 512 at a time:
    one ``send`` per 50-byte request is too slow to fill the kernel buffers in a CI run."""

    def script(peer: Peer) -> None:
        peer.accept()
        peer.signaling_handshake()
        end = time.monotonic() + seconds
        n = 0
        while peer.bytes_out < max_bytes and time.monotonic() < end:
            batch = []
            for _ in range(512):
                n += 1
                batch.append(frame(TEXT, json.dumps(keep_alive_msg(n, n)).encode()))
            peer.send(b"".join(batch))
            peer.sent["keepalive"] += 512
        peer.silence()

    return script


PATIENT = ConnectionOptions(
    handshake_timeout=2.0, keepalive_timeout=60.0, close_timeout=0.5, allowed_hosts=(HOST,)
)
"""Sockets that do not die of silence while the flood fills the kernel buffers."""


@pytest.mark.parametrize(
    ("driver", "kind"),
    [(driver, Flood.PING) for driver in DRIVERS] + [("trio", Flood.KEEPALIVE)],
    ids=[f"{driver}-ping" for driver in DRIVERS] + ["trio-keepalive"],
)
def test_a_peer_that_floods_without_reading_cannot_make_answers_pile_up(
    driver: Driver, kind: Flood, caplog: pytest.LogCaptureFixture
) -> None:
    """Pings or keep-alive requests as fast as the client reads, and never a read: the
    client stops reading once ``max_write_buffer`` answers wait, so memory stays under
    that bound plus one read's answers (and a margin for the interpreter), and the
    socket fails, named as such, ``close_timeout`` after it went over.  Every answer
    goes through the loop's one write path, whatever it answers; keep-alive
    requests (small, JSON-decoded) fill the kernel buffers within a CI run's time
    only on trio, so that flood runs there, the ping flood on every driver."""
    options = TransportOptions(
        connect_timeout=2.0, close_timeout=1.0, max_write_buffer=64 * KiB, read_size=16 * KiB
    )
    failed_at: list[float] = []

    def until(event: ev.Event) -> bool:
        if isinstance(event, ev.ConnectionFailed):
            failed_at.append(time.time())
            return True
        return False

    if kind is Flood.PING:
        signaling = flood_unread(kind, max_bytes=16 * MiB, seconds=15.0)
    else:
        signaling = keep_alive_flood(max_bytes=16 * MiB, seconds=15.0)
    caplog.set_level(logging.WARNING, logger="rtms_transports")
    server = HostileServer(routes(signaling=signaling), rcvbuf=4096, io_timeout=20.0)
    with server, MemoryProbe() as probe:
        run = drive(
            driver,
            client_config(server, options=PATIENT),
            until=until,
            options=options,
            timeout=25,
        )
    failed = run.of(ev.ConnectionFailed)[0]
    assert failed.sock.role is SocketRole.SIGNALING
    assert "stopped reading" in failed.error.detail and "max_write_buffer" in failed.error.detail
    assert probe.peak < options.max_write_buffer + 2 * options.read_size + 1 * MiB, probe.peak
    paused = [r.created for r in caplog.records if "is not reading" in r.getMessage()]
    took = failed_at[0] - paused[0]
    assert options.close_timeout - 0.05 <= took < options.close_timeout + SLACK, took


# --------------------------------------------------------------------------- defect 6

FRAME = 256 * KiB
FRAMES = 40


def big_audio(peer: Peer) -> None:
    """After the media handshake: ``FRAMES`` audio messages of ``FRAME`` bytes each, as
    fast as the client reads them, then keep reading."""
    for n in range(FRAMES):
        peer.send_json(audio_msg(bytes(FRAME), timestamp=20 * n))
        peer.sent["audio"] += 1
    peer.hold()


def slow_consumer(driver: Driver, config: SessionConfig, options: TransportOptions) -> list[int]:
    """Take every audio frame, 20 ms each, through ``driver``'s ``connect()``; returns
    ``stream.queued_bytes`` as seen before each take (the queue is fullest then)."""
    seen: list[int] = []
    pause = 0.02

    def done(frames: int) -> bool:
        return frames >= FRAMES

    if driver == "asyncio":

        async def amain() -> None:
            frames = 0
            async with asyncio.timeout(30):
                async with rt_asyncio.connect(config, options=options) as s:
                    while not done(frames):
                        await asyncio.sleep(pause)
                        seen.append(s.queued_bytes)
                        frames += isinstance(await s.receive(), ev.AudioReceived)
                    s.stop()

        asyncio.run(amain())
    elif driver == "trio":

        async def tmain() -> None:
            frames = 0
            with trio.fail_after(30):
                async with rt_trio.connect(config, options=options) as s:
                    while not done(frames):
                        await trio.sleep(pause)
                        seen.append(s.queued_bytes)
                        frames += isinstance(await s.receive(), ev.AudioReceived)
                    s.stop()

        trio.run(tmain)
    else:
        frames = 0
        with rt_blocking.connect(config, options=options) as s:
            while not done(frames):
                time.sleep(pause)
                seen.append(s.queued_bytes)
                frames += isinstance(s.receive(timeout=30), ev.AudioReceived)
            s.stop()
    return seen


@pytest.mark.parametrize("driver", DRIVERS)
def test_big_media_messages_and_a_slow_application_keep_the_queue_under_its_byte_bound(
    driver: Driver,
) -> None:
    """40 audio messages of 256 KiB (10 MiB) and an application taking one per 20 ms:
    the queue holds at most ``max_queue_bytes`` plus what one read completes (one
    message here), far fewer bytes than its 1,024 events would allow."""
    options = TransportOptions(
        connect_timeout=2.0, close_timeout=1.0, max_queue_bytes=1 * MiB, read_size=64 * KiB
    )
    with HostileServer(routes(audio=serve_media(then=big_audio)), io_timeout=20.0) as server:
        seen = slow_consumer(driver, client_config(server), options)
        assert sum(p.sent["audio"] for p in server.peers_on("/audio")) == FRAMES
    message = FRAME + EVENT_COST
    assert max(seen) <= options.max_queue_bytes + message, max(seen)
    assert max(seen) >= options.max_queue_bytes - message  # the bound was reached


def test_a_second_interrupt_aborts_the_runner_even_after_the_session_ended(
    tmp_path: Path,
) -> None:
    """``rtms-proto``'s Ctrl-C: the first closes the stream in order; the second calls
    the runner's ``abort()`` whatever the session is doing, even once it has ended
    (its sockets may still be flushing to a peer that does not read)."""
    with HostileServer(routes()) as server:
        job = StreamJob(client_config(server), Recorder(tmp_path))
    commands: list[object] = []
    aborts: list[int] = []
    job.bind(commands.append, lambda: aborts.append(1))
    job.ended = ev.SessionEnded(why=ev.EndReason.STOPPED_LOCALLY, detail="stopped")
    job.request_interrupt(signal.SIGINT)
    assert not aborts and not commands  # ended: nothing to close in order
    job.request_interrupt(signal.SIGINT)
    assert aborts == [1]
    job.close()
