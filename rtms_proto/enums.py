"""Every numbered constant of the RTMS wire protocol (docs/protocol.md §4).

Values from the network are mapped with :func:`to_enum`, which keeps numbers
it does not know as plain ``int`` instead of failing: Zoom adds codes over
time, and an unknown stop reason must not crash a recorder.
"""

from __future__ import annotations

import enum
from typing import TypeVar

__all__ = [
    "AudioChannel",
    "AudioSampleRate",
    "ChatOperation",
    "ChatSessionType",
    "Codec",
    "ContentType",
    "DataAttribute",
    "DataOption",
    "EventType",
    "FailureReason",
    "LegacyStatusCode",
    "MediaType",
    "MessageType",
    "Product",
    "Resolution",
    "SessionState",
    "StatusCode",
    "StopReason",
    "StreamState",
    "TranscriptLanguage",
    "ZccEventType",
    "media_name",
    "to_enum",
]

E = TypeVar("E", bound=enum.IntEnum)


def to_enum(cls: type[E], value: int) -> E | int:
    """Return the member of ``cls`` for ``value``, or ``value`` itself when unknown."""
    try:
        return cls(value)
    except ValueError:
        return value


class MessageType(enum.IntEnum):
    """``msg_type``: what a message is (docs/protocol.md §2)."""

    UNDEFINED = 0
    SIGNALING_HAND_SHAKE_REQ = 1
    SIGNALING_HAND_SHAKE_RESP = 2
    DATA_HAND_SHAKE_REQ = 3
    DATA_HAND_SHAKE_RESP = 4
    EVENT_SUBSCRIPTION = 5
    EVENT_UPDATE = 6
    CLIENT_READY_ACK = 7
    STREAM_STATE_UPDATE = 8
    SESSION_STATE_UPDATE = 9
    SESSION_STATE_REQ = 10
    SESSION_STATE_RESP = 11
    KEEP_ALIVE_REQ = 12
    KEEP_ALIVE_RESP = 13
    MEDIA_DATA_AUDIO = 14
    MEDIA_DATA_VIDEO = 15
    MEDIA_DATA_SHARE = 16
    MEDIA_DATA_TRANSCRIPT = 17
    MEDIA_DATA_CHAT = 18
    STREAM_STATE_REQ = 19
    STREAM_STATE_RESP = 20
    STREAM_CLOSE_REQ = 21
    STREAM_CLOSE_RESP = 22
    META_DATA_AUDIO = 23
    META_DATA_VIDEO = 24
    META_DATA_SHARE = 25
    META_DATA_TRANSCRIPT = 26
    META_DATA_CHAT = 27
    VIDEO_SUBSCRIPTION_REQ = 28
    VIDEO_SUBSCRIPTION_RESP = 29


class EventType(enum.IntEnum):
    """``event_type`` of EVENT_UPDATE for meetings, webinars and Video SDK (§4.2).

    10-14 (chat groups) are numbers only one Zoom sample uses; they are kept
    because that sample is the only source for them.
    """

    UNDEFINED = 0
    FIRST_PACKET_TIMESTAMP = 1
    ACTIVE_SPEAKER_CHANGE = 2
    PARTICIPANT_JOIN = 3
    PARTICIPANT_LEAVE = 4
    SHARING_START = 5
    SHARING_STOP = 6
    MEDIA_CONNECTION_INTERRUPTED = 7
    PARTICIPANT_VIDEO_ON = 8
    PARTICIPANT_VIDEO_OFF = 9
    CHAT_GROUP_CREATE = 10
    CHAT_GROUP_DELETE = 11
    CHAT_GROUP_MEMBERS_ADD = 12
    CHAT_GROUP_MEMBERS_DELETE = 13
    CHAT_GROUP_MEMBER_STATUS_UPDATE = 14


class ZccEventType(enum.IntEnum):
    """``event_type`` of EVENT_UPDATE for Contact Center engagements (§4.2)."""

    UNDEFINED = 0
    CONSUMER_ANSWERED = 8
    CONSUMER_END = 9
    USER_ANSWERED = 10
    USER_END = 11
    USER_HOLD = 12
    USER_UNHOLD = 13
    MONITOR_STARTED = 14
    MONITOR_TRANSITIONED = 15
    MONITOR_ENDED = 16
    TAKEOVER_STARTED = 17
    TRANSFER_INITIATED = 18
    TRANSFER_CANCELED = 19
    TRANSFER_ACCEPTED = 20
    TRANSFER_COMPLETED = 21
    TRANSFER_REJECTED = 22
    TRANSFER_TIMEOUT = 23
    CONFERENCE_CANCELED = 24
    CONFERENCE_PARTICIPANT_CANCELED = 25
    CONFERENCE_PARTICIPANT_INVITED = 26
    CONFERENCE_PARTICIPANT_REJECTED = 27
    CONFERENCE_PARTICIPANT_TIMEOUT = 28
    CONFERENCE_PARTICIPANT_LEFT = 29


