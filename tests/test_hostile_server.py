"""The client against a hostile server of our own (``tests/hostile.py``: raw sockets,
hand-made frames): what held when issue 10's attack was run, and must keep holding.

Each test asserts a resource bound besides the behaviour: peak memory, number of
connections, what the client wrote, time to notice or to exit, and (every test)
no descriptor or server thread left behind.  Scenarios that reproduce issue 10's
open defects are exercised here only for what holds before and after their fix.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hostile import (
    BINARY,
    CLOSE,
    CONT,
    DRIVERS,
    FAST_CONN,
    FAST_TRANSPORT,
    PING,
    PONG,
    TEXT,
    BadFrame,
    Driver,
    Drop,
    Flood,
    HostileServer,
    JsonObject,
    MemoryProbe,
    Peer,
    Stage,
    accept_key,
    apply_mask,
    audio_msg,
    bad_frame,
    bare_lf_upgrade,
    client_config,
    drive,
    drop_during_handshake,
    event_msg,
    flood_unread,
    frame,
    handshake_then_drop,
    huge_header,
    in_turn,
    keep_alive_msg,
    many_containers,
    media_without_handshake_answer,
    no_leaks,
    repeat,
    routes,
    serve_media,
    serve_signaling,
    stop_reading_after_handshake,
    stream_state_msg,
    unnamed_interruption,
)

from rtms_proto import BackoffPolicy, Jitter, MediaType, RemoteProtocolError, SocketRole
from rtms_proto import events as ev
from rtms_proto.enums import FailureReason

SLACK = 1.0
"""Scheduling allowance on a loaded 2-core machine (seconds)."""

KiB = 1024
MiB = 1024 * KiB


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """Every test: no descriptor and no server thread outlives it."""
    with no_leaks():
        yield


def is_(kind: type[Any]) -> Callable[[ev.Event], bool]:
    """``until=``: the first event of ``kind``."""
    return lambda event: isinstance(event, kind)


def reconnected(scope: ev.ReconnectScope) -> Callable[[ev.Event], bool]:
    return lambda e: isinstance(e, ev.ReconnectCompleted) and e.scope is scope


def assert_stopped_cleanly(events: list[ev.Event]) -> None:
    """The last event is the local stop, and nothing failed on the way out."""
    assert isinstance(events[-1], ev.SessionEnded), events[-1]
    assert events[-1].why is ev.EndReason.STOPPED_LOCALLY


# --------------------------------------------------------------------------- the toolkit itself


def test_the_toolkit_frames_as_rfc_6455_says() -> None:
    """The examples of RFC 6455 (§1.3, §5.7), so the hostile frames are the ones meant."""
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert frame(TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")
    masked = frame(TEXT, b"Hello", mask=bytes.fromhex("37fa213d"))
    assert masked == bytes.fromhex("818537fa213d7f9f4d5158")
    assert apply_mask(bytes.fromhex("37fa213d"), masked[6:]) == b"Hello"
    assert frame(TEXT, b"Hel", fin=False) + frame(CONT, b"lo") == bytes.fromhex(
        "010348656c80026c6f"
    )
    assert frame(PING, b"Hello") == bytes.fromhex("890548656c6c6f")
    assert frame(BINARY, b"\0" * 256)[:4] == bytes.fromhex("827e0100")
    assert frame(BINARY, b"\0" * 65536)[:10] == bytes.fromhex("827f0000000000010000")
    assert frame(BINARY, length=1 << 40) == bytes.fromhex("827f0000010000000000")
    assert frame(TEXT, b"ab", length_bytes=8) == bytes.fromhex("817f00000000000000026162")


# --------------------------------------------------------------------------- frame size cap

LIMIT = 64 * KiB


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize(
    ("announced", "streamed"),
    [(1 << 40, 4 * MiB), (LIMIT + 1, LIMIT + 1)],
    ids=["1TiB-announced-4MiB-sent", "limit+1"],
)
def test_a_frame_header_over_the_cap_is_refused_before_the_payload_is_buffered(
    driver: Driver, announced: int, streamed: int
) -> None:
    """The cap is applied to the header: the socket fails at once (1009), the payload is
    never held in memory, and the session reconnects signaling."""
    options = dataclasses.replace(FAST_CONN, max_message_size=LIMIT)
    first = huge_header(announced, stream=streamed)
    table = routes(signaling=in_turn(first, then=serve_signaling()))
    with HostileServer(table) as server, MemoryProbe() as memory:
        run = drive(
            driver,
            client_config(server, options=options),
            until=reconnected(ev.ReconnectScope.SIGNALING),
        )
    failed = run.of(ev.ConnectionFailed)
    assert [(f.sock.role, f.reason) for f in failed] == [
        (SocketRole.SIGNALING, FailureReason.MESSAGE_TOO_BIG)
    ]
    assert_stopped_cleanly(run.events)
    assert memory.peak < 1 * MiB, memory.peak
    assert server.connections("/signaling") == 2
    doomed = server.peers_on("/signaling")[0]
    assert doomed.close_code == 1009
    # Its messages, then one close frame: nothing after the failure but the goodbye.
    assert doomed.frames[-1].opcode == CLOSE
    assert all(f.opcode == TEXT for f in doomed.frames[:-1])


# ----------------------------------------------------------------- frames that break RFC 6455


def send_bad(kind: BadFrame) -> Callable[[Peer], None]:
    """A ``then=`` step: the bad frame, then read until the client closes."""

    def step(peer: Peer) -> None:
        peer.send(bad_frame(kind))
        peer.wait_closed()

    return step


@pytest.mark.parametrize("kind", list(BadFrame), ids=[k.value for k in BadFrame])
def test_a_bad_frame_fails_that_media_socket_only_and_the_session_goes_on(kind: BadFrame) -> None:
    """A protocol error on one media socket is that socket's typed failure: it says
    why in a close frame, writes nothing more, and only that socket is rebuilt."""
    audio = in_turn(serve_media(then=send_bad(kind)), then=serve_media())
    with HostileServer(routes(audio=audio)) as server:
        run = drive("asyncio", client_config(server), until=reconnected(ev.ReconnectScope.MEDIA))
    failed = run.of(ev.ConnectionFailed)
    assert [(f.sock.role, f.reason) for f in failed] == [
        (SocketRole.AUDIO, FailureReason.PROTOCOL_ERROR)
    ]
    assert failed[0].retryable
    assert_stopped_cleanly(run.events)
    assert server.connections("/signaling") == 1
    assert server.connections("/audio") == 2
    doomed = server.peers_on("/audio")[0]
    assert [f.opcode for f in doomed.frames] == [TEXT, CLOSE]  # handshake, then goodbye
    expected = 1007 if kind is BadFrame.INVALID_UTF8_TEXT else 1002
    assert doomed.close_code == expected


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize(
    "kind", [BadFrame.MASKED, BadFrame.RSV1, BadFrame.RESERVED_DATA_OPCODE], ids=lambda k: k.value
)
def test_a_bad_frame_on_signaling_is_a_typed_failure_and_signaling_comes_back(
    driver: Driver, kind: BadFrame
) -> None:
    """On every driver: a protocol error on signaling is its typed failure (1002),
    signaling is rebuilt, and stopping afterwards is prompt."""
    signaling = in_turn(serve_signaling(then=send_bad(kind)), then=serve_signaling())
    with HostileServer(routes(signaling=signaling)) as server:
        run = drive(driver, client_config(server), until=reconnected(ev.ReconnectScope.SIGNALING))
    failed = run.of(ev.ConnectionFailed)
    assert [(f.sock.role, f.reason) for f in failed] == [
        (SocketRole.SIGNALING, FailureReason.PROTOCOL_ERROR)
    ]
    assert_stopped_cleanly(run.events)
    assert server.connections("/signaling") == 2
    assert server.peers_on("/signaling")[0].close_code == 1002
    assert run.exit_seconds is not None and run.exit_seconds < SLACK


# ----------------------------------------------------------------- media URLs and the allowlist

TRICKS = [
    "ws://evil.invalid/audio",
    "wss://evil.invalid:443/audio",
    "ws://EVIL.invalid/audio",
    "ws://evil.invalid@{here}/audio",
    "ws://{here}@evil.invalid/audio",
    "ws://evil.invalid?@{here}/audio",
    "ws://evil.invalid#@{here}/audio",
    "ws://evil.invalid\\@{here}/audio",
    "ws://127.0.0.1.evil.invalid:{port}/audio",
    "ws://localhost:{port}/audio",
    "ws://[::1]:{port}/audio",
    "ws://[::ffff:127.0.0.1]:{port}/audio",
    "ws://2130706433:{port}/audio",
    "ws://0x7f.0.0.1:{port}/audio",
    "ws://127.1:{port}/audio",
    "ws://0177.0.0.1:{port}/audio",
    "file:///etc/passwd",
    "http://{here}/audio",
    "ws://{here}/audio\r\nX-Injected: 1",
    "ws://{here}/au dio",
]


@pytest.mark.parametrize("trick", TRICKS)
def test_a_media_url_outside_the_allowlist_is_refused_and_the_rest_goes_on(trick: str) -> None:
    """Only 127.0.0.1 is allowed: the trick URL is never dialled (nothing but signaling
    and transcript reaches the listener, even tricks that would resolve to it)."""
    offer: dict[str, str] = {}  # filled in once the port is known, read at the handshake
    with HostileServer(routes(signaling=serve_signaling(offer))) as server:
        offer["audio"] = trick.format(here=f"127.0.0.1:{server.port}", port=server.port)
        offer["transcript"] = server.url("/transcript")
        run = drive(
            "asyncio",
            client_config(server, media=MediaType.AUDIO | MediaType.TRANSCRIPT),
            until=is_(ev.MediaConnected),
        )
        assert server.accepted == 2
        assert server.connections("/transcript") == 1
    unavailable = run.of(ev.MediaUnavailable)
    assert [u.media_type for u in unavailable] == [MediaType.AUDIO]
    assert [c.media_type for c in run.of(ev.MediaConnected)] == [MediaType.TRANSCRIPT]
    assert not run.of(ev.ConnectionFailed)
    assert_stopped_cleanly(run.events)


def test_when_no_media_url_is_allowed_the_session_ends_at_once_without_retrying() -> None:
    """Nothing left to open is fatal (not retried): one connection in all, ended in a second."""
    offer = {"audio": "ws://evil.invalid/audio", "transcript": "ws://localhost:1/transcript"}
    media = MediaType.AUDIO | MediaType.TRANSCRIPT
    with HostileServer(routes(signaling=serve_signaling(offer))) as server:
        run = drive("asyncio", client_config(server, media=media))
        assert server.accepted == 1
    unavailable = [u.media_type for u in run.of(ev.MediaUnavailable)]
    assert unavailable == [MediaType.AUDIO, MediaType.TRANSCRIPT]
    end = run.ended
    assert end is not None and end.why is ev.EndReason.FATAL_ERROR
    assert end.error is not None and end.error.reason is FailureReason.MEDIA_NOT_AVAILABLE
    assert not run.of(ev.ReconnectScheduled)
    assert run.seconds < SLACK


# ----------------------------------------------------------------- retries during the handshake

RETRY = BackoffPolicy(
    initial=0.1, factor=2.0, cap=1.0, jitter=Jitter.NONE, max_attempts=3, window=5
)
NO_FAIL_FAST = dataclasses.replace(FAST_TRANSPORT, fail_fast=False)


@pytest.mark.parametrize("stage", list(Stage), ids=[s.value for s in Stage])
def test_a_server_that_ends_the_handshake_is_retried_on_the_backoff_schedule(stage: Stage) -> None:
    """Two connections ended mid-handshake, then a good one: retries come after the
    policy's delays (0.1 s, then 0.2 s), not sooner, and stop once connected."""
    signaling = repeat(drop_during_handshake(stage), 2, then=serve_signaling())
    with HostileServer(routes(signaling=signaling)) as server:
        run = drive(
            "asyncio",
            client_config(server, backoff=RETRY),
            options=NO_FAIL_FAST,
            until=is_(ev.MediaConnected),
        )
        times = server.connect_times("/signaling")
        assert server.handshakes("/signaling") == 1
    assert run.error is None
    scheduled = [(r.attempt, r.delay) for r in run.of(ev.ReconnectScheduled)]
    assert scheduled == [(1, 0.1), (2, 0.2)]
    assert [c.attempts for c in run.of(ev.ReconnectCompleted)] == [2]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2
    for gap, delay in zip(gaps, (0.1, 0.2), strict=True):
        assert delay - 0.02 <= gap < delay + SLACK
    assert_stopped_cleanly(run.events)


