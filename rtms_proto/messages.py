"""Wire codec: one typed, immutable message per RTMS message kind (docs/protocol.md §2-§3, §6, §13).

Both directions are covered so the client and the fake server share one codec.
:func:`encode_message` writes compact JSON with integers for every enum;
:func:`decode_message` reads JSON from text or binary frames and is *total*: a
peer can send anything, so every fault comes back as a :class:`DecodeError`
value instead of an exception. Unknown keys are ignored and unknown
``msg_type`` numbers become :class:`UnknownMessage`, because Zoom adds fields
and messages over time and a client must not break when it does.

Audio, video and screen-share packets decode straight into the application's
events: :class:`AudioData` *is* :class:`rtms_proto.events.AudioReceived` (and
likewise :class:`VideoData`, :class:`DeskshareData`), one object per packet.

Bounds (issue 10): a message may hold at most ``MAX_JSON_ITEMS`` (16,384)
JSON items, counted before anything is parsed; a kept ``raw`` nests at most
``MAX_JSON_DEPTH`` (32) deep; an integer field takes a 64-bit integer only
(both JSON parsers read every number alike).  Beyond any of them the message is
a :class:`DecodeError`.  So decoding a message of n bytes with i items
allocates at most ``10·n + 256·i`` bytes plus 2 MiB (orjson's scratch for
texts under 128 KiB), at most ``10·n + 6 MiB`` in all: ~10.4x the default
``max_message_size`` (16 MiB).  ``tests/test_message_bounds.py`` holds it.

This module is the public face; the messages live in ``rtms_proto._wire``, one
module per part of the protocol, over the JSON and field helpers they share.
"""

from __future__ import annotations

from ._json import JsonValue
from ._wire.codec import DecodeError, Message, decode_message, encode_message
from ._wire.control import (
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
from ._wire.event_update import (
    EventSubscription,
    EventSubscriptionItem,
    EventUpdate,
    Participant,
    ZccParticipant,
)
from ._wire.handshake import (
    INSTANCE_ID_KEYS,
    ClientReady,
    MediaHandshakeRequest,
    MediaHandshakeResponse,
    SignalingHandshakeRequest,
    SignalingHandshakeResponse,
)
from ._wire.media import (
    AudioReceived,
    ChatData,
    ChatFile,
    ChatUser,
    DeskshareReceived,
    StructuredChat,
    TranscriptData,
    VideoReceived,
)
from ._wire.raw import MetadataMessage, UnknownMessage

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

AudioData = AudioReceived
"""MEDIA_DATA_AUDIO (14): ``data`` is base64-decoded; ``user_id`` 0 = mixed (§6.2)."""
VideoData = VideoReceived
"""MEDIA_DATA_VIDEO (15): one JPG/PNG image or H.264 access unit (§6.3)."""
DeskshareData = DeskshareReceived
"""MEDIA_DATA_SHARE (16): one screen-share frame; the user is the sharer (§6.4)."""
