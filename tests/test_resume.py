"""Resuming a recording in another process: continuous files, nothing twice, fenced writes.

Each test plays one synthetic meeting (audio every 20 ms, transcript, chat,
video frames and timestamped server events).  A first recorder takes it up to
the "death", is dropped without closing (kill -9: WAV header stale, maybe a
record cut in the middle); a second one resumes the folder while the server
replays what it buffered before the death, then goes on with later
timestamps.  The result must equal one recorder that saw the same meeting
minus what was lost around the death.
"""

from __future__ import annotations

import json
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest

from rtms_app.sinks import Recorder, RecorderOptions
from rtms_app.sinks.resume import JOURNAL_NAME, NotOwner, Watermark, load
from rtms_proto import AudioParams, MediaParams, SocketId, SocketRole
from rtms_proto import events as ev
from rtms_proto.enums import AudioSampleRate, Codec, DataOption, MediaType
from rtms_proto.messages import Participant

AUDIO_SOCK = SocketId(2, SocketRole.AUDIO)
T0 = 1_700_000_000_000
PACKET_MS = 20
JPEG = b"\xff\xd8\xff\xe0"
EXPECT = MediaType.AUDIO | MediaType.TRANSCRIPT | MediaType.CHAT | MediaType.VIDEO


def connected(rate: AudioSampleRate = AudioSampleRate.SR_16K) -> ev.MediaConnected:
    return ev.MediaConnected(
        sock=AUDIO_SOCK,
        media_type=MediaType.AUDIO,
        params=MediaParams(audio=AudioParams(sample_rate=rate)),
    )


def pcm(i: int, frames: int = 320) -> bytes:
    return struct.pack(f"<{frames}h", *([i % 30000 + 1] * frames))


@dataclass(frozen=True)
class Item:
    """One message of the meeting, at its timestamp."""

    ts: int
    event: ev.Event


def meeting(packets: int) -> list[Item]:
    """The messages in the order the server sends them."""
    items: list[Item] = [Item(T0, ev.FirstPacketReceived(timestamp=T0))]
    for i in range(packets):
        ts = T0 + i * PACKET_MS
        items.append(Item(ts, ev.AudioReceived(data=pcm(i), user_id=16778240, timestamp=ts)))
        if i % 10 == 5:
            text = f"utterance {i}"
            items.append(
                Item(
                    ts,
                    ev.TranscriptReceived(
                        text=text, user_id=7, user_name="Ann", timestamp=ts, start_time=ts - 100
                    ),
                )
            )
        if i % 25 == 3:
            items.append(Item(ts, ev.ChatReceived(text=f"chat {i}", user_id=8, timestamp=ts)))
        if i % 15 == 7:
            frame = JPEG + i.to_bytes(4, "big")
            items.append(Item(ts, ev.VideoReceived(data=frame, user_id=7, timestamp=ts)))
        if i % 40 == 11:
            joined = (Participant(user_id=1000 + i, user_name=f"p{i}"),)
            items.append(Item(ts, ev.ParticipantsJoined(participants=joined, timestamp=ts)))
    return items


def play(rec: Recorder, items: list[Item], start: float = 0.0) -> None:
    for n, item in enumerate(items):
        rec.handle(item.event, start + n * PACKET_MS / 1000)


def wav_frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def session_events(path: Path) -> list[dict[str, object]]:
    """The server's timestamped events in ``events.jsonl``, without the session clock."""
    return [
        {k: v for k, v in line.items() if k != "t"}
        for line in jsonl(path)
        if "timestamp" in line and line["type"] != "AudioDiscontinuity"
    ]


def reference(folder: Path, items: list[Item]) -> Recorder:
    rec = Recorder(folder, RecorderOptions(expect=EXPECT))
    rec.handle(connected(), 0.0)
    play(rec, items)
    rec.close()
    return rec


def index_of_packet(items: list[Item], packet: int) -> int:
    """The position in ``items`` of audio packet ``packet``."""
    ts = T0 + packet * PACKET_MS
    return next(
        n
        for n, item in enumerate(items)
        if isinstance(item.event, ev.AudioReceived) and item.ts == ts
    )


def takeover(
    folder: Path, items: list[Item], *, died: int, lost: int, replay: int
) -> tuple[Recorder, Recorder]:
    """The first owner records up to audio packet ``died`` and is killed; the next one is
    first sent again the ``replay`` packets before the death (what Zoom buffered), then
    what comes ``lost`` packets after it."""
    cut = index_of_packet(items, died)
    first = Recorder(folder, RecorderOptions(expect=EXPECT, resumable=True))
    first.handle(connected(), 0.0)
    play(first, items[:cut])
    first.abandon()  # kill -9: the system closes the files, no header fixed
    second = Recorder(folder, RecorderOptions(expect=EXPECT, resumable=True), resume=True)
    second.claimed("b", 7)
    second.handle(connected(), 0.0)
    play(second, items[index_of_packet(items, died - replay) : cut])
    play(second, items[index_of_packet(items, died + lost) :])
    second.close()
    return first, second