def test_a_server_that_never_completes_the_handshake_is_given_up_after_max_attempts() -> None:
    """max_attempts=3: four connections in all, then ``connect()`` raises the last
    failure, within the policy's delays (0.1 + 0.2 + 0.4 s)."""
    with HostileServer(routes(signaling=drop_during_handshake(Stage.AFTER_REQUEST))) as server:
        run = drive("asyncio", client_config(server, backoff=RETRY), options=NO_FAIL_FAST)
        assert server.connections("/signaling") == 1 + 3
    assert isinstance(run.error, RemoteProtocolError)
    assert run.error.reason is FailureReason.CONNECTION_LOST
    assert run.seconds < 0.1 + 0.2 + 0.4 + SLACK


def test_retries_never_start_after_the_backoff_window() -> None:
    """Unlimited attempts, a 0.5 s window: the number of connections is bounded by it."""
    policy = BackoffPolicy(
        initial=0.15, factor=1.0, cap=0.15, jitter=Jitter.NONE, max_attempts=None, window=0.5
    )
    with HostileServer(routes(signaling=drop_during_handshake(Stage.BEFORE_UPGRADE))) as server:
        run = drive("asyncio", client_config(server, backoff=policy), options=NO_FAIL_FAST)
        times = server.connect_times("/signaling")
    assert isinstance(run.error, RemoteProtocolError)
    # At 0, then at best 0.15, 0.3, 0.45 and one last at the window's end (0.5).
    assert 2 <= len(times) <= 5
    assert times[-1] - times[0] < 0.5 + SLACK


