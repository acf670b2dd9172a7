"""Video and screen-share sink: one folder (``video/``, ``deskshare/``) per kind.

JPEG and PNG frames become one file each, named ``<ms>-<user id>.jpg`` where
``<ms>`` is the frame's timestamp in milliseconds from the stream's origin
(zero-padded, so names sort in time order).  H.264 access units are appended
to ``stream.h264``, a raw Annex-B byte stream that players and ``ffmpeg``
read directly.  ``index.jsonl`` lists every frame: ``timestamp``, ``user_id``,
``user_name``, ``bytes`` and the ``file`` (images) or ``offset`` (H.264).

Frames that share a timestamp and a user get ``.1``, ``.2`` ... before the
extension, numbered by a counter per name (naming costs the same for the
ten-thousandth such frame as for the first).

The format is taken from the frame itself (JPEG and PNG signatures) and
otherwise from the confirmed codec; anything unrecognised is kept as
``.bin`` files.  A frame that cannot be written leaves no file (images) or is
cut back off ``stream.h264``, and gets no index line.
"""

from __future__ import annotations

import os
from pathlib import Path

from rtms_proto.enums import Codec

from ._files import AppendFile, JsonlWriter, file_key, read_jsonl, write_new

__all__ = ["FrameSink"]

_PNG = b"\x89PNG\r\n\x1a\n"
_TS_LIMIT = 1 << 64


def _kind(data: bytes, codec: Codec | int | None) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == _PNG:
        return "png"
    if codec == Codec.H264 or data[:4] == b"\x00\x00\x00\x01" or data[:3] == b"\x00\x00\x01":
        return "h264"
    return "bin"


class FrameSink:
    """Writes the frames of one kind into ``folder`` (created on first use).

    ``append``: continues what an earlier process wrote there (its index,
    ``stream.h264`` and frame names: no file is written over).
    """

    def __init__(
        self, folder: Path, codec: Codec | int | None = None, *, append: bool = False
    ) -> None:
        self.folder = folder
        self.codec = codec
        self.frames = 0
        self.bytes = 0
        self.files: list[Path] = []
        self._index: JsonlWriter | None = None
        self._stream: AppendFile | None = None
        self._stream_path = folder / "stream.h264"
        self._offset = 0
        self._used: dict[str, int] = {}
        """Per name: how many frames have taken it or a numbered variant of it."""
        if append and self.index_path.exists():
            self._continue()

    def _continue(self) -> None:
        """Take up the index, the H.264 stream and the names an earlier process wrote."""
        for entry in read_jsonl(self.index_path):
            self.frames += 1
            size = entry.get("bytes")
            self.bytes += size if isinstance(size, int) else 0
            name = entry.get("file")
            offset = entry.get("offset")
            if isinstance(name, str):
                self.files.append(self.folder / name)
                stem, _, ext = name.partition(".")
                number, _, last = ext.rpartition(".")
                base = f"{stem}.{last}"
                n = int(number) if number.isdigit() else 0
                self._used[base] = max(self._used.get(base, 0), n + 1)
            elif isinstance(offset, int) and isinstance(size, int):
                self._offset = max(self._offset, offset + size)
        self._index = JsonlWriter(self.index_path, append=True)
        if self._stream_path.exists():
            # Bytes past the last indexed frame: a frame cut by the earlier process's end.
            if self._stream_path.stat().st_size > self._offset:
                os.truncate(self._stream_path, self._offset)
            self._stream = AppendFile(self._stream_path, append=True)
            self.files.append(self._stream_path)

    @property
    def index_path(self) -> Path:
        return self.folder / "index.jsonl"

    def add(
        self,
        data: bytes,
        *,
        timestamp: int | None,
        user_id: int | None,
        user_name: str | None,
        origin_ms: int | None,
    ) -> None:
        if self._index is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._index = JsonlWriter(self.index_path)
        entry: dict[str, object] = {
            "timestamp": timestamp,
            "user_id": user_id,
            "user_name": user_name,
            "bytes": len(data),
        }
        kind = _kind(data, self.codec)
        if kind == "h264":
            if self._stream is None:
                self._stream = AppendFile(self._stream_path)
                self.files.append(self._stream_path)
            self._stream.write(data)
            entry["offset"] = self._offset
            self._offset += len(data)
        else:
            name = self._name(timestamp, user_id, origin_ms, kind)
            path = self.folder / name
            write_new(path, data)
            self.files.append(path)
            entry["file"] = name
        self._index.write(entry)
        self.frames += 1
        self.bytes += len(data)

    def _name(
        self, timestamp: int | None, user_id: int | None, origin: int | None, ext: str
    ) -> str:
        if timestamp is not None and not -_TS_LIMIT < timestamp < _TS_LIMIT:
            timestamp = None  # no 64-bit time: named by count, not by a 400-digit number
        if origin is not None and not -_TS_LIMIT < origin < _TS_LIMIT:
            origin = None
        if timestamp is not None and origin is not None:
            stem = f"{max(0, timestamp - origin):09d}"
        elif timestamp is not None:
            stem = f"{timestamp:013d}"
        else:
            stem = f"frame{self.frames:07d}"
        stem += f"-{'unknown' if user_id is None else file_key(user_id)}"
        # A stem never contains a dot, so "<stem>.<n>.<ext>" can only come from here.
        base = f"{stem}.{ext}"
        n = self._used.get(base, 0)
        self._used[base] = n + 1
        return base if n == 0 else f"{stem}.{n}.{ext}"

    def close(self) -> None:
        try:
            if self._stream is not None:
                self._stream.close()
        finally:
            if self._index is not None:
                self._index.close()
