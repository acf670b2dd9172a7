"""Audio sinks: 16-bit PCM WAV written as it arrives, with gaps filled from the timestamps.

:class:`WavWriter` is a plain WAV file that stays valid while it grows: the
header carries provisional sizes that are rewritten every ``update_every``
frames (one second of audio by default), at :meth:`~WavWriter.close` and
:meth:`~WavWriter.suspend`, so a process killed mid-recording leaves a playable
file missing at most the last second.  A write that fails (disk full) leaves
the file with whole frames only and a header that counts exactly them.

:class:`AudioTrack` lays packets out on a timeline: a packet's ``timestamp``
(milliseconds) says where its first sample belongs, counted from the track's
``origin_ms``; when it lies ahead of what was written (a muted speaker, an
interruption), silence is written up to it.  A packet is never dropped or cut:
one that arrives "early" is appended as it is.  With ``gap_fill=False`` the
packets are simply concatenated.  Files past the WAV size limit continue in a
new part (``open_part(2)`` ...).

Silence is bounded, so that timestamps from a server cannot fill a disk.  A
gap is filled in full or not at all; it is *not* filled, and counts as a
:class:`Discontinuity`, when

* the track would then run more than ``max_ahead_ms`` (default 65 s: Zoom
  buffers up to 60 s of audio before a connect) ahead of the arrival clock,
  the ``arrival`` time passed with each packet, counted from the track's first
  packet.  So the silence of a track never exceeds the time its packets took
  to arrive plus 65 s, however large the timestamps;
* without an arrival time: it is longer than ``max_gap_ms`` (default 1 hour);
* the track's silence would exceed ``max_silence_ms`` in total (default 12
  hours).

A packet more than ``max_ahead_ms`` *behind* the end of the track is a
discontinuity too.  At a discontinuity the packet is appended where the track
ends and the timeline is re-anchored there: later timestamps count from it,
so one bogus timestamp costs nothing but its own report.

:class:`RawAudioWriter` keeps codecs other than L16 (Opus, G.711, G.722) as
the packets came, with a JSON-lines index of offsets and timestamps.

Every writer can :meth:`suspend` (close its file descriptors while idle, the
header or index kept correct) and reopens its files to append on the next
write, so a recorder can bound the files it holds open.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._files import AppendFile, JsonlWriter, read_jsonl, write_error

__all__ = ["MAX_DATA_BYTES", "AudioTrack", "Discontinuity", "RawAudioWriter", "WavWriter"]

HEADER_SIZE = 44
MAX_DATA_BYTES = 0xFFFFFFFF - (HEADER_SIZE - 8)
"""The most PCM bytes one WAV file can describe (its RIFF size is 32 bits)."""

_SILENCE_CHUNK = 1 << 16


class WavWriter:
    """A 16-bit PCM WAV file written incrementally (see the module docstring).

    ``update_every`` is the number of frames between header rewrites (default:
    one second).  Partial frames are held back until completed.

    ``append=True`` continues an existing file written with the same format
    (a recording resumed by another process): its frames are counted from its
    size, not its header (which may lag by up to ``update_every``), a partial
    last frame is cut off, and the header is fixed at once.
    """

    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int,
        channels: int,
        update_every: int | None = None,
        max_data_bytes: int = MAX_DATA_BYTES,
        append: bool = False,
    ) -> None:
        if sample_rate <= 0 or channels <= 0:
            raise ValueError("sample_rate and channels must be positive")
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_size = 2 * channels
        self.update_every = sample_rate if update_every is None else max(1, update_every)
        self.max_frames = max_data_bytes // self.frame_size
        self.frames = 0
        self._header_frames = 0
        self._pending = b""
        if append and path.exists():
            self._continue()
            return
        self._out = AppendFile(path)
        self._out.write(self._header())

    def _continue(self) -> None:
        path = self.path
        try:
            with path.open("rb") as f:
                head = f.read(HEADER_SIZE)
            size = path.stat().st_size
        except OSError as exc:
            raise write_error(exc, path) from exc
        fmt = struct.unpack("<HHIIHH", head[20:36]) if len(head) == HEADER_SIZE else None
        if head[:4] != b"RIFF" or fmt is None or fmt[1:3] != (self.channels, self.sample_rate):
            raise ValueError(f"{path} is not a WAV file of this format: it cannot be continued")
        self.frames = min((size - HEADER_SIZE) // self.frame_size, self.max_frames)
        end = HEADER_SIZE + self.frames * self.frame_size
        if size != end:
            try:
                os.truncate(path, end)
            except OSError as exc:
                raise write_error(exc, path) from exc
        self._out = AppendFile(path, append=True)
        self._write_header()

    @property
    def room(self) -> int:
        """Frames that still fit in this file."""
        return self.max_frames - self.frames

    @property
    def duration(self) -> float:
        """Seconds of audio written."""
        return self.frames / self.sample_rate

    @property
    def closed(self) -> bool:
        return self._out.closed

    @property
    def is_open(self) -> bool:
        """Whether the file holds a descriptor now (not when suspended or closed)."""
        return self._out.is_open

    def write(self, pcm: bytes) -> None:
        """Append little-endian 16-bit samples (interleaved when stereo)."""
        data = self._pending + pcm if self._pending else pcm
        whole = len(data) - len(data) % self.frame_size
        self._pending = data[whole:]
        if whole:
            self._append(data[:whole] if whole != len(data) else data, whole // self.frame_size)

    def write_silence(self, frames: int) -> None:
        """Append ``frames`` frames of digital silence."""
        chunk = bytes(min(frames, _SILENCE_CHUNK) * self.frame_size)
        while frames > 0:
            n = min(frames, _SILENCE_CHUNK)
            self._append(chunk[: n * self.frame_size], n)
            frames -= n

    def suspend(self) -> None:
        """Fix the header and let go of the file descriptor; the next write reopens it."""
        if self._out.is_open:
            try:
                self._write_header()
            finally:
                self._out.suspend()

    def abandon(self) -> None:
        """Let go of the file without writing to it again (another process continues it)."""
        self._out.close()

    def close(self) -> None:
        """Fix the header and close the file (a partial last frame is dropped)."""
        if self._out.closed:
            return
        try:
            self._write_header()
        finally:
            self._out.close()

    def _append(self, data: bytes, frames: int) -> None:
        if self._out.closed:
            raise ValueError(f"{self.path} is closed")
        if frames > self.room:
            raise ValueError(f"{self.path} is full")
        try:
            self._out.write(data)
        except OSError:
            # The data was cut back off: make the header say what the file holds now.
            with contextlib.suppress(OSError):
                self._write_header()
            raise
        self.frames += frames
        if self.frames - self._header_frames >= self.update_every:
            self._write_header()

    def _header(self) -> bytes:
        data = self.frames * self.frame_size
        header = b"RIFF" + struct.pack("<I", HEADER_SIZE - 8 + data) + b"WAVEfmt "
        header += struct.pack(
            "<IHHIIHH",
            16,
            1,  # PCM
            self.channels,
            self.sample_rate,
            self.sample_rate * self.frame_size,
            self.frame_size,
            16,
        )
        return header + b"data" + struct.pack("<I", data)

    def _write_header(self) -> None:
        self._out.rewrite(0, self._header())
        self._header_frames = self.frames


def _seconds(frames: int, rate: int) -> str:
    """``12.345 s`` for a non-negative number of frames, exactly even for huge ones."""
    ms = frames * 1000 // rate
    return f"{ms // 1000}.{ms % 1000:03d} s"


@dataclass(frozen=True, slots=True)
class Discontinuity:
    """A packet whose timestamp could not be followed (see the module docstring).

    ``jump_ms`` is how far ahead of the track's end (negative: behind) the
    timestamp placed the packet; ``position_ms`` is where it was written
    instead (from the track's start); ``reason`` says which bound it broke.
    """

    timestamp: int
    jump_ms: int
    position_ms: int
    reason: str


class AudioTrack:
    """PCM packets laid out on a timeline, across as many WAV parts as needed.

    ``open_part(n)`` creates part ``n`` (1, 2, ...).  ``origin_ms`` is the
    timestamp of the track's first sample; when None, the first packet's
    timestamp is used.  Gaps shorter than ``min_gap_ms`` are not filled (they
    are timestamp jitter, not silence).  The bounds on silence and the
    discontinuities are described in the module docstring;
    ``on_discontinuity`` is told of each one.

    A track resumed from files an earlier process wrote: ``parts`` opens parts
    1 to ``parts`` (``open_part`` continues them), ``shift`` is the earlier
    track's :attr:`shift` (its re-anchoring, so that timestamps land where
    they did).  Its packets that lie more than half inside what is already
    written (Zoom replays its buffer after a reconnect) are skipped and
    counted in :attr:`skipped`, until one is written; the arrival clock counts
    the audio already written as arrived.  Without gap filling or timestamps
    nothing can be skipped.
    """

    def __init__(
        self,
        open_part: Callable[[int], WavWriter],
        *,
        sample_rate: int,
        origin_ms: int | None = None,
        gap_fill: bool = True,
        min_gap_ms: int = 1,
        max_gap_ms: int = 3_600_000,
        max_ahead_ms: int = 65_000,
        max_silence_ms: int = 12 * 3_600_000,
        on_discontinuity: Callable[[Discontinuity], object] | None = None,
        parts: int = 1,
        shift: int = 0,
    ) -> None:
        self._open_part = open_part
        self.sample_rate = sample_rate
        self.origin_ms = origin_ms
        self.gap_fill = gap_fill
        self._min_gap = max(1, min_gap_ms * sample_rate // 1000)
        self._max_gap = max_gap_ms * sample_rate // 1000
        self._max_ahead = max_ahead_ms * sample_rate // 1000
        self._max_silence = max_silence_ms * sample_rate // 1000
        self._on_discontinuity = on_discontinuity
        self._shift = shift
        self._first_arrival: float | None = None
        self.parts: list[WavWriter] = []
        for n in range(1, max(1, parts) + 1):
            if self.parts:
                self.parts[-1].close()  # a full part, resumed
            self.parts.append(open_part(n))
        self.frames = sum(part.frames for part in self.parts)
        """Frames written in all parts, silence included."""
        self._arrived_base = self.frames
        self._resume_end: int | None = self.frames if self.frames else None
        self.silence_frames = 0
        self.packets = 0
        self.skipped = 0
        self.discontinuities = 0

    @property
    def shift(self) -> int:
        """Frames the timeline was moved by at discontinuities (to resume a track)."""
        return self._shift

    @property
    def writer(self) -> WavWriter:
        return self.parts[-1]

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def add(self, pcm: bytes, timestamp: int | None, arrival: float | None = None) -> int:
        """Append one packet; returns the frames of silence written before it.

        ``arrival`` is when the packet arrived, in seconds on any clock that
        does not jump (the same clock for every packet of the track).
        """
        self.packets += 1
        filled = 0
        if arrival is not None and self._first_arrival is None:
            self._first_arrival = arrival
        if self.gap_fill and timestamp is not None:
            if self.origin_ms is None:
                self.origin_ms = timestamp
            at = (timestamp - self.origin_ms) * self.sample_rate // 1000 + self._shift
            if self._resume_end is not None:
                if 2 * at + len(pcm) // self.writer.frame_size < 2 * self._resume_end:
                    self.packets -= 1
                    self.skipped += 1
                    return 0
                self._resume_end = None
            gap = at - self.frames
            why = self._implausible(gap, at, arrival)
            if why is not None:
                self._shift -= gap  # re-anchored: this packet lands where the track ends
                self.discontinuities += 1
                if self._on_discontinuity is not None:
                    self._on_discontinuity(
                        Discontinuity(
                            timestamp=timestamp,
                            jump_ms=gap * 1000 // self.sample_rate,
                            position_ms=self.frames * 1000 // self.sample_rate,
                            reason=why,
                        )
                    )
            elif gap >= self._min_gap:
                filled = gap
                self._silence(gap)
        self._write(pcm)
        return filled

    def suspend(self) -> None:
        """Let go of the current part's file descriptor (reopened on the next packet)."""
        self.writer.suspend()

    def close(self) -> None:
        for part in self.parts:
            part.close()

    def abandon(self) -> None:
        """Let go of every part without writing (another process continues the track)."""
        for part in self.parts:
            part.abandon()

    def _implausible(self, gap: int, at: int, arrival: float | None) -> str | None:
        """Why a gap of ``gap`` frames (placing the packet at ``at``) is not filled, if so."""
        rate = self.sample_rate
        if gap < -self._max_ahead:
            return f"{_seconds(-gap, rate)} behind the end of the track"
        if gap < self._min_gap:
            return None
        if arrival is not None and self._first_arrival is not None:
            arrived = self._arrived_base + int(max(0.0, arrival - self._first_arrival) * rate)
            if at > arrived + self._max_ahead:
                return (
                    f"{_seconds(at - arrived, rate)} ahead of the arrival clock "
                    f"(at most {_seconds(self._max_ahead, rate)})"
                )
        elif gap > self._max_gap:
            return f"a gap of {_seconds(gap, rate)}, longer than {_seconds(self._max_gap, rate)}"
        if self.silence_frames + gap > self._max_silence:
            return f"the track's silence would exceed {_seconds(self._max_silence, rate)}"
        return None

    def _silence(self, frames: int) -> None:
        while frames > 0:
            writer = self._current()
            n = min(frames, writer.room)
            before = writer.frames
            try:
                writer.write_silence(n)
            finally:
                done = writer.frames - before
                self.silence_frames += done
                self.frames += done
            frames -= n

    def _write(self, pcm: bytes) -> None:
        while pcm:
            writer = self._current()
            room = writer.room * writer.frame_size
            head, pcm = pcm[:room], pcm[room:]
            before = writer.frames
            try:
                writer.write(head)
            finally:
                self.frames += writer.frames - before

    def _current(self) -> WavWriter:
        """The part to write to, starting the next one when the current one is full."""
        if self.writer.room <= 0:
            self.writer.close()
            self.parts.append(self._open_part(len(self.parts) + 1))
        return self.writer


