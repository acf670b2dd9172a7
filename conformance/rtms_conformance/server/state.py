"""The fake server's per-stream and per-connection state.

Plain data the server's parts share, kept apart from the code that acts on it
so that each part's module reads as behaviour only.  When each has work due is
:mod:`.schedule`'s business.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rtms_conformance import faults as f
from rtms_conformance.meeting import MeetingScript
from rtms_proto import MediaParams
from rtms_proto.actions import SocketRole
from rtms_proto.enums import MediaType, StopReason

from .types import ConnId, ServerConfig, StreamInfo, StreamSpec
from .ws_server import WsServer

if TYPE_CHECKING:
    from .schedule import Agenda

__all__ = ["Conn", "ConnState", "Stream"]


class ConnState(enum.Enum):
    UPGRADING = "upgrading"
    HANDSHAKING = "handshaking"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Conn:
    """One socket as the server sees it."""

    def __init__(
        self,
        conn_id: ConnId,
        now: float,
        config: ServerConfig,
        order: int,
        timeouts: Agenda[Conn],
    ) -> None:
        self.id = conn_id
        self.order = order
        """Rank among all connections ever made: the order deadlines are handled in."""
        self._timeouts = timeouts
        self._deadline: float | None = None
        self.ws = WsServer(max_message_size=config.max_message_size)
        self.state = ConnState.UPGRADING
        self.deadline = now + config.handshake_timeout
        self.stream: Stream | None = None
        self.role: SocketRole | None = None
        self.url_type = MediaType.UNDEFINED
        self.carried = MediaType.UNDEFINED
        self.params: MediaParams | None = None
        self.released = False
        self.ka_last = now
        self.ka_seq = 0
        self.ka_outstanding: list[int] = []
        self.last_send = now
        self.silent_until: float | None = None
        self.video_next = 0
        self.video_since_idr = 0
        self.share_next = 0
        self.share_since_idr = 0
        self.idr_count = 0

    @property
    def deadline(self) -> float | None:
        """When the handshake or the close handshake times out."""
        return self._deadline

    @deadline.setter
    def deadline(self, at: float | None) -> None:
        # Every assignment is scheduled, so no code path can forget to.
        self._deadline = at
        if at is not None:
            self._timeouts.push(at, self)


class Stream:
    """One stream's state."""

    def __init__(self, spec: StreamSpec, info: StreamInfo, start: float, order: int) -> None:
        self.spec = spec
        self.info = info
        self.start = start
        self.order = order
        """Rank among the streams: the order streams due at once are served in."""
        self.queued: float | None = None
        """The due time last put on the agenda (None: nothing due, or being served)."""
        self.clients: dict[int, Conn] = {}
        """Connections routed to this stream and not lost, by ``Conn.order``."""
        self.script = MeetingScript(spec.meeting, spec.timeline)
        self.ended = False
        self.stop_reason: StopReason | int | None = None
        self.generation = 0
        self.signaling: Conn | None = None
        self.media: dict[MediaType, Conn] = {}
        self.handshakes: dict[SocketRole, int] = {}
        self.ever_connected = False
        self.sig_lost: tuple[float, StopReason] | None = None
        self.media_lost: dict[MediaType, tuple[float, StopReason]] = {}
        self.buffer_data: bool | None = None
        self.audio_cursor: int | None = None
        self.subscribed: set[int] = set()
        self.roster: dict[int, str] = {}
        self.video_on: set[int] = set()
        self.sharer: int | None = None
        self.speaker: int | None = None
        self.paused = False
        self.video_sub: int | None = None
        self.script_ms = -1
        self.timed = sorted(
            (x for x in spec.faults if isinstance(x, f.TimedFault)), key=lambda x: x.at
        )
        self.timed_next = 0
        self.binary = False
        self.session_started = False
        self.active_sent = False
        self.chat_count = 0
        self.started_body = b""
        self.webhooks: list[tuple[str, bytes]] = []
        self.sent: dict[int, int] = {}

    def rel_ms(self, at: float) -> int:
        """Milliseconds from the stream start to ``at`` (rounded down, never negative)."""
        return max(0, math.floor((at - self.start) * 1000 + 1e-6))

    def conns(self) -> Iterator[Conn]:
        if self.signaling is not None:
            yield self.signaling
        yield from self.media.values()

    def clients_in_order(self) -> list[Conn]:
        """Routed, not lost connections in the order they were made (``_conns`` order)."""
        return [self.clients[k] for k in sorted(self.clients)]
