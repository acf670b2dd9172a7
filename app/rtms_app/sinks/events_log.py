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

__all__ = ["EventsLog", "error_to_json", "event_to_json"]


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


def _value(value: object) -> object:
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
        return {f.name: _value(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_value(v) for v in value]
    return to_json_value(value)


def event_to_json(event: ev.Event, t: float | None = None) -> dict[str, object]:
    """One event as a JSON-ready object: ``type``, ``t`` (when given), then its fields."""
    line: dict[str, object] = {"type": type(event).__name__}
    if t is not None:
        line["t"] = round(t, 3)
    for f in dataclasses.fields(event):
        line[f.name] = _value(getattr(event, f.name))
    return line


class EventsLog:
    """Writes ``<folder>/events.jsonl``."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "events.jsonl"
        self._out = JsonlWriter(self.path)

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
