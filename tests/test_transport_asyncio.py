"""The asyncio driver: cancellation, backpressure, many streams, the low-level runner."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
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
    of,
    options,
    silent_listener,
    wait_until,
    webhook_body,
    write_ca,
)

from rtms_conformance.faults import IgnoreHandshake
from rtms_proto import ConnectionClosed, Session
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.enums import StopReason
from rtms_transports import Backpressure, session_config
from rtms_transports.asyncio import SessionRunner, connect, run_session

KW: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "allowed_hosts": ALLOWED,
}


def other_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


def test_cancelled_during_the_tls_handshake_leaves_nothing_behind(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    before = fd_count()

    async def main() -> None:
        inside = fd_count()  # the loop has descriptors of its own
        with silent_listener() as port:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    async with connect(
                        webhook_body(f"wss://127.0.0.1:{port}/signaling"),
                        options=options(ca),
                        **KW,
                    ):
                        pytest.fail("connected to a server that never answers")
            assert time.monotonic() - started < 1.0
            assert not other_tasks()
            assert fd_count() == inside + 1  # the listener only

    asyncio.run(main())
    assert fd_count() == before


def test_cancelled_during_the_rtms_handshake_leaves_nothing_behind(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "asyncio-ignored", faults=(IgnoreHandshake(),))
        before = fd_count()

        async def main() -> None:
            async def join() -> None:
                async with connect(server.rtms_started_body(info), options=options(ca), **KW):
                    pytest.fail("the handshake was never answered")

            task = asyncio.create_task(join())
            assert await asyncio.to_thread(
                wait_until, lambda: server.status(info).signaling_handshakes == 1
            )
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not other_tasks()

        asyncio.run(main())
        assert wait_until(lambda: fd_count() == before)  # the server's end closes too


def test_cancelled_while_iterating_closes_every_socket(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "asyncio-cancel-iter", duration=None)
        before = fd_count()
        seen: list[ev.Event] = []

        async def main() -> None:
            async def consume() -> None:
                async with connect(server.rtms_started_body(info), options=options(ca), **KW) as s:
                    async for event in s:
                        seen.append(event)

            task = asyncio.create_task(consume())
            while not of(seen, ev.AudioReceived):
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not other_tasks()

        asyncio.run(main())
        assert wait_until(lambda: not server.status(info).signaling_connected)
        assert wait_until(lambda: fd_count() == before)


def test_slow_consumer_keeps_answering_keepalives_and_loses_nothing(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    max_events, read_size = 8, 4096
    with fake_server(keepalive_interval=0.25, keepalive_while_data=True) as server:
        info = add_stream(server, "asyncio-slow", duration=2.0)
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
                        await asyncio.sleep(0.03)  # 33 events/s, the stream sends 50+

        asyncio.run(main())
        status = server.status(info)
        answers = server.call(lambda r: r.server.received(info))
    assert isinstance(got[-1], ev.SessionEnded)
    assert status.stop_reason == StopReason.MEETING_ENDED  # not KEEP_ALIVE_TIMEOUT
    assert len(of(got, ev.AudioReceived)) == status.sent[14]
    assert len(of(got, ev.TranscriptReceived)) == status.sent[17]
    assert not [e for e in of(got, ev.ConnectionFailed) if e.sock.number <= 3]
    keepalive_answers = [x for x in answers if isinstance(x, m.KeepAliveResponse)]
    assert status.sent[12] >= 12 and len(keepalive_answers) >= status.sent[12] - 3
    # The queue filled (reading paused) and stayed within the documented bound:
    # max_events - 1 + sockets * (events one read can complete), plus timer events.
    per_read = read_size // 900
    assert max_events <= high <= max_events - 1 + 3 * per_read + 3


def test_drop_oldest_media_when_chosen(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "asyncio-drop", duration=1.2)
        got: list[ev.Event] = []
        dropped = 0

        async def main() -> None:
            nonlocal dropped
            opts = options(ca, max_events=10, backpressure=Backpressure.DROP_OLDEST_MEDIA)
            async with connect(server.rtms_started_body(info), options=opts, **KW) as stream:
                await asyncio.sleep(0.8)  # the application is busy elsewhere
                async for event in stream:
                    got.append(event)
                dropped = stream.dropped

        asyncio.run(main())
        status = server.status(info)
    assert dropped > 0
    assert len(of(got, ev.AudioReceived)) + dropped == status.sent[14]
    assert len(of(got, ev.TranscriptReceived)) == status.sent[17]  # never dropped
    assert isinstance(got[-1], ev.SessionEnded)


def test_a_hundred_concurrent_streams_lose_nothing(tmp_path: Path) -> None:
    with ServerProcess(10) as servers:
        ca = servers.ca_file(tmp_path)
        streams = [(n % 10, f"asyncio-{n}") for n in range(100)]
        bodies = [servers.add_stream(index, name) for index, name in streams]
        results: list[list[ev.Event]] = [[] for _ in streams]

        async def one(body: bytes, got: list[ev.Event]) -> None:
            async with connect(body, options=options(ca), **KW) as stream:
                async for event in stream:
                    got.append(event)

        async def main() -> None:
            async with asyncio.TaskGroup() as group:
                for body, got in zip(bodies, results, strict=True):
                    group.create_task(one(body, got))
                while any(len(of(got, ev.AudioReceived)) < 10 for got in results):
                    await asyncio.sleep(0.05)
                for index, name in streams:  # every stream has flowed: end them all now
                    await asyncio.to_thread(servers.end_stream, index, name)
            assert not other_tasks()

        asyncio.run(main())
        sent = [servers.sent(index, name) for index, name in streams]
    for got, counts in zip(results, sent, strict=True):
        assert isinstance(got[-1], ev.SessionEnded)
        assert got[-1].why is ev.EndReason.STREAM_TERMINATED
        assert not of(got, ev.ConnectionFailed)
        audio = of(got, ev.AudioReceived)
        assert len(audio) == counts[14] >= 10
        stamps = [a.timestamp for a in audio]
        assert stamps == list(range(stamps[0], stamps[-1] + 1, 20))
        assert len(of(got, ev.TranscriptReceived)) == counts.get(17, 0)


def test_run_session_with_your_own_session(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "asyncio-runner", duration=None)
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

        ended = asyncio.run(main())
    assert ended is got[-1]
    assert ended.why is ev.EndReason.CLOSED_BY_APP


def test_run_session_handler_may_use_the_session_directly(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "asyncio-direct", duration=None)
        session = Session(
            session_config(server.rtms_started_body(info), **KW), jitter=random.random
        )

        async def main() -> ev.SessionEnded:
            loop = asyncio.get_running_loop()

            def handler(event: ev.Event) -> None:
                if isinstance(event, ev.TranscriptReceived):
                    session.stop(now=loop.time())

            return await run_session(session, handler, options=options(ca))

        ended = asyncio.run(main())
    assert ended.why is ev.EndReason.STOPPED_LOCALLY


def test_receive_after_the_end(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "asyncio-receive", duration=None)

        async def main() -> None:
            async with connect(server.rtms_started_body(info), options=options(ca), **KW) as s:
                s.close_stream()
                while not isinstance(await s.receive(), ev.SessionEnded):
                    pass
                with pytest.raises(ConnectionClosed):
                    await s.receive()
                assert s.ended is not None and s.queued == 0 and s.dropped == 0

        asyncio.run(main())
