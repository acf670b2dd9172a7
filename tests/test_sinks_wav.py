"""WAV and raw-audio sinks, read back with the standard library's ``wave`` module."""

from __future__ import annotations

import json
import shutil
import struct
import wave
from pathlib import Path

import pytest

from rtms_app.sinks import AudioTrack, RawAudioWriter, WavWriter


def pcm(frames: int, value: int = 1000, channels: int = 1) -> bytes:
    return struct.pack(f"<{frames * channels}h", *([value] * frames * channels))


def read(path: Path) -> tuple[int, int, bytes]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        assert w.getcomptype() == "NONE"
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def test_wav_round_trip_mono(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    w = WavWriter(path, sample_rate=16000, channels=1)
    data = pcm(320, 1234) + pcm(320, -5)
    w.write(data)
    assert w.frames == 640 and w.duration == pytest.approx(0.04)
    w.close()
    w.close()  # idempotent
    assert w.closed
    assert read(path) == (16000, 1, data)


def test_wav_stereo_and_partial_frames(tmp_path: Path) -> None:
    path = tmp_path / "s.wav"
    w = WavWriter(path, sample_rate=48000, channels=2)
    data = pcm(10, 7, channels=2)
    w.write(data[:3])  # not even one frame yet
    assert w.frames == 0
    w.write(data[3:])
    w.write(b"\x01")  # a dangling byte is dropped at close
    w.close()
    assert read(path) == (48000, 2, data)


def test_wav_is_valid_while_written_and_loses_at_most_a_second(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    w = WavWriter(path, sample_rate=8000, channels=1)
    w.write(pcm(8000 + 4000, 3))  # 1.5 s
    copy = tmp_path / "copy.wav"
    shutil.copy(path, copy)  # what a crash right now would leave
    rate, channels, frames = read(copy)
    assert (rate, channels) == (8000, 1)
    assert len(frames) // 2 >= 12000 - 8000  # at most one second missing
    assert len(frames) // 2 == 12000  # the header was rewritten after the first second
    w.write(pcm(100))
    shutil.copy(path, copy)
    assert len(read(copy)[2]) // 2 == 12000  # the tail is not yet in the header
    w.close()
    assert len(read(path)[2]) // 2 == 12100


def test_wav_silence_and_room(tmp_path: Path) -> None:
    path = tmp_path / "z.wav"
    w = WavWriter(path, sample_rate=16000, channels=1, max_data_bytes=2 * 100_000)
    assert w.room == 100_000
    w.write_silence(70_000)
    assert w.room == 30_000
    with pytest.raises(ValueError, match="full"):
        w.write(pcm(30_001))
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(pcm(1))
    assert read(path)[2] == bytes(140_000)


def test_wav_rejects_bad_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        WavWriter(tmp_path / "x.wav", sample_rate=0, channels=1)


def make_track(tmp_path: Path, **kw: object) -> AudioTrack:
    def open_part(n: int) -> WavWriter:
        return WavWriter(tmp_path / f"t{n}.wav", sample_rate=16000, channels=1, **kw)  # type: ignore[arg-type]

    return AudioTrack(open_part, sample_rate=16000)


PACKET = pcm(320, 500)  # 20 ms at 16 kHz


def test_track_fills_gaps_by_timestamp(tmp_path: Path) -> None:
    track = AudioTrack(
        lambda n: WavWriter(tmp_path / "g.wav", sample_rate=16000, channels=1),
        sample_rate=16000,
        origin_ms=1_000,
    )
    assert track.add(PACKET, 1_040) == 640  # 40 ms of leading silence
    assert track.add(PACKET, 1_060) == 0
    assert track.add(PACKET, 1_120) == 640  # muted from 1_080 to 1_120
    assert track.add(PACKET, None) == 0  # no timestamp: appended
    track.close()
    _, _, frames = read(tmp_path / "g.wav")
    assert frames == bytes(1280) + PACKET * 2 + bytes(1280) + PACKET * 2
    assert track.silence_frames == 1280
    assert track.duration == pytest.approx(0.16)


def test_track_never_drops_or_cuts_early_packets(tmp_path: Path) -> None:
    track = AudioTrack(
        lambda n: WavWriter(tmp_path / "e.wav", sample_rate=16000, channels=1),
        sample_rate=16000,
    )
    track.add(PACKET, 5_000)  # origin from the first packet
    track.add(PACKET, 5_010)  # overlaps: still appended whole
    track.add(PACKET, 5_040)  # exactly where the track is: no silence
    track.close()
    assert read(tmp_path / "e.wav")[2] == PACKET * 3


def test_track_without_gap_fill_concatenates(tmp_path: Path) -> None:
    track = AudioTrack(
        lambda n: WavWriter(tmp_path / "c.wav", sample_rate=16000, channels=1),
        sample_rate=16000,
        origin_ms=0,
        gap_fill=False,
    )
    track.add(PACKET, 1_000)
    track.add(PACKET, 9_000)
    track.close()
    assert read(tmp_path / "c.wav")[2] == PACKET * 2


def test_track_caps_one_gap(tmp_path: Path) -> None:
    track = AudioTrack(
        lambda n: WavWriter(tmp_path / "m.wav", sample_rate=16000, channels=1),
        sample_rate=16000,
        origin_ms=0,
        max_gap_ms=100,
    )
    track.add(PACKET, 0)
    assert track.add(PACKET, 3_600_000) == 1600  # a bogus jump adds only 100 ms
    track.close()


def test_track_continues_in_new_parts(tmp_path: Path) -> None:
    track = make_track(tmp_path, max_data_bytes=2 * 500)
    for i in range(4):
        track.add(PACKET, i * 20)  # 320 frames each, 500 per part
    track.close()
    parts = sorted(tmp_path.glob("t*.wav"))
    assert [p.name for p in parts] == ["t1.wav", "t2.wav", "t3.wav"]
    joined = b"".join(read(p)[2] for p in parts)
    assert joined == PACKET * 4
    assert track.frames == 1280


def test_track_gap_spanning_parts(tmp_path: Path) -> None:
    track = make_track(tmp_path, max_data_bytes=2 * 500)
    track.add(PACKET, 0)
    track.add(PACKET, 60)  # 640 frames of silence cross into part 2
    track.close()
    joined = b"".join(read(p)[2] for p in sorted(tmp_path.glob("t*.wav")))
    assert joined == PACKET + bytes(1280) + PACKET


def test_raw_audio_writer_index(tmp_path: Path) -> None:
    raw = RawAudioWriter(tmp_path / "audio.opus.raw", tmp_path / "audio.opus.jsonl")
    raw.add(b"\x01\x02\x03", timestamp=100, user_id=0, user_name=None)
    raw.add(b"\x04\x05", timestamp=120, user_id=7, user_name="Zoë")
    raw.close()
    raw.close()
    with pytest.raises(ValueError):
        raw.add(b"x", timestamp=1, user_id=0, user_name=None)
    assert (tmp_path / "audio.opus.raw").read_bytes() == b"\x01\x02\x03\x04\x05"
    lines = [json.loads(x) for x in (tmp_path / "audio.opus.jsonl").read_text("utf-8").splitlines()]
    assert lines == [
        {"offset": 0, "length": 3, "timestamp": 100, "user_id": 0},
        {"offset": 3, "length": 2, "timestamp": 120, "user_id": 7, "user_name": "Zoë"},
    ]
