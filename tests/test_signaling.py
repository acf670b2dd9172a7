"""The signaling socket: the msg 1/2 handshake, its rejections, and the commands."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conn_harness import (
    MEDIA_URLS,
    SECRET,
    SIG,
    SIGNALING_OK,
    SIGNATURE,
    Close,
    Wire,
    product_stream,
    reach,
    signaling,
)

from rtms_proto import (
    ConnectionClosed,
    ConnectionOptions,
    ConnState,
    InvalidConfig,
    LocalProtocolError,
    RemoteProtocolError,
    SignalingConnection,
    StatusTable,
)
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import CloseSocket
from rtms_proto.enums import EventType, FailureReason, LegacyStatusCode, Product, StatusCode

# --- the handshake request ------------------------------------------------------------------


def _handshake(conn: SignalingConnection) -> m.Message | m.DecodeError:
    w = reach(conn, ConnState.HANDSHAKING)
    return w.peer.received[-1]


def test_handshake_request_carries_identity_signature_and_defaults() -> None:
    sent = _handshake(signaling())
    assert sent == m.SignalingHandshakeRequest(
        instance_id="meeting-uuid==",
        rtms_stream_id="stream-1",
        signature=SIGNATURE,
        id_keys=("meeting_uuid",),
        protocol_version=1,
        sequence=1,
        buffer_data=None,
        client_agent="rtms-proto",
    )


def test_handshake_request_wire_form() -> None:
    conn = signaling()
    w = reach(conn, ConnState.HANDSHAKING)
    assert w.peer.raw == [
        '{"msg_type":1,"meeting_uuid":"meeting-uuid==","rtms_stream_id":"stream-1",'
        f'"signature":"{SIGNATURE}","protocol_version":1,"sequence":1,'
        '"rtms_client_agent":"rtms-proto"}'
    ]


@pytest.mark.parametrize("buffer_data", [True, False])
def test_handshake_request_sends_buffer_data_only_when_set(buffer_data: bool) -> None:
    sent = _handshake(signaling(buffer_data=buffer_data, sequence=77))
    assert isinstance(sent, m.SignalingHandshakeRequest)
    assert sent.buffer_data is buffer_data
    assert sent.sequence == 77


def test_handshake_request_without_client_agent() -> None:
    sent = _handshake(signaling(options=ConnectionOptions(client_agent=None)))
    assert isinstance(sent, m.SignalingHandshakeRequest)
    assert sent.client_agent is None


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
def test_handshake_request_names_the_instance_under_the_product_keys(
    product: Product, keys: tuple[str, ...]
) -> None:
    sent = _handshake(signaling(stream=product_stream(product)))
    assert isinstance(sent, m.SignalingHandshakeRequest)
    assert sent.id_keys == keys
    assert sent.instance_id == "meeting-uuid=="
    assert sent.signature == SIGNATURE


# --- the handshake answer -------------------------------------------------------------------


def test_handshake_success_reports_media_urls_and_region() -> None:
    conn = signaling()
    w = reach(conn, ConnState.HANDSHAKING)
    assert conn.media_urls == {}
    conn.receive_data(w.peer.send(SIGNALING_OK), now=1.0)
    assert w.drain() == [ev.SignalingConnected(sock=SIG, media_urls=MEDIA_URLS, region="sjc")]
    assert conn.media_urls == MEDIA_URLS
    assert conn.state is ConnState.OPEN


def test_handshake_success_in_the_documented_wire_shape() -> None:
    conn = signaling()
    w = reach(conn, ConnState.HANDSHAKING)
    conn.receive_data(
        w.peer.send(
            '{"msg_type":2,"protocol_version":1,"sequence":0,"status_code":0,"reason":"",'
            '"media_server":{"server_urls":{"audio":"wss://a.zoom.us/a","all":"wss://a.zoom.us/b"}}}',
            binary=True,
        ),
        now=1.0,
    )
    assert w.drain() == [
        ev.SignalingConnected(
            sock=SIG,
            media_urls={"audio": "wss://a.zoom.us/a", "all": "wss://a.zoom.us/b"},
            region=None,
        )
    ]


def test_handshake_success_without_media_server() -> None:
    conn = signaling()
    w = reach(conn, ConnState.HANDSHAKING)
    conn.receive_data(w.peer.send({"msg_type": 2, "status_code": 0}), now=1.0)
    assert w.drain() == [ev.SignalingConnected(sock=SIG, media_urls={}, region=None)]
    assert conn.media_urls == {}


Rejection = tuple[
    dict[str, object],
    StatusTable,
    FailureReason,
    StatusCode | LegacyStatusCode | int | None,
    str | None,
]

REJECTIONS: dict[str, Rejection] = {
    "invalid signature (3)": (
        {"status_code": 3, "reason": "bad"},
        StatusTable.CURRENT,
        FailureReason.AUTHENTICATION_FAILED,
        StatusCode.INVALID_SIGNATURE,
        "bad",
    ),
    "duplicate (8)": (
        {"status_code": 8},
        StatusTable.CURRENT,
        FailureReason.DUPLICATE_SIGNAL,
        StatusCode.DUPLICATE_SIGNAL_REQUEST,
        None,
    ),
    "stream id (2)": (
        {"status_code": 2, "reason": ""},
        StatusTable.CURRENT,
        FailureReason.AUTHENTICATION_FAILED,
        StatusCode.INVALID_RTMS_STREAM_ID,
        None,
    ),
    "invalid payload (4)": (
        {"status_code": 4, "reason": "missing field"},
        StatusTable.CURRENT,
        FailureReason.INVALID_REQUEST,
        StatusCode.INVALID_PAYLOAD,
        "missing field",
    ),
    "internal (45)": (
        {"status_code": 45, "reason": "oops"},
        StatusTable.CURRENT,
        FailureReason.HANDSHAKE_REJECTED,
        StatusCode.INTERNAL_EXCEPTION,
        "oops",
    ),
    "unknown number (99)": (
        {"status_code": 99},
        StatusTable.CURRENT,
        FailureReason.HANDSHAKE_REJECTED,
        99,
        None,
    ),
    "legacy duplicate (17)": (
        {"status_code": 17},
        StatusTable.LEGACY,
        FailureReason.DUPLICATE_SIGNAL,
        LegacyStatusCode.DUPLICATE_SIGNAL_REQUEST,
        None,
    ),
    "legacy signature (15)": (
        {"status_code": 15},
        StatusTable.LEGACY,
        FailureReason.AUTHENTICATION_FAILED,
        LegacyStatusCode.INVALID_SIGNATURE,
        None,
    ),
    "legacy meeting id (7)": (
        {"status_code": 7},
        StatusTable.LEGACY,
        FailureReason.INVALID_REQUEST,
        LegacyStatusCode.MEETING_UUID_NOT_EXIST,
        None,
    ),
    "legacy 8 is not a duplicate": (
        {"status_code": 8},
        StatusTable.LEGACY,
        FailureReason.INVALID_REQUEST,
        LegacyStatusCode.MEETING_UUID_NOT_STRING,
        None,
    ),
    "missing status, duplicate text": (
        {"reason": "Duplicate signal request"},
        StatusTable.CURRENT,
        FailureReason.DUPLICATE_SIGNAL,
        None,
        "Duplicate signal request",
    ),
    "missing status, signature text": (
        {"reason": "Invalid signature"},
        StatusTable.CURRENT,
        FailureReason.AUTHENTICATION_FAILED,
        None,
        "Invalid signature",
    ),
    "missing status, no text": (
        {},
        StatusTable.CURRENT,
        FailureReason.HANDSHAKE_REJECTED,
        None,
        None,
    ),
    "text beats the number": (
        {"status_code": 4, "reason": "duplicate signal request"},
        StatusTable.CURRENT,
        FailureReason.DUPLICATE_SIGNAL,
        StatusCode.INVALID_PAYLOAD,
        "duplicate signal request",
    ),
    "signature text with a legacy number": (
        {"status_code": 3, "reason": "invalid signature"},
        StatusTable.LEGACY,
        FailureReason.AUTHENTICATION_FAILED,
        LegacyStatusCode.INVALID_JSON_MSG,
        "invalid signature",
    ),
}


@pytest.mark.parametrize(
    ("fields", "table", "reason", "status", "status_reason"),
    list(REJECTIONS.values()),
    ids=list(REJECTIONS),
)
def test_handshake_rejection_by_status(
    fields: dict[str, object],
    table: StatusTable,
    reason: FailureReason,
    status: StatusCode | LegacyStatusCode | int | None,
    status_reason: str | None,
) -> None:
    conn = signaling(options=ConnectionOptions(status_table=table))
    w = reach(conn, ConnState.HANDSHAKING, now=0.0)
    conn.receive_data(w.peer.send({"msg_type": 2, **fields}), now=1.0)
    error = RemoteProtocolError(
        reason, "signaling handshake rejected", status=status, status_reason=status_reason
    )
    out = w.drain()
    assert out == [
        ev.ConnectionFailed(sock=SIG, error=error),
        Close(1000, ""),
        CloseSocket(sock=SIG),
    ]
    failure = out[0]
    assert isinstance(failure, ev.ConnectionFailed)
    assert failure.reason is reason
    assert failure.retryable is reason.retryable
    assert type(failure.error.status) is type(status)
    assert conn.state is ConnState.FAILED
    assert conn.next_deadline() is None
    assert conn.media_urls == {}


def test_rejection_retryable_flags() -> None:
    fatal = {
        FailureReason.AUTHENTICATION_FAILED,
        FailureReason.INVALID_REQUEST,
        FailureReason.MEDIA_NOT_AVAILABLE,
    }
    for reason in FailureReason:
        assert reason.retryable is (reason not in fatal)


def test_rejection_names_the_status_in_the_error_text() -> None:
    conn = signaling()
    w = reach(conn, ConnState.HANDSHAKING)
    conn.receive_data(w.peer.send({"msg_type": 2, "status_code": 3, "reason": "nope"}), now=1.0)
    failure = w.drain()[0]
    assert isinstance(failure, ev.ConnectionFailed)
    assert str(failure.error) == (
        "authentication_failed: signaling handshake rejected"
        " (status 3 INVALID_SIGNATURE, reason 'nope')"
    )
    assert failure.error.status is StatusCode.INVALID_SIGNATURE
    assert failure.error.status_reason == "nope"


def test_rejection_never_shows_the_secret_or_signature() -> None:
    conn = signaling()
    w = reach(conn, ConnState.HANDSHAKING)
    conn.receive_data(
        w.peer.send({"msg_type": 2, "status_code": 3, "reason": "invalid signature"}), now=1.0
    )
    for item in [conn, *conn.drain()]:
        for text in (str(item), repr(item)):
            assert SECRET not in text
            assert SIGNATURE not in text
    w.drain()


# --- commands ---------------------------------------------------------------------------------


Command = Callable[[SignalingConnection], None]

COMMANDS: dict[str, tuple[Command, m.Message]] = {
    "client ready": (
        lambda c: c.send_client_ready(),
        m.ClientReady(rtms_stream_id="stream-1"),
    ),
    "subscribe events": (
        lambda c: c.subscribe_events([EventType.ACTIVE_SPEAKER_CHANGE, 3, EventType(4)]),
        m.EventSubscription(
            events=(
                m.EventSubscriptionItem(event_type=2, subscribe=True),
                m.EventSubscriptionItem(event_type=3, subscribe=True),
                m.EventSubscriptionItem(event_type=4, subscribe=True),
            )
        ),
    ),
    "unsubscribe events": (
        lambda c: c.subscribe_events(iter([8, 9]), subscribe=False),
        m.EventSubscription(
            events=(
                m.EventSubscriptionItem(event_type=8, subscribe=False),
                m.EventSubscriptionItem(event_type=9, subscribe=False),
            )
        ),
    ),
    "session state": (
        lambda c: c.request_session_state("session-9"),
        m.SessionStateRequest(rtms_session_id="session-9"),
    ),
    "stream state": (
        lambda c: c.request_stream_state(),
        m.StreamStateRequest(rtms_stream_id="stream-1"),
    ),
    "stream close": (
        lambda c: c.request_stream_close(),
        m.StreamCloseRequest(rtms_stream_id="stream-1"),
    ),
    "video subscription": (
        lambda c: c.subscribe_video(16778240),
        m.VideoSubscriptionRequest(user_id=16778240, subscribe=True, timestamp=None),
    ),
    "video unsubscription": (
        lambda c: c.subscribe_video(0, subscribe=False, timestamp=1727481600000),
        m.VideoSubscriptionRequest(user_id=0, subscribe=False, timestamp=1727481600000),
    ),
}


@pytest.mark.parametrize(("command", "message"), list(COMMANDS.values()), ids=list(COMMANDS))
def test_command_sends_exactly_its_message(command: Command, message: m.Message) -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN, now=0.0)
    command(conn)
    assert w.drain() == [message]
    assert conn.state is ConnState.OPEN
    assert conn.next_deadline() == 35.0  # sending does not refresh liveness


def test_commands_wire_form() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.send_client_ready()
    conn.subscribe_events([2], subscribe=True)
    conn.subscribe_video(5, timestamp=9)
    w.drain()
    assert w.peer.raw[-3:] == [
        '{"msg_type":7,"rtms_stream_id":"stream-1"}',
        '{"msg_type":5,"events":[{"event_type":2,"subscribe":true}]}',
        '{"msg_type":28,"user_id":5,"subscribe":true,"timestamp":9}',
    ]


@pytest.mark.parametrize(("command", "message"), list(COMMANDS.values()), ids=list(COMMANDS))
@pytest.mark.parametrize(
    ("state", "error"),
    [
        (ConnState.IDLE, LocalProtocolError),
        (ConnState.OPENING, LocalProtocolError),
        (ConnState.UPGRADING, LocalProtocolError),
        (ConnState.HANDSHAKING, LocalProtocolError),
        (ConnState.CLOSING, ConnectionClosed),
        (ConnState.CLOSED, ConnectionClosed),
        (ConnState.FAILED, ConnectionClosed),
    ],
)
def test_commands_are_refused_unless_open(
    command: Command, message: m.Message, state: ConnState, error: type[Exception]
) -> None:
    conn = signaling()
    w = reach(conn, state, now=0.0) if state is not ConnState.IDLE else Wire(conn)
    before = (conn.state, conn.next_deadline())
    with pytest.raises(error) as info:
        command(conn)
    assert type(info.value) is error
    if error is ConnectionClosed:
        assert str(info.value) == f"signaling#1 is {state.value}"
    else:
        assert str(info.value) == f"signaling#1 is not open yet ({state.value})"
    assert (conn.state, conn.next_deadline()) == before
    assert w.drain() == []


BAD_ARGUMENTS: dict[str, tuple[Command, str]] = {
    "no event types": (
        lambda c: c.subscribe_events([]),
        "subscribe_events needs at least one event type",
    ),
    "bool event type": (
        lambda c: c.subscribe_events([True]),
        "event types must be non-negative integers, not True",
    ),
    "text event type": (
        lambda c: c.subscribe_events(["2"]),  # type: ignore[list-item]
        "event types must be non-negative integers, not '2'",
    ),
    "float event type": (
        lambda c: c.subscribe_events([2.0]),  # type: ignore[list-item]
        "event types must be non-negative integers, not 2.0",
    ),
    "negative event type": (
        lambda c: c.subscribe_events([2, -1]),
        "event types must be non-negative integers, not -1",
    ),
    "empty session id": (
        lambda c: c.request_session_state(""),
        "rtms_session_id must not be empty",
    ),
    "negative user id": (
        lambda c: c.subscribe_video(-1),
        "user_id must be a non-negative integer, not -1",
    ),
    "bool user id": (
        lambda c: c.subscribe_video(True),
        "user_id must be a non-negative integer, not True",
    ),
    "text user id": (
        lambda c: c.subscribe_video("42"),  # type: ignore[arg-type]
        "user_id must be a non-negative integer, not '42'",
    ),
    "float user id": (
        lambda c: c.subscribe_video(4.2),  # type: ignore[arg-type]
        "user_id must be a non-negative integer, not 4.2",
    ),
}


@pytest.mark.parametrize(("command", "text"), list(BAD_ARGUMENTS.values()), ids=list(BAD_ARGUMENTS))
@pytest.mark.parametrize("state", [ConnState.IDLE, ConnState.OPEN, ConnState.CLOSED])
def test_bad_command_arguments_are_invalid_config_in_any_state(
    command: Command, text: str, state: ConnState
) -> None:
    conn = signaling()
    w = reach(conn, state, now=0.0) if state is not ConnState.IDLE else Wire(conn)
    before = (conn.state, conn.next_deadline())
    with pytest.raises(InvalidConfig) as info:
        command(conn)
    assert str(info.value) == text
    assert (conn.state, conn.next_deadline()) == before
    assert w.drain() == []


def test_commands_on_a_failed_connection_raise_and_queue_nothing() -> None:
    conn = signaling()
    w = reach(conn, ConnState.OPEN)
    conn.socket_failed("reset", now=1.0)
    w.drain()
    with pytest.raises(ConnectionClosed):
        conn.send_client_ready()
    assert w.drain() == []