def test_resumed_recording_equals_one_recording_of_what_arrived(tmp_path: Path) -> None:
    items = meeting(400)
    died, lost = 180, 40
    seen = items[: index_of_packet(items, died)] + items[index_of_packet(items, died + lost) :]
    reference(tmp_path / "ref", seen)
    _, second = takeover(tmp_path / "run", items, died=died, lost=lost, replay=100)
    ref, run = tmp_path / "ref", tmp_path / "run"
    # the audio: every packet at its position by timestamp, the death as silence
    audio = wav_frames(run / "audio.wav")
    assert audio == wav_frames(ref / "audio.wav")
    assert len(audio) == 400 * 640
    assert audio[died * 640 : (died + lost) * 640] == bytes(lost * 640)
    assert audio[(died + lost) * 640 : (died + lost + 1) * 640] == pcm(died + lost)
    # text and frames: nothing twice, nothing lost of what arrived
    for name in ("transcript.jsonl", "chat.jsonl", "video/index.jsonl"):
        assert jsonl(run / name) == jsonl(ref / name), name
    assert (run / "transcript.vtt").read_text() == (ref / "transcript.vtt").read_text()
    assert sorted(p.name for p in (run / "video").iterdir()) == sorted(
        p.name for p in (ref / "video").iterdir()
    )
    assert session_events(run / "events.jsonl") == session_events(ref / "events.jsonl")
    # what the replay repeated was skipped and counted
    assert second.skipped > 0
    notes = [line for line in jsonl(run / "events.jsonl") if line["type"] == "RecordingResumed"]
    assert [(n["node"], n["revision"]) for n in notes] == [("b", 7)]


def test_a_record_cut_by_the_kill_is_dropped_and_written_again(tmp_path: Path) -> None:
    items = meeting(200)
    died = 120
    first = Recorder(tmp_path, RecorderOptions(expect=EXPECT, resumable=True))
    first.handle(connected(), 0.0)
    play(first, items[: index_of_packet(items, died)])
    first.abandon()
    # killed in the middle of writes: half a line, half a frame
    with (tmp_path / "transcript.jsonl").open("ab") as f:
        f.write(b'{"user_id":7,"text":"half')
    with (tmp_path / "audio.wav").open("ab") as f:
        f.write(b"\x01")
    second = Recorder(tmp_path, RecorderOptions(expect=EXPECT), resume=True)
    second.handle(connected(), 0.0)
    play(second, items[index_of_packet(items, died - 30) :])
    second.close()
    reference(tmp_path / "ref", items)
    assert wav_frames(tmp_path / "audio.wav") == wav_frames(tmp_path / "ref" / "audio.wav")
    assert jsonl(tmp_path / "transcript.jsonl") == jsonl(tmp_path / "ref" / "transcript.jsonl")


def test_a_lost_owner_writes_nothing(tmp_path: Path) -> None:
    owner = [True]
    items = meeting(100)
    first = Recorder(
        tmp_path, RecorderOptions(expect=EXPECT, resumable=True), guard=lambda: owner[0]
    )
    first.handle(connected(), 0.0)
    play(first, items[:50])
    owner[0] = False  # paused past its lease: another node took over
    second = Recorder(tmp_path, RecorderOptions(expect=EXPECT, resumable=True), resume=True)
    second.handle(connected(), 0.0)
    play(second, items[40:])
    second.close()
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(NotOwner):
        first.handle(items[50].event, 1.0)
    first.abandon()  # not even a WAV header
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    reference(tmp_path / "ref", items)
    assert wav_frames(tmp_path / "audio.wav") == wav_frames(tmp_path / "ref" / "audio.wav")


def test_a_new_audio_format_after_the_takeover_starts_new_files(tmp_path: Path) -> None:
    items = meeting(60)
    first = Recorder(tmp_path, RecorderOptions(expect=EXPECT, resumable=True))
    first.handle(connected(), 0.0)
    play(first, items[:30])
    first.close()
    kept = (tmp_path / "audio.wav").read_bytes()
    second = Recorder(tmp_path, RecorderOptions(expect=EXPECT), resume=True)
    second.handle(connected(AudioSampleRate.SR_48K), 0.0)
    play(second, items[30:])
    second.close()
    assert (tmp_path / "audio.wav").read_bytes() == kept
    with wave.open(str(tmp_path / "audio.format2.wav"), "rb") as w:
        assert w.getframerate() == 48000
        assert w.getnframes() > 0


def test_two_takeovers_in_a_row(tmp_path: Path) -> None:
    items = meeting(300)
    a = Recorder(tmp_path, RecorderOptions(expect=EXPECT, resumable=True))
    a.handle(connected(), 0.0)
    play(a, items[: index_of_packet(items, 100)])
    a.abandon()
    b = Recorder(tmp_path, RecorderOptions(expect=EXPECT, resumable=True), resume=True)
    b.handle(connected(), 0.0)
    play(b, items[index_of_packet(items, 80) : index_of_packet(items, 200)])
    b.abandon()
    c = Recorder(tmp_path, RecorderOptions(expect=EXPECT, resumable=True), resume=True)
    c.handle(connected(), 0.0)
    play(c, items[index_of_packet(items, 150) :])
    c.close()
    reference(tmp_path / "ref", items)
    assert wav_frames(tmp_path / "audio.wav") == wav_frames(tmp_path / "ref" / "audio.wav")
    for name in ("transcript.jsonl", "chat.jsonl", "video/index.jsonl"):
        assert jsonl(tmp_path / name) == jsonl(tmp_path / "ref" / name), name


