"""Wire codec: one typed, immutable message per RTMS message kind (protocol.md §2-§3, §6, §13).

Both directions are covered so the client and the fake server share one codec.
:func:`encode_message` writes compact JSON with integers for every enum;
:func:`decode_message` reads JSON from text or binary frames and is *total*: a
peer can send anything, so every fault comes back as a :class:`DecodeError`
value instead of an exception. Unknown keys are ignored and unknown
``msg_type`` numbers become :class:`UnknownMessage`, because Zoom adds fields
and messages over time and a client must not break when it does.

Decoding audio (msg 14, ~50 per second per socket) is the hot path: dispatch is
one dict lookup by ``msg_type`` and each decoder reads its keys directly.
"""

from __future__ import annotations

import binascii
import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from functools import partial
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias

import orjson

from ._errors import InvalidConfig
from ._params import MediaParams, WireFieldError, _json_type
from .enums import (
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
    to_enum,
)

__all__ = [
    "AudioData",
    "ChatData",
    "ChatFile",
    "ChatUser",
    "ClientReady",
    "DecodeError",
    "DeskshareData",
    "EventSubscription",
    "EventSubscriptionItem",
    "EventUpdate",
    "INSTANCE_ID_KEYS",
    "JsonValue",
    "KeepAliveRequest",
    "KeepAliveResponse",
    "MediaHandshakeRequest",
    "MediaHandshakeResponse",
    "Message",
    "MetadataMessage",
    "Participant",
    "SessionStateRequest",
    "SessionStateResponse",
    "SessionStateUpdate",
    "SignalingHandshakeRequest",
    "SignalingHandshakeResponse",
    "StreamCloseRequest",
    "StreamCloseResponse",
    "StreamStateRequest",
    "StreamStateResponse",
    "StreamStateUpdate",
    "StructuredChat",
    "TranscriptData",
    "UnknownMessage",
    "VideoData",
    "VideoSubscriptionRequest",
    "VideoSubscriptionResponse",
    "ZccParticipant",
    "decode_message",
    "encode_message",
]

JsonValue: TypeAlias = (
    bool | int | float | str | tuple["JsonValue", ...] | Mapping[str, "JsonValue"] | None
)
"""A JSON value as the codec hands it out: arrays are tuples, objects read-only mappings."""

INSTANCE_ID_KEYS = ("meeting_uuid", "webinar_uuid", "session_id", "engagement_id", "call_id")
"""Handshake keys that carry the instance id, one per product (§3.1), in canonical order."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


# --- JSON ----------------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


_orjson_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError

# One decoder instance keeps json's C scanner and avoids a per-call constructor;
# it rejects NaN/Infinity (not JSON, and not re-encodable with allow_nan=False).
_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
# The decoder's C scanner (typeshed does not declare the attribute).
_scan_once: Callable[[str, int], tuple[Any, int]] = vars(_decoder)["scan_once"]


def _json_decode(text: str) -> Any:
    """Parse JSON: orjson for speed, the stdlib decoder for what orjson refuses.

    orjson is several times faster on media packets (the hot path).  It
    refuses lone surrogate escapes, which JSON allows; those and every error
    go through the stdlib decoder, which also produces the precise message.
    """
    try:
        return _orjson_loads(text)
    except _OrjsonError:
        return _stdlib_json_decode(text)


def _stdlib_json_decode(text: str) -> Any:
    """The stdlib decoder: lone surrogate escapes, and precise error messages."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        return _decoder.decode(text)
    if end != len(text):
        return _decoder.decode(text)
    return value


def _encode_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_json_encode = json.JSONEncoder(
    separators=(",", ":"), allow_nan=False, default=_encode_default
).encode


def _freeze(root: dict[str, Any]) -> Mapping[str, JsonValue]:
    """Deep read-only copy of parsed JSON: objects become mappingproxies, arrays tuples.

    Iterative, so a deeply nested (but parseable) document cannot exhaust the
    stack; parsed JSON is a tree, so ``id`` identifies each container.
    """
    order: list[Any] = [root]
    i = 0
    while i < len(order):
        node = order[i]
        i += 1
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                order.append(child)
    done: dict[int, Any] = {}
    for node in reversed(order):
        if type(node) is dict:
            done[id(node)] = MappingProxyType(
                {
                    k: done[id(v)] if type(v) is dict or type(v) is list else v
                    for k, v in node.items()
                }
            )
        else:
            done[id(node)] = tuple(
                done[id(v)] if type(v) is dict or type(v) is list else v for v in node
            )
    frozen: Mapping[str, JsonValue] = done[id(root)]
    return frozen


def _frozen_raw(raw: Mapping[str, Any]) -> Mapping[str, JsonValue]:
    """A deep-frozen JSON copy of a caller's mapping; raises if it is not JSON-serializable."""
    copy: dict[str, Any] = _json_decode(_json_encode(dict(raw)))
    return _freeze(copy)


# --- decode errors and field readers --------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DecodeError:
    """Why a frame could not be decoded; a value, not an exception, so decoding is total.

    ``msg_type`` is known when the envelope was readable; ``field`` is the dotted
    path of the offending key. Details never quote a string from the message:
    it could be a signature or a participant's name.
    """

    msg_type: int | None
    field: str | None
    detail: str

    def __str__(self) -> str:
        if self.msg_type is None:
            where = "message"
        else:
            known = to_enum(MessageType, self.msg_type)
            name = known.name if isinstance(known, MessageType) else "unknown message"
            where = f"{name} (msg_type {self.msg_type})"
        text = f"cannot decode {where}"
        if self.field is not None:
            text += f": field {self.field!r}"
        return f"{text}: {self.detail}"


def _wrong(obj: Mapping[str, Any], key: str, path: str, expected: str) -> WireFieldError:
    if obj.get(key) is None:
        return WireFieldError(path + key, "missing" if key not in obj else "is null")
    return WireFieldError(path + key, f"expected {expected}, got {_json_type(obj[key])}")


def _req_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key)
    if type(value) is str:
        return value
    raise _wrong(obj, key, path, "a string")


def _opt_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None or type(value) is str:
        return value
    raise _wrong(obj, key, path, "a string")


def _req_int(obj: Mapping[str, Any], key: str, path: str) -> int:
    value = obj.get(key)
    if type(value) is int:
        return value
    raise _wrong(obj, key, path, "an integer")


