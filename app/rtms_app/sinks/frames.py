"""Video and screen-share sink: one folder (``video/``, ``deskshare/``) per kind.

JPEG and PNG frames become one file each, named ``<ms>-<user id>.jpg`` where
``<ms>`` is the frame's timestamp in milliseconds from the stream's origin
(zero-padded, so names sort in time order).  H.264 access units are appended
to ``stream.h264``, a raw Annex-B byte stream that players and ``ffmpeg``
read directly.  ``index.jsonl`` lists every frame: ``timestamp``, ``user_id``,
``user_name``, ``bytes`` and the ``file`` (images) or ``offset`` (H.264).

The format is taken from the frame itself (JPEG and PNG signatures) and
otherwise from the confirmed codec; anything unrecognised is kept as
``.bin`` files.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from rtms_proto.enums import Codec

from ._files import JsonlWriter, safe_name

__all__ = ["FrameSink"]

_PNG = b"\x89PNG\r\n\x1a\n"


def _kind(data: bytes, codec: Codec | int | None) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == _PNG:
        return "png"
    if codec == Codec.H264 or data[:4] == b"\x00\x00\x00\x01" or data[:3] == b"\x00\x00\x01":
        return "h264"
    return "bin"


class FrameSink:
    """Writes the frames of one kind into ``folder`` (created on first use)."""

    def __init__(self, folder: Path, codec: Codec | int | None = None) -> None:
        self.folder = folder
        self.codec = codec
        self.frames = 0
        self.bytes = 0
        self.files: list[Path] = []
        self._index: JsonlWriter | None = None
        self._stream: BinaryIO | None = None
        self._stream_path = folder / "stream.h264"
        self._offset = 0
        self._names: set[str] = set()

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
                self._stream = open(self._stream_path, "wb")  # noqa: SIM115
                self.files.append(self._stream_path)
            self._stream.write(data)
            self._stream.flush()
            entry["offset"] = self._offset
            self._offset += len(data)
        else:
            name = self._name(timestamp, user_id, origin_ms, kind)
            path = self.folder / name
            path.write_bytes(data)
            self.files.append(path)
            entry["file"] = name
        self._index.write(entry)
        self.frames += 1
        self.bytes += len(data)

    def _name(
        self, timestamp: int | None, user_id: int | None, origin: int | None, ext: str
    ) -> str:
        if timestamp is not None and origin is not None:
            stem = f"{max(0, timestamp - origin):09d}"
        elif timestamp is not None:
            stem = f"{timestamp:013d}"
        else:
            stem = f"frame{self.frames:07d}"
        stem += f"-{safe_name(str(user_id if user_id is not None else 'unknown'))}"
        name = f"{stem}.{ext}"
        n = 1
        while name in self._names:
            name = f"{stem}.{n}.{ext}"
            n += 1
        self._names.add(name)
        return name

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._index is not None:
            self._index.close()
