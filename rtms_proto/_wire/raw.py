"""Messages kept raw: the metadata types (msg 23-27) and any ``msg_type`` not known here.

Zoom publishes no fields for the first and adds the second over time; a client
must carry both through unchanged (§3.15, §10 rule 1), so each is the whole
frozen JSON object, ``msg_type`` included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from rtms_proto._errors import InvalidConfig
from rtms_proto._json import MAX_JSON_DEPTH, JsonValue, freeze, frozen_copy
from rtms_proto.enums import MessageType, to_enum

__all__ = ["METADATA_TYPES", "MetadataMessage", "UnknownMessage"]

METADATA_TYPES = tuple(
    MessageType(n) for n in range(MessageType.META_DATA_AUDIO, MessageType.META_DATA_CHAT + 1)
)
"""The META_DATA_* message types, which share :class:`MetadataMessage`."""

_EMPTY: Mapping[str, JsonValue] = MappingProxyType({})


def _empty() -> Mapping[str, JsonValue]:
    return _EMPTY


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MetadataMessage:
    """META_DATA_* (23-27): numbers are public, payloads are not (§3.15); kept raw."""

    msg_type: int
    raw: Mapping[str, JsonValue] = dataclasses.field(default_factory=_empty)

    def __post_init__(self) -> None:
        if not MessageType.META_DATA_AUDIO <= self.msg_type <= MessageType.META_DATA_CHAT:
            raise InvalidConfig(f"msg_type {self.msg_type} is not a META_DATA_* type (23-27)")
        _own_raw(self)

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> MetadataMessage:
        return cls(msg_type=o["msg_type"], raw=freeze(o, MAX_JSON_DEPTH))

    def _to_wire(self) -> dict[str, object]:
        return _raw_to_wire(self)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage:
    """A ``msg_type`` this codec does not know: kept raw, not an error (§10 rule 1)."""

    msg_type: int
    raw: Mapping[str, JsonValue] = dataclasses.field(default_factory=_empty)

    def __post_init__(self) -> None:
        known = to_enum(MessageType, self.msg_type)
        if isinstance(known, MessageType) and known is not MessageType.UNDEFINED:
            raise InvalidConfig(f"msg_type {self.msg_type} is known; use its message class")
        _own_raw(self)

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> UnknownMessage:
        return cls(msg_type=o["msg_type"], raw=freeze(o, MAX_JSON_DEPTH))

    def _to_wire(self) -> dict[str, object]:
        return _raw_to_wire(self)


def _own_raw(msg: MetadataMessage | UnknownMessage) -> None:
    """Make ``raw`` the whole frozen message, ``msg_type`` included, as decoding gives it."""
    raw = msg.raw
    if type(raw) is not MappingProxyType or raw.get("msg_type") != msg.msg_type:
        object.__setattr__(msg, "raw", frozen_copy({**raw, "msg_type": msg.msg_type}))


def _raw_to_wire(m: MetadataMessage | UnknownMessage) -> dict[str, object]:
    wire: dict[str, object] = dict(m.raw)
    wire["msg_type"] = m.msg_type
    return wire
