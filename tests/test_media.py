"""The media socket: the msg 3/4 handshake, its parameters and its rejections."""

from __future__ import annotations

import json

import pytest
from conn_harness import (
    AUDIO,
    MEDIA_OK,
    SIGNATURE,
    Close,
    media,
    product_stream,
    reach,
)

from rtms_proto import (
    AudioParams,
    ChatParams,
    ConnectionOptions,
    ConnState,
    DeskshareParams,
    InvalidConfig,
    MediaConnection,
    MediaParams,
    RemoteProtocolError,
    TranscriptParams,
    VideoParams,
)
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import CloseSocket
from rtms_proto.enums import (
    AudioChannel,
    AudioSampleRate,
    Codec,
    ContentType,
    DataOption,
    FailureReason,
    MediaType,
    Product,
    Resolution,
    StatusCode,
    TranscriptLanguage,
)

AUDIO_P = AudioParams(
    content_type=ContentType.RTP,
    sample_rate=AudioSampleRate.SR_48K,
    channel=AudioChannel.STEREO,
    codec=Codec.OPUS,
    data_opt=DataOption.AUDIO_MULTI_STREAMS,
    send_rate=40,
)
VIDEO_P = VideoParams(codec=Codec.H264, resolution=Resolution.FHD, fps=30)
DESKSHARE_P = DeskshareParams(codec=Codec.PNG, resolution=Resolution.QHD, fps=1)
TRANSCRIPT_P = TranscriptParams(src_language=TranscriptLanguage(9), enable_lid=False)
CHAT_P = ChatParams()
EVERYTHING = MediaParams(
    audio=AUDIO_P, video=VIDEO_P, deskshare=DESKSHARE_P, transcript=TRANSCRIPT_P, chat=CHAT_P
)


def _request(conn: MediaConnection) -> m.Message | m.DecodeError:
    w = reach(conn, ConnState.HANDSHAKING)
    return w.peer.received[-1]


# --- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "media_type",
    [
        MediaType.UNDEFINED,
        MediaType.AUDIO | MediaType.VIDEO,
        MediaType.ALL | MediaType.AUDIO,
        MediaType(64),
    ],
)
def test_a_media_socket_carries_one_type_or_all(media_type: MediaType) -> None:
    with pytest.raises(InvalidConfig, match="a media socket carries one media type or ALL"):
        media(media_type)


def test_requested_params_are_validated() -> None:
    with pytest.raises(InvalidConfig, match=r"audio\.send_rate=15"):
        media(params=MediaParams(audio=AudioParams(send_rate=15)))
    # Even sub-objects the socket will not send.
    with pytest.raises(InvalidConfig, match=r"video\.fps=6"):
        media(params=MediaParams(video=VideoParams(fps=6)))


def test_a_plain_number_is_taken_as_its_media_type() -> None:
    conn = media(1)  # type: ignore[arg-type]
    assert conn.media_type is MediaType.AUDIO
    w = reach(conn, ConnState.HANDSHAKING)
    conn.receive_data(w.peer.send({"msg_type": 4, "status_code": 9}), now=1.0)
    failure = w.drain()[0]
    assert failure == ev.ConnectionFailed(
        sock=AUDIO,
        error=RemoteProtocolError(
            FailureReason.MEDIA_NOT_AVAILABLE,
            "audio media handshake rejected",
            status=StatusCode.MEDIA_TYPE_AUDIO_NOT_SUPPORT,
        ),
    )


def test_requested_keeps_only_the_sockets_own_params() -> None:
    conn = media(MediaType.VIDEO, params=EVERYTHING)
    assert conn.media_type is MediaType.VIDEO
    assert conn.requested == MediaParams(video=VIDEO_P)
    assert conn.confirmed is None
    assert media(MediaType.ALL, params=EVERYTHING).requested == EVERYTHING
    assert media(MediaType.CHAT, params=MediaParams(audio=AUDIO_P)).requested is None
    assert media(MediaType.AUDIO).requested is None


# --- the handshake request --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        (MediaType.AUDIO, MediaParams(audio=AUDIO_P)),
        (MediaType.VIDEO, MediaParams(video=VIDEO_P)),
        (MediaType.DESKSHARE, MediaParams(deskshare=DESKSHARE_P)),
        (MediaType.TRANSCRIPT, MediaParams(transcript=TRANSCRIPT_P)),
        (MediaType.CHAT, MediaParams(chat=CHAT_P)),
        (MediaType.ALL, EVERYTHING),
    ],
)
def test_handshake_request_carries_only_the_sockets_params(
    media_type: MediaType, expected: MediaParams
) -> None:
    sent = _request(media(media_type, params=EVERYTHING, sequence=3))
    assert sent == m.MediaHandshakeRequest(
        instance_id="meeting-uuid==",
        rtms_stream_id="stream-1",
        signature=SIGNATURE,
        media_type=media_type,
        media_params=expected,
        id_keys=("meeting_uuid",),
        protocol_version=1,
        sequence=3,
        payload_encryption=False,
        client_agent="rtms-proto",
    )