class StatusCode(enum.IntEnum):
    """``status_code``, the current table (DOC 0-45 plus Zoom samples' 46-47, §4.3)."""

    STATUS_OK = 0
    INVALID_MESSAGE_TYPE = 1
    INVALID_RTMS_STREAM_ID = 2
    INVALID_SIGNATURE = 3
    INVALID_PAYLOAD = 4
    INVALID_EVENTS = 5
    INVALID_EVENT_TYPE = 6
    INVALID_MEDIA_TYPE = 7
    DUPLICATE_SIGNAL_REQUEST = 8
    MEDIA_TYPE_AUDIO_NOT_SUPPORT = 9
    MEDIA_TYPE_VIDEO_NOT_SUPPORT = 10
    MEDIA_TYPE_DESKSHARE_NOT_SUPPORT = 11
    MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT = 12
    MEDIA_TYPE_CHAT_NOT_SUPPORT = 13
    MEDIA_TYPE_INVALID_VALUE = 14
    MEDIA_DATA_ALL_CONNECTION_EXIST = 15
    DUPLICATE_MEDIA_DATA_CONNECTION = 16
    INVALID_MEDIA_PARAMS = 17
    INVALID_MEDIA_AUDIO_PARAMS = 18
    INVALID_MEDIA_AUDIO_CONTENT_TYPE = 19
    INVALID_MEDIA_AUDIO_SAMPLE_RATE = 20
    INVALID_MEDIA_AUDIO_CHANNEL = 21
    INVALID_MEDIA_AUDIO_CODEC = 22
    INVALID_MEDIA_AUDIO_DATA_OPT = 23
    INVALID_MEDIA_AUDIO_SEND_RATE = 24
    INVALID_MEDIA_VIDEO_PARAMS = 25
    INVALID_MEDIA_VIDEO_CONTENT_TYPE = 26
    INVALID_MEDIA_VIDEO_CODEC = 27
    INVALID_MEDIA_VIDEO_RESOLUTION = 28
    INVALID_MEDIA_VIDEO_DATA_OPT = 29
    INVALID_MEDIA_VIDEO_FPS = 30
    INVALID_MEDIA_DESKSHARE_PARAMS = 31
    INVALID_MEDIA_DESKSHARE_CONTENT_TYPE = 32
    INVALID_MEDIA_DESKSHARE_CODEC = 33
    INVALID_MEDIA_DESKSHARE_RESOLUTION = 34
    INVALID_MEDIA_DESKSHARE_FPS = 35
    INVALID_MEDIA_TRANSCRIPT_PARAMS = 36
    INVALID_MEDIA_TRANSCRIPT_CONTENT_TYPE = 37
    INVALID_MEDIA_CHAT_PARAMS = 38
    INVALID_MEDIA_CHAT_CONTENT_TYPE = 39
    INVALID_RTMS_SESSION_ID = 40
    INVALID_CLIENT_READY_ACK = 41
    INVALID_EVENT_SUBSCRIBE = 42
    INVALID_MEDIA_TRANSCRIPT_SOURCE_LANGUAGE = 43
    DUPLICATE_VIDEO_SUBSCRIPTION = 44
    INTERNAL_EXCEPTION = 45
    INVALID_MEDIA_TRANSCRIPT_TARGET_LANGUAGE = 46
    CHAT_SESSION_KEY_NOT_AVAILABLE = 47


