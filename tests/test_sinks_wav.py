"""WAV and raw-audio sinks, read back with the standard library's ``wave`` module."""

from __future__ import annotations

import json
import shutil
import struct
import wave
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtms_app.sinks import AudioTrack, RawAudioWriter, WavWriter
from rtms_app.sinks.wav import Discontinuity


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


def test_wav_suspended_and_reopened_to_append(tmp_path: Path) -> None:
    path = tmp_path / "s.wav"
    w = WavWriter(path, sample_rate=8000, channels=1)
    w.write(pcm(100, 1))
    assert w.is_open
    w.suspend()
    assert (w.is_open, w.closed) == (False, False)
    assert read(path)[2] == pcm(100, 1)  # the header counts everything while suspended
    w.suspend()  # twice: nothing to do
    w.write(pcm(50, 2))  # reopens and appends
    assert (w.is_open, w.closed) == (True, False)
    w.close()
    assert read(path)[2] == pcm(100, 1) + pcm(50, 2)


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


def test_track_gap_over_the_limit_is_a_discontinuity(tmp_path: Path) -> None:
    seen: list[Discontinuity] = []
    track = AudioTrack(
        lambda n: WavWriter(tmp_path / "m.wav", sample_rate=16000, channels=1),
        sample_rate=16000,
        origin_ms=0,
        max_gap_ms=100,
        on_discontinuity=seen.append,
    )
    track.add(PACKET, 0)
    assert track.add(PACKET, 3_600_000) == 0  # a bogus jump adds no silence at all
    # re-anchored at the jump: the next gap is measured from it and filled
    assert track.add(PACKET, 3_600_000 + 60) == 640
    track.close()
    assert read(tmp_path / "m.wav")[2] == PACKET * 2 + bytes(1280) + PACKET
    assert seen == [
        Discontinuity(
            timestamp=3_600_000,
            jump_ms=3_599_980,
            position_ms=20,
            reason="a gap of 3599.980 s, longer than 0.100 s",
        )
    ]
    assert track.discontinuities == 1


def test_hour_jumps_arriving_at_once_write_no_silence(tmp_path: Path) -> None:
    """Three packets 1 h apart once wrote 230 MB; by the arrival clock they are a
    discontinuity each, and the file holds the three packets."""
    seen: list[Discontinuity] = []
    track = AudioTrack(
        lambda n: WavWriter(tmp_path / "h.wav", sample_rate=16000, channels=1),
        sample_rate=16000,
        on_discontinuity=seen.append,
    )
    for i in range(3):
        track.add(PACKET, 1_000 + i * 3_600_000, arrival=5.0 + i * 0.001)
    track.close()
    assert (tmp_path / "h.wav").stat().st_size == 44 + 3 * len(PACKET)
    assert track.silence_frames == 0
    assert [d.jump_ms for d in seen] == [3_599_980, 3_599_980]
    assert "ahead of the arrival clock (at most 65.000 s)" in seen[0].reason


def test_huge_timestamps_cost_nothing_and_filling_resumes(tmp_path: Path) -> None:
    """One packet at 2**63 - 1 once wrote 115 MB; the timeline now recovers after it."""
    seen: list[Discontinuity] = []
    track = AudioTrack(
        lambda n: WavWriter(tmp_path / "x.wav", sample_rate=16000, channels=1),
        sample_rate=16000,
        on_discontinuity=seen.append,
    )
    track.add(PACKET, 1_000, arrival=0.0)
    track.add(PACKET, 2**63 - 1, arrival=0.02)
    track.add(PACKET, 1_040, arrival=0.04)  # back to the real clock: behind, re-anchored
    assert track.add(PACKET, 1_100, arrival=0.1) == 640  # 40 ms gap: filled again
    track.close()
    assert read(tmp_path / "x.wav")[2] == PACKET * 3 + bytes(1280) + PACKET
    assert [d.jump_ms > 0 for d in seen] == [True, False]
    assert "behind the end of the track" in seen[1].reason


def test_real_gaps_are_filled_by_the_arrival_clock(tmp_path: Path) -> None:
    rate = 100  # 10 ms frames keep hours of silence small on disk
    track = AudioTrack(
        lambda n: WavWriter(tmp_path / "r.wav", sample_rate=rate, channels=1),
        sample_rate=rate,
        origin_ms=0,
    )
    quiet = pcm(2)  # 20 ms
    # a buffered start: 50 s of timestamps (with a 40 s mute) arriving within 0.1 s
    track.add(quiet, 0, arrival=100.0)
    assert track.add(quiet, 40_020, arrival=100.05) == 4_000
    # then a 10-minute mute, and the packets did take 10 minutes to come
    assert track.add(quiet, 640_040, arrival=700.1) == 60_000
    # a mute longer than the 1 h limit for a gap without an arrival time: still real
    assert track.add(quiet, 4_240_060, arrival=4_300.2) == 360_000
    assert track.discontinuities == 0
    # packets a little early (jitter, a replay after a reconnect) are appended as they are
    assert track.add(quiet, 4_240_070, arrival=4_300.3) == 0
    assert track.discontinuities == 0
    track.close()
    assert track.silence_frames == 424_000
    assert read(tmp_path / "r.wav")[2] == quiet + bytes(8_000) + quiet + bytes(120_000) + quiet + (
        bytes(720_000) + quiet * 2
    )


def test_total_silence_is_bounded(tmp_path: Path) -> None:
    track = AudioTrack(
        lambda n: WavWriter(tmp_path / "t.wav", sample_rate=8000, channels=1),
        sample_rate=8000,
        origin_ms=0,
        max_silence_ms=1_000,
    )
    quiet = pcm(160)
    assert track.add(quiet, 600) == 600 * 8
    assert track.add(quiet, 900) == 280 * 8  # 0.88 s of silence so far: still fits
    assert track.add(quiet, 2_000) == 0  # would pass 1 s of silence in total
    assert track.discontinuities == 1
    track.close()
    assert track.silence_frames <= 8_000


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=-(2**63), max_value=2**63 - 1),
            st.floats(min_value=0.0, max_value=5.0),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_silence_never_outruns_the_arrival_clock(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[int, float]]
) -> None:
    """Whatever the timestamps: silence <= time the packets took to arrive + 65 s."""
    folder = tmp_path_factory.mktemp("prop")
    track = AudioTrack(
        lambda n: WavWriter(folder / f"p{n}.wav", sample_rate=8000, channels=1),
        sample_rate=8000,
    )
    arrival = first = steps[0][1]
    for timestamp, wait in steps:
        arrival += wait
        track.add(pcm(160), timestamp, arrival=arrival)
        assert track.silence_frames <= (arrival - first) * 8000 + 65 * 8000
    track.close()
    size = sum(p.stat().st_size for p in folder.glob("*.wav"))
    assert size <= 44 + 2 * (len(steps) * 160 + int((arrival - first) * 8000) + 65 * 8000)


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