def _opt_int(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    value = obj.get(key)
    if value is None or type(value) is int:
        return value
    raise _wrong(obj, key, path, "an integer")


def _req_bool(obj: Mapping[str, Any], key: str, path: str) -> bool:
    value = obj.get(key)
    if type(value) is bool:
        return value
    raise _wrong(obj, key, path, "a boolean")


def _opt_bool(obj: Mapping[str, Any], key: str, path: str) -> bool | None:
    value = obj.get(key)
    if value is None or type(value) is bool:
        return value
    raise _wrong(obj, key, path, "a boolean")


def _reason(obj: Mapping[str, Any]) -> str:
    value = obj.get("reason")
    if value is None:
        return ""
    if type(value) is str:
        return value
    raise _wrong(obj, "reason", "", "a string")


def _user_id(obj: Mapping[str, Any], key: str, path: str, *, required: bool) -> int | None:
    """A participant id: an integer, or a numeric string as in DOC's join example (§12.18)."""
    value = obj.get(key)
    if type(value) is int:
        return value
    if value is None and not required:
        return None
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 20:
        return int(value)
    raise _wrong(obj, key, path, "an integer or a numeric string")


def _req_user_id(obj: Mapping[str, Any], key: str, path: str) -> int:
    value = _user_id(obj, key, path, required=True)
    assert value is not None  # required=True never returns None
    return value


def _obj(obj: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None or type(value) is dict:
        return value
    raise _wrong(obj, key, path, "an object")


def _req_obj(obj: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    value = obj.get(key)
    if type(value) is dict:
        return value
    raise _wrong(obj, key, path, "an object")


def _opt_list(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if type(value) is list:
        return value
    raise _wrong(obj, key, path, "an array")


def _items(values: list[Any], field: str) -> list[dict[str, Any]]:
    for i, item in enumerate(values):
        if type(item) is not dict:
            raise WireFieldError(f"{field}[{i}]", f"expected an object, got {_json_type(item)}")
    return values


def _alias(obj: Mapping[str, Any], key: str, legacy: str) -> str:
    """The key to read: ``key`` when it has a value, else its alternative spelling."""
    return key if obj.get(key) is not None else legacy


_STOP_REASON_ALIASES = {
    "APP_DISABLED_BY_HOST": StopReason.HOST_DISABLED_APP,
    "MEETING_CONNECTION_INTERRUPTED": StopReason.INSTANCE_CONNECTION_INTERRUPTED,
}
"""Older names of renamed stop reasons (§4.12), as Zoom's mock server still sends them."""


def _stop_reason(obj: Mapping[str, Any], key: str, path: str) -> StopReason | int | str | None:
    """A number, or a name with or without ``STOP_BC_`` (Zoom's mock); unknown names stay text."""
    value = obj.get(key)
    if value is None:
        return None
    if type(value) is int:
        return to_enum(StopReason, value)
    if type(value) is str:
        name = value.upper().removeprefix("STOP_BC_")
        member = StopReason.__members__.get(name)
        if member is None:
            member = _STOP_REASON_ALIASES.get(name)
        return value if member is None else member
    raise _wrong(obj, key, path, "an integer or a string")


def _identity(obj: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The instance id and the keys that carried it (§3.1: one key per product, or several)."""
    instance_id: str | None = None
    keys: list[str] = []
    for key in INSTANCE_ID_KEYS:
        value = obj.get(key)
        if value is None:
            continue
        if type(value) is not str:
            raise _wrong(obj, key, "", "a string")
        if instance_id is None:
            instance_id = value
        elif value != instance_id:
            raise WireFieldError(key, f"differs from {keys[0]}")
        keys.append(key)
    if instance_id is None:
        raise WireFieldError(
            "meeting_uuid", "missing (no instance id key: " + ", ".join(INSTANCE_ID_KEYS) + ")"
        )
    return instance_id, tuple(keys)


def _check_id_keys(msg: SignalingHandshakeRequest | MediaHandshakeRequest) -> None:
    """Refuse id keys that could not round-trip; put them in canonical order."""
    keys = msg.id_keys
    if not keys:
        raise InvalidConfig("id_keys must name at least one instance id key")
    for key in keys:
        if key not in INSTANCE_ID_KEYS:
            raise InvalidConfig(f"id_keys: {key!r} is not one of {', '.join(INSTANCE_ID_KEYS)}")
    if len(set(keys)) != len(keys):
        raise InvalidConfig("id_keys must not repeat a key")
    object.__setattr__(msg, "id_keys", tuple(sorted(keys, key=INSTANCE_ID_KEYS.index)))


def _add(wire: dict[str, object], key: str, value: object) -> None:
    """Set ``key`` unless ``value`` is None: optional fields are omitted, never ``null``."""
    if value is not None:
        wire[key] = value


# --- handshake ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SignalingHandshakeRequest:
    """SIGNALING_HAND_SHAKE_REQ (1): authenticate the signaling socket (§3.1, §13).

    ``instance_id`` is written under every key of ``id_keys`` (the Video SDK
    sample sends both ``meeting_uuid`` and ``session_id``). None fields are omitted.
    """

    msg_type: ClassVar[MessageType] = MessageType.SIGNALING_HAND_SHAKE_REQ
    instance_id: str
    rtms_stream_id: str
    signature: str = dataclasses.field(repr=False)
    id_keys: tuple[str, ...] = ("meeting_uuid",)
    protocol_version: int | None = 1
    sequence: int | None = None
    buffer_data: bool | None = None
    client_agent: str | None = None

    def __post_init__(self) -> None:
        _check_id_keys(self)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SignalingHandshakeResponse:
    """SIGNALING_HAND_SHAKE_RESP (2): the result and the media URLs (§3.2).

    ``status_code`` is None when absent: Zoom's mock omits it on failures.
    """

    msg_type: ClassVar[MessageType] = MessageType.SIGNALING_HAND_SHAKE_RESP
    status_code: int | None
    reason: str = ""
    media_urls: Mapping[str, str] = dataclasses.field(default_factory=_empty)
    protocol_version: int | None = 1
    sequence: int | None = 0
    datacenter_region: str | None = None

    def __post_init__(self) -> None:
        if type(self.media_urls) is not MappingProxyType:
            object.__setattr__(self, "media_urls", MappingProxyType(dict(self.media_urls)))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MediaHandshakeRequest:
    """DATA_HAND_SHAKE_REQ (3): authenticate a media socket and choose its media (§3.3).

    ``media_params`` None is omitted on the wire (and ``null`` decodes to None).
    """

    msg_type: ClassVar[MessageType] = MessageType.DATA_HAND_SHAKE_REQ
    instance_id: str
    rtms_stream_id: str
    signature: str = dataclasses.field(repr=False)
    media_type: MediaType
    media_params: MediaParams | None = None
    id_keys: tuple[str, ...] = ("meeting_uuid",)
    protocol_version: int | None = 1
    sequence: int | None = None
    payload_encryption: bool | None = None
    client_agent: str | None = None

    def __post_init__(self) -> None:
        _check_id_keys(self)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MediaHandshakeResponse:
    """DATA_HAND_SHAKE_RESP (4): the result and the confirmed parameters (§3.4)."""

    msg_type: ClassVar[MessageType] = MessageType.DATA_HAND_SHAKE_RESP
    status_code: int | None
    reason: str = ""
    media_params: MediaParams | None = None
    protocol_version: int | None = 1
    sequence: int | None = 0
    payload_encrypted: bool | None = None


# --- signaling ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EventSubscriptionItem:
    """One ``{event_type, subscribe}`` entry; ``False`` unsubscribes."""

    event_type: int
    subscribe: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EventSubscription:
    """EVENT_SUBSCRIPTION (5): events are opt-in; no response follows (§3.5)."""

    msg_type: ClassVar[MessageType] = MessageType.EVENT_SUBSCRIPTION
    events: tuple[EventSubscriptionItem, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Participant:
    """A participant of a join/leave/video event; leave events carry no name."""

    user_id: int
    user_name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ZccParticipant:
    """Contact Center ``paticipant_info`` (sic): ids are strings there (§3.6)."""

    channel_id: str | None = None
    participant_mode: str | None = None
    queue_id: str | None = None
    queue_name: str | None = None
    phone_number: str | None = None
    user_id: str | None = None
    display_name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EventUpdate:
    """EVENT_UPDATE (6) (§3.6).

    ``event_type`` stays a plain ``int`` because 8-13 mean different things for
    meetings and Contact Center; the session knows the product. ``raw`` is the
    whole ``event`` object, for events whose fields are undocumented (7, 10-14).

    ``raw`` is normalized at construction to exactly the object that is
    encoded: the given ``raw`` (deep-copied and frozen; a mappingproxy is taken
    as frozen already) with every typed field that is set written over it (an
    ``event_ts`` or ``participant_info`` spelling in ``raw`` is kept). So a
    decoded event re-encodes to its own ``raw``, and a built one equals its
    decoded encoding.
    """

    msg_type: ClassVar[MessageType] = MessageType.EVENT_UPDATE
    event_type: int
    timestamp: int | None = None
    user_id: int | None = None
    user_name: str | None = None
    participants: tuple[Participant, ...] = ()
    zcc_participant: ZccParticipant | None = None
    raw: Mapping[str, JsonValue] = dataclasses.field(default_factory=_empty)

    def __post_init__(self) -> None:
        raw = self.raw
        typed: dict[str, Any] = {"event_type": int(self.event_type)}
        if self.timestamp is not None:
            key = _alias(raw, "timestamp", "event_ts")
            typed[key if key in raw else "timestamp"] = int(self.timestamp)
        if self.user_id is not None:
            typed["user_id"] = int(self.user_id)
        _add(typed, "user_name", self.user_name)
        if self.participants:
            people: list[dict[str, object]] = []
            for p in self.participants:
                person: dict[str, object] = {"user_id": int(p.user_id)}
                _add(person, "user_name", p.user_name)
                people.append(person)
            typed["participants"] = people
        if (z := self.zcc_participant) is not None:
            info: dict[str, object] = {}
            for name in _ZCC_FIELDS:
                _add(info, name, getattr(z, name))
            key = _zcc_key(raw)
            typed[key if key in raw else "paticipant_info"] = info
        if type(raw) is MappingProxyType:
            # Already frozen (decoding): freeze only the typed part, never re-walk the rest.
            object.__setattr__(self, "raw", MappingProxyType({**raw, **_freeze(typed)}))
        else:
            object.__setattr__(self, "raw", _frozen_raw({**raw, **typed}))


_ZCC_FIELDS = (
    "channel_id",
    "participant_mode",
    "queue_id",
    "queue_name",
    "phone_number",
    "user_id",
    "display_name",
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientReady:
    """CLIENT_READY_ACK (7): sent on signaling after each successful media handshake (§3.7)."""

    msg_type: ClassVar[MessageType] = MessageType.CLIENT_READY_ACK
    rtms_stream_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamStateUpdate:
    """STREAM_STATE_UPDATE (8); ``reason`` may be a name string from Zoom's mock (§3.8)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_STATE_UPDATE
    state: StreamState | int
    reason: StopReason | int | str | None = None
    timestamp: int | None = None
    rtms_stream_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateUpdate:
    """SESSION_STATE_UPDATE (9); also read from ``reason``/``session_id`` (§3.9, §12.12)."""

    msg_type: ClassVar[MessageType] = MessageType.SESSION_STATE_UPDATE
    state: SessionState | int
    stop_reason: StopReason | int | str | None = None
    timestamp: int | None = None
    rtms_session_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateRequest:
    """SESSION_STATE_REQ (10) (§3.10)."""

    msg_type: ClassVar[MessageType] = MessageType.SESSION_STATE_REQ
    rtms_session_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateResponse:
    """SESSION_STATE_RESP (11) (§3.10)."""

    msg_type: ClassVar[MessageType] = MessageType.SESSION_STATE_RESP
    rtms_session_id: str | None
    state: SessionState | int
    timestamp: int | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KeepAliveRequest:
    """KEEP_ALIVE_REQ (12): the reply must echo both values (§3.11, §13)."""

    msg_type: ClassVar[MessageType] = MessageType.KEEP_ALIVE_REQ
    timestamp: int | None = None
    sequence: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KeepAliveResponse:
    """KEEP_ALIVE_RESP (13) (§3.11)."""

    msg_type: ClassVar[MessageType] = MessageType.KEEP_ALIVE_RESP
    timestamp: int | None = None
    sequence: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamStateRequest:
    """STREAM_STATE_REQ (19) (§3.12)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_STATE_REQ
    rtms_stream_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamStateResponse:
    """STREAM_STATE_RESP (20); DOC's example timestamp is in seconds, kept as sent (§3.12)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_STATE_RESP
    state: StreamState | int
    rtms_stream_id: str | None = None
    timestamp: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamCloseRequest:
    """STREAM_CLOSE_REQ (21): ask Zoom to end the stream gracefully (§3.13)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_CLOSE_REQ
    rtms_stream_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamCloseResponse:
    """STREAM_CLOSE_RESP (22) (§3.13)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_CLOSE_RESP
    rtms_stream_id: str | None = None
    status_code: int | None = None
    reason: str = ""
    timestamp: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VideoSubscriptionRequest:
    """VIDEO_SUBSCRIPTION_REQ (28): pick one participant's camera (§3.14)."""

    msg_type: ClassVar[MessageType] = MessageType.VIDEO_SUBSCRIPTION_REQ
    user_id: int
    subscribe: bool
    timestamp: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VideoSubscriptionResponse:
    """VIDEO_SUBSCRIPTION_RESP (29); ``subscribe`` is an optional echo (§3.14)."""

    msg_type: ClassVar[MessageType] = MessageType.VIDEO_SUBSCRIPTION_RESP
    user_id: int
    status_code: int | None = None
    reason: str = ""
    timestamp: int | None = None
    subscribe: bool | None = None


# --- media data -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AudioData:
    """MEDIA_DATA_AUDIO (14): ``data`` is base64-decoded; ``user_id`` 0 = mixed (§6.2)."""

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_AUDIO
    data: bytes
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    length: int | None = None
    channel_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VideoData:
    """MEDIA_DATA_VIDEO (15): one JPG/PNG image or H.264 access unit (§6.3)."""

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_VIDEO
    data: bytes
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    length: int | None = None
    channel_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeskshareData:
    """MEDIA_DATA_SHARE (16): one screen-share frame; the user is the sharer (§6.4)."""

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_SHARE
    data: bytes
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    length: int | None = None
    channel_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptData:
    """MEDIA_DATA_TRANSCRIPT (17): one utterance; ``text`` is the wire ``data`` (§6.5)."""

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_TRANSCRIPT
    text: str
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    language: TranscriptLanguage | int | None = None
    attribute: int | str | None = None
    channel_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChatUser:
    """Sender or receiver of a structured chat message."""

    user_id: int | str | None = None
    user_name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChatFile:
    """A file attached to a structured chat message."""

    file_id: str | None = None
    file_name: str | None = None
    file_size: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StructuredChat:
    """The JSON object newer servers put inside chat ``data`` (§6.6, Zoom samples only)."""

    session_type: ChatSessionType | int | None = None
    session_id: str | None = None
    operation: ChatOperation | int | None = None
    message_id: str | None = None
    parent_message_id: str | None = None
    sender: ChatUser | None = None
    receiver: ChatUser | None = None
    files: tuple[ChatFile, ...] = ()
    delete_file_ids: tuple[str, ...] = ()
    text: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChatData:
    """MEDIA_DATA_CHAT (18) (§6.6).

    ``text`` is the wire ``data`` exactly as sent (and what is encoded);
    ``chat`` is its structured reading when it is a JSON object of the known
    shape, else None (older servers send plain text).
    """

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_CHAT
    text: str
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    chat: StructuredChat | None = None


# --- messages without a typed shape ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MetadataMessage:
    """META_DATA_* (23-27): numbers are public, payloads are not (§3.15); kept raw."""

    msg_type: int
    raw: Mapping[str, JsonValue] = dataclasses.field(default_factory=_empty)

    def __post_init__(self) -> None:
        if not MessageType.META_DATA_AUDIO <= self.msg_type <= MessageType.META_DATA_CHAT:
            raise InvalidConfig(f"msg_type {self.msg_type} is not a META_DATA_* type (23-27)")
        _own_raw(self)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage:
    """A ``msg_type`` this codec does not know: kept raw, not an error (§10 rule 1)."""

    msg_type: int
    raw: Mapping[str, JsonValue] = dataclasses.field(default_factory=_empty)

    def __post_init__(self) -> None:
        if self.msg_type in _DECODERS:
            raise InvalidConfig(f"msg_type {self.msg_type} is known; use its message class")
        _own_raw(self)


def _own_raw(msg: MetadataMessage | UnknownMessage) -> None:
    """Make ``raw`` the whole frozen message, ``msg_type`` included, as decoding gives it."""
    raw = msg.raw
    if type(raw) is not MappingProxyType or raw.get("msg_type") != msg.msg_type:
        object.__setattr__(msg, "raw", _frozen_raw({**raw, "msg_type": msg.msg_type}))


Message: TypeAlias = (
    SignalingHandshakeRequest
    | SignalingHandshakeResponse
    | MediaHandshakeRequest
    | MediaHandshakeResponse
    | EventSubscription
    | EventUpdate
    | ClientReady
    | StreamStateUpdate
    | SessionStateUpdate
    | SessionStateRequest
    | SessionStateResponse
    | KeepAliveRequest
    | KeepAliveResponse
    | AudioData
    | VideoData
    | DeskshareData
    | TranscriptData
    | ChatData
    | StreamStateRequest
    | StreamStateResponse
    | StreamCloseRequest
    | StreamCloseResponse
    | VideoSubscriptionRequest
    | VideoSubscriptionResponse
    | MetadataMessage
    | UnknownMessage
)
"""Every message the codec produces or accepts."""


# --- decoders -------------------------------------------------------------------------------


def _dec_signaling_req(o: dict[str, Any]) -> SignalingHandshakeRequest:
    instance_id, keys = _identity(o)
    return SignalingHandshakeRequest(
        instance_id=instance_id,
        rtms_stream_id=_req_str(o, "rtms_stream_id", ""),
        signature=_req_str(o, "signature", ""),
        id_keys=keys,
        protocol_version=_opt_int(o, "protocol_version", ""),
        sequence=_opt_int(o, "sequence", ""),
        buffer_data=_opt_bool(o, "buffer_data", ""),
        client_agent=_opt_str(o, "rtms_client_agent", ""),
    )


def _dec_signaling_resp(o: dict[str, Any]) -> SignalingHandshakeResponse:
    urls: Mapping[str, str] = _EMPTY
    region = None
    server = _obj(o, "media_server", "")
    if server is not None:
        region = _opt_str(server, "datacenter_region", "media_server.")
        found = _obj(server, "server_urls", "media_server.")
        if found is not None:
            for key in found:
                _opt_str(found, key, "media_server.server_urls.")
            urls = MappingProxyType({k: v for k, v in found.items() if v is not None})
    return SignalingHandshakeResponse(
        status_code=_opt_int(o, "status_code", ""),
        reason=_reason(o),
        media_urls=urls,
        protocol_version=_opt_int(o, "protocol_version", ""),
        sequence=_opt_int(o, "sequence", ""),
        datacenter_region=region,
    )


def _params(o: dict[str, Any]) -> MediaParams | None:
    found = _obj(o, "media_params", "")
    return None if found is None else MediaParams.from_wire(found)


def _dec_media_req(o: dict[str, Any]) -> MediaHandshakeRequest:
    instance_id, keys = _identity(o)
    media_type = _req_int(o, "media_type", "")
    if media_type < 0:
        raise WireFieldError("media_type", "negative bitmask")
    return MediaHandshakeRequest(
        instance_id=instance_id,
        rtms_stream_id=_req_str(o, "rtms_stream_id", ""),
        signature=_req_str(o, "signature", ""),
        media_type=MediaType(media_type),
        media_params=_params(o),
        id_keys=keys,
        protocol_version=_opt_int(o, "protocol_version", ""),
        sequence=_opt_int(o, "sequence", ""),
        payload_encryption=_opt_bool(o, "payload_encryption", ""),
        client_agent=_opt_str(o, "rtms_client_agent", ""),
    )


def _dec_media_resp(o: dict[str, Any]) -> MediaHandshakeResponse:
    return MediaHandshakeResponse(
        status_code=_opt_int(o, "status_code", ""),
        reason=_reason(o),
        media_params=_params(o),
        protocol_version=_opt_int(o, "protocol_version", ""),
        sequence=_opt_int(o, "sequence", ""),
        payload_encrypted=_opt_bool(o, _alias(o, "payload_encrypted", "payload_encryption"), ""),
    )


def _dec_subscription(o: dict[str, Any]) -> EventSubscription:
    events = o.get("events")
    if type(events) is not list:
        raise _wrong(o, "events", "", "an array")
    return EventSubscription(
        events=tuple(
            EventSubscriptionItem(
                event_type=_req_int(item, "event_type", f"events[{i}]."),
                subscribe=_req_bool(item, "subscribe", f"events[{i}]."),
            )
            for i, item in enumerate(_items(events, "events"))
        )
    )


_EVENT_NAMES = {m.name: m.value for m in EventType} | {m.name: m.value for m in ZccEventType}


def _event_type(event: Mapping[str, Any]) -> int:
    """A number, or (DOC-ZCC examples) a known event name."""
    value = event.get("event_type")
    if type(value) is int:
        return value
    if type(value) is str:
        number = _EVENT_NAMES.get(value.upper())
        if number is None:
            raise WireFieldError("event.event_type", "unknown event name")
        return number
    raise _wrong(event, "event_type", "event.", "an integer or an event name")


def _zcc_key(event: Mapping[str, Any]) -> str:
    return _alias(event, "paticipant_info", "participant_info")


def _dec_event(o: dict[str, Any]) -> EventUpdate:
    event = _req_obj(o, "event", "")
    zcc_key = _zcc_key(event)
    info = _obj(event, zcc_key, "event.")
    zcc = None
    if info is not None:
        path = f"event.{zcc_key}."
        zcc = ZccParticipant(
            channel_id=_opt_str(info, "channel_id", path),
            participant_mode=_opt_str(info, "participant_mode", path),
            queue_id=_opt_str(info, "queue_id", path),
            queue_name=_opt_str(info, "queue_name", path),
            phone_number=_opt_str(info, "phone_number", path),
            user_id=_opt_str(info, "user_id", path),
            display_name=_opt_str(info, "display_name", path),
        )
    participants = tuple(
        Participant(
            user_id=_req_user_id(p, "user_id", f"event.participants[{i}]."),
            user_name=_opt_str(p, "user_name", f"event.participants[{i}]."),
        )
        for i, p in enumerate(
            _items(_opt_list(event, "participants", "event."), "event.participants")
        )
    )
    return EventUpdate(
        event_type=_event_type(event),
        timestamp=_opt_int(event, _alias(event, "timestamp", "event_ts"), "event."),
        user_id=_user_id(event, "user_id", "event.", required=False),
        user_name=_opt_str(event, "user_name", "event."),
        participants=participants,
        zcc_participant=zcc,
        raw=_freeze(event),
    )


def _dec_client_ready(o: dict[str, Any]) -> ClientReady:
    return ClientReady(rtms_stream_id=_req_str(o, "rtms_stream_id", ""))


def _dec_stream_state(o: dict[str, Any]) -> StreamStateUpdate:
    return StreamStateUpdate(
        state=to_enum(StreamState, _req_int(o, "state", "")),
        reason=_stop_reason(o, "reason", ""),
        timestamp=_opt_int(o, "timestamp", ""),
        rtms_stream_id=_opt_str(o, "rtms_stream_id", ""),
    )


def _dec_session_state(o: dict[str, Any]) -> SessionStateUpdate:
    return SessionStateUpdate(
        state=to_enum(SessionState, _req_int(o, "state", "")),
        stop_reason=_stop_reason(o, _alias(o, "stop_reason", "reason"), ""),
        timestamp=_opt_int(o, "timestamp", ""),
        rtms_session_id=_opt_str(o, _alias(o, "rtms_session_id", "session_id"), ""),
    )


def _dec_session_req(o: dict[str, Any]) -> SessionStateRequest:
    return SessionStateRequest(rtms_session_id=_req_str(o, "rtms_session_id", ""))


def _dec_session_resp(o: dict[str, Any]) -> SessionStateResponse:
    return SessionStateResponse(
        rtms_session_id=_opt_str(o, "rtms_session_id", ""),
        state=to_enum(SessionState, _req_int(o, "state", "")),
        timestamp=_opt_int(o, "timestamp", ""),
    )


def _dec_keep_alive_req(o: dict[str, Any]) -> KeepAliveRequest:
    return KeepAliveRequest(
        timestamp=_opt_int(o, "timestamp", ""), sequence=_opt_int(o, "sequence", "")
    )


def _dec_keep_alive_resp(o: dict[str, Any]) -> KeepAliveResponse:
    return KeepAliveResponse(
        timestamp=_opt_int(o, "timestamp", ""), sequence=_opt_int(o, "sequence", "")
    )


_a2b = binascii.a2b_base64
_new = object.__new__


_MediaData: TypeAlias = AudioData | VideoData | DeskshareData
_MEDIA_FIELDS = ("data", "user_id", "user_name", "timestamp", "length", "channel_id")


def _slot_setters(cls: type[_MediaData]) -> tuple[Callable[[_MediaData, object], None], ...]:
    """Setters for ``cls``'s slots in :data:`_MEDIA_FIELDS` order, for the audio hot path.

    A frozen dataclass's ``__init__`` pays an ``object.__setattr__`` call per
    field, about as much as the base64 decoding; these classes have no
    ``__post_init__``, so filling the slots directly builds the same value ~3x faster.
    """
    assert tuple(f.name for f in dataclasses.fields(cls)) == _MEDIA_FIELDS
    return tuple(cls.__dict__[name].__set__ for name in _MEDIA_FIELDS)


def _dec_media_data(
    cls: type[_MediaData],
    setters: tuple[Callable[[_MediaData, object], None], ...],
    o: dict[str, Any],
) -> _MediaData:
    # The hot path: keys are read once and checked inline; helpers run only on faults.
    content = o.get("content")
    if type(content) is not dict:
        raise _wrong(o, "content", "", "an object")
    get = content.get
    text = get("data")
    user_id = get("user_id")
    user_name = get("user_name")
    timestamp = get("timestamp")
    length = get("length")
    channel_id = get("channel_id")
    if type(text) is not str:
        raise _wrong(content, "data", "content.", "a base64 string")
    if len(text) & 3:
        text += "=" * (4 - (len(text) & 3))  # tolerate stripped padding
    try:
        data = _a2b(text, strict_mode=True)
    except ValueError:
        raise WireFieldError("content.data", "invalid base64") from None
    if user_id is not None and type(user_id) is not int:
        user_id = _user_id(content, "user_id", "content.", required=False)
    if user_name is not None and type(user_name) is not str:
        raise _wrong(content, "user_name", "content.", "a string")
    if timestamp is not None and type(timestamp) is not int:
        raise _wrong(content, "timestamp", "content.", "an integer")
    if length is not None and type(length) is not int:
        raise _wrong(content, "length", "content.", "an integer")
    if channel_id is not None and type(channel_id) is not str:
        raise _wrong(content, "channel_id", "content.", "a string")
    msg = _new(cls)
    set_data, set_user_id, set_user_name, set_timestamp, set_length, set_channel_id = setters
    set_data(msg, data)
    set_user_id(msg, user_id)
    set_user_name(msg, user_name)
    set_timestamp(msg, timestamp)
    set_length(msg, length)
    set_channel_id(msg, channel_id)
    return msg


def _dec_transcript(o: dict[str, Any]) -> TranscriptData:
    c = _req_obj(o, "content", "")
    language = _opt_int(c, "language", "content.")
    attribute = c.get("attribute")
    if attribute is not None and type(attribute) is not int and type(attribute) is not str:
        raise _wrong(c, "attribute", "content.", "an integer or a string")
    return TranscriptData(
        text=_req_str(c, "data", "content."),
        user_id=_user_id(c, "user_id", "content.", required=False),
        user_name=_opt_str(c, "user_name", "content."),
        timestamp=_opt_int(c, "timestamp", "content."),
        start_time=_opt_int(c, "start_time", "content."),
        end_time=_opt_int(c, "end_time", "content."),
        language=None if language is None else to_enum(TranscriptLanguage, language),
        attribute=attribute,
        channel_id=_opt_str(c, "channel_id", "content."),
    )


def _chat_user(obj: Mapping[str, Any], key: str) -> ChatUser | None:
    found = _obj(obj, key, "")
    if found is None:
        return None
    user_id = found.get("user_id")
    if user_id is not None and type(user_id) is not int and type(user_id) is not str:
        raise _wrong(found, "user_id", "", "an integer or a string")
    return ChatUser(user_id=user_id, user_name=_opt_str(found, "user_name", ""))


def _structured_chat(text: str) -> StructuredChat | None:
    """Read chat ``data`` as the samples' JSON object; anything else is plain text.

    Never an error: on older servers ``data`` is whatever a participant typed.
    """
    if text.lstrip()[:1] != "{":
        return None
    try:
        obj = _json_decode(text)
        session = _obj(obj, "chat_session", "") or {}
        session_type = _opt_int(session, "type", "")
        operation = _opt_int(obj, "operation_type", "")
        delete_ids = tuple(_opt_list(obj, "delete_file_id_list", ""))
        for file_id in delete_ids:
            if type(file_id) is not str:
                return None
        return StructuredChat(
            session_type=None if session_type is None else to_enum(ChatSessionType, session_type),
            session_id=_opt_str(session, "id", ""),
            operation=None if operation is None else to_enum(ChatOperation, operation),
            message_id=_opt_str(obj, "message_id", ""),
            parent_message_id=_opt_str(obj, "parent_message_id", ""),
            sender=_chat_user(obj, "sender"),
            receiver=_chat_user(obj, "receiver"),
            files=tuple(
                ChatFile(
                    file_id=_opt_str(f, "file_id", ""),
                    file_name=_opt_str(f, "file_name", ""),
                    file_size=_opt_int(f, "file_size", ""),
                )
                for f in _items(_opt_list(obj, "files", ""), "files")
            ),
            delete_file_ids=delete_ids,
            text=_opt_str(obj, "data", ""),
        )
    except (ValueError, RecursionError):  # WireFieldError is a ValueError
        return None


def _dec_chat(o: dict[str, Any]) -> ChatData:
    c = _req_obj(o, "content", "")
    text = _req_str(c, "data", "content.")
    return ChatData(
        text=text,
        user_id=_user_id(c, "user_id", "content.", required=False),
        user_name=_opt_str(c, "user_name", "content."),
        timestamp=_opt_int(c, "timestamp", "content."),
        chat=_structured_chat(text),
    )


def _dec_stream_state_req(o: dict[str, Any]) -> StreamStateRequest:
    return StreamStateRequest(rtms_stream_id=_req_str(o, "rtms_stream_id", ""))


def _dec_stream_state_resp(o: dict[str, Any]) -> StreamStateResponse:
    return StreamStateResponse(
        state=to_enum(StreamState, _req_int(o, "state", "")),
        rtms_stream_id=_opt_str(o, "rtms_stream_id", ""),
        timestamp=_opt_int(o, "timestamp", ""),
    )


def _dec_close_req(o: dict[str, Any]) -> StreamCloseRequest:
    return StreamCloseRequest(rtms_stream_id=_req_str(o, "rtms_stream_id", ""))


def _dec_close_resp(o: dict[str, Any]) -> StreamCloseResponse:
    return StreamCloseResponse(
        rtms_stream_id=_opt_str(o, "rtms_stream_id", ""),
        status_code=_opt_int(o, "status_code", ""),
        reason=_reason(o),
        timestamp=_opt_int(o, "timestamp", ""),
    )


def _dec_video_sub_req(o: dict[str, Any]) -> VideoSubscriptionRequest:
    return VideoSubscriptionRequest(
        user_id=_req_user_id(o, "user_id", ""),
        subscribe=_req_bool(o, "subscribe", ""),
        timestamp=_opt_int(o, "timestamp", ""),
    )


def _dec_video_sub_resp(o: dict[str, Any]) -> VideoSubscriptionResponse:
    return VideoSubscriptionResponse(
        user_id=_req_user_id(o, "user_id", ""),
        status_code=_opt_int(o, "status_code", ""),
        reason=_reason(o),
        timestamp=_opt_int(o, "timestamp", ""),
        subscribe=_opt_bool(o, "subscribe", ""),
    )


def _dec_metadata(o: dict[str, Any]) -> MetadataMessage:
    return MetadataMessage(msg_type=o["msg_type"], raw=_freeze(o))


_DECODERS: dict[int, Callable[[dict[str, Any]], Message]] = {
    1: _dec_signaling_req,
    2: _dec_signaling_resp,
    3: _dec_media_req,
    4: _dec_media_resp,
    5: _dec_subscription,
    6: _dec_event,
    7: _dec_client_ready,
    8: _dec_stream_state,
    9: _dec_session_state,
    10: _dec_session_req,
    11: _dec_session_resp,
    12: _dec_keep_alive_req,
    13: _dec_keep_alive_resp,
    14: partial(_dec_media_data, AudioData, _slot_setters(AudioData)),
    15: partial(_dec_media_data, VideoData, _slot_setters(VideoData)),
    16: partial(_dec_media_data, DeskshareData, _slot_setters(DeskshareData)),
    17: _dec_transcript,
    18: _dec_chat,
    19: _dec_stream_state_req,
    20: _dec_stream_state_resp,
    21: _dec_close_req,
    22: _dec_close_resp,
    23: _dec_metadata,
    24: _dec_metadata,
    25: _dec_metadata,
    26: _dec_metadata,
    27: _dec_metadata,
    28: _dec_video_sub_req,
    29: _dec_video_sub_resp,
}


def decode_message(data: bytes | str) -> Message | DecodeError:
    """Decode one WebSocket message (text or binary frame); never raises for any input.

    Bytes must be UTF-8. Unknown keys are ignored; an unknown ``msg_type``
    gives :class:`UnknownMessage`; every fault gives a :class:`DecodeError`.
    """
    try:
        text = data if isinstance(data, str) else str(data, "utf-8")
    except UnicodeDecodeError as exc:
        return DecodeError(
            msg_type=None, field=None, detail=f"not UTF-8: {exc.reason} at byte {exc.start}"
        )
    try:
        # orjson inline (this runs for every packet); _stdlib_json_decode for the rest.
        obj = _orjson_loads(text)
    except _OrjsonError:
        try:
            obj = _stdlib_json_decode(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, digit limit, nesting
            return DecodeError(msg_type=None, field=None, detail=f"not valid JSON: {exc}")
    if type(obj) is not dict:
        return DecodeError(
            msg_type=None, field=None, detail=f"expected a JSON object, got {_json_type(obj)}"
        )
    msg_type = obj.get("msg_type")
    if type(msg_type) is not int:
        detail = _wrong(obj, "msg_type", "", "an integer").detail
        return DecodeError(msg_type=None, field="msg_type", detail=detail)
    decoder = _DECODERS.get(msg_type)
    if decoder is None:
        return UnknownMessage(msg_type=msg_type, raw=_freeze(obj))
    try:
        return decoder(obj)
    except WireFieldError as exc:
        return DecodeError(msg_type=msg_type, field=exc.field, detail=exc.detail)


# --- encoders -------------------------------------------------------------------------------


def _enc_identity(
    m: SignalingHandshakeRequest | MediaHandshakeRequest,
) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type)}
    for key in m.id_keys:
        wire[key] = m.instance_id
    wire["rtms_stream_id"] = m.rtms_stream_id
    wire["signature"] = m.signature
    _add(wire, "protocol_version", m.protocol_version)
    _add(wire, "sequence", m.sequence)
    _add(wire, "rtms_client_agent", m.client_agent)
    return wire


def _enc_signaling_req(m: SignalingHandshakeRequest) -> dict[str, object]:
    wire = _enc_identity(m)
    _add(wire, "buffer_data", m.buffer_data)
    return wire


def _enc_signaling_resp(m: SignalingHandshakeResponse) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type)}
    _add(wire, "protocol_version", m.protocol_version)
    _add(wire, "sequence", m.sequence)
    _add(wire, "status_code", m.status_code)
    wire["reason"] = m.reason
    if m.media_urls or m.datacenter_region is not None:
        server: dict[str, object] = {"server_urls": dict(m.media_urls)}
        _add(server, "datacenter_region", m.datacenter_region)
        wire["media_server"] = server
    return wire


def _enc_media_req(m: MediaHandshakeRequest) -> dict[str, object]:
    wire = _enc_identity(m)
    wire["media_type"] = int(m.media_type)
    if m.media_params is not None:
        wire["media_params"] = m.media_params.to_wire()
    _add(wire, "payload_encryption", m.payload_encryption)
    return wire


def _enc_media_resp(m: MediaHandshakeResponse) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type)}
    _add(wire, "protocol_version", m.protocol_version)
    _add(wire, "sequence", m.sequence)
    _add(wire, "status_code", m.status_code)
    wire["reason"] = m.reason
    _add(wire, "payload_encrypted", m.payload_encrypted)
    if m.media_params is not None:
        wire["media_params"] = m.media_params.to_wire()
    return wire


