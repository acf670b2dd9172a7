"""The fake server's answers to signaling commands after the handshake.

CLIENT_READY_ACK, event subscriptions, session and stream state requests,
stream close and video subscription requests.
"""

from __future__ import annotations

from rtms_proto import messages as m
from rtms_proto.enums import EventType, MediaType, SessionState, StatusCode, StopReason, StreamState

from .checks import Rejection, wire_status
from .endings import Endings
from .media import Media
from .output import Output
from .state import Conn, Stream
from .types import ServerConfig

__all__ = ["Signaling"]

_EVENT_TYPES = frozenset(int(e) for e in EventType if e != EventType.UNDEFINED)


class Signaling:
    """Signaling commands, written through ``output``; CLIENT_READY_ACK starts ``media``,
    a stream close request ends the stream through ``endings``."""

    def __init__(
        self, config: ServerConfig, output: Output, media: Media, endings: Endings
    ) -> None:
        self._config = config
        self._output = output
        self._media = media
        self._endings = endings

    def command(self, c: Conn, s: Stream, msg: m.Message | m.DecodeError, at: float) -> None:
        """A message on the stream's open signaling socket (keep-alives aside)."""
        if isinstance(msg, m.DecodeError):
            self._output.note(c, at, f"undecodable message: {msg}")
        elif isinstance(msg, m.ClientReady):
            if msg.rtms_stream_id != s.info.rtms_stream_id:
                self._output.note(c, at, "CLIENT_READY_ACK names another rtms_stream_id")
            self._media.release(s, at)
        elif isinstance(msg, m.EventSubscription):
            self._subscribe(c, s, msg, at)
        elif isinstance(msg, m.SessionStateRequest):
            known = msg.rtms_session_id == s.info.rtms_session_id
            state = SessionState.INACTIVE
            if known:
                state = SessionState.PAUSED if s.paused else SessionState.STARTED
            self._output.send(
                c,
                m.SessionStateResponse(
                    rtms_session_id=msg.rtms_session_id,
                    state=state,
                    timestamp=self._output.wall(at),
                ),
                at,
            )
        elif isinstance(msg, m.StreamStateRequest):
            self._output.send(
                c,
                m.StreamStateResponse(
                    state=self._stream_state(s),
                    rtms_stream_id=s.info.rtms_stream_id,
                    timestamp=self._output.wall(at),
                ),
                at,
            )
        elif isinstance(msg, m.StreamCloseRequest):
            self._stream_close(c, s, msg, at)
        elif isinstance(msg, m.VideoSubscriptionRequest):
            self._video_subscription(c, s, msg, at)
        else:
            self._output.note(c, at, f"ignored msg_type {int(msg.msg_type)} on signaling")

    def _stream_state(self, s: Stream) -> StreamState:
        if s.paused:
            return StreamState.PAUSED
        return StreamState.ACTIVE if s.active_sent else StreamState.INACTIVE

    def _subscribe(self, c: Conn, s: Stream, msg: m.EventSubscription, at: float) -> None:
        unknown = [i.event_type for i in msg.events if i.event_type not in _EVENT_TYPES]
        if unknown:
            self._output.note(c, at, f"subscription names unknown event types {unknown}")
        for item in msg.events:
            if not item.subscribe:
                s.subscribed.discard(item.event_type)
                continue
            if item.event_type in s.subscribed:
                continue
            s.subscribed.add(item.event_type)
            # The roster (and who has video on) arrives as join/video-on events
            # when the app subscribes (docs/protocol.md §3.6, ARLO's observation).
            if item.event_type == EventType.PARTICIPANT_JOIN and s.roster:
                people = tuple(m.Participant(user_id=u, user_name=n) for u, n in s.roster.items())
                self._output.event(s, at, EventType.PARTICIPANT_JOIN, participants=people)
            elif item.event_type == EventType.PARTICIPANT_VIDEO_ON and s.video_on:
                ids = tuple(m.Participant(user_id=u) for u in sorted(s.video_on))
                self._output.event(s, at, EventType.PARTICIPANT_VIDEO_ON, participants=ids)

    def _stream_close(self, c: Conn, s: Stream, msg: m.StreamCloseRequest, at: float) -> None:
        if msg.rtms_stream_id != s.info.rtms_stream_id:
            rejection = Rejection(StatusCode.INVALID_RTMS_STREAM_ID, "unknown rtms_stream_id")
            self._output.send(
                c,
                m.StreamCloseResponse(
                    rtms_stream_id=msg.rtms_stream_id,
                    status_code=wire_status(rejection, self._config.status_table),
                    reason=rejection.reason,
                    timestamp=self._output.wall(at),
                ),
                at,
            )
            return
        self._output.send(
            c,
            m.StreamCloseResponse(
                rtms_stream_id=s.info.rtms_stream_id,
                status_code=0,
                reason="OK",
                timestamp=self._output.wall(at),
            ),
            at,
        )
        self._endings.end_stream(s, at, StopReason.RECEIVER_REQUEST_CLOSE)

    def _video_subscription(
        self, c: Conn, s: Stream, msg: m.VideoSubscriptionRequest, at: float
    ) -> None:
        status: Rejection | None = None
        if not s.spec.scopes & MediaType.VIDEO:
            status = Rejection(StatusCode.MEDIA_TYPE_VIDEO_NOT_SUPPORT, "video is not in scope")
        elif msg.subscribe:
            if msg.user_id not in s.roster:
                status = Rejection(StatusCode.INVALID_PAYLOAD, "unknown user_id")
            elif s.video_sub == msg.user_id:
                status = Rejection(
                    StatusCode.DUPLICATE_VIDEO_SUBSCRIPTION, "duplicate video subscription"
                )
            else:
                s.video_sub = msg.user_id
                for conn in s.media.values():
                    conn.video_since_idr = 0
        elif s.video_sub == msg.user_id:
            s.video_sub = None
        self._output.send(
            c,
            m.VideoSubscriptionResponse(
                user_id=msg.user_id,
                status_code=0 if status is None else wire_status(status, self._config.status_table),
                reason="OK" if status is None else status.reason,
                timestamp=self._output.wall(at),
                subscribe=msg.subscribe,
            ),
            at,
        )