class LegacyStatusCode(enum.IntEnum):
    """``status_code``, the legacy/beta table (Contact Center docs, Zoom's mock, §4.3)."""

    STATUS_OK = 0
    CONNECTION_TIMEOUT = 1
    INVALID_JSON_MSG_SIZE = 2
    INVALID_JSON_MSG = 3
    INVALID_MESSAGE_TYPE = 4
    MSG_TYPE_NOT_EXIST = 5
    MSG_TYPE_NOT_UINT = 6
    MEETING_UUID_NOT_EXIST = 7
    MEETING_UUID_NOT_STRING = 8
    MEETING_UUID_IS_EMPTY = 9
    RTMS_STREAM_ID_NOT_EXIST = 10
    RTMS_STREAM_ID_NOT_STRING = 11
    RTMS_STREAM_ID_IS_EMPTY = 12
    SESSION_NOT_FOUND = 13
    SIGNATURE_NOT_EXIST = 14
    INVALID_SIGNATURE = 15
    INVALID_MEETING_OR_STREAM_ID = 16
    DUPLICATE_SIGNAL_REQUEST = 17
    EVENTS_NOT_EXIST = 18
    EVENTS_VALUE_NOT_ARRAY = 19
    EVENT_TYPE_NOT_EXIST = 20
    EVENT_TYPE_VALUE_NOT_UINT = 21
    MEDIA_TYPE_NOT_EXIST = 22
    MEDIA_TYPE_NOT_UINT = 23
    MEDIA_TYPE_AUDIO_NOT_SUPPORT = 24
    MEDIA_TYPE_VIDEO_NOT_SUPPORT = 25
    MEDIA_TYPE_DESKSHARE_NOT_SUPPORT = 26
    MEDIA_TYPE_TRANSCRIPT_NOT_SUPPORT = 27
    MEDIA_TYPE_CHAT_NOT_SUPPORT = 28
    MEDIA_TYPE_INVALID_VALUE = 29
    MEDIA_DATA_ALL_CONNECTION_EXIST = 30
    DUPLICATE_MEDIA_DATA_CONNECTION = 31
    MEDIA_PARAMS_NOT_EXIST = 32
    INVALID_MEDIA_PARAMS = 33
    NO_MEDIA_TYPE_SPECIFIED = 34
    INVALID_MEDIA_AUDIO_PARAMS = 35
    MEDIA_AUDIO_CONTENT_TYPE_NOT_UINT = 36
    INVALID_MEDIA_AUDIO_CONTENT_TYPE = 37
    MEDIA_AUDIO_SAMPLE_RATE_NOT_UINT = 38
    INVALID_MEDIA_AUDIO_SAMPLE_RATE = 39
    MEDIA_AUDIO_CHANNEL_NOT_UINT = 40
    INVALID_MEDIA_AUDIO_CHANNEL = 41
    MEDIA_AUDIO_CODEC_NOT_UINT = 42
    INVALID_MEDIA_AUDIO_CODEC = 43
    MEDIA_AUDIO_DATA_OPT_NOT_UINT = 44
    INVALID_MEDIA_AUDIO_DATA_OPT = 45
    MEDIA_AUDIO_SEND_RATE_NOT_UINT = 46
    MEDIA_AUDIO_FRAME_SIZE_NOT_UINT = 47
    INVALID_MEDIA_VIDEO_PARAMS = 48
    INVALID_MEDIA_VIDEO_CONTENT_TYPE = 49
    MEDIA_VIDEO_CONTENT_TYPE_NOT_UINT = 50
    INVALID_MEDIA_VIDEO_CODEC = 51
    MEDIA_VIDEO_CODEC_NOT_UINT = 52
    INVALID_MEDIA_VIDEO_RESOLUTION = 53
    MEDIA_VIDEO_RESOLUTION_NOT_UINT = 54
    INVALID_MEDIA_VIDEO_DATA_OPT = 55
    MEDIA_VIDEO_DATA_OPT_NOT_UINT = 56
    MEDIA_VIDEO_FPS_NOT_UINT = 57
    INVALID_MEDIA_SHARE_PARAMS = 58
    INVALID_MEDIA_DESKSHARE_CONTENT_TYPE = 59
    MEDIA_DESKSHARE_CONTENT_TYPE_NOT_UINT = 60
    INVALID_MEDIA_DESKSHARE_CODEC = 61
    MEDIA_DESKSHARE_CODEC_NOT_UINT = 62
    INVALID_MEDIA_DESKSHARE_RESOLUTION = 63
    MEDIA_DESKSHARE_RESOLUTION_NOT_UINT = 64
    MEDIA_DESKSHARE_FPS_NOT_UINT = 65
    INVALID_MEDIA_TRANSCRIPT_PARAMS = 66
    INVALID_MEDIA_TRANSCRIPT_CONTENT_TYPE = 67
    MEDIA_TRANSCRIPT_CONTENT_TYPE_NOT_UINT = 68
    INVALID_MEDIA_CHAT_PARAMS = 69
    INVALID_MEDIA_CHAT_CONTENT_TYPE = 70
    MEDIA_CHAT_CONTENT_TYPE_NOT_UINT = 71
    INVALID_AUDIO_DATA_BUFFER = 72
    INVALID_VIDEO_DATA_BUFFER = 73
    POST_FIRST_PACKET_FAILURE = 74
    RTMS_SESSION_NOT_FOUND = 75


