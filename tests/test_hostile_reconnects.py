"""Issue 10 defect 1 on real sockets: a server that completes every handshake and
then drops (FIN, reset, close 1000, or silence) is not reconnected to forever.

The reconnect episode, with its window, goes on until a new socket proves
itself (``BackoffPolicy.settle``), so the number of connections stays bounded
and the session ends with RECONNECT_EXHAUSTED within the window.  Short
policies keep it fast; ``tests/hostile.py`` is the server.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator

import pytest
from hostile import (
    DRIVERS,
    FAST_CONN,
    Driver,
    Drop,
    HostileServer,
    client_config,
    drive,
    handshake_then_drop,
    media_without_handshake_answer,
    no_leaks,
    routes,
    unnamed_interruption,
)

from rtms_proto import BackoffPolicy, Jitter, MediaType
from rtms_proto import events as ev

SLACK = 1.5
"""Scheduling allowance on a loaded 2-core machine (seconds)."""

WINDOW = 1.5
CAP = 0.2
POLICY = BackoffPolicy(
    initial=0.05,
    factor=2.0,
    cap=CAP,
    jitter=Jitter.NONE,
    max_attempts=None,
    window=WINDOW,
    settle=0.5,
)
"""No attempt limit: only the window (and the proof rule) can end the flapping."""

MAX_CONNECTIONS = 1 + 3 + math.ceil(WINDOW / CAP) + 1
"""The first socket, the 0.05/0.1/0.2 s retries, one per capped delay, one at the end."""

SILENT = dataclasses.replace(FAST_CONN, keepalive_timeout=0.3)
"""Liveness timeout shorter than ``settle``: a silent socket is lost before it can settle."""


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    with no_leaks():
        yield


def _assert_gave_up(run_ended: ev.SessionEnded | None, handshakes: int, kind: str) -> None:
    assert run_ended is not None
    assert run_ended.why is ev.EndReason.RECONNECT_EXHAUSTED
    assert f"gave up reconnecting {kind}" in run_ended.detail
    assert "kept dropping right after its handshake" in run_ended.detail
    assert 2 <= handshakes <= MAX_CONNECTIONS


@pytest.mark.parametrize("how", list(Drop), ids=[d.value for d in Drop])
def test_signaling_that_drops_after_every_handshake_is_given_up_within_the_window(
    how: Drop,
) -> None:
    options = SILENT if how is Drop.SILENCE else FAST_CONN
    with HostileServer(routes(signaling=handshake_then_drop(how))) as server:
        config = client_config(server, options=options, backoff=POLICY)
        run = drive("asyncio", config, timeout=15.0)
        handshakes = server.handshakes("/signaling")
    _assert_gave_up(run.ended, handshakes, "signaling")
    assert handshakes == len(run.of(ev.SignalingConnected))
    liveness = SILENT.keepalive_timeout if how is Drop.SILENCE else 0.0
    assert run.seconds < WINDOW + liveness + SLACK


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_driver_gives_up_on_a_flapping_media_socket(driver: Driver) -> None:
    scripts = routes(audio=handshake_then_drop(Drop.CLOSE_1000, media=True))
    with HostileServer(scripts) as server:
        config = client_config(server, media=MediaType.AUDIO, backoff=POLICY)
        run = drive(driver, config, timeout=15.0)
        handshakes = server.handshakes("/audio")
        assert server.handshakes("/signaling") == 1
    _assert_gave_up(run.ended, handshakes, "media (audio)")
    assert run.seconds < WINDOW + SLACK


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_unnamed_interruption_rebuilds_only_the_socket_that_drops(driver: Driver) -> None:
    """Defect 17: event 7 naming no socket, then audio drops 0.1 s later; transcript stays."""

    def reconnected(event: ev.Event) -> bool:
        return isinstance(event, ev.ReconnectCompleted) and event.media_type is MediaType.AUDIO

    with HostileServer(unnamed_interruption("audio", grace=0.1)) as server:
        config = client_config(
            server, media=MediaType.AUDIO | MediaType.TRANSCRIPT, interruption_grace=1.0
        )
        run = drive(driver, config, until=reconnected, timeout=10.0)
        assert server.connections("/audio") == 2
        assert server.connections("/transcript") == 1
        assert server.connections("/signaling") == 1
    assert [e.media_type for e in run.of(ev.ReconnectScheduled)] == [MediaType.AUDIO]
    assert run.ended is not None and run.ended.why is ev.EndReason.STOPPED_LOCALLY


@pytest.mark.parametrize("driver", DRIVERS)
def test_media_without_a_handshake_answer_records_past_the_handshake_timeout(
    driver: Driver,
) -> None:
    """Defect 20 (Zoom's mock): audio flows on an unanswered media socket; it is accepted,
    unconfirmed, and kept well past the 2 s handshake timeout with no reconnect."""
    started = time.monotonic()

    def long_enough() -> bool:
        return time.monotonic() - started > 2 * FAST_CONN.handshake_timeout

    scripts = routes(audio=media_without_handshake_answer(every=0.02))
    with HostileServer(scripts) as server:
        config = client_config(server, media=MediaType.AUDIO)
        run = drive(driver, config, when=long_enough, timeout=15.0)
        assert server.connections("/audio") == 1
    connected = run.of(ev.MediaConnected)
    assert [c.confirmed for c in connected] == [False]
    assert not run.of(ev.ConnectionFailed)
    assert not run.of(ev.ReconnectScheduled)
    # One packet every 20 ms for over 4 s: no gap (the timestamps go up by 20 each).
    stamps = [a.timestamp for a in run.of(ev.AudioReceived)]
    assert len(stamps) > 100
    assert stamps == list(range(0, 20 * len(stamps), 20))
    assert run.ended is not None and run.ended.why is ev.EndReason.STOPPED_LOCALLY