# --------------------------------------------------------------------------- keep-alives

KEEPALIVES: list[tuple[int | None, int | None]] = [
    (1_700_000_000_123, 1),
    (0, 0),
    (2**63 - 1, 2**32 + 5),
    (42, None),
    (None, 7),
    (None, None),
]


@pytest.mark.parametrize("driver", DRIVERS)
def test_keep_alives_are_answered_at_once_with_the_same_timestamp_and_sequence(
    driver: Driver,
) -> None:
    """On signaling and media, in text and binary frames: one answer per request,
    echoing exactly the fields sent, each within a second."""
    answers: dict[str, list[tuple[JsonObject, float]]] = {"/signaling": [], "/audio": []}
    audio_done = threading.Event()

    def ask(peer: Peer) -> None:
        for n, (timestamp, sequence) in enumerate(KEEPALIVES):
            sent = time.monotonic()
            peer.send_json(keep_alive_msg(timestamp, sequence), binary=n % 2 == 1)
            answers[peer.path].append((peer.expect(13), time.monotonic() - sent))

    def signaling(peer: Peer) -> None:
        ask(peer)
        if not audio_done.wait(5):
            raise TimeoutError("the audio socket did not finish its keep-alives")
        peer.send_json(stream_state_msg(4, reason=6))  # TERMINATED, MEETING_ENDED
        peer.hold()

    def audio(peer: Peer) -> None:
        ask(peer)
        audio_done.set()
        peer.hold()

    with HostileServer(
        routes(signaling=serve_signaling(then=signaling), audio=serve_media(then=audio))
    ) as server:
        run = drive(driver, client_config(server))
    for path, got in answers.items():
        expected = [{**keep_alive_msg(t, s), "msg_type": 13} for t, s in KEEPALIVES]
        assert [a for a, _ in got] == expected, path
        assert max(seconds for _, seconds in got) < SLACK
        peer = server.peers_on(path)[0]
        assert sum(1 for m in peer.messages if m.get("msg_type") == 13) == len(KEEPALIVES)
    end = run.ended
    assert end is not None and end.why is ev.EndReason.STREAM_TERMINATED
    assert not run.of(ev.ConnectionFailed)