def test_all_sends_every_present_sub_object_and_no_other() -> None:
    params = MediaParams(audio=AUDIO_P, transcript=TRANSCRIPT_P)
    sent = _request(media(MediaType.ALL, params=params))
    assert isinstance(sent, m.MediaHandshakeRequest)
    assert sent.media_params == params


def test_handshake_request_wire_form_for_audio() -> None:
    conn = media(MediaType.AUDIO, params=MediaParams(audio=AUDIO_P, video=VIDEO_P))
    w = reach(conn, ConnState.HANDSHAKING)
    sent = w.peer.raw[-1]
    assert isinstance(sent, str)
    assert json.loads(sent) == {
        "msg_type": 3,
        "meeting_uuid": "meeting-uuid==",
        "rtms_stream_id": "stream-1",
        "signature": SIGNATURE,
        "protocol_version": 1,
        "sequence": 1,
        "rtms_client_agent": "rtms-proto",
        "media_type": 1,
        "media_params": {
            "audio": {
                "content_type": 1,
                "sample_rate": 3,
                "channel": 2,
                "codec": 4,
                "data_opt": 2,
                "send_rate": 40,
            }
        },
        "payload_encryption": False,
    }


@pytest.mark.parametrize("params", [None, MediaParams(), MediaParams(video=VIDEO_P)])
def test_without_params_for_its_type_media_params_is_omitted(params: MediaParams | None) -> None:
    conn = media(MediaType.AUDIO, params=params)
    w = reach(conn, ConnState.HANDSHAKING)
    sent = w.peer.raw[-1]
    assert isinstance(sent, str)
    assert "media_params" not in json.loads(sent)
    request = w.peer.received[-1]
    assert isinstance(request, m.MediaHandshakeRequest)
    assert request.media_params is None


@pytest.mark.parametrize(
    ("product", "keys"),
    [
        (Product.MEETING, ("meeting_uuid",)),
        (Product.CONTACT_CENTER, ("meeting_uuid", "engagement_id")),
        (Product.WEBINAR, ("meeting_uuid", "webinar_uuid")),
    ],
)
def test_media_handshake_names_the_instance_under_the_product_keys(
    product: Product, keys: tuple[str, ...]
) -> None:
    sent = _request(media(stream=product_stream(product)))
    assert isinstance(sent, m.MediaHandshakeRequest)
    assert sent.id_keys == keys
    assert sent.signature == SIGNATURE


def test_media_handshake_without_client_agent() -> None:
    sent = _request(media(options=ConnectionOptions(client_agent=None)))
    assert isinstance(sent, m.MediaHandshakeRequest)
    assert sent.client_agent is None


# --- confirmed parameters ---------------------------------------------------------------------


def _answer(conn: MediaConnection, response: m.Message | dict[str, object]) -> list[object]:
    w = reach(conn, ConnState.HANDSHAKING, now=0.0)
    conn.receive_data(w.peer.send(response), now=2.0)
    out: list[object] = list(w.drain())
    return out


def test_confirmed_params_come_from_the_reply() -> None:
    conn = media(MediaType.AUDIO, params=MediaParams(audio=AUDIO_P))
    confirmed = MediaParams(audio=AudioParams(codec=Codec.L16, send_rate=100))
    out = _answer(conn, m.MediaHandshakeResponse(status_code=0, media_params=confirmed))
    assert out == [ev.MediaConnected(sock=AUDIO, media_type=MediaType.AUDIO, params=confirmed)]
    assert conn.confirmed == confirmed
    assert conn.state is ConnState.OPEN
    assert conn.next_deadline() == 37.0


def test_confirmed_params_fill_protocol_defaults_of_the_reply() -> None:
    conn = media(MediaType.VIDEO, params=MediaParams(video=VIDEO_P))
    out = _answer(conn, {"msg_type": 4, "status_code": 0, "media_params": {"video": {"fps": 30}}})
    assert out == [
        ev.MediaConnected(
            sock=AUDIO, media_type=MediaType.VIDEO, params=MediaParams(video=VideoParams(fps=30))
        )
    ]


