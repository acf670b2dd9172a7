"""The per-socket machine shared by signaling and media sockets, in explicit time.

Every test runs against both SignalingConnection and MediaConnection unless it
is about one of them; client bytes are checked by decoding them in the
server Peer (see conn_harness.Wire).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conn_harness import (
    AUDIO,
    CREDENTIALS,
    MEDIA_URL,
    SECRET,
    SIG,
    SIGNALING_URL,
    SIGNATURE,
    STREAM,
    Close,
    Pong,
    Upgrade,
    Wire,
    handshake_ok,
    media,
    open_server_peer,
    reach,
    signaling,
)
from wsproto.events import BytesMessage, TextMessage
from wsproto.events import Pong as WsPong

from rtms_proto import (
    ConnectionClosed,
    ConnectionOptions,
    DisallowedHost,
    InvalidConfig,
    LocalProtocolError,
    MediaConnection,
    MediaParams,
    RemoteProtocolError,
    SignalingConnection,
    StatusTable,
    StreamIdentity,
    parse_server_url,
)
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto._connection import Connection, ConnState
from rtms_proto.actions import CloseSocket, OpenSocket, SendBytes
from rtms_proto.enums import FailureReason, MediaType, Product

Make = Callable[..., Connection]
MAKERS = [pytest.param(signaling, id="signaling"), pytest.param(media, id="media")]


def failed(conn: Connection, reason: FailureReason, detail: str) -> ev.ConnectionFailed:
    return ev.ConnectionFailed(sock=conn.sock, error=RemoteProtocolError(reason, detail))


def connected(conn: Connection) -> ev.Event:
    if isinstance(conn, SignalingConnection):
        return ev.SignalingConnected(
            sock=SIG,
            media_urls={
                "audio": "wss://rtms-sjc1.zoom.us/audio",
                "video": "wss://rtms-sjc1.zoom.us/video",
                "all": "wss://rtms-sjc1.zoom.us/all",
            },
            region="sjc",
        )
    return ev.MediaConnected(sock=AUDIO, media_type=MediaType.AUDIO, params=MediaParams())


def audio(data: bytes = b"\x01\x02", timestamp: int = 7) -> m.AudioData:
    return m.AudioData(data=data, user_id=16778240, user_name="Ada", timestamp=timestamp)


def audio_event(data: bytes = b"\x01\x02", timestamp: int = 7) -> ev.AudioReceived:
    return ev.AudioReceived(data=data, user_id=16778240, user_name="Ada", timestamp=timestamp)


def _snapshot(conn: Connection) -> tuple[ConnState, float | None]:
    return conn.state, conn.next_deadline()


# --- configuration --------------------------------------------------------------------------


def test_connection_options_defaults() -> None:
    options = ConnectionOptions()
    assert options.handshake_timeout == 10.0
    assert options.keepalive_timeout == 35.0
    assert options.close_timeout == 5.0
    assert options.max_message_size == 16 * 1024 * 1024
    assert options.status_table is StatusTable.CURRENT
    assert options.allowed_hosts == ("zoom.us", "zoom.com", "zoomgov.com")
    assert options.client_agent == "rtms-proto"


@pytest.mark.parametrize("name", ["handshake_timeout", "keepalive_timeout", "close_timeout"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan")])
def test_connection_options_refuse_non_positive_timeouts(name: str, value: float) -> None:
    with pytest.raises(InvalidConfig, match=f"^{name} must be a positive number of seconds"):
        ConnectionOptions(**{name: value})  # type: ignore[arg-type]


def test_connection_options_refuse_a_tiny_message_limit() -> None:
    with pytest.raises(
        InvalidConfig, match="max_message_size must be at least 1024 bytes, not 1023"
    ):
        ConnectionOptions(max_message_size=1023)
    assert ConnectionOptions(max_message_size=1024).max_message_size == 1024


def test_stream_identity_refuses_empty_ids() -> None:
    with pytest.raises(InvalidConfig, match="instance_id must not be empty"):
        StreamIdentity(instance_id="", rtms_stream_id="s")
    with pytest.raises(InvalidConfig, match="rtms_stream_id must not be empty"):
        StreamIdentity(instance_id="i", rtms_stream_id="")


@pytest.mark.parametrize(
    ("product", "keys"),
    [
        (Product.MEETING, ("meeting_uuid",)),
        (Product.WEBINAR, ("meeting_uuid", "webinar_uuid")),
        (Product.VIDEO_SDK, ("meeting_uuid", "session_id")),
        (Product.CONTACT_CENTER, ("meeting_uuid", "engagement_id")),
        (Product.PHONE, ("meeting_uuid", "call_id")),
    ],
)
def test_stream_identity_id_keys(product: Product, keys: tuple[str, ...]) -> None:
    stream = StreamIdentity(instance_id="i", rtms_stream_id="s", product=product)
    assert stream.id_keys == keys


# --- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
def test_a_new_connection_is_idle_and_quiet(make: Make) -> None:
    conn = make()
    assert conn.state is ConnState.IDLE
    assert not conn.is_terminal
    assert conn.next_deadline() is None
    assert conn.drain() == []
    assert conn.options == ConnectionOptions()
    assert conn.stream == STREAM


def test_repr_names_kind_socket_state_and_url_only() -> None:
    conn = signaling()
    assert repr(conn) == f"<SignalingConnection signaling#1 idle {SIGNALING_URL}>"
    conn.start(now=0.0)
    assert repr(conn) == f"<SignalingConnection signaling#1 opening {SIGNALING_URL}>"
    assert repr(media()) == f"<MediaConnection audio#2 idle {MEDIA_URL}>"
    assert str(media()) == repr(media())


def test_url_may_be_given_parsed() -> None:
    url = parse_server_url("ws://127.0.0.1:8080/x", allowed_hosts=("127.0.0.1",))
    conn = SignalingConnection(sock=SIG, url=url, stream=STREAM, credentials=CREDENTIALS)
    assert conn.url is url


def test_url_is_checked_against_the_allowed_hosts() -> None:
    with pytest.raises(DisallowedHost):
        signaling(url="wss://evil.example.com/x")
    with pytest.raises(InvalidConfig, match="scheme must be ws or wss"):
        signaling(url="https://rtms.zoom.us/x")
    conn = signaling(
        url="wss://rtms.example.com/x", options=ConnectionOptions(allowed_hosts=("example.com",))
    )
    assert conn.url.host == "rtms.example.com"


# --- opening and upgrading ------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
def test_start_asks_for_the_socket_and_arms_the_handshake_deadline(make: Make) -> None:
    conn = make()
    now = 100.0
    conn.start(now=now)
    url = SIGNALING_URL if isinstance(conn, SignalingConnection) else MEDIA_URL
    assert conn.drain() == [
        OpenSocket(
            sock=conn.sock,
            url=url,
            host="rtms-sjc1.zoom.us",
            port=443,
            secure=True,
            resource=url.removeprefix("wss://rtms-sjc1.zoom.us"),
        )
    ]
    assert conn.state is ConnState.OPENING
    assert conn.next_deadline() == 110.0


@pytest.mark.parametrize(
    ("url", "allowed", "open_socket", "host_header"),
    [
        (
            "wss://rtms.zoom.us",
            ("zoom.us",),
            ("rtms.zoom.us", 443, True, "/"),
            "rtms.zoom.us",
        ),
        (
            "ws://rtms.zoom.us/s",
            ("zoom.us",),
            ("rtms.zoom.us", 80, False, "/s"),
            "rtms.zoom.us",
        ),
        (
            "wss://rtms.zoom.us:8443/s?a=1",
            ("zoom.us",),
            ("rtms.zoom.us", 8443, True, "/s?a=1"),
            "rtms.zoom.us:8443",
        ),
        (
            "ws://rtms.zoom.us:443/s",
            ("zoom.us",),
            ("rtms.zoom.us", 443, False, "/s"),
            "rtms.zoom.us:443",
        ),
        (
            "wss://[2001:DB8::1]/s",
            ("2001:db8::1",),
            ("2001:db8::1", 443, True, "/s"),
            "[2001:db8::1]",
        ),
        (
            "wss://[2001:db8::1]:8443/s",
            ("2001:db8::1",),
            ("2001:db8::1", 8443, True, "/s"),
            "[2001:db8::1]:8443",
        ),
        (
            "ws://127.0.0.1:9000/s",
            ("127.0.0.1",),
            ("127.0.0.1", 9000, False, "/s"),
            "127.0.0.1:9000",
        ),
    ],
)
def test_open_socket_fields_and_host_header_come_from_the_url(
    url: str,
    allowed: tuple[str, ...],
    open_socket: tuple[str, int, bool, str],
    host_header: str,
) -> None:
    conn = signaling(url=url, options=ConnectionOptions(allowed_hosts=allowed))
    w = Wire(conn)
    now = 0.0
    conn.start(now=now)
    host, port, secure, resource = open_socket
    assert w.drain() == [
        OpenSocket(sock=SIG, url=url, host=host, port=port, secure=secure, resource=resource)
    ]
    now += 0.25
    conn.socket_opened(now=now)
    assert w.drain() == [Upgrade(host=host_header, target=resource)]
    assert conn.state is ConnState.UPGRADING
    assert conn.next_deadline() == 10.0  # socket_opened does not move the handshake deadline


@pytest.mark.parametrize("make", MAKERS)
def test_upgrade_accepted_sends_the_rtms_handshake(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.UPGRADING, now=1.0)
    conn.receive_data(w.take_answers(), now=1.5)
    out = w.drain()
    assert len(out) == 1
    assert type(out[0]) is (
        m.SignalingHandshakeRequest
        if isinstance(conn, SignalingConnection)
        else m.MediaHandshakeRequest
    )
    assert conn.state is ConnState.HANDSHAKING
    assert conn.next_deadline() == 11.0


@pytest.mark.parametrize("make", MAKERS)
def test_upgrade_rejected_with_http_403_is_a_retryable_failure(make: Make) -> None:
    conn = make()
    w = Wire(conn, accept=False)
    now = 0.0
    conn.start(now=now)
    conn.socket_opened(now=now)
    w.drain()
    now += 0.5
    conn.receive_data(w.take_answers(), now=now)
    out = w.drain()
    assert out == [
        failed(
            conn,
            FailureReason.WEBSOCKET_UPGRADE_REJECTED,
            "server answered the upgrade with HTTP 403",
        ),
        CloseSocket(sock=conn.sock),
    ]
    assert isinstance(out[0], ev.ConnectionFailed)
    assert out[0].reason is FailureReason.WEBSOCKET_UPGRADE_REJECTED
    assert out[0].retryable
    assert conn.state is ConnState.FAILED
    assert conn.is_terminal
    assert conn.next_deadline() is None


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        (
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "bad upgrade response: Missing header, 'Connection: Upgrade'",
        ),
        (b"garbage\r\n\r\n", "bad upgrade response: Bad HTTP message"),
    ],
)
def test_a_bad_upgrade_response_is_a_protocol_error_without_a_close_frame(
    response: bytes, detail: str
) -> None:
    conn = signaling()
    w = reach(conn, ConnState.UPGRADING)
    conn.receive_data(response, now=1.0)
    out = w.drain()
    assert out == [failed(conn, FailureReason.PROTOCOL_ERROR, detail), CloseSocket(sock=SIG)]
    assert isinstance(out[0], ev.ConnectionFailed)
    assert out[0].retryable


def test_a_non_101_status_is_an_upgrade_rejection() -> None:
    conn = signaling()
    w = reach(conn, ConnState.UPGRADING)
    conn.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi", now=1.0)
    assert w.drain() == [
        failed(
            conn,
            FailureReason.WEBSOCKET_UPGRADE_REJECTED,
            "server answered the upgrade with HTTP 200",
        ),
        CloseSocket(sock=SIG),
    ]


def test_the_upgrade_response_may_arrive_byte_by_byte() -> None:
    conn = signaling()
    w = reach(conn, ConnState.UPGRADING)
    answer = w.take_answers()
    now = 0.0
    for i in range(len(answer) - 1):
        now += 0.01
        conn.receive_data(answer[i : i + 1], now=now)
        assert conn.drain() == []
        assert conn.state is ConnState.UPGRADING
    conn.receive_data(answer[-1:], now=now)
    assert [type(o) for o in w.drain()] == [m.SignalingHandshakeRequest]


@pytest.mark.parametrize("state", [ConnState.UPGRADING, ConnState.HANDSHAKING, ConnState.OPEN])
def test_empty_data_is_nothing(state: ConnState) -> None:
    conn = signaling()
    w = reach(conn, state)
    conn.receive_data(b"", now=1.0)
    assert w.drain() == []
    assert conn.state is state
    if state is ConnState.UPGRADING:
        # In particular not an end of stream for the HTTP parser: the upgrade still works.
        conn.receive_data(w.take_answers(), now=1.0)
        assert conn.state is ConnState.HANDSHAKING


def test_upgrade_and_first_frames_in_one_chunk() -> None:
    conn = signaling()
    w = reach(conn, ConnState.UPGRADING)
    data = w.take_answers()
    peer = w.peer
    data += peer.send(m.KeepAliveRequest(timestamp=5, sequence=1))
    data += peer.send(SIGNALING_OK_WITH_URLS)
    conn.receive_data(data, now=2.0)
    out = w.drain()
    assert [type(o) for o in out] == [
        m.SignalingHandshakeRequest,
        m.KeepAliveResponse,
        ev.SignalingConnected,
    ]
    assert out[1] == m.KeepAliveResponse(timestamp=5, sequence=1)
    assert conn.state is ConnState.OPEN
    assert conn.next_deadline() == 37.0


SIGNALING_OK_WITH_URLS = m.SignalingHandshakeResponse(
    status_code=0, media_urls={"audio": "wss://rtms-sjc1.zoom.us/audio"}
)


def test_upgrade_and_a_close_frame_in_one_chunk() -> None:
    """The handshake goes out before the close frame is answered: no exception, one failure."""
    conn = signaling()
    w = reach(conn, ConnState.UPGRADING)
    conn.receive_data(w.take_answers() + w.peer.close(1001, "bye"), now=2.0)
    out = w.drain()
    assert [type(o) for o in out] == [
        m.SignalingHandshakeRequest,
        Close,
        ev.ConnectionFailed,
        CloseSocket,
    ]
    assert out[1:] == [
        Close(1001, "bye"),
        failed(
            conn,
            FailureReason.CLOSED_BY_SERVER,
            "the server closed the connection during the handshake (code 1001)",
        ),
        CloseSocket(sock=SIG),
    ]


# --- handshake timeout ----------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("state", [ConnState.OPENING, ConnState.UPGRADING, ConnState.HANDSHAKING])
def test_handshake_timeout_fires_exactly_at_the_deadline(make: Make, state: ConnState) -> None:
    conn = make(options=ConnectionOptions(handshake_timeout=4.5))
    now = 10.0
    w = reach(conn, state, now=now)
    assert conn.next_deadline() == 14.5
    now = 14.499
    conn.handle_timer(now=now)
    assert w.drain() == []
    assert conn.state is state
    assert conn.next_deadline() == 14.5
    now = 14.5
    conn.handle_timer(now=now)
    fail = failed(conn, FailureReason.HANDSHAKE_TIMEOUT, "not connected within 4.5 s")
    if state is ConnState.HANDSHAKING:
        # The WebSocket is up: say goodbye properly.
        assert w.drain() == [fail, Close(1000, ""), CloseSocket(sock=conn.sock)]
    else:
        assert w.drain() == [fail, CloseSocket(sock=conn.sock)]
    assert fail.retryable
    assert conn.state is ConnState.FAILED
    assert conn.next_deadline() is None
    conn.handle_timer(now=100.0)
    assert w.drain() == []


@pytest.mark.parametrize("make", MAKERS)
def test_handle_timer_without_a_deadline_does_nothing(make: Make) -> None:
    conn = make()
    conn.handle_timer(now=1e6)
    assert conn.drain() == []
    assert conn.state is ConnState.IDLE


@pytest.mark.parametrize("make", MAKERS)
def test_messages_during_the_handshake_do_not_move_the_handshake_deadline(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.HANDSHAKING, now=0.0)
    conn.receive_data(w.peer.send(m.KeepAliveRequest(timestamp=1)), now=3.0)
    conn.receive_data(w.peer.send("{not json"), now=4.0)
    w.drain()
    assert conn.next_deadline() == 10.0


# --- handshake answer -----------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
def test_handshake_success_opens_and_arms_the_liveness_deadline(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.HANDSHAKING, now=0.0)
    now = 1.25
    conn.receive_data(w.peer.send(handshake_ok(conn)), now=now)
    assert w.drain() == [connected(conn)]
    assert conn.state is ConnState.OPEN
    assert conn.next_deadline() == 36.25


@pytest.mark.parametrize("make", MAKERS)
def test_a_second_handshake_response_is_malformed_and_harmless(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(w.peer.send(handshake_ok(conn)), now=2.0)
    response_type = 2 if isinstance(conn, SignalingConnection) else 4
    assert w.drain() == [
        ev.MalformedMessage(
            sock=conn.sock,
            error=m.DecodeError(
                msg_type=response_type,
                field=None,
                detail="handshake response after the handshake",
            ),
        )
    ]
    assert conn.state is ConnState.OPEN
    assert conn.next_deadline() == 37.0


@pytest.mark.parametrize("make", MAKERS)
def test_a_malformed_handshake_response_fails_the_handshake(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.HANDSHAKING)
    response_type = 2 if isinstance(conn, SignalingConnection) else 4
    conn.receive_data(w.peer.send({"msg_type": response_type, "status_code": "0"}), now=1.0)
    error = m.DecodeError(
        msg_type=response_type, field="status_code", detail="expected an integer, got string"
    )
    out = w.drain()
    assert out == [
        failed(conn, FailureReason.BAD_HANDSHAKE_RESPONSE, str(error)),
        Close(1000, ""),
        CloseSocket(sock=conn.sock),
    ]
    assert isinstance(out[0], ev.ConnectionFailed)
    assert out[0].retryable
    assert conn.state is ConnState.FAILED


@pytest.mark.parametrize("make", MAKERS)
def test_junk_during_the_handshake_is_reported_and_the_handshake_goes_on(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.HANDSHAKING)
    conn.receive_data(w.peer.send("[1, 2]"), now=1.0)
    assert w.drain() == [
        ev.MalformedMessage(
            sock=conn.sock,
            error=m.DecodeError(
                msg_type=None, field=None, detail="expected a JSON object, got array"
            ),
        )
    ]
    conn.receive_data(w.peer.send(handshake_ok(conn)), now=2.0)
    assert w.drain() == [connected(conn)]


# --- keep-alive -----------------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("state", [ConnState.HANDSHAKING, ConnState.OPEN])
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize(
    ("request_", "response"),
    [
        (
            m.KeepAliveRequest(timestamp=1727481600123, sequence=42),
            m.KeepAliveResponse(timestamp=1727481600123, sequence=42),
        ),
        (m.KeepAliveRequest(timestamp=99), m.KeepAliveResponse(timestamp=99)),
        (m.KeepAliveRequest(sequence=3), m.KeepAliveResponse(sequence=3)),
        (m.KeepAliveRequest(), m.KeepAliveResponse()),
    ],
    ids=["both", "timestamp", "sequence", "neither"],
)
def test_keep_alive_is_answered_at_once_echoing_timestamp_and_sequence(
    make: Make,
    state: ConnState,
    binary: bool,
    request_: m.KeepAliveRequest,
    response: m.KeepAliveResponse,
) -> None:
    conn = make()
    w = reach(conn, state)
    conn.receive_data(w.peer.send(request_, binary=binary), now=3.0)
    assert w.drain() == [response]
    assert conn.state is state


def test_keep_alive_answer_echoes_the_exact_wire_values() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(
        w.peer.send('{"msg_type":12,"timestamp":18446744073709551615,"sequence":0,"x":1}'), now=1.0
    )
    w.drain()
    assert w.peer.raw[-1] == '{"msg_type":13,"timestamp":18446744073709551615,"sequence":0}'


@pytest.mark.parametrize("make", MAKERS)
def test_keep_alive_and_close_frame_in_one_chunk_are_both_answered_in_order(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.OPEN)
    data = w.peer.send(m.KeepAliveRequest(timestamp=5, sequence=6)) + w.peer.close(1000, "done")
    conn.receive_data(data, now=2.0)
    assert w.drain() == [
        m.KeepAliveResponse(timestamp=5, sequence=6),
        Close(1000, "done"),
        CloseSocket(sock=conn.sock),
        ev.SocketClosed(sock=conn.sock, by_peer=True, code=1000, reason="done"),
    ]


# --- WebSocket ping -------------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("state", [ConnState.HANDSHAKING, ConnState.OPEN])
def test_websocket_ping_is_answered_with_pong_and_does_not_refresh_liveness(
    make: Make, state: ConnState
) -> None:
    conn = make()
    w = reach(conn, state, now=0.0)
    deadline = conn.next_deadline()
    conn.receive_data(w.peer.ping(b"are you there"), now=5.0)
    assert w.drain() == [Pong(b"are you there")]
    assert conn.next_deadline() == deadline


def test_an_unsolicited_pong_is_ignored() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(w.peer.ws.send(WsPong(payload=b"x")), now=1.0)
    assert w.drain() == []
    assert conn.state is ConnState.OPEN


# --- liveness -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
def test_every_inbound_message_refreshes_the_liveness_deadline(make: Make) -> None:
    conn = make(options=ConnectionOptions(keepalive_timeout=20.0))
    now = 0.0
    w = reach(conn, ConnState.HANDSHAKING, now=now)
    now += 1.0
    conn.receive_data(w.peer.send(handshake_ok(conn)), now=now)
    w.drain()
    assert conn.next_deadline() == 21.0
    now += 4.5
    conn.receive_data(w.peer.send(m.KeepAliveRequest(timestamp=1)), now=now)
    assert conn.next_deadline() == 25.5
    now += 10.0
    conn.receive_data(w.peer.send(audio(), binary=True), now=now)
    assert conn.next_deadline() == 35.5
    now += 1.0
    conn.receive_data(w.peer.send("not json"), now=now)  # malformed messages count too
    assert conn.next_deadline() == 36.5
    now += 1.0
    conn.receive_data(w.peer.send({"msg_type": 77}), now=now)  # and unknown ones
    assert conn.next_deadline() == 37.5
    now += 0.5
    conn.receive_data(w.peer.send(handshake_ok(conn)), now=now)  # and a stray handshake answer
    assert conn.next_deadline() == 38.0
    assert [type(o) for o in w.drain()] == [
        m.KeepAliveResponse,
        ev.AudioReceived,
        ev.MalformedMessage,
        ev.UnknownMessageReceived,
        ev.MalformedMessage,
    ]
    conn.handle_timer(now=37.999)
    assert w.drain() == []
    assert conn.state is ConnState.OPEN
    now = 38.0
    conn.handle_timer(now=now)
    out = w.drain()
    assert out == [
        failed(conn, FailureReason.KEEPALIVE_TIMEOUT, "nothing received for 20 s"),
        Close(1000, ""),
        CloseSocket(sock=conn.sock),
    ]
    assert isinstance(out[0], ev.ConnectionFailed)
    assert out[0].retryable
    assert _snapshot(conn) == (ConnState.FAILED, None)


def test_keepalive_timeout_detail_prints_fractions() -> None:
    conn = signaling(options=ConnectionOptions(keepalive_timeout=2.5))
    w = reach(conn, ConnState.OPEN, now=0.0)
    conn.handle_timer(now=2.5)
    assert w.drain()[0] == failed(
        conn, FailureReason.KEEPALIVE_TIMEOUT, "nothing received for 2.5 s"
    )


# --- message size and fragmentation ---------------------------------------------------------


def _limit() -> ConnectionOptions:
    return ConnectionOptions(max_message_size=1024)


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_a_message_over_the_limit_fails_with_close_code_1009(make: Make, binary: bool) -> None:
    conn = make(options=_limit())
    w = reach(conn, ConnState.OPEN)
    text = '{"msg_type":77,"pad":"' + "x" * 1001 + '"}'
    assert len(text) == 1025
    conn.receive_data(w.peer.send(text, binary=binary), now=1.0)
    out = w.drain()
    assert out == [
        failed(conn, FailureReason.MESSAGE_TOO_BIG, "message exceeds the 1024-byte limit"),
        Close(1009, ""),
        CloseSocket(sock=conn.sock),
    ]
    assert isinstance(out[0], ev.ConnectionFailed)
    assert out[0].retryable
    assert conn.state is ConnState.FAILED


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_a_message_exactly_at_the_limit_is_accepted(binary: bool) -> None:
    conn = signaling(options=_limit())
    w = reach(conn, ConnState.OPEN)
    text = '{"msg_type":77,"pad":"' + "x" * 1000 + '"}'
    assert len(text) == 1024
    conn.receive_data(w.peer.send(text, binary=binary), now=1.0)
    assert w.drain() == [
        ev.UnknownMessageReceived(sock=SIG, msg_type=77, raw={"msg_type": 77, "pad": "x" * 1000})
    ]


def test_the_limit_counts_bytes_on_the_wire_for_text_too() -> None:
    """The cap bounds memory, so it counts UTF-8 bytes, checked from the frame header."""
    conn = signaling(options=_limit())
    w = reach(conn, ConnState.OPEN)
    fits = '{"msg_type":77,"pad":"' + "é" * 500 + '"}'  # 524 characters, 1024 bytes
    conn.receive_data(w.peer.send(fits), now=1.0)
    assert [type(o) for o in w.drain()] == [ev.UnknownMessageReceived]
    over = '{"msg_type":77,"pad":"' + "é" * 501 + '"}'  # 525 characters, 1026 bytes
    conn.receive_data(w.peer.send(over)[:4], now=1.0)  # the header alone decides
    assert w.drain() == [
        failed(conn, FailureReason.MESSAGE_TOO_BIG, "message exceeds the 1024-byte limit"),
        Close(1009, ""),
        CloseSocket(sock=SIG),
    ]


def _fragments(w: Wire, parts: list[str], *, binary: bool, last: bool = True) -> bytes:
    """``parts`` as consecutive frames of one message; the final one ends it when ``last``."""
    data = b""
    for i, part in enumerate(parts):
        finished = last and i == len(parts) - 1
        if binary:
            data += w.peer.ws.send(BytesMessage(data=part.encode(), message_finished=finished))
        else:
            data += w.peer.ws.send(TextMessage(data=part, message_finished=finished))
    return data


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_fragmented_messages_are_reassembled(make: Make, binary: bool) -> None:
    conn = make()
    w = reach(conn, ConnState.OPEN)
    text = m.encode_message(audio()).decode()
    data = _fragments(w, [text[:5], text[5:6]], binary=binary, last=False)
    data += w.peer.ping(b"mid")  # control frames may come between fragments
    conn.receive_data(data, now=1.0)
    assert w.drain() == [Pong(b"mid")]
    rest = _fragments(w, ["", text[6:20], text[20:]], binary=binary)
    conn.receive_data(rest[:7], now=2.0)
    assert w.drain() == []
    conn.receive_data(rest[7:], now=3.0)
    assert w.drain() == [audio_event()]
    # The buffers were reset: the next message stands alone.
    conn.receive_data(w.peer.send(audio(b"\x09", 8), binary=binary), now=4.0)
    assert w.drain() == [audio_event(b"\x09", 8)]


def test_a_multibyte_character_split_between_fragments() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    text = '{"msg_type":77,"name":"Zoë"}'
    frame = w.peer.send(text)
    cut = frame.index("ë".encode()) + 1
    conn.receive_data(frame[:cut], now=1.0)
    assert w.drain() == []
    conn.receive_data(frame[cut:], now=1.0)
    assert w.drain() == [
        ev.UnknownMessageReceived(sock=SIG, msg_type=77, raw={"msg_type": 77, "name": "Zoë"})
    ]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_the_limit_applies_across_fragments(binary: bool) -> None:
    conn = signaling(options=_limit())
    w = reach(conn, ConnState.OPEN)
    parts = ['{"msg_type":77,"pad":"', "x" * 600, "y" * 401 + '"}']
    assert sum(map(len, parts)) == 1025
    conn.receive_data(_fragments(w, parts[:2], binary=binary, last=False), now=1.0)
    assert w.drain() == []
    conn.receive_data(_fragments(w, parts[2:], binary=binary), now=2.0)
    assert w.drain() == [
        failed(conn, FailureReason.MESSAGE_TOO_BIG, "message exceeds the 1024-byte limit"),
        Close(1009, ""),
        CloseSocket(sock=SIG),
    ]


def test_a_partial_frame_over_the_limit_fails_before_the_frame_ends() -> None:
    conn = signaling(options=_limit())
    w = reach(conn, ConnState.OPEN)
    data = w.peer.send('{"msg_type":77,"pad":"' + "x" * 5000 + '"}')
    conn.receive_data(data[:1500], now=1.0)
    assert [type(o) for o in w.drain()] == [ev.ConnectionFailed, Close, CloseSocket]


# --- malformed and unexpected messages keep the socket open ----------------------------------


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (
            '{"msg_type": 14, "content": {"data": "***"}}',
            m.DecodeError(msg_type=14, field="content.data", detail="invalid base64"),
        ),
        (
            '{"msg_type": "12"}',
            m.DecodeError(
                msg_type=None, field="msg_type", detail="expected an integer, got string"
            ),
        ),
        (
            "[12]",
            m.DecodeError(msg_type=None, field=None, detail="expected a JSON object, got array"),
        ),
        (
            "{oops",
            m.DecodeError(
                msg_type=None,
                field=None,
                detail="not valid JSON: Expecting property name enclosed in double quotes:"
                " line 1 column 2 (char 1)",
            ),
        ),
    ],
    ids=["base64", "msg_type", "array", "json"],
)
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_malformed_messages_are_reported_and_the_socket_stays_open(
    make: Make, payload: str, error: m.DecodeError, binary: bool
) -> None:
    conn = make()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(w.peer.send(payload, binary=binary), now=1.0)
    assert w.drain() == [ev.MalformedMessage(sock=conn.sock, error=error)]
    assert conn.state is ConnState.OPEN
    conn.receive_data(w.peer.send(audio()), now=2.0)
    assert w.drain() == [audio_event()]


def test_a_binary_message_that_is_not_utf8_is_malformed() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(w.peer.ws.send(BytesMessage(data=b"\xff{}")), now=1.0)
    assert w.drain() == [
        ev.MalformedMessage(
            sock=SIG,
            error=m.DecodeError(
                msg_type=None, field=None, detail="not UTF-8: invalid start byte at byte 0"
            ),
        )
    ]
    assert conn.state is ConnState.OPEN


@pytest.mark.parametrize(
    ("frame", "detail", "code"),
    [
        (b"\x83\x00", "unknown opcode 0x3", 1002),
        (b"\x8b\x00", "unknown opcode 0xb", 1002),
        (b"\xc1\x00", "reserved bits set but no extension agreed", 1002),
        (b"\x91\x00", "reserved bits set but no extension agreed", 1002),
        (b"\x81\x80abcd", "the server sent a masked frame", 1002),
        (b"\x80\x00", "continuation frame outside a fragmented message", 1002),
        (b"\x09\x00", "fragmented control frame", 1002),
        (b"\x89\x7e\x00\x05hello", "control frame longer than 125 bytes", 1002),
        (b"\x81\x7e\x00\x05hello", "frame length not minimally encoded", 1002),
        (b"\x82\x7f" + (0xFFFF).to_bytes(8, "big"), "frame length not minimally encoded", 1002),
        (b"\x82\x7f" + (1 << 63).to_bytes(8, "big"), "frame length not minimally encoded", 1002),
        (b"\x01\x01a\x81\x00", "new message inside a fragmented one", 1002),
        (b"\x88\x01\x03", "close frame with a 1-byte payload", 1002),
        (b"\x88\x02\x03\xed", "close frame with code 1005, which no peer may send", 1002),
        (b"\x88\x02\x03\xe7", "close frame with code 999, which no peer may send", 1002),
        (b"\x88\x02\x13\x88", "close frame with code 5000, which no peer may send", 1002),
        (b"\x88\x04\x03\xe8\xc3\x28", "invalid UTF-8 in close reason", 1007),
        (b"\x01\x02a\xff\x80\x00", "invalid UTF-8 text", 1007),
        (b"\x01\x01\xc3\x80\x00", "invalid UTF-8 text", 1007),
        (b"\x81\x03a\xff\xfe", "invalid UTF-8 text", 1007),
    ],
)
@pytest.mark.parametrize("make", MAKERS)
def test_a_broken_frame_is_a_protocol_error(
    make: Make, frame: bytes, detail: str, code: int
) -> None:
    conn = make()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(frame + w.peer.send(audio()), now=1.0)  # nothing after the fault is read
    assert w.drain() == [
        failed(conn, FailureReason.PROTOCOL_ERROR, detail),
        Close(code, ""),
        CloseSocket(sock=conn.sock),
    ]


# --- orderly close ----------------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
def test_close_sends_a_close_frame_and_finishes_on_the_reply(make: Make) -> None:
    conn = make(options=ConnectionOptions(close_timeout=3.0))
    now = 0.0
    w = reach(conn, ConnState.OPEN, now=now)
    now += 2.0
    conn.close(now=now)
    assert w.drain() == [Close(1000, "")]
    assert _snapshot(conn) == (ConnState.CLOSING, 5.0)
    assert not conn.is_terminal
    now += 0.5
    conn.receive_data(w.take_answers(), now=now)
    assert w.drain() == [
        CloseSocket(sock=conn.sock),
        ev.SocketClosed(sock=conn.sock, by_peer=False, code=1000, reason=""),
    ]
    assert _snapshot(conn) == (ConnState.CLOSED, None)
    assert conn.is_terminal


def test_close_with_a_code_and_reason() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.close(code=4000, reason="app is done", now=1.0)
    assert w.drain() == [Close(4000, "app is done")]
    conn.receive_data(w.take_answers(), now=1.1)
    assert w.drain() == [
        CloseSocket(sock=SIG),
        ev.SocketClosed(sock=SIG, by_peer=False, code=4000, reason="app is done"),
    ]


@pytest.mark.parametrize("make", MAKERS)
def test_close_timeout_finishes_the_close_without_a_reply(make: Make) -> None:
    conn = make()
    now = 1.0
    w = reach(conn, ConnState.OPEN, now=now)
    now = 3.0
    conn.close(now=now)
    assert w.drain() == [Close(1000, "")]
    assert conn.next_deadline() == 8.0
    conn.handle_timer(now=7.999)
    assert w.drain() == []
    conn.handle_timer(now=8.0)
    assert w.drain() == [
        CloseSocket(sock=conn.sock),
        ev.SocketClosed(sock=conn.sock, by_peer=False, code=None, reason=""),
    ]
    assert conn.state is ConnState.CLOSED
    assert conn.next_deadline() is None


@pytest.mark.parametrize("make", MAKERS)
def test_closing_ignores_keepalives_and_pings_but_delivers_data(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.OPEN, now=0.0)
    conn.close(now=1.0)
    w.drain()
    peer = open_server_peer()  # the Peer has answered our close frame: frame what it sent before
    data = (
        peer.send(m.KeepAliveRequest(timestamp=1, sequence=2))
        + peer.ping(b"p")
        + peer.send(audio())
        + peer.send(handshake_ok(conn))
    )
    conn.receive_data(data, now=2.0)
    assert w.drain() == [audio_event()]
    assert conn.state is ConnState.CLOSING
    assert conn.next_deadline() == 6.0  # messages do not move the close deadline


@pytest.mark.parametrize("make", MAKERS)
def test_close_during_the_handshake(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.HANDSHAKING, now=0.0)
    conn.close(now=1.0)
    assert w.drain() == [Close(1000, "")]
    assert conn.state is ConnState.CLOSING
    assert conn.next_deadline() == 6.0
    # The answer to the handshake may still arrive: it no longer matters.
    conn.receive_data(open_server_peer().send(handshake_ok(conn)), now=1.5)
    assert w.drain() == []
    conn.receive_data(w.take_answers(), now=2.0)
    assert w.drain() == [
        CloseSocket(sock=conn.sock),
        ev.SocketClosed(sock=conn.sock, by_peer=False, code=1000, reason=""),
    ]


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("state", [ConnState.OPENING, ConnState.UPGRADING])
def test_close_before_the_websocket_is_up_is_immediate(make: Make, state: ConnState) -> None:
    conn = make()
    w = reach(conn, state, now=0.0)
    conn.close(now=1.0)
    assert w.drain() == [
        CloseSocket(sock=conn.sock),
        ev.SocketClosed(sock=conn.sock, by_peer=False, code=None, reason=""),
    ]
    assert conn.state is ConnState.CLOSED
    assert conn.next_deadline() is None
    # A late upgrade answer is not read any more.
    conn.receive_data(w.take_answers() or b"HTTP/1.1 101 x\r\n\r\n", now=2.0)
    assert w.drain() == []


@pytest.mark.parametrize("make", MAKERS)
def test_a_broken_answer_while_closing_ends_the_close(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.CLOSING, now=0.0)
    conn.receive_data(b"\x83\x00", now=1.0)
    assert w.drain() == [
        CloseSocket(sock=conn.sock),
        ev.SocketClosed(sock=conn.sock, by_peer=False, code=None, reason=""),
    ]
    assert conn.state is ConnState.CLOSED


def test_an_oversized_message_while_closing_ends_the_close() -> None:
    conn = signaling(options=_limit())
    w = reach(conn, ConnState.CLOSING, now=0.0)
    conn.receive_data(open_server_peer().send("x" * 2000), now=1.0)
    assert w.drain() == [
        CloseSocket(sock=SIG),
        ev.SocketClosed(sock=SIG, by_peer=False, code=None, reason=""),
    ]


# --- the peer closes --------------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
def test_peer_initiated_close_is_answered_and_reported(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.OPEN, now=0.0)
    conn.receive_data(w.peer.close(1001, "server going away"), now=4.0)
    assert w.drain() == [
        Close(1001, "server going away"),
        CloseSocket(sock=conn.sock),
        ev.SocketClosed(sock=conn.sock, by_peer=True, code=1001, reason="server going away"),
    ]
    assert conn.state is ConnState.CLOSED
    assert conn.next_deadline() is None
    assert w.peer.ws.state.name == "CLOSED"


def test_peer_close_without_a_status_code() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(b"\x88\x00", now=1.0)
    out = w.drain()
    assert out[1:] == [
        CloseSocket(sock=SIG),
        ev.SocketClosed(sock=SIG, by_peer=True, code=1005, reason=""),
    ]
    assert isinstance(out[0], Close)  # our reply carries no code either: decoded as 1005
    assert out[0].code == 1005


@pytest.mark.parametrize("make", MAKERS)
def test_peer_close_during_the_handshake_is_a_failure(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.HANDSHAKING)
    conn.receive_data(w.peer.close(1000, ""), now=1.0)
    out = w.drain()
    assert out == [
        Close(1000, ""),
        failed(
            conn,
            FailureReason.CLOSED_BY_SERVER,
            "the server closed the connection during the handshake (code 1000)",
        ),
        CloseSocket(sock=conn.sock),
    ]
    assert isinstance(out[1], ev.ConnectionFailed)
    assert out[1].retryable
    assert conn.state is ConnState.FAILED


# --- end of stream and socket failures --------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize(
    "state", [ConnState.OPENING, ConnState.UPGRADING, ConnState.HANDSHAKING, ConnState.OPEN]
)
def test_eof_while_live_is_a_lost_connection_without_a_close_frame(
    make: Make, state: ConnState
) -> None:
    conn = make()
    w = reach(conn, state)
    conn.receive_eof(now=1.0)
    out = w.drain()
    assert out == [
        failed(
            conn,
            FailureReason.CONNECTION_LOST,
            "the server closed the connection without a close frame",
        ),
        CloseSocket(sock=conn.sock),
    ]
    assert isinstance(out[0], ev.ConnectionFailed)
    assert out[0].retryable
    assert conn.state is ConnState.FAILED
    assert conn.next_deadline() is None


@pytest.mark.parametrize("make", MAKERS)
def test_eof_while_closing_finishes_the_close(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.CLOSING)
    conn.receive_eof(now=1.0)
    assert w.drain() == [
        CloseSocket(sock=conn.sock),
        ev.SocketClosed(sock=conn.sock, by_peer=False, code=None, reason=""),
    ]
    assert conn.state is ConnState.CLOSED


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("state", [ConnState.CLOSED, ConnState.FAILED])
def test_peer_inputs_after_the_end_are_ignored(make: Make, state: ConnState) -> None:
    conn = make()
    w = reach(conn, state)
    conn.receive_data(b"\x89\x00", now=1.0)  # a ping
    conn.receive_eof(now=2.0)
    conn.socket_failed("reset", now=3.0)
    conn.handle_timer(now=1e9)
    assert w.drain() == []
    assert conn.state is state
    assert conn.next_deadline() is None


@pytest.mark.parametrize("make", MAKERS)
def test_socket_failure_while_opening_is_a_connect_failure(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.OPENING)
    conn.socket_failed("connection refused", now=1.0)
    out = w.drain()
    assert out == [
        failed(conn, FailureReason.CONNECT_FAILED, "connection refused"),
        CloseSocket(sock=conn.sock),
    ]
    assert isinstance(out[0], ev.ConnectionFailed)
    assert out[0].retryable
    assert conn.state is ConnState.FAILED


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("state", [ConnState.UPGRADING, ConnState.HANDSHAKING, ConnState.OPEN])
def test_socket_failure_later_is_a_lost_connection(make: Make, state: ConnState) -> None:
    conn = make()
    w = reach(conn, state)
    conn.socket_failed("connection reset by peer", now=1.0)
    assert w.drain() == [
        failed(conn, FailureReason.CONNECTION_LOST, "connection reset by peer"),
        CloseSocket(sock=conn.sock),
    ]
    assert conn.state is ConnState.FAILED


@pytest.mark.parametrize("make", MAKERS)
def test_socket_failure_while_closing_finishes_the_close(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.CLOSING)
    conn.socket_failed("broken pipe", now=1.0)
    assert w.drain() == [
        CloseSocket(sock=conn.sock),
        ev.SocketClosed(sock=conn.sock, by_peer=False, code=None, reason=""),
    ]


# --- message by message (receive_batches) ----------------------------------------------------


def _batches(w: Wire, data: bytes, now: float) -> list[list[object]]:
    """What ``receive_batches`` yields, each SendBytes decoded by the server."""
    return [
        [w.decode(o) if isinstance(o, SendBytes) else o for o in batch]
        for batch in w.conn.receive_batches(data, now=now)
    ]


@pytest.mark.parametrize("make", MAKERS)
def test_batches_are_one_per_message_and_add_up_to_receive_data(make: Make) -> None:
    by_batches, whole = reach(make(), ConnState.OPEN), reach(make(), ConnState.OPEN)
    data = (
        by_batches.peer.send(m.KeepAliveRequest(timestamp=5, sequence=6))
        + by_batches.peer.send(audio())
        + by_batches.peer.ping(b"p")
        + by_batches.peer.send(m.MetadataMessage(msg_type=23))
        + by_batches.peer.close(1000, "done")
    )
    batches = _batches(by_batches, data, now=2.0)
    assert batches == [
        [m.KeepAliveResponse(timestamp=5, sequence=6)],
        [audio_event()],
        [Pong(b"p")],
        [ev.MetadataReceived(sock=by_batches.conn.sock, msg_type=23, raw={"msg_type": 23})],
        [Close(1000, "done")],  # the answer to a close frame goes out before the close is reported
        [
            CloseSocket(sock=by_batches.conn.sock),
            ev.SocketClosed(sock=by_batches.conn.sock, by_peer=True, code=1000, reason="done"),
        ],
    ]
    whole.conn.receive_data(data, now=2.0)
    assert whole.drain() == [item for batch in batches for item in batch]
    assert _snapshot(whole.conn) == _snapshot(by_batches.conn)


def test_a_command_between_batches_acts_before_the_next_message_is_read() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    data = (
        w.peer.send(m.KeepAliveRequest(sequence=1))
        + w.peer.send(m.KeepAliveRequest(sequence=2))
        + w.peer.send(m.KeepAliveRequest(sequence=3))
    )
    batches = conn.receive_batches(data, now=2.0)
    assert [w.decode(o) for o in next(batches) if isinstance(o, SendBytes)] == [
        m.KeepAliveResponse(sequence=1)
    ]
    conn.request_stream_state()  # comes out with the next batch, before its answer
    assert [w.decode(o) for o in next(batches) if isinstance(o, SendBytes)] == [
        m.StreamStateRequest(rtms_stream_id="stream-1"),
        m.KeepAliveResponse(sequence=2),
    ]
    conn.close(now=2.0)  # nothing may follow our close frame: keep-alive 3 is not answered
    rest = [w.decode(o) for batch in batches for o in batch if isinstance(o, SendBytes)]
    assert rest == [Close(1000, "")]
    assert conn.drain() == []
    assert conn.state is ConnState.CLOSING


@pytest.mark.parametrize("make", MAKERS)
def test_batches_refuse_data_before_socket_opened_and_stop_after_the_end(make: Make) -> None:
    conn = make()
    conn.start(now=0.0)
    with pytest.raises(LocalProtocolError, match="before socket_opened"):
        list(conn.receive_batches(b"HTTP/1.1 101\r\n\r\n", now=1.0))
    assert conn.state is ConnState.OPENING
    w = reach(make(), ConnState.FAILED)
    assert list(w.conn.receive_batches(open_server_peer().send(audio()), now=1.0)) == []


# --- misuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", MAKERS)
def test_driver_inputs_before_start_are_refused(make: Make) -> None:
    conn = make()
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: conn.socket_opened(now=0.0), "cannot socket_opened signaling#1 while idle"),
        (lambda: conn.receive_data(b"x", now=0.0), "data for signaling#1 before socket_opened"),
        (lambda: conn.receive_eof(now=0.0), "end of stream for signaling#1 before start"),
        (lambda: conn.socket_failed("x", now=0.0), "socket failure for signaling#1 before start"),
        (lambda: conn.close(now=0.0), "cannot close signaling#1 while idle"),
    ]
    for call, text in calls:
        with pytest.raises(LocalProtocolError) as info:
            call()
        assert type(info.value) is LocalProtocolError
        assert str(info.value) == text.replace("signaling#1", str(conn.sock))
        assert _snapshot(conn) == (ConnState.IDLE, None)
        assert conn.drain() == []


@pytest.mark.parametrize("make", MAKERS)
def test_data_before_socket_opened_is_refused(make: Make) -> None:
    conn = make()
    conn.start(now=0.0)
    conn.drain()
    with pytest.raises(LocalProtocolError, match="before socket_opened"):
        conn.receive_data(b"HTTP/1.1 101\r\n\r\n", now=1.0)
    assert _snapshot(conn) == (ConnState.OPENING, 10.0)
    assert conn.drain() == []


@pytest.mark.parametrize("make", MAKERS)
def test_start_twice_is_refused(make: Make) -> None:
    conn = make()
    conn.start(now=0.0)
    conn.drain()
    with pytest.raises(LocalProtocolError, match=r"^cannot start .* while opening$"):
        conn.start(now=1.0)
    assert _snapshot(conn) == (ConnState.OPENING, 10.0)
    assert conn.drain() == []


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize(
    ("state", "error"),
    [
        (ConnState.CLOSING, ConnectionClosed),
        (ConnState.CLOSED, ConnectionClosed),
        (ConnState.FAILED, ConnectionClosed),
    ],
)
def test_close_after_close_is_a_connection_closed_error(
    make: Make, state: ConnState, error: type[Exception]
) -> None:
    conn = make()
    reach(conn, state, now=0.0)
    before = _snapshot(conn)
    with pytest.raises(error, match=f"^{conn.sock} is {state.value}$"):
        conn.close(now=1.0)
    assert _snapshot(conn) == before
    assert conn.drain() == []


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1014, 1015, 2000, 2999, 5000, 70000, -1])
def test_close_refuses_codes_an_endpoint_may_not_send(make: Make, code: int) -> None:
    conn = make()
    w = reach(conn, ConnState.OPEN, now=0.0)
    with pytest.raises(InvalidConfig, match=f"^{code} is not a close code an endpoint may send$"):
        conn.close(code=code, now=1.0)
    assert _snapshot(conn) == (ConnState.OPEN, 35.0)
    assert w.drain() == []


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1013, 3000, 4999])
def test_close_accepts_every_sendable_code(code: int) -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.close(code=code, now=1.0)
    assert w.drain() == [Close(code, "")]


def test_close_refuses_non_integer_codes_and_non_text_reasons() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    with pytest.raises(InvalidConfig, match=r"^True is not a close code"):
        conn.close(code=True, now=1.0)
    with pytest.raises(InvalidConfig, match=r"^'1000' is not a close code"):
        conn.close(code="1000", now=1.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig, match=r"^close reason must be a str, not bytes$"):
        conn.close(reason=b"bye", now=1.0)  # type: ignore[arg-type]
    assert conn.state is ConnState.OPEN
    assert w.drain() == []


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize(
    "state",
    [ConnState.UPGRADING, ConnState.HANDSHAKING, ConnState.OPEN],
)
def test_socket_opened_twice_is_refused(make: Make, state: ConnState) -> None:
    conn = make()
    w = reach(conn, state)
    before = _snapshot(conn)
    with pytest.raises(LocalProtocolError, match=f"^cannot socket_opened .* while {state.value}$"):
        conn.socket_opened(now=1.0)
    assert _snapshot(conn) == before
    assert w.drain() == []


# --- secrets ----------------------------------------------------------------------------------


def _no_secret(thing: object) -> None:
    for text in (repr(thing), str(thing)):
        assert SECRET not in text
        assert SIGNATURE not in text


@pytest.mark.parametrize("make", MAKERS)
def test_secrets_never_appear_in_outputs_errors_or_the_connection(make: Make) -> None:
    conn = make()
    _no_secret(conn)
    _no_secret(CREDENTIALS)
    w = reach(conn, ConnState.HANDSHAKING)
    sent = w.peer.received[-1]
    assert isinstance(sent, (m.SignalingHandshakeRequest, m.MediaHandshakeRequest))
    assert sent.signature == SIGNATURE  # it was sent ...
    _no_secret(sent)  # ... and even the decoded request does not show it
    response_type = 2 if isinstance(conn, SignalingConnection) else 4
    conn.receive_data(
        w.peer.send({"msg_type": response_type, "status_code": 3, "reason": "invalid signature"}),
        now=1.0,
    )
    outputs = conn.drain()
    assert outputs
    for output in outputs:
        _no_secret(output)
    failure = outputs[0]
    assert isinstance(failure, ev.ConnectionFailed)
    _no_secret(failure.error)
    _no_secret(conn)
    with pytest.raises(ConnectionClosed) as info:
        conn.close(now=2.0)
    _no_secret(info.value)


def test_media_connection_is_a_connection() -> None:
    conn = media()
    assert isinstance(conn, Connection)
    assert isinstance(conn, MediaConnection)


@pytest.mark.parametrize("make", MAKERS)
def test_nothing_after_a_failing_message_is_read(make: Make) -> None:
    conn = make()
    w = reach(conn, ConnState.HANDSHAKING)
    response_type = 2 if isinstance(conn, SignalingConnection) else 4
    data = w.peer.send({"msg_type": response_type, "status_code": 45})
    data += w.peer.send(m.KeepAliveRequest(timestamp=1)) + w.peer.ping(b"x") + w.peer.close()
    conn.receive_data(data, now=1.0)
    assert [type(o) for o in w.drain()] == [ev.ConnectionFailed, Close, CloseSocket]
    assert conn.state is ConnState.FAILED
