"""The Recorder: events of one stream in, the stream's files out."""

from __future__ import annotations

import json
import logging
import struct
import wave
from pathlib import Path

import pytest

from rtms_app.progress import format_bytes, render
from rtms_app.sinks import Recorder, RecorderOptions
from rtms_proto import AudioParams, MediaParams, SocketId, SocketRole, VideoParams
from rtms_proto import events as ev
from rtms_proto.enums import (
    AudioChannel,
    AudioSampleRate,
    Codec,
    DataOption,
    FailureReason,
    MediaType,
)
from rtms_proto.messages import Participant

AUDIO_SOCK = SocketId(2, SocketRole.AUDIO)


def packet(value: int, frames: int = 320, channels: int = 1) -> bytes:
    return struct.pack(f"<{frames * channels}h", *([value] * frames * channels))


def connected(params: AudioParams) -> ev.MediaConnected:
    return ev.MediaConnected(
        sock=AUDIO_SOCK, media_type=MediaType.AUDIO, params=MediaParams(audio=params)
    )


def wav(path: Path) -> tuple[int, int, bytes]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines()]


def speaker(rec: Recorder) -> str | None:
    return rec.stats.speaker


def test_mixed_audio_on_the_stream_timeline(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    rec.handle(ev.FirstPacketReceived(timestamp=1_000), 0.0)
    rec.handle(connected(AudioParams()), 0.1)
    rec.handle(ev.AudioReceived(data=packet(1), user_id=0, timestamp=1_020))
    rec.handle(ev.AudioReceived(data=packet(2), user_id=0, timestamp=1_040))
    rec.handle(ev.AudioReceived(data=packet(3), user_id=0, timestamp=1_100))  # 40 ms lost
    files = rec.close()
    assert wav(tmp_path / "audio.wav") == (
        16000,
        1,
        bytes(640) + packet(1) + packet(2) + bytes(1280) + packet(3),
    )
    assert rec.origin_ms == 1_000
    assert rec.stats.counts["audio"].messages == 3
    assert rec.stats.counts["audio"].bytes == 3 * 640
    notes = {f.path.name: f.note for f in files}
    assert notes["audio.wav"] == "16000 Hz mono, 0.12 s (incl. 0.06 s gap silence)"
    assert notes["events.jsonl"] == "2 events"
    # media packets are not repeated in the events log
    assert [e["type"] for e in jsonl(tmp_path / "events.jsonl")] == [
        "FirstPacketReceived",
        "MediaConnected",
    ]


def test_multi_stream_audio_one_file_per_speaker(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    rec.handle(connected(AudioParams(data_opt=DataOption.AUDIO_MULTI_STREAMS)))
    rec.handle(ev.AudioReceived(data=packet(1), user_id=11, user_name="A", timestamp=500))
    rec.handle(ev.AudioReceived(data=packet(2), user_id=22, user_name="B", timestamp=540))
    rec.handle(ev.AudioReceived(data=packet(1), user_id=11, user_name="A", timestamp=520))
    rec.close()
    assert not (tmp_path / "audio.wav").exists()
    assert wav(tmp_path / "audio-11.wav")[2] == packet(1) * 2
    # aligned with the other speakers: same origin, silence until B speaks
    assert wav(tmp_path / "audio-22.wav")[2] == bytes(1280) + packet(2)


def test_no_gap_fill_and_far_origin(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, RecorderOptions(gap_fill=False))
    rec.handle(ev.FirstPacketReceived(timestamp=0))
    rec.handle(ev.AudioReceived(data=packet(1), user_id=0, timestamp=100_000))
    rec.handle(ev.AudioReceived(data=packet(2), user_id=0, timestamp=200_000))
    rec.close()
    assert wav(tmp_path / "audio.wav")[2] == packet(1) + packet(2)

    far = tmp_path / "far"
    rec = Recorder(far)
    rec.handle(ev.FirstPacketReceived(timestamp=0))
    # more than a minute after the origin: the track starts at its first packet
    rec.handle(ev.AudioReceived(data=packet(1), user_id=0, timestamp=100_000))
    rec.close()
    assert wav(far / "audio.wav")[2] == packet(1)


def test_stereo_48k_and_format_change(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    stereo = AudioParams(sample_rate=AudioSampleRate.SR_48K, channel=AudioChannel.STEREO)
    rec.handle(connected(stereo))
    rec.handle(ev.AudioReceived(data=packet(5, 960, 2), user_id=0, timestamp=0))
    rec.handle(connected(stereo))  # same format again (a reconnect): same file
    rec.handle(ev.AudioReceived(data=packet(6, 960, 2), user_id=0, timestamp=20))
    rec.handle(connected(AudioParams()))  # the format changed: a new file
    rec.handle(ev.AudioReceived(data=packet(7), user_id=0, timestamp=40))
    rec.close()
    assert wav(tmp_path / "audio.wav") == (48000, 2, packet(5, 960, 2) + packet(6, 960, 2))
    assert wav(tmp_path / "audio.format2.wav")[:2] == (16000, 1)


def test_timestamp_jumps_are_discontinuities_in_the_events_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two packets once filled a 64 MiB disk; now the jump is one line in events.jsonl."""
    rec = Recorder(tmp_path)
    rec.handle(connected(AudioParams()), 0.0)
    with caplog.at_level(logging.WARNING, logger="rtms_app.recorder"):
        rec.handle(ev.AudioReceived(data=packet(1), user_id=0, timestamp=1_000), 0.5)
        rec.handle(ev.AudioReceived(data=packet(2), user_id=0, timestamp=2**63 - 1), 0.52)
        for n in range(8):  # back and forth: each one a discontinuity
            stamp = 1_040 + n * 20 if n % 2 else 2**40 + n * 20
            rec.handle(ev.AudioReceived(data=packet(3), user_id=0, timestamp=stamp), 0.54 + n / 50)
    files = rec.close()
    assert (tmp_path / "audio.wav").stat().st_size == 44 + 10 * 640
    jumps = [e for e in jsonl(tmp_path / "events.jsonl") if e["type"] == "AudioDiscontinuity"]
    assert len(jumps) == 9
    assert jumps[0] == {
        "type": "AudioDiscontinuity",
        "t": 0.52,
        "file": "audio.wav",
        "timestamp": 2**63 - 1,
        "jump_ms": 2**63 - 1 - 1_020,
        "position_ms": 20,
        "reason": jumps[0]["reason"],
    }
    assert "ahead of the arrival clock (at most 65.000 s)" in str(jumps[0]["reason"])
    assert "behind the end of the track" in str(jumps[1]["reason"])
    # logged too, but only the first few
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 5
    assert "audio.wav: audio timestamp 9223372036854775807 not followed" in logged[0]
    assert logged[-1].endswith("further ones only in events.jsonl")
    notes = {f.path.name: f.note for f in files}
    assert notes["audio.wav"] == "16000 Hz mono, 0.20 s (9 timestamp discontinuities)"


def test_channel_ids_get_injective_stable_safe_names(tmp_path: Path) -> None:
    ids = ["a/b", "a_b", "a:b", "../../escape", "11", "", "x.part2", "é" * 300, "agent-1"]
    names = []
    for run in ("one", "two"):
        folder = tmp_path / run
        rec = Recorder(folder)
        rec.handle(connected(AudioParams(codec=Codec.OPUS)))
        for n, channel in enumerate(ids):
            rec.handle(ev.AudioReceived(data=bytes([n]), channel_id=channel, timestamp=0))
        rec.handle(ev.AudioReceived(data=b"\xff", user_id=11, timestamp=0))
        rec.close()
        raw = sorted(folder.glob("*.raw"))
        assert all(p.parent == folder for p in folder.rglob("*"))  # nothing outside --out
        assert all(len(p.name) <= 80 for p in raw)
        names.append([p.name for p in raw])
        # one file per id: every id's packet is alone in its own file
        assert sorted(p.read_bytes() for p in raw) == sorted(
            [bytes([n]) for n in range(len(ids))] + [b"\xff"]
        )
    assert names[0] == names[1]  # stable across runs
    assert "audio-agent-1.opus.raw" in names[0]
    assert "audio-a_b.opus.raw" in names[0]
    assert "audio.opus.raw" in names[0]  # user id 11 in mixed mode: the mixed file
    assert "audio-11.opus.raw" not in names[0]  # the channel "11" is not user 11's name


def test_compressed_audio_kept_raw(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    rec.handle(connected(AudioParams(codec=Codec.OPUS, sample_rate=AudioSampleRate.SR_48K)))
    rec.handle(ev.AudioReceived(data=b"\xf8\xff\xfe", user_id=0, timestamp=0))
    rec.handle(ev.AudioReceived(data=b"\xf8\xff", channel_id="agent-1", timestamp=20))
    files = rec.close()
    assert (tmp_path / "audio.opus.raw").read_bytes() == b"\xf8\xff\xfe"
    assert jsonl(tmp_path / "audio-agent-1.opus.jsonl") == [
        {"offset": 0, "length": 2, "timestamp": 20, "user_id": "agent-1"}
    ]
    assert any(f.note == "1 audio packet, as received" for f in files)


def test_text_media_frames_and_stats(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, RecorderOptions(expect=MediaType.TRANSCRIPT | MediaType.CHAT))
    assert (tmp_path / "transcript.vtt").exists() and (tmp_path / "chat.jsonl").exists()
    rec.handle(ev.SignalingConnected(sock=SocketId(1, SocketRole.SIGNALING), media_urls={}))
    assert rec.stats.state == "connected"
    rec.handle(
        ev.MediaConnected(
            sock=SocketId(3, SocketRole.VIDEO),
            media_type=MediaType.VIDEO,
            params=MediaParams(video=VideoParams(codec=Codec.H264, fps=25)),
        )
    )
    people = (Participant(user_id=1, user_name="Ann"), Participant(user_id=2, user_name="Bo"))
    rec.handle(ev.ParticipantsJoined(participants=people, timestamp=1))
    rec.handle(ev.ActiveSpeakerChanged(user_id=2, user_name=None, timestamp=2))
    assert speaker(rec) == "Bo"
    rec.handle(ev.TranscriptReceived(text="héllo", user_id=1, start_time=1_000, end_time=1_500))
    rec.handle(ev.ChatReceived(text="hi", user_id=2, timestamp=1_200))
    rec.handle(ev.VideoReceived(data=b"\x00\x00\x00\x01\x65", user_id=1, timestamp=1_040))
    rec.handle(ev.DeskshareReceived(data=b"\xff\xd8\xff\xe0", user_id=2, timestamp=1_300))
    rec.handle(ev.ParticipantsLeft(participants=(Participant(user_id=2),), timestamp=3))
    assert speaker(rec) is None
    assert list(rec.stats.participants) == [1]
    rec.handle(
        ev.ReconnectScheduled(
            scope=ev.ReconnectScope.MEDIA,
            media_type=MediaType.AUDIO,
            attempt=1,
            delay=0.5,
            reason=FailureReason.CONNECTION_LOST,
        )
    )
    assert rec.stats.state == "reconnecting"
    rec.handle(
        ev.ReconnectStarted(scope=ev.ReconnectScope.MEDIA, media_type=MediaType.AUDIO, attempt=1)
    )
    rec.handle(
        ev.ReconnectCompleted(scope=ev.ReconnectScope.MEDIA, media_type=MediaType.AUDIO, attempts=1)
    )
    end = ev.SessionEnded(why=ev.EndReason.STREAM_TERMINATED, detail="done")
    rec.handle(end)
    assert rec.stats.state == "ended" and rec.stats.ended is end and rec.stats.reconnects == 1
    files = rec.close()
    assert rec.close() == files  # idempotent
    assert (tmp_path / "video" / "stream.h264").read_bytes() == b"\x00\x00\x00\x01\x65"
    assert (tmp_path / "deskshare" / "000000300-2.jpg").exists()  # origin: the transcript
    assert jsonl(tmp_path / "chat.jsonl")[0]["text"] == "hi"
    assert "00:00:00.000 --> 00:00:00.500" in (tmp_path / "transcript.vtt").read_text("utf-8")
    notes = {f.path.name: f.note for f in files}
    assert notes["video"] == "1 video frame (H264)"
    assert notes["transcript.jsonl"] == "1 utterance"
    assert notes["chat.jsonl"] == "1 chat message"
    counts = rec.stats.counts
    assert (counts["transcript"].messages, counts["transcript"].bytes) == (1, 6)
    lines = render(rec.stats, 75.25, title="t", kinds=["audio"])
    assert lines[0] == "t  ended        01:15.2   reconnects: 1"
    assert lines[1].split() == ["audio", "0", "msgs", "0", "B"]
    assert lines[-1] == "  participants: 1 (Ann)"


def test_format_bytes() -> None:
    assert format_bytes(999) == "999 B"
    assert format_bytes(12_345) == "12.3 kB"
    assert format_bytes(3_100_000) == "3.1 MB"
    assert format_bytes(5 * 10**15) == "5000.0 TB"


def _ending(reason: FailureReason = FailureReason.CLOSED_BY_SERVER) -> list[ev.Event]:
    """Zoom closes the audio socket, then says the stream is over."""
    from rtms_proto.enums import StreamState

    return [
        ev.SocketClosed(sock=AUDIO_SOCK, by_peer=True, code=1000),
        ev.ReconnectScheduled(
            scope=ev.ReconnectScope.MEDIA,
            media_type=MediaType.AUDIO,
            attempt=1,
            delay=0.8,
            reason=reason,
        ),
        ev.StreamStateChanged(state=StreamState.TERMINATED, reason=None, timestamp=5),
    ]


def _types(path: Path) -> list[object]:
    return [line["type"] for line in jsonl(path / "events.jsonl")]


def test_a_clean_end_drops_the_reconnect_it_never_made(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    for i, event in enumerate(_ending()):
        rec.handle(event, 3.0 + i / 1000)
    assert rec.stats.state != "reconnecting"  # held back: the display does not flicker
    rec.handle(ev.SessionEnded(why=ev.EndReason.STREAM_TERMINATED, detail="over"), 3.01)
    rec.close()
    assert _types(tmp_path) == ["SocketClosed", "StreamStateChanged", "SessionEnded"]
    assert rec.stats.reconnects == 0


def test_a_reconnect_that_happens_or_a_failure_keeps_every_line(tmp_path: Path) -> None:
    made = tmp_path / "made"
    rec = Recorder(made)
    events = _ending()[:2]
    for event in events:
        rec.handle(event, 1.0)
    rec.handle(
        ev.ReconnectStarted(scope=ev.ReconnectScope.MEDIA, media_type=MediaType.AUDIO, attempt=1),
        1.8,
    )
    rec.close()
    assert _types(made) == ["SocketClosed", "ReconnectScheduled", "ReconnectStarted"]
    assert [line["t"] for line in jsonl(made / "events.jsonl")] == [1.0, 1.0, 1.8]

    failed = tmp_path / "failed"
    rec = Recorder(failed)
    for event in _ending():
        rec.handle(event, 1.0)
    rec.handle(ev.SessionEnded(why=ev.EndReason.FATAL_ERROR, detail="broken"), 1.1)
    rec.close()
    assert _types(failed) == [
        "SocketClosed",
        "ReconnectScheduled",
        "StreamStateChanged",
        "SessionEnded",
    ]
    # other reasons are never held back
    other = tmp_path / "other"
    rec = Recorder(other)
    rec.handle(_ending(FailureReason.KEEPALIVE_TIMEOUT)[1], 1.0)
    assert rec.stats.state == "reconnecting"
    rec.close()


def test_held_events_are_bounded(tmp_path: Path) -> None:
    from rtms_app.sinks.recorder import HOLD_EVENTS, HOLD_SECONDS

    by_count = tmp_path / "count"
    rec = Recorder(by_count)
    rec.handle(_ending()[1], 0.0)
    for i in range(HOLD_EVENTS - 2):
        rec.handle(ev.ActiveSpeakerChanged(user_id=i, user_name=None, timestamp=i), 0.1)
    assert rec.events.lines == 0  # all held so far
    rec.handle(ev.ActiveSpeakerChanged(user_id=0, user_name=None, timestamp=0), 0.1)
    assert rec.events.lines == HOLD_EVENTS  # the 64th event writes them all
    rec.close()

    by_time = tmp_path / "time"
    rec = Recorder(by_time)
    rec.handle(_ending()[1], 0.0)
    rec.handle(ev.ActiveSpeakerChanged(user_id=1, user_name=None, timestamp=1), HOLD_SECONDS)
    assert rec.events.lines == 0
    rec.handle(ev.ActiveSpeakerChanged(user_id=2, user_name=None, timestamp=2), HOLD_SECONDS + 0.1)
    assert rec.events.lines == 3
    rec.close()
    assert _types(by_time) == ["ReconnectScheduled", "ActiveSpeakerChanged", "ActiveSpeakerChanged"]

    at_close = tmp_path / "close"
    rec = Recorder(at_close)
    rec.handle(_ending()[1], 0.0)
    rec.close()
    assert _types(at_close) == ["ReconnectScheduled"]


def test_discard_removes_what_a_recording_left_and_the_folder_it_made(tmp_path: Path) -> None:
    made = tmp_path / "new"
    rec = Recorder(made, RecorderOptions(expect=MediaType.TRANSCRIPT | MediaType.CHAT))
    rec.handle(ev.VideoReceived(data=b"\xff\xd8\xff", user_id=1, timestamp=1), 0.0)
    rec.handle(ev.SessionEnded(why=ev.EndReason.FATAL_ERROR, detail="x"), 0.1)
    rec.discard()
    assert not made.exists()

    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("not the recorder's")
    rec = Recorder(kept)
    rec.handle(ev.SessionEnded(why=ev.EndReason.FATAL_ERROR, detail="x"), 0.1)
    rec.discard()
    assert sorted(p.name for p in kept.iterdir()) == ["mine.txt"]
