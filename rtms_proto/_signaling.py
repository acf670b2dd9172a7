"""The signaling socket: authenticate the stream, learn the media URLs, and
carry the commands (client ready, event and video subscriptions, state
queries, stream close)."""

from __future__ import annotations

from collections.abc import Iterable

from . import events as ev
from . import messages as m
from ._auth import Credentials
from ._config import ConnectionOptions, StreamIdentity
from ._connection import Connection
from ._errors import InvalidConfig
from ._urls import ServerUrl
from .actions import SocketId
from .enums import EventType, MessageType

__all__ = ["SignalingConnection"]


class SignalingConnection(Connection):
    """One signaling WebSocket (msg 1/2 handshake, then commands).

    ``buffer_data`` is sent only when set: Zoom's default (``True``) keeps the
    audio captured before we connected and delivers it first.
    """

    _response_type = MessageType.SIGNALING_HAND_SHAKE_RESP

    def __init__(
        self,
        *,
        sock: SocketId,
        url: ServerUrl | str,
        stream: StreamIdentity,
        credentials: Credentials,
        options: ConnectionOptions | None = None,
        buffer_data: bool | None = None,
        sequence: int = 1,
    ) -> None:
        super().__init__(
            sock=sock, url=url, stream=stream, credentials=credentials, options=options
        )
        self._buffer_data = buffer_data
        self._sequence = sequence
        self.media_urls: dict[str, str] = {}

    def _handshake_request(self) -> m.Message:
        return m.SignalingHandshakeRequest(
            instance_id=self.stream.instance_id,
            rtms_stream_id=self.stream.rtms_stream_id,
            signature=self._signature(),
            id_keys=self.stream.id_keys,
            protocol_version=1,
            sequence=self._sequence,
            buffer_data=self._buffer_data,
            client_agent=self.options.client_agent,
        )

    def _on_handshake_response(self, msg: m.Message, now: float) -> None:
        assert isinstance(msg, m.SignalingHandshakeResponse)
        if self._reject(msg.status_code, msg.reason, "signaling handshake"):
            return
        self.media_urls = dict(msg.media_urls)
        self._accept_handshake(
            ev.SignalingConnected(
                sock=self.sock, media_urls=msg.media_urls, region=msg.datacenter_region
            ),
            now,
        )

    # --- commands (legal while open) -----------------------------------------

    def send_client_ready(self) -> None:
        """CLIENT_READY_ACK (7): a media handshake finished, media may flow."""
        self._require_open()
        self._send(m.ClientReady(rtms_stream_id=self.stream.rtms_stream_id))

    def subscribe_events(
        self, event_types: Iterable[EventType | int], subscribe: bool = True
    ) -> None:
        """EVENT_SUBSCRIPTION (5): opt in to (or out of) in-meeting events."""
        types = tuple(event_types)
        for t in types:
            if isinstance(t, bool) or not isinstance(t, int) or t < 0:
                raise InvalidConfig(f"event types must be non-negative integers, not {t!r}")
        items = tuple(
            m.EventSubscriptionItem(event_type=int(t), subscribe=subscribe) for t in types
        )
        if not items:
            raise InvalidConfig("subscribe_events needs at least one event type")
        self._require_open()
        self._send(m.EventSubscription(events=items))

    def request_session_state(self, rtms_session_id: str) -> None:
        """SESSION_STATE_REQ (10); the answer arrives as SessionStateReported."""
        if not rtms_session_id:
            raise InvalidConfig("rtms_session_id must not be empty")
        self._require_open()
        self._send(m.SessionStateRequest(rtms_session_id=rtms_session_id))

    def request_stream_state(self) -> None:
        """STREAM_STATE_REQ (19); the answer arrives as StreamStateReported."""
        self._require_open()
        self._send(m.StreamStateRequest(rtms_stream_id=self.stream.rtms_stream_id))

    def request_stream_close(self) -> None:
        """STREAM_CLOSE_REQ (21): ask Zoom to end the stream gracefully."""
        self._require_open()
        self._send(m.StreamCloseRequest(rtms_stream_id=self.stream.rtms_stream_id))

    def subscribe_video(
        self, user_id: int, subscribe: bool = True, timestamp: int | None = None
    ) -> None:
        """VIDEO_SUBSCRIPTION_REQ (28): pick one participant's camera (data_opt 4)."""
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 0:
            raise InvalidConfig(f"user_id must be a non-negative integer, not {user_id!r}")
        self._require_open()
        self._send(
            m.VideoSubscriptionRequest(user_id=user_id, subscribe=subscribe, timestamp=timestamp)
        )
