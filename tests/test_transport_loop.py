"""The driver loop shared by the three drivers, with no I/O: a recording driver and
a simulated clock stand in for sockets and time."""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Any, cast

import pytest
from test_transport_helpers import ALLOWED, webhook_body

from rtms_proto import (
    BackoffPolicy,
    ConnectionClosed,
    LocalProtocolError,
    OpenSocket,
    RemoteProtocolError,
    Session,
    SessionConfig,
    SocketId,
    SocketRole,
)
from rtms_proto import events as ev
from rtms_proto.enums import FailureReason
from rtms_transports import ConnectError, session_config
from rtms_transports._common import Backpressure, StreamLog
from rtms_transports._loop import DriverLoop, HandlerSink
from rtms_transports._queue import EventBuffer

LOG = StreamLog(logging.getLogger("rtms_transports.test"), "loop-test")


class RecordingIO:
    """A driver that records what the loop asks of it; its clock is set by the test."""

    def __init__(self) -> None:
        self.now = 100.0
        self.calls: list[tuple[Any, ...]] = []
        self.timer: float | None = None
        self.wakes = 0
        self.aborted = False
        self.unsent: dict[SocketId, int] = {}
        """Bytes each socket has not sent (set by the test: a peer that does not read)."""

    def clock(self) -> float:
        return self.now

    def open(self, action: OpenSocket) -> None:
        self.calls.append(("open", action.sock))

    def write(self, sock: SocketId, data: bytes) -> None:
        self.calls.append(("write", sock, data[:3]))

    def close(self, sock: SocketId) -> None:
        self.calls.append(("close", sock))

    def arm_timer(self, deadline: float | None) -> None:
        self.calls.append(("timer", deadline))
        self.timer = deadline

    def wake_consumer(self) -> None:
        self.wakes += 1

    def abort(self) -> None:
        self.aborted = True

    def buffered(self, sock: SocketId) -> int:
        return self.unsent.get(sock, 0)

    def drop(self, sock: SocketId) -> None:
        self.calls.append(("drop", sock))


def config(**changes: Any) -> SessionConfig:
    base = session_config(
        webhook_body("wss://127.0.0.1:1/signaling"),
        client_id="id",
        client_secret="secret",
        allowed_hosts=ALLOWED,
    )
    return dataclasses.replace(base, **changes)


def make_loop(
    session: Session | None = None, **changes: Any
) -> tuple[DriverLoop, RecordingIO, EventBuffer]:
    io = RecordingIO()
    buffer = EventBuffer(100, Backpressure.BLOCK, LOG)
    session = session or Session(config(**changes), jitter=lambda: 0.5)
    return DriverLoop(session, buffer, io, LOG, close_timeout=2.0), io, buffer


def drain(buffer: EventBuffer) -> list[ev.Event]:
    events = []
    while (event := buffer.pop()) is not None:
        events.append(event)
    return events


SIG = SocketId(1, SocketRole.SIGNALING)
REFUSED = ConnectError("cannot connect to 127.0.0.1:1: refused", host="127.0.0.1", port=1)


def test_an_input_performs_the_actions_in_order_and_rearms_the_one_timer() -> None:
    loop, io, buffer = make_loop()
    loop.start()
    assert io.calls[0] == ("open", SIG)
    deadline = io.timer
    assert deadline is not None and deadline > io.now  # the connect deadline
    assert io.calls == [("open", SIG), ("timer", deadline)] and io.wakes == 1
    io.now += 0.25
    loop.opened(SIG)
    assert io.calls[2] == ("write", SIG, b"GET")  # the WebSocket upgrade
    assert not drain(buffer)  # nothing for the application yet
    loop.timer(deadline)  # early: nothing is due, the timer is armed again
    assert io.calls[-1] == ("timer", io.timer) and io.timer is not None


def test_a_failed_first_signaling_socket_without_retry_ends_with_its_transport_error() -> None:
    loop, io, buffer = make_loop(retry_first_connect=False)
    loop.start()
    loop.failed(SIG, REFUSED)
    events = drain(buffer)
    assert [type(e) for e in events] == [ev.ConnectionFailed, ev.SessionEnded]
    assert loop.end is events[-1] and loop.end.why is ev.EndReason.FATAL_ERROR
    assert loop.fatal is REFUSED
    with pytest.raises(ConnectError) as raised:
        loop.check_connected()
    assert raised.value is REFUSED
    assert ("close", SIG) in io.calls and io.timer is None
    assert loop.leave() == io.now + 2.0  # the driver still holds the socket: wait for it
    loop.released(SIG)
    assert loop.finished and loop.leave() is None


