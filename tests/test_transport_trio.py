"""The trio driver: cancellation, backpressure, many streams, MockClock, the runner."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from test_transport_helpers import (
    ALLOWED,
    CLIENT_ID,
    CLIENT_SECRET,
    ServerProcess,
    add_stream,
    fake_server,
    fd_count,
    of,
    options,
    silent_listener,
    wait_until,
    webhook_body,
    write_ca,
)

from rtms_conformance.faults import IgnoreHandshake
from rtms_proto import Session
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.enums import StopReason
from rtms_transports import Backpressure, session_config
from rtms_transports.trio import SessionRunner, connect, run_session

KW: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "allowed_hosts": ALLOWED,
}


def test_cancelled_during_the_tls_handshake_leaves_nothing_behind(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    before = fd_count()

    async def main() -> None:
        inside = fd_count()
        with silent_listener() as port:
            started = time.monotonic()
            with trio.move_on_after(0.3) as scope:
                async with connect(
                    webhook_body(f"wss://127.0.0.1:{port}/signaling"), options=options(ca), **KW
                ):
                    pytest.fail("connected to a server that never answers")
            assert scope.cancelled_caught
            assert time.monotonic() - started < 1.0
            assert fd_count() == inside + 1  # the listener only

    trio.run(main)
    assert fd_count() == before


def test_cancelled_during_the_rtms_handshake_leaves_nothing_behind(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "trio-ignored", faults=(IgnoreHandshake(),))
        before = fd_count()

        async def main() -> None:
            async with trio.open_nursery() as nursery:

                async def join() -> None:
                    async with connect(server.rtms_started_body(info), options=options(ca), **KW):
                        pytest.fail("the handshake was never answered")

                nursery.start_soon(join)
                assert await trio.to_thread.run_sync(
                    wait_until, lambda: server.status(info).signaling_handshakes == 1
                )
                nursery.cancel_scope.cancel()

        trio.run(main)
        assert wait_until(lambda: fd_count() == before)


def test_an_error_in_the_block_comes_out_as_is(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "trio-error", duration=None)

        async def main() -> None:
            async with connect(server.rtms_started_body(info), options=options(ca), **KW):
                raise KeyError("mine")

        with pytest.raises(KeyError, match="mine"):  # not an ExceptionGroup
            trio.run(main)
        assert wait_until(lambda: not server.status(info).signaling_connected)


def test_slow_consumer_keeps_answering_keepalives_and_loses_nothing(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    max_events, read_size = 8, 4096
    with fake_server(keepalive_interval=0.25, keepalive_while_data=True) as server:
        info = add_stream(server, "trio-slow", duration=2.0)
        got: list[ev.Event] = []
        high = 0

        async def main() -> None:
            nonlocal high
            opts = options(ca, max_events=max_events, read_size=read_size)
            async with connect(server.rtms_started_body(info), options=opts, **KW) as stream:
                slow_until = time.monotonic() + 1.2
                async for event in stream:
                    got.append(event)
                    high = max(high, stream.queued)
                    if time.monotonic() < slow_until:
                        await trio.sleep(0.03)

        trio.run(main)
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
        info = add_stream(server, "trio-drop", duration=1.2)
        got: list[ev.Event] = []
        dropped = 0

        async def main() -> None:
            nonlocal dropped
            opts = options(ca, max_events=10, backpressure=Backpressure.DROP_OLDEST_MEDIA)
            async with connect(server.rtms_started_body(info), options=opts, **KW) as stream:
                await trio.sleep(0.8)
                async for event in stream:
                    got.append(event)
                dropped = stream.dropped

        trio.run(main)
        status = server.status(info)
    assert dropped > 0
    assert len(of(got, ev.AudioReceived)) + dropped == status.sent[14]
    assert len(of(got, ev.TranscriptReceived)) == status.sent[17]


def test_a_hundred_concurrent_streams_lose_nothing(tmp_path: Path) -> None:
    with ServerProcess(10) as servers:
        ca = servers.ca_file(tmp_path)
        streams = [(n % 10, f"trio-{n}") for n in range(100)]
        bodies = [servers.add_stream(index, name) for index, name in streams]
        results: list[list[ev.Event]] = [[] for _ in streams]

        async def one(body: bytes, got: list[ev.Event]) -> None:
            async with connect(body, options=options(ca), **KW) as stream:
                async for event in stream:
                    got.append(event)

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                for body, got in zip(bodies, results, strict=True):
                    nursery.start_soon(one, body, got)
                while any(len(of(got, ev.AudioReceived)) < 10 for got in results):
                    await trio.sleep(0.05)
                for index, name in streams:
                    await trio.to_thread.run_sync(servers.end_stream, index, name)

        trio.run(main)
        sent = [servers.sent(index, name) for index, name in streams]
    for got, counts in zip(results, sent, strict=True):
        assert isinstance(got[-1], ev.SessionEnded)
        assert not of(got, ev.ConnectionFailed)
        audio = of(got, ev.AudioReceived)
        assert len(audio) == counts[14] >= 10
        stamps = [a.timestamp for a in audio]
        assert stamps == list(range(stamps[0], stamps[-1] + 1, 20))
        assert len(of(got, ev.TranscriptReceived)) == counts.get(17, 0)


def test_time_is_trio_time_mock_clock(tmp_path: Path) -> None:
    """Every deadline is on trio's clock: a minute of retries passes in virtual time."""
    ca = write_ca(tmp_path)
    got: list[ev.Event] = []
    with silent_listener() as port:
        config = session_config(webhook_body(f"wss://127.0.0.1:{port}/signaling"), **KW)

        async def main() -> ev.SessionEnded:
            session = Session(config, jitter=lambda: 0.5)
            return await run_session(session, got.append, options=options(ca))

        started = time.monotonic()
        ended = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        assert time.monotonic() - started < 10
    assert ended.why is ev.EndReason.RECONNECT_EXHAUSTED
    failures = of(got, ev.ConnectionFailed)
    assert len(failures) >= 3
    assert all("timed out after 5 s" in str(f.error) for f in failures)


def test_run_session_with_your_own_session(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "trio-runner", duration=None)
        config = session_config(server.rtms_started_body(info), **KW)
        got: list[ev.Event] = []

        async def main() -> ev.SessionEnded:
            runner: SessionRunner

            def handler(event: ev.Event) -> None:
                got.append(event)
                if isinstance(event, ev.MediaConnected) and len(of(got, ev.MediaConnected)) == 2:
                    runner.command(lambda session, now: session.close_stream(now=now))

            runner = SessionRunner(
                Session(config, jitter=random.random), handler, options=options(ca)
            )
            with pytest.raises(RuntimeError, match="not running"):
                runner.command(lambda session, now: session.request_stream_state(now=now))
            ended = await runner.run()
            with pytest.raises(RuntimeError, match="runs once"):
                await runner.run()
            return ended

        ended = trio.run(main)
    assert ended is got[-1] and ended.why is ev.EndReason.CLOSED_BY_APP
