"""What the server checks in a handshake, and the status it answers with.

Pure functions over decoded requests and their raw JSON.  A failed check is a
:class:`Rejection` named in the current status table; :func:`wire_status`
turns it into the number of the configured table (docs/protocol.md §4.3).  The
checks follow what Zoom documents (docs/protocol.md §3.1-§3.4, §5) and, where
sources disagree, accept what Zoom's own client sends (§13): a missing
``protocol_version``, ``media_params: null``, JSON in binary frames.

Where Zoom documents an adjustment instead of an error, the server adjusts:
``send_rate`` above 1000 becomes 1000, and an image codec asked for more frames
per second than it allows is held to its limit (5 for video, 1 for screen share).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from rtms_proto import (
    AudioParams,
    ChatParams,
    DeskshareParams,
    MediaParams,
    StatusTable,
    TranscriptParams,
    VideoParams,
    handshake_signature,
)
from rtms_proto import messages as m
from rtms_proto.enums import (
    AudioSampleRate,
    Codec,
    ContentType,
    DataOption,
    LegacyStatusCode,
    MediaType,
    StatusCode,
    TranscriptLanguage,
)

__all__ = [
    "SINGLE_TYPES",
    "Rejection",
    "check_identity",
    "confirm_media",
    "decode_rejection",
    "wire_status",
]

S = StatusCode
L = LegacyStatusCode

SINGLE_TYPES = (
    MediaType.AUDIO,
    MediaType.VIDEO,
    MediaType.DESKSHARE,
    MediaType.TRANSCRIPT,
    MediaType.CHAT,
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a handshake fails: a current-table status, a reason text, and the
    legacy number when it is more precise than :data:`LEGACY` says."""

    status: StatusCode
    reason: str
    legacy: LegacyStatusCode | None = None


