"""``rtms_transports.blocking.Pool``: many streams on one I/O thread, against the fake
server: iterated streams and handler streams side by side, nothing lost, commands
from a handler and from other threads, timers of many sessions on one heap,
failures that stay in their stream, and closing the pool."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_transport_helpers import (
    ALLOWED,
    CLIENT_ID,
    CLIENT_SECRET,
    WAIT,
    add_stream,
    closed_port,
    driver_threads,
    fake_server,
    of,
    options,
    silent_listener,
    wait_until,
    webhook_body,
    write_ca,
)

from rtms_conformance.faults import Silence
from rtms_conformance.harness import MemoryAdapter, StreamEnv, ThreadedHarness
from rtms_conformance.runner import Runner
from rtms_conformance.scenarios import SCENARIOS
from rtms_proto import ConnectionClosed, MediaType, Session
from rtms_proto import events as ev
from rtms_proto.actions import SocketRole
from rtms_transports import (
    CA_ENV,
    CLIENT_ENV,
    SECRET_ENV,
    ConnectError,
    ConnectTimeout,
    session_config,
)
from rtms_transports.blocking import Pool
from rtms_transports.conformance import transport_options

KW: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "allowed_hosts": ALLOWED,
}


class Collect:
    """A handler that keeps the events, and says when the session ended."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.times: list[float] = []  # time.monotonic() at each event
        self.thread: set[str] = set()
        self.done = threading.Event()

    def __call__(self, event: ev.Event) -> None:
        self.events.append(event)
        self.times.append(time.monotonic())
        self.thread.add(threading.current_thread().name)
        if isinstance(event, ev.SessionEnded):
            self.done.set()


