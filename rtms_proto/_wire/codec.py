"""Dispatch: bytes to a message by ``msg_type``, a message to bytes by its class.

:data:`Message` is the one list of message classes; the lookup tables are
built from it and from each class's ``msg_type``, so a new message is a class
with ``_from_wire``/``_to_wire`` and a line in the union.  Decoding is total:
every fault comes back as a :class:`DecodeError` value, never an exception.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeAlias, get_args

from rtms_proto._fields import WireFieldError, json_type, wrong
from rtms_proto._json import (
    MAX_JSON_ITEMS,
    JsonLimitError,
    OrjsonError,
    dumps,
    orjson_loads,
    parse_network,
)
from rtms_proto.enums import MessageType, to_enum

from .control import (
    KeepAliveRequest,
    KeepAliveResponse,
    SessionStateRequest,
    SessionStateResponse,
    SessionStateUpdate,
    StreamCloseRequest,
    StreamCloseResponse,
    StreamStateRequest,
    StreamStateResponse,
    StreamStateUpdate,
    VideoSubscriptionRequest,
    VideoSubscriptionResponse,
)
from .event_update import EventSubscription, EventUpdate
from .handshake import (
    ClientReady,
    MediaHandshakeRequest,
    MediaHandshakeResponse,
    SignalingHandshakeRequest,
    SignalingHandshakeResponse,
)
from .media import AudioReceived, ChatData, DeskshareReceived, TranscriptData, VideoReceived
from .raw import METADATA_TYPES, MetadataMessage, UnknownMessage

__all__ = ["DecodeError", "Message", "decode_media", "decode_message", "encode_message"]


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
    | AudioReceived
    | VideoReceived
    | DeskshareReceived
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

_CLASSES: tuple[Any, ...] = get_args(Message)
_KEPT_RAW = (MetadataMessage, UnknownMessage)

_DECODERS: dict[int, Callable[[dict[str, Any]], Message]] = {
    int(cls.msg_type): cls._from_wire for cls in _CLASSES if cls not in _KEPT_RAW
}
_DECODERS.update(dict.fromkeys(map(int, METADATA_TYPES), MetadataMessage._from_wire))

_decode_unknown = UnknownMessage._from_wire

_ENCODERS: dict[type[Any], Callable[[Any], dict[str, object]]] = {
    cls: cls._to_wire for cls in _CLASSES
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
        # orjson inline for a short text (every audio packet: it cannot hold more than
        # MAX_JSON_ITEMS items); the bounded parser for the rest.
        if len(text) <= MAX_JSON_ITEMS:
            try:
                obj = orjson_loads(text)
            except OrjsonError:
                obj = parse_network(text)
        else:
            obj = parse_network(text)
    except JsonLimitError as exc:
        return DecodeError(msg_type=None, field=None, detail=f"too large: {exc}")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, number range, nesting
        return DecodeError(msg_type=None, field=None, detail=f"not valid JSON: {exc}")
    if type(obj) is not dict:
        return DecodeError(
            msg_type=None, field=None, detail=f"expected a JSON object, got {json_type(obj)}"
        )
    msg_type = obj.get("msg_type")
    if type(msg_type) is not int:  # every int a parser gives is within 64 bits
        detail = wrong(obj, "msg_type", "", "an integer").detail
        return DecodeError(msg_type=None, field="msg_type", detail=detail)
    decoder = _DECODERS.get(msg_type, _decode_unknown)
    try:
        return decoder(obj)
    except WireFieldError as exc:
        return DecodeError(msg_type=msg_type, field=exc.field, detail=exc.detail)
    except JsonLimitError as exc:  # a kept ``raw`` nested too deeply
        return DecodeError(msg_type=msg_type, field=None, detail=f"too large: {exc}")


_MediaEvent: TypeAlias = AudioReceived | VideoReceived | DeskshareReceived

_MEDIA_DECODERS: dict[int, Callable[[dict[str, Any]], _MediaEvent | None]] = {
    int(cls.msg_type): cls._from_wire_fast
    for cls in (AudioReceived, VideoReceived, DeskshareReceived)
}


def decode_media(text: str) -> _MediaEvent | None:
    """What :func:`decode_message` gives for ``text`` when that is a well-formed audio,
    video or screen-share packet read by orjson; None for anything else.

    The media path of a live stream, without the general decoder's checks:
    None only means "ask :func:`decode_message`" (a packet it cannot read, or
    anything that is not such a packet).  A property test holds the two to
    the same result.
    """
    if len(text) > MAX_JSON_ITEMS:  # orjson is used only within this bound (decode_message)
        return None
    try:
        obj = orjson_loads(text)
    except OrjsonError:
        return None
    if type(obj) is dict:
        msg_type = obj.get("msg_type")
        if type(msg_type) is int:
            decoder = _MEDIA_DECODERS.get(msg_type)
            if decoder is not None:
                return decoder(obj)
    return None


def encode_message(msg: Message) -> bytes:
    """Encode ``msg`` as compact UTF-8 JSON (ASCII-escaped), integers for every enum.

    The result can go out as a text or a binary frame. Raises :class:`TypeError`
    for anything that is not a :data:`Message`.
    """
    encoder = _ENCODERS.get(type(msg))
    if encoder is None:
        raise TypeError(f"not an RTMS message: {type(msg).__name__}")
    return dumps(encoder(msg)).encode("ascii")