LEGACY: Mapping[StatusCode, LegacyStatusCode] = {
    S.STATUS_OK: L.STATUS_OK,
    S.INVALID_MESSAGE_TYPE: L.INVALID_MESSAGE_TYPE,
    S.INVALID_RTMS_STREAM_ID: L.INVALID_MEETING_OR_STREAM_ID,
    S.INVALID_SIGNATURE: L.INVALID_SIGNATURE,
    S.INVALID_PAYLOAD: L.INVALID_JSON_MSG,
    S.INVALID_EVENTS: L.EVENTS_NOT_EXIST,
    S.INVALID_EVENT_TYPE: L.EVENT_TYPE_NOT_EXIST,
    S.INVALID_MEDIA_TYPE: L.MEDIA_TYPE_INVALID_VALUE,
    S.DUPLICATE_SIGNAL_REQUEST: L.DUPLICATE_SIGNAL_REQUEST,
    S.MEDIA_TYPE_AUDIO_NOT_SUPPORT: L.MEDIA_TYPE_AUDIO_NOT_SUPPORT,
    S.MEDIA_TYPE_VIDEO_NOT_SUPPORT: L.MEDIA_TYPE_VIDEO_NOT_SUPPORT,
    S.MEDIA_TYPE_DESKSHARE_NOT_SUPPORT: L.MEDIA_TYPE_DESKSHARE_NOT_SUPPORT,
    S.MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT: L.MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT,
    S.MEDIA_TYPE_CHAT_NOT_SUPPORT: L.MEDIA_TYPE_CHAT_NOT_SUPPORT,
    S.MEDIA_TYPE_INVALID_VALUE: L.MEDIA_TYPE_INVALID_VALUE,
    S.MEDIA_DATA_ALL_CONNECTION_EXIST: L.MEDIA_DATA_ALL_CONNECTION_EXIST,
    S.DUPLICATE_MEDIA_DATA_CONNECTION: L.DUPLICATE_MEDIA_DATA_CONNECTION,
    S.INVALID_MEDIA_PARAMS: L.INVALID_MEDIA_PARAMS,
    S.INVALID_MEDIA_AUDIO_PARAMS: L.INVALID_MEDIA_AUDIO_PARAMS,
    S.INVALID_MEDIA_AUDIO_CONTENT_TYPE: L.INVALID_MEDIA_AUDIO_CONTENT_TYPE,
    S.INVALID_MEDIA_AUDIO_SAMPLE_RATE: L.INVALID_MEDIA_AUDIO_SAMPLE_RATE,
    S.INVALID_MEDIA_AUDIO_CHANNEL: L.INVALID_MEDIA_AUDIO_CHANNEL,
    S.INVALID_MEDIA_AUDIO_CODEC: L.INVALID_MEDIA_AUDIO_CODEC,
    S.INVALID_MEDIA_AUDIO_DATA_OPT: L.INVALID_MEDIA_AUDIO_DATA_OPT,
    S.INVALID_MEDIA_AUDIO_SEND_RATE: L.MEDIA_AUDIO_SEND_RATE_NOT_UINT,
    S.INVALID_MEDIA_VIDEO_PARAMS: L.INVALID_MEDIA_VIDEO_PARAMS,
    S.INVALID_MEDIA_VIDEO_CONTENT_TYPE: L.INVALID_MEDIA_VIDEO_CONTENT_TYPE,
    S.INVALID_MEDIA_VIDEO_CODEC: L.INVALID_MEDIA_VIDEO_CODEC,
    S.INVALID_MEDIA_VIDEO_RESOLUTION: L.INVALID_MEDIA_VIDEO_RESOLUTION,
    S.INVALID_MEDIA_VIDEO_DATA_OPT: L.INVALID_MEDIA_VIDEO_DATA_OPT,
    S.INVALID_MEDIA_VIDEO_FPS: L.MEDIA_VIDEO_FPS_NOT_UINT,
    S.INVALID_MEDIA_DESKSHARE_PARAMS: L.INVALID_MEDIA_SHARE_PARAMS,
    S.INVALID_MEDIA_DESKSHARE_CONTENT_TYPE: L.INVALID_MEDIA_DESKSHARE_CONTENT_TYPE,
    S.INVALID_MEDIA_DESKSHARE_CODEC: L.INVALID_MEDIA_DESKSHARE_CODEC,
    S.INVALID_MEDIA_DESKSHARE_RESOLUTION: L.INVALID_MEDIA_DESKSHARE_RESOLUTION,
    S.INVALID_MEDIA_DESKSHARE_FPS: L.MEDIA_DESKSHARE_FPS_NOT_UINT,
    S.INVALID_MEDIA_TRANSCRIPT_PARAMS: L.INVALID_MEDIA_TRANSCRIPT_PARAMS,
    S.INVALID_MEDIA_TRANSCRIPT_CONTENT_TYPE: L.INVALID_MEDIA_TRANSCRIPT_CONTENT_TYPE,
    S.INVALID_MEDIA_TRANSCRIPT_SOURCE_LANGUAGE: L.INVALID_MEDIA_TRANSCRIPT_PARAMS,
    S.INVALID_MEDIA_CHAT_PARAMS: L.INVALID_MEDIA_CHAT_PARAMS,
    S.INVALID_MEDIA_CHAT_CONTENT_TYPE: L.INVALID_MEDIA_CHAT_CONTENT_TYPE,
    S.INVALID_RTMS_SESSION_ID: L.RTMS_SESSION_NOT_FOUND,
    S.INTERNAL_EXCEPTION: L.SESSION_NOT_FOUND,
}
"""The legacy number of each current status the server uses; any other is
sent as ``INVALID_JSON_MSG`` (the legacy table has nothing closer)."""


def wire_status(rejection: Rejection | StatusCode, table: StatusTable) -> int:
    """The ``status_code`` to send for ``rejection`` in ``table``."""
    if isinstance(rejection, Rejection):
        if table is StatusTable.LEGACY:
            return int(rejection.legacy or LEGACY.get(rejection.status, L.INVALID_JSON_MSG))
        return int(rejection.status)
    if table is StatusTable.LEGACY:
        return int(LEGACY.get(rejection, L.INVALID_JSON_MSG))
    return int(rejection)


# --- identity ---------------------------------------------------------------------------------


