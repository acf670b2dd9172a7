"""How the fake server loses a client's socket and ends a stream.

A live socket that goes (dropped, closed, silent too long) leaves its stream
waiting for the client to come back, for a reconnection window; a stream ends
when it is closed, revoked, ended by its meeting, or when a window runs out,
the way Zoom ends one (state updates, close frames, ``rtms_stopped``).
"""

from __future__ import annotations

from rtms_conformance.webhooks import rtms_interrupted_body, rtms_stopped_body
from rtms_proto import messages as m
from rtms_proto.enums import EventType, MediaType, SessionState, StopReason, StreamState

from .output import Output
from .routes import KIND_OF
from .state import Conn, ConnState, Stream

__all__ = ["Endings"]


class Endings:
    """Losing sockets and ending streams, written through ``output``."""

    def __init__(self, output: Output) -> None:
        self._output = output

    def gone(self, c: Conn, at: float, reason: StopReason) -> None:
        """A live socket of a stream is gone: wait for the client to come back."""
        s = c.stream
        if s is None or s.ended:
            return
        out = self._output
        if s.signaling is c:
            s.signaling = None
            s.sig_lost = (at, reason)
            for media in list(s.media.values()):
                out.abort(media, at, "the signaling connection was lost")
            s.media.clear()
            s.media_lost.clear()
            out.emit(
                s,
                rtms_interrupted_body(
                    product=s.spec.product,
                    instance_id=s.spec.meeting_uuid,
                    rtms_stream_id=s.info.rtms_stream_id,
                    event_ts=out.wall(at),
                ),
            )
            return
        key = next((k for k, media in s.media.items() if media is c), None)
        if key is None:
            return
        del s.media[key]
        s.media_lost[key] = (at, reason)
        out.event(s, at, EventType.MEDIA_CONNECTION_INTERRUPTED, extra={"media_type": int(key)})

    def expire(self, s: Stream, at: float, key: MediaType | None) -> None:
        """A window ran out: ``key``'s media reconnection, the signaling one, or the first
        connection's (``connect_window``)."""
        out = self._output
        if key is not None:
            reason = s.media_lost[key][1]
            out.note(None, at, f"{KIND_OF[key]} was not reconnected in time", s)
        elif s.sig_lost is not None:
            reason = s.sig_lost[1]
            out.note(None, at, "signaling was not reconnected in time", s)
        else:
            reason = StopReason.CONNECTION_TIMEOUT
            out.note(None, at, "no signaling connection in time", s)
        self.end_stream(s, at, reason)

    def end_stream(self, s: Stream, at: float, reason: StopReason | int) -> None:
        """End the stream as Zoom does: state updates, close frames, ``rtms_stopped``."""
        if s.ended:
            return
        out = self._output
        for c in s.conns():
            c.silent_until = None  # the last words always go out
        sig = s.signaling
        if sig is not None and sig.state is ConnState.OPEN:
            out.send(
                sig,
                m.StreamStateUpdate(
                    state=StreamState.TERMINATED, reason=reason, timestamp=out.wall(at)
                ),
                at,
            )
            out.send(
                sig,
                m.SessionStateUpdate(
                    state=SessionState.STOPPED,
                    stop_reason=reason,
                    timestamp=out.wall(at),
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
                out.close(c, at)
        s.signaling = None
        s.media.clear()
        out.note(None, at, f"stream ended, stop reason {int(reason)}", s)
        out.emit(
            s,
            rtms_stopped_body(
                product=s.spec.product,
                instance_id=s.spec.meeting_uuid,
                rtms_stream_id=s.info.rtms_stream_id,
                stop_reason=reason,
                event_ts=out.wall(at),
            ),
        )
