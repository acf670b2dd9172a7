"""The wire codec: round trips, totality of decoding, malformed input, and specific behaviours."""

from __future__ import annotations

import base64
import dataclasses
import json
from types import MappingProxyType
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtms_proto import (
    AudioParams,
    ChatParams,
    DeskshareParams,
    InvalidConfig,
    MediaParams,
    TranscriptParams,
    VideoParams,
)
from rtms_proto import events as ev
from rtms_proto._fields import WireFieldError
from rtms_proto._json import MAX_JSON_DEPTH
from rtms_proto.enums import (
    ChatOperation,
    ChatSessionType,
    EventType,
    MediaType,
    MessageType,
    SessionState,
    StopReason,
    StreamState,
    TranscriptLanguage,
    ZccEventType,
)
from rtms_proto.messages import (
    INSTANCE_ID_KEYS,
    AudioData,
    ChatData,
    ChatFile,
    ChatUser,
    ClientReady,
    DecodeError,
    DeskshareData,
    EventSubscription,
    EventSubscriptionItem,
    EventUpdate,
    KeepAliveRequest,
    KeepAliveResponse,
    MediaHandshakeRequest,
    MediaHandshakeResponse,
    Message,
    MetadataMessage,
    Participant,
    SessionStateRequest,
    SessionStateResponse,
    SessionStateUpdate,
    SignalingHandshakeRequest,
    SignalingHandshakeResponse,
    StreamCloseRequest,
    StreamCloseResponse,
    StreamStateRequest,
    StreamStateResponse,
    StreamStateUpdate,
    StructuredChat,
    TranscriptData,
    UnknownMessage,
    VideoData,
    VideoSubscriptionRequest,
    VideoSubscriptionResponse,
    ZccParticipant,
    decode_message,
    encode_message,
)

MESSAGE_CLASSES: tuple[type[Any], ...] = get_args(Message)


def wire(obj: object) -> bytes:
    return json.dumps(obj).encode()


def decoded(obj: object) -> Message:
    result = decode_message(wire(obj))
    assert not isinstance(result, DecodeError), str(result)
    return result


# --- strategies -----------------------------------------------------------------------------

# Surrogates included: JSON can carry them ("\ud800"), and encoding escapes them.
text = st.text(st.characters(exclude_categories=()), max_size=12)
# RTMS integers are at most 64-bit (timestamps are "unsigned long long").
ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
opt_int = st.none() | ints
opt_text = st.none() | text
opt_bool = st.none() | st.booleans()


def _json_values() -> st.SearchStrategy[Any]:
    leaves = (
        st.none() | st.booleans() | ints | st.floats(allow_nan=False, allow_infinity=False) | text
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    )


json_values = _json_values()
json_objects = st.dictionaries(text, json_values, max_size=4)


def _enum_or_int(members: list[int]) -> st.SearchStrategy[int]:
    return st.sampled_from(members) | ints


media_params = st.builds(
    MediaParams,
    audio=st.none()
    | st.builds(
        AudioParams,
        content_type=ints,
        sample_rate=ints,
        channel=ints,
        codec=ints,
        data_opt=ints,
        send_rate=ints,
    ),
    video=st.none()
    | st.builds(
        VideoParams, content_type=ints, codec=ints, resolution=ints, data_opt=ints, fps=ints
    ),
    deskshare=st.none()
    | st.builds(DeskshareParams, content_type=ints, codec=ints, resolution=ints, fps=ints),
    transcript=st.none()
    | st.builds(
        TranscriptParams, content_type=ints, src_language=opt_int, enable_lid=st.booleans()
    ),
    chat=st.none() | st.builds(ChatParams, content_type=ints),
)
id_keys = st.lists(st.sampled_from(INSTANCE_ID_KEYS), min_size=1, unique=True).map(tuple)
media_urls = st.dictionaries(text, text, max_size=4)


def _unknown_stop_name(name: str) -> bool:
    key = name.upper().removeprefix("STOP_BC_")
    return key not in StopReason.__members__ and key not in {
        "APP_DISABLED_BY_HOST",
        "MEETING_CONNECTION_INTERRUPTED",
    }


stop_reasons = (
    st.none() | st.sampled_from(list(StopReason)) | ints | text.filter(_unknown_stop_name)
)
participants = st.lists(st.builds(Participant, user_id=ints, user_name=opt_text), max_size=3).map(
    tuple
)
zcc = st.none() | st.builds(
    ZccParticipant,
    channel_id=opt_text,
    participant_mode=opt_text,
    queue_id=opt_text,
    queue_name=opt_text,
    phone_number=opt_text,
    user_id=opt_text,
    display_name=opt_text,
)
EVENT_KEYS = {
    "event_type",
    "timestamp",
    "event_ts",
    "user_id",
    "user_name",
    "participants",
    "paticipant_info",
    "participant_info",
}
event_extras = st.dictionaries(text.filter(lambda k: k not in EVENT_KEYS), json_values, max_size=3)


@st.composite
def structured_chats(draw: st.DrawFn) -> tuple[str, StructuredChat]:
    """A structured chat object, its wire JSON text and the value it must decode to."""
    chat = draw(
        st.builds(
            StructuredChat,
            session_type=opt_int,
            session_id=opt_text,
            operation=opt_int,
            message_id=opt_text,
            parent_message_id=opt_text,
            sender=st.none() | st.builds(ChatUser, user_id=opt_int | text, user_name=opt_text),
            receiver=st.none() | st.builds(ChatUser, user_id=opt_int | text, user_name=opt_text),
            files=st.lists(
                st.builds(ChatFile, file_id=opt_text, file_name=opt_text, file_size=opt_int),
                max_size=2,
            ).map(tuple),
            delete_file_ids=st.lists(text, max_size=2).map(tuple),
            text=opt_text,
        )
    )
    obj: dict[str, object] = {
        "chat_session": {"type": chat.session_type, "id": chat.session_id},
        "operation_type": chat.operation,
        "message_id": chat.message_id,
        "parent_message_id": chat.parent_message_id,
        "sender": None if chat.sender is None else dataclasses.asdict(chat.sender),
        "receiver": None if chat.receiver is None else dataclasses.asdict(chat.receiver),
        "files": [dataclasses.asdict(f) for f in chat.files],
        "delete_file_id_list": list(chat.delete_file_ids),
        "data": chat.text,
    }
    return json.dumps(obj, indent=draw(st.none() | st.just(1))), chat


@st.composite
def chat_messages(draw: st.DrawFn) -> ChatData:
    if draw(st.booleans()):
        body, chat = draw(structured_chats())
        return ChatData(text=body, user_id=draw(opt_int), user_name=draw(opt_text), chat=chat)
    plain = draw(text.filter(lambda t: not t.lstrip().startswith("{")))
    return ChatData(text=plain, user_id=draw(opt_int), timestamp=draw(opt_int))


def _media(cls: type[AudioData | VideoData | DeskshareData]) -> st.SearchStrategy[Any]:
    return st.builds(
        cls,
        data=st.binary(max_size=64),
        user_id=opt_int,
        user_name=opt_text,
        timestamp=opt_int,
        length=opt_int,
        channel_id=opt_text,
    )