def decode_rejection(error: m.DecodeError) -> Rejection:
    """The answer to a handshake that could not even be decoded."""
    f = error.field or ""
    if error.field is None:
        return Rejection(S.INVALID_PAYLOAD, "message is not a JSON object", L.INVALID_JSON_MSG)
    if f == "msg_type":
        return Rejection(
            S.INVALID_MESSAGE_TYPE, "msg_type missing or not an integer", L.MSG_TYPE_NOT_EXIST
        )
    if f in m.INSTANCE_ID_KEYS:
        return Rejection(S.INVALID_PAYLOAD, f"invalid {f}", L.MEETING_UUID_NOT_EXIST)
    if f == "rtms_stream_id":
        return Rejection(
            S.INVALID_RTMS_STREAM_ID, "invalid rtms_stream_id", L.RTMS_STREAM_ID_NOT_EXIST
        )
    if f == "signature":
        return Rejection(S.INVALID_SIGNATURE, "signature missing", L.SIGNATURE_NOT_EXIST)
    if f == "media_type":
        return Rejection(
            S.INVALID_MEDIA_TYPE, "media_type missing or not an integer", L.MEDIA_TYPE_NOT_EXIST
        )
    if f.startswith("media_params"):
        return _params_type_error(f)
    return Rejection(S.INVALID_PAYLOAD, f"invalid {f}")


def check_identity(
    request: m.SignalingHandshakeRequest | m.MediaHandshakeRequest,
    *,
    instance_id: str,
    rtms_stream_id: str,
    client_id: str,
    client_secret: str,
) -> Rejection | None:
    """Protocol version, ids and signature, in that order; None when all are right.

    The signature is recomputed from the server's own ids, so a request that
    signs wrong ids consistently still fails.  The comparison is constant-time.
    """
    if request.protocol_version is not None and request.protocol_version != 1:
        return Rejection(S.INVALID_PAYLOAD, "unsupported protocol_version")
    if request.rtms_stream_id != rtms_stream_id:
        return Rejection(S.INVALID_RTMS_STREAM_ID, "unknown rtms_stream_id")
    if request.instance_id != instance_id:
        return Rejection(
            S.INVALID_RTMS_STREAM_ID,
            "instance id does not match the stream",
            L.INVALID_MEETING_OR_STREAM_ID,
        )
    expected = handshake_signature(
        client_id=client_id,
        client_secret=client_secret,
        instance_id=instance_id,
        rtms_stream_id=rtms_stream_id,
    )
    given = request.signature.encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode(), given):
        return Rejection(S.INVALID_SIGNATURE, "invalid signature")
    return None


# --- media type and parameters ----------------------------------------------------------------

_NOT_SUPPORTED = {
    MediaType.AUDIO: S.MEDIA_TYPE_AUDIO_NOT_SUPPORT,
    MediaType.VIDEO: S.MEDIA_TYPE_VIDEO_NOT_SUPPORT,
    MediaType.DESKSHARE: S.MEDIA_TYPE_DESKSHARE_NOT_SUPPORT,
    MediaType.TRANSCRIPT: S.MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT,
    MediaType.CHAT: S.MEDIA_TYPE_CHAT_NOT_SUPPORT,
}

_PARAMS_STATUS = {
    "audio": S.INVALID_MEDIA_AUDIO_PARAMS,
    "video": S.INVALID_MEDIA_VIDEO_PARAMS,
    "deskshare": S.INVALID_MEDIA_DESKSHARE_PARAMS,
    "transcript": S.INVALID_MEDIA_TRANSCRIPT_PARAMS,
    "chat": S.INVALID_MEDIA_CHAT_PARAMS,
}

_KEYS = {
    MediaType.AUDIO: "audio",
    MediaType.VIDEO: "video",
    MediaType.DESKSHARE: "deskshare",
    MediaType.TRANSCRIPT: "transcript",
    MediaType.CHAT: "chat",
}


def _params_type_error(field: str) -> Rejection:
    parts = field.split(".")
    if len(parts) >= 2 and parts[1] in _PARAMS_STATUS:
        return Rejection(_PARAMS_STATUS[parts[1]], f"invalid {field}")
    return Rejection(S.INVALID_MEDIA_PARAMS, f"invalid {field}")


def _requested_flags(media_type: int, url_type: MediaType) -> Rejection | MediaType:
    if media_type not in (*SINGLE_TYPES, MediaType.ALL):
        return Rejection(S.MEDIA_TYPE_INVALID_VALUE, "media_type must be one type or 32 (all)")
    flag = MediaType(media_type)
    if flag != url_type:
        return Rejection(S.INVALID_MEDIA_TYPE, "media_type does not match this media URL")
    return flag


