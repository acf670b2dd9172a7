"""The fake server's side of the signaling and media handshakes.

Checks a handshake request against the stream (identity, scopes, duplicates,
injected occurrence faults) and answers it, opening the socket or rejecting it.
The checks themselves are pure functions in :mod:`.checks`.
"""

from __future__ import annotations

import json
from typing import Any

from rtms_conformance import faults as f
from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import EventType, MediaType, SessionState, StatusCode

from .checks import Rejection, check_identity, confirm_media, decode_rejection, wire_status
from .output import Output
from .routes import media_urls
from .state import Conn, ConnState, Stream
from .types import ServerConfig

__all__ = ["DUPLICATE_SIGNAL_REASON", "Handshakes"]

DUPLICATE_SIGNAL_REASON = "duplicate signal request"


class Handshakes:
    """Handshake validation and answers, written through ``output``."""

    def __init__(self, config: ServerConfig, output: Output) -> None:
        self._config = config
        self._output = output

    def _occurrence_fault(self, s: Stream, role: SocketRole, n: int) -> f.Fault | None:
        """The occurrence fault that decides handshake number ``n`` on ``role`` sockets."""
        for fault in s.spec.faults:
            if isinstance(fault, f.RejectHandshake):
                hit = fault.role is role and fault.nth <= n < fault.nth + fault.count
            elif isinstance(fault, f.IgnoreHandshake):
                hit = fault.role is role and fault.nth == n
            elif isinstance(fault, f.DuplicateSignal):
                hit = role is SocketRole.SIGNALING and n <= fault.count
            else:
                hit = False
            if hit:
                return fault
        return None

    def _reject(
        self, c: Conn, at: float, rejection: Rejection | tuple[int, str], *, signaling: bool
    ) -> None:
        if isinstance(rejection, Rejection):
            status, reason = wire_status(rejection, self._config.status_table), rejection.reason
        else:
            status, reason = rejection
        reply: m.Message
        if signaling:
            reply = m.SignalingHandshakeResponse(status_code=status, reason=reason)
        else:
            reply = m.MediaHandshakeResponse(status_code=status, reason=reason)
        self._output.send(c, reply, at)
        self._output.close(c, at)

    def _handshake_fault(
        self, c: Conn, s: Stream, role: SocketRole, at: float, *, signaling: bool
    ) -> bool:
        """Count the handshake; apply an occurrence fault.  True when it decided the answer."""
        n = s.handshakes[role] = s.handshakes.get(role, 0) + 1
        fault = self._occurrence_fault(s, role, n)
        if fault is None:
            return False
        self._output.note(c, at, f"fault on handshake {n}: {type(fault).__name__}")
        if isinstance(fault, f.IgnoreHandshake):
            return True
        if isinstance(fault, f.RejectHandshake):
            self._reject(c, at, (fault.status, fault.reason), signaling=signaling)
        else:
            dup = Rejection(StatusCode.DUPLICATE_SIGNAL_REQUEST, DUPLICATE_SIGNAL_REASON)
            self._reject(c, at, dup, signaling=True)
        return True

    def _identity(
        self, s: Stream, msg: m.SignalingHandshakeRequest | m.MediaHandshakeRequest
    ) -> Rejection | None:
        rejection = check_identity(
            msg,
            instance_id=s.spec.meeting_uuid,
            rtms_stream_id=s.info.rtms_stream_id,
            client_id=self._config.client_id,
            client_secret=self._config.client_secret,
        )
        if rejection is None and s.ended:
            return Rejection(StatusCode.INVALID_RTMS_STREAM_ID, "the stream has ended")
        return rejection

    def _handshake_request(
        self,
        c: Conn,
        s: Stream,
        msg: m.Message | m.DecodeError,
        role: SocketRole,
        at: float,
        *,
        signaling: bool,
    ) -> m.SignalingHandshakeRequest | m.MediaHandshakeRequest | None:
        """The handshake request to check, or None when a bad message or a fault answered it."""
        expected: type[m.SignalingHandshakeRequest] | type[m.MediaHandshakeRequest]
        if signaling:
            wire_type, expected, name = 1, m.SignalingHandshakeRequest, "SIGNALING_HAND_SHAKE_REQ"
        else:
            wire_type, expected, name = 3, m.MediaHandshakeRequest, "DATA_HAND_SHAKE_REQ"
        if isinstance(msg, m.DecodeError) and msg.msg_type in (None, wire_type):
            if not self._handshake_fault(c, s, role, at, signaling=signaling):
                self._reject(c, at, decode_rejection(msg), signaling=signaling)
            return None
        if not isinstance(msg, expected):
            wrong = Rejection(StatusCode.INVALID_MESSAGE_TYPE, f"expected {name}")
            self._reject(c, at, wrong, signaling=signaling)
            return None
        if self._handshake_fault(c, s, role, at, signaling=signaling):
            return None
        return msg

    def signaling(self, c: Conn, s: Stream, msg: m.Message | m.DecodeError, at: float) -> None:
        """The first message on a signaling socket: open it, or reject it."""
        request = self._handshake_request(c, s, msg, SocketRole.SIGNALING, at, signaling=True)
        if not isinstance(request, m.SignalingHandshakeRequest):
            return
        rejection = self._identity(s, request)
        if rejection is None and s.signaling is not None:
            rejection = Rejection(StatusCode.DUPLICATE_SIGNAL_REQUEST, DUPLICATE_SIGNAL_REASON)
        if rejection is not None:
            self._reject(c, at, rejection, signaling=True)
            return
        c.state = ConnState.OPEN
        c.deadline = None
        c.ka_last = at
        s.signaling = c
        s.sig_lost = None
        s.subscribed = set()
        if not s.ever_connected:
            s.ever_connected = True
            s.buffer_data = True if request.buffer_data is None else request.buffer_data
        self._output.send(
            c,
            m.SignalingHandshakeResponse(
                status_code=0,
                reason="",
                media_urls=media_urls(self._config.base_url, s),
                datacenter_region=self._config.datacenter_region,
            ),
            at,
        )
        first = s.info.media_epoch_ms if s.buffer_data else self._output.wall(at)
        self._output.send(
            c, m.EventUpdate(event_type=EventType.FIRST_PACKET_TIMESTAMP, timestamp=first), at
        )
        if not s.session_started:
            s.session_started = True
            self._output.send(
                c,
                m.SessionStateUpdate(
                    state=SessionState.STARTED,
                    timestamp=self._output.wall(at),
                    rtms_session_id=s.info.rtms_session_id,
                ),
                at,
            )

    def media(
        self,
        c: Conn,
        s: Stream,
        msg: m.Message | m.DecodeError,
        data: str | bytes,
        at: float,
    ) -> None:
        """The first message on a media socket (``data`` as it came): open it, or reject it."""
        assert c.role is not None
        request = self._handshake_request(c, s, msg, c.role, at, signaling=False)
        if not isinstance(request, m.MediaHandshakeRequest):
            return
        rejection = self._identity(s, request)
        if rejection is None and s.signaling is None:
            rejection = Rejection(
                StatusCode.INTERNAL_EXCEPTION, "no signaling connection for this stream"
            )
        if rejection is not None:
            self._reject(c, at, rejection, signaling=False)
            return
        raw: Any = json.loads(data)
        confirmed = confirm_media(request, raw, url_type=c.url_type, scopes=s.spec.scopes)
        if isinstance(confirmed, Rejection):
            self._reject(c, at, confirmed, signaling=False)
            return
        duplicate = self._duplicate(s, c.url_type)
        if duplicate is not None:
            self._reject(c, at, duplicate, signaling=False)
            return
        carried, params = confirmed
        c.state = ConnState.OPEN
        c.deadline = None
        c.ka_last = at
        c.carried, c.params = carried, params
        s.media[c.url_type] = c
        if c.url_type == MediaType.ALL:
            s.media_lost.clear()
        else:
            s.media_lost.pop(c.url_type, None)
        self._output.send(
            c,
            m.MediaHandshakeResponse(
                status_code=0, reason="", media_params=params, payload_encrypted=False
            ),
            at,
        )

    def _duplicate(self, s: Stream, key: MediaType) -> Rejection | None:
        if MediaType.ALL in s.media and key != MediaType.ALL:
            return Rejection(
                StatusCode.MEDIA_DATA_ALL_CONNECTION_EXIST, "an all-media connection exists"
            )
        if key in s.media or (key == MediaType.ALL and s.media):
            return Rejection(
                StatusCode.DUPLICATE_MEDIA_DATA_CONNECTION, "duplicate media data connection"
            )
        return None