STRATEGIES: dict[type[Any], st.SearchStrategy[Any]] = {
    SignalingHandshakeRequest: st.builds(
        SignalingHandshakeRequest,
        instance_id=text,
        rtms_stream_id=text,
        signature=text,
        id_keys=id_keys,
        protocol_version=opt_int,
        sequence=opt_int,
        buffer_data=opt_bool,
        client_agent=opt_text,
    ),
    SignalingHandshakeResponse: st.builds(
        SignalingHandshakeResponse,
        status_code=opt_int,
        reason=text,
        media_urls=media_urls,
        protocol_version=opt_int,
        sequence=opt_int,
        datacenter_region=opt_text,
    ),
    MediaHandshakeRequest: st.builds(
        MediaHandshakeRequest,
        instance_id=text,
        rtms_stream_id=text,
        signature=text,
        media_type=st.integers(min_value=0, max_value=2**40).map(MediaType),
        media_params=st.none() | media_params,
        id_keys=id_keys,
        protocol_version=opt_int,
        sequence=opt_int,
        payload_encryption=opt_bool,
        client_agent=opt_text,
    ),
    MediaHandshakeResponse: st.builds(
        MediaHandshakeResponse,
        status_code=opt_int,
        reason=text,
        media_params=st.none() | media_params,
        protocol_version=opt_int,
        sequence=opt_int,
        payload_encrypted=opt_bool,
    ),
    EventSubscription: st.builds(
        EventSubscription,
        events=st.lists(
            st.builds(EventSubscriptionItem, event_type=ints, subscribe=st.booleans()),
            max_size=4,
        ).map(tuple),
    ),
    EventUpdate: st.builds(
        EventUpdate,
        event_type=ints,
        timestamp=opt_int,
        user_id=opt_int,
        user_name=opt_text,
        participants=participants,
        zcc_participant=zcc,
        raw=event_extras,
    ),
    ClientReady: st.builds(ClientReady, rtms_stream_id=text),
    StreamStateUpdate: st.builds(
        StreamStateUpdate,
        state=_enum_or_int(list(StreamState)),
        reason=stop_reasons,
        timestamp=opt_int,
        rtms_stream_id=opt_text,
    ),
    SessionStateUpdate: st.builds(
        SessionStateUpdate,
        state=_enum_or_int(list(SessionState)),
        stop_reason=stop_reasons,
        timestamp=opt_int,
        rtms_session_id=opt_text,
    ),
    SessionStateRequest: st.builds(SessionStateRequest, rtms_session_id=text),
    SessionStateResponse: st.builds(
        SessionStateResponse, rtms_session_id=opt_text, state=ints, timestamp=opt_int
    ),
    KeepAliveRequest: st.builds(KeepAliveRequest, timestamp=opt_int, sequence=opt_int),
    KeepAliveResponse: st.builds(KeepAliveResponse, timestamp=opt_int, sequence=opt_int),
    AudioData: _media(AudioData),
    VideoData: _media(VideoData),
    DeskshareData: _media(DeskshareData),
    TranscriptData: st.builds(
        TranscriptData,
        text=text,
        user_id=opt_int,
        user_name=opt_text,
        timestamp=opt_int,
        start_time=opt_int,
        end_time=opt_int,
        language=st.none() | _enum_or_int(list(TranscriptLanguage)),
        attribute=st.none() | ints | text,
        channel_id=opt_text,
    ),
    ChatData: chat_messages(),
    StreamStateRequest: st.builds(StreamStateRequest, rtms_stream_id=text),
    StreamStateResponse: st.builds(
        StreamStateResponse, state=ints, rtms_stream_id=opt_text, timestamp=opt_int
    ),
    StreamCloseRequest: st.builds(StreamCloseRequest, rtms_stream_id=text),
    StreamCloseResponse: st.builds(
        StreamCloseResponse,
        rtms_stream_id=opt_text,
        status_code=opt_int,
        reason=text,
        timestamp=opt_int,
    ),
    VideoSubscriptionRequest: st.builds(
        VideoSubscriptionRequest, user_id=ints, subscribe=st.booleans(), timestamp=opt_int
    ),
    VideoSubscriptionResponse: st.builds(
        VideoSubscriptionResponse,
        user_id=ints,
        status_code=opt_int,
        reason=text,
        timestamp=opt_int,
        subscribe=opt_bool,
    ),
    MetadataMessage: st.builds(
        MetadataMessage, msg_type=st.integers(min_value=23, max_value=27), raw=json_objects
    ),
    UnknownMessage: st.builds(
        UnknownMessage,
        msg_type=ints.filter(lambda n: not 1 <= n <= 29),
        raw=json_objects,
    ),
}
any_message = st.one_of(*STRATEGIES.values())


def test_every_message_class_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(MESSAGE_CLASSES)


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda c: c.__name__)
@given(data=st.data())
def test_encode_then_decode_gives_the_same_message(cls: type[Any], data: st.DataObject) -> None:
    msg = data.draw(STRATEGIES[cls])
    encoded = encode_message(msg)
    assert decode_message(encoded) == msg  # binary frame
    assert decode_message(encoded.decode("ascii")) == msg  # text frame
    again = decode_message(encoded)
    assert not isinstance(again, DecodeError)
    assert encode_message(again) == encoded


@given(any_message)
def test_encoding_is_compact_json_object_with_integer_msg_type(msg: Message) -> None:
    encoded = encode_message(msg)
    obj = json.loads(encoded)
    assert json.dumps(obj, separators=(",", ":")).encode() == encoded
    assert type(obj["msg_type"]) is int
    assert obj["msg_type"] == msg.msg_type


def _walk_json(value: object) -> list[object]:
    out = [value]
    if isinstance(value, dict):
        for item in value.values():
            out += _walk_json(item)
    elif isinstance(value, list):
        for item in value:
            out += _walk_json(item)
    return out


def test_enums_are_encoded_as_numbers_never_names() -> None:
    messages: list[Message] = [
        StreamStateUpdate(state=StreamState.TERMINATED, reason=StopReason.MEETING_ENDED),
        SessionStateUpdate(state=SessionState.STOPPED, stop_reason=StopReason.USER_LEFT),
        MediaHandshakeRequest(
            instance_id="i",
            rtms_stream_id="s",
            signature="x",
            media_type=MediaType.AUDIO | MediaType.TRANSCRIPT,
            media_params=MediaParams(audio=AudioParams(), transcript=TranscriptParams()),
        ),
        TranscriptData(text="t", language=TranscriptLanguage.FRENCH_FRANCE),
        EventSubscription(
            events=(EventSubscriptionItem(event_type=EventType.PARTICIPANT_JOIN, subscribe=True),)
        ),
        EventUpdate(event_type=ZccEventType.USER_HOLD),
    ]
    for msg in messages:
        obj = json.loads(encode_message(msg))
        strings = [v for v in _walk_json(obj) if isinstance(v, str)]
        assert strings == [v for v in strings if v in {"i", "s", "x", "t"}], strings
    assert json.loads(encode_message(messages[2]))["media_type"] == 9


# --- totality -------------------------------------------------------------------------------

WIRE_KEYS = [
    "msg_type", *INSTANCE_ID_KEYS, "rtms_stream_id", "signature", "protocol_version",
    "sequence", "buffer_data", "rtms_client_agent", "status_code", "reason", "media_server",
    "server_urls", "datacenter_region", "media_type", "media_params", "audio", "video",
    "deskshare", "transcript", "chat", "content_type", "sample_rate", "channel", "codec",
    "data_opt", "send_rate", "resolution", "fps", "src_language", "language", "enable_lid",
    "payload_encryption", "payload_encrypted", "events", "event_type", "subscribe", "event",
    "timestamp", "event_ts", "user_id", "user_name", "participants", "paticipant_info",
    "participant_info", "channel_id", "participant_mode", "queue_id", "queue_name",
    "phone_number", "display_name", "state", "stop_reason", "rtms_session_id", "content",
    "data", "length", "start_time", "end_time", "attribute", "chat_session", "type", "id",
    "operation_type", "sender", "receiver", "files", "file_size", "delete_file_id_list",
]  # fmt: skip
interesting_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=40)
    | ints
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | st.sampled_from(
        [
            "",
            "12",
            "QUJD",
            "QUI",
            "!!",
            "STOP_BC_MEETING_ENDED",
            "MEETING_ENDED",
            "participant_join",
            "CONSUMER_ANSWERED",
            '{"chat_session":{"type":1},"sender":{"user_id":"u"},"data":"x"}',
            '{"files":[1]}',
            "{",
        ]
    )
)
junk_values = st.recursive(
    interesting_leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(WIRE_KEYS) | text, inner, max_size=6)
    ),
    max_leaves=25,
)
junk_messages = st.builds(
    lambda msg_type, rest: {**rest, "msg_type": msg_type},
    st.integers(min_value=-1, max_value=31) | junk_values,
    st.dictionaries(st.sampled_from(WIRE_KEYS), junk_values, max_size=8),
)


def _check_total(data: bytes | str) -> None:
    """Decoding returns a value; a decoded message re-encodes to itself (one-round fixpoint)."""
    result = decode_message(data)
    assert isinstance(result, (DecodeError, *MESSAGE_CLASSES))
    if isinstance(result, DecodeError):
        assert result.detail
        str(result)
    else:
        assert decode_message(encode_message(result)) == result


@given(st.binary())
def test_decode_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    _check_total(data)


@given(text)
def test_decode_never_raises_on_arbitrary_text(data: str) -> None:
    _check_total(data)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=400)
@given(junk_messages)
def test_decode_never_raises_on_json_shaped_junk(obj: dict[str, Any]) -> None:
    _check_total(json.dumps(obj))


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=400)
@given(any_message, st.data())
def test_decode_never_raises_on_mutated_valid_messages(msg: Message, data: st.DataObject) -> None:
    """Replace one value anywhere in a valid message with junk: still a value, never a raise."""
    obj = json.loads(encode_message(msg))
    path = data.draw(st.sampled_from(_paths(obj)[1:]))
    target: Any = obj
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = data.draw(junk_values)
    _check_total(json.dumps(obj))


