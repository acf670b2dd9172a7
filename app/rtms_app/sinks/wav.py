"""Audio sinks: 16-bit PCM WAV written as it arrives, with gaps filled from the timestamps.

:class:`WavWriter` is a plain WAV file that stays valid while it grows: the
header carries provisional sizes that are rewritten every ``update_every``
frames (one second of audio by default) and at :meth:`~WavWriter.close`, so a
process killed mid-recording leaves a playable file missing at most the last
second.

:class:`AudioTrack` lays packets out on a timeline: a packet's ``timestamp``
(milliseconds) says where its first sample belongs, counted from the track's
``origin_ms``; when it lies ahead of what was written (a muted speaker, an
interruption), silence is written up to it.  A packet is never dropped or cut:
one that arrives "early" is appended as it is.  With ``gap_fill=False`` the
packets are simply concatenated.  Files past the WAV size limit continue in a
new part (``open_part(2)`` ...).

:class:`RawAudioWriter` keeps codecs other than L16 (Opus, G.711, G.722) as
the packets came, with a JSON-lines index of offsets and timestamps.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ._files import JsonlWriter

__all__ = ["MAX_DATA_BYTES", "AudioTrack", "RawAudioWriter", "WavWriter"]

HEADER_SIZE = 44
MAX_DATA_BYTES = 0xFFFFFFFF - (HEADER_SIZE - 8)
"""The most PCM bytes one WAV file can describe (its RIFF size is 32 bits)."""

_SILENCE_CHUNK = 1 << 16


class WavWriter:
    """A 16-bit PCM WAV file written incrementally (see the module docstring).

    ``update_every`` is the number of frames between header rewrites (default:
    one second).  Partial frames are held back until completed.
    """

    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int,
        channels: int,
        update_every: int | None = None,
        max_data_bytes: int = MAX_DATA_BYTES,
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
        self._file: BinaryIO | None = open(path, "wb")  # noqa: SIM115
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
        return self._file is None

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

    def close(self) -> None:
        """Fix the header and close the file (a partial last frame is dropped)."""
        if self._file is None:
            return
        self._write_header()
        self._file.close()
        self._file = None

    def _append(self, data: bytes, frames: int) -> None:
        f = self._file
        if f is None:
            raise ValueError(f"{self.path} is closed")
        if frames > self.room:
            raise ValueError(f"{self.path} is full")
        f.write(data)
        self.frames += frames
        if self.frames - self._header_frames >= self.update_every:
            self._write_header()

    def _write_header(self) -> None:
        f = self._file
        assert f is not None
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
        header += b"data" + struct.pack("<I", data)
        f.flush()
        end = f.tell()
        f.seek(0)
        f.write(header)
        if end > HEADER_SIZE:
            f.seek(end)
        f.flush()
        self._header_frames = self.frames


class AudioTrack:
    """PCM packets laid out on a timeline, across as many WAV parts as needed.

    ``open_part(n)`` creates part ``n`` (1, 2, ...).  ``origin_ms`` is the
    timestamp of the track's first sample; when None, the first packet's
    timestamp is used.  Gaps shorter than ``min_gap_ms`` are not filled (they
    are timestamp jitter, not silence) and one gap adds at most
    ``max_gap_ms`` of silence (a bogus timestamp must not fill a disk).
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
    ) -> None:
        self._open_part = open_part
        self.sample_rate = sample_rate
        self.origin_ms = origin_ms
        self.gap_fill = gap_fill
        self._min_gap = min_gap_ms * sample_rate // 1000
        self._max_gap = max_gap_ms * sample_rate // 1000
        self.parts: list[WavWriter] = [open_part(1)]
        self.frames = 0
        """Frames written in all parts, silence included."""
        self.silence_frames = 0
        self.packets = 0

    @property
    def writer(self) -> WavWriter:
        return self.parts[-1]

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def add(self, pcm: bytes, timestamp: int | None) -> int:
        """Append one packet; returns the frames of silence written before it."""
        self.packets += 1
        filled = 0
        if self.gap_fill and timestamp is not None:
            if self.origin_ms is None:
                self.origin_ms = timestamp
            at = (timestamp - self.origin_ms) * self.sample_rate // 1000
            gap = at - self.frames
            if gap >= max(1, self._min_gap):
                filled = min(gap, self._max_gap)
                self._silence(filled)
        self._write(pcm)
        return filled

    def close(self) -> None:
        for part in self.parts:
            part.close()

    def _silence(self, frames: int) -> None:
        self.silence_frames += frames
        self.frames += frames
        while frames > 0:
            writer = self._current()
            n = min(frames, writer.room)
            writer.write_silence(n)
            frames -= n

    def _write(self, pcm: bytes) -> None:
        while pcm:
            writer = self._current()
            room = writer.room * writer.frame_size
            head, pcm = pcm[:room], pcm[room:]
            before = writer.frames
            writer.write(head)
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
    ``user_name`` when known).
    """

    def __init__(self, path: Path, index_path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = open(path, "wb")  # noqa: SIM115
        self.index = JsonlWriter(index_path)
        self.offset = 0
        self.packets = 0

    def add(
        self,
        data: bytes,
        *,
        timestamp: int | None,
        user_id: int | str | None,
        user_name: str | None,
    ) -> None:
        f = self._file
        if f is None:
            raise ValueError(f"{self.path} is closed")
        f.write(data)
        f.flush()
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

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.index.close()