def test_a_failed_first_signaling_socket_is_retried_by_default() -> None:
    loop, io, buffer = make_loop()
    loop.start()
    loop.failed(SIG, REFUSED)
    events = drain(buffer)
    assert [type(e) for e in events] == [ev.ConnectionFailed, ev.ReconnectScheduled]
    retry_at = io.timer
    assert retry_at is not None and loop.fatal is None and loop.end is None
    loop.released(SIG)
    assert not loop.finished
    io.now = retry_at
    loop.timer(retry_at)
    assert io.calls[-2:] == [("open", SocketId(2, SocketRole.SIGNALING)), ("timer", io.timer)]
    assert [type(e) for e in drain(buffer)] == [ev.ReconnectStarted]
    loop.check_connected()  # nothing to raise: not connected yet, not ended


def test_a_session_that_gave_up_retrying_is_raised_as_the_session_says() -> None:
    """Only the failure that ended the session at once is raised as a TransportError:
    after retries, ``connect()`` raises the session's own error, as it always did."""
    loop, io, buffer = make_loop(signaling_backoff=BackoffPolicy(max_attempts=1))
    loop.start()
    loop.failed(SIG, REFUSED)
    assert io.timer is not None
    io.now = io.timer
    loop.timer(io.timer)
    again = SocketId(2, SocketRole.SIGNALING)
    loop.failed(again, REFUSED)
    assert loop.end is not None and loop.end.why is ev.EndReason.RECONNECT_EXHAUSTED
    assert loop.fatal is None
    with pytest.raises(RemoteProtocolError) as raised:
        loop.check_connected()
    assert raised.value.reason is FailureReason.CONNECT_FAILED
    assert [type(e) for e in drain(buffer)][-1] is ev.SessionEnded


def test_commands_run_with_the_clock_and_raise_after_the_end() -> None:
    loop, io, _ = make_loop()
    with pytest.raises(LocalProtocolError):  # not started: the session refuses, nothing ran
        loop.command(lambda session, now: session.stop(now=now))
    assert not io.calls
    loop.start()
    seen: list[float] = []

    def stop(session: Session, now: float) -> str:
        seen.append(now)
        session.stop(now=now)
        return "done"

    io.now = 123.0
    assert loop.command(stop) == "done" and seen == [123.0]
    assert ("close", SIG) in io.calls
    assert loop.leave() == 123.0 + 2.0  # the socket is still held: wait, bounded
    loop.released(SIG)
    assert loop.end is not None and loop.end.why is ev.EndReason.STOPPED_LOCALLY
    assert loop.finished and loop.leave() is None
    with pytest.raises(ConnectionClosed, match="has ended"):
        loop.command(stop)


def test_leaving_stops_the_session_in_order() -> None:
    loop, io, _ = make_loop()
    loop.start()
    io.now = 5.0
    assert loop.leave() == 7.0
    assert loop.end is not None and loop.end.why is ev.EndReason.STOPPED_LOCALLY
    assert loop.leave() == 7.0  # ending already: only the wait


class Broken(Session):
    def receive_data(self, sock: SocketId, data: Any, now: float) -> None:
        raise ZeroDivisionError("a bug")


def test_an_exception_from_the_core_stops_the_driver(caplog: pytest.LogCaptureFixture) -> None:
    loop, io, _ = make_loop(Broken(config(), jitter=random.random))
    loop.start()
    loop.opened(SIG)
    calls = len(io.calls)
    loop.data(SIG, b"x")
    assert isinstance(loop.error, ZeroDivisionError) and io.aborted
    assert "the driver stopped on an unexpected error" in caplog.text
    loop.data(SIG, b"y")
    loop.eof(SIG)
    loop.failed(SIG, REFUSED)
    loop.timer(1.0)
    assert len(io.calls) == calls  # every later input is ignored
    with pytest.raises(ConnectionClosed, match="driver stopped") as raised:
        loop.command(lambda session, now: session.stop(now=now))
    assert raised.value.__cause__ is loop.error
    with pytest.raises(ZeroDivisionError):
        loop.check_connected()
    assert loop.leave() is None


def test_a_handler_issuing_commands_gets_their_events_in_order() -> None:
    got: list[ev.Event] = []
    loop: DriverLoop

    def handler(event: ev.Event) -> None:
        got.append(event)
        if isinstance(event, ev.ConnectionFailed):
            loop.command(lambda session, now: session.stop(now=now))

    io = RecordingIO()
    session = Session(config(), jitter=lambda: 0.5)
    loop = DriverLoop(session, HandlerSink(handler), io, LOG, close_timeout=2.0)
    loop.start()
    loop.failed(SIG, REFUSED)
    assert [type(e) for e in got] == [
        ev.ConnectionFailed,
        ev.ReconnectScheduled,
        ev.SessionEnded,
    ]
    assert loop.end is got[-1] and loop.end.why is ev.EndReason.STOPPED_LOCALLY
    assert io.timer is None