# --- malformed input ------------------------------------------------------------------------

SIG = {"meeting_uuid": "m", "rtms_stream_id": "s", "signature": "x"}
MEDIA = {**SIG, "media_type": 1}


def _media_data(msg_type: int, **content: object) -> dict[str, object]:
    return {"msg_type": msg_type, "content": {"data": "QUJD", **content}}


MALFORMED: list[tuple[dict[str, Any], str]] = [
    # 1 signaling handshake request
    ({"msg_type": 1, "rtms_stream_id": "s", "signature": "x"}, "meeting_uuid"),
    ({"msg_type": 1, **SIG, "meeting_uuid": 5}, "meeting_uuid"),
    ({"msg_type": 1, **SIG, "call_id": ["m"]}, "call_id"),
    ({"msg_type": 1, **SIG, "session_id": "other"}, "session_id"),
    ({"msg_type": 1, "meeting_uuid": "m", "signature": "x"}, "rtms_stream_id"),
    ({"msg_type": 1, **SIG, "signature": 123}, "signature"),
    ({"msg_type": 1, **SIG, "protocol_version": "1"}, "protocol_version"),
    ({"msg_type": 1, **SIG, "protocol_version": True}, "protocol_version"),
    ({"msg_type": 1, **SIG, "sequence": 1.0}, "sequence"),
    ({"msg_type": 1, **SIG, "buffer_data": 0}, "buffer_data"),
    ({"msg_type": 1, **SIG, "rtms_client_agent": 1}, "rtms_client_agent"),
    # 2 signaling handshake response
    ({"msg_type": 2, "status_code": "0"}, "status_code"),
    ({"msg_type": 2, "status_code": False}, "status_code"),
    ({"msg_type": 2, "reason": 5}, "reason"),
    ({"msg_type": 2, "media_server": []}, "media_server"),
    ({"msg_type": 2, "media_server": {"server_urls": "wss://x"}}, "media_server.server_urls"),
    (
        {"msg_type": 2, "media_server": {"server_urls": {"audio": 1}}},
        "media_server.server_urls.audio",
    ),
    ({"msg_type": 2, "media_server": {"datacenter_region": 5}}, "media_server.datacenter_region"),
    # 3 media handshake request
    ({"msg_type": 3, **SIG}, "media_type"),
    ({"msg_type": 3, **SIG, "media_type": -1}, "media_type"),
    ({"msg_type": 3, **SIG, "media_type": "AUDIO"}, "media_type"),
    ({"msg_type": 3, **MEDIA, "media_params": []}, "media_params"),
    ({"msg_type": 3, **MEDIA, "media_params": {"audio": 5}}, "media_params.audio"),
    (
        {"msg_type": 3, **MEDIA, "media_params": {"audio": {"sample_rate": "48000"}}},
        "media_params.audio.sample_rate",
    ),
    ({"msg_type": 3, **MEDIA, "media_params": {"video": {"fps": True}}}, "media_params.video.fps"),
    (
        {"msg_type": 3, **MEDIA, "media_params": {"transcript": {"src_language": "en"}}},
        "media_params.transcript.src_language",
    ),
    ({"msg_type": 3, **MEDIA, "payload_encryption": "no"}, "payload_encryption"),
    ({"msg_type": 3, **MEDIA, "signature": None}, "signature"),
    # 4 media handshake response
    ({"msg_type": 4, "status_code": 0, "payload_encrypted": 1}, "payload_encrypted"),
    ({"msg_type": 4, "status_code": 0, "payload_encryption": "x"}, "payload_encryption"),
    (
        {"msg_type": 4, "media_params": {"chat": {"content_type": "5"}}},
        "media_params.chat.content_type",
    ),
    ({"msg_type": 4, "reason": []}, "reason"),
    # 5 event subscription
    ({"msg_type": 5}, "events"),
    ({"msg_type": 5, "events": {}}, "events"),
    ({"msg_type": 5, "events": [None]}, "events[0]"),
    ({"msg_type": 5, "events": [{"event_type": 2, "subscribe": True}, 3]}, "events[1]"),
    ({"msg_type": 5, "events": [{"event_type": "2", "subscribe": True}]}, "events[0].event_type"),
    ({"msg_type": 5, "events": [{"event_type": 2}]}, "events[0].subscribe"),
    ({"msg_type": 5, "events": [{"event_type": 2, "subscribe": 1}]}, "events[0].subscribe"),
    # 6 event update
    ({"msg_type": 6}, "event"),
    ({"msg_type": 6, "event": []}, "event"),
    ({"msg_type": 6, "event": {}}, "event.event_type"),
    ({"msg_type": 6, "event": {"event_type": "NOT_AN_EVENT"}}, "event.event_type"),
    ({"msg_type": 6, "event": {"event_type": 1.0}}, "event.event_type"),
    ({"msg_type": 6, "event": {"event_type": True}}, "event.event_type"),
    ({"msg_type": 6, "event": {"event_type": 1, "timestamp": "now"}}, "event.timestamp"),
    ({"msg_type": 6, "event": {"event_type": 1, "event_ts": "now"}}, "event.event_ts"),
    ({"msg_type": 6, "event": {"event_type": 2, "user_id": "abc"}}, "event.user_id"),
    ({"msg_type": 6, "event": {"event_type": 2, "user_id": "-5"}}, "event.user_id"),
    ({"msg_type": 6, "event": {"event_type": 2, "user_id": "1" * 21}}, "event.user_id"),
    ({"msg_type": 6, "event": {"event_type": 2, "user_id": 1.5}}, "event.user_id"),
    ({"msg_type": 6, "event": {"event_type": 2, "user_name": 5}}, "event.user_name"),
    ({"msg_type": 6, "event": {"event_type": 3, "participants": {}}}, "event.participants"),
    ({"msg_type": 6, "event": {"event_type": 3, "participants": [5]}}, "event.participants[0]"),
    (
        {"msg_type": 6, "event": {"event_type": 3, "participants": [{"user_name": "a"}]}},
        "event.participants[0].user_id",
    ),
    (
        {
            "msg_type": 6,
            "event": {"event_type": 3, "participants": [{"user_id": 1}, {"user_id": "١٢"}]},
        },
        "event.participants[1].user_id",
    ),
    (
        {
            "msg_type": 6,
            "event": {"event_type": 3, "participants": [{"user_id": 1, "user_name": 2}]},
        },
        "event.participants[0].user_name",
    ),
    ({"msg_type": 6, "event": {"event_type": 8, "paticipant_info": "x"}}, "event.paticipant_info"),
    (
        {"msg_type": 6, "event": {"event_type": 8, "participant_info": {"user_id": 5}}},
        "event.participant_info.user_id",
    ),
    (
        {"msg_type": 6, "event": {"event_type": 8, "paticipant_info": {"queue_name": []}}},
        "event.paticipant_info.queue_name",
    ),
    # 7-13
    ({"msg_type": 7}, "rtms_stream_id"),
    ({"msg_type": 7, "rtms_stream_id": 7}, "rtms_stream_id"),
    ({"msg_type": 8, "reason": 1}, "state"),
    ({"msg_type": 8, "state": "4"}, "state"),
    ({"msg_type": 8, "state": 4, "reason": 4.5}, "reason"),
    ({"msg_type": 8, "state": 4, "reason": True}, "reason"),
    ({"msg_type": 8, "state": 4, "timestamp": "x"}, "timestamp"),
    ({"msg_type": 8, "state": 4, "rtms_stream_id": 5}, "rtms_stream_id"),
    ({"msg_type": 9, "state": None}, "state"),
    ({"msg_type": 9, "state": 5, "stop_reason": []}, "stop_reason"),
    ({"msg_type": 9, "state": 5, "reason": {}}, "reason"),
    ({"msg_type": 9, "state": 5, "session_id": 5}, "session_id"),
    ({"msg_type": 9, "state": 5, "rtms_session_id": 5}, "rtms_session_id"),
    ({"msg_type": 10}, "rtms_session_id"),
    ({"msg_type": 11, "rtms_session_id": "s"}, "state"),
    ({"msg_type": 11, "state": 1, "rtms_session_id": 1}, "rtms_session_id"),
    ({"msg_type": 11, "state": 1, "timestamp": []}, "timestamp"),
    ({"msg_type": 12, "timestamp": "1727384360000"}, "timestamp"),
    ({"msg_type": 12, "timestamp": 1.5}, "timestamp"),
    ({"msg_type": 12, "sequence": True}, "sequence"),
    ({"msg_type": 13, "timestamp": {}}, "timestamp"),
    # 14-16 media data
    ({"msg_type": 14}, "content"),
    ({"msg_type": 15, "content": "QUJD"}, "content"),
    ({"msg_type": 16, "content": {}}, "content.data"),
    ({"msg_type": 14, "content": {"data": 5}}, "content.data"),
    ({"msg_type": 14, "content": {"data": None}}, "content.data"),
    (_media_data(14, data="!!!!"), "content.data"),
    (_media_data(14, data="QUJD\n"), "content.data"),
    (_media_data(14, data="QU JD"), "content.data"),
    (_media_data(14, data="Q"), "content.data"),
    (_media_data(14, data="QUJDé"), "content.data"),
    (_media_data(14, data="QU-_"), "content.data"),
    (_media_data(14, user_id="x"), "content.user_id"),
    (_media_data(14, user_id=False), "content.user_id"),
    (_media_data(15, user_name=5), "content.user_name"),
    (_media_data(16, timestamp="1"), "content.timestamp"),
    (_media_data(14, length="8"), "content.length"),
    (_media_data(14, channel_id=5), "content.channel_id"),
    # 17 transcript
    ({"msg_type": 17}, "content"),
    ({"msg_type": 17, "content": {}}, "content.data"),
    ({"msg_type": 17, "content": {"data": 5}}, "content.data"),
    ({"msg_type": 17, "content": {"data": "t", "language": "en"}}, "content.language"),
    ({"msg_type": 17, "content": {"data": "t", "attribute": []}}, "content.attribute"),
    ({"msg_type": 17, "content": {"data": "t", "attribute": True}}, "content.attribute"),
    ({"msg_type": 17, "content": {"data": "t", "start_time": "0"}}, "content.start_time"),
    ({"msg_type": 17, "content": {"data": "t", "end_time": 0.5}}, "content.end_time"),
    ({"msg_type": 17, "content": {"data": "t", "channel_id": 1}}, "content.channel_id"),
    ({"msg_type": 17, "content": {"data": "t", "user_id": "u"}}, "content.user_id"),
    ({"msg_type": 17, "content": {"data": "t", "user_name": 1}}, "content.user_name"),
    ({"msg_type": 17, "content": {"data": "t", "timestamp": "1"}}, "content.timestamp"),
    # 18 chat
    ({"msg_type": 18, "content": []}, "content"),
    ({"msg_type": 18, "content": {}}, "content.data"),
    ({"msg_type": 18, "content": {"data": {"text": "hi"}}}, "content.data"),
    ({"msg_type": 18, "content": {"data": "hi", "user_id": {}}}, "content.user_id"),
    ({"msg_type": 18, "content": {"data": "hi", "user_name": 5}}, "content.user_name"),
    ({"msg_type": 18, "content": {"data": "hi", "timestamp": "x"}}, "content.timestamp"),
    # 19-22, 28-29
    ({"msg_type": 19}, "rtms_stream_id"),
    ({"msg_type": 20}, "state"),
    ({"msg_type": 20, "state": 1, "rtms_stream_id": 5}, "rtms_stream_id"),
    ({"msg_type": 20, "state": 1, "timestamp": "x"}, "timestamp"),
    ({"msg_type": 21, "rtms_stream_id": None}, "rtms_stream_id"),
    ({"msg_type": 22, "status_code": "0"}, "status_code"),
    ({"msg_type": 22, "reason": 5}, "reason"),
    ({"msg_type": 22, "rtms_stream_id": []}, "rtms_stream_id"),
    ({"msg_type": 22, "timestamp": "1"}, "timestamp"),
    ({"msg_type": 28, "subscribe": True}, "user_id"),
    ({"msg_type": 28, "user_id": "abc", "subscribe": True}, "user_id"),
    ({"msg_type": 28, "user_id": 1}, "subscribe"),
    ({"msg_type": 28, "user_id": 1, "subscribe": "true"}, "subscribe"),
    ({"msg_type": 28, "user_id": 1, "subscribe": True, "timestamp": "x"}, "timestamp"),
    ({"msg_type": 29}, "user_id"),
    ({"msg_type": 29, "user_id": 1, "status_code": "0"}, "status_code"),
    ({"msg_type": 29, "user_id": 1, "subscribe": 1}, "subscribe"),
    ({"msg_type": 29, "user_id": 1, "reason": False}, "reason"),
]


