"""The fake server's synthetic meeting and media payloads (pure, no server)."""

from __future__ import annotations

import math
import struct
import zlib
from array import array

import pytest

from rtms_conformance import payloads as p
from rtms_conformance.meeting import (
    DEFAULT_PEOPLE,
    MeetingScript,
    MeetingSpec,
    audio_packets,
    expected_audio,
)
from rtms_conformance.timeline import (
    ActiveSpeaker,
    Chat,
    EndStream,
    Join,
    Leave,
    Person,
    Quiet,
    SharingStart,
    SharingStop,
    TimelineEntry,
    Utterance,
    VideoOn,
)
from rtms_proto import AudioParams
from rtms_proto.enums import (
    AudioChannel,
    AudioSampleRate,
    Codec,
    ContentType,
    DataOption,
    StopReason,
)

ALICE, BOB, CAROL = DEFAULT_PEOPLE[:3]


def samples(pcm: bytes) -> array[int]:
    return array("h", pcm)


# --- audio payloads ---------------------------------------------------------------------------


def test_l16_slot_is_20_ms_of_the_speakers_tone() -> None:
    slot = p.l16_slot(400, 16000, 1)
    assert len(slot) == 640  # 320 samples * 2 bytes: docs/protocol.md §6.2
    values = samples(slot)
    expected = [round(p.AMPLITUDE * math.sin(2 * math.pi * 400 * i / 16000)) for i in range(320)]
    assert list(values) == expected
    # Whole cycles in every 10 ms: the second half repeats the first.
    assert values[:160] == values[160:]


def test_silence_and_stereo_slots() -> None:
    assert p.l16_slot(None, 16000, 1) == bytes(640)
    stereo = samples(p.l16_slot(500, 48000, 2))
    assert len(stereo) == 2 * 960
    assert stereo[0::2] == stereo[1::2]


def test_tones_are_distinct_per_participant() -> None:
    assert [p.tone_hz(i) for i in range(4)] == [400, 500, 600, 700]
    with pytest.raises(ValueError):
        p.tone_hz(-1)


def test_alaw_known_values() -> None:
    pcm = struct.pack("<3h", 0, 32767, -32768)
    assert p.alaw_encode(pcm) == bytes([0xD5, 0xAA, 0x2A])


@pytest.mark.parametrize(
    ("params", "size", "header"),
    [
        (AudioParams(), 640, None),
        (AudioParams(send_rate=100), 3200, None),
        (AudioParams(sample_rate=AudioSampleRate.SR_48K, channel=AudioChannel.STEREO), 3840, None),
        (
            AudioParams(content_type=ContentType.RTP, codec=Codec.G711, sample_rate=0),
            160,
            8,
        ),
        (
            AudioParams(content_type=ContentType.RTP, codec=Codec.G722),
            160,
            9,
        ),
        (
            AudioParams(codec=Codec.OPUS, sample_rate=AudioSampleRate.SR_48K, channel=2),
            3,
            None,
        ),
        (
            AudioParams(content_type=ContentType.RTP, codec=Codec.OPUS, sample_rate=3),
            3,
            111,
        ),
    ],
)
def test_audio_payload_shapes(params: AudioParams, size: int, header: int | None) -> None:
    slots = int(params.send_rate) // 20
    data = p.audio_payload(params, [400] * slots, packet_index=7, ssrc=42)
    if header is None:
        assert len(data) == size
        return
    version, payload_type, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    assert (version, payload_type, seq, ssrc) == (0x80, header, 7, 42)
    assert ts == 7 * p.sample_rate_hz(params) * 20 // 1000
    assert len(data) == 12 + size


def test_opus_payload_is_a_silence_frame_per_slot() -> None:
    params = AudioParams(codec=Codec.OPUS, sample_rate=AudioSampleRate.SR_48K)
    assert p.audio_payload(params, [None], packet_index=0, ssrc=0) == b"\xf8\xff\xfe"


# --- video payloads ---------------------------------------------------------------------------


def _jpeg_segments(data: bytes) -> dict[int, bytes]:
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    segments: dict[int, bytes] = {}
    i = 2
    while data[i] == 0xFF and data[i + 1] != 0xDA:
        marker = data[i + 1]
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        segments[marker] = data[i + 4 : i + 2 + length]
        i += 2 + length
    segments[0xDA] = data[i + 4 :]
    return segments