def test_a_socket_whose_peer_does_not_read_is_not_read_and_fails_after_close_timeout() -> None:
    """Write backpressure: over ``max_write_buffer`` unsent bytes a socket is not read;
    still over it ``close_timeout`` later, it is dropped and reported as a failure."""
    loop, io, buffer = make_loop()
    loop.start()
    assert loop.reading_allowed(SIG)
    io.unsent[SIG] = loop.max_write_buffer + 1  # the peer took none of it
    loop.opened(SIG)  # the upgrade request is written: over the bound
    assert not loop.reading_allowed(SIG)
    assert io.timer == io.now + loop.close_timeout  # before the handshake deadline
    stall = io.timer
    io.now += 1.0
    loop.timer(stall - 1.0)  # early: nothing dropped
    assert ("drop", SIG) not in io.calls and not loop.reading_allowed(SIG)
    io.now = stall
    loop.timer(stall)
    assert ("drop", SIG) in io.calls
    failed = [e for e in drain(buffer) if isinstance(e, ev.ConnectionFailed)]
    assert len(failed) == 1 and failed[0].sock == SIG
    assert "stopped reading" in failed[0].error.detail
    assert f"max_write_buffer is {loop.max_write_buffer} bytes" in failed[0].error.detail


def test_a_socket_whose_peer_reads_again_is_read_again_and_does_not_fail() -> None:
    loop, io, buffer = make_loop()
    loop.start()
    io.unsent[SIG] = loop.max_write_buffer + 1
    loop.opened(SIG)
    stall = io.timer
    assert stall is not None and not loop.reading_allowed(SIG)
    io.unsent[SIG] = loop.max_write_buffer  # the peer took a byte: at the bound is fine
    assert loop.reading_allowed(SIG)
    io.now = stall
    loop.timer(stall)
    assert ("drop", SIG) not in io.calls
    assert not [e for e in drain(buffer) if isinstance(e, ev.ConnectionFailed)]


def test_a_stall_noticed_only_by_the_timer_ends_when_the_buffer_drained() -> None:
    """The timer finds the buffer under the bound (nobody asked to read meanwhile):
    the stall is forgotten; closing a stalled socket forgets it as well."""
    loop, io, _ = make_loop()
    loop.start()
    io.unsent[SIG] = loop.max_write_buffer + 1
    loop.opened(SIG)
    stall = io.timer
    assert stall is not None
    io.unsent[SIG] = 0
    io.now = stall
    loop.timer(stall)
    assert ("drop", SIG) not in io.calls and loop.reading_allowed(SIG)
    io.unsent[SIG] = loop.max_write_buffer + 1
    loop.command(lambda s, now: s.stop(now=now))  # CloseSocket: the close has its own bound
    io.now += 2 * loop.close_timeout
    loop.timer(io.now)
    assert ("drop", SIG) not in io.calls


class DeadlineSession:
    """Stands in for a Session whose one deadline each input moves ``delay`` later."""

    ended = False

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.deadline: float | None = None
        self.timers: list[float] = []

    def drain(self) -> list[Any]:
        return []

    def next_deadline(self) -> float | None:
        return self.deadline

    def receive_data(self, sock: SocketId, data: bytes, *, now: float) -> None:
        self.deadline = now + self.delay

    def handle_timer(self, *, now: float) -> None:
        self.timers.append(now)


def test_a_deadline_moved_later_keeps_the_timer_which_fires_early_and_is_armed_again() -> None:
    """Each message moves the keep-alive deadline later: the timer is not re-armed per
    message; it fires at the earlier time, and is armed again at the deadline then."""
    io = RecordingIO()
    session = DeadlineSession(delay=10.0)
    loop = DriverLoop(cast(Session, session), HandlerSink(print), io, LOG, close_timeout=2.0)
    loop.data(SIG, b"x")
    assert io.calls == [("timer", 110.0)]
    for _ in range(32):
        io.now += 1 / 32  # exact in binary: 32 of them make 1.0
        loop.data(SIG, b"x")
    assert io.now == 101.0 and io.calls == [("timer", 110.0)]  # 32 messages, no timer work
    io.now = 110.0
    loop.timer(110.0)
    assert session.timers == [110.0]  # the session was asked, found nothing due...
    assert io.calls[-1] == ("timer", 111.0)  # ...and the timer was re-armed
    loop.command(lambda s, now: setattr(s, "deadline", 105.0))  # an earlier deadline...
    assert io.calls[-1] == ("timer", 105.0)  # ...re-arms at once
    loop.command(lambda s, now: setattr(s, "deadline", None))  # no deadline: no timer
    assert io.calls[3:] == [("timer", None)]
    loop.command(lambda s, now: None)  # still none: nothing to do
    assert len(io.calls) == 4