@pytest.mark.parametrize(("obj", "field"), MALFORMED, ids=lambda v: str(v)[:70])
def test_malformed_message_gives_decode_error_naming_type_and_field(
    obj: dict[str, Any], field: str
) -> None:
    result = decode_message(wire(obj))
    assert isinstance(result, DecodeError), result
    assert result.msg_type == obj["msg_type"]
    assert result.field == field
    text_form = str(result)
    assert f"{MessageType(obj['msg_type']).name} (msg_type {obj['msg_type']})" in text_form
    assert repr(field) in text_form


def test_decode_error_details() -> None:
    missing = decode_message(wire({"msg_type": 7}))
    assert missing == DecodeError(msg_type=7, field="rtms_stream_id", detail="missing")
    null = decode_message(wire({"msg_type": 7, "rtms_stream_id": None}))
    assert null == DecodeError(msg_type=7, field="rtms_stream_id", detail="is null")
    wrong = decode_message(wire({"msg_type": 7, "rtms_stream_id": 7}))
    assert wrong == DecodeError(
        msg_type=7, field="rtms_stream_id", detail="expected a string, got integer"
    )
    assert str(wrong) == (
        "cannot decode CLIENT_READY_ACK (msg_type 7): field 'rtms_stream_id': "
        "expected a string, got integer"
    )
    listed = decode_message(wire({"msg_type": 5, "events": [None]}))
    assert listed == DecodeError(
        msg_type=5, field="events[0]", detail="expected an object, got null"
    )


def test_decode_error_str_without_field_or_known_type() -> None:
    assert str(DecodeError(msg_type=None, field=None, detail="x")) == "cannot decode message: x"
    assert (
        str(DecodeError(msg_type=99, field=None, detail="x"))
        == "cannot decode unknown message (msg_type 99): x"
    )


def test_decode_error_never_quotes_the_signature() -> None:
    secret = "f00dfacef00dfacef00dfacef00dfacef00dfacef00dface"
    bad = {"msg_type": 1, "meeting_uuid": "m", "rtms_stream_id": 5, "signature": secret}
    result = decode_message(wire(bad))
    assert isinstance(result, DecodeError)
    assert secret not in str(result) and secret not in repr(result)


ENVELOPE: list[tuple[bytes | str, str | None, str]] = [
    (b"", None, "not valid JSON"),
    (b"not json", None, "not valid JSON"),
    (b'{"msg_type": 12', None, "not valid JSON"),
    (b'{"msg_type": 12} trailing', None, "Extra data"),
    (b'{"msg_type": 12}{"msg_type": 13}', None, "Extra data"),
    (b"\xff\xfe{}", None, "not UTF-8: invalid start byte at byte 0"),
    (b'{"msg_type": 12, "x": "\xc3"}', None, "not UTF-8"),
    (b"\xef\xbb\xbf{}", None, "not valid JSON"),  # BOM
    ('\ufeff{"msg_type": 12}', None, "not valid JSON"),
    (b"[1, 2]", None, "expected a JSON object, got array"),
    (b'"text"', None, "expected a JSON object, got string"),
    (b"12", None, "expected a JSON object, got integer"),
    (b"null", None, "expected a JSON object, got null"),
    (b"{}", "msg_type", "missing"),
    (b'{"msg_type": null}', "msg_type", "is null"),
    (b'{"msg_type": "12"}', "msg_type", "expected an integer, got string"),
    (b'{"msg_type": 12.0}', "msg_type", "expected an integer, got number"),
    (b'{"msg_type": true}', "msg_type", "expected an integer, got boolean"),
    (b'{"msg_type": [12]}', "msg_type", "expected an integer, got array"),
    (b'{"msg_type": NaN}', None, "NaN is not valid JSON"),
    (b'{"msg_type": 12, "timestamp": Infinity}', None, "Infinity is not valid JSON"),
    (b'{"msg_type": 12, "timestamp": -Infinity}', None, "not valid JSON"),
    (b'{"msg_type": 12, "timestamp": 1e999}', None, "out of range"),
    (b'{"msg_type": ' + b"9" * 5000 + b"}", None, "not valid JSON"),  # int digit limit
    (b"[" * 100_000 + b"]" * 100_000, None, "too large: more than 16384 JSON items"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, None, "too large: more than 16384 JSON items"),
    (b"[" * 5_000 + b"]" * 5_000, None, "not valid JSON"),  # nesting beyond the parsers' limit
]