def test_confirmed_params_are_the_requested_ones_when_the_reply_has_none() -> None:
    conn = media(MediaType.ALL, params=EVERYTHING)
    out = _answer(conn, MEDIA_OK)
    assert out == [ev.MediaConnected(sock=AUDIO, media_type=MediaType.ALL, params=EVERYTHING)]
    assert conn.confirmed == EVERYTHING


def test_confirmed_params_are_empty_when_neither_side_named_any() -> None:
    conn = media(MediaType.TRANSCRIPT)
    out = _answer(conn, {"msg_type": 4, "status_code": 0, "media_params": None})
    assert out == [
        ev.MediaConnected(sock=AUDIO, media_type=MediaType.TRANSCRIPT, params=MediaParams())
    ]
    assert conn.confirmed == MediaParams()


def test_an_empty_params_reply_is_taken_as_sent() -> None:
    conn = media(MediaType.AUDIO, params=MediaParams(audio=AUDIO_P))
    out = _answer(conn, {"msg_type": 4, "status_code": 0, "media_params": {}})
    assert out == [ev.MediaConnected(sock=AUDIO, media_type=MediaType.AUDIO, params=MediaParams())]


def test_a_reply_with_bad_params_is_a_bad_handshake_response() -> None:
    conn = media()
    out = _answer(conn, {"msg_type": 4, "status_code": 0, "media_params": {"audio": []}})
    error = m.DecodeError(
        msg_type=4, field="media_params.audio", detail="expected an object, got array"
    )
    assert out == [
        ev.ConnectionFailed(
            sock=AUDIO,
            error=RemoteProtocolError(FailureReason.BAD_HANDSHAKE_RESPONSE, str(error)),
        ),
        Close(1000, ""),
        CloseSocket(sock=AUDIO),
    ]
    assert conn.confirmed is None


# --- rejections -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "status", "reason", "what"),
    [
        (
            MediaType.AUDIO,
            StatusCode.MEDIA_TYPE_AUDIO_NOT_SUPPORT,
            FailureReason.MEDIA_NOT_AVAILABLE,
            "audio",
        ),
        (
            MediaType.DESKSHARE,
            StatusCode.MEDIA_TYPE_DESKSHARE_NOT_SUPPORT,
            FailureReason.MEDIA_NOT_AVAILABLE,
            "deskshare",
        ),
        (
            MediaType.VIDEO,
            StatusCode.DUPLICATE_MEDIA_DATA_CONNECTION,
            FailureReason.DUPLICATE_MEDIA_CONNECTION,
            "video",
        ),
        (
            MediaType.ALL,
            StatusCode.MEDIA_DATA_ALL_CONNECTION_EXIST,
            FailureReason.DUPLICATE_MEDIA_CONNECTION,
            "all",
        ),
        (
            MediaType.TRANSCRIPT,
            StatusCode.INVALID_MEDIA_TRANSCRIPT_SOURCE_LANGUAGE,
            FailureReason.INVALID_REQUEST,
            "transcript",
        ),
        (
            MediaType.CHAT,
            StatusCode.CHAT_SESSION_KEY_NOT_AVAILABLE,
            FailureReason.HANDSHAKE_REJECTED,
            "chat",
        ),
    ],
)
def test_media_handshake_rejection(
    media_type: MediaType, status: StatusCode, reason: FailureReason, what: str
) -> None:
    conn = media(media_type)
    out = _answer(conn, {"msg_type": 4, "status_code": int(status), "reason": "no"})
    assert out == [
        ev.ConnectionFailed(
            sock=AUDIO,
            error=RemoteProtocolError(
                reason, f"{what} media handshake rejected", status=status, status_reason="no"
            ),
        ),
        Close(1000, ""),
        CloseSocket(sock=AUDIO),
    ]
    failure = out[0]
    assert isinstance(failure, ev.ConnectionFailed)
    assert failure.retryable is reason.retryable
    assert conn.state is ConnState.FAILED
    assert conn.confirmed is None


def test_a_signaling_answer_on_a_media_socket_is_malformed() -> None:
    conn = media()
    w = reach(conn, ConnState.HANDSHAKING)
    conn.receive_data(w.peer.send(m.SignalingHandshakeResponse(status_code=0)), now=1.0)
    assert w.drain() == [
        ev.MalformedMessage(
            sock=AUDIO,
            error=m.DecodeError(
                msg_type=2,
                field=None,
                detail="a client-to-server message arrived from the server",
            ),
        )
    ]
    assert conn.state is ConnState.HANDSHAKING
