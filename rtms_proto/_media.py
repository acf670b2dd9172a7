"""A media socket: one media type (split layout) or all of them (unified)."""

from __future__ import annotations

from . import events as ev
from . import messages as m
from ._auth import Credentials
from ._config import ConnectionOptions, StreamIdentity
from ._connection import Connection
from ._errors import InvalidConfig
from ._params import MediaParams
from ._urls import ServerUrl
from .actions import SocketId
from .enums import MediaType, MessageType, media_name

__all__ = ["MediaConnection"]

_SINGLE_TYPES = frozenset(
    {
        MediaType.AUDIO,
        MediaType.VIDEO,
        MediaType.DESKSHARE,
        MediaType.TRANSCRIPT,
        MediaType.CHAT,
        MediaType.ALL,
    }
)


class MediaConnection(Connection):
    """One media WebSocket (msg 3/4 handshake, then media data).

    ``params`` is the whole requested parameter set; only the sub-objects of
    ``media_type`` are sent (``ALL`` sends every one), as Zoom's clients do.
    The confirmed parameters of the answer are reported in
    :class:`~rtms_proto.events.MediaConnected` and kept in :attr:`confirmed`.

    A server that sends media without ever answering the handshake (Zoom's
    mock server never sends msg 4) would otherwise time the socket out and
    lose media on every reconnect: the first media message accepts the socket
    with the requested parameters, reported with ``confirmed=False`` (and
    :attr:`confirmed` stays ``None``); the keep-alive rule applies from then on.
    """

    _response_type = MessageType.DATA_HAND_SHAKE_RESP

    def __init__(
        self,
        *,
        sock: SocketId,
        url: ServerUrl | str,
        stream: StreamIdentity,
        credentials: Credentials,
        media_type: MediaType,
        params: MediaParams | None = None,
        options: ConnectionOptions | None = None,
        sequence: int = 1,
    ) -> None:
        if media_type not in _SINGLE_TYPES:
            raise InvalidConfig(f"a media socket carries one media type or ALL, not {media_type!r}")
        params = params if params is not None else MediaParams()
        params.validate()
        super().__init__(
            sock=sock, url=url, stream=stream, credentials=credentials, options=options
        )
        self.media_type = MediaType(media_type)  # a plain int would break media_name()
        requested = params.for_types(media_type)
        # Nothing to ask for: omit media_params and let the server fill defaults.
        self.requested = requested if requested.present_types() else None
        self.confirmed: MediaParams | None = None
        self._sequence = sequence

    def _handshake_request(self) -> m.Message:
        return m.MediaHandshakeRequest(
            instance_id=self.stream.instance_id,
            rtms_stream_id=self.stream.rtms_stream_id,
            signature=self._signature(),
            id_keys=self.stream.id_keys,
            media_type=self.media_type,
            media_params=self.requested,
            protocol_version=1,
            sequence=self._sequence,
            payload_encryption=False,
            client_agent=self.options.client_agent,
        )

    def _on_handshake_response(self, msg: m.Message, now: float) -> None:
        assert isinstance(msg, m.MediaHandshakeResponse)
        if self._reject(
            msg.status_code, msg.reason, f"{media_name(self.media_type)} media handshake"
        ):
            return
        confirmed = msg.media_params or self.requested or MediaParams()
        self.confirmed = confirmed
        self._accept_handshake(
            ev.MediaConnected(sock=self.sock, media_type=self.media_type, params=confirmed),
            now,
        )

    def _media_before_handshake(self, now: float) -> None:
        self._accept_handshake(
            ev.MediaConnected(
                sock=self.sock,
                media_type=self.media_type,
                params=self.requested or MediaParams(),
                confirmed=False,
            ),
            now,
        )
