"""Small helpers shared by the sinks: files that stay consistent when a write fails,
JSON lines, safe and injective file names, JSON values.

Every sink writes through :class:`AppendFile`: unbuffered, so what a sink
counts as written is what the system accepted, and all-or-nothing, so a write
that fails part-way (disk full, file size limit) is cut back off the file.  The
error then names the file (``OSError.filename``) and the file on disk ends
with the last whole record, packet or frame.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import io
import json
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "AppendFile",
    "JsonlWriter",
    "encode_text",
    "read_jsonl",
    "file_key",
    "safe_name",
    "to_json_value",
    "write_error",
    "write_new",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
_PLAIN = re.compile(r"[A-Za-z0-9_=+-]{1,64}")
_DIGITS = re.compile(r"-?[0-9]+")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_=+-]+")


def safe_name(text: str, limit: int = 64) -> str:
    """``text`` reduced to characters that are safe in a file name on every system."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    return cleaned[:limit]


def file_key(value: int | str) -> str:
    """A part of a file name for a user id or a channel id: safe, stable and injective.

    Ids made only of ``A-Z a-z 0-9 _ = + -`` (at most 64 characters) are kept
    as they are (an all-digit string only when it is an ``int``, so that the
    user id ``11`` and the channel id ``"11"`` stay apart).  Any other id
    becomes its safe characters (at most 40) followed by ``~`` and 12 hex digits
    of the SHA-256 of its type and text: ``a/b`` is ``a_b~1f0c...``, never
    ``a_b``.  The key never contains ``.``, ``/`` or a path part, so names
    built as ``audio-<key>.wav`` and ``audio-<key>.part2.wav`` cannot meet.
    """
    text = str(value)
    if isinstance(value, int):
        if len(text) <= 64:
            return text
    elif _PLAIN.fullmatch(text) and not _DIGITS.fullmatch(text):
        return text
    kind = "i" if isinstance(value, int) else "s"
    digest = hashlib.sha256(f"{kind}:{text}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_KEY_UNSAFE.sub('_', text)[:40]}~{digest[:12]}"


def write_error(exc: OSError, path: Path) -> OSError:
    """``exc`` as an error naming ``path`` (``filename``), for a one-line message."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _write_all(f: io.FileIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = f.write(view)
        if not n:
            raise OSError(0, "the system accepted no bytes")
        view = view[n:]


class AppendFile:
    """A new file written at its end, each :meth:`write` whole or not at all.

    Writes go straight to the system (no buffer left to flush at close).  A
    write that fails cuts the file back to its size before the write and
    raises an ``OSError`` naming the file; the file stays usable.
    :meth:`rewrite` changes bytes already written (a WAV header).
    :meth:`suspend` closes the file descriptor while the file is idle; the next
    write reopens it and appends, so many files can be kept without as many
    descriptors open.  With ``append=True`` an existing file is continued at
    its end (a recording resumed by another process) instead of emptied.
    """

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        self.size = 0
        self._closed = False
        if append and path.exists():
            self._file: io.FileIO | None = self._open("r+")
            self.size = self._file.seek(0, io.SEEK_END)
        else:
            self._file = self._open("w")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def is_open(self) -> bool:
        """Whether a file descriptor is held now (False when suspended or closed)."""
        return self._file is not None

    def write(self, data: bytes) -> None:
        f = self._handle()
        before = self.size
        try:
            _write_all(f, data)
        except OSError as exc:
            with contextlib.suppress(OSError):  # the error below says what went wrong first
                f.truncate(before)
                f.seek(before)
            raise write_error(exc, self.path) from exc
        self.size += len(data)

    def rewrite(self, offset: int, data: bytes) -> None:
        """Overwrite ``data`` at ``offset`` (inside what was already written)."""
        if offset + len(data) > self.size:
            raise ValueError("rewrite() only changes bytes already written")
        f = self._handle()
        try:
            f.seek(offset)
            _write_all(f, data)
        except OSError as exc:
            raise write_error(exc, self.path) from exc
        finally:
            f.seek(self.size)

    def suspend(self) -> None:
        """Close the descriptor; the next write reopens the file to append."""
        f, self._file = self._file, None
        if f is not None:
            f.close()

    def close(self) -> None:
        self._closed = True
        self.suspend()

    def _handle(self) -> io.FileIO:
        if self._closed:
            raise ValueError(f"{self.path} is closed")
        if self._file is None:
            self._file = self._open("r+")
            self._file.seek(self.size)
        return self._file

    def _open(self, mode: str) -> io.FileIO:
        try:
            return io.FileIO(self.path, mode)
        except OSError as exc:
            raise write_error(exc, self.path) from exc


def write_new(path: Path, data: bytes) -> None:
    """Write a whole new file; when that fails, nothing is left of it."""
    try:
        with io.FileIO(path, "w") as f:
            _write_all(f, data)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the error below says what went wrong first
            path.unlink()
        raise write_error(exc, path) from exc


def to_json_value(value: object) -> object:
    """A JSON-ready form of ``value``: enums by name, tuples as lists, bytes by length."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, int | float):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": len(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json_value(v) for v in value]
    return str(value)


def encode_text(text: str) -> bytes:
    """UTF-8, with what cannot be encoded (lone surrogates) replaced."""
    return text.encode("utf-8", "replace")


# Valid inside JSON strings, but line breaks to many line readers (U+0085, U+2028,
# U+2029) or not encodable in UTF-8 (lone surrogates): written as \\u escapes.
_JSON_RAW = re.compile("[\x85\u2028\u2029\ud800-\udfff]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


class JsonlWriter:
    """One JSON object per line, UTF-8, each line on disk whole or not at all.

    A line never holds a character that some reader takes for a line break.
    With ``append=True`` an existing file is continued and ``lines`` counts
    its lines too.
    """

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        self._out = AppendFile(path, append=append)
        self.lines = 0
        if self._out.size:
            with path.open("rb") as f:
                self.lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))

    def write(self, obj: Mapping[str, object]) -> None:
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        self._out.write(_JSON_RAW.sub(_json_escape, line).encode("utf-8") + b"\n")
        self.lines += 1

    def suspend(self) -> None:
        self._out.suspend()

    def close(self) -> None:
        self._out.close()


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """The JSON objects of a JSON-lines file written here (none when it does not exist).

    Lines that are not whole JSON objects (the last one of a process killed
    mid-write) are left out.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise write_error(exc, path) from exc
    out: list[dict[str, object]] = []
    for line in data.split(b"\n"):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out
