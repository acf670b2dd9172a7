"""Text from the network made safe to print on a terminal.

Names, reasons and ids chosen by a server or a webhook sender could otherwise
move the cursor, clear the screen, retitle the window, ring the bell, forge a
new line of output (CR, LF) or reverse the text that follows (bidi controls).
:func:`printable` shows such characters as visible escapes instead; every line
the ``rtms-proto`` command prints with text from the network goes through it.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["columns", "fit", "printable"]

# C0 and C1 controls and DEL (ESC, BEL, CR, LF, TAB, CSI ...), line and paragraph
# separators, the bidi embedding, override and isolate controls and marks, and lone
# surrogates (which a UTF-8 terminal stream cannot even encode).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, limit: int | None = 300) -> str:
    """``str(text)`` with control characters shown as ``\\x1b``-style escapes.

    At most ``limit`` characters of ``text`` are kept (then ``…``); None keeps
    all of it.
    """
    value = str(text)
    cut = limit is not None and len(value) > limit
    if cut:
        value = value[:limit]
    value = _UNSAFE.sub(_escape, value)
    return value + "…" if cut else value


def _cells(char: str) -> int:
    """Terminal cells one character takes: 0 (combining, format), 2 (wide) or 1."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def columns(text: str) -> int:
    """How many terminal columns ``text`` (printable, one line) takes."""
    return sum(_cells(c) for c in text)


def fit(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns (wide characters count two), ending in
    ``…`` when cut, so that a line never wraps on a terminal that wide."""
    if columns(text) <= width:
        return text
    room = max(0, width - 1)
    used = 0
    out = []
    for char in text:
        cells = _cells(char)
        if used + cells > room:
            break
        used += cells
        out.append(char)
    return "".join(out) + "…" if width > 0 else ""