def test_iterated_and_handler_streams_share_one_thread_nothing_lost(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server, Pool(name="rtms-pool-test") as pool:
        infos = [add_stream(server, f"pool-{n}", duration=1.5) for n in range(6)]
        handlers = [Collect() for _ in infos[3:]]
        iterated: dict[int, list[ev.Event]] = {}
        threads_seen: list[list[str]] = []

        def iterate(n: int) -> None:
            body = server.rtms_started_body(infos[n])
            with pool.connect(body, options=options(ca), **KW) as stream:
                threads_seen.append(driver_threads())
                iterated[n] = list(stream)

        readers = [threading.Thread(target=iterate, args=(n,)) for n in range(3)]
        for reader in readers:
            reader.start()
        handles = [
            pool.start(server.rtms_started_body(info), handler, options=options(ca), **KW)
            for info, handler in zip(infos[3:], handlers, strict=True)
        ]
        ends = [handle.wait(WAIT) for handle in handles]
        for reader in readers:
            reader.join(WAIT)
        statuses = [server.status(info) for info in infos]
    assert all(threads == ["rtms-pool-test"] for threads in threads_seen)
    assert len(threads_seen) == 3
    assert all(h.thread == {"rtms-pool-test"} for h in handlers)
    assert all(end.why is ev.EndReason.STREAM_TERMINATED for end in ends)
    streams = [iterated[n] for n in range(3)] + [h.events for h in handlers]
    for events, status in zip(streams, statuses, strict=True):
        assert isinstance(events[-1], ev.SessionEnded)
        assert events[-1].why is ev.EndReason.STREAM_TERMINATED
        audio = of(events, ev.AudioReceived)
        assert len(audio) == status.sent[14] >= 45
        stamps = [a.timestamp for a in audio]
        assert stamps == list(range(stamps[0], stamps[-1] + 1, 20))
        assert not of(events, ev.ConnectionFailed)
    assert [h.events[-1] for h in handlers] == ends
    assert driver_threads() == []  # the pool's thread ended with the block


def test_handler_commands_and_commands_from_other_threads(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server, Pool() as pool:
        info = add_stream(server, "pool-commands", duration=None)
        other = add_stream(server, "pool-commands-other", duration=None)
        got: list[ev.Event] = []
        handles: dict[str, Any] = {}
        done = threading.Event()

        def handler(event: ev.Event) -> None:
            got.append(event)
            if isinstance(event, ev.StreamStateReported) and "asked" not in handles:
                handles["asked"] = True
                handles["other"].stop()  # a handler commands another stream of the pool
                handles["me"].close_stream()  # ... and its own
            if isinstance(event, ev.SessionEnded):
                done.set()

        handles["other"] = pool.start(
            server.rtms_started_body(other), Collect(), options=options(ca), **KW
        )
        handles["me"] = me = pool.start(
            server.rtms_started_body(info), handler, options=options(ca), **KW
        )
        assert wait_until(lambda: any(isinstance(e, ev.AudioReceived) for e in got), WAIT)
        me.request_stream_state()  # from this thread
        assert done.wait(WAIT)
        ended = me.wait(WAIT)
        other_end = handles["other"].wait(WAIT)
        with pytest.raises(ConnectionClosed):
            me.stop()
    assert ended.why is ev.EndReason.CLOSED_BY_APP and me.ended is ended and me.finished
    assert other_end.why is ev.EndReason.STOPPED_LOCALLY


def test_a_failing_stream_does_not_disturb_the_others(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server, silent_listener() as silent, Pool() as pool:
        info = add_stream(server, "pool-survivor", duration=1.0)
        survivor = Collect()
        handle = pool.start(server.rtms_started_body(info), survivor, options=options(ca), **KW)
        refused = webhook_body(f"wss://127.0.0.1:{closed_port()}/signaling")
        with (
            pytest.raises(ConnectError, match=r"cannot connect to 127\.0\.0\.1"),
            pool.connect(refused, options=options(ca), **KW),
        ):
            pass
        started = time.monotonic()
        body = webhook_body(f"wss://127.0.0.1:{silent}/signaling")
        with (
            pytest.raises(ConnectTimeout, match=r"timed out after 0\.5 s"),
            pool.connect(body, options=options(ca, connect_timeout=0.5), **KW),
        ):
            pass
        waited = time.monotonic() - started
        ended = handle.wait(WAIT)
    assert 0.4 < waited < 5  # the pool's timer heap fired the connect timeout on time
    assert ended.why is ev.EndReason.STREAM_TERMINATED
    assert of(survivor.events, ev.AudioReceived)


def test_keepalive_timeouts_of_many_sessions_fire_on_one_heap(tmp_path: Path) -> None:
    """Every message received moves a session's keep-alive deadline later (lazily, on
    the pool's heap); when each audio socket goes silent, its own timeout still fires
    on time, in every session of the pool."""
    ca = write_ca(tmp_path)
    silent = Silence(at=0.6, role=SocketRole.AUDIO)
    with fake_server() as server, Pool() as pool:
        infos = [
            add_stream(server, f"pool-timer-{n}", duration=None, faults=(silent,)) for n in range(4)
        ]
        handlers = [Collect() for _ in infos]
        handles = []
        for info, handler in zip(infos, handlers, strict=True):
            config = session_config(server.rtms_started_body(info), media=MediaType.AUDIO, **KW)
            quick = dataclasses.replace(config.media_options, keepalive_timeout=1.0)
            config = dataclasses.replace(config, media_options=quick)
            handles.append(
                pool.start_session(
                    Session(config, jitter=random.random), handler, options=options(ca)
                )
            )
        for handler in handlers:

            def failed(h: Collect = handler) -> bool:
                return any(
                    "nothing received for 1 s" in str(e.error)
                    for e in of(h.events, ev.ConnectionFailed)
                )

            assert wait_until(failed, WAIT)
        for handle in handles:
            handle.abort()
    for handler in handlers:
        pairs = list(zip(handler.times, handler.events, strict=True))
        fired = next(
            t
            for t, e in pairs
            if isinstance(e, ev.ConnectionFailed) and "nothing received" in str(e.error)
        )
        audio = [t for t, e in pairs if isinstance(e, ev.AudioReceived) and t < fired]
        assert len(audio) >= 10  # the deadline moved later with each of them
        assert 0.9 <= fired - audio[-1] <= 2.5  # 1 s after the last one, not at the first


def test_closing_the_pool_aborts_what_runs_and_refuses_more(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "pool-close", duration=None)
        pool = Pool()
        flowing = Collect()
        handle = pool.start(server.rtms_started_body(info), flowing, options=options(ca), **KW)
        assert wait_until(lambda: bool(of(flowing.events, ev.AudioReceived)), WAIT)
        pool.close()
        assert handle.finished and driver_threads() == []
        with pytest.raises(ConnectionClosed, match="aborted before it ended"):
            handle.wait(0)
        with pytest.raises(ConnectionClosed, match="pool is closed"):
            pool.start(server.rtms_started_body(info), Collect(), options=options(ca), **KW)
        with (
            pytest.raises(ConnectionClosed, match="pool is closed"),
            pool.connect(server.rtms_started_body(info), options=options(ca), **KW),
        ):
            pass

        def gone() -> bool:
            status = server.status(info)
            return not status.signaling_connected and not status.media_connected

        assert wait_until(gone)  # the server saw every socket go


def test_wait_times_out_and_start_session_drives_a_session_you_built(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server, Pool() as pool:
        info = add_stream(server, "pool-session", duration=None)
        config = session_config(server.rtms_started_body(info), **KW)
        got = Collect()
        handle = pool.start_session(Session(config, jitter=random.random), got, options=options(ca))
        with pytest.raises(TimeoutError, match="not ended yet"):
            handle.wait(0.2)
        assert wait_until(lambda: bool(of(got.events, ev.AudioReceived)), WAIT)
        assert handle.rtms_stream_id == "pool-session"
        handle.abort()
        with pytest.raises(ConnectionClosed, match="aborted before it ended"):
            handle.wait(WAIT)


README = pathlib.Path(__file__).resolve().parent.parent / "README.md"

POOL_EXAMPLE = """\
from rtms_proto import events
from rtms_transports.blocking import Pool

def audio_seconds(webhook_bodies: list[bytes], allowed_hosts=("zoom.us",)) -> list[float]:
    totals = [0] * len(webhook_bodies)

    def counter(index: int):
        def on_event(event: events.Event) -> None:  # on the pool's thread: keep it quick
            if isinstance(event, events.AudioReceived):
                totals[index] += len(event.data)
        return on_event

    with Pool() as pool:  # one I/O thread for every stream
        meetings = [
            pool.start(body, counter(index), allowed_hosts=allowed_hosts)
            for index, body in enumerate(webhook_bodies)
        ]
        for meeting in meetings:
            meeting.wait()  # returns the stream's SessionEnded
    return [total / 32000 for total in totals]  # 16 kHz mono 16-bit PCM: 32,000 bytes/s
"""


def test_the_readme_pool_example_is_there_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = README.read_text()
    heading = "## Run a stream with asyncio, trio or blocking sockets\n"
    assert heading in text
    body = text[text.index(heading) :]
    body = body[: body.find("\n## ", 1)]
    assert f"```python\n{POOL_EXAMPLE}```" in body
    monkeypatch.setenv(CLIENT_ENV, CLIENT_ID)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setenv(CA_ENV, write_ca(tmp_path))
    found: dict[str, Any] = {}
    exec(compile(POOL_EXAMPLE, "README.md", "exec"), found)
    with fake_server() as server:
        infos = [add_stream(server, f"readme-pool-{n}", duration=1.0) for n in range(3)]
        bodies = [server.rtms_started_body(info) for info in infos]
        seconds = found["audio_seconds"](bodies, allowed_hosts=ALLOWED)
        sent = [server.status(info).sent[14] for info in infos]
    assert seconds == [count * 640 / 32000 for count in sent]
    assert all(count >= 45 for count in sent)


def test_a_command_right_after_start_waits_for_the_pool_to_take_the_stream(
    tmp_path: Path,
) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server, Pool() as pool:
        info = add_stream(server, "pool-early-command", duration=None)
        got = Collect()
        handle = pool.start(server.rtms_started_body(info), got, options=options(ca), **KW)
        handle.stop()  # queued if the pool's thread has not taken the stream yet
        ended = handle.wait(WAIT)
    assert ended.why is ev.EndReason.STOPPED_LOCALLY
    assert got.events[-1] is ended


class PoolAdapter(ThreadedHarness):
    """The conformance adapter of ``blocking.connect``, with every stream of every
    scenario on one shared pool (``pool.connect`` and ``receive(timeout)``)."""

    name = "blocking-pool"

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    def run_stream(self, stream: StreamEnv) -> None:
        with self.pool.connect(
            stream.config, options=transport_options(stream), jitter=stream.jitter
        ) as events:
            while True:
                try:
                    event = events.receive(timeout=stream.remaining())
                except TimeoutError:
                    raise stream.expire() from None
                except ConnectionClosed:
                    return
                pause = stream.react(event, events)
                if pause:
                    time.sleep(pause)


def test_the_conformance_catalogue_with_every_stream_on_one_pool() -> None:
    """Every scenario (reconnects, failovers, backpressure, hostile servers ...) gives
    the in-memory reference's trace with all its streams on one shared pool."""
    parallel = int(os.environ.get("RTMS_CONFORMANCE_PARALLEL", "2"))
    with Runner(parallel=parallel) as runner, Pool(name="rtms-pool-conformance") as pool:
        memory = {r.scenario: r for r in runner.run(MemoryAdapter()).results}
        results = runner.run(PoolAdapter(pool)).results
    assert len(results) == len(SCENARIOS)
    failed = {
        r.scenario: r.diff() for r in results if not r.ok or r.traces != memory[r.scenario].traces
    }
    assert not failed


def test_waiting_for_the_pool_from_a_handler_is_refused_not_a_hang(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server, Pool() as pool:
        info = add_stream(server, "pool-handler-waits", duration=None)
        body = server.rtms_started_body(info)
        refused: list[str] = []
        handles: list[Any] = []
        done = threading.Event()

        def handler(event: ev.Event) -> None:
            if isinstance(event, ev.MediaConnected) and not refused:
                for attempt in (lambda: handles[0].wait(1), lambda: pool.connect(body).__enter__()):
                    try:
                        attempt()
                    except RuntimeError as exc:
                        refused.append(str(exc))
                handles[0].stop()
            if isinstance(event, ev.SessionEnded):
                done.set()

        handles.append(pool.start(body, handler, options=options(ca), **KW))
        assert done.wait(WAIT)
    assert refused == [
        "PoolSession.wait() waits for an I/O thread: not from a pool's handler",
        "Pool.connect() waits for an I/O thread: not from a pool's handler",
    ]