# ----------------------------------------------------------------- messages that are not RTMS

GARBAGE = [
    b"{not json",
    b"\xff\xfe not UTF-8",
    b"[]",
    b"null",
    b"{}",
    b'{"msg_type":"x"}',
    b'{"msg_type":14,"content":{"data":"!!!"}}',
    b'{"msg_type":12,"timestamp":1e400}',
]


@pytest.mark.parametrize("driver", DRIVERS)
def test_invalid_json_is_a_malformed_message_and_the_stream_goes_on(driver: Driver) -> None:
    """Each bad message is one MalformedMessage on its socket; the socket stays, the
    next message is delivered, and the client answers none of them."""

    def junk(then: JsonObject) -> Callable[[Peer], None]:
        def step(peer: Peer) -> None:
            for data in GARBAGE:
                peer.send_frame(BINARY, data)
            peer.send_frame(TEXT, many_containers(1000))
            peer.send_json(then)
            peer.hold()

        return step

    speaker = event_msg(2, user_id=5, user_name="Ada", timestamp=3)
    audio = audio_msg(b"\x01\x02" * 320, user_id=0, timestamp=20)
    seen: set[type[Any]] = set()

    def both(event: ev.Event) -> bool:
        seen.add(type(event))
        return {ev.ActiveSpeakerChanged, ev.AudioReceived} <= seen

    with HostileServer(
        routes(signaling=serve_signaling(then=junk(speaker)), audio=serve_media(then=junk(audio)))
    ) as server:
        run = drive(driver, client_config(server), until=both)
        for path in ("/signaling", "/audio"):
            assert server.connections(path) == 1
    malformed = run.of(ev.MalformedMessage)
    by_role = {role: [m for m in malformed if m.sock.role is role] for role in SocketRole}
    assert len(by_role[SocketRole.SIGNALING]) == len(by_role[SocketRole.AUDIO]) == len(GARBAGE)
    assert [a.data for a in run.of(ev.AudioReceived)] == [b"\x01\x02" * 320]
    assert [(s.user_id, s.user_name) for s in run.of(ev.ActiveSpeakerChanged)] == [(5, "Ada")]
    assert len(run.of(ev.UnknownEventReceived)) == 2
    assert not run.of(ev.ConnectionFailed) and not run.of(ev.ReconnectScheduled)
    assert_stopped_cleanly(run.events)
    audio_peer = server.peers_on("/audio")[0]
    assert [f.opcode for f in audio_peer.frames] == [TEXT, CLOSE]
    assert audio_peer.bytes_in < 1 * KiB  # upgrade, handshake, close: no answer to any junk


