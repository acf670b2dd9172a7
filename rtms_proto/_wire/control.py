"""Stream and session control: states, keep-alives, close and video subscription.

Msg 8-13, 19-22, 28 and 29: small messages of flat fields, requests and the
answers to them.  Stop reasons may arrive as names (Zoom's mock server); an
unknown name is kept as text and written back as text.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from rtms_proto._fields import (
    alias,
    opt_bool,
    opt_int,
    opt_str,
    put,
    read_stop_reason,
    reason_text,
    req_bool,
    req_int,
    req_str,
    req_user_id,
    wire_value,
)
from rtms_proto.enums import MessageType, SessionState, StopReason, StreamState, to_enum

__all__ = [
    "KeepAliveRequest",
    "KeepAliveResponse",
    "SessionStateRequest",
    "SessionStateResponse",
    "SessionStateUpdate",
    "StreamCloseRequest",
    "StreamCloseResponse",
    "StreamStateRequest",
    "StreamStateResponse",
    "StreamStateUpdate",
    "VideoSubscriptionRequest",
    "VideoSubscriptionResponse",
]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamStateUpdate:
    """STREAM_STATE_UPDATE (8); ``reason`` may be a name string from Zoom's mock (§3.8)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_STATE_UPDATE
    state: StreamState | int
    reason: StopReason | int | str | None = None
    timestamp: int | None = None
    rtms_stream_id: str | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> StreamStateUpdate:
        return cls(
            state=to_enum(StreamState, req_int(o, "state", "")),
            reason=read_stop_reason(o, "reason", ""),
            timestamp=opt_int(o, "timestamp", ""),
            rtms_stream_id=opt_str(o, "rtms_stream_id", ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"msg_type": int(self.msg_type), "state": int(self.state)}
        if self.reason is not None:
            wire["reason"] = wire_value(self.reason)
        put(wire, "timestamp", self.timestamp)
        put(wire, "rtms_stream_id", self.rtms_stream_id)
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateUpdate:
    """SESSION_STATE_UPDATE (9); also read from ``reason``/``session_id`` (§3.9, §12.12)."""

    msg_type: ClassVar[MessageType] = MessageType.SESSION_STATE_UPDATE
    state: SessionState | int
    stop_reason: StopReason | int | str | None = None
    timestamp: int | None = None
    rtms_session_id: str | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> SessionStateUpdate:
        return cls(
            state=to_enum(SessionState, req_int(o, "state", "")),
            stop_reason=read_stop_reason(o, alias(o, "stop_reason", "reason"), ""),
            timestamp=opt_int(o, "timestamp", ""),
            rtms_session_id=opt_str(o, alias(o, "rtms_session_id", "session_id"), ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"msg_type": int(self.msg_type), "state": int(self.state)}
        if self.stop_reason is not None:
            wire["stop_reason"] = wire_value(self.stop_reason)
        put(wire, "timestamp", self.timestamp)
        put(wire, "rtms_session_id", self.rtms_session_id)
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateRequest:
    """SESSION_STATE_REQ (10) (§3.10)."""

    msg_type: ClassVar[MessageType] = MessageType.SESSION_STATE_REQ
    rtms_session_id: str

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> SessionStateRequest:
        return cls(rtms_session_id=req_str(o, "rtms_session_id", ""))

    def _to_wire(self) -> dict[str, object]:
        return {"msg_type": int(self.msg_type), "rtms_session_id": self.rtms_session_id}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionStateResponse:
    """SESSION_STATE_RESP (11) (§3.10)."""

    msg_type: ClassVar[MessageType] = MessageType.SESSION_STATE_RESP
    rtms_session_id: str | None
    state: SessionState | int
    timestamp: int | None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> SessionStateResponse:
        return cls(
            rtms_session_id=opt_str(o, "rtms_session_id", ""),
            state=to_enum(SessionState, req_int(o, "state", "")),
            timestamp=opt_int(o, "timestamp", ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"msg_type": int(self.msg_type)}
        put(wire, "rtms_session_id", self.rtms_session_id)
        wire["state"] = int(self.state)
        put(wire, "timestamp", self.timestamp)
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KeepAliveRequest:
    """KEEP_ALIVE_REQ (12): the reply must echo both values (§3.11, §13)."""

    msg_type: ClassVar[MessageType] = MessageType.KEEP_ALIVE_REQ
    timestamp: int | None = None
    sequence: int | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> KeepAliveRequest:
        return cls(timestamp=opt_int(o, "timestamp", ""), sequence=opt_int(o, "sequence", ""))

    def _to_wire(self) -> dict[str, object]:
        return _keep_alive_to_wire(self)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class KeepAliveResponse:
    """KEEP_ALIVE_RESP (13) (§3.11)."""

    msg_type: ClassVar[MessageType] = MessageType.KEEP_ALIVE_RESP
    timestamp: int | None = None
    sequence: int | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> KeepAliveResponse:
        return cls(timestamp=opt_int(o, "timestamp", ""), sequence=opt_int(o, "sequence", ""))

    def _to_wire(self) -> dict[str, object]:
        return _keep_alive_to_wire(self)


def _keep_alive_to_wire(m: KeepAliveRequest | KeepAliveResponse) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type)}
    put(wire, "timestamp", m.timestamp)
    put(wire, "sequence", m.sequence)
    return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamStateRequest:
    """STREAM_STATE_REQ (19) (§3.12)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_STATE_REQ
    rtms_stream_id: str

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> StreamStateRequest:
        return cls(rtms_stream_id=req_str(o, "rtms_stream_id", ""))

    def _to_wire(self) -> dict[str, object]:
        return {"msg_type": int(self.msg_type), "rtms_stream_id": self.rtms_stream_id}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamStateResponse:
    """STREAM_STATE_RESP (20); DOC's example timestamp is in seconds, kept as sent (§3.12)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_STATE_RESP
    state: StreamState | int
    rtms_stream_id: str | None = None
    timestamp: int | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> StreamStateResponse:
        return cls(
            state=to_enum(StreamState, req_int(o, "state", "")),
            rtms_stream_id=opt_str(o, "rtms_stream_id", ""),
            timestamp=opt_int(o, "timestamp", ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"msg_type": int(self.msg_type), "state": int(self.state)}
        put(wire, "rtms_stream_id", self.rtms_stream_id)
        put(wire, "timestamp", self.timestamp)
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamCloseRequest:
    """STREAM_CLOSE_REQ (21): ask Zoom to end the stream gracefully (§3.13)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_CLOSE_REQ
    rtms_stream_id: str

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> StreamCloseRequest:
        return cls(rtms_stream_id=req_str(o, "rtms_stream_id", ""))

    def _to_wire(self) -> dict[str, object]:
        return {"msg_type": int(self.msg_type), "rtms_stream_id": self.rtms_stream_id}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamCloseResponse:
    """STREAM_CLOSE_RESP (22) (§3.13)."""

    msg_type: ClassVar[MessageType] = MessageType.STREAM_CLOSE_RESP
    rtms_stream_id: str | None = None
    status_code: int | None = None
    reason: str = ""
    timestamp: int | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> StreamCloseResponse:
        return cls(
            rtms_stream_id=opt_str(o, "rtms_stream_id", ""),
            status_code=opt_int(o, "status_code", ""),
            reason=reason_text(o),
            timestamp=opt_int(o, "timestamp", ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"msg_type": int(self.msg_type)}
        put(wire, "rtms_stream_id", self.rtms_stream_id)
        put(wire, "status_code", self.status_code)
        wire["reason"] = self.reason
        put(wire, "timestamp", self.timestamp)
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VideoSubscriptionRequest:
    """VIDEO_SUBSCRIPTION_REQ (28): pick one participant's camera (§3.14)."""

    msg_type: ClassVar[MessageType] = MessageType.VIDEO_SUBSCRIPTION_REQ
    user_id: int
    subscribe: bool
    timestamp: int | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> VideoSubscriptionRequest:
        return cls(
            user_id=req_user_id(o, "user_id", ""),
            subscribe=req_bool(o, "subscribe", ""),
            timestamp=opt_int(o, "timestamp", ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {
            "msg_type": int(self.msg_type),
            "user_id": self.user_id,
            "subscribe": self.subscribe,
        }
        put(wire, "timestamp", self.timestamp)
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VideoSubscriptionResponse:
    """VIDEO_SUBSCRIPTION_RESP (29); ``subscribe`` is an optional echo (§3.14)."""

    msg_type: ClassVar[MessageType] = MessageType.VIDEO_SUBSCRIPTION_RESP
    user_id: int
    status_code: int | None = None
    reason: str = ""
    timestamp: int | None = None
    subscribe: bool | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> VideoSubscriptionResponse:
        return cls(
            user_id=req_user_id(o, "user_id", ""),
            status_code=opt_int(o, "status_code", ""),
            reason=reason_text(o),
            timestamp=opt_int(o, "timestamp", ""),
            subscribe=opt_bool(o, "subscribe", ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"msg_type": int(self.msg_type), "user_id": self.user_id}
        put(wire, "status_code", self.status_code)
        wire["reason"] = self.reason
        put(wire, "timestamp", self.timestamp)
        put(wire, "subscribe", self.subscribe)
        return wire