def _enc_subscription(m: EventSubscription) -> dict[str, object]:
    return {
        "msg_type": int(m.msg_type),
        "events": [{"event_type": int(e.event_type), "subscribe": e.subscribe} for e in m.events],
    }


def _enc_event(m: EventUpdate) -> dict[str, object]:
    return {"msg_type": int(m.msg_type), "event": m.raw}


def _enc_stream_id(
    m: ClientReady | StreamStateRequest | StreamCloseRequest,
) -> dict[str, object]:
    return {"msg_type": int(m.msg_type), "rtms_stream_id": m.rtms_stream_id}


def _enc_reason(value: StopReason | int | str) -> int | str:
    """Numbers on the wire; only a stop-reason name nobody knows stays text."""
    return value if type(value) is str else int(value)


def _enc_stream_state(m: StreamStateUpdate) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type), "state": int(m.state)}
    if m.reason is not None:
        wire["reason"] = _enc_reason(m.reason)
    _add(wire, "timestamp", m.timestamp)
    _add(wire, "rtms_stream_id", m.rtms_stream_id)
    return wire


def _enc_session_state(m: SessionStateUpdate) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type), "state": int(m.state)}
    if m.stop_reason is not None:
        wire["stop_reason"] = _enc_reason(m.stop_reason)
    _add(wire, "timestamp", m.timestamp)
    _add(wire, "rtms_session_id", m.rtms_session_id)
    return wire


