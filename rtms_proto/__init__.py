"""rtms_proto: a Sans-I/O client for Zoom Realtime Media Streams (RTMS).

Bytes and ``now`` go in; actions (open, send, close) and typed events come
out.  Nothing here touches a socket, a clock or a random number: the
transports in ``rtms_transports`` (asyncio, trio, blocking sockets) do that.

Public modules: :mod:`rtms_proto.events` (what the application receives),
:mod:`rtms_proto.actions` (what a driver performs), :mod:`rtms_proto.enums`,
:mod:`rtms_proto.messages` (the wire codec), :mod:`rtms_proto.webhooks` and
:mod:`rtms_proto.audio` (the audio format, and PCM cut into chunks for speech-to-text).
"""

from . import actions, audio, enums, events, messages, webhooks
from ._auth import Credentials, handshake_signature
from ._backoff import BackoffPolicy, Jitter, backoff_delay
from ._config import ConnectionOptions, StreamIdentity
from ._connection import ConnState, Output
from ._errors import (
    ConnectionClosed,
    DisallowedHost,
    InvalidConfig,
    LocalProtocolError,
    RemoteProtocolError,
    RtmsError,
    WebhookError,
)
from ._media import MediaConnection
from ._params import (
    AudioParams,
    ChatParams,
    DeskshareParams,
    MediaParams,
    TranscriptParams,
    VideoParams,
)
from ._phases import SessionPhase
from ._session import Layout, Session, SessionConfig
from ._signaling import SignalingConnection
from ._status import StatusTable
from ._urls import DEFAULT_ALLOWED_HOSTS, ServerUrl, parse_server_url
from .actions import Action, CloseSocket, OpenSocket, SendBytes, SocketId, SocketRole
from .enums import EventType, FailureReason, MediaType, Product
from .events import Event

__version__ = "0.1.0"

__all__ = [
    "Action",
    "DEFAULT_ALLOWED_HOSTS",
    "Event",
    "Output",
    "ServerUrl",
    "parse_server_url",
    "AudioParams",
    "BackoffPolicy",
    "ChatParams",
    "CloseSocket",
    "ConnState",
    "ConnectionClosed",
    "ConnectionOptions",
    "Credentials",
    "DeskshareParams",
    "DisallowedHost",
    "EventType",
    "FailureReason",
    "InvalidConfig",
    "Jitter",
    "Layout",
    "LocalProtocolError",
    "MediaConnection",
    "MediaParams",
    "MediaType",
    "OpenSocket",
    "Product",
    "RemoteProtocolError",
    "RtmsError",
    "SendBytes",
    "Session",
    "SessionConfig",
    "SessionPhase",
    "SignalingConnection",
    "SocketId",
    "SocketRole",
    "StatusTable",
    "StreamIdentity",
    "TranscriptParams",
    "VideoParams",
    "WebhookError",
    "actions",
    "audio",
    "backoff_delay",
    "enums",
    "events",
    "handshake_signature",
    "messages",
    "webhooks",
]
