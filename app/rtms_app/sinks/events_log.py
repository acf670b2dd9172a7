"""Events sink: ``events.jsonl``, every application event as one JSON object.

Each line has ``type`` (the event class name, e.g. ``ParticipantsJoined``),
``t`` (seconds since the session started, by the session's clock, when
known) and the event's fields: enums by name, sockets as ``audio#2``, media
parameters in their wire form, errors as an object with ``reason``,
``detail``, ``status``, ``status_name`` and ``status_reason``.  Media data
(audio, video, screen share, transcript, chat) has its own files and is not
repeated here.  Nothing an event carries is secret.

The recorder adds lines of its own about the files (:meth:`EventsLog.note`),
with a ``type`` no event class has: ``AudioDiscontinuity`` (see
:mod:`.recorder`).

A line is bounded whatever the server sent (:data:`MAX_LINE_BYTES`): a
``raw`` object or any other JSON tree is written to at most
:data:`MAX_ITEMS_PER_EVENT` values and :data:`MAX_DEPTH` levels, and
:data:`MAX_CHARS_PER_EVENT` characters of strings (keys included); what is cut
is replaced by a marker (``{"truncated": n}`` for a container, or the string's
start followed by ``…[truncated, n chars]``) and the line gets
``"truncated": true``.  Nothing is re-serialised whole, so one hostile message
costs the log a bounded line, not a copy of its tree.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from pathlib import Path

from rtms_proto import MediaParams, RemoteProtocolError, SocketId
from rtms_proto import events as ev
from rtms_proto.enums import MediaType, media_name
from rtms_proto.messages import DecodeError

from ._files import JsonlWriter, to_json_value

__all__ = [
    "MAX_CHARS_PER_EVENT",
    "MAX_DEPTH",
    "MAX_ITEMS_PER_EVENT",
    "MAX_LINE_BYTES",
    "EventsLog",
    "error_to_json",
    "event_to_json",
]

MAX_ITEMS_PER_EVENT = 1_000
"""Values (of any depth) written for one event; the rest is counted in a marker."""
MAX_CHARS_PER_EVENT = 16_384
"""Characters of strings (keys and values) written for one event."""
MAX_DEPTH = 8
"""Levels of a nested value written; deeper containers become markers."""
MAX_LINE_BYTES = 128 * 1024
"""The longest line the limits above allow: 16,384 characters of at most 6
bytes each once escaped (``\\u0001``) and 1,000 values of at most ~30 more."""


def error_to_json(error: RemoteProtocolError) -> dict[str, object]:
    """The fields of a failure, for a log line."""
    status = error.status
    return {
        "reason": error.reason.value,
        "retryable": error.retryable,
        "detail": error.detail,
        "status": None if status is None else int(status),
        "status_name": status.name if isinstance(status, enum.Enum) else None,
        "status_reason": error.status_reason,
    }


class _Budget:
    """What is left of one line's allowance while its fields are converted."""

    def __init__(self) -> None:
        self.items = MAX_ITEMS_PER_EVENT
        self.chars = MAX_CHARS_PER_EVENT
        self.cut = False

    def text(self, value: str) -> str:
        """``value``, or its start and a marker when the characters left are fewer."""
        if len(value) <= self.chars:
            self.chars -= len(value)
            return value
        kept = value[: self.chars]
        self.chars = 0
        self.cut = True
        return f"{kept}…[truncated, {len(value)} chars]"


def _value(value: object, budget: _Budget, depth: int = 0) -> object:
    """``value`` as JSON, within ``budget``: every node takes one item."""
    budget.items -= 1
    if isinstance(value, str):
        return budget.text(value)
    if isinstance(value, SocketId):
        return str(value)
    if isinstance(value, MediaType):
        return media_name(value)
    if isinstance(value, MediaParams):
        return value.to_wire()
    if isinstance(value, RemoteProtocolError):
        return error_to_json(value)
    if isinstance(value, DecodeError):
        return str(value)
    if isinstance(value, float):
        return round(value, 6)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping | tuple | list):
        size = len(value)
        if depth >= MAX_DEPTH or budget.items <= 0:
            budget.cut = True
            return {"truncated": size}
        if isinstance(value, Mapping):
            obj: dict[str, object] = {}
            for k, v in value.items():
                if budget.items <= 0:
                    budget.cut = True
                    obj["truncated"] = size - len(obj)
                    break
                key = budget.text(str(k))  # before the value, which may use up the rest
                obj[key] = _value(v, budget, depth + 1)
            return obj
        items: list[object] = []
        for v in value:
            if budget.items <= 0:
                budget.cut = True
                items.append({"truncated": size - len(items)})
                break
            items.append(_value(v, budget, depth + 1))
        return items
    return to_json_value(value)


def event_to_json(event: ev.Event, t: float | None = None) -> dict[str, object]:
    """One event as a JSON-ready object: ``type``, ``t`` (when given), then its fields.

    Bounded as the module says: a server's tree is never written whole.
    """
    line: dict[str, object] = {"type": type(event).__name__}
    if t is not None:
        line["t"] = round(t, 3)
    budget = _Budget()
    for f in dataclasses.fields(event):
        line[f.name] = _value(getattr(event, f.name), budget)
    if budget.cut:
        line["truncated"] = True
    return line


class EventsLog:
    """Writes ``<folder>/events.jsonl`` (``append``: continues an existing one)."""

    def __init__(self, folder: Path, *, append: bool = False) -> None:
        self.path = folder / "events.jsonl"
        self._out = JsonlWriter(self.path, append=append)

    @property
    def lines(self) -> int:
        return self._out.lines

    def add(self, event: ev.Event, t: float | None = None) -> None:
        self._out.write(event_to_json(event, t))

    def note(self, kind: str, t: float | None = None, **fields: object) -> None:
        """A line about the recording itself (not an event of the session): ``type`` ``kind``."""
        line: dict[str, object] = {"type": kind}
        if t is not None:
            line["t"] = round(t, 3)
        line.update({name: to_json_value(value) for name, value in fields.items()})
        self._out.write(line)

    def close(self) -> None:
        self._out.close()
