"""Small helpers shared by the sinks: UTF-8 JSON lines, safe file names, JSON values."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import IO

__all__ = ["JsonlWriter", "open_text", "safe_name", "to_json_value"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def safe_name(text: str, limit: int = 64) -> str:
    """``text`` reduced to characters that are safe in a file name on every system."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "_"
    return cleaned[:limit]


def open_text(path: Path) -> IO[str]:
    """A new UTF-8 text file (``\\n`` line ends; unencodable characters replaced)."""
    return open(path, "w", encoding="utf-8", errors="replace", newline="\n")


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


class JsonlWriter:
    """One JSON object per line, UTF-8, flushed after every line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open_text(path)
        self.lines = 0

    def write(self, obj: Mapping[str, object]) -> None:
        self._file.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        self._file.close()