@pytest.mark.parametrize(("data", "field", "detail"), ENVELOPE, ids=lambda v: repr(v)[:40])
def test_bad_envelope_gives_decode_error(data: bytes | str, field: str | None, detail: str) -> None:
    result = decode_message(data)
    assert isinstance(result, DecodeError)
    assert result.msg_type is None
    assert result.field == field
    assert detail in result.detail


@pytest.mark.parametrize(
    "data",
    [
        b' {"msg_type": 13}',
        b'{"msg_type": 13}\n',
        '\t{"msg_type": 13} \r\n',
        bytearray(b'{"msg_type": 13}'),
        memoryview(b'{"msg_type":13}'),
    ],
    ids=repr,
)
def test_surrounding_whitespace_and_buffer_types_are_accepted(data: Any) -> None:
    assert decode_message(data) == KeepAliveResponse()


def test_raw_is_kept_up_to_max_json_depth_and_refused_beyond() -> None:
    """A kept ``raw`` nests at most MAX_JSON_DEPTH deep (the message is level 1), so
    anyone may walk it recursively; one level more is a DecodeError, on either parser."""
    depth = MAX_JSON_DEPTH - 1
    result = decoded({"msg_type": 99, "x": json.loads("[" * depth + "]" * depth)})
    assert isinstance(result, UnknownMessage)
    node: object = result.raw["x"]
    for _ in range(depth - 1):
        assert isinstance(node, tuple)
        node = node[0]
    assert node == ()
    nest = "[" * (depth + 1) + "]" * (depth + 1)
    for surrogate in ("", "\\ud800"):  # the second goes through the stdlib parser
        unknown = '{"msg_type":99,"s":"' + surrogate + '","x":' + nest + "}"
        event = '{"msg_type":6,"event":{"event_type":2,"s":"' + surrogate + '","x":' + nest + "}}"
        for text, msg_type in ((unknown, 99), (event, 6)):
            refused = decode_message(text)
            assert isinstance(refused, DecodeError) and refused.msg_type == msg_type
            assert refused.detail == f"too large: nested deeper than {MAX_JSON_DEPTH} levels"


# --- tolerance and normalization ------------------------------------------------------------


def test_unknown_keys_are_ignored() -> None:
    msg = decoded(
        {"msg_type": 12, "timestamp": 5, "protocol_version": 1, "status_code": 0, "x": {"y": []}}
    )
    assert msg == KeepAliveRequest(timestamp=5)


def test_null_optional_fields_read_as_absent() -> None:
    msg = decoded(
        {
            "msg_type": 22,
            "rtms_stream_id": None,
            "status_code": None,
            "reason": None,
            "timestamp": None,
        }
    )
    assert msg == StreamCloseResponse()
    audio = decoded({"msg_type": 14, "content": {"data": "", "user_id": None, "user_name": None}})
    assert audio == AudioData(data=b"")


def test_unknown_msg_type_is_kept_raw_and_read_only() -> None:
    msg = decoded({"msg_type": 0, "a": [1, {"b": None}]})
    assert isinstance(msg, UnknownMessage)
    assert msg.msg_type == 0
    assert msg.raw == {"msg_type": 0, "a": (1, {"b": None})}
    assert isinstance(msg.raw, MappingProxyType)
    inner = msg.raw["a"]
    assert isinstance(inner, tuple) and isinstance(inner[1], MappingProxyType)
    with pytest.raises(TypeError):
        msg.raw["a"] = 1  # type: ignore[index]
    for msg_type in (30, -1, 2**64 - 1):
        assert decoded({"msg_type": msg_type}) == UnknownMessage(msg_type=msg_type)


@pytest.mark.parametrize("msg_type", [23, 24, 25, 26, 27])
def test_metadata_messages_are_kept_raw(msg_type: int) -> None:
    msg = decoded({"msg_type": msg_type, "content": {"x": 1}})
    assert msg == MetadataMessage(msg_type=msg_type, raw={"content": {"x": 1}})


def test_raw_given_by_caller_is_frozen_and_includes_msg_type() -> None:
    # A list (mistyped, but likely from a caller) is frozen to a tuple too.
    msg = UnknownMessage(msg_type=40, raw={"a": [1, 2], "msg_type": 3})  # type: ignore[dict-item]
    assert msg.raw == {"a": (1, 2), "msg_type": 40}
    assert isinstance(msg.raw["a"], tuple)
    assert UnknownMessage(msg_type=40).raw == {"msg_type": 40}
    assert MetadataMessage(msg_type=23).raw == {"msg_type": 23}


def test_raw_must_be_json() -> None:
    with pytest.raises(TypeError):
        UnknownMessage(msg_type=40, raw={"a": b"bytes"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="Out of range float"):
        EventUpdate(event_type=1, raw={"a": float("nan")})


def test_raw_messages_refuse_known_types() -> None:
    with pytest.raises(InvalidConfig, match="msg_type 14 is known"):
        UnknownMessage(msg_type=14)
    with pytest.raises(InvalidConfig, match="not a META_DATA"):
        MetadataMessage(msg_type=22)
    with pytest.raises(InvalidConfig, match="not a META_DATA"):
        MetadataMessage(msg_type=28)


@pytest.mark.parametrize("msg_type", list(MessageType), ids=lambda t: t.name)
def test_every_known_type_has_a_class_and_only_the_rest_is_unknown(msg_type: MessageType) -> None:
    """The decode table and ``UnknownMessage`` agree on what is known: every number but 0."""
    result = decode_message(wire({"msg_type": int(msg_type)}))
    if msg_type is MessageType.UNDEFINED:
        assert result == UnknownMessage(msg_type=0)
        return
    assert not isinstance(result, UnknownMessage)
    with pytest.raises(InvalidConfig, match="is known"):
        UnknownMessage(msg_type=msg_type)


def test_base64_without_padding_is_accepted() -> None:
    for data, payload in (("QUI", b"AB"), ("QQ", b"A"), ("QUJD", b"ABC"), ("", b"")):
        assert decoded({"msg_type": 15, "content": {"data": data}}) == VideoData(data=payload)


def test_audio_hot_path_builds_the_same_value_as_the_constructor() -> None:
    payload = bytes(range(256)) * 2 + bytes(128)
    msg = decoded(
        {
            "msg_type": 14,
            "content": {
                "user_id": 0,
                "data": base64.b64encode(payload).decode(),
                "length": 640,
                "timestamp": 1727384361000,
                "user_name": "n",
                "channel_id": "c",
            },
        }
    )
    built = AudioData(
        data=payload, user_id=0, length=640, timestamp=1727384361000, user_name="n", channel_id="c"
    )
    assert msg == built and hash(msg) == hash(built) and repr(msg) == repr(built)
    assert type(msg) is AudioData
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.user_id = 1  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(AudioData)] == [
        "data",
        "user_id",
        "user_name",
        "timestamp",
        "channel_id",
        "length",
    ]


def test_media_messages_are_the_application_events() -> None:
    """One object per packet: what the codec decodes is what the application receives."""
    assert AudioData is ev.AudioReceived
    assert VideoData is ev.VideoReceived
    assert DeskshareData is ev.DeskshareReceived
    assert encode_message(ev.VideoReceived(data=b"\x01", channel_id="c")) == (
        b'{"msg_type":15,"content":{"data":"AQ==","channel_id":"c"}}'
    )


def test_media_length_is_kept_on_the_wire_but_not_compared() -> None:
    """``length`` restates ``len(data)``: packets equal without it, re-encoded with it."""
    with_length = decoded({"msg_type": 14, "content": {"data": "AQID", "length": 3}})
    assert isinstance(with_length, AudioData) and with_length.length == 3
    assert with_length == AudioData(data=b"\x01\x02\x03")
    assert hash(with_length) == hash(AudioData(data=b"\x01\x02\x03"))
    assert json.loads(encode_message(with_length))["content"]["length"] == 3
    audio: object = AudioData(data=b"\x01")
    assert audio != VideoData(data=b"\x01")  # same fields, another kind of packet


