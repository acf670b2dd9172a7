"""Every driver against the fake server, one suite: each test runs on asyncio, trio and
blocking sockets through the harness of ``test_transport_helpers``; tests of what
only one driver has (trio's clock, the blocking driver's threads) come last."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import socket
import threading
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
    HARNESSES,
    WAIT,
    ConnectProxy,
    FailFirst,
    Harness,
    ServerProcess,
    Until,
    add_stream,
    closed_port,
    fake_server,
    fd_count,
    knocked_listener,
    meeting,
    of,
    options,
    other_tls,
    rtms_threads,
    silent_listener,
    wait_until,
    webhook_body,
    write_ca,
)

from rtms_conformance.faults import IgnoreHandshake, RejectHandshake, Silence
from rtms_proto import (
    AudioParams,
    ConnectionClosed,
    MediaType,
    RemoteProtocolError,
    Session,
    SessionConfig,
    handshake_signature,
)
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import FailureReason, StatusCode, StopReason
from rtms_transports import (
    CA_ENV,
    CLIENT_ENV,
    SECRET_ENV,
    Backpressure,
    ConnectError,
    ConnectTimeout,
    PlaintextRefused,
    ProxyError,
    TLSVerificationError,
    session_config,
)
from rtms_transports.blocking import SessionRunner as BlockingRunner
from rtms_transports.blocking import connect as blocking_connect
from rtms_transports.trio import connect as trio_connect
from rtms_transports.trio import run_session as trio_run_session

KW: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "allowed_hosts": ALLOWED,
}

every_driver = pytest.mark.parametrize("driver", HARNESSES, ids=str)


# --------------------------------------------------------------------------- joining


@every_driver
def test_plaintext_refused_off_loopback(driver: Harness) -> None:
    body = webhook_body("ws://rtms-sjc1.zoom.us/signaling")
    with pytest.raises(PlaintextRefused, match="refusing plain ws://"):
        driver.stream(body, client_id="id", client_secret="secret")


@every_driver
def test_happy_path_over_tls_nothing_lost(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, f"happy-{driver}", duration=1.0)
        events = driver.stream(server.rtms_started_body(info), options=options(ca), **KW).events
        status = server.status(info)
        audio_events = of(events, ev.AudioReceived)
        first, last = audio_events[0].timestamp, audio_events[-1].timestamp
        expected = server.call(
            lambda r: r.server.expected_audio(info, AudioParams(), first, last + 20)
        )
    assert isinstance(events[-1], ev.SessionEnded)
    assert events[-1].why is ev.EndReason.STREAM_TERMINATED
    assert events[-1].stop_reason == StopReason.MEETING_ENDED
    assert isinstance(events[0], ev.SignalingConnected)
    assert len(of(events, ev.MediaConnected)) == 2
    assert len(audio_events) == status.sent[14] >= 45
    assert [a.timestamp for a in audio_events] == list(range(first, last + 1, 20))
    assert b"".join(a.data for a in audio_events) == expected
    assert len(of(events, ev.TranscriptReceived)) == status.sent[17] >= 1
    assert not of(events, ev.ConnectionFailed)


@every_driver
def test_environment_credentials_and_ca_and_no_secret_in_logs(
    driver: Harness,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(CLIENT_ENV, CLIENT_ID)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setenv(CA_ENV, write_ca(tmp_path))
    caplog.set_level(logging.DEBUG)
    with fake_server() as server:
        info = add_stream(server, f"env-{driver}", duration=None)
        events = driver.stream(
            server.rtms_started_body(info),
            allowed_hosts=ALLOWED,
            script=lambda stream: stream.close_stream(),
        ).events
    assert isinstance(events[-1], ev.SessionEnded)
    assert events[-1].why is ev.EndReason.CLOSED_BY_APP
    signature = handshake_signature(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        instance_id=info.instance_id,
        rtms_stream_id=info.rtms_stream_id,
    )
    assert f"[env-{driver} signaling#1] connected to 127.0.0.1:" in caplog.text
    assert CLIENT_SECRET not in caplog.text and signature not in caplog.text


@every_driver
def test_wrong_ca_is_a_clear_tls_verification_error(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path, other_tls())
    with fake_server() as server:
        info = add_stream(server, f"wrong-ca-{driver}")
        with pytest.raises(TLSVerificationError) as raised:
            driver.stream(server.rtms_started_body(info), options=options(ca), **KW)
        port = server.port
        assert server.status(info).signaling_handshakes == 0
    assert str(raised.value).startswith(
        f"TLS certificate verification failed for 127.0.0.1:{port}: "
    )
    assert f"(trusted: CA file {ca!r})" in str(raised.value)
    assert raised.value.host == "127.0.0.1" and raised.value.port == port


@every_driver
def test_connect_timeout_and_refused(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    before = fd_count()
    with silent_listener() as port:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout, match=f"127.0.0.1:{port} timed out after 0.3 s"):
            driver.stream(
                webhook_body(f"wss://127.0.0.1:{port}/signaling"),
                options=options(ca, connect_timeout=0.3),
                **KW,
            )
        assert time.monotonic() - started < 1.5
    port = closed_port()
    with pytest.raises(ConnectError, match=f"cannot connect to 127.0.0.1:{port}"):
        driver.stream(webhook_body(f"wss://127.0.0.1:{port}/signaling"), options=options(ca), **KW)
    assert fd_count() == before


@pytest.mark.parametrize(
    ("read_all", "why"),
    [
        (True, "the server closed the connection during the TLS handshake"),
        (False, "Connection reset by peer"),  # closed with the ClientHello unread: a reset
    ],
    ids=["end", "reset"],
)
@every_driver
def test_a_server_hanging_up_during_the_tls_handshake(
    driver: Harness, read_all: bool, why: str, tmp_path: Path
) -> None:
    """The same error, word for word, from every driver, and nothing left open."""
    ca = write_ca(tmp_path)
    before = fd_count()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                if read_all:
                    conn.settimeout(5.0)
                    hello = conn.recv(65536)
                    length = 5 + int.from_bytes(hello[3:5], "big")  # the record's size
                    while len(hello) < length:
                        hello += conn.recv(65536)
                else:
                    conn.recv(1)

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        with pytest.raises(ConnectError) as raised:
            driver.stream(
                webhook_body(f"wss://127.0.0.1:{port}/signaling"),
                options=options(ca, connect_timeout=5.0),
                **KW,
            )
    finally:
        listener.close()
        thread.join(5)
    assert str(raised.value) == f"cannot connect to 127.0.0.1:{port}: {why}"
    assert (raised.value.host, raised.value.port) == ("127.0.0.1", port)
    assert fd_count() == before


@pytest.mark.parametrize("fail_fast", [True, False], ids=["fail-fast", "retry"])
@every_driver
def test_a_failed_first_signaling_socket(driver: Harness, fail_fast: bool, tmp_path: Path) -> None:
    """``fail_fast`` (the default) raises the transport error at once; without it the
    session retries the first signaling socket, and here the retry connects."""
    ca = write_ca(tmp_path)
    with fake_server() as server, FailFirst(server.port) as forward:
        info = add_stream(server, f"first-failure-{driver}-{fail_fast}", duration=None)
        body = forward.rewrite(server.rtms_started_body(info), server.port)
        opts = options(ca, fail_fast=fail_fast)
        if fail_fast:
            with pytest.raises(ConnectError, match=f"cannot connect to 127.0.0.1:{forward.port}"):
                driver.stream(body, options=opts, **KW)
            assert forward.accepted == 1
            return
        events = driver.stream(
            body, options=opts, on_event=lambda _, e: isinstance(e, ev.AudioReceived), **KW
        ).events
    assert forward.accepted == 2
    failed = of(events, ev.ConnectionFailed)
    assert [(f.sock.number, f.reason) for f in failed] == [(1, FailureReason.CONNECT_FAILED)]
    assert len(of(events, ev.ReconnectScheduled)) == 1
    assert isinstance(events[-1], ev.AudioReceived)


@every_driver
def test_through_an_http_connect_proxy(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server, ConnectProxy(user="proxy-user", password="proxy-pass") as proxy:
        info = add_stream(server, f"proxy-{driver}", duration=None)
        body = server.rtms_started_body(info)
        events = driver.stream(
            body,
            options=options(ca, proxy=proxy.url("proxy-user", "proxy-pass")),
            on_event=lambda _, e: isinstance(e, ev.TranscriptReceived),
            **KW,
        ).events
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"] * 3
        with pytest.raises(ProxyError, match="407") as raised:
            driver.stream(
                body, options=options(ca, proxy=proxy.url("proxy-user", "wrong-pass")), **KW
            )
        assert "wrong-pass" not in str(raised.value) and proxy.refused == 1
    assert len(of(events, ev.MediaConnected)) == 2 and of(events, ev.AudioReceived)


@every_driver
def test_a_rejected_handshake_is_raised_by_connect(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(
            server,
            f"rejected-{driver}",
            faults=(RejectHandshake(status=int(StatusCode.INVALID_SIGNATURE)),),
        )
        with pytest.raises(RemoteProtocolError) as raised:
            driver.stream(server.rtms_started_body(info), options=options(ca), **KW)
    assert raised.value.reason is FailureReason.AUTHENTICATION_FAILED


# --------------------------------------------------------------------------- commands, leaving


@every_driver
def test_commands_and_leaving_the_block_early(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)

    def script(stream: Any) -> None:
        stream.subscribe_events([2])
        stream.request_stream_state()

    with fake_server() as server:
        info = add_stream(server, f"early-{driver}", duration=None)
        outcome = driver.stream(
            server.rtms_started_body(info),
            options=options(ca),
            script=script,
            on_event=lambda _, e: isinstance(e, ev.StreamStateReported),
            **KW,
        )
        assert wait_until(lambda: not server.status(info).signaling_connected)
        assert 2 in server.status(info).subscribed_events
    stream = outcome.stream
    assert stream.ended is not None
    assert stream.ended.why is ev.EndReason.STOPPED_LOCALLY
    assert stream.rtms_stream_id == f"early-{driver}"
    assert isinstance(stream.config, SessionConfig)
    with pytest.raises(ConnectionClosed):
        stream.close_stream()
    assert isinstance(outcome.events[-1], ev.StreamStateReported)


@every_driver
def test_receive_after_the_end(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, f"receive-{driver}", duration=None)
        outcome = driver.stream(
            server.rtms_started_body(info),
            options=options(ca),
            script=lambda stream: stream.close_stream(),
            receive_after_end=True,
            **KW,
        )
    assert isinstance(outcome.events[-1], ev.SessionEnded)
    assert isinstance(outcome.after_end, ConnectionClosed)
    stream = outcome.stream
    assert stream.ended is outcome.events[-1] and stream.queued == 0 and stream.dropped == 0


@every_driver
def test_an_exception_in_the_block_comes_out_as_is_and_closes_everything(
    driver: Harness, tmp_path: Path
) -> None:
    ca = write_ca(tmp_path)

    def fail(stream: Any, event: ev.Event) -> bool:
        if isinstance(event, ev.AudioReceived):
            raise KeyError("mine")
        return False

    with fake_server() as server:
        info = add_stream(server, f"error-{driver}", duration=None)
        before = fd_count()
        with pytest.raises(KeyError, match="mine"):  # not wrapped in an ExceptionGroup
            driver.stream(server.rtms_started_body(info), options=options(ca), on_event=fail, **KW)
        assert wait_until(lambda: not server.status(info).signaling_connected)
        assert wait_until(lambda: fd_count() == before)


# --------------------------------------------------------------------------- interrupted


@every_driver
def test_interrupted_during_the_tls_handshake_leaves_nothing_behind(
    driver: Harness, tmp_path: Path
) -> None:
    ca = write_ca(tmp_path)
    before = fd_count()
    with knocked_listener() as (port, knocked):
        started = time.monotonic()
        fds = driver.interrupt(
            webhook_body(f"wss://127.0.0.1:{port}/signaling"),
            knocked,
            iterate=False,
            options=options(ca, connect_timeout=WAIT),
            **KW,
        )
        assert time.monotonic() - started < WAIT / 2
    assert fds.after == fds.before  # the client's socket closed before the framework ended
    assert wait_until(lambda: fd_count() == before)  # and the server's end


@every_driver
def test_interrupted_during_the_rtms_handshake_leaves_nothing_behind(
    driver: Harness, tmp_path: Path
) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, f"ignored-{driver}", faults=(IgnoreHandshake(),))
        before = fd_count()
        driver.interrupt(
            server.rtms_started_body(info),
            lambda: server.status(info).signaling_handshakes == 1,
            iterate=False,
            options=options(ca),
            **KW,
        )
        assert wait_until(lambda: fd_count() == before)  # the server's ends close too


@every_driver
def test_interrupted_while_iterating_closes_every_socket(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, f"interrupt-iter-{driver}", duration=None)
        before = fd_count()
        driver.interrupt(
            server.rtms_started_body(info),
            lambda: server.status(info).sent.get(14, 0) >= 5,
            iterate=True,
            options=options(ca),
            **KW,
        )
        assert wait_until(lambda: not server.status(info).signaling_connected)
        assert wait_until(lambda: fd_count() == before)


# --------------------------------------------------------------------------- backpressure


@every_driver
def test_slow_consumer_keeps_answering_keepalives_and_loses_nothing(
    driver: Harness, tmp_path: Path
) -> None:
    """The application takes one event for every two messages the server sends (paced
    by the server, not by the clock) until a dozen keep-alives went out, then the rest."""
    ca = write_ca(tmp_path)
    max_events, read_size = 8, 4096
    with fake_server(keepalive_interval=0.25, keepalive_while_data=True) as server:
        info = add_stream(server, f"slow-{driver}", duration=2.0)
        high = 0

        def take(stream: Any, event: ev.Event) -> Until | None:
            nonlocal high
            high = max(high, stream.queued)
            status = server.status(info)
            if status.ended or status.sent.get(12, 0) >= 12:
                return None
            mark = sum(status.sent.values()) + 2

            def later() -> bool:
                now = server.status(info)
                return now.ended or sum(now.sent.values()) >= mark

            return later

        opts = options(ca, max_events=max_events, read_size=read_size)
        got = driver.stream(
            server.rtms_started_body(info), options=opts, on_event=take, **KW
        ).events
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


@every_driver
def test_drop_oldest_media_when_chosen(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, f"drop-{driver}", duration=1.2)
        opts = options(ca, max_events=10, backpressure=Backpressure.DROP_OLDEST_MEDIA)
        outcome = driver.stream(
            server.rtms_started_body(info),
            options=opts,
            # The application is busy elsewhere from the first event on:
            on_event=lambda stream, _: None if stream.dropped else lambda: stream.dropped >= 5,
            **KW,
        )
        status = server.status(info)
    got, dropped = outcome.events, outcome.stream.dropped
    assert dropped >= 5
    assert len(of(got, ev.AudioReceived)) + dropped == status.sent[14]
    assert len(of(got, ev.TranscriptReceived)) == status.sent[17]  # never dropped
    assert isinstance(got[-1], ev.SessionEnded)


@every_driver
def test_many_concurrent_streams_lose_nothing(driver: Harness, tmp_path: Path) -> None:
    count = driver.concurrent_streams
    servers_count = 10 if count > 20 else 2
    with ServerProcess(servers_count) as servers:
        ca = servers.ca_file(tmp_path)
        streams = [(n % servers_count, f"{driver}-{n}") for n in range(count)]
        bodies = [servers.add_stream(index, name) for index, name in streams]

        def flowing(results: list[list[ev.Event]]) -> bool:
            return all(len(of(got, ev.AudioReceived)) >= 10 for got in results)

        def end_all() -> None:
            for index, name in streams:  # every stream has flowed: end them all now
                servers.end_stream(index, name)

        results = driver.many(bodies, options(ca), ready=flowing, then=end_all, **KW)
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


# --------------------------------------------------------------------------- the low-level runner


@every_driver
def test_session_runner_with_your_own_session(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, f"runner-{driver}", duration=None)
        config = session_config(server.rtms_started_body(info), **KW)
        got: list[ev.Event] = []
        runner: Any

        def handler(event: ev.Event) -> None:
            got.append(event)
            if isinstance(event, ev.MediaConnected) and len(of(got, ev.MediaConnected)) == 2:
                runner.command(lambda session, now: session.close_stream(now=now))

        runner = driver.module.SessionRunner(
            Session(config, jitter=random.random), handler, options=options(ca)
        )
        ended = driver.run(runner)
        with pytest.raises(RuntimeError, match="runs once"):
            driver.run(runner)
    assert ended is got[-1]
    assert ended.why is ev.EndReason.CLOSED_BY_APP
    with pytest.raises((RuntimeError, ConnectionClosed)):
        runner.command(lambda session, now: session.request_stream_state(now=now))


@every_driver
def test_run_session_handler_may_use_the_session_directly(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, f"direct-{driver}", duration=None)
        session = Session(
            session_config(server.rtms_started_body(info), **KW), jitter=random.random
        )
        got: list[ev.Event] = []

        def handler(event: ev.Event) -> None:
            got.append(event)
            if isinstance(event, ev.TranscriptReceived) and not session.ended:
                session.stop(now=driver.clock())

        ended = driver.run_session(session, handler, options=options(ca))
    assert ended.why is ev.EndReason.STOPPED_LOCALLY
    assert ended is got[-1] and of(got, ev.TranscriptReceived)


@every_driver
def test_run_session_until_the_stream_ends(driver: Harness, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, f"convenience-{driver}", duration=0.5)
        config = session_config(server.rtms_started_body(info), **KW)
        got: list[ev.Event] = []
        ended = driver.run_session(
            Session(config, jitter=random.random), got.append, options=options(ca)
        )
    assert ended.why is ev.EndReason.STREAM_TERMINATED and of(got, ev.AudioReceived)


def test_async_runner_commands_need_a_running_runner(tmp_path: Path) -> None:
    """asyncio and trio: a runner's loop objects exist only while it runs."""
    config = session_config(webhook_body("wss://127.0.0.1:1/signaling"), **KW)
    for harness in HARNESSES[:2]:
        runner = harness.module.SessionRunner(Session(config, jitter=random.random), print)
        with pytest.raises(RuntimeError, match="not running"):
            runner.command(lambda session, now: session.request_stream_state(now=now))


