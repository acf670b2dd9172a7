"""Resuming a recording that another process started (a fleet takeover).

When the node recording a stream dies, another node reconnects to the same
stream and continues the same folder.  Zoom then replays what it buffered, so
the start of the new connection repeats what the dead node may already have
written.  This module holds what continuing needs and the files do not say.

``resume.jsonl`` (written by a :class:`~.recorder.Recorder` with
``RecorderOptions(resumable=True)``, a few lines per recording, never one per
packet): the time origin (``origin``), each audio track as it is created
(``track``: its key, file, origin, sample rate, channels, codec, format
generation), each re-anchoring of a track at a timestamp discontinuity
(``shift``), format changes (``format``) and each owner with its lease
revision (``owner``: the fencing token).

:func:`load` reads it back, cuts every file to its last whole record (the
dead process may have been killed mid-write; WAV files are cut to whole
frames when they are opened) and builds one :class:`Watermark` per file of
timestamped records, from what is on disk.  The rules of what is skipped as
already written:

* audio (L16 with gap filling): a packet that would lie more than half
  inside what the track already holds (see :class:`~.wav.AudioTrack`); every
  later packet lands at its position by timestamp, silence filling the gap
  left by the death;
* transcript, chat, frames, raw audio and the timestamped server events of
  ``events.jsonl``: an item older than the newest timestamp on disk, or equal
  to it and identical to an item written at that timestamp.

Events without a timestamp (connections, reconnects, the end) belong to the
new connection and are always written; a ``RecordingResumed`` line in
``events.jsonl`` marks where the new owner took up.  ``t`` in
``events.jsonl`` counts from the start of the session of the process that
wrote the line.

A recorder given a ``guard`` (``OwnedStream.still_owner``) checks it before
every write and raises :class:`NotOwner` instead of writing once it says no:
a node that lost its lease (paused past it, cut off from the engine) never
writes into a folder another node continues, and :meth:`Recorder.abandon`
lets go of the files without even fixing a WAV header.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._files import JsonlWriter, read_jsonl, write_error

__all__ = [
    "JOURNAL_NAME",
    "Journal",
    "NotOwner",
    "ResumeState",
    "TrackState",
    "Watermark",
    "load",
    "record_key",
]

JOURNAL_NAME = "resume.jsonl"
_NOTES = frozenset({"AudioDiscontinuity", "RecordingResumed", "RecordingOwned"})
"""Lines the recorder writes about its files, not events of the session."""
_JSONL_FILES = ("events.jsonl", "transcript.jsonl", "chat.jsonl", JOURNAL_NAME)


class NotOwner(Exception):
    """This process no longer owns the stream: it must not write into its folder."""


def record_key(*parts: object) -> str:
    """A stable text for the identity of one record (what two copies share)."""
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)


class Watermark:
    """The newest timestamp written to one file, and the records written at it."""

    def __init__(self) -> None:
        self.mark: int | None = None
        self._keys: set[str] = set()

    def note(self, timestamp: object, key: str) -> None:
        """``key`` was written with ``timestamp`` (ignored unless an int)."""
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            return
        if self.mark is None or timestamp > self.mark:
            self.mark = timestamp
            self._keys = {key}
        elif timestamp == self.mark:
            self._keys.add(key)

    def seen(self, timestamp: int | None, key: str) -> bool:
        """Whether a record is a replay of what is on disk (see the module docstring)."""
        if timestamp is None or self.mark is None:
            return False
        return timestamp < self.mark or (timestamp == self.mark and key in self._keys)


@dataclass(slots=True)
class TrackState:
    """One audio track as the journal last described it."""

    key: str
    origin_ms: int | None
    sample_rate: int
    channels: int
    codec: int
    format_gen: int
    shift: int = 0


@dataclass(slots=True)
class ResumeState:
    """What a resumed recorder takes up (built by :func:`load`)."""

    origin_ms: int | None = None
    format_gen: int = 1
    audio_format: tuple[int, int, int] | None = None
    """(codec, sample rate, channels) of the newest track."""
    tracks: dict[str, TrackState] = field(default_factory=dict)
    owners: list[tuple[str, int]] = field(default_factory=list)
    transcript: Watermark = field(default_factory=Watermark)
    chat: Watermark = field(default_factory=Watermark)
    events: Watermark = field(default_factory=Watermark)
    frames: dict[str, Watermark] = field(default_factory=dict)
    raw: dict[str, Watermark] = field(default_factory=dict)
    """Per raw audio file name (``audio.opus.raw``)."""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cut_to_last_line(path: Path) -> None:
    """Cut a JSON-lines file after its last line break (a line cut by a kill)."""
    try:
        with path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            end = size
            while end > 0:
                f.seek(max(0, end - 4096))
                chunk = f.read(end - max(0, end - 4096))
                at = chunk.rfind(b"\n")
                if at >= 0:
                    end = max(0, end - 4096) + at + 1
                    break
                end = max(0, end - 4096)
            if end != size:
                f.truncate(end)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise write_error(exc, path) from exc


def _event_key(line: Mapping[str, object]) -> str:
    return record_key({k: v for k, v in line.items() if k != "t"})


def transcript_key(user_id: object, text: object) -> str:
    return record_key(user_id, text)


def frame_key(user_id: object, size: object) -> str:
    return record_key(user_id, size)


def _marks(lines: Iterable[Mapping[str, object]], time: str, *key_fields: str) -> Watermark:
    mark = Watermark()
    for line in lines:
        mark.note(line.get(time), record_key(*(line.get(k) for k in key_fields)))
    return mark


def load(folder: Path) -> ResumeState:
    """Read ``folder``'s journal and files back (see the module docstring).

    Cuts the JSON-lines files to whole lines; raises ``OSError`` naming a file
    that cannot be read or cut.
    """
    for name in _JSONL_FILES:
        _cut_to_last_line(folder / name)
    indexes = [folder / kind / "index.jsonl" for kind in ("video", "deskshare")]
    raw_indexes = sorted(folder.glob("audio*.jsonl"))
    for path in [*indexes, *raw_indexes]:
        _cut_to_last_line(path)
    state = ResumeState()
    for line in read_jsonl(folder / JOURNAL_NAME):
        kind = line.get("type")
        if kind == "origin":
            state.origin_ms = _int(line.get("origin_ms"))
        elif kind == "track":
            key, rate, channels = line.get("key"), _int(line.get("rate")), _int(line.get("ch"))
            codec, gen = _int(line.get("codec")), _int(line.get("gen"))
            if isinstance(key, str) and rate and channels and codec is not None and gen:
                state.tracks[key] = TrackState(
                    key, _int(line.get("origin_ms")), rate, channels, codec, gen
                )
                state.audio_format = (codec, rate, channels)
        elif kind == "shift":
            track = state.tracks.get(str(line.get("key")))
            shift = _int(line.get("shift"))
            if track is not None and shift is not None:
                track.shift = shift
        elif kind == "format":
            state.format_gen = _int(line.get("gen")) or state.format_gen
        elif kind == "owner":
            revision = _int(line.get("revision"))
            state.owners.append((str(line.get("node")), -1 if revision is None else revision))
    transcript = read_jsonl(folder / "transcript.jsonl")
    for line in transcript:
        start = line.get("start_time")
        state.transcript.note(
            start if start is not None else line.get("timestamp"),
            transcript_key(line.get("user_id"), line.get("text")),
        )
    for line in read_jsonl(folder / "chat.jsonl"):
        text = line.get("raw", line.get("text"))
        state.chat.note(line.get("timestamp"), transcript_key(line.get("user_id"), text))
    for line in read_jsonl(folder / "events.jsonl"):
        if "timestamp" in line and line.get("type") not in _NOTES:
            state.events.note(line.get("timestamp"), _event_key(line))
    for kind, path in zip(("video", "deskshare"), indexes, strict=True):
        state.frames[kind] = _marks(read_jsonl(path), "timestamp", "user_id", "bytes")
    for path in raw_indexes:
        raw_name = path.name.removesuffix(".jsonl") + ".raw"
        state.raw[raw_name] = _marks(read_jsonl(path), "timestamp", "user_id", "length")
    return state


def event_key(line: Mapping[str, object]) -> str:
    """The identity of an ``events.jsonl`` line (its ``t`` differs between processes)."""
    return _event_key(json.loads(json.dumps(line)))


class Journal:
    """Appends to ``resume.jsonl`` (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self._out = JsonlWriter(folder / JOURNAL_NAME, append=True)

    @property
    def path(self) -> Path:
        return self._out.path

    def write(self, kind: str, **fields: object) -> None:
        self._out.write({"type": kind, **fields})

    def close(self) -> None:
        self._out.close()
