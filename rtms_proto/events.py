"""What the application receives: immutable, fully built, past-tense values.

Every event is a frozen dataclass in the closed union :data:`Event`; dispatch
with ``match`` and ``assert_never``.  Media payloads are ``bytes`` (decoded
from base64) or ``str`` (transcript, chat).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import RemoteProtocolError
from ._params import MediaParams
from ._wire.media import AudioReceived, DeskshareReceived, VideoReceived
from .actions import SocketId
from .enums import (
    DataAttribute,
    EventType,
    FailureReason,
    MediaType,
    SessionState,
    StatusCode,
    StopReason,
    StreamState,
    TranscriptLanguage,
    ZccEventType,
)
from .messages import DecodeError, JsonValue, Participant, StructuredChat, ZccParticipant

__all__ = [
    "ActiveSpeakerChanged",
    "AudioReceived",
    "ChatGroupChanged",
    "ChatReceived",
    "ConnectionFailed",
    "ContactCenterEvent",
    "DeskshareReceived",
    "EndReason",
    "Event",
    "FirstPacketReceived",
    "MalformedMessage",
    "MediaConnected",
    "MediaInterrupted",
    "MediaUnavailable",
    "MetadataReceived",
    "ParticipantVideoChanged",
    "ParticipantsJoined",
    "ParticipantsLeft",
    "ReconnectCompleted",
    "ReconnectScheduled",
    "ReconnectScope",
    "ReconnectStarted",
    "SessionEnded",
    "SessionStateChanged",
    "SessionStateReported",
    "SharingStarted",
    "SharingStopped",
    "SignalingConnected",
    "SocketClosed",
    "StreamCloseAcknowledged",
    "StreamStateChanged",
    "StreamStateReported",
    "TranscriptReceived",
    "UnknownEventReceived",
    "UnknownMessageReceived",
    "VideoReceived",
    "VideoSubscriptionResult",
]


# --- connection life cycle -------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalingConnected:
    """The signaling handshake succeeded; ``media_urls`` are the server's offer."""

    sock: SocketId
    media_urls: Mapping[str, str]
    region: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaConnected:
    """A media handshake succeeded; ``params`` are the server-confirmed ones."""

    sock: SocketId
    media_type: MediaType
    params: MediaParams
    confirmed: bool = True
    """False: the server sent media without answering the handshake (Zoom's mock
    never sends msg 4); the socket was accepted then, and ``params`` are the
    requested ones, not confirmed by the server."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFailed:
    """A socket failed (exactly once per socket); the core already closed it."""

    sock: SocketId
    error: RemoteProtocolError

    @property
    def reason(self) -> FailureReason:
        return self.error.reason

    @property
    def retryable(self) -> bool:
        return self.error.retryable


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketClosed:
    """A socket closed in order: ``by_peer`` tells who sent the first close frame."""

    sock: SocketId
    by_peer: bool
    code: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MalformedMessage:
    """A message could not be decoded; it was skipped and the socket kept open."""

    sock: SocketId
    error: DecodeError


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessageReceived:
    """A ``msg_type`` this library does not know, kept raw."""

    sock: SocketId
    msg_type: int
    raw: Mapping[str, JsonValue]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetadataReceived:
    """A META_DATA_* message (23-27); Zoom documents no fields for these."""

    sock: SocketId
    msg_type: int
    raw: Mapping[str, JsonValue]


# --- media ----------------------------------------------------------------

# AudioReceived, VideoReceived and DeskshareReceived are the decoded wire
# packets themselves (rtms_proto._wire.media): one object per packet.


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptReceived:
    """One transcribed utterance."""

    text: str
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    language: TranscriptLanguage | int | None = None
    attribute: DataAttribute | int | str | None = None
    channel_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatReceived:
    """One chat message; ``chat`` holds the structured form when Zoom sent one."""

    text: str
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    chat: StructuredChat | None = None


# --- in-meeting events (EVENT_UPDATE) ---------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstPacketReceived:
    """FIRST_PACKET_TIMESTAMP: the session's media clock starts here."""

    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveSpeakerChanged:
    """ACTIVE_SPEAKER_CHANGE: someone else is speaking now."""

    user_id: int | None
    user_name: str | None
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantsJoined:
    """Participants joined (the existing roster also arrives this way at start)."""

    participants: tuple[Participant, ...]
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantsLeft:
    """PARTICIPANT_LEAVE (also sent for everyone when the meeting ends); no names."""

    participants: tuple[Participant, ...]
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SharingStarted:
    """SHARING_START: the user began sharing their screen."""

    user_id: int | None
    user_name: str | None
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SharingStopped:
    """SHARING_STOP: screen sharing ended."""

    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaInterrupted:
    """MEDIA_CONNECTION_INTERRUPTED: Zoom lost one media socket of ours.

    ``media_type`` names the socket when the event's ``media_type`` key is an
    integer (an unknown negative number stays ``int``); None when it is absent
    or not a number.
    """

    timestamp: int | None
    raw: Mapping[str, JsonValue]
    media_type: MediaType | int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantVideoChanged:
    """PARTICIPANT_VIDEO_ON / _OFF for the listed users."""

    user_ids: tuple[int, ...]
    on: bool
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatGroupChanged:
    """Chat-group events (numbers 10-14, known from Zoom's samples only)."""

    event_type: EventType
    timestamp: int | None
    raw: Mapping[str, JsonValue]


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactCenterEvent:
    """A Contact Center voice event (its numbers overlap meeting events)."""

    event_type: ZccEventType | int
    timestamp: int | None
    participant: ZccParticipant | None
    raw: Mapping[str, JsonValue]


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEventReceived:
    """An ``event_type`` this library does not know, kept raw."""

    event_type: int
    timestamp: int | None
    raw: Mapping[str, JsonValue]