class MediaType(enum.IntFlag, boundary=enum.KEEP):
    """``media_type`` bitmask (§4.4). ``ALL`` asks for one unified socket."""

    UNDEFINED = 0
    AUDIO = 1
    VIDEO = 2
    DESKSHARE = 4
    TRANSCRIPT = 8
    CHAT = 16
    ALL = 32


def media_name(media_type: MediaType) -> str:
    """Lower-case name of a media type for messages ("audio", "audio|video")."""
    return (media_type.name or str(int(media_type))).lower()


class ContentType(enum.IntEnum):
    """``content_type`` (§4.5)."""

    UNDEFINED = 0
    RTP = 1
    RAW_AUDIO = 2
    RAW_VIDEO = 3
    FILE_STREAM = 4
    TEXT = 5


class Codec(enum.IntEnum):
    """``codec`` (MEDIA_PAYLOAD_TYPE, §4.6). G711 means A-law."""

    UNDEFINED = 0
    L16 = 1
    G711 = 2
    G722 = 3
    OPUS = 4
    JPG = 5
    PNG = 6
    H264 = 7


class DataOption(enum.IntEnum):
    """``data_opt`` (§4.7)."""

    UNDEFINED = 0
    AUDIO_MIXED_STREAM = 1
    AUDIO_MULTI_STREAMS = 2
    VIDEO_SINGLE_ACTIVE_STREAM = 3
    VIDEO_SINGLE_INDIVIDUAL_STREAM = 4
    VIDEO_MIXED_GALLERY_VIEW = 5


class Resolution(enum.IntEnum):
    """``resolution`` (§4.8)."""

    SD = 1
    HD = 2
    FHD = 3
    QHD = 4


class AudioSampleRate(enum.IntEnum):
    """``sample_rate`` (§4.9): wire numbers, see :attr:`hz` for the rate."""

    SR_8K = 0
    SR_16K = 1
    SR_32K = 2
    SR_48K = 3

    @property
    def hz(self) -> int:
        return (8000, 16000, 32000, 48000)[self.value]


class AudioChannel(enum.IntEnum):
    """``channel`` (§4.9)."""

    MONO = 1
    STEREO = 2


class SessionState(enum.IntEnum):
    """RTMS_SESSION_STATE (§4.11)."""

    INACTIVE = 0
    INITIALIZE = 1
    STARTED = 2
    PAUSED = 3
    RESUMED = 4
    STOPPED = 5


class StreamState(enum.IntEnum):
    """RTMS_STREAM_STATE (§4.11)."""

    INACTIVE = 0
    ACTIVE = 1
    INTERRUPTED = 2
    TERMINATING = 3
    TERMINATED = 4
    PAUSED = 5
    RESUMED = 6


class StopReason(enum.IntEnum):
    """RTMS_STOP_REASON (§4.12); the wire names carry a ``STOP_BC_`` prefix."""

    UNDEFINED = 0
    HOST_TRIGGERED = 1
    USER_TRIGGERED = 2
    USER_LEFT = 3
    USER_EJECTED = 4
    HOST_DISABLED_APP = 5
    MEETING_ENDED = 6
    STREAM_CANCELED = 7
    STREAM_REVOKED = 8
    ALL_APPS_DISABLED = 9
    INTERNAL_EXCEPTION = 10
    CONNECTION_TIMEOUT = 11
    INSTANCE_CONNECTION_INTERRUPTED = 12
    SIGNAL_CONNECTION_INTERRUPTED = 13
    DATA_CONNECTION_INTERRUPTED = 14
    SIGNAL_CONNECTION_CLOSED_ABNORMALLY = 15
    DATA_CONNECTION_CLOSED_ABNORMALLY = 16
    EXIT_SIGNAL = 17
    AUTHENTICATION_FAILURE = 18
    AWAIT_RECONNECTION_TIMEOUT = 19
    RECEIVER_REQUEST_CLOSE = 20
    CUSTOMER_DISCONNECTED = 21
    AGENT_DISCONNECTED = 22
    ADMIN_DISABLED_APP = 23
    KEEP_ALIVE_TIMEOUT = 24
    MANUAL_API_TRIGGERED = 25
    STREAMING_NOT_SUPPORTED = 26