MEDIA_CLASSES: dict[int, type[AudioData | VideoData | DeskshareData]] = {
    14: AudioData,
    15: VideoData,
    16: DeskshareData,
}
MEDIA_KEYS = ["data", "user_id", "user_name", "timestamp", "channel_id", "length"]
base64_texts = st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode()) | st.sampled_from(
    ["", "AQ", "AQI"]  # stripped padding is accepted
)
odd_values = (
    st.none()
    | st.booleans()
    | ints
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
    | st.sampled_from(["0", "42", "0042", "9" * 20, "9" * 21, "-5", "\u0661\u0662"])
    | st.sampled_from(["A", "!!!!", "QU JD", "QUJD\n", "QU-_", "QUJD\u00e9", "AQ=", "=AQ="])
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(text, st.integers(), max_size=2)
)
valid_media_contents = st.fixed_dictionaries(
    {"data": base64_texts},
    optional={
        "user_id": opt_int,
        "user_name": opt_text,
        "timestamp": opt_int,
        "channel_id": opt_text,
        "length": opt_int,
        "other": odd_values,
    },
)


@st.composite
def media_wire(draw: st.DrawFn) -> dict[str, Any]:
    """A media message: valid, or with up to two fields (or the content) made odd or removed."""
    content: dict[str, Any] = draw(valid_media_contents)
    for key in draw(st.lists(st.sampled_from(MEDIA_KEYS), max_size=2, unique=True)):
        if draw(st.booleans()):
            content[key] = draw(odd_values)
        else:
            content.pop(key, None)
    obj: dict[str, Any] = {"msg_type": draw(st.sampled_from(sorted(MEDIA_CLASSES)))}
    shape = draw(st.sampled_from(["content", "content", "content", "odd", "missing"]))
    if shape == "content":
        obj["content"] = content
    elif shape == "odd":
        obj["content"] = draw(odd_values)
    return obj


def _checked_decode(obj: dict[str, Any]) -> Message | DecodeError:
    """The general reader every packet could take, errors as ``decode_message`` gives them."""
    try:
        return MEDIA_CLASSES[obj["msg_type"]]._from_wire_checked(obj)
    except WireFieldError as exc:
        return DecodeError(msg_type=obj["msg_type"], field=exc.field, detail=exc.detail)


@settings(max_examples=500)
@given(media_wire())
def test_media_fast_path_equals_the_checked_reader(obj: dict[str, Any]) -> None:
    """The slot-filling hot path gives exactly what the checked reader gives, faults included."""
    data = json.dumps(obj)
    fast = decode_message(data)
    slow = _checked_decode(json.loads(data))
    assert type(fast) is type(slow)
    assert fast == slow and repr(fast) == repr(slow)  # repr covers ``length`` too


def test_numeric_string_user_ids_become_integers() -> None:
    msg = decoded({"msg_type": 6, "event": {"event_type": 2, "user_id": "0042", "user_name": "n"}})
    assert isinstance(msg, EventUpdate) and msg.user_id == 42
    assert msg.raw["user_id"] == 42
    assert decoded({"msg_type": 28, "user_id": "7", "subscribe": False}) == (
        VideoSubscriptionRequest(user_id=7, subscribe=False)
    )
    audio = decoded({"msg_type": 14, "content": {"data": "", "user_id": "16778240"}})
    assert audio == AudioData(data=b"", user_id=16778240)
    big = decoded({"msg_type": 17, "content": {"data": "t", "user_id": str(2**64 - 1)}})
    assert isinstance(big, TranscriptData) and big.user_id == 2**64 - 1
    for beyond in (str(2**64), "9" * 20, "9" * 400):
        result = decode_message(wire({"msg_type": 17, "content": {"data": "t", "user_id": beyond}}))
        assert isinstance(result, DecodeError) and result.field == "content.user_id"
        assert result.detail == "integer beyond 64 bits"


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("PARTICIPANT_JOIN", 3),
        ("participant_join", 3),
        ("UNDEFINED", 0),
        ("CONSUMER_ANSWERED", 8),
        ("CONFERENCE_PARTICIPANT_LEFT", 29),
        ("CHAT_GROUP_CREATE", 10),
    ],
)
def test_event_type_names_map_to_numbers(name: str, number: int) -> None:
    msg = decoded({"msg_type": 6, "event": {"event_type": name}})
    assert isinstance(msg, EventUpdate)
    assert msg.event_type == number and type(msg.event_type) is int
    assert msg.raw["event_type"] == number


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (6, StopReason.MEETING_ENDED),
        (99, 99),
        ("STOP_BC_MEETING_ENDED", StopReason.MEETING_ENDED),
        ("MEETING_ENDED", StopReason.MEETING_ENDED),
        ("stop_bc_keep_alive_timeout", StopReason.KEEP_ALIVE_TIMEOUT),
        ("STOP_BC_UNDEFINED", StopReason.UNDEFINED),
        ("STOP_BC_APP_DISABLED_BY_HOST", StopReason.HOST_DISABLED_APP),
        ("MEETING_CONNECTION_INTERRUPTED", StopReason.INSTANCE_CONNECTION_INTERRUPTED),
        ("STOP_BC_SOMETHING_NEW", "STOP_BC_SOMETHING_NEW"),
    ],
)
def test_stop_reasons_from_numbers_and_names(reason: object, expected: object) -> None:
    stream = decoded({"msg_type": 8, "state": 4, "reason": reason})
    assert isinstance(stream, StreamStateUpdate)
    assert stream.reason == expected and type(stream.reason) is type(expected)
    session = decoded({"msg_type": 9, "state": 5, "stop_reason": reason})
    assert isinstance(session, SessionStateUpdate)
    assert session.stop_reason == expected and type(session.stop_reason) is type(expected)


def test_unknown_stop_reason_name_is_encoded_as_text() -> None:
    msg = StreamStateUpdate(state=4, reason="STOP_BC_SOMETHING_NEW")
    assert json.loads(encode_message(msg))["reason"] == "STOP_BC_SOMETHING_NEW"


def test_session_state_update_aliases() -> None:
    msg = decoded({"msg_type": 9, "state": 5, "reason": 3, "session_id": "a", "stop_reason": None})
    assert msg == SessionStateUpdate(
        state=SessionState.STOPPED, stop_reason=StopReason.USER_LEFT, rtms_session_id="a"
    )
    both = decoded(
        {
            "msg_type": 9,
            "state": 1,
            "stop_reason": 1,
            "reason": 2,
            "rtms_session_id": "x",
            "session_id": "y",
        }
    )
    assert both == SessionStateUpdate(state=1, stop_reason=1, rtms_session_id="x")


def test_states_map_to_enums_and_keep_unknown_numbers() -> None:
    assert decoded({"msg_type": 8, "state": 2}) == StreamStateUpdate(state=StreamState.INTERRUPTED)
    unknown = decoded({"msg_type": 20, "state": 17})
    assert isinstance(unknown, StreamStateResponse)
    assert unknown.state == 17 and type(unknown.state) is int
    resp = decoded({"msg_type": 11, "state": 4})
    assert resp == SessionStateResponse(
        rtms_session_id=None, state=SessionState.RESUMED, timestamp=None
    )
    assert isinstance(resp, SessionStateResponse) and resp.state is SessionState.RESUMED


def test_transcript_language_and_attribute() -> None:
    msg = decoded(
        {"msg_type": 17, "content": {"data": "hola", "language": 28, "attribute": "final"}}
    )
    assert msg == TranscriptData(
        text="hola", language=TranscriptLanguage.SPANISH, attribute="final"
    )
    assert isinstance(msg, TranscriptData) and msg.language is TranscriptLanguage.SPANISH
    unknown = decoded({"msg_type": 17, "content": {"data": "", "language": 404, "attribute": 2}})
    assert unknown == TranscriptData(text="", language=404, attribute=2)


# --- handshakes -----------------------------------------------------------------------------


def test_signaling_request_writes_the_id_under_every_key() -> None:
    msg = SignalingHandshakeRequest(
        instance_id="vs-1",
        rtms_stream_id="s",
        signature="sig",
        id_keys=("session_id", "meeting_uuid"),
        buffer_data=False,
        client_agent="agent/1",
        sequence=3,
    )
    assert msg.id_keys == ("meeting_uuid", "session_id")  # canonical order
    assert json.loads(encode_message(msg)) == {
        "msg_type": 1,
        "meeting_uuid": "vs-1",
        "session_id": "vs-1",
        "rtms_stream_id": "s",
        "signature": "sig",
        "protocol_version": 1,
        "sequence": 3,
        "rtms_client_agent": "agent/1",
        "buffer_data": False,
    }


def test_signaling_request_defaults_omit_optional_fields() -> None:
    msg = SignalingHandshakeRequest(instance_id="m", rtms_stream_id="s", signature="x")
    assert json.loads(encode_message(msg)) == {
        "msg_type": 1,
        "meeting_uuid": "m",
        "rtms_stream_id": "s",
        "signature": "x",
        "protocol_version": 1,
    }
    bare = SignalingHandshakeRequest(
        instance_id="m", rtms_stream_id="s", signature="x", protocol_version=None
    )
    assert "protocol_version" not in json.loads(encode_message(bare))