def test_a_fragmented_message_with_a_ping_between_fragments_is_reassembled() -> None:
    """Fragments with a control frame between them (RFC 6455 §5.4): the ping is
    answered with the same payload, the message arrives whole."""
    whole = json.dumps(audio_msg(b"\x07" * 640, timestamp=40)).encode()
    third = len(whole) // 3

    def fragments(peer: Peer) -> None:
        peer.send_frame(TEXT, whole[:third], fin=False)
        peer.send_frame(PING, b"are you there")
        peer.send_frame(CONT, whole[third : 2 * third], fin=False)
        peer.send_frame(CONT, whole[2 * third :])
        peer.hold()

    with HostileServer(routes(audio=serve_media(then=fragments))) as server:
        run = drive("asyncio", client_config(server), until=is_(ev.AudioReceived))
    assert [a.data for a in run.of(ev.AudioReceived)] == [b"\x07" * 640]
    pongs = [f.payload for f in server.peers_on("/audio")[0].frames if f.opcode == PONG]
    assert pongs == [b"are you there"]
    assert not run.of(ev.MalformedMessage) and not run.of(ev.ConnectionFailed)


# --------------------------------------------------------------------------- issue 10's scenarios
# These servers reproduce open defects of issue 10; the assertions below are only
# what holds before and after their fix (that a loss is noticed and named, that
# leaving by an exception is prompt, that stopping ends the session cleanly).

LOSS_REASON = {
    Drop.FIN: FailureReason.CONNECTION_LOST,
    Drop.RESET: FailureReason.CONNECTION_LOST,
    Drop.CLOSE_1000: FailureReason.CLOSED_BY_SERVER,
    Drop.SILENCE: FailureReason.KEEPALIVE_TIMEOUT,
}