# --------------------------------------------------------------------------- trio only


def test_trio_time_is_trio_time_mock_clock(tmp_path: Path) -> None:
    """Every deadline is on trio's clock: a minute of retries passes in virtual time."""
    ca = write_ca(tmp_path)
    got: list[ev.Event] = []
    with silent_listener() as port:
        config = session_config(webhook_body(f"wss://127.0.0.1:{port}/signaling"), **KW)

        async def main() -> ev.SessionEnded:
            session = Session(config, jitter=lambda: 0.5)
            return await trio_run_session(session, got.append, options=options(ca))

        started = time.monotonic()
        ended = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        assert time.monotonic() - started < 10
    assert ended.why is ev.EndReason.RECONNECT_EXHAUSTED
    failures = of(got, ev.ConnectionFailed)
    assert len(failures) >= 3
    assert all("timed out after 5 s" in str(f.error) for f in failures)


def test_trio_keepalive_timeouts_fire_on_time_for_every_session_of_a_run(
    tmp_path: Path,
) -> None:
    """One timer task serves every session of a trio run, and a session's deadline moves
    later with each message without waking it: when each audio socket goes silent, its
    keep-alive timeout still fires about 1 s after the last message, in every session."""
    ca = write_ca(tmp_path)
    silent = Silence(at=0.6, role=SocketRole.AUDIO)
    with fake_server() as server:
        infos = [
            add_stream(server, f"trio-timer-{n}", duration=None, faults=(silent,)) for n in range(3)
        ]
        logs: list[list[tuple[float, ev.Event]]] = [[] for _ in infos]

        async def one(info: Any, log: list[tuple[float, ev.Event]]) -> None:
            config = session_config(server.rtms_started_body(info), media=MediaType.AUDIO, **KW)
            quick = dataclasses.replace(config.media_options, keepalive_timeout=1.0)
            config = dataclasses.replace(config, media_options=quick)
            with trio.CancelScope() as scope:

                def handler(event: ev.Event) -> None:
                    log.append((time.monotonic(), event))
                    if isinstance(event, ev.ConnectionFailed):
                        scope.cancel()

                await trio_run_session(
                    Session(config, jitter=random.random), handler, options=options(ca)
                )

        async def main() -> None:
            with trio.fail_after(WAIT):
                async with trio.open_nursery() as nursery:
                    for info, log in zip(infos, logs, strict=True):
                        nursery.start_soon(one, info, log)

        trio.run(main)
    for log in logs:
        failed = [(t, e) for t, e in log if isinstance(e, ev.ConnectionFailed)]
        assert failed and "nothing received for 1 s" in str(failed[0][1].error)
        audio = [t for t, e in log if isinstance(e, ev.AudioReceived) and t < failed[0][0]]
        assert len(audio) >= 10  # the deadline moved later with each of them
        assert 0.9 <= failed[0][0] - audio[-1] <= 2.5