def _enc_session_req(m: SessionStateRequest) -> dict[str, object]:
    return {"msg_type": int(m.msg_type), "rtms_session_id": m.rtms_session_id}


def _enc_session_resp(m: SessionStateResponse) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type)}
    _add(wire, "rtms_session_id", m.rtms_session_id)
    wire["state"] = int(m.state)
    _add(wire, "timestamp", m.timestamp)
    return wire


def _enc_keep_alive(m: KeepAliveRequest | KeepAliveResponse) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type)}
    _add(wire, "timestamp", m.timestamp)
    _add(wire, "sequence", m.sequence)
    return wire


def _enc_media_data(m: AudioData | VideoData | DeskshareData) -> dict[str, object]:
    content: dict[str, object] = {}
    _add(content, "user_id", m.user_id)
    _add(content, "user_name", m.user_name)
    content["data"] = binascii.b2a_base64(m.data, newline=False).decode("ascii")
    _add(content, "length", m.length)
    _add(content, "timestamp", m.timestamp)
    _add(content, "channel_id", m.channel_id)
    return {"msg_type": int(m.msg_type), "content": content}


def _enc_transcript(m: TranscriptData) -> dict[str, object]:
    content: dict[str, object] = {}
    _add(content, "user_id", m.user_id)
    _add(content, "user_name", m.user_name)
    _add(content, "timestamp", m.timestamp)
    _add(content, "start_time", m.start_time)
    _add(content, "end_time", m.end_time)
    if m.language is not None:
        content["language"] = int(m.language)
    if m.attribute is not None:
        content["attribute"] = _enc_reason(m.attribute)
    content["data"] = m.text
    _add(content, "channel_id", m.channel_id)
    return {"msg_type": int(m.msg_type), "content": content}


