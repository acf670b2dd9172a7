"""The WebSocket layer (_ws.py), driven through the connection machines.

_ws is private: everything here goes through SignalingConnection's public
inputs and outputs.  Machine-level consequences (failure events, close codes)
are in test_connection.py; this file pins the framing: the upgrade request,
frame sizes, chunking, control frames and close frames.
"""

from __future__ import annotations

import json

import pytest
from conn_harness import (
    SIG,
    SIGNALING_OK,
    Close,
    Item,
    Pong,
    Upgrade,
    Wire,
    media,
    open_server_peer,
    reach,
    signaling,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from wsproto.events import BytesMessage, TextMessage

from rtms_proto import ConnectionOptions, ConnState, RemoteProtocolError
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import CloseSocket, SendBytes
from rtms_proto.enums import FailureReason


def unknown(pad: str) -> tuple[str, ev.UnknownMessageReceived]:
    """A message of an unknown type padded with ``pad`` and the event it gives."""
    text = '{"msg_type":99,"pad":"' + pad + '"}'
    return text, ev.UnknownMessageReceived(sock=SIG, msg_type=99, raw={"msg_type": 99, "pad": pad})


def test_upgrade_request_is_a_plain_websocket_upgrade() -> None:
    conn = signaling()
    w = Wire(conn)
    conn.start(now=0.0)
    conn.socket_opened(now=0.0)
    assert w.drain()[1:] == [Upgrade(host="rtms-sjc1.zoom.us", target="/signaling?id=7")]
    request = w.peer.requests[0]
    assert request.subprotocols == []
    assert request.extensions == []  # no permessage-deflate: frames arrive uncompressed
    headers = {bytes(k).lower(): bytes(v) for k, v in request.extra_headers}
    assert headers.keys() == {
        b"upgrade",
        b"connection",
        b"sec-websocket-key",
        b"sec-websocket-version",
    }
    assert headers[b"upgrade"] == b"websocket"
    assert headers[b"sec-websocket-version"] == b"13"


def _relined(answer: bytes, line_end: bytes, blank: bytes) -> bytes:
    """The 101 answer with other line ends: ``line_end`` after each line, ``blank`` last."""
    lines = answer.split(b"\r\n")
    assert lines[-2:] == [b"", b""]
    return b"".join(line + line_end for line in lines[:-2]) + blank


@pytest.mark.parametrize(
    ("line_end", "blank"),
    [(b"\n", b"\n"), (b"\n", b"\r\n"), (b"\r\n", b"\n")],
    ids=["LF", "LF-CRLF", "CRLF-LF"],
)
def test_an_upgrade_answer_with_bare_lf_keeps_the_frames_read_with_it(
    line_end: bytes, blank: bytes
) -> None:
    """A head ends at a blank line however its lines end (LF or CRLF, as h11 reads
    it); the frames after it, in the same read or cut anywhere, all reach the reader."""
    reference = signaling()
    w = reach(reference, ConnState.UPGRADING)
    crlf_answer = w.take_answers()
    frames = w.peer.send(m.KeepAliveRequest(timestamp=5, sequence=1)) + w.peer.send(SIGNALING_OK)
    reference.receive_data(crlf_answer + frames, now=1.0)
    expected = w.drain()
    assert [type(o) for o in expected] == [
        m.SignalingHandshakeRequest,
        m.KeepAliveResponse,
        ev.SignalingConnected,
    ]
    for cut in range(len(crlf_answer) - 8, len(crlf_answer) + len(frames) + 1):
        conn = signaling()
        w = reach(conn, ConnState.UPGRADING)
        # Each connection's answer carries its own accept token.
        data = _relined(w.take_answers(), line_end, blank) + frames
        conn.receive_data(data[:cut], now=1.0)
        conn.receive_data(data[cut:], now=1.0)
        assert w.drain() == expected, cut
        assert conn.state is ConnState.OPEN


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_every_payload_length_encoding(size: int, binary: bool) -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    pad = "p" * max(0, size - 22)
    text, event = unknown(pad)
    conn.receive_data(w.peer.send(text, binary=binary), now=1.0)
    assert w.drain() == [event]


def test_a_stream_of_frames_fed_byte_by_byte() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    peer = w.peer
    first, first_event = unknown("a" * 200)
    second, second_event = unknown("b")
    data = (
        peer.send(first)
        + peer.ping(b"x")
        + peer.send(second, binary=True)
        + peer.send(m.KeepAliveRequest(timestamp=4, sequence=5))
    )
    got: list[object] = []
    now = 0.0
    for i in range(len(data)):
        now += 0.001
        conn.receive_data(data[i : i + 1], now=now)
        got += w.drain()
    assert got == [
        first_event,
        Pong(b"x"),
        second_event,
        m.KeepAliveResponse(timestamp=4, sequence=5),
    ]


@pytest.mark.parametrize("cut", range(1, 12))
def test_a_large_frame_cut_inside_or_after_its_header(cut: int) -> None:
    """An 8-byte length and its payload may arrive in any number of reads."""
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    text, event = unknown("z" * 70_000)
    data = w.peer.send(text, binary=True)
    assert data[1] == 127  # the 8-byte length form
    pieces = [data[:cut], data[cut:12]] + [data[i : i + 4096] for i in range(12, len(data), 4096)]
    for piece in pieces:
        conn.receive_data(piece, now=1.0)
    assert w.drain() == [event]


def test_bytearray_input_reads_like_bytes() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    text, event = unknown("ba")
    conn.receive_data(bytearray(w.peer.send(text, binary=True)), now=1.0)
    assert w.drain() == [event]


def test_many_frames_in_one_chunk_come_out_in_order() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    texts = [unknown(str(i)) for i in range(20)]
    data = b"".join(w.peer.send(text, binary=i % 2 == 1) for i, (text, _) in enumerate(texts))
    conn.receive_data(data, now=1.0)
    assert w.drain() == [event for _, event in texts]


def test_text_frames_give_text_and_binary_frames_bytes_to_the_decoder() -> None:
    """Both decode the same; a binary frame need not be valid UTF-8 at the frame level."""
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    text, event = unknown("ü")
    conn.receive_data(w.peer.send(text), now=1.0)
    conn.receive_data(w.peer.ws.send(BytesMessage(data=text.encode())), now=1.0)
    assert w.drain() == [event, event]


@pytest.mark.parametrize("payload", [b"", b"ping", bytes(range(125))])
def test_pong_echoes_the_ping_payload(payload: bytes) -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(w.peer.ping(payload), now=1.0)
    assert w.drain() == [Pong(payload)]


def test_a_ping_after_our_close_frame_is_not_answered() -> None:
    conn = signaling()
    w = reach(conn, ConnState.CLOSING)
    conn.receive_data(open_server_peer().ping(b"late"), now=1.0)
    assert w.drain() == []
    assert conn.state is ConnState.CLOSING


def test_a_control_frame_over_125_bytes_is_a_protocol_error() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(b"\x89\x7e\x00\x80" + b"x" * 128, now=1.0)
    assert w.drain() == [
        ev.ConnectionFailed(
            sock=SIG,
            error=RemoteProtocolError(
                FailureReason.PROTOCOL_ERROR, "control frame longer than 125 bytes"
            ),
        ),
        Close(1002, ""),
        CloseSocket(sock=SIG),
    ]


def test_a_new_message_inside_a_fragmented_one_is_a_protocol_error() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    data = w.peer.ws.send(TextMessage(data='{"msg', message_finished=False))
    data += b"\x81\x00"  # a new text frame instead of a continuation
    conn.receive_data(data, now=1.0)
    assert w.drain() == [
        ev.ConnectionFailed(
            sock=SIG,
            error=RemoteProtocolError(
                FailureReason.PROTOCOL_ERROR, "new message inside a fragmented one"
            ),
        ),
        Close(1002, ""),
        CloseSocket(sock=SIG),
    ]


def test_the_reply_to_our_close_frame_is_not_answered_again() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.close(code=1001, reason="leaving", now=1.0)
    assert w.drain() == [Close(1001, "leaving")]
    reply = w.take_answers()
    assert reply
    conn.receive_data(reply, now=1.5)
    assert w.drain() == [
        CloseSocket(sock=SIG),
        ev.SocketClosed(sock=SIG, by_peer=False, code=1001, reason="leaving"),
    ]
    assert len(w.peer.closes) == 1


def test_a_close_reply_with_another_code_is_reported_as_sent() -> None:
    conn = signaling()
    w = reach(conn, ConnState.CLOSING)
    conn.receive_data(open_server_peer().close(4002, "bye now"), now=1.0)
    assert w.drain() == [
        CloseSocket(sock=SIG),
        ev.SocketClosed(sock=SIG, by_peer=False, code=4002, reason="bye now"),
    ]


def test_data_after_a_close_frame_is_not_read() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    text, _ = unknown("late")
    data = w.peer.close(1000, "") + open_server_peer().send(text) + b"\x83\x00"
    conn.receive_data(data, now=1.0)
    assert w.drain() == [
        Close(1000, ""),
        CloseSocket(sock=SIG),
        ev.SocketClosed(sock=SIG, by_peer=True, code=1000, reason=""),
    ]


@pytest.mark.parametrize("reason", ["", "ok", "ünïcödé", "x" * 123])
def test_peer_close_reasons_are_read_and_echoed(reason: str) -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(w.peer.close(3001, reason), now=1.0)
    assert w.drain() == [
        Close(3001, reason),
        CloseSocket(sock=SIG),
        ev.SocketClosed(sock=SIG, by_peer=True, code=3001, reason=reason),
    ]


def test_a_close_code_is_reported_as_a_plain_int() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(w.peer.close(1000, ""), now=1.0)
    closed = w.drain()[-1]
    assert isinstance(closed, ev.SocketClosed)
    assert type(closed.code) is int


def test_a_fragmented_message_over_the_limit_stops_reading() -> None:
    conn = signaling(options=ConnectionOptions(max_message_size=1024))
    w = reach(conn, ConnState.OPEN)
    data = w.peer.ws.send(BytesMessage(data=b"x" * 1000, message_finished=False))
    data += w.peer.ws.send(BytesMessage(data=b"y" * 100, message_finished=True))
    data += w.peer.close(1000, "")
    conn.receive_data(data, now=1.0)
    assert w.drain() == [
        ev.ConnectionFailed(
            sock=SIG,
            error=RemoteProtocolError(
                FailureReason.MESSAGE_TOO_BIG, "message exceeds the 1024-byte limit"
            ),
        ),
        Close(1009, ""),
        CloseSocket(sock=SIG),
    ]


# --- the frame reader against its specification ------------------------------------------------


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """One unmasked server frame, written from RFC 6455 §5.2 (minimal length encoding)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + size.to_bytes(2, "big")
    else:
        head += bytes([127]) + size.to_bytes(8, "big")
    return head + payload


def test_frames_written_from_the_rfc_read_like_wsprotos() -> None:
    """The hand-written framer agrees with wsproto's, so the property below tests the reader."""
    peer = open_server_peer()
    for size in (0, 5, 125, 126, 65535, 65536):
        text = "x" * size
        assert frame(1, text.encode()) == peer.ws.send(TextMessage(data=text))
        assert frame(2, text.encode()) == peer.ws.send(BytesMessage(data=text.encode()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(
        st.tuples(
            st.text(max_size=300),  # any characters: multi-byte ones get cut mid-character
            st.booleans(),  # binary frame
            st.lists(st.integers(min_value=0, max_value=2000), max_size=5),  # fragment cuts
            st.lists(st.booleans(), max_size=6),  # a ping before each fragment
        ),
        min_size=1,
        max_size=5,
    ),
    read_cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=10),
)
def test_fragments_pings_and_reads_change_nothing(
    messages: list[tuple[str, bool, list[int], list[bool]]], read_cuts: list[int]
) -> None:
    """The same messages, sent whole or cut into fragments at any byte (inside UTF-8
    characters too) with pings between the fragments, and read in any pieces, give
    the same events; every ping is answered, in order."""
    whole = b""
    cut = b""
    expected_pongs: list[object] = []
    for n, (pad, binary, cuts, pings) in enumerate(messages):
        payload = json.dumps({"msg_type": 99, "pad": pad}, ensure_ascii=False).encode()
        opcode = 2 if binary else 1
        whole += frame(opcode, payload)
        points = sorted({c % (len(payload) + 1) for c in cuts})
        parts = [payload[a:b] for a, b in zip([0, *points], [*points, len(payload)], strict=True)]
        for i, part in enumerate(parts):
            if i < len(pings) and pings[i]:
                ping = f"{n}.{i}".encode()
                cut += frame(0x9, ping)
                expected_pongs.append(Pong(ping))
            cut += frame(opcode if i == 0 else 0, part, fin=i == len(parts) - 1)

    def run(data: bytes, cuts: list[int]) -> tuple[list[object], list[object]]:
        conn = signaling()
        w = reach(conn, ConnState.OPEN)
        points = sorted(c % (len(data) + 1) for c in cuts)
        for a, b in zip([0, *points], [*points, len(data)], strict=True):
            conn.receive_data(data[a:b], now=1.0)
        out = w.drain()
        pongs: list[object] = [o for o in out if isinstance(o, Pong)]
        return [o for o in out if not isinstance(o, Pong)], pongs

    reference, no_pongs = run(whole, [])
    assert no_pongs == []
    assert len(reference) == len(messages)
    assert all(isinstance(e, ev.UnknownMessageReceived) for e in reference)
    assert run(cut, read_cuts) == (reference, expected_pongs)


# --- the fast path (receive_run) against the general reader --------------------------------------

AUDIO_JSON = json.dumps(
    {"msg_type": 14, "content": {"user_id": 7, "data": "AAEC", "timestamp": 1}}
).encode()


def _read(w: Wire, data: bytes, fast: bool) -> list[Item]:
    """Read ``data`` through the fast path when ``fast`` (falling back as the Session
    does), else through the general reader; the outputs, as the server decoded them."""
    conn = w.conn
    run = conn.receive_run(data, now=1.0) if fast else None
    if run is None:
        conn.receive_data(data, now=1.0)
        return w.drain()
    out, rest = run
    got = [w.decode(o) if isinstance(o, SendBytes) else o for o in out]
    if rest:
        conn.receive_data(b"", now=1.0)
    return got + w.drain()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    on_media=st.booleans(),
    before=st.sampled_from(["nothing", "a cut frame", "a fragment"]),
    opcode=st.sampled_from([0x0, 0x1, 0x1, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA]),
    fin=st.booleans(),
    payload=st.one_of(
        st.just(AUDIO_JSON),
        st.just(json.dumps({"msg_type": 12, "timestamp": 5}).encode()),
        st.text(max_size=150).map(lambda t: json.dumps({"msg_type": 99, "pad": t}).encode()),
        st.binary(max_size=150),  # invalid UTF-8 and JSON too
        st.integers(min_value=100, max_value=70_000).map(lambda n: AUDIO_JSON + b" " * n),
    ),
    long_header=st.booleans(),  # a 16-bit length even when 7 bits would do
    flip=st.integers(min_value=0, max_value=0xFFFF),  # xor into the first two bytes
    flip_it=st.sampled_from([False, False, True]),
    change=st.sampled_from([0, 0, 0, -1, 1, -3, 3]),  # cut or extend the read
    cap=st.sampled_from([1 << 20, 1024]),  # max_message_size
)
@example(  # just over the size cap
    on_media=True,
    before="nothing",
    opcode=1,
    fin=True,
    payload=AUDIO_JSON + b" " * 950,
    long_header=False,
    flip=0,
    flip_it=False,
    change=0,
    cap=1024,
)
@example(  # exactly at the size cap
    on_media=True,
    before="nothing",
    opcode=1,
    fin=True,
    payload=AUDIO_JSON + b" " * 949,
    long_header=False,
    flip=0,
    flip_it=False,
    change=0,
    cap=1024,
)
@example(  # a 16-bit length for a short message
    on_media=True,
    before="nothing",
    opcode=1,
    fin=True,
    payload=AUDIO_JSON,
    long_header=True,
    flip=0,
    flip_it=False,
    change=0,
    cap=1024,
)
@example(  # invalid UTF-8
    on_media=True,
    before="nothing",
    opcode=1,
    fin=True,
    payload=b'{"msg_type": 99, "pad": "\xff"}',
    long_header=False,
    flip=0,
    flip_it=False,
    change=0,
    cap=1024,
)
@example(  # a masked frame
    on_media=True,
    before="nothing",
    opcode=1,
    fin=True,
    payload=AUDIO_JSON,
    long_header=False,
    flip=0x80,
    flip_it=True,
    change=0,
    cap=1024,
)
def test_the_one_message_fast_path_reads_exactly_like_the_general_reader(
    *,
    on_media: bool,
    before: str,
    opcode: int,
    fin: bool,
    payload: bytes,
    long_header: bool,
    flip: int,
    flip_it: bool,
    change: int,
    cap: int,
) -> None:
    """Whatever one read holds (one whole text message, a cut or extended frame,
    another opcode, reserved or mask bits, a non-minimal length, bad UTF-8, a size
    over the cap) and whatever was read before it, Connection.receive_run either
    declines (and the general reader then gives the same as it would have alone) or
    gives exactly the general reader's outputs for what it read; and the socket reads
    the next message the same way after either."""
    data = frame(opcode, payload, fin=fin)
    if long_header and len(payload) < 126:
        data = bytes([data[0], 126]) + len(payload).to_bytes(2, "big") + payload
    if flip_it:
        data = bytes([data[0] ^ (flip >> 8), data[1] ^ (flip & 0xFF)]) + data[2:]
    if change < 0:
        data = data[:change]
    elif change > 0:
        data += frame(0x1, AUDIO_JSON)[:change]
    options = ConnectionOptions(max_message_size=cap)
    results = []
    for fast in (True, False):
        conn = media(options=options) if on_media else signaling(options=options)
        w = reach(conn, ConnState.OPEN)
        if before == "a cut frame":
            conn.receive_data(frame(0x1, AUDIO_JSON)[:3], now=1.0)
        elif before == "a fragment":
            conn.receive_data(frame(0x1, AUDIO_JSON[:5], fin=False), now=1.0)
        got = _read(w, data, fast)
        state = conn.state
        after = _read(w, frame(0x0 if before == "a fragment" else 0x1, AUDIO_JSON), fast)
        results.append((got, state, after, conn.state, conn.messages_received))
    assert results[0] == results[1]


def test_the_fast_path_takes_the_usual_read_and_declines_the_rest() -> None:
    """The property above must not pass by always declining: whole text messages on an
    open socket are read by it, a cut one is buffered and finished by the next read;
    bytes that are not bytes, or a socket not open, are not read."""
    conn = media()
    w = reach(conn, ConnState.OPEN)
    whole = frame(0x1, AUDIO_JSON)
    one = conn.receive_run(whole, now=1.0)
    assert one is not None and [type(o) for o in one[0]] == [ev.AudioReceived]
    assert one[1] is False  # every byte read
    out = conn.receive_run(whole * 2, now=1.0)
    assert out is not None and [type(o) for o in out[0]] == [ev.AudioReceived] * 2
    assert out[1] is False
    assert conn.receive_run(bytearray(whole), now=1.0) is None
    assert conn.receive_run(whole[:-1], now=1.0) == ([], False)  # buffered: a cut frame
    out = conn.receive_run(whole[-1:] + whole, now=1.0)
    assert out is not None and [type(o) for o in out[0]] == [ev.AudioReceived] * 2
    assert w.drain() == []
    closing = signaling()
    reach(closing, ConnState.CLOSING)
    assert closing.receive_run(whole, now=1.0) is None