@pytest.mark.parametrize("key", INSTANCE_ID_KEYS)
def test_every_product_id_key_is_accepted(key: str) -> None:
    msg = decoded(
        {"msg_type": 3, key: "id", "rtms_stream_id": "s", "signature": "x", "media_type": 1}
    )
    assert isinstance(msg, MediaHandshakeRequest)
    assert msg.instance_id == "id" and msg.id_keys == (key,)
    assert msg.protocol_version is None and msg.media_params is None


def test_null_id_keys_are_ignored() -> None:
    msg = decoded(
        {
            "msg_type": 1,
            "meeting_uuid": None,
            "call_id": "c",
            "rtms_stream_id": "s",
            "signature": "x",
        }
    )
    assert isinstance(msg, SignalingHandshakeRequest) and msg.id_keys == ("call_id",)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ((), "at least one"),
        (("meetingUuid",), "'meetingUuid' is not one of"),
        (("call_id", "call_id"), "must not repeat"),
    ],
)
def test_bad_id_keys_are_refused(keys: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        SignalingHandshakeRequest(instance_id="m", rtms_stream_id="s", signature="x", id_keys=keys)
    with pytest.raises(InvalidConfig, match=message):
        MediaHandshakeRequest(
            instance_id="m",
            rtms_stream_id="s",
            signature="x",
            media_type=MediaType.AUDIO,
            id_keys=keys,
        )


def test_repr_never_contains_the_signature() -> None:
    secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    messages: list[Message] = [
        SignalingHandshakeRequest(instance_id="m", rtms_stream_id="s", signature=secret),
        MediaHandshakeRequest(
            instance_id="m", rtms_stream_id="s", signature=secret, media_type=MediaType.ALL
        ),
    ]
    for msg in messages:
        assert secret not in repr(msg) and secret not in str(msg)
        again = decode_message(encode_message(msg))
        assert secret not in repr(again)
        assert isinstance(again, (SignalingHandshakeRequest, MediaHandshakeRequest))
        assert again.signature == secret


def test_media_request_with_params_and_null_params() -> None:
    params = MediaParams(audio=AudioParams())
    msg = MediaHandshakeRequest(
        instance_id="m",
        rtms_stream_id="s",
        signature="x",
        media_type=MediaType.AUDIO,
        media_params=params,
        payload_encryption=False,
    )
    obj = json.loads(encode_message(msg))
    assert obj["media_params"] == params.to_wire() and obj["payload_encryption"] is False
    no_params = dataclasses.replace(msg, media_params=None, payload_encryption=None)
    obj = json.loads(encode_message(no_params))
    assert "media_params" not in obj and "payload_encryption" not in obj
    empty = dataclasses.replace(msg, media_params=MediaParams())
    assert json.loads(encode_message(empty))["media_params"] == {}
    assert decode_message(encode_message(empty)) == empty


def test_media_type_keeps_combined_and_unknown_flags() -> None:
    msg = decoded({"msg_type": 3, **SIG, "media_type": 9})
    assert isinstance(msg, MediaHandshakeRequest)
    assert msg.media_type == MediaType.AUDIO | MediaType.TRANSCRIPT
    odd = decoded({"msg_type": 3, **SIG, "media_type": 64})
    assert isinstance(odd, MediaHandshakeRequest) and int(odd.media_type) == 64


def test_signaling_response_reads_urls_and_region() -> None:
    msg = decoded(
        {
            "msg_type": 2,
            "status_code": 0,
            "media_server": {
                "server_urls": {"audio": "wss://a", "chat": None},
                "datacenter_region": "eu",
            },
        }
    )
    assert isinstance(msg, SignalingHandshakeResponse)
    assert dict(msg.media_urls) == {"audio": "wss://a"}
    assert msg.datacenter_region == "eu" and msg.reason == ""
    assert msg.protocol_version is None and msg.sequence is None
    with pytest.raises(TypeError):
        msg.media_urls["x"] = "y"  # type: ignore[index]


def test_signaling_response_without_media_server() -> None:
    assert decoded({"msg_type": 2, "status_code": 3, "media_server": None}) == (
        SignalingHandshakeResponse(status_code=3, protocol_version=None, sequence=None)
    )
    region_only = SignalingHandshakeResponse(status_code=0, datacenter_region="r")
    assert json.loads(encode_message(region_only))["media_server"] == {
        "server_urls": {},
        "datacenter_region": "r",
    }
    assert decode_message(encode_message(region_only)) == region_only
    no_urls = decoded({"msg_type": 2, "status_code": 0, "media_server": {"datacenter_region": "r"}})
    assert no_urls == dataclasses.replace(region_only, protocol_version=None, sequence=None)
    plain = json.loads(encode_message(SignalingHandshakeResponse(status_code=0)))
    assert plain == {
        "msg_type": 2,
        "protocol_version": 1,
        "sequence": 0,
        "status_code": 0,
        "reason": "",
    }


def test_signaling_response_copies_caller_urls_read_only() -> None:
    urls = {"audio": "wss://a"}
    msg = SignalingHandshakeResponse(status_code=0, media_urls=urls)
    urls["video"] = "wss://v"
    assert dict(msg.media_urls) == {"audio": "wss://a"}
    assert isinstance(msg.media_urls, MappingProxyType)


def test_media_response_accepts_either_encryption_key() -> None:
    for key in ("payload_encrypted", "payload_encryption"):
        msg = decoded({"msg_type": 4, "status_code": 0, key: True})
        assert isinstance(msg, MediaHandshakeResponse) and msg.payload_encrypted is True
    both = decoded({"msg_type": 4, "payload_encrypted": False, "payload_encryption": True})
    assert isinstance(both, MediaHandshakeResponse) and both.payload_encrypted is False
    assert json.loads(encode_message(both))["payload_encrypted"] is False


# --- events ---------------------------------------------------------------------------------


def test_event_raw_is_the_whole_event_object_frozen() -> None:
    msg = decoded(
        {
            "msg_type": 6,
            "event": {
                "event_type": 12,
                "timestamp": 5,
                "chat_groups": [{"id": "g", "members": ["a", "b"]}],
            },
        }
    )
    assert isinstance(msg, EventUpdate)
    assert msg.raw == {
        "event_type": 12,
        "timestamp": 5,
        "chat_groups": ({"id": "g", "members": ("a", "b")},),
    }
    groups = msg.raw["chat_groups"]
    assert isinstance(groups, tuple) and isinstance(groups[0], MappingProxyType)


def test_built_event_equals_its_decoded_encoding() -> None:
    msg = EventUpdate(
        event_type=EventType.PARTICIPANT_JOIN,
        timestamp=9,
        participants=(Participant(user_id=1, user_name="a"), Participant(user_id=2)),
        raw={"extra": (1,)},
    )
    assert msg.raw == {
        "extra": (1,),
        "event_type": 3,
        "timestamp": 9,
        "participants": ({"user_id": 1, "user_name": "a"}, {"user_id": 2}),
    }
    assert json.loads(encode_message(msg)) == {
        "msg_type": 6,
        "event": {
            "extra": [1],
            "event_type": 3,
            "timestamp": 9,
            "participants": [{"user_id": 1, "user_name": "a"}, {"user_id": 2}],
        },
    }
    assert decode_message(encode_message(msg)) == msg


def test_event_typed_fields_win_over_raw() -> None:
    msg = EventUpdate(
        event_type=2, user_id=5, user_name="new", raw={"user_id": 1, "user_name": "old"}
    )
    assert msg.raw == {"event_type": 2, "user_id": 5, "user_name": "new"}


def test_event_timestamp_and_zcc_key_spellings() -> None:
    zcc = ZccParticipant(user_id="agent", participant_mode="callee")
    msg = EventUpdate(event_type=10, timestamp=7, zcc_participant=zcc)
    assert msg.raw == {
        "event_type": 10,
        "timestamp": 7,
        "paticipant_info": {"participant_mode": "callee", "user_id": "agent"},
    }
    spelled = decoded(
        {
            "msg_type": 6,
            "event": {"event_type": 10, "event_ts": 7, "participant_info": {"user_id": "agent"}},
        }
    )
    assert isinstance(spelled, EventUpdate)
    assert spelled.timestamp == 7 and spelled.zcc_participant == ZccParticipant(user_id="agent")
    assert set(json.loads(encode_message(spelled))["event"]) == {
        "event_type",
        "event_ts",
        "participant_info",
    }
    preferred = decoded(
        {
            "msg_type": 6,
            "event": {
                "event_type": 10,
                "timestamp": 8,
                "event_ts": 7,
                "paticipant_info": {"user_id": "a"},
                "participant_info": {"user_id": "b"},
            },
        }
    )
    assert isinstance(preferred, EventUpdate)
    assert preferred.timestamp == 8 and preferred.zcc_participant == ZccParticipant(user_id="a")
    fallback = decoded(
        {"msg_type": 6, "event": {"event_type": 10, "timestamp": None, "event_ts": 7}}
    )
    assert isinstance(fallback, EventUpdate) and fallback.timestamp == 7
    assert json.loads(encode_message(fallback))["event"]["event_ts"] == 7


def test_event_participants_and_top_level_user() -> None:
    leave = decoded({"msg_type": 6, "event": {"event_type": 4, "participants": [{"user_id": 3}]}})
    assert leave == EventUpdate(event_type=4, participants=(Participant(user_id=3),))
    video = decoded(
        {
            "msg_type": 6,
            "event": {"event_type": 8, "user_id": 3, "user_name": "n", "participants": None},
        }
    )
    assert isinstance(video, EventUpdate)
    assert video.user_id == 3 and video.user_name == "n" and video.participants == ()


# --- chat -----------------------------------------------------------------------------------


def test_plain_chat_text_has_no_structure() -> None:
    for body in ("hello", "", "[1, 2]", "{not json", '{"a": 1} trailing', "  {", "{]"):
        msg = decoded({"msg_type": 18, "content": {"data": body}})
        assert msg == ChatData(text=body), body


def test_structured_chat_is_decoded_and_text_kept_verbatim() -> None:
    body = json.dumps(
        {
            "chat_session": {"type": 3, "id": "g1"},
            "operation_type": 4,
            "sender": {"user_id": 1, "user_name": "a"},
            "receiver": {"user_id": "u2"},
            "data": "👍",
            "unknown": True,
        },
        indent=2,
    )
    msg = decoded({"msg_type": 18, "content": {"data": "\n" + body, "user_id": 1}})
    assert isinstance(msg, ChatData)
    assert msg.text == "\n" + body
    assert msg.chat == StructuredChat(
        session_type=ChatSessionType.CHAT_GROUP,
        session_id="g1",
        operation=ChatOperation.ADD_EMOJI_REACTION,
        sender=ChatUser(user_id=1, user_name="a"),
        receiver=ChatUser(user_id="u2"),
        text="👍",
    )
    assert json.loads(encode_message(msg))["content"]["data"] == "\n" + body


def test_empty_json_object_chat_is_structured_with_nothing_set() -> None:
    msg = decoded({"msg_type": 18, "content": {"data": "{}"}})
    assert msg == ChatData(text="{}", chat=StructuredChat())


@pytest.mark.parametrize(
    "inner",
    [
        {"chat_session": "everyone"},
        {"chat_session": {"type": "1"}},
        {"chat_session": {"id": 5}},
        {"operation_type": "new"},
        {"message_id": 1},
        {"parent_message_id": []},
        {"sender": "alice"},
        {"sender": {"user_id": True}},
        {"receiver": {"user_id": 1.5}},
        {"receiver": {"user_name": 5}},
        {"files": {}},
        {"files": [1]},
        {"files": [{"file_size": "1k"}]},
        {"files": [{"file_id": 3}]},
        {"delete_file_id_list": "f"},
        {"delete_file_id_list": ["f", 2]},
        {"data": {"text": "x"}},
    ],
)
def test_chat_object_of_another_shape_stays_plain_text(inner: dict[str, Any]) -> None:
    """Never an error: on older servers the text is whatever a participant typed."""
    body = json.dumps(inner)
    assert decoded({"msg_type": 18, "content": {"data": body}}) == ChatData(text=body)


def test_deeply_nested_chat_text_stays_plain_text() -> None:
    body = '{"a":' * 50_000 + "1" + "}" * 50_000
    assert decoded({"msg_type": 18, "content": {"data": body}}) == ChatData(text=body)


# --- encoding -------------------------------------------------------------------------------


def test_encode_rejects_non_messages() -> None:
    with pytest.raises(TypeError, match="not an RTMS message: dict"):
        encode_message({"msg_type": 12})  # type: ignore[arg-type]
    error = DecodeError(msg_type=None, field=None, detail="x")
    with pytest.raises(TypeError, match="DecodeError"):
        encode_message(error)  # type: ignore[arg-type]


def test_encoding_is_ascii_and_escapes_everything_else() -> None:
    msg = TranscriptData(text="日本\ud800", user_name="Zoë")
    encoded = encode_message(msg)
    encoded.decode("ascii")
    assert decode_message(encoded) == msg


def test_media_data_is_standard_base64() -> None:
    obj = json.loads(encode_message(AudioData(data=b"\xfb\xff\xfe", user_id=0)))
    assert obj == {"msg_type": 14, "content": {"user_id": 0, "data": "+//+"}}


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (ClientReady(rtms_stream_id="s"), {"msg_type": 7, "rtms_stream_id": "s"}),
        (
            KeepAliveResponse(timestamp=1, sequence=2),
            {"msg_type": 13, "timestamp": 1, "sequence": 2},
        ),
        (KeepAliveResponse(timestamp=1), {"msg_type": 13, "timestamp": 1}),
        (KeepAliveResponse(), {"msg_type": 13}),
        (
            EventSubscription(events=(EventSubscriptionItem(event_type=7, subscribe=False),)),
            {"msg_type": 5, "events": [{"event_type": 7, "subscribe": False}]},
        ),
        (StreamCloseRequest(rtms_stream_id="s"), {"msg_type": 21, "rtms_stream_id": "s"}),
        (StreamStateRequest(rtms_stream_id="s"), {"msg_type": 19, "rtms_stream_id": "s"}),
        (SessionStateRequest(rtms_session_id="x"), {"msg_type": 10, "rtms_session_id": "x"}),
        (
            VideoSubscriptionRequest(user_id=5, subscribe=True, timestamp=3),
            {"msg_type": 28, "user_id": 5, "subscribe": True, "timestamp": 3},
        ),
        (
            VideoSubscriptionRequest(user_id=5, subscribe=False),
            {"msg_type": 28, "user_id": 5, "subscribe": False},
        ),
        (
            StreamStateUpdate(state=StreamState.TERMINATED, reason=StopReason.MEETING_ENDED),
            {"msg_type": 8, "state": 4, "reason": 6},
        ),
        (
            SessionStateUpdate(state=SessionState.STARTED, rtms_session_id="x"),
            {"msg_type": 9, "state": 2, "rtms_session_id": "x"},
        ),
    ],
    ids=lambda v: type(v).__name__,
)
def test_client_messages_encode_to_the_documented_shape(
    msg: Message, expected: dict[str, Any]
) -> None:
    assert json.loads(encode_message(msg)) == expected