@pytest.mark.parametrize(("width", "height"), list(p.RESOLUTION_PIXELS.values()))
def test_jpeg_frame_structure(width: int, height: int) -> None:
    frame = p.jpeg_frame(width, height, b"user=1")
    seg = _jpeg_segments(frame)
    assert seg[0xFE] == b"user=1"
    precision, h, w, components = struct.unpack(">BHHB", seg[0xC0][:6])
    assert (precision, w, h, components) == (8, width, height, 1)
    blocks = math.ceil(width / 8) * math.ceil(height / 8)
    # Scan data: 2 bits per block, padded with ones, then EOI.
    assert len(seg[0xDA]) - 6 - 2 == math.ceil(2 * blocks / 8)
    assert b"\xff" not in seg[0xDA][6:-2]


def test_png_frame_structure() -> None:
    frame = p.png_frame(640, 360, b"user=2")
    assert frame.startswith(b"\x89PNG\r\n\x1a\n")
    chunks = {}
    i = 8
    while i < len(frame):
        (length,) = struct.unpack(">I", frame[i : i + 4])
        kind, body = frame[i + 4 : i + 8], frame[i + 8 : i + 8 + length]
        (crc,) = struct.unpack(">I", frame[i + 8 + length : i + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        i += 12 + length
    assert struct.unpack(">II", chunks[b"IHDR"][:8]) == (640, 360)
    assert chunks[b"tEXt"] == b"Comment\x00user=2"
    assert len(zlib.decompress(chunks[b"IDAT"])) == 360 * 641
    assert b"IEND" in chunks


def _nal_types(data: bytes) -> list[int]:
    parts = data.split(b"\x00\x00\x00\x01")
    assert parts[0] == b""
    for body in parts[1:]:
        for bad in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
            assert bad not in body  # emulation prevention applied
    return [body[0] & 0x1F for body in parts[1:]]


def test_h264_access_units() -> None:
    key = p.h264_access_unit(1280, 720, frame_num=0, idr_id=1)
    assert _nal_types(key) == [7, 8, 5]  # SPS, PPS, IDR slice
    assert key[4] == 0x67 and key[5] == 66  # Baseline profile
    delta = p.h264_access_unit(1280, 720, frame_num=3)
    assert _nal_types(delta) == [1]
    assert len(delta) < 20


@pytest.mark.parametrize("codec", [Codec.JPG, Codec.PNG, Codec.H264])
def test_video_frame_dispatches_on_codec(codec: Codec) -> None:
    frame = p.video_frame(codec, 1, frame_num=0, idr_id=0, label=b"x")
    start = {Codec.JPG: b"\xff\xd8", Codec.PNG: b"\x89PNG", Codec.H264: b"\x00\x00\x00\x01"}
    assert frame.startswith(start[codec])


# --- the meeting script -----------------------------------------------------------------------


def test_default_meeting_opens_with_roster_video_and_first_speaker() -> None:
    script = MeetingScript(MeetingSpec())
    first = script.events_between(-1, 0)
    assert [type(e.event) for e in first] == [Join, VideoOn, ActiveSpeaker]
    join = first[0].event
    assert isinstance(join, Join)
    assert join.people == (ALICE, BOB, CAROL)
    assert script.next_event_ms(0) == 3500


def test_turns_rotate_with_a_pause_and_an_utterance() -> None:
    script = MeetingScript(MeetingSpec(chat_interval=None, share_at=None))
    events = script.events_between(0, 8000)
    assert [(e.at_ms, type(e.event).__name__) for e in events] == [
        (3500, "Quiet"),
        (3500, "Utterance"),
        (4000, "ActiveSpeaker"),
        (7500, "Quiet"),
        (7500, "Utterance"),
        (8000, "ActiveSpeaker"),
    ]
    utterance = events[1].event
    assert utterance == Utterance(
        user_id=ALICE.user_id,
        text="Alice Example says sentence number 1.",
        start=0.0,
        end=3.5,
    )
    assert [script.talker_at(t) for t in (0, 3480, 3500, 4000, 8000, 12000)] == [
        ALICE.user_id,
        ALICE.user_id,
        None,
        BOB.user_id,
        CAROL.user_id,
        ALICE.user_id,
    ]


def test_chat_sharing_and_late_joiner() -> None:
    spec = MeetingSpec(late_joiner_at=5.0, late_joiner_stays=2.0, structured_chat=True)
    script = MeetingScript(spec)
    events = {(e.at_ms, type(e.event).__name__): e.event for e in script.events_between(0, 15000)}
    chat = events[(3500, "Chat")]
    assert chat == Chat(
        user_id=BOB.user_id, text="Chat message 1 from Bob Example", structured=True
    )
    assert events[(6000, "SharingStart")] == SharingStart(user_id=BOB.user_id)
    assert (12000, "SharingStop") in events
    late = DEFAULT_PEOPLE[3]
    assert events[(5000, "Join")] == Join(people=(late,))
    assert events[(7000, "Leave")] == Leave(user_ids=(late.user_id,))
    assert script.tone_of(late.user_id) == 700


def test_a_meeting_with_a_duration_ends_with_leave_and_end_stream() -> None:
    script = MeetingScript(MeetingSpec(duration=10.0))
    tail = [type(e.event) for e in script.events_between(9000, 10_000)]
    assert tail == [SharingStop, Quiet, Leave, EndStream]
    assert script.next_event_ms(10_000) is None
    assert script.talker_at(10_000) is None
    assert script.events_between(10_000, 100_000) == []


def test_timeline_merges_and_overrides_the_talker() -> None:
    dan = Person(user_id=99, user_name="Dan")
    timeline = (
        TimelineEntry(at=1.0, event=Join(people=(dan,))),
        TimelineEntry(at=1.0, event=ActiveSpeaker(user_id=99)),
        TimelineEntry(at=2.0, event=Quiet()),
        TimelineEntry(at=5.0, event=EndStream(reason=StopReason.HOST_TRIGGERED)),
    )
    script = MeetingScript(MeetingSpec(), timeline)
    assert script.talker_at(999) == ALICE.user_id
    assert script.talker_at(1000) == 99
    assert script.talker_at(2000) is None
    assert script.talker_at(4000) == BOB.user_id  # the next generated turn wins again
    assert script.name_of(99) == "Dan"
    assert script.tone_of(99) == p.tone_hz(3)
    at_1s = [type(e.event) for e in script.events_between(999, 1000)]
    assert at_1s == [Join, ActiveSpeaker]


def test_an_empty_meeting_is_only_its_timeline() -> None:
    timeline = (TimelineEntry(at=0.5, event=ActiveSpeaker(user_id=ALICE.user_id)),)
    script = MeetingScript(MeetingSpec(participants=0), timeline)
    assert [e.at_ms for e in script.events_between(-1, 100_000)] == [500]
    assert script.talker_at(0) is None
    assert script.talker_at(600) == ALICE.user_id


def test_meeting_spec_validation() -> None:
    with pytest.raises(ValueError):
        MeetingSpec(participants=99)
    with pytest.raises(ValueError):
        MeetingSpec(turn=1.0, pause=1.0)
    with pytest.raises(ValueError):
        MeetingSpec(share_every=3.0, share_duration=6.0)
    with pytest.raises(ValueError):
        TimelineEntry(at=-1, event=Quiet())
    with pytest.raises(ValueError):
        Person(user_id=0, user_name="mixed")


# --- expected audio ---------------------------------------------------------------------------


def test_mixed_audio_follows_the_talker_slot_by_slot() -> None:
    script = MeetingScript(MeetingSpec())
    params = AudioParams()
    alice = p.l16_slot(400, 16000, 1)
    bob = p.l16_slot(500, 16000, 1)
    silence = bytes(640)
    assert expected_audio(script, params, 3460, 3520) == alice * 2 + silence
    assert expected_audio(script, params, 3980, 4020) == silence + bob
    coarse = AudioParams(send_rate=100)
    assert expected_audio(script, coarse, 3400, 3600) == alice * 5 + silence * 5


def test_multi_stream_audio_has_one_packet_per_talker() -> None:
    script = MeetingScript(MeetingSpec())
    params = AudioParams(data_opt=DataOption.AUDIO_MULTI_STREAMS)
    assert list(audio_packets(script, params, 3500, packet_index=0)) == []
    ((user, data),) = audio_packets(script, params, 4000, packet_index=0)
    assert user == BOB.user_id and data == p.l16_slot(500, 16000, 1)
    # Bob's own stream skips Alice's turn and the pause entirely.
    assert expected_audio(script, params, 0, 4040, user_id=BOB.user_id) == data * 2


def test_expected_audio_needs_packet_boundaries() -> None:
    script = MeetingScript(MeetingSpec())
    with pytest.raises(ValueError):
        expected_audio(script, AudioParams(send_rate=40), 20, 80)
