"""What the fake server puts out: driver actions, its trace, and the wire primitives.

:class:`Output` is the one part every other part writes through: it frames
and queues messages (:meth:`Output.send`), starts close handshakes, drops
sockets, notes what happened in the trace and emits webhooks.  It holds no
stream logic; the parts decide *what* to send, this decides *how* it goes out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from rtms_conformance.webhooks import rtms_started_body
from rtms_proto import messages as m
from rtms_proto.enums import EventType

from .routes import signaling_url
from .state import Conn, ConnState, Stream
from .types import (
    Abort,
    Close,
    EmitWebhook,
    PauseReading,
    Send,
    ServerAction,
    ServerConfig,
    TraceEntry,
)
from .ws_server import WsOut

__all__ = ["Output"]

_MEDIA_DATA = (m.AudioData, m.VideoData, m.DeskshareData)
_AUTOMATIC_EVENTS = (EventType.FIRST_PACKET_TIMESTAMP, EventType.MEDIA_CONNECTION_INTERRUPTED)


class Output:
    """The queue of driver actions, the trace, and the primitives that fill them."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._actions: list[ServerAction] = []
        self.trace: list[TraceEntry] = []
        """Messages in and out (media data counted in ``StreamStatus.sent``), and notes."""

    def drain(self) -> list[ServerAction]:
        """Every action queued since the last call, in order."""
        out, self._actions = self._actions, []
        return out

    def wall(self, at: float) -> int:
        """The wall-clock timestamp (ms) of monotonic time ``at``."""
        return self._config.epoch_ms + round(at * 1000)

    # --- the trace ----------------------------------------------------------------------------

    def note(self, c: Conn | None, at: float, note: str, stream: Stream | None = None) -> None:
        s = stream if stream is not None else (c.stream if c is not None else None)
        self.trace.append(
            TraceEntry(
                at=at,
                rtms_stream_id=None if s is None else s.info.rtms_stream_id,
                conn=None if c is None else c.id,
                role=None if c is None else c.role,
                direction="note",
                note=note,
            )
        )

    def message(self, c: Conn, direction: str, msg: m.Message | m.DecodeError, at: float) -> None:
        """Record a message ``direction`` ("in" or "out") on ``c``."""
        s = c.stream
        self.trace.append(
            TraceEntry(
                at=at,
                rtms_stream_id=None if s is None else s.info.rtms_stream_id,
                conn=c.id,
                role=c.role,
                direction=direction,
                message=msg,
            )
        )

    # --- webhooks -----------------------------------------------------------------------------

    def emit(self, s: Stream, body: bytes) -> None:
        """A webhook the stream produced: kept, and handed to the driver."""
        event = json.loads(body)["event"]
        s.webhooks.append((event, body))
        self._actions.append(
            EmitWebhook(rtms_stream_id=s.info.rtms_stream_id, event=event, body=body)
        )

    def started_body(self, s: Stream, at: float) -> bytes:
        """The stream's ``rtms_started`` body for its current generation (kept, not emitted)."""
        body = rtms_started_body(
            product=s.spec.product,
            instance_id=s.spec.meeting_uuid,
            rtms_stream_id=s.info.rtms_stream_id,
            server_url=signaling_url(self._config.base_url, s.info.rtms_stream_id, s.generation),
            operator_id=s.spec.operator_id,
            event_ts=self.wall(at),
        )
        s.webhooks.append((json.loads(body)["event"], body))
        return body

    def emit_started(self, s: Stream, at: float) -> None:
        """A new ``rtms_started`` (after a failover): kept as current, handed to the driver."""
        s.started_body = self.started_body(s, at)
        event = json.loads(s.started_body)["event"]
        self._actions.append(
            EmitWebhook(rtms_stream_id=s.info.rtms_stream_id, event=event, body=s.started_body)
        )

    # --- the wire -----------------------------------------------------------------------------

    def send_out(self, c: Conn, out: WsOut | None) -> None:
        """Bytes the WebSocket layer produced for ``c``."""
        if out is not None and out.data:
            self._actions.append(Send(conn=c.id, data=out.data))

    def send(self, c: Conn, msg: m.Message, at: float) -> None:
        """Encode and frame one message (text, or binary when the stream says so)."""
        s = c.stream
        if c.state not in (ConnState.HANDSHAKING, ConnState.OPEN) or (
            c.silent_until is not None and at < c.silent_until
        ):
            return
        data = m.encode_message(msg)
        binary = s is not None and s.binary
        self.send_out(c, c.ws.message(data if binary else data.decode("ascii")))
        c.last_send = max(c.last_send, at)
        if s is not None:
            s.sent[int(msg.msg_type)] = s.sent.get(int(msg.msg_type), 0) + 1
        if not isinstance(msg, _MEDIA_DATA):
            self.message(c, "out", msg, at)

    def send_raw(self, c: Conn, data: str | bytes, at: float) -> None:
        """Send ``data`` as one message, whatever it contains (fault injection)."""
        if c.state is not ConnState.OPEN:
            return
        self.send_out(c, c.ws.message(data))
        c.last_send = max(c.last_send, at)

    def close(self, c: Conn, at: float, code: int = 1000, reason: str = "") -> None:
        """Start a close handshake (or just close TCP before the upgrade)."""
        if c.state in (ConnState.CLOSING, ConnState.CLOSED):
            return
        out = c.ws.close(code, reason)
        if out is None:
            c.state = ConnState.CLOSED
            self._actions.append(Close(conn=c.id))
            return
        self.send_out(c, out)
        c.state = ConnState.CLOSING
        c.deadline = at + self._config.close_timeout

    def close_now(self, c: Conn) -> None:
        """Close TCP at once: the WebSocket is over (or never began)."""
        c.state = ConnState.CLOSED
        c.deadline = None
        self._actions.append(Close(conn=c.id))

    def abort(self, c: Conn, at: float, why: str) -> None:
        """Drop the connection: no close frame, unwritten data lost."""
        if c.state is ConnState.CLOSED:
            return
        c.state = ConnState.CLOSED
        c.ws.lost()
        c.deadline = None
        self._actions.append(Abort(conn=c.id))
        self.note(c, at, f"dropped: {why}")

    def pause_reading(self, c: Conn, seconds: float) -> None:
        """Ask the driver to stop reading ``c`` for ``seconds`` (a slow-reader fault)."""
        self._actions.append(PauseReading(conn=c.id, seconds=seconds))

    def event(
        self,
        s: Stream,
        at: float,
        event_type: EventType,
        *,
        user_id: int | None = None,
        user_name: str | None = None,
        participants: tuple[m.Participant, ...] = (),
        extra: Mapping[str, m.JsonValue] | None = None,
    ) -> None:
        """Send an EVENT_UPDATE on signaling if the app subscribed (1 and 7 always go)."""
        c = s.signaling
        if c is None or (
            event_type not in _AUTOMATIC_EVENTS and int(event_type) not in s.subscribed
        ):
            return
        self.send(
            c,
            m.EventUpdate(
                event_type=event_type,
                timestamp=self.wall(at),
                user_id=user_id,
                user_name=user_name,
                participants=participants,
                raw=extra or {},
            ),
            at,
        )
