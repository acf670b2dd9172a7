"""Golden wire fixtures, written by hand from docs/protocol.md, pin the codec independently.

Each file in ``fixtures/wire`` is one WebSocket message as a source documents it
(DOC, Zoom's samples and mock server, §13's observed SDK traffic). The typed
value each must decode to is spelled out here. "Canonical" fixtures are also
exactly what :func:`encode_message` writes (compared as JSON values, so
pretty-printing and key order do not matter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest

from rtms_proto import (
    AudioParams,
    ChatParams,
    DeskshareParams,
    MediaParams,
    TranscriptParams,
    VideoParams,
)
from rtms_proto.enums import (
    AudioChannel,
    AudioSampleRate,
    ChatOperation,
    ChatSessionType,
    Codec,
    ContentType,
    DataOption,
    EventType,
    MediaType,
    Resolution,
    SessionState,
    StopReason,
    StreamState,
    TranscriptLanguage,
    ZccEventType,
)
from rtms_proto.messages import (
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

FIXTURES = Path(__file__).parent / "fixtures" / "wire"

MEETING = "4Rf0pDSVRdWaA9ppczSsAw=="
STREAM = "03db704592624398931a588dd78200cb"
SIGNATURE = "9d2d6bd0a33d1d2ba69bbf80e1bd2b4cd6e69e3b1a5d0f8cc1e2e4f2a0b3c4d5"
AGENT = "rtms-sdk/0.20260319 (python 1.1.0)"
JANE = 16778240
JOHN = 16779264


@dataclass(frozen=True)
class Golden:
    file: str
    expected: Message | DecodeError
    canonical: bool


GOLDEN = [
    # --- 1 SIGNALING_HAND_SHAKE_REQ (§3.1, §13) ---
    Golden(
        "signaling_handshake_request.json",
        SignalingHandshakeRequest(
            instance_id=MEETING,
            rtms_stream_id=STREAM,
            signature=SIGNATURE,
            sequence=1,
            buffer_data=False,
        ),
        canonical=True,
    ),
    Golden(
        "signaling_handshake_request.zoom_sdk.json",
        SignalingHandshakeRequest(
            instance_id=MEETING,
            rtms_stream_id=STREAM,
            signature=SIGNATURE,
            sequence=1745812933123456789,
            client_agent=AGENT,
        ),
        canonical=True,
    ),
    Golden(
        "signaling_handshake_request.video_sdk.json",
        SignalingHandshakeRequest(
            instance_id="vsdk-session-1",
            rtms_stream_id="5b2f0a",
            signature="00ff",
            id_keys=("meeting_uuid", "session_id"),
            protocol_version=None,
        ),
        canonical=True,
    ),
    Golden(
        "signaling_handshake_request.contact_center.json",
        SignalingHandshakeRequest(
            instance_id="eng_9Xa1",
            rtms_stream_id="zcc-stream-7",
            signature="abcdef0123",
            id_keys=("engagement_id",),
            sequence=0,
        ),
        canonical=True,
    ),
    # --- 2 SIGNALING_HAND_SHAKE_RESP (§3.2) ---
    Golden(
        "signaling_handshake_response.json",
        SignalingHandshakeResponse(
            status_code=0,
            media_urls={
                "audio": "wss://sjc.zoom.us/rtms/audio",
                "video": "wss://sjc.zoom.us/rtms/video",
                "transcript": "wss://sjc.zoom.us/rtms/transcript",
                "all": "wss://sjc.zoom.us/rtms/all",
            },
        ),
        canonical=True,
    ),
    Golden(
        "signaling_handshake_response.deskshare_region.json",
        SignalingHandshakeResponse(
            status_code=0,
            media_urls={"audio": "wss://iad.zoom.us/a", "deskshare": "wss://iad.zoom.us/d"},
            datacenter_region="us-west",
        ),
        canonical=False,  # null URL dropped, MOCK's srtp_keys ignored
    ),
    Golden(
        "signaling_handshake_response.duplicate.json",
        SignalingHandshakeResponse(status_code=8, reason="Duplicate signal request"),
        canonical=True,
    ),
    Golden(
        "signaling_handshake_response.mock_failure.json",
        SignalingHandshakeResponse(status_code=None, reason="Invalid signature"),
        canonical=True,
    ),
    # --- 3 DATA_HAND_SHAKE_REQ (§3.3, §5, §13) ---
    Golden(
        "media_handshake_request.audio.json",
        MediaHandshakeRequest(
            instance_id=MEETING,
            rtms_stream_id=STREAM,
            signature=SIGNATURE,
            media_type=MediaType.AUDIO,
            media_params=MediaParams(audio=AudioParams()),
            sequence=0,
            payload_encryption=False,
        ),
        canonical=True,
    ),
    Golden(
        "media_handshake_request.all.json",
        MediaHandshakeRequest(
            instance_id="m-1",
            rtms_stream_id="s-1",
            signature="ab12",
            media_type=MediaType.ALL,
            media_params=MediaParams(
                audio=AudioParams(
                    content_type=ContentType.RTP,
                    sample_rate=AudioSampleRate.SR_48K,
                    channel=AudioChannel.STEREO,
                    codec=Codec.OPUS,
                    data_opt=DataOption.AUDIO_MULTI_STREAMS,
                ),
                video=VideoParams(
                    codec=Codec.H264,
                    resolution=Resolution.FHD,
                    data_opt=DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM,
                    fps=25,
                ),
                deskshare=DeskshareParams(),
                transcript=TranscriptParams(
                    src_language=TranscriptLanguage.ENGLISH, enable_lid=False
                ),
                chat=ChatParams(),
            ),
            sequence=0,
        ),
        canonical=True,
    ),
    Golden(
        "media_handshake_request.zoom_sdk_deskshare.json",
        MediaHandshakeRequest(
            instance_id=MEETING,
            rtms_stream_id=STREAM,
            signature=SIGNATURE,
            media_type=MediaType.DESKSHARE,
            media_params=MediaParams(
                deskshare=DeskshareParams(codec=Codec.H264, resolution=Resolution.HD, fps=30)
            ),
            sequence=1745812933223456789,
            client_agent=AGENT,
        ),
        canonical=True,
    ),
    Golden(
        "media_handshake_request.zoom_sdk_transcript.json",
        MediaHandshakeRequest(
            instance_id=MEETING,
            rtms_stream_id=STREAM,
            signature=SIGNATURE,
            media_type=MediaType.TRANSCRIPT,
            media_params=None,
            sequence=1745812933323456789,
            client_agent=AGENT,
        ),
        canonical=False,  # "media_params": null is omitted when encoding
    ),
    Golden(
        "media_handshake_request.legacy_language.json",
        MediaHandshakeRequest(
            instance_id="web-1",
            rtms_stream_id="s-2",
            signature="cd34",
            id_keys=("webinar_uuid",),
            media_type=MediaType.TRANSCRIPT,
            media_params=MediaParams(
                transcript=TranscriptParams(src_language=TranscriptLanguage.GERMAN)
            ),
        ),
        canonical=False,  # "language" is re-encoded as "src_language"
    ),
    # --- 4 DATA_HAND_SHAKE_RESP (§3.4) ---
    Golden(
        "media_handshake_response.json",
        MediaHandshakeResponse(
            status_code=0,
            payload_encrypted=True,
            media_params=MediaParams(video=VideoParams(), chat=ChatParams()),
        ),
        canonical=True,
    ),
    Golden(
        "media_handshake_response.zoom_sdk.json",
        MediaHandshakeResponse(
            status_code=0,
            payload_encrypted=False,
            media_params=MediaParams(
                audio=AudioParams(
                    codec=Codec.OPUS,
                    sample_rate=AudioSampleRate.SR_48K,
                    channel=AudioChannel.STEREO,
                    data_opt=DataOption.AUDIO_MULTI_STREAMS,
                )
            ),
        ),
        canonical=False,  # no "reason" in §13's reply; encoding writes ""
    ),
    Golden(
        "media_handshake_response.defaults_filled.json",
        MediaHandshakeResponse(
            status_code=0,
            protocol_version=None,
            sequence=None,
            payload_encrypted=False,
            media_params=MediaParams(
                audio=AudioParams(), video=VideoParams(), transcript=TranscriptParams()
            ),
        ),
        canonical=False,
    ),
    Golden(
        "media_handshake_response.failure.json",
        MediaHandshakeResponse(status_code=16, reason="duplicate media data connection"),
        canonical=True,
    ),
    # --- 5 EVENT_SUBSCRIPTION (§3.5) ---
    Golden(
        "event_subscription.json",
        EventSubscription(
            events=(
                EventSubscriptionItem(event_type=EventType.ACTIVE_SPEAKER_CHANGE, subscribe=True),
                EventSubscriptionItem(event_type=EventType.PARTICIPANT_JOIN, subscribe=True),
                EventSubscriptionItem(event_type=EventType.PARTICIPANT_LEAVE, subscribe=True),
                EventSubscriptionItem(event_type=EventType.PARTICIPANT_VIDEO_ON, subscribe=False),
            )
        ),
        canonical=True,
    ),
    # --- 6 EVENT_UPDATE (§3.6) ---
    Golden(
        "event_update.first_packet_timestamp.json",
        EventUpdate(event_type=EventType.FIRST_PACKET_TIMESTAMP, timestamp=1727384349000),
        canonical=True,
    ),
    Golden(
        "event_update.active_speaker_change.json",
        EventUpdate(
            event_type=EventType.ACTIVE_SPEAKER_CHANGE,
            timestamp=1727384350000,
            user_id=JANE,
            user_name="Jane Doe",
        ),
        canonical=True,
    ),
    Golden(
        "event_update.participant_join.json",
        EventUpdate(
            event_type=EventType.PARTICIPANT_JOIN,
            timestamp=1727384351000,
            participants=(
                Participant(user_id=JANE, user_name="Jane Doe"),
                Participant(user_id=JOHN, user_name="John Roe"),
            ),
        ),
        canonical=False,  # DOC's string id "16778240" becomes an integer
    ),
    Golden(
        "event_update.participant_leave.json",
        EventUpdate(
            event_type=EventType.PARTICIPANT_LEAVE,
            timestamp=1727384352000,
            participants=(Participant(user_id=JOHN),),
        ),
        canonical=True,
    ),
    Golden(
        "event_update.sharing_start.json",
        EventUpdate(
            event_type=EventType.SHARING_START,
            timestamp=1727384353000,
            user_id=JANE,
            user_name="Jane Doe",
        ),
        canonical=True,
    ),
    Golden(
        "event_update.video_on_top_level.json",
        EventUpdate(
            event_type=EventType.PARTICIPANT_VIDEO_ON,
            timestamp=1727384354000,
            user_id=JANE,
            user_name="Jane Doe",
        ),
        canonical=True,
    ),
    Golden(
        "event_update.media_connection_interrupted.json",
        EventUpdate(
            event_type=EventType.MEDIA_CONNECTION_INTERRUPTED,
            timestamp=1727384355000,
            raw={
                "media_type": 2,
                "detail": {"url": "wss://sjc.zoom.us/rtms/video", "codes": (1006,)},
            },
        ),
        canonical=True,
    ),
    Golden(
        "event_update.zcc_consumer_answered.json",
        EventUpdate(
            event_type=ZccEventType.CONSUMER_ANSWERED,
            timestamp=1727384356000,
            zcc_participant=ZccParticipant(
                channel_id="ch-1",
                participant_mode="caller",
                queue_id="q-7",
                queue_name="Support",
                phone_number="+15550100",
                user_id="agent-42",
                display_name="Agent Smith",
            ),
            raw={"event_ts": 0},  # ZCC spells the timestamp key event_ts
        ),
        canonical=False,  # DOC-ZCC's event name becomes its number
    ),
    # --- 7-13 ---
    Golden("client_ready.json", ClientReady(rtms_stream_id=STREAM), canonical=True),
    Golden(
        "stream_state_update.json",
        StreamStateUpdate(
            state=StreamState.TERMINATED, reason=StopReason.MEETING_ENDED, timestamp=1727384357000
        ),
        canonical=True,
    ),
    Golden(
        "stream_state_update.mock.json",
        StreamStateUpdate(
            state=StreamState.TERMINATED,
            reason=StopReason.MEETING_ENDED,
            timestamp=1727384357000,
            rtms_stream_id=STREAM,
        ),
        canonical=False,  # the name string is re-encoded as its number
    ),
    Golden(
        "session_state_update.json",
        SessionStateUpdate(
            state=SessionState.STOPPED,
            stop_reason=StopReason.MEETING_ENDED,
            timestamp=1727384358000,
            rtms_session_id="sess-1",
        ),
        canonical=True,
    ),
    Golden(
        "session_state_update.started.json",
        SessionStateUpdate(
            state=SessionState.STARTED, timestamp=1727384348000, rtms_session_id="sess-1"
        ),
        canonical=True,
    ),
    Golden(
        "session_state_update.mock.json",
        SessionStateUpdate(
            state=SessionState.STOPPED,
            stop_reason=StopReason.MEETING_ENDED,
            timestamp=1727384358000,
            rtms_session_id="sess-1",
        ),
        canonical=False,  # reason/session_id are re-encoded as stop_reason/rtms_session_id
    ),
    Golden("session_state_request.json", SessionStateRequest(rtms_session_id="sess-1"), True),
    Golden(
        "session_state_response.json",
        SessionStateResponse(
            rtms_session_id="sess-1", state=SessionState.PAUSED, timestamp=1727384359000
        ),
        canonical=True,
    ),
    Golden("keep_alive_request.json", KeepAliveRequest(timestamp=1727384360000), True),
    Golden(
        "keep_alive_request.zoom_sdk.json",
        KeepAliveRequest(timestamp=1727384360000, sequence=17),
        canonical=True,
    ),
    Golden("keep_alive_request.mock.json", KeepAliveRequest(), canonical=False),
    Golden(
        "keep_alive_response.json",
        KeepAliveResponse(timestamp=1727384360000, sequence=17),
        canonical=True,
    ),
    # --- 14-18 media data (§6) ---
    Golden(
        "audio_data.json",
        AudioData(data=bytes(range(8)), user_id=0, length=8, timestamp=1727384361000),
        canonical=True,
    ),
    Golden(
        "audio_data.multi_stream.json",
        AudioData(
            data=b"\xff\xfe\xfd\xfc",
            user_id=JANE,
            user_name="Jane Doe",
            length=4,
            timestamp=1727384361020,
        ),
        canonical=True,
    ),
    Golden(
        "audio_data.contact_center.json",
        AudioData(data=b"\x01\x02\x03", channel_id="ch-1", timestamp=1727384361040),
        canonical=True,
    ),
    Golden(
        "video_data.json",
        VideoData(
            data=b"\xff\xd8\xff\xe0\x00\x10",
            user_id=JANE,
            user_name="Jane Doe",
            length=6,
            timestamp=1727384362000,
        ),
        canonical=True,
    ),
    Golden(
        "deskshare_data.json",
        DeskshareData(
            data=b"\x89PNG\r\n\x1a\n", user_id=JANE, user_name="Jane Doe", timestamp=1727384363000
        ),
        canonical=True,
    ),
    Golden(
        "transcript_data.json",
        TranscriptData(
            text="Hello, everyone. Caf\u00e9 \u65e5\u672c",
            user_id=JANE,
            user_name="Jane Doe",
            timestamp=1727384364000,
            start_time=1727384364000,
            end_time=1727384366500,
            language=TranscriptLanguage.ENGLISH,
            attribute=1,
        ),
        canonical=True,
    ),
    Golden(
        "chat_data.plain.json",
        ChatData(text="hello from the old format", timestamp=1727384367000),
        canonical=True,
    ),
    Golden(
        "chat_data.structured.json",
        ChatData(
            text=(
                '{"chat_session":{"type":2,"id":"cs-9"},"operation_type":1,'
                '"message_id":"msg-1","parent_message_id":"msg-0",'
                '"sender":{"user_id":16778240,"user_name":"Jane Doe"},'
                '"receiver":{"user_id":"16779264","user_name":"John Roe"},'
                '"files":[{"file_id":"f-1","file_name":"notes.txt","file_size":1234}],'
                '"delete_file_id_list":["f-0"],"data":"see attached"}'
            ),
            user_id=JANE,
            user_name="Jane Doe",
            timestamp=1727384368000,
            chat=StructuredChat(
                session_type=ChatSessionType.INDIVIDUAL,
                session_id="cs-9",
                operation=ChatOperation.NEW,
                message_id="msg-1",
                parent_message_id="msg-0",
                sender=ChatUser(user_id=JANE, user_name="Jane Doe"),
                receiver=ChatUser(user_id="16779264", user_name="John Roe"),
                files=(ChatFile(file_id="f-1", file_name="notes.txt", file_size=1234),),
                delete_file_ids=("f-0",),
                text="see attached",
            ),
        ),
        canonical=True,
    ),
    # --- 19-22, 28-29 ---
    Golden("stream_state_request.json", StreamStateRequest(rtms_stream_id=STREAM), True),
    Golden(
        "stream_state_response.json",
        StreamStateResponse(state=StreamState.ACTIVE, rtms_stream_id=STREAM, timestamp=1694204592),
        canonical=True,
    ),
    Golden("stream_close_request.json", StreamCloseRequest(rtms_stream_id=STREAM), True),
    Golden(
        "stream_close_response.json",
        StreamCloseResponse(
            rtms_stream_id=STREAM, status_code=0, reason="OK", timestamp=1727384369000
        ),
        canonical=True,
    ),
    Golden(
        "video_subscription_request.json",
        VideoSubscriptionRequest(user_id=JANE, subscribe=True, timestamp=1727384370000),
        canonical=True,
    ),
    Golden(
        "video_subscription_response.json",
        VideoSubscriptionResponse(
            user_id=JANE, status_code=0, reason="OK", timestamp=1727384370100
        ),
        canonical=True,
    ),
    Golden(
        "video_subscription_response.duplicate.json",
        VideoSubscriptionResponse(
            user_id=JANE,
            status_code=44,
            reason="duplicate video subscription",
            timestamp=1727384370200,
            subscribe=True,
        ),
        canonical=True,
    ),
    # --- 23 metadata, unknown types, MOCK's string msg_type ---
    Golden(
        "meta_data_audio.json",
        MetadataMessage(
            msg_type=23,
            raw={
                "content": {
                    "ai_interpreter": {"lid": 9, "targets": ({"lid": 14, "voice_id": "v1"},)}
                }
            },
        ),
        canonical=True,
    ),
    Golden(
        "unknown_message.json",
        UnknownMessage(msg_type=42, raw={"future_field": (1, "two", {"three": 3.5}), "flag": None}),
        canonical=True,
    ),
    Golden(
        "debug_log.mock.json",
        DecodeError(msg_type=None, field="msg_type", detail="expected an integer, got string"),
        canonical=False,
    ),
]


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_every_fixture_file_has_an_expected_value() -> None:
    files = sorted(p.name for p in FIXTURES.glob("*.json"))
    assert files == sorted(g.file for g in GOLDEN)


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda g: g.file)
def test_fixture_decodes_to_expected_value(golden: Golden) -> None:
    data = _read(golden.file)
    assert decode_message(data) == golden.expected  # binary frame
    assert decode_message(data.decode("utf-8")) == golden.expected  # text frame


@pytest.mark.parametrize("golden", [g for g in GOLDEN if g.canonical], ids=lambda g: g.file)
def test_canonical_fixture_is_what_encoding_writes(golden: Golden) -> None:
    assert not isinstance(golden.expected, DecodeError)
    assert json.loads(encode_message(golden.expected)) == json.loads(_read(golden.file))


@pytest.mark.parametrize(
    "golden",
    [g for g in GOLDEN if not g.canonical and not isinstance(g.expected, DecodeError)],
    ids=lambda g: g.file,
)
def test_non_canonical_fixture_normalizes_in_one_round(golden: Golden) -> None:
    decoded = decode_message(_read(golden.file))
    assert not isinstance(decoded, DecodeError)
    encoded = encode_message(decoded)
    assert json.loads(encoded) != json.loads(_read(golden.file))
    assert decode_message(encoded) == decoded


def test_zcc_event_keeps_its_own_key_spellings_when_reencoded() -> None:
    decoded = decode_message(_read("event_update.zcc_consumer_answered.json"))
    assert isinstance(decoded, EventUpdate)
    event = json.loads(encode_message(decoded))["event"]
    assert event["event_type"] == 8
    assert event["event_ts"] == 1727384356000
    assert "timestamp" not in event
    assert event["paticipant_info"]["user_id"] == "agent-42"


def test_every_message_class_has_a_golden_fixture() -> None:
    covered = {type(g.expected) for g in GOLDEN}
    assert set(get_args(Message)) <= covered
