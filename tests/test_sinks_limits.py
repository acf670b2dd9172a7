"""The recorder's resource bounds: open files with thousands of speakers, and files that
stay consistent when the disk (here: a file size limit) is full.

Limits are set in a child process (``RLIMIT_NOFILE``, ``RLIMIT_FSIZE``), never in
the test process; open descriptors are counted in ``/proc/self/fd``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

from rtms_app.sinks import Recorder, RecorderOptions
from rtms_proto import AudioParams, MediaParams, SocketId, SocketRole
from rtms_proto import events as ev
from rtms_proto.enums import AudioSampleRate, Codec, DataOption, MediaType

AUDIO_SOCK = SocketId(2, SocketRole.AUDIO)
SPEAKERS = 3000


def packet(value: int) -> bytes:
    return struct.pack("<160h", *([value] * 160))  # 20 ms at 8 kHz


def connected(params: AudioParams) -> ev.MediaConnected:
    return ev.MediaConnected(
        sock=AUDIO_SOCK, media_type=MediaType.AUDIO, params=MediaParams(audio=params)
    )


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wav_frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def run_child(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_per_speaker_tracks_hold_a_bounded_number_of_files(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, RecorderOptions(max_open_tracks=8))
    rate = AudioSampleRate.SR_8K
    rec.handle(connected(AudioParams(sample_rate=rate, data_opt=DataOption.AUDIO_MULTI_STREAMS)))
    base = open_fds()
    peak = base
    for round_ in range(2):  # the second round reopens every track to append
        for uid in range(1, SPEAKERS + 1):
            data = packet(uid % 30000 + round_)
            t = round_ * 0.02 + uid * 1e-6
            rec.handle(ev.AudioReceived(data=data, user_id=uid, timestamp=round_ * 20), t)
            if uid % 100 == 0:
                peak = max(peak, open_fds())
    assert peak - base <= 8
    files = rec.close()
    assert open_fds() < base  # the events log is closed too
    wavs = sorted(tmp_path.glob("audio-*.wav"))
    assert len(wavs) == SPEAKERS
    assert not (tmp_path / "audio.wav").exists()
    for uid in (1, 2, 999, SPEAKERS):
        # both packets, in order: suspended tracks were reopened and appended to
        data = wav_frames(tmp_path / f"audio-{uid}.wav")
        assert data == packet(uid % 30000) + packet(uid % 30000 + 1)
    assert sum(1 for f in files if f.path.name.startswith("audio-")) == SPEAKERS


def test_mixed_audio_is_one_file_whatever_the_user_ids(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    rec.handle(connected(AudioParams(sample_rate=AudioSampleRate.SR_8K)))
    base = open_fds()
    for uid in range(1, SPEAKERS + 1):
        rec.handle(ev.AudioReceived(data=packet(7), user_id=uid, timestamp=uid * 20), uid * 0.02)
        if uid == 1:
            assert open_fds() == base + 1  # audio.wav
    assert open_fds() == base + 1
    rec.close()
    assert [p.name for p in tmp_path.glob("audio*")] == ["audio.wav"]
    assert wav_frames(tmp_path / "audio.wav") == packet(7) * SPEAKERS


DESCRIPTOR_LIMIT = """
    import resource, sys
    from pathlib import Path
    from rtms_app.sinks import Recorder
    from rtms_proto import AudioParams, MediaParams, SocketId, SocketRole
    from rtms_proto import events as ev
    from rtms_proto.enums import AudioSampleRate, Codec, DataOption, MediaType

    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    folder, codec, count = Path(sys.argv[1]), Codec[sys.argv[2]], int(sys.argv[3])
    rec = Recorder(folder)
    params = AudioParams(
        codec=codec, sample_rate=AudioSampleRate.SR_8K, data_opt=DataOption.AUDIO_MULTI_STREAMS
    )
    rec.handle(ev.MediaConnected(
        sock=SocketId(2, SocketRole.AUDIO), media_type=MediaType.AUDIO,
        params=MediaParams(audio=params),
    ))
    for round_ in range(2):
        for uid in range(1, count + 1):
            data = bytes([uid % 256, round_]) * 160
            rec.handle(ev.AudioReceived(data=data, user_id=uid, timestamp=round_ * 20), 0.0)
        # channel ids (Contact Center) share the same bound
        for n in range(count // 10):
            data = bytes([n % 256, round_]) * 160
            rec.handle(ev.AudioReceived(data=data, channel_id=f"ch/{n}", timestamp=round_ * 20))
    rec.close()
    print("done", rec.failure)
"""


def test_thousands_of_speakers_under_a_64_descriptor_limit(tmp_path: Path) -> None:
    """3,000 speakers once opened 3,011 files and aborted under ``ulimit -n 1024``."""
    for codec in ("L16", "OPUS"):
        folder = tmp_path / codec
        proc = run_child(DESCRIPTOR_LIMIT, str(folder), codec, str(SPEAKERS))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["done", "None"]
        if codec == "L16":
            assert len(list(folder.glob("audio-*.wav"))) == SPEAKERS + SPEAKERS // 10
            assert (
                wav_frames(folder / "audio-1234.wav")
                == bytes([1234 % 256, 0]) * 160 + bytes([1234 % 256, 1]) * 160
            )
        else:
            assert len(list(folder.glob("audio-*.opus.raw"))) == SPEAKERS + SPEAKERS // 10
            raw = (folder / "audio-77.opus.raw").read_bytes()
            assert raw == bytes([77, 0]) * 160 + bytes([77, 1]) * 160
            index = (folder / "audio-77.opus.jsonl").read_text("utf-8").splitlines()
            assert [json.loads(line)["offset"] for line in index] == [0, 320]


FILE_SIZE_LIMIT = """
    import json, resource, signal, sys
    from pathlib import Path
    from rtms_app.sinks import Recorder, RecorderOptions
    from rtms_proto import AudioParams, MediaParams, SocketId, SocketRole
    from rtms_proto import events as ev
    from rtms_proto.enums import AudioSampleRate, MediaType

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    folder, what = Path(sys.argv[1]), sys.argv[2]
    rec = Recorder(folder, RecorderOptions(expect=MediaType.TRANSCRIPT))
    rec.handle(ev.MediaConnected(
        sock=SocketId(2, SocketRole.AUDIO), media_type=MediaType.AUDIO,
        params=MediaParams(audio=AudioParams(sample_rate=AudioSampleRate.SR_8K)),
    ))
    error = None
    try:
        for n in range(10_000):
            if what == "audio":
                # 20 ms packets of odd sizes, so that the limit cuts one in the middle
                event = ev.AudioReceived(data=b"\\x01\\x02" * 163, user_id=0, timestamp=n * 20)
            elif what == "transcript":
                event = ev.TranscriptReceived(text=f"utterance {n} " * 40, user_name="Ann")
            else:
                event = ev.VideoReceived(data=b"\\xff\\xd8\\xff" + b"\\0" * 30_000, timestamp=n)
            rec.handle(event, n * 0.02)
    except OSError as exc:
        error = exc
    rec.close()  # never raises, even now
    print(json.dumps({
        "errno": error.errno, "filename": error.filename,
        "kept": rec.failure is error, "events": rec.stats.events,
    }))
"""


def test_a_full_disk_leaves_consistent_files_and_names_the_file(tmp_path: Path) -> None:
    """A failed write once left a WAV header saying 7.0 s with 7.93 s on disk."""
    results = {}
    for what in ("audio", "transcript", "video"):
        folder = tmp_path / what
        proc = run_child(FILE_SIZE_LIMIT, str(folder), what)
        assert proc.returncode == 0, proc.stderr
        results[what] = json.loads(proc.stdout)
        assert results[what]["errno"] == 27  # EFBIG: the size limit, as ENOSPC for a disk
        assert results[what]["kept"]
    assert results["audio"]["filename"] == str(tmp_path / "audio" / "audio.wav")
    wav = tmp_path / "audio" / "audio.wav"
    with wave.open(str(wav), "rb") as w:
        frames = w.getnframes()
        data = w.readframes(frames)
    # the header counts exactly the whole frames on disk, and they are the packets' samples
    assert wav.stat().st_size == 44 + 2 * frames
    assert 20_000 - 44 - 2 * 163 < wav.stat().st_size <= 20_000
    assert data == (b"\x01\x02" * 163 * 200)[: 2 * frames]

    folder = tmp_path / "transcript"
    assert results["transcript"]["filename"] == str(folder / "transcript.jsonl")
    lines = (folder / "transcript.jsonl").read_text("utf-8").splitlines()
    assert lines and all(json.loads(line)["user_name"] == "Ann" for line in lines)
    assert (folder / "transcript.jsonl").read_bytes().endswith(b"\n")
    vtt = (folder / "transcript.vtt").read_text("utf-8")
    assert vtt.count(" --> ") == len(lines) and vtt.endswith("\n")

    video = tmp_path / "video" / "video"
    assert Path(results["video"]["filename"]).parent == video
    assert sorted(p.name for p in video.iterdir()) == ["index.jsonl"]  # no partial image
    assert (video / "index.jsonl").read_text("utf-8") == ""
    events = (tmp_path / "video" / "events.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line)["type"] for line in events] == ["MediaConnected"]


def test_raw_codec_per_speaker_and_mixed(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, RecorderOptions(max_open_tracks=1))
    multi = AudioParams(codec=Codec.OPUS, data_opt=DataOption.AUDIO_MULTI_STREAMS)
    rec.handle(connected(multi))
    base = open_fds()
    for uid in (5, 6, 5):
        rec.handle(ev.AudioReceived(data=bytes([uid]), user_id=uid, timestamp=0))
        assert open_fds() == base + 2  # one track's data and index, no more
    rec.close()
    assert (tmp_path / "audio-5.opus.raw").read_bytes() == b"\x05\x05"
    assert (tmp_path / "audio-6.opus.raw").read_bytes() == b"\x06"
