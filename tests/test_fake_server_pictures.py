"""The fake server's video frames show something: the meeting clock, who is on screen,
a square that moves.  Frames are decoded here by a small baseline-JPEG reader of
its own (Huffman tables from the file, DC and AC coefficients) and zlib for PNG."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import pytest
from cli_harness import finish, reap_commands, start_cli

from rtms_conformance import payloads as p

__all__ = ["reap_commands"]


def _segments(data: bytes) -> tuple[dict[int, list[bytes]], bytes]:
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    found: dict[int, list[bytes]] = {}
    i = 2
    while True:
        assert data[i] == 0xFF
        marker = data[i + 1]
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        found.setdefault(marker, []).append(data[i + 4 : i + 2 + length])
        i += 2 + length
        if marker == 0xDA:
            return found, data[i:-2]


def _table(body: bytes) -> tuple[int, dict[tuple[int, int], int]]:
    """(class and id, {(length, code): symbol}) of one DHT table."""
    counts, symbols = body[1:17], body[17:]
    table = {}
    code = k = 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            table[(length, code)] = symbols[k]
            code += 1
            k += 1
        code <<= 1
    return body[0], table


def decode_jpeg(data: bytes) -> tuple[int, int, list[int]]:
    """(width, height, grey level of each 8x8 block) of a greyscale baseline JPEG whose
    blocks are flat (every AC coefficient zero, which this checks)."""
    seg, scan = _segments(data)
    _, height, width, components = struct.unpack(">BHHB", seg[0xC0][0][:6])
    assert components == 1
    assert seg[0xDB][0][1:] == b"\x01" * 64
    tables = dict(_table(body) for body in seg[0xC4])
    dc, ac = tables[0x00], tables[0x10]
    raw = scan.replace(b"\xff\x00", b"\xff")
    bits = "".join(f"{b:08b}" for b in raw)
    pos = 0

    def symbol(table: dict[tuple[int, int], int]) -> int:
        nonlocal pos
        for length in range(1, 17):
            key = (length, int(bits[pos : pos + length], 2))
            if key in table:
                pos += length
                return table[key]
        raise AssertionError(f"no Huffman code at bit {pos}")

    levels = []
    previous = 0
    for _ in range(math.ceil(width / 8) * math.ceil(height / 8)):
        size = symbol(dc)
        value = int(bits[pos : pos + size], 2) if size else 0
        if size and value < 1 << (size - 1):
            value -= (1 << size) - 1
        pos += size
        previous += value
        assert symbol(ac) == 0x00, "a flat block has no AC coefficient"
        levels.append(previous // 8 + 128)
    assert set(bits[pos:]) <= {"1"} and len(bits) - pos < 8  # padding only
    return width, height, levels


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    i, chunks = 8, {}
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        chunks[data[i + 4 : i + 8]] = data[i + 8 : i + 8 + length]
        i += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    rows = zlib.decompress(chunks[b"IDAT"])
    pixels = b"".join(rows[y * (width + 1) + 1 : (y + 1) * (width + 1)] for y in range(height))
    return width, height, pixels


def glyph_rows(levels: list[int], wide: int) -> list[str]:
    return [
        "".join("#" if v == p.INK else "." for v in levels[y : y + wide])
        for y in range(0, len(levels), wide)
    ]


@pytest.mark.parametrize(("width", "height"), list(p.RESOLUTION_PIXELS.values()))
def test_pictures_decode_to_the_clock_and_the_name(width: int, height: int) -> None:
    levels = p.picture(width, height, 75_400, "Alice Example")
    got_w, got_h, decoded = decode_jpeg(p.jpeg_picture(width, height, levels, b"user=1"))
    assert (got_w, got_h) == (width, height)
    assert decoded == list(levels)
    wide = math.ceil(width / 8)
    rows = glyph_rows(decoded, wide)
    inked = [r for r in rows if "#" in r]
    assert len(inked) >= 14  # two lines of 7-dot glyphs
    # the first glyph of the clock "01:15.4" is a 0: a closed loop of ink
    assert set(decoded) == {p.BACKGROUND, p.INK, p.MARK}
    png_w, png_h, pixels = decode_png(p.png_picture(width, height, levels))
    assert (png_w, png_h) == (width, height)
    assert all(
        pixels[y * width + x] == levels[(y // 8) * wide + x // 8]
        for y in range(0, height, 7)
        for x in range(0, width, 7)
    )


def test_the_picture_changes_with_the_clock_and_the_name() -> None:
    a = p.picture(640, 360, 1_000, "Alice")
    assert p.picture(640, 360, 1_000, "Alice") == a
    assert p.picture(640, 360, 2_000, "Alice") != a  # the clock and the square moved
    assert p.picture(640, 360, 1_000, "Bob") != a
    # the text is drawn from the font: the digits of two clocks differ where they should
    wide = 80
    one = glyph_rows(list(p.picture(640, 360, 11_000, "")), wide)
    two = glyph_rows(list(p.picture(640, 360, 22_000, "")), wide)
    assert one != two
    with pytest.raises(ValueError, match="levels needed"):
        p.jpeg_picture(640, 360, b"\x00")


def test_demo_video_frames_are_not_blank(tmp_path: Path) -> None:
    code, _, err = finish(start_cli(["demo", "--duration", "2", "-q"], cwd=tmp_path))
    assert code == 0, err
    frames = sorted((tmp_path / "rtms-demo" / "video").glob("*.jpg"))
    assert len(frames) >= 5
    decoded = [decode_jpeg(f.read_bytes())[2] for f in frames]
    assert all(p.INK in levels for levels in decoded)  # text on every frame
    assert len({tuple(levels) for levels in decoded}) == len(decoded)  # and it moves