class TranscriptLanguage(enum.IntEnum):
    """RTMS_TRANSCRIPT_LANGUAGE (§4.13); ``NONE`` (-1) means auto-detect."""

    NONE = -1
    ARABIC = 0
    BENGALI = 1
    CANTONESE = 2
    CATALAN = 3
    CHINESE_SIMPLIFIED = 4
    CHINESE_TRADITIONAL = 5
    CZECH = 6
    DANISH = 7
    DUTCH = 8
    ENGLISH = 9
    ESTONIAN = 10
    FINNISH = 11
    FRENCH_CANADA = 12
    FRENCH_FRANCE = 13
    GERMAN = 14
    HEBREW = 15
    HINDI = 16
    HUNGARIAN = 17
    INDONESIAN = 18
    ITALIAN = 19
    JAPANESE = 20
    KOREAN = 21
    MALAY = 22
    PERSIAN = 23
    POLISH = 24
    PORTUGUESE = 25
    ROMANIAN = 26
    RUSSIAN = 27
    SPANISH = 28
    SWEDISH = 29
    TAGALOG = 30
    TAMIL = 31
    TELUGU = 32
    THAI = 33
    TURKISH = 34
    UKRAINIAN = 35
    VIETNAMESE = 36


class DataAttribute(enum.IntEnum):
    """RTMS_DATA_MESSAGE_ATTRIBUTE (§4.14)."""

    NONE = 0
    NEW = 1
    UPDATE = 2
    DELETE = 3


class ChatSessionType(enum.IntEnum):
    """``chat_session.type`` of structured chat (§4.15, Zoom samples only)."""

    EVERYONE = 1
    INDIVIDUAL = 2
    CHAT_GROUP = 3
    HOSTS_AND_PANELISTS = 4
    INDIVIDUAL_CC_HOSTS_AND_PANELISTS = 5


class ChatOperation(enum.IntEnum):
    """``operation_type`` of structured chat (§4.15, Zoom samples only)."""

    NEW = 1
    DELETE = 2
    UPDATE = 3
    ADD_EMOJI_REACTION = 4
    REMOVE_EMOJI_REACTION = 5


class Product(enum.Enum):
    """Which Zoom product a stream belongs to; decides the instance-id key (§3.1, §8.1)."""

    MEETING = "meeting"
    WEBINAR = "webinar"
    VIDEO_SDK = "session"
    CONTACT_CENTER = "contact_center"
    PHONE = "phone"

    @property
    def id_key(self) -> str:
        """The payload and handshake key that names the instance."""
        return _ID_KEYS[self]


_ID_KEYS = {
    Product.MEETING: "meeting_uuid",
    Product.WEBINAR: "webinar_uuid",
    Product.VIDEO_SDK: "session_id",
    Product.CONTACT_CENTER: "engagement_id",
    Product.PHONE: "call_id",
}


class FailureReason(enum.Enum):
    """Why a connection failed; :attr:`retryable` is the documented default.

    A failure is retryable when a new attempt can plausibly succeed without a
    change of configuration (network faults, timeouts, server hiccups).
    """

    CONNECT_FAILED = "connect_failed"
    WEBSOCKET_UPGRADE_REJECTED = "websocket_upgrade_rejected"
    PROTOCOL_ERROR = "protocol_error"
    MESSAGE_TOO_BIG = "message_too_big"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    HANDSHAKE_REJECTED = "handshake_rejected"
    DUPLICATE_SIGNAL = "duplicate_signal"
    DUPLICATE_MEDIA_CONNECTION = "duplicate_media_connection"
    AUTHENTICATION_FAILED = "authentication_failed"
    INVALID_REQUEST = "invalid_request"
    MEDIA_NOT_AVAILABLE = "media_not_available"
    BAD_HANDSHAKE_RESPONSE = "bad_handshake_response"
    KEEPALIVE_TIMEOUT = "keepalive_timeout"
    CONNECTION_LOST = "connection_lost"
    CLOSED_BY_SERVER = "closed_by_server"

    @property
    def retryable(self) -> bool:
        return self not in _FATAL_REASONS


_FATAL_REASONS = frozenset(
    {
        FailureReason.AUTHENTICATION_FAILED,
        FailureReason.INVALID_REQUEST,
        FailureReason.MEDIA_NOT_AVAILABLE,
    }
)