def test_messages_are_frozen_with_slots() -> None:
    for cls in MESSAGE_CLASSES:
        params = cls.__dataclass_params__
        assert params.frozen, cls
        assert "__slots__" in cls.__dict__, cls
    msg = KeepAliveRequest(timestamp=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.timestamp = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        KeepAliveRequest(1)  # type: ignore[call-arg]


def test_msg_type_class_variables_match_the_catalogue() -> None:
    typed: dict[type[Any], MessageType] = {
        cls: cls.msg_type for cls in MESSAGE_CLASSES if cls not in (MetadataMessage, UnknownMessage)
    }
    assert sorted(int(t) for t in typed.values()) == [*range(1, 23), 28, 29]
    for cls, msg_type in typed.items():
        assert isinstance(msg_type, MessageType)
        assert "msg_type" not in {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 2**70])
def test_integers_beyond_64_bits_are_a_decode_error(number: int) -> None:
    result = decode_message(f'{{"msg_type": 12, "timestamp": {number}}}')
    assert isinstance(result, DecodeError)
    assert result.field == "timestamp"


def test_largest_64_bit_integers_decode_exactly() -> None:
    assert decode_message(f'{{"msg_type": 12, "timestamp": {2**64 - 1}}}') == KeepAliveRequest(
        timestamp=2**64 - 1
    )
    assert decode_message(b'{"msg_type": 12, "timestamp": -9223372036854775808}') == (
        KeepAliveRequest(timestamp=-(2**63))
    )


def test_lone_surrogate_escapes_still_decode() -> None:
    result = decode_message('{"msg_type": 17, "content": {"data": "\\ud800x"}}')
    assert isinstance(result, TranscriptData)
    assert result.text == "\ud800x"