def _enc_chat(m: ChatData) -> dict[str, object]:
    content: dict[str, object] = {}
    _add(content, "user_id", m.user_id)
    _add(content, "user_name", m.user_name)
    _add(content, "timestamp", m.timestamp)
    content["data"] = m.text
    return {"msg_type": int(m.msg_type), "content": content}


def _enc_stream_state_resp(m: StreamStateResponse) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type), "state": int(m.state)}
    _add(wire, "rtms_stream_id", m.rtms_stream_id)
    _add(wire, "timestamp", m.timestamp)
    return wire


def _enc_close_resp(m: StreamCloseResponse) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type)}
    _add(wire, "rtms_stream_id", m.rtms_stream_id)
    _add(wire, "status_code", m.status_code)
    wire["reason"] = m.reason
    _add(wire, "timestamp", m.timestamp)
    return wire


def _enc_video_sub_req(m: VideoSubscriptionRequest) -> dict[str, object]:
    wire: dict[str, object] = {
        "msg_type": int(m.msg_type),
        "user_id": m.user_id,
        "subscribe": m.subscribe,
    }
    _add(wire, "timestamp", m.timestamp)
    return wire


def _enc_video_sub_resp(m: VideoSubscriptionResponse) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type), "user_id": m.user_id}
    _add(wire, "status_code", m.status_code)
    wire["reason"] = m.reason
    _add(wire, "timestamp", m.timestamp)
    _add(wire, "subscribe", m.subscribe)
    return wire


