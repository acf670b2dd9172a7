"""The blocking driver: interruption, backpressure, threads, the runner."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from test_transport_helpers import (
    ALLOWED,
    CLIENT_ID,
    CLIENT_SECRET,
    ServerProcess,
    add_stream,
    fake_server,
    fd_count,
    meeting,
    of,
    options,
    rtms_threads,
    silent_listener,
    wait_until,
    webhook_body,
    write_ca,
)

from rtms_conformance.faults import IgnoreHandshake
from rtms_proto import ConnectionClosed, MediaType, Session
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.enums import StopReason
from rtms_transports import Backpressure, session_config
from rtms_transports.blocking import SessionRunner, connect, run_session

KW: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "allowed_hosts": ALLOWED,
}


class Interrupted(Exception):
    """What a signal handler raises, like KeyboardInterrupt does."""


@contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_interrupted_during_the_tls_handshake_leaves_nothing_behind(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with silent_listener() as port:
        before = fd_count()
        started = time.monotonic()
        with (
            pytest.raises(Interrupted),
            interrupt_after(0.3),
            connect(webhook_body(f"wss://127.0.0.1:{port}/signaling"), options=options(ca), **KW),
        ):
            pytest.fail("connected to a server that never answers")
        assert time.monotonic() - started < 1.0
        assert fd_count() == before and not rtms_threads()


def test_interrupted_during_the_rtms_handshake_leaves_nothing_behind(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "blocking-ignored", faults=(IgnoreHandshake(),))
        before = fd_count()
        body = server.rtms_started_body(info)
        with (
            pytest.raises(Interrupted),
            interrupt_after(0.3),
            connect(body, options=options(ca), **KW),
        ):
            pytest.fail("the handshake was never answered")
        assert not rtms_threads()
        assert wait_until(lambda: fd_count() == before)


def test_an_exception_in_the_block_closes_everything_at_once(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "blocking-error", duration=None)
        before = fd_count()
        body = server.rtms_started_body(info)
        with pytest.raises(KeyError, match="mine"), connect(body, options=options(ca), **KW) as s:
            for event in s:
                if isinstance(event, ev.AudioReceived):
                    raise KeyError("mine")
        assert not rtms_threads()
        assert wait_until(lambda: not server.status(info).signaling_connected)
        assert wait_until(lambda: fd_count() == before)


def test_slow_consumer_keeps_answering_keepalives_and_loses_nothing(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    max_events, read_size = 8, 4096
    with fake_server(keepalive_interval=0.25, keepalive_while_data=True) as server:
        info = add_stream(server, "blocking-slow", duration=2.0)
        got: list[ev.Event] = []
        high = 0
        opts = options(ca, max_events=max_events, read_size=read_size)
        with connect(server.rtms_started_body(info), options=opts, **KW) as stream:
            slow_until = time.monotonic() + 1.2
            for event in stream:
                got.append(event)
                high = max(high, stream.queued)
                if time.monotonic() < slow_until:
                    time.sleep(0.03)
        status = server.status(info)
        answers = server.call(lambda r: r.server.received(info))
    assert isinstance(got[-1], ev.SessionEnded)
    assert status.stop_reason == StopReason.MEETING_ENDED
    assert len(of(got, ev.AudioReceived)) == status.sent[14]
    assert len(of(got, ev.TranscriptReceived)) == status.sent[17]
    assert not [e for e in of(got, ev.ConnectionFailed) if e.sock.number <= 3]
    keepalive_answers = [x for x in answers if isinstance(x, m.KeepAliveResponse)]
    assert status.sent[12] >= 12 and len(keepalive_answers) >= status.sent[12] - 3
    per_read = read_size // 900
    assert max_events <= high <= max_events - 1 + 3 * per_read + 3


def test_drop_oldest_media_when_chosen(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "blocking-drop", duration=1.2)
        opts = options(ca, max_events=10, backpressure=Backpressure.DROP_OLDEST_MEDIA)
        with connect(server.rtms_started_body(info), options=opts, **KW) as stream:
            time.sleep(0.8)
            got = list(stream)
            dropped = stream.dropped
        status = server.status(info)
    assert dropped > 0
    assert len(of(got, ev.AudioReceived)) + dropped == status.sent[14]
    assert len(of(got, ev.TranscriptReceived)) == status.sent[17]


def test_twenty_streams_on_twenty_threads_lose_nothing(tmp_path: Path) -> None:
    count = 20
    with ServerProcess(2) as servers:
        ca = servers.ca_file(tmp_path)
        streams = [(n % 2, f"blocking-{n}") for n in range(count)]
        bodies = [servers.add_stream(index, name) for index, name in streams]
        results: list[list[ev.Event]] = [[] for _ in streams]
        errors: list[BaseException] = []

        def one(body: bytes, got: list[ev.Event]) -> None:
            try:
                with connect(body, options=options(ca), **KW) as stream:
                    got.extend(stream)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=one, args=(body, got))
            for body, got in zip(bodies, results, strict=True)
        ]
        for t in threads:
            t.start()
        assert wait_until(lambda: all(len(of(got, ev.AudioReceived)) >= 10 for got in results), 20)
        for index, name in streams:
            servers.end_stream(index, name)
        for t in threads:
            t.join(20)
        sent = [servers.sent(index, name) for index, name in streams]
    assert not errors and not rtms_threads()
    for got, counts in zip(results, sent, strict=True):
        assert isinstance(got[-1], ev.SessionEnded)
        assert not of(got, ev.ConnectionFailed)
        audio = of(got, ev.AudioReceived)
        assert len(audio) == counts[14] >= 10
        stamps = [a.timestamp for a in audio]
        assert stamps == list(range(stamps[0], stamps[-1] + 1, 20))


def test_commands_from_another_thread_and_receive_timeout(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "blocking-commands", duration=None)
        with connect(server.rtms_started_body(info), options=options(ca), **KW) as stream:
            done: list[str] = []

            def elsewhere() -> None:
                stream.request_stream_state()
                done.append(threading.current_thread().name)

            helper = threading.Thread(target=elsewhere, name="helper")
            helper.start()
            helper.join(5)
            assert done == ["helper"]
            while not isinstance(stream.receive(timeout=5), ev.StreamStateReported):
                pass
            stream.close_stream()
            last = None
            while not isinstance(last, ev.SessionEnded):
                last = stream.receive(timeout=5)
            with pytest.raises(ConnectionClosed):
                stream.receive(timeout=0.1)
            with pytest.raises(ConnectionClosed):
                stream.stop()
    assert last.why is ev.EndReason.CLOSED_BY_APP and not rtms_threads()


def test_receive_timeout(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        quiet = meeting(None, participants=0, transcripts=False)
        info = add_stream(server, "blocking-timeout", duration=None, meeting=quiet)
        body = server.rtms_started_body(info)
        opts = options(ca)
        with (
            connect(body, media=MediaType.TRANSCRIPT, options=opts, **KW) as stream,
            pytest.raises(TimeoutError, match="no event in time"),
        ):
            while True:
                stream.receive(timeout=0.3)


def test_run_session_in_this_thread(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "blocking-runner", duration=None)
        config = session_config(server.rtms_started_body(info), **KW)
        got: list[ev.Event] = []
        runner: SessionRunner

        def handler(event: ev.Event) -> None:
            got.append(event)
            if isinstance(event, ev.MediaConnected) and len(of(got, ev.MediaConnected)) == 2:
                runner.command(lambda session, now: session.close_stream(now=now))

        runner = SessionRunner(Session(config, jitter=random.random), handler, options=options(ca))
        ended = runner.run()
        with pytest.raises(RuntimeError, match="runs once"):
            runner.run()
    assert ended is got[-1] and ended.why is ev.EndReason.CLOSED_BY_APP


def test_run_session_stopped_from_another_thread(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "blocking-abort", duration=None)
        config = session_config(server.rtms_started_body(info), **KW)
        session = Session(config, jitter=random.random)
        got: list[ev.Event] = []
        stopper = threading.Timer(0.5, lambda: session_stopper(runner))
        runner = SessionRunner(session, got.append, options=options(ca))
        stopper.start()
        ended = runner.run()
        stopper.join()
        assert ended.why is ev.EndReason.STOPPED_LOCALLY
        aborted = SessionRunner(
            Session(config, jitter=random.random), lambda e: None, options=options(ca)
        )
        threading.Timer(0.3, aborted.abort).start()
        with pytest.raises(ConnectionClosed, match="stopped before the session ended"):
            aborted.run()
    assert of(got, ev.AudioReceived)
    with pytest.raises(ConnectionClosed):
        runner.command(lambda s, now: s.stop(now=now))


def session_stopper(runner: SessionRunner) -> None:
    runner.command(lambda session, now: session.stop(now=now))


def test_run_session_convenience(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "blocking-convenience", duration=0.5)
        config = session_config(server.rtms_started_body(info), **KW)
        got: list[ev.Event] = []
        ended = run_session(Session(config, jitter=random.random), got.append, options=options(ca))
    assert ended.why is ev.EndReason.STREAM_TERMINATED and of(got, ev.AudioReceived)