def test_trio_receive_cancelled_while_waiting_loses_nothing(tmp_path: Path) -> None:
    """A consumer waiting for events is woken directly (no parking lot): a wait cancelled
    by a timeout leaves nothing behind, and the next receive gets the next event: every
    20 ms audio message arrives, in order, through receives that time out hundreds of
    times in between."""
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "trio-cancelled-waits", duration=1.0)
        events: list[ev.Event] = []
        timeouts = 0

        async def main() -> None:
            nonlocal timeouts
            body = server.rtms_started_body(info)
            with trio.fail_after(WAIT):
                async with trio_connect(body, options=options(ca), **KW) as stream:
                    while not (events and isinstance(events[-1], ev.SessionEnded)):
                        with trio.move_on_after(0.002) as scope:
                            events.append(await stream.receive())
                        timeouts += scope.cancelled_caught

        trio.run(main)
        status = server.status(info)
    audio = of(events, ev.AudioReceived)
    assert timeouts >= 100  # the waits were cancelled, again and again
    assert len(audio) == status.sent[14] >= 45
    assert [a.timestamp for a in audio] == list(
        range(audio[0].timestamp, audio[-1].timestamp + 1, 20)
    )
    assert isinstance(events[-1], ev.SessionEnded)
    assert events[-1].why is ev.EndReason.STREAM_TERMINATED