def test_the_journal_holds_a_few_lines_not_one_per_packet(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, RecorderOptions(expect=EXPECT, resumable=True))
    rec.handle(connected(), 0.0)
    play(rec, meeting(500))
    rec.close()
    kinds = [line["type"] for line in jsonl(tmp_path / JOURNAL_NAME)]
    assert kinds == ["origin", "track"]
    state = load(tmp_path)
    assert state.origin_ms == T0
    assert state.tracks[""].sample_rate == 16000


def test_plain_recordings_keep_no_journal(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, RecorderOptions(expect=EXPECT))
    rec.handle(connected(), 0.0)
    play(rec, meeting(20))
    rec.close()
    assert not (tmp_path / JOURNAL_NAME).exists()


def test_watermark_skips_older_and_identical_records_only() -> None:
    mark = Watermark()
    assert not mark.seen(5, "a")
    mark.note(10, "a")
    mark.note(10, "b")
    mark.note(3, "c")
    mark.note("x", "d")
    assert mark.seen(9, "z")
    assert mark.seen(10, "a") and mark.seen(10, "b")
    assert not mark.seen(10, "c")
    assert not mark.seen(11, "a")
    assert not mark.seen(None, "a")


def compressed_meeting(packets: int) -> list[Item]:
    """Opus audio and H.264 video: kept as they came, with their indexes."""
    items = []
    for i in range(packets):
        ts = T0 + i * PACKET_MS
        opus = bytes([0xFC, i % 256]) * 20
        items.append(Item(ts, ev.AudioReceived(data=opus, user_id=3, timestamp=ts)))
        if i % 5 == 0:
            nal = b"\x00\x00\x00\x01\x65" + i.to_bytes(4, "big") * 10
            items.append(Item(ts, ev.VideoReceived(data=nal, user_id=3, timestamp=ts)))
    return items


def opus_connected() -> ev.MediaConnected:
    return ev.MediaConnected(
        sock=AUDIO_SOCK,
        media_type=MediaType.AUDIO,
        params=MediaParams(audio=AudioParams(codec=Codec.OPUS)),
    )


def test_compressed_audio_and_h264_continue_without_repeats(tmp_path: Path) -> None:
    items = compressed_meeting(100)
    ref = Recorder(tmp_path / "ref", RecorderOptions(expect=EXPECT))
    ref.handle(opus_connected(), 0.0)
    play(ref, items)
    ref.close()
    run = tmp_path / "run"
    first = Recorder(run, RecorderOptions(expect=EXPECT, resumable=True))
    first.handle(opus_connected(), 0.0)
    play(first, items[:60])
    first.abandon()
    # killed mid-write: part of a packet and of an access unit, not indexed
    for name in ("audio.opus.raw", "video/stream.h264"):
        with (run / name).open("ab") as f:
            f.write(b"\x00\x00\x00\x01partial")
    second = Recorder(run, RecorderOptions(expect=EXPECT), resume=True)
    second.handle(opus_connected(), 0.0)
    play(second, items[40:])
    second.close()
    for name in ("audio.opus.raw", "audio.opus.jsonl", "video/stream.h264", "video/index.jsonl"):
        assert (run / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert second.skipped == len(items[40:60])


def test_per_speaker_tracks_continue_each_in_its_file(tmp_path: Path) -> None:
    multi = ev.MediaConnected(
        sock=AUDIO_SOCK,
        media_type=MediaType.AUDIO,
        params=MediaParams(audio=AudioParams(data_opt=DataOption.AUDIO_MULTI_STREAMS)),
    )
    items = [Item(T0, ev.FirstPacketReceived(timestamp=T0))]
    for i in range(200):
        ts = T0 + i * PACKET_MS
        speaker = 11 if (i // 40) % 2 == 0 else 22  # turns of 0.8 s
        items.append(Item(ts, ev.AudioReceived(data=pcm(i), user_id=speaker, timestamp=ts)))
    ref = Recorder(tmp_path / "ref", RecorderOptions(expect=EXPECT))
    ref.handle(multi, 0.0)
    play(ref, items)
    ref.close()
    run = tmp_path / "run"
    first = Recorder(run, RecorderOptions(expect=EXPECT, resumable=True))
    first.handle(multi, 0.0)
    play(first, items[:130])
    first.abandon()
    second = Recorder(run, RecorderOptions(expect=EXPECT), resume=True)
    second.handle(multi, 0.0)
    play(second, items[90:])
    second.close()
    for name in ("audio-11.wav", "audio-22.wav"):
        assert wav_frames(run / name) == wav_frames(tmp_path / "ref" / name), name
    assert second.skipped == 40