def confirm_media(
    request: m.MediaHandshakeRequest,
    raw: Mapping[str, Any],
    *,
    url_type: MediaType,
    scopes: MediaType,
) -> Rejection | tuple[MediaType, MediaParams]:
    """Check ``media_type`` and ``media_params``; on success the carried types and the
    confirmed parameters (defaults filled in, only the carried types' sub-objects).

    ``url_type`` is the type of the URL the socket was opened on (``ALL`` for
    the unified URL), ``scopes`` the types the app may receive.  A unified
    socket carries every scoped type; a single type outside the scopes is
    refused with its ``MEDIA_TYPE_*_NOT_SUPPORT`` status.
    """
    flag = _requested_flags(int(request.media_type), url_type)
    if isinstance(flag, Rejection):
        return flag
    if flag == MediaType.ALL:
        carried = MediaType(int(scopes) & 0x1F)
        if not carried:
            return Rejection(S.MEDIA_TYPE_INVALID_VALUE, "no media type is in scope")
    else:
        if not flag & scopes:
            return Rejection(_NOT_SUPPORTED[flag], f"{_KEYS[flag]} is not in the app's scopes")
        carried = flag
    given = request.media_params or MediaParams()
    raw_params = raw.get("media_params")
    raw_obj: Mapping[str, Any] = raw_params if isinstance(raw_params, dict) else {}

    def sub(key: str) -> Mapping[str, Any]:
        value = raw_obj.get(key)
        return value if isinstance(value, dict) else {}

    audio: AudioParams | None = None
    video: VideoParams | None = None
    deskshare: DeskshareParams | None = None
    transcript: TranscriptParams | None = None
    chat: ChatParams | None = None
    if carried & MediaType.AUDIO:
        checked_audio = _audio(given.audio)
        if isinstance(checked_audio, Rejection):
            return checked_audio
        audio = checked_audio
    if carried & MediaType.VIDEO:
        checked_video = _video(given.video, sub("video"))
        if isinstance(checked_video, Rejection):
            return checked_video
        video = checked_video
    if carried & MediaType.DESKSHARE:
        checked_share = _deskshare(given.deskshare, sub("deskshare"))
        if isinstance(checked_share, Rejection):
            return checked_share
        deskshare = checked_share
    if carried & MediaType.TRANSCRIPT:
        checked_transcript = _transcript(given.transcript)
        if isinstance(checked_transcript, Rejection):
            return checked_transcript
        transcript = checked_transcript
    if carried & MediaType.CHAT:
        checked_chat = _chat(given.chat)
        if isinstance(checked_chat, Rejection):
            return checked_chat
        chat = checked_chat
    confirmed = MediaParams(
        audio=audio, video=video, deskshare=deskshare, transcript=transcript, chat=chat
    )
    return carried, confirmed


def _audio(given: AudioParams | None) -> Rejection | AudioParams:
    p = given or AudioParams()
    if p.content_type not in (ContentType.RTP, ContentType.RAW_AUDIO):
        return Rejection(S.INVALID_MEDIA_AUDIO_CONTENT_TYPE, "invalid audio content_type")
    if p.sample_rate not in tuple(AudioSampleRate):
        return Rejection(S.INVALID_MEDIA_AUDIO_SAMPLE_RATE, "invalid audio sample_rate")
    if p.channel not in (1, 2):
        return Rejection(S.INVALID_MEDIA_AUDIO_CHANNEL, "invalid audio channel")
    if p.codec not in (Codec.L16, Codec.G711, Codec.G722, Codec.OPUS):
        return Rejection(S.INVALID_MEDIA_AUDIO_CODEC, "invalid audio codec")
    if p.data_opt not in (DataOption.AUDIO_MIXED_STREAM, DataOption.AUDIO_MULTI_STREAMS):
        return Rejection(S.INVALID_MEDIA_AUDIO_DATA_OPT, "invalid audio data_opt")
    if p.send_rate < 20 or p.send_rate % 20:
        return Rejection(S.INVALID_MEDIA_AUDIO_SEND_RATE, "send_rate must be a multiple of 20 ms")
    codec = Codec(p.codec)
    rate = AudioSampleRate(p.sample_rate)
    if p.content_type == ContentType.RTP and codec is Codec.L16:
        return Rejection(S.INVALID_MEDIA_AUDIO_CODEC, "L16 is not sent over RTP")
    if p.content_type == ContentType.RAW_AUDIO and codec in (Codec.G711, Codec.G722):
        return Rejection(S.INVALID_MEDIA_AUDIO_CODEC, f"{codec.name} is only sent over RTP")
    need = {
        Codec.OPUS: AudioSampleRate.SR_48K,
        Codec.G711: AudioSampleRate.SR_8K,
        Codec.G722: AudioSampleRate.SR_16K,
    }.get(codec)
    if need is not None and rate is not need:
        return Rejection(S.INVALID_MEDIA_AUDIO_SAMPLE_RATE, f"{codec.name} needs {need.hz} Hz")
    if codec in (Codec.G711, Codec.G722) and p.channel != 1:
        return Rejection(S.INVALID_MEDIA_AUDIO_CHANNEL, f"{codec.name} is mono only")
    if codec is not Codec.L16 and p.send_rate != 20:
        return Rejection(S.INVALID_MEDIA_AUDIO_SEND_RATE, f"{codec.name} is sent every 20 ms")
    return replace(p, send_rate=min(p.send_rate, 1000))


