"""Media payloads a fake meeting sends: recognisable, valid where it is cheap to be.

* Audio: each speaker has a sine tone (:func:`tone_hz`) whose frequency is a
  multiple of 100 Hz, so every 10 ms holds whole cycles and every 20 ms slot of
  a speaker is the same bytes: recordings can be checked byte for byte and
  by ear.  L16 is exact; G.711 is real A-law of the same tone; Opus is Opus
  silence packets and G.722 zero bytes of the right size (no encoder in the
  standard library).  With ``content_type`` RTP each packet gets an RTP header.
* Video and screen share: real baseline JPEGs and PNGs of the confirmed
  resolution, with a comment naming the user and timestamp.  The server's
  frames show a picture (:func:`picture`): the meeting clock in large digits,
  the name of who is on screen and a square that moves with time, drawn in
  8x8 blocks, so that someone checking "does video work" sees it move; the
  bare :func:`jpeg_frame` / :func:`png_frame` are mid-grey.  H.264 is a real,
  decodable Annex-B stream (SPS, PPS, an intra-coded grey IDR picture, then
  all-skip P pictures).
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from array import array
from collections.abc import Sequence
from functools import lru_cache

from rtms_proto import AudioParams
from rtms_proto.enums import AudioChannel, AudioSampleRate, Codec, ContentType, Resolution

__all__ = [
    "AMPLITUDE",
    "RESOLUTION_PIXELS",
    "SLOT_MS",
    "alaw_encode",
    "audio_payload",
    "h264_access_unit",
    "jpeg_frame",
    "l16_slot",
    "picture",
    "png_frame",
    "sample_rate_hz",
    "tone_hz",
    "video_frame",
]

SLOT_MS = 20
"""Audio is decided per 20 ms slot: who talks at the slot's start talks for all of it."""

AMPLITUDE = 8000
"""Peak of every tone (about -12 dBFS)."""

RESOLUTION_PIXELS: dict[int, tuple[int, int]] = {
    Resolution.SD: (640, 360),
    Resolution.HD: (1280, 720),
    Resolution.FHD: (1920, 1080),
    Resolution.QHD: (2560, 1440),
}
"""Frame size per ``resolution`` value (docs/protocol.md §4.8; SD has two sizes, we use 640x360)."""

_RATE_HZ = {
    AudioSampleRate.SR_8K: 8000,
    AudioSampleRate.SR_16K: 16000,
    AudioSampleRate.SR_32K: 32000,
    AudioSampleRate.SR_48K: 48000,
}


def tone_hz(index: int) -> int:
    """The tone of the ``index``-th participant (0-based): 400, 500, 600 ... Hz."""
    if index < 0:
        raise ValueError("index must be >= 0")
    return 400 + 100 * index


def sample_rate_hz(params: AudioParams) -> int:
    """Samples per second of confirmed audio parameters."""
    return _RATE_HZ[AudioSampleRate(params.sample_rate)]


# --- PCM --------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def l16_slot(hz: int | None, rate: int, channels: int) -> bytes:
    """One 20 ms slot of little-endian 16-bit PCM: the tone ``hz``, or silence for None."""
    count = rate * SLOT_MS // 1000
    if hz is None:
        return bytes(2 * count * channels)
    samples = array(
        "h", (round(AMPLITUDE * math.sin(2 * math.pi * hz * i / rate)) for i in range(count))
    )
    if channels == AudioChannel.STEREO:
        stereo = array("h", bytes(4 * count))
        stereo[0::2] = samples
        stereo[1::2] = samples
        samples = stereo
    if sys.byteorder == "big":  # pragma: no cover - every CI machine is little-endian
        samples.byteswap()
    return samples.tobytes()