@pytest.mark.parametrize("how", list(Drop), ids=[d.value for d in Drop])
def test_a_drop_right_after_the_handshake_is_noticed_and_named(how: Drop) -> None:
    """Defect 1's server (handshake, then drop at once): the first loss is reported
    with its reason, a silent one within the liveness timeout."""
    options = dataclasses.replace(FAST_CONN, keepalive_timeout=0.5)
    signaling = repeat(handshake_then_drop(how), 1, then=serve_signaling())

    def lost(event: ev.Event) -> bool:
        if isinstance(event, ev.SocketClosed):
            return event.by_peer
        return isinstance(event, ev.ConnectionFailed)

    with HostileServer(routes(signaling=signaling)) as server:
        run = drive("asyncio", client_config(server, options=options), until=lost)
        assert server.handshakes("/signaling") >= 1
    connected = run.of(ev.SignalingConnected)
    assert connected
    losses = [
        e for e in run.events if isinstance(e, ev.ConnectionFailed | ev.SocketClosed) and lost(e)
    ]
    loss = losses[0]
    if isinstance(loss, ev.SocketClosed):
        assert how is Drop.CLOSE_1000 and loss.code == 1000
    else:
        assert loss.reason is LOSS_REASON[how]
    assert loss.sock == connected[0].sock
    assert run.seconds < (0.5 if how is Drop.SILENCE else 0) + SLACK
    assert_stopped_cleanly(run.events)


@pytest.mark.parametrize("driver", DRIVERS)
def test_leaving_by_an_exception_is_prompt_when_the_server_stops_reading(driver: Driver) -> None:
    """Defect 2's server (never reads after the handshake, keeps sending keep-alives):
    leaving the stream by an exception closes everything at once."""
    signaling = stop_reading_after_handshake(keep_alive_every=0.01)
    with HostileServer(routes(signaling=signaling)) as server:
        run = drive(
            driver,
            client_config(server),
            when=lambda: any(p.sent["keepalive"] >= 20 for p in server.peers_on("/signaling")),
            leave="abort",
        )
    assert run.exit_seconds is not None and run.exit_seconds < SLACK
    assert run.of(ev.SignalingConnected)


@pytest.mark.parametrize("kind", list(Flood), ids=[k.value for k in Flood])
def test_leaving_by_an_exception_is_prompt_while_an_unread_server_floods(kind: Flood) -> None:
    """Defect 4's server (floods pings or keep-alives, never reads): the flood is
    sent, and leaving by an exception still closes at once."""
    signaling = flood_unread(kind, max_bytes=128 * KiB, seconds=5.0)
    key = "ping" if kind is Flood.PING else "keepalive"
    with HostileServer(routes(signaling=signaling), rcvbuf=4096) as server:
        run = drive(
            "asyncio",
            client_config(server),
            when=lambda: any(p.bytes_out >= 128 * KiB for p in server.peers_on("/signaling")),
            leave="abort",
        )
        flooder = server.peers_on("/signaling")[0]
    assert flooder.sent[key] > 128 * KiB // 128  # at most 127 bytes each
    assert run.exit_seconds is not None and run.exit_seconds < SLACK


DEFECT_SCENARIOS: dict[
    str, tuple[Callable[[], dict[str, Any]], Callable[[HostileServer], bool]]
] = {
    "16-bare-lf-upgrade": (
        lambda: routes(signaling=bare_lf_upgrade()),
        lambda s: s.handshakes("/signaling") == 1 and s.handshakes("/audio") == 1,
    ),
    "17-unnamed-interruption": (
        lambda: unnamed_interruption("audio"),
        lambda s: s.handshakes("/audio") == 2,
    ),
    "20-media-without-handshake-answer": (
        lambda: routes(audio=media_without_handshake_answer()),
        lambda s: any(p.sent["audio"] >= 5 for p in s.peers_on("/audio")),
    ),
}


@pytest.mark.parametrize("name", list(DEFECT_SCENARIOS))
def test_the_other_defect_servers_do_their_part_and_stopping_still_ends_cleanly(
    name: str,
) -> None:
    """Defects 16, 17 and 20: a bare-LF upgrade with a frame behind it; event 7 naming
    no socket, then that media socket drops; a media socket that never answers its
    handshake but streams audio.  Stopping ends the session within the close timeout."""
    table, done = DEFECT_SCENARIOS[name]
    with HostileServer(table()) as server:
        run = drive("asyncio", client_config(server), when=lambda: done(server), timeout=5)
    assert_stopped_cleanly(run.events)
    assert run.exit_seconds is not None
    assert run.exit_seconds < FAST_CONN.close_timeout + SLACK