def _enc_raw(m: MetadataMessage | UnknownMessage) -> dict[str, object]:
    wire: dict[str, object] = dict(m.raw)
    wire["msg_type"] = m.msg_type
    return wire


_ENCODERS: dict[type[Any], Callable[[Any], dict[str, object]]] = {
    SignalingHandshakeRequest: _enc_signaling_req,
    SignalingHandshakeResponse: _enc_signaling_resp,
    MediaHandshakeRequest: _enc_media_req,
    MediaHandshakeResponse: _enc_media_resp,
    EventSubscription: _enc_subscription,
    EventUpdate: _enc_event,
    ClientReady: _enc_stream_id,
    StreamStateUpdate: _enc_stream_state,
    SessionStateUpdate: _enc_session_state,
    SessionStateRequest: _enc_session_req,
    SessionStateResponse: _enc_session_resp,
    KeepAliveRequest: _enc_keep_alive,
    KeepAliveResponse: _enc_keep_alive,
    AudioData: _enc_media_data,
    VideoData: _enc_media_data,
    DeskshareData: _enc_media_data,
    TranscriptData: _enc_transcript,
    ChatData: _enc_chat,
    StreamStateRequest: _enc_stream_id,
    StreamStateResponse: _enc_stream_state_resp,
    StreamCloseRequest: _enc_stream_id,
    StreamCloseResponse: _enc_close_resp,
    VideoSubscriptionRequest: _enc_video_sub_req,
    VideoSubscriptionResponse: _enc_video_sub_resp,
    MetadataMessage: _enc_raw,
    UnknownMessage: _enc_raw,
}


def encode_message(msg: Message) -> bytes:
    """Encode ``msg`` as compact UTF-8 JSON (ASCII-escaped), integers for every enum.

    The result can go out as a text or a binary frame. Raises :class:`TypeError`
    for anything that is not a :data:`Message`.
    """
    encoder = _ENCODERS.get(type(msg))
    if encoder is None:
        raise TypeError(f"not an RTMS message: {type(msg).__name__}")
    return _json_encode(encoder(msg)).encode("ascii")