# --------------------------------------------------------------------------- blocking only


def test_blocking_commands_from_another_thread_and_receive_timeout(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "blocking-commands", duration=None)
        with blocking_connect(server.rtms_started_body(info), options=options(ca), **KW) as s:
            done: list[str] = []

            def elsewhere() -> None:
                s.request_stream_state()
                done.append(threading.current_thread().name)

            helper = threading.Thread(target=elsewhere, name="helper")
            helper.start()
            helper.join(5)
            assert done == ["helper"]
            while not isinstance(s.receive(timeout=5), ev.StreamStateReported):
                pass
            s.close_stream()
            last = None
            while not isinstance(last, ev.SessionEnded):
                last = s.receive(timeout=5)
            with pytest.raises(ConnectionClosed):
                s.receive(timeout=0.1)
            with pytest.raises(ConnectionClosed):
                s.stop()
    assert last.why is ev.EndReason.CLOSED_BY_APP and not rtms_threads()


def test_blocking_receive_timeout(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        quiet = meeting(None, participants=0, transcripts=False)
        info = add_stream(server, "blocking-timeout", duration=None, meeting=quiet)
        body = server.rtms_started_body(info)
        with (
            blocking_connect(body, media=MediaType.TRANSCRIPT, options=options(ca), **KW) as s,
            pytest.raises(TimeoutError, match="no event in time"),
        ):
            while True:
                s.receive(timeout=0.3)


def test_blocking_runner_stopped_and_aborted_from_another_thread(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, "blocking-abort", duration=None)
        config = session_config(server.rtms_started_body(info), **KW)
        got: list[ev.Event] = []
        flowing = threading.Event()

        def handler(event: ev.Event) -> None:
            got.append(event)
            if isinstance(event, ev.AudioReceived):
                flowing.set()

        runner = BlockingRunner(Session(config, jitter=random.random), handler, options=options(ca))

        def stop_when_flowing() -> None:
            assert flowing.wait(WAIT)
            runner.command(lambda session, now: session.stop(now=now))

        stopper = threading.Thread(target=stop_when_flowing)
        stopper.start()
        ended = runner.run()
        stopper.join()
        assert ended.why is ev.EndReason.STOPPED_LOCALLY
        connected = threading.Event()
        aborted = BlockingRunner(
            Session(config, jitter=random.random),
            lambda e: connected.set() if isinstance(e, ev.SignalingConnected) else None,
            options=options(ca),
        )

        def abort_when_connected() -> None:
            assert connected.wait(WAIT)
            aborted.abort()

        aborter = threading.Thread(target=abort_when_connected)
        aborter.start()
        with pytest.raises(ConnectionClosed, match="stopped before the session ended"):
            aborted.run()
        aborter.join()

        def gone() -> bool:
            status = server.status(info)
            return not status.signaling_connected and not status.media_connected

        assert wait_until(gone)  # the server saw every socket go
    assert of(got, ev.AudioReceived)
    with pytest.raises(ConnectionClosed):
        runner.command(lambda s, now: s.stop(now=now))
