"""What every concern of the fake server shares: its output, its trace, and ending a stream.

:class:`ServerBase` holds the primitives (send, close, abort, note, emit a
webhook, send an event, lose a socket, end a stream) that the handshake,
signaling, media and timeline mixins all build on, so none of them needs
another and :class:`~rtms_conformance.server_core.FakeRtmsServer` just
combines them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from rtms_proto import messages as m
from rtms_proto.enums import EventType, SessionState, StopReason, StreamState

from .server_routes import signaling_url
from .server_state import Conn, ConnState, Stream
from .server_types import Abort, Close, EmitWebhook, Send, ServerAction, ServerConfig, TraceEntry
from .webhooks import rtms_interrupted_body, rtms_started_body, rtms_stopped_body
from .ws_server import WsOut

__all__ = ["ServerBase"]


class ServerBase:
    """The output queue, the trace and the primitives the server's concerns share."""

    config: ServerConfig
    _out: list[ServerAction]
    trace: list[TraceEntry]

    def _wall(self, at: float) -> int:
        return self.config.epoch_ms + round(at * 1000)

    def _note(self, c: Conn | None, at: float, note: str, stream: Stream | None = None) -> None:
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

    def _emit(self, s: Stream, body: bytes) -> None:
        event = json.loads(body)["event"]
        s.webhooks.append((event, body))
        self._out.append(EmitWebhook(rtms_stream_id=s.info.rtms_stream_id, event=event, body=body))

    def _started_body(self, s: Stream, at: float) -> bytes:
        body = rtms_started_body(
            product=s.spec.product,
            instance_id=s.spec.meeting_uuid,
            rtms_stream_id=s.info.rtms_stream_id,
            server_url=signaling_url(self.config.base_url, s.info.rtms_stream_id, s.generation),
            operator_id=s.spec.operator_id,
            event_ts=self._wall(at),
        )
        s.webhooks.append((json.loads(body)["event"], body))
        return body

    def _send_out(self, c: Conn, out: WsOut | None) -> None:
        if out is not None and out.data:
            self._out.append(Send(conn=c.id, data=out.data))

    def _silent(self, c: Conn, at: float) -> bool:
        return c.silent_until is not None and at < c.silent_until

    def _send(self, c: Conn, msg: m.Message, at: float) -> None:
        """Encode and frame one message (text, or binary when the stream says so)."""
        s = c.stream
        if c.state not in (ConnState.HANDSHAKING, ConnState.OPEN) or self._silent(c, at):
            return
        data = m.encode_message(msg)
        binary = s is not None and s.binary
        self._send_out(c, c.ws.message(data if binary else data.decode("ascii")))
        c.last_send = max(c.last_send, at)
        if s is not None:
            s.sent[int(msg.msg_type)] = s.sent.get(int(msg.msg_type), 0) + 1
        if not isinstance(msg, m.AudioData | m.VideoData | m.DeskshareData):
            self._trace(c, "out", msg, at)

    def _trace(self, c: Conn, direction: str, msg: m.Message | m.DecodeError, at: float) -> None:
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

    def _send_raw(self, c: Conn, data: str | bytes, at: float) -> None:
        if c.state is not ConnState.OPEN:
            return
        self._send_out(c, c.ws.message(data))
        c.last_send = max(c.last_send, at)

    def _close(self, c: Conn, at: float, code: int = 1000, reason: str = "") -> None:
        """Start a close handshake (or just close TCP before the upgrade)."""
        if c.state in (ConnState.CLOSING, ConnState.CLOSED):
            return
        out = c.ws.close(code, reason)
        if out is None:
            c.state = ConnState.CLOSED
            self._out.append(Close(conn=c.id))
            return
        self._send_out(c, out)
        c.state = ConnState.CLOSING
        c.deadline = at + self.config.close_timeout

    def _abort(self, c: Conn, at: float, why: str) -> None:
        if c.state is ConnState.CLOSED:
            return
        c.state = ConnState.CLOSED
        c.ws.lost()
        c.deadline = None
        self._out.append(Abort(conn=c.id))
        self._note(c, at, f"dropped: {why}")

    def _event(
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
        automatic = event_type in (
            EventType.FIRST_PACKET_TIMESTAMP,
            EventType.MEDIA_CONNECTION_INTERRUPTED,
        )
        if c is None or (not automatic and int(event_type) not in s.subscribed):
            return
        self._send(
            c,
            m.EventUpdate(
                event_type=event_type,
                timestamp=self._wall(at),
                user_id=user_id,
                user_name=user_name,
                participants=participants,
                raw=extra or {},
            ),
            at,
        )

    # --- losing and ending ------------------------------------------------------------------

    def _gone(self, c: Conn, at: float, reason: StopReason) -> None:
        """A live socket of a stream is gone: wait for the client to come back."""
        s = c.stream
        if s is None or s.ended:
            return
        if s.signaling is c:
            s.signaling = None
            s.sig_lost = (at, reason)
            for media in list(s.media.values()):
                self._abort(media, at, "the signaling connection was lost")
            s.media.clear()
            s.media_lost.clear()
            self._emit(
                s,
                rtms_interrupted_body(
                    product=s.spec.product,
                    instance_id=s.spec.meeting_uuid,
                    rtms_stream_id=s.info.rtms_stream_id,
                    event_ts=self._wall(at),
                ),
            )
            return
        key = next((k for k, media in s.media.items() if media is c), None)
        if key is None:
            return
        del s.media[key]
        s.media_lost[key] = (at, reason)
        self._event(s, at, EventType.MEDIA_CONNECTION_INTERRUPTED, extra={"media_type": int(key)})

    def _end_stream(self, s: Stream, at: float, reason: StopReason | int) -> None:
        if s.ended:
            return
        for c in s.conns():
            c.silent_until = None  # the last words always go out
        sig = s.signaling
        if sig is not None and sig.state is ConnState.OPEN:
            self._send(
                sig,
                m.StreamStateUpdate(
                    state=StreamState.TERMINATED, reason=reason, timestamp=self._wall(at)
                ),
                at,
            )
            self._send(
                sig,
                m.SessionStateUpdate(
                    state=SessionState.STOPPED,
                    stop_reason=reason,
                    timestamp=self._wall(at),
                    rtms_session_id=s.info.rtms_session_id,
                ),
                at,
            )
        s.ended = True
        s.stop_reason = reason
        s.sig_lost = None
        s.media_lost.clear()
        for c in s.clients_in_order():
            if c.state in (ConnState.HANDSHAKING, ConnState.OPEN):
                self._close(c, at)
        s.signaling = None
        s.media.clear()
        self._note(None, at, f"stream ended, stop reason {int(reason)}", s)
        self._emit(
            s,
            rtms_stopped_body(
                product=s.spec.product,
                instance_id=s.spec.meeting_uuid,
                rtms_stream_id=s.info.rtms_stream_id,
                stop_reason=reason,
                event_ts=self._wall(at),
            ),
        )
