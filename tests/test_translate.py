"""Server messages to application events: the server sends each kind, the exact event comes out.

Messages are written as wire JSON by hand (not built with the codec) so that
these tests pin the whole path: frame, decode, translate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from conn_harness import AUDIO, SIG, media, product_stream, reach, signaling

from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto._connection import Connection, ConnState
from rtms_proto.actions import SocketId
from rtms_proto.enums import (
    ChatOperation,
    ChatSessionType,
    EventType,
    MediaType,
    Product,
    SessionState,
    StatusCode,
    StopReason,
    StreamState,
    TranscriptLanguage,
    ZccEventType,
)

Make = Callable[[], Connection]
BOTH = [
    pytest.param(signaling, id="signaling"),
    pytest.param(lambda: media(MediaType.ALL), id="media"),
]


def receive(conn: Connection, wire: Mapping[str, object], *, binary: bool = False) -> list[object]:
    """Open ``conn``, let the server send ``wire``, return the outputs (one event expected)."""
    w = reach(conn, ConnState.OPEN)
    conn.receive_data(w.peer.send(wire, binary=binary), now=1.0)
    out: list[object] = list(w.drain())
    assert conn.state is ConnState.OPEN
    return out


def sock_of(conn: Connection) -> SocketId:
    return SIG if conn.sock == SIG else AUDIO


# --- media data -------------------------------------------------------------------------------

MEDIA_CASES: dict[str, tuple[dict[str, object], ev.Event]] = {
    "audio": (
        {
            "msg_type": 14,
            "content": {
                "user_id": 16778240,
                "user_name": "Jane Doe",
                "data": "AQID",
                "timestamp": 1727384354000,
                "channel_id": "ch-2",
                "length": 3,
            },
        },
        ev.AudioReceived(
            data=b"\x01\x02\x03",
            user_id=16778240,
            user_name="Jane Doe",
            timestamp=1727384354000,
            channel_id="ch-2",
            length=3,
        ),
    ),
    "audio mixed, nothing optional": (
        {"msg_type": 14, "content": {"data": "AQ"}},
        ev.AudioReceived(data=b"\x01"),
    ),
    "video": (
        {
            "msg_type": 15,
            "content": {"user_id": 7, "user_name": "A", "data": "/9j/", "timestamp": 5},
        },
        ev.VideoReceived(data=b"\xff\xd8\xff", user_id=7, user_name="A", timestamp=5),
    ),
    "deskshare": (
        {"msg_type": 16, "content": {"user_id": "8", "data": "iVBO", "timestamp": 6}},
        ev.DeskshareReceived(data=b"\x89PN", user_id=8, timestamp=6),
    ),
    "transcript": (
        {
            "msg_type": 17,
            "content": {
                "user_id": 16778240,
                "user_name": "Jane Doe",
                "timestamp": 1727384364000,
                "start_time": 1727384364000,
                "end_time": 1727384366500,
                "language": 9,
                "attribute": 1,
                "channel_id": "ch-1",
                "data": "Hello, everyone. Café 日本",
            },
        },
        ev.TranscriptReceived(
            text="Hello, everyone. Café 日本",
            user_id=16778240,
            user_name="Jane Doe",
            timestamp=1727384364000,
            start_time=1727384364000,
            end_time=1727384366500,
            language=TranscriptLanguage(9),
            attribute=1,
            channel_id="ch-1",
        ),
    ),
    "transcript, minimal": (
        {"msg_type": 17, "content": {"data": "hi"}},
        ev.TranscriptReceived(text="hi"),
    ),
    "chat, plain": (
        {
            "msg_type": 18,
            "content": {"user_id": 3, "user_name": "B", "timestamp": 9, "data": "hello"},
        },
        ev.ChatReceived(text="hello", user_id=3, user_name="B", timestamp=9, chat=None),
    ),
    "chat, structured": (
        {
            "msg_type": 18,
            "content": {
                "user_id": 16778240,
                "data": '{"chat_session":{"type":2,"id":"cs-9"},"operation_type":1,'
                '"message_id":"msg-1","sender":{"user_id":16778240,"user_name":"Jane"},'
                '"files":[{"file_id":"f-1","file_name":"n.txt","file_size":12}],'
                '"delete_file_id_list":["f-0"],"data":"see attached"}',
            },
        },
        ev.ChatReceived(
            text='{"chat_session":{"type":2,"id":"cs-9"},"operation_type":1,'
            '"message_id":"msg-1","sender":{"user_id":16778240,"user_name":"Jane"},'
            '"files":[{"file_id":"f-1","file_name":"n.txt","file_size":12}],'
            '"delete_file_id_list":["f-0"],"data":"see attached"}',
            user_id=16778240,
            chat=m.StructuredChat(
                session_type=ChatSessionType.INDIVIDUAL,
                session_id="cs-9",
                operation=ChatOperation.NEW,
                message_id="msg-1",
                sender=m.ChatUser(user_id=16778240, user_name="Jane"),
                files=(m.ChatFile(file_id="f-1", file_name="n.txt", file_size=12),),
                delete_file_ids=("f-0",),
                text="see attached",
            ),
        ),
    ),
}


@pytest.mark.parametrize(("wire", "event"), list(MEDIA_CASES.values()), ids=list(MEDIA_CASES))
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_media_data(wire: dict[str, object], event: ev.Event, binary: bool) -> None:
    out = receive(media(MediaType.ALL), wire, binary=binary)
    assert out == [event]
    assert repr(out) == repr([event])  # ``length`` too, which equality leaves out


# --- in-meeting events (msg 6) ----------------------------------------------------------------


def _event(**fields: object) -> dict[str, object]:
    return {"msg_type": 6, "event": fields}


EVENT_CASES: dict[str, tuple[dict[str, object], ev.Event]] = {
    "first packet": (
        _event(event_type=1, timestamp=100),
        ev.FirstPacketReceived(timestamp=100),
    ),
    "active speaker": (
        _event(event_type=2, timestamp=101, user_id=16778240, user_name="Jane"),
        ev.ActiveSpeakerChanged(user_id=16778240, user_name="Jane", timestamp=101),
    ),
    "join": (
        _event(
            event_type=3,
            timestamp=102,
            participants=[{"user_id": 1, "user_name": "A"}, {"user_id": "2", "user_name": "B"}],
        ),
        ev.ParticipantsJoined(
            participants=(
                m.Participant(user_id=1, user_name="A"),
                m.Participant(user_id=2, user_name="B"),
            ),
            timestamp=102,
        ),
    ),
    "leave": (
        _event(event_type=4, timestamp=103, participants=[{"user_id": 1}]),
        ev.ParticipantsLeft(participants=(m.Participant(user_id=1),), timestamp=103),
    ),
    "sharing start": (
        _event(event_type=5, timestamp=104, user_id=9, user_name="C"),
        ev.SharingStarted(user_id=9, user_name="C", timestamp=104),
    ),
    "sharing stop": (
        _event(event_type=6, timestamp=105),
        ev.SharingStopped(timestamp=105),
    ),
    "media interrupted": (
        _event(event_type=7, timestamp=106, media_type=2),
        ev.MediaInterrupted(
            timestamp=106,
            raw={"event_type": 7, "timestamp": 106, "media_type": 2},
            media_type=MediaType.VIDEO,
        ),
    ),
    "media interrupted, unknown bit kept in the flag": (
        _event(event_type=7, media_type=64),
        ev.MediaInterrupted(
            timestamp=None, raw={"event_type": 7, "media_type": 64}, media_type=MediaType(64)
        ),
    ),
    "media interrupted, negative number kept as int": (
        _event(event_type=7, media_type=-1),
        ev.MediaInterrupted(timestamp=None, raw={"event_type": 7, "media_type": -1}, media_type=-1),
    ),
    "media interrupted, no media type": (
        _event(event_type=7),
        ev.MediaInterrupted(timestamp=None, raw={"event_type": 7}, media_type=None),
    ),
    "media interrupted, media type not a number": (
        _event(event_type=7, media_type="AUDIO"),
        ev.MediaInterrupted(
            timestamp=None, raw={"event_type": 7, "media_type": "AUDIO"}, media_type=None
        ),
    ),
    "media interrupted, media type a boolean": (
        _event(event_type=7, media_type=True),
        ev.MediaInterrupted(timestamp=None, raw={"event_type": 7, "media_type": True}),
    ),
    "video on, participants": (
        _event(event_type=8, timestamp=107, participants=[{"user_id": 1}, {"user_id": 2}]),
        ev.ParticipantVideoChanged(user_ids=(1, 2), on=True, timestamp=107),
    ),
    "video on, top-level user": (
        _event(event_type=8, timestamp=108, user_id=16778240, user_name="Jane"),
        ev.ParticipantVideoChanged(user_ids=(16778240,), on=True, timestamp=108),
    ),
    "video off, top-level user": (
        _event(event_type=9, timestamp=109, user_id=5),
        ev.ParticipantVideoChanged(user_ids=(5,), on=False, timestamp=109),
    ),
    "video off, participants win over top-level user": (
        _event(event_type=9, timestamp=110, user_id=5, participants=[{"user_id": 6}]),
        ev.ParticipantVideoChanged(user_ids=(6,), on=False, timestamp=110),
    ),
    "video off, nobody": (
        _event(event_type=9),
        ev.ParticipantVideoChanged(user_ids=(), on=False, timestamp=None),
    ),
    "no timestamp": (
        _event(event_type=6),
        ev.SharingStopped(timestamp=None),
    ),
    "unknown event type": (
        _event(event_type=99, timestamp=111, whatever=[1]),
        ev.UnknownEventReceived(
            event_type=99, timestamp=111, raw={"event_type": 99, "timestamp": 111, "whatever": (1,)}
        ),
    ),
    "undefined event type": (
        _event(event_type=0),
        ev.UnknownEventReceived(event_type=0, timestamp=None, raw={"event_type": 0}),
    ),
    "event name instead of number": (
        _event(event_type="SHARING_STOP", timestamp=1),
        ev.SharingStopped(timestamp=1),
    ),
}


@pytest.mark.parametrize(("wire", "event"), list(EVENT_CASES.values()), ids=list(EVENT_CASES))
def test_event_update(wire: dict[str, object], event: ev.Event) -> None:
    assert receive(signaling(), wire) == [event]


@pytest.mark.parametrize(
    ("number", "event_type"),
    [
        (10, EventType.CHAT_GROUP_CREATE),
        (11, EventType.CHAT_GROUP_DELETE),
        (12, EventType.CHAT_GROUP_MEMBERS_ADD),
        (13, EventType.CHAT_GROUP_MEMBERS_DELETE),
        (14, EventType.CHAT_GROUP_MEMBER_STATUS_UPDATE),
    ],
)
def test_chat_group_events(number: int, event_type: EventType) -> None:
    wire = _event(event_type=number, timestamp=5, chat_groups=[{"id": "g"}])
    event = ev.ChatGroupChanged(
        event_type=event_type,
        timestamp=5,
        raw={"event_type": number, "timestamp": 5, "chat_groups": ({"id": "g"},)},
    )
    assert receive(signaling(), wire) == [event]
    out = receive(signaling(), wire)
    assert isinstance(out[0], ev.ChatGroupChanged)
    assert out[0].event_type is event_type


ZCC_INFO = {
    "channel_id": "ch-1",
    "participant_mode": "caller",
    "queue_id": "q-7",
    "queue_name": "Support",
    "phone_number": "+15550100",
    "user_id": "agent-42",
    "display_name": "Agent Smith",
}
ZCC_PARTICIPANT = m.ZccParticipant(**ZCC_INFO)


@pytest.mark.parametrize(
    ("number", "event_type"),
    [
        (8, ZccEventType.CONSUMER_ANSWERED),
        (9, ZccEventType.CONSUMER_END),
        (10, ZccEventType.USER_ANSWERED),
        (14, ZccEventType.MONITOR_STARTED),
        (29, ZccEventType.CONFERENCE_PARTICIPANT_LEFT),
        (1, 1),
        (77, 77),
    ],
)
def test_contact_center_maps_event_numbers_to_contact_center_events(
    number: int, event_type: ZccEventType | int
) -> None:
    conn = signaling(stream=product_stream(Product.CONTACT_CENTER))
    wire = _event(event_type=number, event_ts=1727384356000, paticipant_info=ZCC_INFO)
    out = receive(conn, wire)
    assert out == [
        ev.ContactCenterEvent(
            event_type=event_type,
            timestamp=1727384356000,
            participant=ZCC_PARTICIPANT,
            raw={"event_type": number, "event_ts": 1727384356000, "paticipant_info": ZCC_INFO},
        )
    ]
    assert isinstance(out[0], ev.ContactCenterEvent)
    assert type(out[0].event_type) is type(event_type)


def test_contact_center_event_without_participant() -> None:
    conn = media(MediaType.AUDIO, stream=product_stream(Product.CONTACT_CENTER))
    assert receive(conn, _event(event_type=9, timestamp=3)) == [
        ev.ContactCenterEvent(
            event_type=ZccEventType.CONSUMER_END,
            timestamp=3,
            participant=None,
            raw={"event_type": 9, "timestamp": 3},
        )
    ]


def test_a_contact_center_participant_makes_it_a_contact_center_event_for_any_product() -> None:
    wire = _event(event_type="CONSUMER_ANSWERED", event_ts=4, participant_info=ZCC_INFO)
    assert receive(signaling(), wire) == [
        ev.ContactCenterEvent(
            event_type=ZccEventType.CONSUMER_ANSWERED,
            timestamp=4,
            participant=ZCC_PARTICIPANT,
            raw={"event_type": 8, "event_ts": 4, "participant_info": ZCC_INFO},
        )
    ]


@pytest.mark.parametrize("product", [Product.WEBINAR, Product.VIDEO_SDK, Product.PHONE])
def test_other_products_read_meeting_events(product: Product) -> None:
    conn = signaling(stream=product_stream(product))
    assert receive(conn, _event(event_type=8, user_id=4)) == [
        ev.ParticipantVideoChanged(user_ids=(4,), on=True, timestamp=None)
    ]


# --- states and answers -----------------------------------------------------------------------

STATE_CASES: dict[str, tuple[dict[str, object], ev.Event]] = {
    "stream state": (
        {"msg_type": 8, "state": 4, "reason": 6, "timestamp": 1},
        ev.StreamStateChanged(state=StreamState.TERMINATED, reason=StopReason(6), timestamp=1),
    ),
    "stream state, mock's reason name": (
        {"msg_type": 8, "state": 4, "reason": "STOP_BC_MEETING_ENDED", "rtms_stream_id": "s"},
        ev.StreamStateChanged(
            state=StreamState.TERMINATED, reason=StopReason.MEETING_ENDED, timestamp=None
        ),
    ),
    "stream state, unknown numbers": (
        {"msg_type": 8, "state": 40, "reason": 400},
        ev.StreamStateChanged(state=40, reason=400, timestamp=None),
    ),
    "session state": (
        {
            "msg_type": 9,
            "state": 5,
            "stop_reason": 6,
            "timestamp": 2,
            "rtms_session_id": "sess-1",
        },
        ev.SessionStateChanged(
            session_id="sess-1", state=SessionState.STOPPED, stop_reason=StopReason(6), timestamp=2
        ),
    ),
    "session state, started": (
        {"msg_type": 9, "state": 2, "rtms_session_id": "sess-2"},
        ev.SessionStateChanged(
            session_id="sess-2", state=SessionState.STARTED, stop_reason=None, timestamp=None
        ),
    ),
    "session state answer": (
        {"msg_type": 11, "rtms_session_id": "sess-1", "state": 3, "timestamp": 3},
        ev.SessionStateReported(session_id="sess-1", state=SessionState.PAUSED, timestamp=3),
    ),
    "stream state answer": (
        {"msg_type": 20, "state": 1, "rtms_stream_id": "stream-1", "timestamp": 1694204592},
        ev.StreamStateReported(state=StreamState(1), timestamp=1694204592),
    ),
    "stream close answer": (
        {"msg_type": 22, "rtms_stream_id": "s", "status_code": 0, "reason": "OK", "timestamp": 4},
        ev.StreamCloseAcknowledged(status=StatusCode.STATUS_OK, reason="OK", timestamp=4),
    ),
    "stream close answer, unknown status": (
        {"msg_type": 22, "status_code": 99},
        ev.StreamCloseAcknowledged(status=99, reason="", timestamp=None),
    ),
    "stream close answer, no status": (
        {"msg_type": 22},
        ev.StreamCloseAcknowledged(status=None, reason="", timestamp=None),
    ),
    "video subscription answer": (
        {"msg_type": 29, "user_id": 16778240, "status_code": 0, "reason": "OK", "timestamp": 5},
        ev.VideoSubscriptionResult(
            user_id=16778240, status=StatusCode.STATUS_OK, reason="OK", subscribed=True
        ),
    ),
    "video subscription answer, duplicate": (
        {"msg_type": 29, "user_id": 7, "status_code": 44, "reason": "dup", "subscribe": True},
        ev.VideoSubscriptionResult(
            user_id=7,
            status=StatusCode.DUPLICATE_VIDEO_SUBSCRIPTION,
            reason="dup",
            subscribed=True,
        ),
    ),
    "video unsubscription answer": (
        {"msg_type": 29, "user_id": 7, "subscribe": False},
        ev.VideoSubscriptionResult(user_id=7, status=None, reason="", subscribed=False),
    ),
    "video subscription answer, unknown status": (
        {"msg_type": 29, "user_id": 7, "status_code": 1000},
        ev.VideoSubscriptionResult(user_id=7, status=1000, reason="", subscribed=True),
    ),
}


@pytest.mark.parametrize(("wire", "event"), list(STATE_CASES.values()), ids=list(STATE_CASES))
@pytest.mark.parametrize("make", BOTH)
def test_states_and_answers(make: Make, wire: dict[str, object], event: ev.Event) -> None:
    assert receive(make(), wire) == [event]


# --- metadata, unknown and misdirected messages -----------------------------------------------


@pytest.mark.parametrize("msg_type", [23, 24, 25, 26, 27])
@pytest.mark.parametrize("make", BOTH)
def test_metadata_messages(make: Make, msg_type: int) -> None:
    conn = make()
    wire = {"msg_type": msg_type, "content": {"lid": 1, "targets": [{"lid": 2}]}}
    assert receive(conn, wire) == [
        ev.MetadataReceived(
            sock=sock_of(conn),
            msg_type=msg_type,
            raw={"msg_type": msg_type, "content": {"lid": 1, "targets": ({"lid": 2},)}},
        )
    ]


@pytest.mark.parametrize("msg_type", [0, 30, 99, -4, 2**40])
@pytest.mark.parametrize("make", BOTH)
def test_unknown_message_types(make: Make, msg_type: int) -> None:
    conn = make()
    wire = {"msg_type": msg_type, "x": [1, {"y": None}]}
    assert receive(conn, wire) == [
        ev.UnknownMessageReceived(
            sock=sock_of(conn),
            msg_type=msg_type,
            raw={"msg_type": msg_type, "x": (1, {"y": None})},
        )
    ]


CLIENT_TO_SERVER: dict[str, dict[str, object]] = {
    "signaling handshake request (1)": {
        "msg_type": 1,
        "meeting_uuid": "u",
        "rtms_stream_id": "s",
        "signature": "x",
    },
    "media handshake request (3)": {
        "msg_type": 3,
        "meeting_uuid": "u",
        "rtms_stream_id": "s",
        "signature": "x",
        "media_type": 1,
    },
    "event subscription (5)": {"msg_type": 5, "events": [{"event_type": 2, "subscribe": True}]},
    "client ready (7)": {"msg_type": 7, "rtms_stream_id": "s"},
    "session state request (10)": {"msg_type": 10, "rtms_session_id": "x"},
    "keep-alive response (13)": {"msg_type": 13, "timestamp": 1},
    "stream state request (19)": {"msg_type": 19, "rtms_stream_id": "s"},
    "stream close request (21)": {"msg_type": 21, "rtms_stream_id": "s"},
    "video subscription request (28)": {"msg_type": 28, "user_id": 1, "subscribe": True},
}


@pytest.mark.parametrize("wire", list(CLIENT_TO_SERVER.values()), ids=list(CLIENT_TO_SERVER))
@pytest.mark.parametrize("make", BOTH)
def test_a_client_to_server_message_from_the_server_is_malformed(
    make: Make, wire: dict[str, object]
) -> None:
    conn = make()
    msg_type = wire["msg_type"]
    assert isinstance(msg_type, int)
    assert receive(conn, wire) == [
        ev.MalformedMessage(
            sock=sock_of(conn),
            error=m.DecodeError(
                msg_type=msg_type,
                field=None,
                detail="a client-to-server message arrived from the server",
            ),
        )
    ]


@pytest.mark.parametrize(
    ("make", "msg_type"),
    [
        pytest.param(signaling, 4, id="media answer on signaling"),
        pytest.param(lambda: media(MediaType.ALL), 2, id="signaling answer on media"),
    ],
)
def test_the_other_sockets_handshake_answer_is_malformed(make: Make, msg_type: int) -> None:
    conn = make()
    out = receive(conn, {"msg_type": msg_type, "status_code": 0})
    assert out == [
        ev.MalformedMessage(
            sock=sock_of(conn),
            error=m.DecodeError(
                msg_type=msg_type,
                field=None,
                detail="a client-to-server message arrived from the server",
            ),
        )
    ]


def test_malformed_fields_of_a_known_message() -> None:
    assert receive(signaling(), {"msg_type": 8, "state": "TERMINATED"}) == [
        ev.MalformedMessage(
            sock=SIG,
            error=m.DecodeError(
                msg_type=8, field="state", detail="expected an integer, got string"
            ),
        )
    ]


def test_an_empty_audio_payload() -> None:
    conn = media(MediaType.ALL)
    out = receive(conn, {"msg_type": 14, "content": {"data": ""}})
    assert out == [ev.AudioReceived(data=b"")]
