"""The ``--publish`` fan-out: each event of an owned stream on ``rtms.<stream id>.<kind>``.

Subjects
    ``<stream id>`` is the stream id with ``.``, ``*``, ``>``, ``%``, white space
    and non-ASCII characters written ``%XX`` (UTF-8 bytes), so it is always one
    subject token; ``<kind>`` is ``audio``, ``video`` or ``deskshare`` for media
    frames and the event's name otherwise: the class name in snake case without
    ``_received`` (``transcript``, ``chat``, ``participants_joined``,
    ``active_speaker_changed``, ``session_ended``...).  Subscribe to
    ``rtms.*.audio`` for every stream's audio, ``rtms.<id>.>`` for one stream.
Frames (audio, video, deskshare)
    An 18-byte header then the payload as received: version (1 byte, 1),
    flags (1 byte: bit 0 a user id is present, bit 1 a timestamp is), user id
    (signed 64-bit big-endian, 0 is the mixed audio), timestamp (signed 64-bit
    big-endian, Zoom's milliseconds).  :func:`decode_frame` reads it.
Everything else
    A JSON object: the event's fields (enums by value, bytes as base64, nested
    values as objects and lists) plus ``"type"``, the event's class name.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import re
import struct
from collections.abc import Mapping

from rtms_proto import events as ev

__all__ = ["FRAME_HEADER", "decode_frame", "encode_event", "subject_token"]

FRAME_HEADER = struct.Struct(">BBqq")
_VERSION = 1
_HAS_USER = 1
_HAS_TIMESTAMP = 2
_FRAME_KINDS: dict[type, str] = {
    ev.AudioReceived: "audio",
    ev.VideoReceived: "video",
    ev.DeskshareReceived: "deskshare",
}
_UNSAFE = re.compile(r"[^\x21-\x7e]|[.*>%]")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def subject_token(stream_id: str) -> str:
    """``stream_id`` as one subject token (see the module docstring)."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), stream_id)


def _kind(event: ev.Event) -> str:
    frame = _FRAME_KINDS.get(type(event))
    if frame is not None:
        return frame
    name = _CAMEL.sub("_", type(event).__name__).lower()
    return name.removesuffix("_received")


def _jsonable(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def encode_event(stream_id: str, event: ev.Event) -> tuple[str, bytes]:
    """The subject and the message that publish ``event`` of ``stream_id``."""
    subject = f"rtms.{subject_token(stream_id)}.{_kind(event)}"
    if isinstance(event, ev.AudioReceived | ev.VideoReceived | ev.DeskshareReceived):
        flags = (_HAS_USER if event.user_id is not None else 0) | (
            _HAS_TIMESTAMP if event.timestamp is not None else 0
        )
        header = FRAME_HEADER.pack(_VERSION, flags, event.user_id or 0, event.timestamp or 0)
        return subject, header + event.data
    body = _jsonable(event)
    assert isinstance(body, dict)
    body["type"] = type(event).__name__
    return subject, json.dumps(body, separators=(",", ":")).encode()


def decode_frame(message: bytes) -> tuple[int | None, int | None, bytes]:
    """(user id, timestamp, payload) of a published frame; ValueError if it is not one."""
    if len(message) < FRAME_HEADER.size:
        raise ValueError("a published frame is at least 18 bytes")
    version, flags, user_id, timestamp = FRAME_HEADER.unpack_from(message)
    if version != _VERSION:
        raise ValueError(f"unknown frame header version {version}")
    return (
        user_id if flags & _HAS_USER else None,
        timestamp if flags & _HAS_TIMESTAMP else None,
        message[FRAME_HEADER.size :],
    )
