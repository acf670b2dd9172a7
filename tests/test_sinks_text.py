"""Transcript, chat, events-log and frame sinks, through their public API."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import pytest

from rtms_app.sinks import ChatSink, EventsLog, FrameSink, TranscriptSink, event_to_json
from rtms_app.sinks.events_log import error_to_json
from rtms_app.sinks.transcript import vtt_time
from rtms_proto import AudioParams, MediaParams, RemoteProtocolError, SocketId, SocketRole
from rtms_proto import events as ev
from rtms_proto.enums import (
    ChatOperation,
    ChatSessionType,
    Codec,
    FailureReason,
    MediaType,
    StatusCode,
    StopReason,
    StreamState,
    TranscriptLanguage,
)
from rtms_proto.messages import ChatFile, ChatUser, Participant, StructuredChat

if TYPE_CHECKING:
    from _typeshed import TraceFunction


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


# --- transcript ---------------------------------------------------------------------------------


def test_vtt_time() -> None:
    assert vtt_time(0) == "00:00:00.000"
    assert vtt_time(3_723_004) == "01:02:03.004"
    assert vtt_time(-5) == "00:00:00.000"


def test_transcript_jsonl_and_vtt(tmp_path: Path) -> None:
    sink = TranscriptSink(tmp_path)
    assert (tmp_path / "transcript.vtt").read_text("utf-8") == "WEBVTT\n"  # flushed at once
    sink.add(
        ev.TranscriptReceived(
            text="Grüße <aus> Zürich & mehr",
            user_id=16778240,
            user_name="Zoë <Q&A>",
            timestamp=10_500,
            start_time=10_500,
            end_time=12_250,
            language=TranscriptLanguage.GERMAN,
        ),
        origin_ms=10_000,
    )
    # flushed as it goes: readable before close
    assert len(lines(tmp_path / "transcript.jsonl")) == 1
    sink.add(
        ev.TranscriptReceived(
            text="second\nline", user_id=7, timestamp=13_000, language=99, attribute=1
        ),
        origin_ms=10_000,
    )
    sink.add(ev.TranscriptReceived(text="", channel_id="ch-1"), origin_ms=None)
    sink.close()
    got = lines(tmp_path / "transcript.jsonl")
    assert got[0] == {
        "user_id": 16778240,
        "user_name": "Zoë <Q&A>",
        "start_time": 10_500,
        "end_time": 12_250,
        "timestamp": 10_500,
        "language": 14,
        "language_name": "german",
        "text": "Grüße <aus> Zürich & mehr",
    }
    assert got[1]["language"] == 99 and got[1]["language_name"] is None
    assert got[1]["attribute"] == 1 or got[1]["attribute"] == "NEW"
    assert got[2]["channel_id"] == "ch-1"
    vtt = (tmp_path / "transcript.vtt").read_text("utf-8")
    assert vtt.startswith("WEBVTT\n\n1\n")
    assert (
        "00:00:00.500 --> 00:00:02.250\n"
        "<v Zoë &lt;Q&amp;A&gt;>Grüße &lt;aus&gt; Zürich &amp; mehr\n" in vtt
    )
    # no end time: a default length; whitespace folded so the cue stays one block
    assert "00:00:03.000 --> 00:00:05.000\n<v user 7>second line\n" in vtt
    assert "<v channel ch-1>…\n" in vtt
    cues = re.findall(r"^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})$", vtt, re.M)
    assert len(cues) == 3
    assert all(a < b for a, b in cues)


CUE = re.compile(r"\d+\n\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}\n<v ([^<>\n]+)>([^\n]*)")


def test_vtt_cues_survive_hostile_speaker_names_and_text(tmp_path: Path) -> None:
    """Newlines in a name once cut the cue, and players dropped its text."""
    names = [
        "Eve\n\n99\n00:00:00.000 --> 99:00:00.000\nforged",
        "Mallory\r\nsecond",
        "\x1b[31mred\x07",
        "line\u2028sep\x85",
        "arrow --> here",
        "nul\x00byte",
        "lone \ud800 surrogate",
        "\n\r\t",  # nothing printable: the user id instead
    ]
    sink = TranscriptSink(tmp_path)
    for n, name in enumerate(names):
        sink.add(
            ev.TranscriptReceived(
                text=f"said\n\nthing {n} --> <b>\x1b\r", user_id=n, user_name=name, timestamp=n
            ),
            origin_ms=0,
        )
    sink.close()
    vtt = (tmp_path / "transcript.vtt").read_bytes().decode("utf-8")
    header, *blocks = vtt.split("\n\n")
    assert header == "WEBVTT"
    assert len(blocks) == len(names)  # no name or text added or cut a cue
    speakers = []
    for n, block in enumerate(blocks):
        match = CUE.fullmatch(block.rstrip("\n"))
        assert match, block
        speaker, text = match.groups()
        assert text == f"said thing {n} --&gt; &lt;b&gt;"
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", speaker + text)
        speakers.append(speaker)
    assert speakers == [
        "Eve 99 00:00:00.000 --&gt; 99:00:00.000 forged",
        "Mallory second",
        "[31mred",
        "line sep",
        "arrow --&gt; here",
        "nul byte",
        "lone surrogate",
        "user 7",
    ]
    # the JSON lines keep the names exactly as they came, one line each
    raw = (tmp_path / "transcript.jsonl").read_bytes()
    assert raw.count(b"\n") == len(names)
    assert [json.loads(line)["user_name"] for line in raw.split(b"\n")[:-1]] == names


# --- chat ---------------------------------------------------------------------------------------


def test_chat_plain_and_structured(tmp_path: Path) -> None:
    sink = ChatSink(tmp_path)
    sink.add(ev.ChatReceived(text="hello 👋", user_id=1, user_name="Ann", timestamp=5))
    structured = StructuredChat(
        session_type=ChatSessionType.EVERYONE,
        operation=ChatOperation.NEW,
        message_id="m1",
        sender=ChatUser(user_id=1, user_name="Ann"),
        files=(ChatFile(file_id="f", file_name="a.txt", file_size=3),),
        text="the text",
    )
    sink.add(ev.ChatReceived(text='{"data": "the text"}', timestamp=6, chat=structured))
    sink.close()
    got = lines(tmp_path / "chat.jsonl")
    assert got[0] == {"timestamp": 5, "user_id": 1, "user_name": "Ann", "text": "hello 👋"}
    assert got[1]["text"] == "the text"
    assert got[1]["raw"] == '{"data": "the text"}'
    assert got[1]["operation"] == "NEW" and got[1]["session_type"] == "EVERYONE"
    assert got[1]["sender"] == {"user_id": 1, "user_name": "Ann"}
    assert got[1]["receiver"] is None
    assert got[1]["files"] == [{"file_id": "f", "file_name": "a.txt", "file_size": 3}]
    assert sink.messages == 2
    assert "👋" in (tmp_path / "chat.jsonl").read_text("utf-8")  # UTF-8, not \\u escapes


# --- events -------------------------------------------------------------------------------------


def test_events_log_every_line_has_a_type(tmp_path: Path) -> None:
    log = EventsLog(tmp_path)
    sock = SocketId(2, SocketRole.AUDIO)
    error = RemoteProtocolError(
        FailureReason.AUTHENTICATION_FAILED,
        "signaling handshake rejected",
        status=StatusCode.INVALID_SIGNATURE,
        status_reason="invalid signature",
    )
    events: list[ev.Event] = [
        ev.MediaConnected(
            sock=sock, media_type=MediaType.AUDIO, params=MediaParams(audio=AudioParams())
        ),
        ev.ParticipantsJoined(participants=(Participant(user_id=1, user_name="Ann"),), timestamp=3),
        ev.StreamStateChanged(
            state=StreamState.TERMINATED, reason=StopReason.MEETING_ENDED, timestamp=9
        ),
        ev.ConnectionFailed(sock=sock, error=error),
        ev.ReconnectScheduled(
            scope=ev.ReconnectScope.MEDIA,
            media_type=MediaType.AUDIO,
            attempt=1,
            delay=0.7123456789,
            reason=FailureReason.CONNECTION_LOST,
        ),
        ev.UnknownEventReceived(event_type=77, timestamp=None, raw={"event_type": 77, "x": (1, 2)}),
        ev.SessionEnded(why=ev.EndReason.FATAL_ERROR, detail="x", error=error),
    ]
    for i, event in enumerate(events):
        log.add(event, t=i / 3)
    log.close()
    got = lines(tmp_path / "events.jsonl")
    assert [g["type"] for g in got] == [type(e).__name__ for e in events]
    assert got[0]["sock"] == "audio#2" and got[0]["media_type"] == "audio"
    assert got[0]["params"] == {"audio": MediaParams(audio=AudioParams()).to_wire()["audio"]}
    assert got[1]["participants"] == [{"user_id": 1, "user_name": "Ann"}]
    assert got[1]["t"] == 0.333
    assert got[2]["state"] == "TERMINATED" and got[2]["reason"] == "MEETING_ENDED"
    assert got[3]["error"] == {
        "reason": "authentication_failed",
        "retryable": False,
        "detail": "signaling handshake rejected",
        "status": 3,
        "status_name": "INVALID_SIGNATURE",
        "status_reason": "invalid signature",
    }
    assert got[4]["delay"] == 0.712346 and got[4]["scope"] == "MEDIA"
    assert got[5]["raw"] == {"event_type": 77, "x": [1, 2]}
    assert got[6]["why"] == "FATAL_ERROR"


def test_event_to_json_without_time_and_unknown_status() -> None:
    error = RemoteProtocolError(FailureReason.INVALID_REQUEST, "bad", status=4242)
    assert error_to_json(error)["status_name"] is None
    line = event_to_json(ev.FirstPacketReceived(timestamp=5))
    assert line == {"type": "FirstPacketReceived", "timestamp": 5}
    json.dumps(event_to_json(ev.AudioReceived(data=b"\x00\x01")))  # bytes become a length


# --- frames -------------------------------------------------------------------------------------

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
IDR = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x00\x01\x65\x88"
P_FRAME = b"\x00\x00\x00\x01\x41\x9a"


def test_frames_images_named_by_time_and_user(tmp_path: Path) -> None:
    sink = FrameSink(tmp_path / "video", Codec.JPG)
    assert not (tmp_path / "video").exists()  # created on first frame
    sink.add(JPEG, timestamp=1_200, user_id=5, user_name="Ann", origin_ms=1_000)
    sink.add(JPEG, timestamp=1_200, user_id=5, user_name="Ann", origin_ms=1_000)  # same name
    sink.add(PNG, timestamp=1_400, user_id=None, user_name=None, origin_ms=1_000)
    sink.add(b"??", timestamp=None, user_id=6, user_name=None, origin_ms=None)
    sink.add(JPEG, timestamp=99, user_id=6, user_name=None, origin_ms=None)
    sink.close()
    names = sorted(p.name for p in (tmp_path / "video").iterdir())
    assert names == sorted(
        [
            "000000200-5.1.jpg",
            "000000200-5.jpg",
            "000000400-unknown.png",
            "0000000000099-6.jpg",
            "frame0000003-6.bin",
            "index.jsonl",
        ]
    )
    assert (tmp_path / "video" / "000000200-5.jpg").read_bytes() == JPEG
    index = lines(tmp_path / "video" / "index.jsonl")
    assert index[0] == {
        "timestamp": 1_200,
        "user_id": 5,
        "user_name": "Ann",
        "bytes": len(JPEG),
        "file": "000000200-5.jpg",
    }
    assert sink.frames == 5 and len(sink.files) == 5


def test_frames_h264_is_one_annex_b_stream(tmp_path: Path) -> None:
    sink = FrameSink(tmp_path / "deskshare", Codec.H264)
    sink.add(IDR, timestamp=0, user_id=1, user_name=None, origin_ms=0)
    sink.add(P_FRAME, timestamp=40, user_id=1, user_name=None, origin_ms=0)
    sink.close()
    sink.close()
    assert (tmp_path / "deskshare" / "stream.h264").read_bytes() == IDR + P_FRAME
    index = lines(tmp_path / "deskshare" / "index.jsonl")
    assert [i["offset"] for i in index] == [0, len(IDR)]
    assert sink.bytes == len(IDR) + len(P_FRAME)


def line_events(path: str, run: Callable[[], object], budget: int) -> int:
    """Lines executed in the file ``path`` while ``run()`` runs; fails past ``budget``."""
    count = 0

    def local(frame: FrameType, event: str, arg: object) -> TraceFunction | None:
        nonlocal count
        if event == "line":
            count += 1
            if count > budget:
                raise AssertionError(f"more than {budget} lines of {path} executed")
        return local

    def tracer(frame: FrameType, event: str, arg: object) -> TraceFunction | None:
        return local if frame.f_code.co_filename == path else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        run()
    finally:
        sys.settrace(previous)
    return count


def test_frames_sharing_a_timestamp_are_named_in_linear_work(tmp_path: Path) -> None:
    """8,000 frames with one timestamp once took 5.2 s (every name tried again each time).

    Work is counted in lines of ``frames.py`` executed, not timed.
    """
    from rtms_app.sinks import frames

    def add(sink: FrameSink, count: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(count):
                sink.add(JPEG, timestamp=1_000, user_id=5, user_name=None, origin_ms=1_000)

        return run

    small, large = FrameSink(tmp_path / "a", Codec.JPG), FrameSink(tmp_path / "b", Codec.JPG)
    work_small = line_events(frames.__file__, add(small, 150), budget=15_000)
    # eight times the frames, at most eight times the work (quadratic would be 64 times)
    work_large = line_events(frames.__file__, add(large, 1_200), budget=9 * work_small)
    small.close()
    large.close()
    assert work_large <= 8 * work_small + 100
    names = [p.name for p in (tmp_path / "b").iterdir()]
    assert len(names) == 1_201 and len(set(names)) == 1_201  # index.jsonl + every frame
    assert "000000000-5.jpg" in names and "000000000-5.1199.jpg" in names


def test_frames_with_huge_timestamps_have_short_names(tmp_path: Path) -> None:
    sink = FrameSink(tmp_path / "v", Codec.JPG)
    sink.add(JPEG, timestamp=10**400, user_id=10**400, user_name=None, origin_ms=0)
    sink.add(JPEG, timestamp=5, user_id=1, user_name=None, origin_ms=-(10**400))
    sink.close()
    names = sorted(p.name for p in (tmp_path / "v").glob("*.jpg"))
    assert all(len(name) < 80 for name in names)
    # no usable time: named by count; the 400-digit user id shortened with a hash
    assert names[1].startswith("frame0000000-1000") and "~" in names[1]
    assert names[0] == "0000000000005-1.jpg"  # the origin is unusable, the timestamp is not


@pytest.mark.parametrize("codec", [None, Codec.PNG])
def test_frames_sniff_annex_b(tmp_path: Path, codec: Codec | None) -> None:
    sink = FrameSink(tmp_path / "v", codec)
    sink.add(IDR, timestamp=0, user_id=1, user_name=None, origin_ms=0)
    sink.close()
    assert (tmp_path / "v" / "stream.h264").exists()