def _frames(
    given: VideoParams | DeskshareParams,
    raw: Mapping[str, Any],
    *,
    image_fps: int,
    codes: tuple[StatusCode, StatusCode, StatusCode, StatusCode],
    name: str,
) -> Rejection | tuple[Codec, int]:
    """Shared video/deskshare checks; returns the confirmed codec and fps."""
    content, codec_status, resolution_status, fps_status = codes
    if given.content_type != ContentType.RAW_VIDEO:
        return Rejection(content, f"invalid {name} content_type")
    if given.codec not in (Codec.JPG, Codec.PNG, Codec.H264):
        return Rejection(codec_status, f"invalid {name} codec")
    if given.resolution not in (1, 2, 3, 4):
        return Rejection(resolution_status, f"invalid {name} resolution")
    if not 1 <= given.fps <= 30:
        return Rejection(fps_status, f"{name} fps must be 1 to 30")
    codec = Codec(given.codec)
    fps = given.fps
    if codec is not Codec.H264 and fps > image_fps:
        # Documented fallback: too many frames for an image codec → the image rate.
        fps = image_fps
        if raw.get("codec") is None:
            codec = Codec.JPG
    return codec, fps


def _video(given: VideoParams | None, raw: Mapping[str, Any]) -> Rejection | VideoParams:
    p = given or VideoParams()
    if p.data_opt not in (
        DataOption.VIDEO_SINGLE_ACTIVE_STREAM,
        DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM,
    ):
        return Rejection(S.INVALID_MEDIA_VIDEO_DATA_OPT, "invalid video data_opt")
    checked = _frames(
        p,
        raw,
        image_fps=5,
        codes=(
            S.INVALID_MEDIA_VIDEO_CONTENT_TYPE,
            S.INVALID_MEDIA_VIDEO_CODEC,
            S.INVALID_MEDIA_VIDEO_RESOLUTION,
            S.INVALID_MEDIA_VIDEO_FPS,
        ),
        name="video",
    )
    if isinstance(checked, Rejection):
        return checked
    return replace(p, codec=checked[0], fps=checked[1])


def _deskshare(
    given: DeskshareParams | None, raw: Mapping[str, Any]
) -> Rejection | DeskshareParams:
    p = given or DeskshareParams()
    checked = _frames(
        p,
        raw,
        image_fps=1,
        codes=(
            S.INVALID_MEDIA_DESKSHARE_CONTENT_TYPE,
            S.INVALID_MEDIA_DESKSHARE_CODEC,
            S.INVALID_MEDIA_DESKSHARE_RESOLUTION,
            S.INVALID_MEDIA_DESKSHARE_FPS,
        ),
        name="deskshare",
    )
    if isinstance(checked, Rejection):
        return checked
    return replace(p, codec=checked[0], fps=checked[1])


def _transcript(given: TranscriptParams | None) -> Rejection | TranscriptParams:
    p = given or TranscriptParams()
    if p.content_type != ContentType.TEXT:
        return Rejection(S.INVALID_MEDIA_TRANSCRIPT_CONTENT_TYPE, "invalid transcript content_type")
    if p.src_language is not None and p.src_language not in tuple(TranscriptLanguage):
        return Rejection(S.INVALID_MEDIA_TRANSCRIPT_SOURCE_LANGUAGE, "invalid src_language")
    return p


def _chat(given: ChatParams | None) -> Rejection | ChatParams:
    p = given or ChatParams()
    if p.content_type != ContentType.TEXT:
        return Rejection(S.INVALID_MEDIA_CHAT_CONTENT_TYPE, "invalid chat content_type")
    return p
