"""The handshakes (msg 1-4) and the ready signal that follows each media one (msg 7).

These carry the instance id under one key per product and the signature, so
this is where the id keys are checked and kept in canonical order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from rtms_proto._errors import InvalidConfig
from rtms_proto._fields import (
    WireFieldError,
    alias,
    opt_bool,
    opt_int,
    opt_obj,
    opt_str,
    put,
    reason_text,
    req_int,
    req_str,
    wrong,
)
from rtms_proto._params import MediaParams
from rtms_proto.enums import MediaType, MessageType

__all__ = [
    "INSTANCE_ID_KEYS",
    "ClientReady",
    "MediaHandshakeRequest",
    "MediaHandshakeResponse",
    "SignalingHandshakeRequest",
    "SignalingHandshakeResponse",
]

INSTANCE_ID_KEYS = ("meeting_uuid", "webinar_uuid", "session_id", "engagement_id", "call_id")
"""Handshake keys that carry the instance id, one per product (§3.1), in canonical order."""

_EMPTY_URLS: Mapping[str, str] = MappingProxyType({})


def _no_urls() -> Mapping[str, str]:
    return _EMPTY_URLS


def _identity(obj: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """The instance id and the keys that carried it (§3.1: one key per product, or several)."""
    instance_id: str | None = None
    keys: list[str] = []
    for key in INSTANCE_ID_KEYS:
        value = obj.get(key)
        if value is None:
            continue
        if type(value) is not str:
            raise wrong(obj, key, "", "a string")
        if instance_id is None:
            instance_id = value
        elif value != instance_id:
            raise WireFieldError(key, f"differs from {keys[0]}")
        keys.append(key)
    if instance_id is None:
        raise WireFieldError(
            "meeting_uuid", "missing (no instance id key: " + ", ".join(INSTANCE_ID_KEYS) + ")"
        )
    return instance_id, tuple(keys)


def _check_id_keys(msg: SignalingHandshakeRequest | MediaHandshakeRequest) -> None:
    """Refuse id keys that could not round-trip; put them in canonical order."""
    keys = msg.id_keys
    if not keys:
        raise InvalidConfig("id_keys must name at least one instance id key")
    for key in keys:
        if key not in INSTANCE_ID_KEYS:
            raise InvalidConfig(f"id_keys: {key!r} is not one of {', '.join(INSTANCE_ID_KEYS)}")
    if len(set(keys)) != len(keys):
        raise InvalidConfig("id_keys must not repeat a key")
    object.__setattr__(msg, "id_keys", tuple(sorted(keys, key=INSTANCE_ID_KEYS.index)))


def _identity_to_wire(m: SignalingHandshakeRequest | MediaHandshakeRequest) -> dict[str, object]:
    wire: dict[str, object] = {"msg_type": int(m.msg_type)}
    for key in m.id_keys:
        wire[key] = m.instance_id
    wire["rtms_stream_id"] = m.rtms_stream_id
    wire["signature"] = m.signature
    put(wire, "protocol_version", m.protocol_version)
    put(wire, "sequence", m.sequence)
    put(wire, "rtms_client_agent", m.client_agent)
    return wire


def _params(o: dict[str, Any]) -> MediaParams | None:
    found = opt_obj(o, "media_params", "")
    return None if found is None else MediaParams.from_wire(found)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SignalingHandshakeRequest:
    """SIGNALING_HAND_SHAKE_REQ (1): authenticate the signaling socket (§3.1, §13).

    ``instance_id`` is written under every key of ``id_keys`` (the Video SDK
    sample sends both ``meeting_uuid`` and ``session_id``). None fields are omitted.
    """

    msg_type: ClassVar[MessageType] = MessageType.SIGNALING_HAND_SHAKE_REQ
    instance_id: str
    rtms_stream_id: str
    signature: str = dataclasses.field(repr=False)
    id_keys: tuple[str, ...] = ("meeting_uuid",)
    protocol_version: int | None = 1
    sequence: int | None = None
    buffer_data: bool | None = None
    client_agent: str | None = None

    def __post_init__(self) -> None:
        _check_id_keys(self)

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> SignalingHandshakeRequest:
        instance_id, keys = _identity(o)
        return cls(
            instance_id=instance_id,
            rtms_stream_id=req_str(o, "rtms_stream_id", ""),
            signature=req_str(o, "signature", ""),
            id_keys=keys,
            protocol_version=opt_int(o, "protocol_version", ""),
            sequence=opt_int(o, "sequence", ""),
            buffer_data=opt_bool(o, "buffer_data", ""),
            client_agent=opt_str(o, "rtms_client_agent", ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire = _identity_to_wire(self)
        put(wire, "buffer_data", self.buffer_data)
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SignalingHandshakeResponse:
    """SIGNALING_HAND_SHAKE_RESP (2): the result and the media URLs (§3.2).

    ``status_code`` is None when absent: Zoom's mock omits it on failures.
    """

    msg_type: ClassVar[MessageType] = MessageType.SIGNALING_HAND_SHAKE_RESP
    status_code: int | None
    reason: str = ""
    media_urls: Mapping[str, str] = dataclasses.field(default_factory=_no_urls)
    protocol_version: int | None = 1
    sequence: int | None = 0
    datacenter_region: str | None = None

    def __post_init__(self) -> None:
        if type(self.media_urls) is not MappingProxyType:
            object.__setattr__(self, "media_urls", MappingProxyType(dict(self.media_urls)))

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> SignalingHandshakeResponse:
        urls: Mapping[str, str] = _EMPTY_URLS
        region = None
        server = opt_obj(o, "media_server", "")
        if server is not None:
            region = opt_str(server, "datacenter_region", "media_server.")
            found = opt_obj(server, "server_urls", "media_server.")
            if found is not None:
                for key in found:
                    opt_str(found, key, "media_server.server_urls.")
                urls = MappingProxyType({k: v for k, v in found.items() if v is not None})
        return cls(
            status_code=opt_int(o, "status_code", ""),
            reason=reason_text(o),
            media_urls=urls,
            protocol_version=opt_int(o, "protocol_version", ""),
            sequence=opt_int(o, "sequence", ""),
            datacenter_region=region,
        )

    def _to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"msg_type": int(self.msg_type)}
        put(wire, "protocol_version", self.protocol_version)
        put(wire, "sequence", self.sequence)
        put(wire, "status_code", self.status_code)
        wire["reason"] = self.reason
        if self.media_urls or self.datacenter_region is not None:
            server: dict[str, object] = {"server_urls": dict(self.media_urls)}
            put(server, "datacenter_region", self.datacenter_region)
            wire["media_server"] = server
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MediaHandshakeRequest:
    """DATA_HAND_SHAKE_REQ (3): authenticate a media socket and choose its media (§3.3).

    ``media_params`` None is omitted on the wire (and ``null`` decodes to None).
    """

    msg_type: ClassVar[MessageType] = MessageType.DATA_HAND_SHAKE_REQ
    instance_id: str
    rtms_stream_id: str
    signature: str = dataclasses.field(repr=False)
    media_type: MediaType
    media_params: MediaParams | None = None
    id_keys: tuple[str, ...] = ("meeting_uuid",)
    protocol_version: int | None = 1
    sequence: int | None = None
    payload_encryption: bool | None = None
    client_agent: str | None = None

    def __post_init__(self) -> None:
        _check_id_keys(self)

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> MediaHandshakeRequest:
        instance_id, keys = _identity(o)
        media_type = req_int(o, "media_type", "")
        if media_type < 0:
            raise WireFieldError("media_type", "negative bitmask")
        return cls(
            instance_id=instance_id,
            rtms_stream_id=req_str(o, "rtms_stream_id", ""),
            signature=req_str(o, "signature", ""),
            media_type=MediaType(media_type),
            media_params=_params(o),
            id_keys=keys,
            protocol_version=opt_int(o, "protocol_version", ""),
            sequence=opt_int(o, "sequence", ""),
            payload_encryption=opt_bool(o, "payload_encryption", ""),
            client_agent=opt_str(o, "rtms_client_agent", ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire = _identity_to_wire(self)
        wire["media_type"] = int(self.media_type)
        if self.media_params is not None:
            wire["media_params"] = self.media_params.to_wire()
        put(wire, "payload_encryption", self.payload_encryption)
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MediaHandshakeResponse:
    """DATA_HAND_SHAKE_RESP (4): the result and the confirmed parameters (§3.4)."""

    msg_type: ClassVar[MessageType] = MessageType.DATA_HAND_SHAKE_RESP
    status_code: int | None
    reason: str = ""
    media_params: MediaParams | None = None
    protocol_version: int | None = 1
    sequence: int | None = 0
    payload_encrypted: bool | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> MediaHandshakeResponse:
        return cls(
            status_code=opt_int(o, "status_code", ""),
            reason=reason_text(o),
            media_params=_params(o),
            protocol_version=opt_int(o, "protocol_version", ""),
            sequence=opt_int(o, "sequence", ""),
            payload_encrypted=opt_bool(o, alias(o, "payload_encrypted", "payload_encryption"), ""),
        )

    def _to_wire(self) -> dict[str, object]:
        wire: dict[str, object] = {"msg_type": int(self.msg_type)}
        put(wire, "protocol_version", self.protocol_version)
        put(wire, "sequence", self.sequence)
        put(wire, "status_code", self.status_code)
        wire["reason"] = self.reason
        put(wire, "payload_encrypted", self.payload_encrypted)
        if self.media_params is not None:
            wire["media_params"] = self.media_params.to_wire()
        return wire


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClientReady:
    """CLIENT_READY_ACK (7): sent on signaling after each successful media handshake (§3.7)."""

    msg_type: ClassVar[MessageType] = MessageType.CLIENT_READY_ACK
    rtms_stream_id: str

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> ClientReady:
        return cls(rtms_stream_id=req_str(o, "rtms_stream_id", ""))

    def _to_wire(self) -> dict[str, object]:
        return {"msg_type": int(self.msg_type), "rtms_stream_id": self.rtms_stream_id}
