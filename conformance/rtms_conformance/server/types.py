"""The fake server's public values: driver actions, configuration, stream specs and snapshots.

Everything here is an immutable value; :class:`~rtms_conformance.server.FakeRtmsServer`
consumes the configuration and produces the rest.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from rtms_conformance import faults as f
from rtms_conformance import timeline as tl
from rtms_conformance.meeting import MeetingSpec
from rtms_proto import InvalidConfig, StatusTable
from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import MediaType, Product, StopReason

__all__ = [
    "ALL_SCOPES",
    "Abort",
    "Close",
    "ConnId",
    "EmitWebhook",
    "PauseReading",
    "Send",
    "ServerAction",
    "ServerConfig",
    "StreamInfo",
    "StreamSpec",
    "StreamStatus",
    "TraceEntry",
]

ALL_SCOPES = (
    MediaType.AUDIO | MediaType.VIDEO | MediaType.DESKSHARE | MediaType.TRANSCRIPT | MediaType.CHAT
)

ConnId: TypeAlias = Hashable
"""Whatever the driver uses to name a connection (an int, a tuple …)."""


# --- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Write ``data`` to connection ``conn``."""

    conn: ConnId
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Close:
    """Flush what was written, then close the TCP connection (then call ``connection_lost``)."""

    conn: ConnId


@dataclass(frozen=True, slots=True, kw_only=True)
class Abort:
    """Drop the TCP connection at once, unwritten data lost, no close frame."""

    conn: ConnId


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseReading:
    """Stop reading from ``conn`` for ``seconds`` (slow-reader fault)."""

    conn: ConnId
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class EmitWebhook:
    """The server produced a webhook body (``rtms_started`` after a failover,
    ``rtms_interrupted``, ``rtms_stopped``); a driver may POST it."""

    rtms_stream_id: str
    event: str
    body: bytes


ServerAction: TypeAlias = Send | Close | Abort | PauseReading | EmitWebhook


# --- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """How the server behaves; times in seconds.

    ``base_url`` is ``ws[s]://host[:port]`` as clients must reach the server
    (drivers fill in the port they bound).  The defaults are Zoom's documented
    values: keep-alive every 10 s when a socket is idle (``keepalive_while_data``
    also probes sockets that carry data), 3 misses, a 60 s signaling and 65 s
    media reconnection window, 60 s of audio kept for a client that is away.

    ``fresh_meetings`` (off by default, on in ``rtms-proto fake-server``): a
    client opening a stream's signaling socket while no other socket of the
    stream is open, and the stream has ended or was never joined, starts a new
    meeting of the stream (same ids, its timeline from that moment), so that
    one ``rtms_started`` body serves client after client.

    ``video_pictures`` (off by default, so that traces stay small and fixed; on
    in ``rtms-proto demo`` and ``fake-server``): JPEG and PNG video and share
    frames show the meeting clock and who is on screen instead of flat grey.
    """

    client_id: str
    client_secret: str = field(repr=False)
    base_url: str = "ws://127.0.0.1"
    status_table: StatusTable = StatusTable.CURRENT
    keepalive_interval: float = 10.0
    keepalive_misses: int = 3
    keepalive_while_data: bool = False
    signaling_reconnect_window: float = 60.0
    media_reconnect_window: float = 65.0
    audio_buffer_limit: float = 60.0
    handshake_timeout: float = 30.0
    close_timeout: float = 2.0
    max_message_size: int = 1 << 20
    epoch_ms: int = 1_700_000_000_000
    datacenter_region: str | None = None
    fresh_meetings: bool = False
    video_pictures: bool = False

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_secret:
            raise InvalidConfig("client_id and client_secret must not be empty")
        if not re.fullmatch(r"wss?://[^/?#\s]+", self.base_url):
            raise InvalidConfig("base_url must be ws://host[:port] or wss://host[:port]")
        for name in (
            "keepalive_interval",
            "signaling_reconnect_window",
            "media_reconnect_window",
            "handshake_timeout",
            "close_timeout",
        ):
            if not getattr(self, name) > 0:
                raise InvalidConfig(f"{name} must be positive")
        if self.keepalive_misses < 1 or not self.audio_buffer_limit >= 0:
            raise InvalidConfig("keepalive_misses must be >= 1 and audio_buffer_limit >= 0")
        if self.max_message_size < 1024:
            raise InvalidConfig("max_message_size must be at least 1024")


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSpec:
    """One stream to serve.

    ``meeting_uuid`` is the instance id whatever the product (the webhook and
    the handshake carry it under the product's key).  ``scopes`` are the media
    types the app may receive: one media URL is offered per scope, plus
    ``all`` when ``offer_all``.  ``connect_window`` ends the stream (stop
    reason CONNECTION_TIMEOUT) if no signaling handshake succeeds in time.
    """

    meeting_uuid: str
    rtms_stream_id: str
    product: Product = Product.MEETING
    scopes: MediaType = ALL_SCOPES
    offer_all: bool = True
    operator_id: str = "fake-operator"
    rtms_session_id: str | None = None
    meeting: MeetingSpec = field(default_factory=MeetingSpec)
    timeline: tuple[tl.TimelineEntry, ...] = ()
    faults: tuple[f.Fault, ...] = ()
    connect_window: float | None = None

    def __post_init__(self) -> None:
        if not self.meeting_uuid or not self.rtms_stream_id:
            raise InvalidConfig("meeting_uuid and rtms_stream_id must not be empty")
        if int(self.scopes) & ~int(ALL_SCOPES) or not self.scopes:
            raise InvalidConfig("scopes must be a non-empty combination of single media types")

    @property
    def session_id(self) -> str:
        """The ``rtms_session_id`` of the stream's session."""
        return self.rtms_session_id or f"{self.rtms_stream_id}-session-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamInfo:
    """What the server made of a :class:`StreamSpec` (returned by ``add_stream``).

    ``media_epoch_ms`` is the timestamp of the stream's first media instant:
    an audio packet's ``timestamp`` minus it is the packet's offset into the
    meeting, as :meth:`FakeRtmsServer.expected_audio` takes it.
    """

    rtms_stream_id: str
    instance_id: str
    product: Product
    rtms_session_id: str
    signaling_url: str
    started_at: float
    media_epoch_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStatus:
    """A snapshot of a stream, for tests and harnesses."""

    rtms_stream_id: str
    ended: bool
    stop_reason: StopReason | int | None
    generation: int
    signaling_connected: bool
    media_connected: frozenset[SocketRole]
    media_released: frozenset[SocketRole]
    signaling_handshakes: int
    subscribed_events: frozenset[int]
    audio_cursor_ms: int | None
    video_subscription: int | None
    sent: Mapping[int, int]
    served: int = 0
    """Meetings of the stream that a client joined and that have ended (more than one
    only with ``ServerConfig.fresh_meetings``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceEntry:
    """One thing that happened: a message in or out (media data is only counted), or a note."""

    at: float
    rtms_stream_id: str | None
    conn: ConnId
    role: SocketRole | None
    direction: str
    message: m.Message | m.DecodeError | None = None
    note: str = ""