_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _alaw_sample(pcm: int) -> int:
    value = pcm >> 3
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = next((i for i, end in enumerate(_ALAW_SEGMENT_ENDS) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    code = segment << 4
    code |= (value >> 1 if segment < 2 else value >> segment) & 0x0F
    return code ^ mask


def alaw_encode(pcm: bytes) -> bytes:
    """G.711 A-law (ITU-T G.711) of little-endian 16-bit PCM."""
    samples = array("h", pcm)
    if sys.byteorder == "big":  # pragma: no cover
        samples.byteswap()
    return bytes(_alaw_sample(s) for s in samples)


@lru_cache(maxsize=64)
def _alaw_slot(hz: int | None) -> bytes:
    return alaw_encode(l16_slot(hz, 8000, 1))


_OPUS_SILENCE = {1: b"\xf8\xff\xfe", 2: b"\xfc\xff\xfe"}
"""A 20 ms CELT fullband Opus frame that decodes to silence (mono, stereo)."""

_RTP_PAYLOAD_TYPES = {Codec.OPUS: 111, Codec.G711: 8, Codec.G722: 9}


def audio_payload(
    params: AudioParams,
    tones: Sequence[int | None],
    *,
    packet_index: int,
    ssrc: int,
) -> bytes:
    """The ``data`` of one audio packet covering ``len(tones)`` 20 ms slots.

    ``tones`` holds the tone of each slot (None: silence); ``packet_index``
    numbers the packets of one stream (RTP sequence and timestamp).
    """
    rate = sample_rate_hz(params)
    channels = int(params.channel)
    codec = params.codec
    if codec == Codec.L16:
        body = b"".join(l16_slot(hz, rate, channels) for hz in tones)
    elif codec == Codec.G711:
        body = b"".join(_alaw_slot(hz) for hz in tones)
    elif codec == Codec.OPUS:
        body = _OPUS_SILENCE[channels] * len(tones)
    else:  # G.722: 64 kbit/s, 160 bytes per 20 ms; shape only
        body = bytes(160 * len(tones))
    if params.content_type != ContentType.RTP:
        return body
    samples_per_packet = rate * SLOT_MS * len(tones) // 1000
    header = struct.pack(
        "!BBHII",
        0x80,
        _RTP_PAYLOAD_TYPES.get(Codec(codec), 96),
        packet_index & 0xFFFF,
        (packet_index * samples_per_packet) & 0xFFFFFFFF,
        ssrc & 0xFFFFFFFF,
    )
    return header + body


# --- JPEG -------------------------------------------------------------------------------------


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body


@lru_cache(maxsize=16)
def _jpeg_parts(width: int, height: int) -> tuple[bytes, bytes]:
    """Header segments and scan data of a mid-grey baseline JPEG of this size.

    One Huffman code per table (DC "category 0", AC "end of block"), so every
    8x8 block is the two bits ``00`` and the picture is uniform grey.
    """
    app0 = _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    dqt = _segment(0xDB, b"\x00" + b"\x01" * 64)
    sof0 = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    counts = b"\x01" + bytes(15)
    dht = _segment(0xC4, b"\x00" + counts + b"\x00") + _segment(0xC4, b"\x10" + counts + b"\x00")
    sos = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    blocks = math.ceil(width / 8) * math.ceil(height / 8)
    bits = 2 * blocks
    data = bytearray(math.ceil(bits / 8))
    if bits % 8:
        data[-1] = (1 << (8 - bits % 8)) - 1  # pad the last byte with 1 bits
    return b"\xff\xd8" + app0, dqt + sof0 + dht + sos + bytes(data) + b"\xff\xd9"


def jpeg_frame(width: int, height: int, comment: bytes = b"") -> bytes:
    """A valid baseline JPEG (grey) with an optional COM segment (up to 65533 bytes)."""
    head, tail = _jpeg_parts(width, height)
    com = _segment(0xFE, comment[:65533]) if comment else b""
    return head + com + tail


_DC_COUNTS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
"""Code lengths of the DC Huffman table of ITU-T T.81 Annex K.3 (categories 0..11)."""


def _dc_codes() -> list[tuple[int, int]]:
    """(code, length) per DC category: the canonical codes of :data:`_DC_COUNTS`."""
    codes: list[tuple[int, int]] = []
    code = 0
    for length, count in enumerate(_DC_COUNTS, start=1):
        for _ in range(count):
            codes.append((code, length))
            code += 1
        code <<= 1
    return codes


_DC_CODES = _dc_codes()


def jpeg_picture(width: int, height: int, levels: bytes, comment: bytes = b"") -> bytes:
    """A valid baseline greyscale JPEG whose 8x8 blocks are flat, block ``i`` (rows of
    ``ceil(width / 8)`` blocks) of grey level ``levels[i]``: only DC coefficients are
    coded (Annex K DC table, an end-of-block right after each)."""
    wide, high = math.ceil(width / 8), math.ceil(height / 8)
    if len(levels) != wide * high:
        raise ValueError(f"{wide * high} levels needed, got {len(levels)}")
    app0 = _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    com = _segment(0xFE, comment[:65533]) if comment else b""
    dqt = _segment(0xDB, b"\x00" + b"\x01" * 64)
    sof0 = _segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    dht = _segment(0xC4, b"\x00" + bytes(_DC_COUNTS) + bytes(range(12)))
    dht += _segment(0xC4, b"\x10" + b"\x01" + bytes(15) + b"\x00")  # EOB is the code 0
    sos = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    out = bytearray()
    acc = bits = 0
    previous = 0
    for level in levels:
        dc = 8 * (level - 128)  # the DC coefficient of a flat block (quantizer 1)
        diff, previous = dc - previous, dc
        size = abs(diff).bit_length()
        code, length = _DC_CODES[size]
        value = diff if diff >= 0 else diff + (1 << size) - 1
        acc = (acc << (length + size + 1)) | (code << (size + 1)) | (value << 1)  # then EOB
        bits += length + size + 1
        while bits >= 8:
            bits -= 8
            byte = (acc >> bits) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0)  # byte stuffing
        acc &= (1 << bits) - 1
    if bits:
        byte = ((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xFF  # pad with 1 bits
        out.append(byte)
        if byte == 0xFF:
            out.append(0)
    return b"\xff\xd8" + app0 + com + dqt + sof0 + dht + sos + bytes(out) + b"\xff\xd9"


# --- PNG --------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@lru_cache(maxsize=16)
def _png_pixels(width: int, height: int) -> bytes:
    row = b"\x00" + b"\x80" * width
    return _png_chunk(b"IDAT", zlib.compress(row * height, 9))


def png_frame(width: int, height: int, comment: bytes = b"") -> bytes:
    """A valid 8-bit greyscale PNG (grey) with an optional ``tEXt`` comment."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    text = _png_chunk(b"tEXt", b"Comment\x00" + comment) if comment else b""
    return (
        b"\x89PNG\r\n\x1a\n" + header + text + _png_pixels(width, height) + _png_chunk(b"IEND", b"")
    )


def png_picture(width: int, height: int, levels: bytes, comment: bytes = b"") -> bytes:
    """A valid 8-bit greyscale PNG of the same 8x8-block picture as :func:`jpeg_picture`."""
    wide = math.ceil(width / 8)
    if len(levels) != wide * math.ceil(height / 8):
        raise ValueError("one level per 8x8 block is needed")
    rows = []
    for y in range(height):
        start = (y // 8) * wide
        row = bytes(levels[start + x // 8] for x in range(width))
        rows.append(b"\x00" + row)
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    text = _png_chunk(b"tEXt", b"Comment\x00" + comment) if comment else b""
    data = _png_chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
    return b"\x89PNG\r\n\x1a\n" + header + text + data + _png_chunk(b"IEND", b"")


# --- pictures -----------------------------------------------------------------------------------

_GLYPHS = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    "'": "00100 00100 01000 00000 00000 00000 00000",
    " ": "00000 00000 00000 00000 00000 00000 00000",
    "?": "01110 10001 00001 00010 00100 00000 00100",
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11100 10010 10001 10001 10001 10010 11100",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
}
"""A 5x7 font: uppercase letters, digits and a little punctuation (others show as ``?``)."""

BACKGROUND, INK, MARK = 48, 235, 160
"""Grey levels of a :func:`picture`: a dark background, white text, a grey moving square."""


def _draw_text(levels: bytearray, wide: int, high: int, text: str, *, top: int, scale: int) -> None:
    """``text`` in :data:`_GLYPHS`, centred, ``scale`` blocks per font dot, cut to fit."""
    fits = max(0, (wide + scale) // (6 * scale))
    text = text.upper()[:fits]
    left = max(0, (wide - (len(text) * 6 - 1) * scale) // 2)
    for n, char in enumerate(text):
        rows = _GLYPHS.get(char, _GLYPHS["?"]).split()
        for gy, row in enumerate(rows):
            for gx, dot in enumerate(row):
                if dot != "1":
                    continue
                for dy in range(scale):
                    for dx in range(scale):
                        x = left + (n * 6 + gx) * scale + dx
                        y = top + gy * scale + dy
                        if 0 <= x < wide and 0 <= y < high:
                            levels[y * wide + x] = INK


@lru_cache(maxsize=64)
def picture(width: int, height: int, clock_ms: int, name: str) -> bytes:
    """One grey level per 8x8 block (rows of ``ceil(width / 8)``): the clock
    ``MM:SS.d`` (``clock_ms`` into the meeting) in large digits, ``name`` below it,
    and a square that crosses the bottom once every 8 seconds."""
    wide, high = math.ceil(width / 8), math.ceil(height / 8)
    levels = bytearray([BACKGROUND]) * (wide * high)
    tenths = max(0, clock_ms) // 100
    minutes, rest = divmod(tenths, 600)
    clock = f"{minutes % 100:02d}:{rest // 10:02d}.{rest % 10}"
    big = max(1, min(wide // (6 * len(clock)), high // 20))
    small = max(1, big // 2)
    top = max(0, (high - 7 * big - 3 * small - 7 * small) // 2)
    _draw_text(levels, wide, high, clock, top=top, scale=big)
    _draw_text(levels, wide, high, name, top=top + 7 * big + 3 * small, scale=small)
    side = max(1, high // 12)
    x = (clock_ms * (wide - side) // 8000) % max(1, wide - side)
    for y in range(high - side - 1, high - 1):
        for dx in range(side):
            levels[y * wide + x + dx] = MARK
    return bytes(levels)


# --- H.264 ------------------------------------------------------------------------------------


class _Bits:
    """An RBSP bit writer with Exp-Golomb codes (ITU-T H.264 §7.2, §9.1)."""

    def __init__(self) -> None:
        self._bits: list[str] = []

    def u(self, count: int, value: int) -> None:
        if count:
            self._bits.append(format(value, f"0{count}b"))

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(code.bit_length() - 1, 0)
        self.u(code.bit_length(), code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def raw(self, bits: str) -> None:
        self._bits.append(bits)

    def rbsp(self) -> bytes:
        """The bits with rbsp_trailing_bits (a 1, then 0s to a byte boundary)."""
        text = "".join(self._bits) + "1"
        text += "0" * (-len(text) % 8)
        return int(text, 2).to_bytes(len(text) // 8, "big")


def _nal(header: int, rbsp: bytes) -> bytes:
    """Annex-B start code, NAL header, payload with emulation prevention bytes."""
    out = bytearray(b"\x00\x00\x00\x01")
    out.append(header)
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


_LEVELS = {360: 30, 720: 31, 1080: 40, 1440: 50}

_INTRA_MB = "00100111"
"""One macroblock of the IDR picture: mb_type I_16x16_2_0_0 (DC prediction, no
coded residual) ue(3) ``00100``, intra_chroma_pred_mode DC ue(0) ``1``,
mb_qp_delta se(0) ``1``, and the Intra16x16 DC coeff_token "no coefficients" ``1``."""


@lru_cache(maxsize=8)
def _h264_headers(width: int, height: int) -> bytes:
    """SPS and PPS NAL units for a Baseline-profile stream of this size."""
    mb_w, mb_h = math.ceil(width / 16), math.ceil(height / 16)
    sps = _Bits()
    sps.u(8, 66)  # profile_idc: Baseline
    sps.u(8, 0xC0)  # constraint_set0 and set1: Baseline and Main decoders accept it
    sps.u(8, _LEVELS.get(height, 51))
    sps.ue(0)  # seq_parameter_set_id
    sps.ue(0)  # log2_max_frame_num_minus4: frame_num has 4 bits
    sps.ue(2)  # pic_order_cnt_type 2: output order = decoding order
    sps.ue(1)  # max_num_ref_frames
    sps.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    sps.ue(mb_w - 1)
    sps.ue(mb_h - 1)
    sps.u(1, 1)  # frame_mbs_only_flag
    sps.u(1, 1)  # direct_8x8_inference_flag
    crop_right, crop_bottom = (mb_w * 16 - width) // 2, (mb_h * 16 - height) // 2
    sps.u(1, 1 if crop_right or crop_bottom else 0)
    if crop_right or crop_bottom:
        for offset in (0, crop_right, 0, crop_bottom):
            sps.ue(offset)
    sps.u(1, 0)  # vui_parameters_present_flag
    pps = _Bits()
    pps.ue(0)  # pic_parameter_set_id
    pps.ue(0)  # seq_parameter_set_id
    pps.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    pps.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    pps.ue(0)  # num_slice_groups_minus1
    pps.ue(0)  # num_ref_idx_l0_default_active_minus1
    pps.ue(0)  # num_ref_idx_l1_default_active_minus1
    pps.u(1, 0)  # weighted_pred_flag
    pps.u(2, 0)  # weighted_bipred_idc
    pps.se(0)  # pic_init_qp_minus26
    pps.se(0)  # pic_init_qs_minus26
    pps.se(0)  # chroma_qp_index_offset
    pps.u(1, 1)  # deblocking_filter_control_present_flag
    pps.u(1, 0)  # constrained_intra_pred_flag
    pps.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(0x67, sps.rbsp()) + _nal(0x68, pps.rbsp())


def _macroblocks(width: int, height: int) -> int:
    return math.ceil(width / 16) * math.ceil(height / 16)


@lru_cache(maxsize=16)
def _idr_slice(width: int, height: int, idr_id: int) -> bytes:
    bits = _Bits()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(7)  # slice_type: I (all slices)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, 0)  # frame_num
    bits.ue(idr_id)  # idr_pic_id
    bits.u(1, 0)  # no_output_of_prior_pics_flag
    bits.u(1, 0)  # long_term_reference_flag
    bits.se(0)  # slice_qp_delta
    bits.ue(1)  # disable_deblocking_filter_idc
    bits.raw(_INTRA_MB * _macroblocks(width, height))
    return _nal(0x65, bits.rbsp())


def h264_access_unit(width: int, height: int, *, frame_num: int, idr_id: int = 0) -> bytes:
    """One decodable Annex-B access unit of a grey picture.

    ``frame_num`` 0 gives SPS + PPS + an IDR picture (every macroblock intra
    16x16 DC, predicted grey); later numbers give a P picture whose macroblocks
    are all skipped (a repeat of the previous picture).  ``frame_num`` counts
    pictures since the last IDR; ``idr_id`` should differ between consecutive
    IDRs (only its lowest bit is used).
    """
    if frame_num == 0:
        return _h264_headers(width, height) + _idr_slice(width, height, idr_id & 1)
    bits = _Bits()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(5)  # slice_type: P (all slices)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, frame_num % 16)
    bits.u(1, 0)  # num_ref_idx_active_override_flag
    bits.u(1, 0)  # ref_pic_list_modification_flag_l0
    bits.u(1, 0)  # adaptive_ref_pic_marking_mode_flag
    bits.se(0)  # slice_qp_delta
    bits.ue(1)  # disable_deblocking_filter_idc
    bits.ue(_macroblocks(width, height))  # mb_skip_run: every macroblock skipped
    return _nal(0x41, bits.rbsp())


def video_frame(
    codec: Codec | int,
    resolution: Resolution | int,
    *,
    frame_num: int,
    idr_id: int,
    label: bytes,
    clock_ms: int | None = None,
    name: str = "",
) -> bytes:
    """One video or screen-share frame for confirmed ``codec`` and ``resolution``.

    With ``clock_ms``, JPEG and PNG frames show :func:`picture` (the clock and
    ``name``); without it they are mid-grey.  H.264 frames are always grey.
    """
    width, height = RESOLUTION_PIXELS.get(int(resolution), RESOLUTION_PIXELS[Resolution.HD])
    if codec == Codec.H264:
        return h264_access_unit(width, height, frame_num=frame_num, idr_id=idr_id)
    if clock_ms is None:
        if codec == Codec.PNG:
            return png_frame(width, height, label)
        return jpeg_frame(width, height, label)
    levels = picture(width, height, clock_ms, name)
    if codec == Codec.PNG:
        return png_picture(width, height, levels, label)
    return jpeg_picture(width, height, levels, label)