class RawAudioWriter:
    """Packets of a compressed codec, back to back, with a JSON-lines index.

    Each index line: ``offset``, ``length``, ``timestamp``, ``user_id`` (and
    ``user_name`` when known).  A packet that cannot be written is cut back off
    and gets no index line.  ``append``: continues the files of an earlier
    process, cut back to the last indexed packet.
    """

    def __init__(self, path: Path, index_path: Path, *, append: bool = False) -> None:
        self.path = path
        self.offset = 0
        self.packets = 0
        if append and path.exists():
            for entry in read_jsonl(index_path):
                offset, length = entry.get("offset"), entry.get("length")
                if isinstance(offset, int) and isinstance(length, int):
                    self.offset = max(self.offset, offset + length)
                    self.packets += 1
            try:
                if path.stat().st_size > self.offset:
                    os.truncate(path, self.offset)
            except OSError as exc:
                raise write_error(exc, path) from exc
        self._out = AppendFile(path, append=append)
        self.index = JsonlWriter(index_path, append=append)

    def add(
        self,
        data: bytes,
        *,
        timestamp: int | None,
        user_id: int | str | None,
        user_name: str | None,
    ) -> None:
        self._out.write(data)
        entry: dict[str, object] = {
            "offset": self.offset,
            "length": len(data),
            "timestamp": timestamp,
            "user_id": user_id,
        }
        if user_name is not None:
            entry["user_name"] = user_name
        self.index.write(entry)
        self.offset += len(data)
        self.packets += 1

    def suspend(self) -> None:
        """Let go of both file descriptors (reopened on the next packet)."""
        self._out.suspend()
        self.index.suspend()

    def close(self) -> None:
        self._out.close()
        self.index.close()

    abandon = close  # nothing is written at close
