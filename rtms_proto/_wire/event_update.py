"""In-meeting events: the subscription (msg 5) and the updates it opts into (msg 6).

Events are the least documented part of the protocol, so an update keeps its
whole ``event`` object (``raw``) beside the fields read from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from rtms_proto._fields import (
    WireFieldError,
    alias,
    obj_items,
    opt_int,
    opt_list,
    opt_obj,
    opt_str,
    opt_user_id,
    put,
    req_bool,
    req_int,
    req_obj,
    req_user_id,
    wrong,
)
from rtms_proto._json import MAX_JSON_DEPTH, JsonValue, freeze, frozen_copy
from rtms_proto.enums import EventType, MessageType, ZccEventType

__all__ = [
    "EventSubscription",
    "EventSubscriptionItem",
    "EventUpdate",
    "Participant",
    "ZccParticipant",
]

_EMPTY: Mapping[str, JsonValue] = MappingProxyType({})


def _empty() -> Mapping[str, JsonValue]:
    return _EMPTY


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EventSubscriptionItem:
    """One ``{event_type, subscribe}`` entry; ``False`` unsubscribes."""

    event_type: int
    subscribe: bool


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EventSubscription:
    """EVENT_SUBSCRIPTION (5): events are opt-in; no response follows (§3.5)."""

    msg_type: ClassVar[MessageType] = MessageType.EVENT_SUBSCRIPTION
    events: tuple[EventSubscriptionItem, ...]

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> EventSubscription:
        events = o.get("events")
        if type(events) is not list:
            raise wrong(o, "events", "", "an array")
        return cls(
            events=tuple(
                EventSubscriptionItem(
                    event_type=req_int(item, "event_type", f"events[{i}]."),
                    subscribe=req_bool(item, "subscribe", f"events[{i}]."),
                )
                for i, item in enumerate(obj_items(events, "events"))
            )
        )

    def _to_wire(self) -> dict[str, object]:
        return {
            "msg_type": int(self.msg_type),
            "events": [
                {"event_type": int(e.event_type), "subscribe": e.subscribe} for e in self.events
            ],
        }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Participant:
    """A participant of a join/leave/video event; leave events carry no name."""

    user_id: int
    user_name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ZccParticipant:
    """Contact Center ``paticipant_info`` (sic): ids are strings there (§3.6)."""

    channel_id: str | None = None
    participant_mode: str | None = None
    queue_id: str | None = None
    queue_name: str | None = None
    phone_number: str | None = None
    user_id: str | None = None
    display_name: str | None = None


_ZCC_FIELDS = tuple(f.name for f in dataclasses.fields(ZccParticipant))

_EVENT_NAMES = {m.name: m.value for m in EventType} | {m.name: m.value for m in ZccEventType}


def _event_type(event: Mapping[str, Any]) -> int:
    """A number, or (DOC-ZCC examples) a known event name."""
    value = event.get("event_type")
    if type(value) is int:
        return value
    if type(value) is str:
        number = _EVENT_NAMES.get(value.upper())
        if number is None:
            raise WireFieldError("event.event_type", "unknown event name")
        return number
    raise wrong(event, "event_type", "event.", "an integer or an event name")


def _zcc_key(event: Mapping[str, Any]) -> str:
    return alias(event, "paticipant_info", "participant_info")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EventUpdate:
    """EVENT_UPDATE (6) (§3.6).

    ``event_type`` stays a plain ``int`` because 8-13 mean different things for
    meetings and Contact Center; the session knows the product. ``raw`` is the
    whole ``event`` object, for events whose fields are undocumented (7, 10-14).

    ``raw`` is normalized at construction to exactly the object that is
    encoded: the given ``raw`` (deep-copied and frozen; a mappingproxy is taken
    as frozen already) with every typed field that is set written over it (an
    ``event_ts`` or ``participant_info`` spelling in ``raw`` is kept). So a
    decoded event re-encodes to its own ``raw``, and a built one equals its
    decoded encoding.
    """

    msg_type: ClassVar[MessageType] = MessageType.EVENT_UPDATE
    event_type: int
    timestamp: int | None = None
    user_id: int | None = None
    user_name: str | None = None
    participants: tuple[Participant, ...] = ()
    zcc_participant: ZccParticipant | None = None
    raw: Mapping[str, JsonValue] = dataclasses.field(default_factory=_empty)

    def __post_init__(self) -> None:
        raw = self.raw
        typed: dict[str, Any] = {"event_type": int(self.event_type)}
        if self.timestamp is not None:
            key = alias(raw, "timestamp", "event_ts")
            typed[key if key in raw else "timestamp"] = int(self.timestamp)
        if self.user_id is not None:
            typed["user_id"] = int(self.user_id)
        put(typed, "user_name", self.user_name)
        if self.participants:
            people: list[dict[str, object]] = []
            for p in self.participants:
                person: dict[str, object] = {"user_id": int(p.user_id)}
                put(person, "user_name", p.user_name)
                people.append(person)
            typed["participants"] = people
        if (z := self.zcc_participant) is not None:
            info: dict[str, object] = {}
            for name in _ZCC_FIELDS:
                put(info, name, getattr(z, name))
            key = _zcc_key(raw)
            typed[key if key in raw else "paticipant_info"] = info
        if type(raw) is MappingProxyType:
            # Already frozen (decoding): freeze only the typed part, never re-walk the rest.
            object.__setattr__(self, "raw", MappingProxyType({**raw, **freeze(typed)}))
        else:
            object.__setattr__(self, "raw", frozen_copy({**raw, **typed}))

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> EventUpdate:
        event = req_obj(o, "event", "")
        zcc_key = _zcc_key(event)
        info = opt_obj(event, zcc_key, "event.")
        zcc = None
        if info is not None:
            path = f"event.{zcc_key}."
            zcc = ZccParticipant(**{name: opt_str(info, name, path) for name in _ZCC_FIELDS})
        participants = tuple(
            Participant(
                user_id=req_user_id(p, "user_id", f"event.participants[{i}]."),
                user_name=opt_str(p, "user_name", f"event.participants[{i}]."),
            )
            for i, p in enumerate(
                obj_items(opt_list(event, "participants", "event."), "event.participants")
            )
        )
        return cls(
            event_type=_event_type(event),
            timestamp=opt_int(event, alias(event, "timestamp", "event_ts"), "event."),
            user_id=opt_user_id(event, "user_id", "event."),
            user_name=opt_str(event, "user_name", "event."),
            participants=participants,
            zcc_participant=zcc,
            raw=freeze(event, MAX_JSON_DEPTH),
        )

    def _to_wire(self) -> dict[str, object]:
        return {"msg_type": int(self.msg_type), "event": self.raw}