# --- states and answers -----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStateChanged:
    """STREAM_STATE_UPDATE; TERMINATED ends the session."""

    state: StreamState | int
    reason: StopReason | int | str | None
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateChanged:
    """SESSION_STATE_UPDATE; STOPPED ends the session."""

    session_id: str | None
    state: SessionState | int
    stop_reason: StopReason | int | str | None
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStateReported:
    """Answer to a stream state request."""

    state: StreamState | int
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateReported:
    """Answer to a session state request."""

    session_id: str | None
    state: SessionState | int
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamCloseAcknowledged:
    """Zoom answered our stream close request."""

    status: StatusCode | int | None
    reason: str
    timestamp: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoSubscriptionResult:
    """Answer to a video subscription; ``status`` 0 is success."""

    user_id: int
    status: StatusCode | int | None
    reason: str
    subscribed: bool


# --- session level ------------------------------------------------------------


class ReconnectScope(enum.Enum):
    """What a reconnect rebuilds: one media socket, or everything from signaling."""

    MEDIA = "media"
    SIGNALING = "signaling"


class EndReason(enum.Enum):
    """Why a session ended."""

    STREAM_TERMINATED = "stream_terminated"
    SESSION_STOPPED = "session_stopped"
    STREAM_STOPPED = "stream_stopped"
    CLOSED_BY_APP = "closed_by_app"
    STOPPED_LOCALLY = "stopped_locally"
    FATAL_ERROR = "fatal_error"
    RECONNECT_EXHAUSTED = "reconnect_exhausted"


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaUnavailable:
    """A requested media type cannot be opened (no URL offered, or a refused host).

    Reported right after the signaling handshake, before any media socket opens;
    the other media types go on.
    """

    media_type: MediaType
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectScheduled:
    """A reconnect will start after ``delay`` seconds."""

    scope: ReconnectScope
    media_type: MediaType | None
    attempt: int
    delay: float
    reason: FailureReason


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectStarted:
    """A scheduled reconnect began: new sockets are opening."""

    scope: ReconnectScope
    media_type: MediaType | None
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectCompleted:
    """A reconnect finished its handshake; ``attempts`` it took."""

    scope: ReconnectScope
    media_type: MediaType | None
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded:
    """The session is over (exactly once); nothing follows it."""

    why: EndReason
    detail: str
    stop_reason: StopReason | int | str | None = None
    error: RemoteProtocolError | None = None


Event = (
    SignalingConnected
    | MediaConnected
    | ConnectionFailed
    | SocketClosed
    | MalformedMessage
    | UnknownMessageReceived
    | MetadataReceived
    | AudioReceived
    | VideoReceived
    | DeskshareReceived
    | TranscriptReceived
    | ChatReceived
    | FirstPacketReceived
    | ActiveSpeakerChanged
    | ParticipantsJoined
    | ParticipantsLeft
    | SharingStarted
    | SharingStopped
    | MediaInterrupted
    | ParticipantVideoChanged
    | ChatGroupChanged
    | ContactCenterEvent
    | UnknownEventReceived
    | StreamStateChanged
    | SessionStateChanged
    | StreamStateReported
    | SessionStateReported
    | StreamCloseAcknowledged
    | VideoSubscriptionResult
    | MediaUnavailable
    | ReconnectScheduled
    | ReconnectStarted
    | ReconnectCompleted
    | SessionEnded
)
