"""rtms_proto.audio: the audio format, and PCM cut into chunks by the packets' timestamps."""

from __future__ import annotations

import math
import struct
import sys
from collections import defaultdict

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtms_proto import (
    AudioParams,
    Credentials,
    MediaParams,
    MediaType,
    SessionConfig,
    StreamIdentity,
)
from rtms_proto.audio import (
    DEFAULT_MAX_BUFFERED_BYTES,
    MAX_GAP_LIMIT,
    MAX_STREAMS,
    AudioChunk,
    AudioChunker,
    AudioFormat,
    UnsupportedAudio,
    audio_format,
)
from rtms_proto.enums import AudioChannel, AudioSampleRate, Codec, ContentType, DataOption
from rtms_proto.events import AudioReceived

MIXED = AudioFormat.from_params(AudioParams())
MULTI = AudioFormat.from_params(AudioParams(data_opt=DataOption.AUDIO_MULTI_STREAMS))


def config(**changes: object) -> SessionConfig:
    return SessionConfig(
        stream=StreamIdentity(instance_id="m", rtms_stream_id="s"),
        server_url="wss://zoom.us/rtms",
        credentials=Credentials(client_id="id", client_secret="secret"),
        **changes,  # type: ignore[arg-type]
    )


def pcm(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}h", *values)


def samples(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def packet(
    data: bytes, timestamp: int | None, user_id: int | None = 0, name: str | None = None
) -> AudioReceived:
    return AudioReceived(data=data, timestamp=timestamp, user_id=user_id, user_name=name)


def ramp(start: int, frames: int) -> bytes:
    return pcm(*range(start, start + frames))


# --- the format -------------------------------------------------------------------------------


def test_the_default_session_asks_for_16k_mono_mixed_pcm() -> None:
    fmt = audio_format(config())
    assert fmt == MIXED
    assert (fmt.codec, fmt.sample_rate, fmt.channels, fmt.sample_width) == (Codec.L16, 16000, 1, 2)
    assert (fmt.mixed, fmt.content_type, fmt.packet_ms) == (True, ContentType.RAW_AUDIO, 20)
    assert fmt.is_pcm and fmt.frame_bytes == 2 and fmt.bytes_per_second == 32000
    assert fmt.describe() == "L16 16000 Hz mono, mixed"


def test_the_format_follows_the_params_asked_for_or_confirmed() -> None:
    params = AudioParams(
        sample_rate=AudioSampleRate.SR_48K,
        channel=AudioChannel.STEREO,
        data_opt=DataOption.AUDIO_MULTI_STREAMS,
        send_rate=100,
    )
    asked = audio_format(config(params=MediaParams(audio=params)))
    assert asked == audio_format(MediaParams(audio=params)) == audio_format(params)
    assert (asked.sample_rate, asked.channels, asked.mixed, asked.packet_ms) == (
        48000,
        2,
        False,
        100,
    )
    assert asked.frame_bytes == 4 and asked.bytes_per_second == 192000
    assert asked.describe() == "L16 48000 Hz stereo, per speaker"


def test_compressed_audio_has_no_sample_width() -> None:
    opus = audio_format(
        AudioParams(
            codec=Codec.OPUS, sample_rate=AudioSampleRate.SR_48K, channel=AudioChannel.STEREO
        )
    )
    assert not opus.is_pcm and opus.sample_width is None
    assert opus.frame_bytes == 0 and opus.bytes_per_second == 0
    assert opus.describe() == "OPUS 48000 Hz stereo, mixed"
    # L16 framed as RTP is not raw PCM either; an unknown codec number is kept.
    assert not audio_format(AudioParams(content_type=ContentType.RTP)).is_pcm
    assert audio_format(AudioParams(codec=9)).describe() == "codec 9 16000 Hz mono, mixed"


def test_no_audio_or_an_unknown_rate_is_a_clear_error() -> None:
    with pytest.raises(UnsupportedAudio, match=r"does not ask for MediaType\.AUDIO"):
        audio_format(config(media=MediaType.TRANSCRIPT))
    with pytest.raises(UnsupportedAudio, match=r"does not ask for MediaType\.AUDIO"):
        audio_format(MediaParams())
    with pytest.raises(UnsupportedAudio, match=r"audio.sample_rate=7 is not a known rate"):
        audio_format(AudioParams(sample_rate=7))
    with pytest.raises(UnsupportedAudio, match=r"audio.channel=3 is not mono or stereo"):
        audio_format(AudioParams(channel=3))
    assert issubclass(UnsupportedAudio, ValueError)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sample_rate": 44100}, "sample_rate must be a whole number of kHz, not 44100"),
        ({"sample_rate": 0}, "sample_rate must be a whole number of kHz"),
        ({"sample_rate": 16000.0}, "sample_rate must be a whole number of kHz"),
        ({"channels": 3}, "channels must be 1 or 2, not 3"),
        ({"channels": True}, "channels must be 1 or 2"),
        ({"sample_width": 1}, r"sample_width must be 2 \(16-bit PCM\) or None, not 1"),
    ],
)
def test_a_format_built_by_hand_is_checked(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "codec": Codec.L16,
        "sample_rate": 16000,
        "channels": 1,
        "sample_width": 2,
        "mixed": True,
    }
    assert AudioFormat(**fields) == MIXED  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        AudioFormat(**(fields | change))  # type: ignore[arg-type]


# --- the chunker's arguments ---------------------------------------------------------------------


def test_only_pcm_can_be_chunked() -> None:
    opus = audio_format(AudioParams(codec=Codec.OPUS, sample_rate=AudioSampleRate.SR_48K))
    with pytest.raises(UnsupportedAudio, match=r"cannot chunk OPUS 48000 Hz mono.*Codec.L16"):
        AudioChunker(opus, seconds=1)


@pytest.mark.parametrize("seconds", [0, -1, math.nan, math.inf, True, "1"])
def test_seconds_must_be_a_positive_number(seconds: object) -> None:
    with pytest.raises(ValueError, match="seconds must be a positive number"):
        AudioChunker(MIXED, seconds=seconds)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_gap", [-0.001, MAX_GAP_LIMIT + 0.001, math.nan, True, None])
def test_max_gap_is_bounded(max_gap: object) -> None:
    with pytest.raises(ValueError, match="max_gap must be between 0 and 60 s"):
        AudioChunker(MIXED, seconds=1, max_gap=max_gap)  # type: ignore[arg-type]


def test_the_byte_bound_must_hold_one_chunk() -> None:
    assert AudioChunker(MIXED, seconds=1, max_buffered_bytes=32000).max_buffered_bytes == 32000
    with pytest.raises(ValueError, match=r"max_buffered_bytes=31999 cannot hold one 1 s chunk"):
        AudioChunker(MIXED, seconds=1, max_buffered_bytes=31999)
    with pytest.raises(ValueError, match=r"max_buffered_bytes=32000\.0"):
        AudioChunker(MIXED, seconds=1, max_buffered_bytes=32000.0)  # type: ignore[arg-type]
    assert AudioChunker(MIXED, seconds=1).max_buffered_bytes == DEFAULT_MAX_BUFFERED_BYTES


def test_seconds_round_to_whole_frames_at_least_one() -> None:
    assert AudioChunker(MIXED, seconds=0.5).chunk_frames == 8000
    assert AudioChunker(MIXED, seconds=1e-9).chunk_frames == 1
    assert AudioChunker(MIXED, seconds=0.00103).chunk_frames == 16


# --- chunking ------------------------------------------------------------------------------------


def test_contiguous_packets_make_whole_chunks_dated_by_their_first_frame() -> None:
    chunker = AudioChunker(MIXED, seconds=0.03)  # 480 frames: 1.5 packets
    out: list[AudioChunk] = []
    for i in range(4):
        out += chunker.feed(packet(ramp(320 * i, 320), 1000 + 20 * i))
    assert [(c.timestamp, c.frames, c.duration) for c in out] == [
        (1000.0, 480, 0.03),
        (1030.0, 480, 0.03),
    ]
    assert samples(out[0].data + out[1].data) == list(range(960))
    assert out[0].user_id is None and out[0].user_name is None and out[0].silence == 0
    assert chunker.buffered_bytes == 320 * 2
    [rest] = chunker.flush()
    assert (rest.timestamp, samples(rest.data)) == (1060.0, list(range(960, 1280)))
    assert chunker.buffered_bytes == 0 and chunker.early_chunks == 1
    assert chunker.flush() == []


def test_a_short_gap_is_filled_with_silence_in_real_time() -> None:
    chunker = AudioChunker(MIXED, seconds=0.08)
    assert chunker.feed(packet(ramp(1, 320), 0)) == []
    [chunk] = chunker.feed(packet(ramp(1001, 320), 60))  # 40 ms gap
    assert chunk.timestamp == 0.0 and chunk.frames == 1280 and chunk.silence == 640
    assert samples(chunk.data)[:320] == list(range(1, 321))
    assert samples(chunk.data)[320:960] == [0] * 640
    assert samples(chunk.data)[960:1280] == list(range(1001, 1321))
    assert chunker.filled_frames == 640 and chunker.early_chunks == 0


def test_a_short_gap_is_closed_up_without_filling() -> None:
    chunker = AudioChunker(MIXED, seconds=0.04, fill_gaps=False)
    chunker.feed(packet(ramp(1, 320), 0))
    [chunk] = chunker.feed(packet(ramp(1001, 320), 60))
    assert chunk.timestamp == 0.0 and chunk.silence == 0
    assert samples(chunk.data) == list(range(1, 321)) + list(range(1001, 1321))
    chunker.feed(packet(ramp(2001, 320), 140))
    [last] = chunker.flush()
    assert last.timestamp == 140.0 and chunker.filled_frames == 0


def test_a_jump_beyond_max_gap_ends_the_chunk_early_forward_or_back() -> None:
    chunker = AudioChunker(MIXED, seconds=1, max_gap=0.5)
    chunker.feed(packet(ramp(1, 320), 10_000))
    [cut] = chunker.feed(packet(ramp(1001, 320), 10_521))  # 501 ms after the end
    assert (cut.timestamp, samples(cut.data)) == (10_000.0, list(range(1, 321)))
    [back] = chunker.feed(packet(ramp(2001, 320), 3_000))  # a new timeline
    assert back.timestamp == 10_521.0 and chunker.filled_frames == 0
    [last] = chunker.flush()
    assert (last.timestamp, samples(last.data)) == (3_000.0, list(range(2001, 2321)))
    assert chunker.early_chunks == 3 and chunker.dropped_frames == 0


def test_a_jump_of_exactly_max_gap_is_filled() -> None:
    chunker = AudioChunker(MIXED, seconds=1, max_gap=0.5)
    chunker.feed(packet(ramp(1, 320), 0))
    chunker.feed(packet(ramp(1001, 320), 520))
    [chunk] = chunker.flush()
    assert chunk.silence == 8000 and chunk.frames == 8640


def test_overlapping_audio_is_dropped_so_no_instant_is_emitted_twice() -> None:
    chunker = AudioChunker(MIXED, seconds=1)
    chunker.feed(packet(ramp(1, 320), 0))
    chunker.feed(packet(ramp(1001, 320), 10))  # its first 10 ms overlap
    chunker.feed(packet(ramp(2001, 320), 0))  # all of it overlaps
    [chunk] = chunker.flush()
    assert samples(chunk.data) == list(range(1, 321)) + list(range(1161, 1321))
    assert chunker.dropped_frames == 160 + 320


def test_packets_without_timestamps_continue_and_have_no_time() -> None:
    chunker = AudioChunker(MIXED, seconds=0.02)
    [first] = chunker.feed(packet(ramp(1, 320), None))
    [second] = chunker.feed(packet(ramp(1001, 320), None))
    assert first.timestamp is None and second.timestamp is None
    assert samples(second.data) == list(range(1001, 1321))
    # A timestamp starts a timed stretch; later untimed packets continue it.
    chunker.feed(packet(ramp(2001, 160), 5))
    [timed] = chunker.feed(packet(ramp(3001, 160), None))
    assert timed.timestamp == 5.0
    assert samples(timed.data) == list(range(2001, 2161)) + list(range(3001, 3161))


def test_partial_frames_and_empty_packets_are_dropped_and_counted() -> None:
    stereo = audio_format(AudioParams(channel=AudioChannel.STEREO))
    chunker = AudioChunker(stereo, seconds=1)
    assert chunker.feed(packet(pcm(1, 2, 3) + b"\x04", 0)) == []
    assert chunker.feed(packet(b"\x05", 1)) == []
    assert chunker.feed(packet(b"", 2)) == []
    [chunk] = chunker.flush()
    assert samples(chunk.data) == [1, 2] and chunk.frames == 1
    assert chunker.dropped_bytes == 3 + 1


def test_per_speaker_chunks_never_mix_speakers() -> None:
    chunker = AudioChunker(MULTI, seconds=0.04)
    out: list[AudioChunk] = []
    for i in range(4):
        out += chunker.feed(packet(ramp(1000 + 320 * i, 320), 20 * i, 7, "Ann"))
        out += chunker.feed(packet(ramp(-9000 + 320 * i, 320), 20 * i, 8, "Bob"))
    assert [(c.user_id, c.user_name, c.timestamp) for c in out] == [
        (7, "Ann", 0.0),
        (8, "Bob", 0.0),
        (7, "Ann", 40.0),
        (8, "Bob", 40.0),
    ]
    assert samples(b"".join(c.data for c in out if c.user_id == 7)) == list(range(1000, 2280))
    assert samples(b"".join(c.data for c in out if c.user_id == 8)) == list(range(-9000, -7720))


def test_contact_center_legs_are_told_apart_by_channel_id() -> None:
    chunker = AudioChunker(MULTI, seconds=1)
    chunker.feed(AudioReceived(data=pcm(1), timestamp=0, channel_id="caller"))
    chunker.feed(AudioReceived(data=pcm(2), timestamp=0, channel_id="agent"))
    assert {(c.channel_id, c.user_id, samples(c.data)[0]) for c in chunker.flush()} == {
        ("caller", None, 1),
        ("agent", None, 2),
    }


def test_a_speaker_who_stopped_talking_gets_their_partial_chunk() -> None:
    chunker = AudioChunker(MULTI, seconds=10, max_gap=0.1)
    chunker.feed(packet(ramp(1, 320), 0, 7, "Ann"))
    assert chunker.feed(packet(ramp(1001, 320), 100, 8, "Bob")) == []  # Ann ended 80 ms ago
    [ann] = chunker.feed(packet(ramp(2001, 320), 121, 8, "Bob"))  # 101 ms ago
    assert (ann.user_id, ann.timestamp, samples(ann.data)) == (7, 0.0, list(range(1, 321)))
    # Ann speaks again: a new chunk, not silence up to now; Bob has stopped.
    [bob] = chunker.feed(packet(ramp(3001, 320), 2000, 7, "Ann"))
    assert (bob.user_id, bob.timestamp, bob.frames, bob.silence) == (8, 100.0, 656, 16)
    [ann] = chunker.flush()
    assert (ann.user_id, ann.timestamp, ann.silence) == (7, 2000.0, 0)
    assert chunker.early_chunks == 3


def test_the_speaker_name_is_the_latest_seen() -> None:
    chunker = AudioChunker(MULTI, seconds=1)
    chunker.feed(packet(pcm(1), 0, 7, "Ann"))
    chunker.feed(packet(pcm(2), None, 7, "Ann B."))
    [chunk] = chunker.flush()
    assert chunk.user_name == "Ann B."


def test_the_byte_bound_emits_the_oldest_partial_chunk_early() -> None:
    chunk_bytes = 1600 * 2  # 0.1 s
    chunker = AudioChunker(MULTI, seconds=0.1, max_buffered_bytes=2 * chunk_bytes)
    out: list[AudioChunk] = []
    for step in range(4):  # speakers 1..3 each 60 ms: 3 x 1920 bytes > 6400
        for user in (1, 2, 3):
            out += chunker.feed(packet(ramp(100 * user, 320), 20 * step, user))
            assert chunker.buffered_bytes <= 2 * chunk_bytes
    assert out and out[0].user_id == 1 and out[0].frames < 1600
    assert chunker.early_chunks >= 1


def test_at_most_max_streams_speakers_are_tracked() -> None:
    chunker = AudioChunker(MULTI, seconds=1)
    out: list[AudioChunk] = []
    for user in range(MAX_STREAMS + 10):  # untimed: no quiet-speaker rule applies
        out += chunker.feed(packet(pcm(user), None, user))
        assert chunker.streams <= MAX_STREAMS
    # The ten heard least recently were let go, each with its audio.
    assert [(c.user_id, samples(c.data)) for c in out] == [(u, [u]) for u in range(10)]
    chunker.feed(packet(pcm(7), None, 10))  # heard again: now the most recent
    [first] = chunker.feed(packet(pcm(8), None, MAX_STREAMS + 10))
    assert first.user_id == 11
    assert len(chunker.flush()) == MAX_STREAMS and chunker.streams == 0


def test_a_packet_larger_than_a_chunk_is_cut_into_whole_chunks() -> None:
    chunker = AudioChunker(MIXED, seconds=0.01)  # 160 frames
    out = chunker.feed(packet(ramp(0, 1000), 0))
    assert [c.timestamp for c in out] == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert chunker.buffered_bytes == 40 * 2


def test_a_chunk_repr_leaves_the_bytes_out() -> None:
    chunk = AudioChunk(data=pcm(*range(1000)), format=MIXED, timestamp=0.0)
    assert "data" not in repr(chunk) and len(repr(chunk)) < 400


# --- NumPy -------------------------------------------------------------------------------------


def test_as_numpy_is_a_view_of_the_samples() -> None:
    mono = AudioChunk(data=pcm(1, -2, 32767, -32768), format=MIXED, timestamp=0.0)
    array = mono.as_numpy()
    assert array.dtype == numpy.int16 and array.shape == (4,)
    assert array.tolist() == [1, -2, 32767, -32768] and not array.flags.writeable
    floats = mono.as_numpy(float32=True)
    assert floats.dtype == numpy.float32
    assert floats.tolist() == [1 / 32768, -2 / 32768, 32767 / 32768, -1.0]
    stereo_format = audio_format(AudioParams(channel=AudioChannel.STEREO))
    stereo = AudioChunk(data=pcm(1, 2, 3, 4, 5, 6), format=stereo_format, timestamp=0.0)
    assert stereo.as_numpy().tolist() == [[1, 2], [3, 4], [5, 6]]


def test_as_numpy_without_numpy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    chunk = AudioChunk(data=pcm(1), format=MIXED, timestamp=0.0)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'rtms-proto\[numpy\]'") as info:
        chunk.as_numpy()
    assert info.value.name == "numpy"


# --- properties ----------------------------------------------------------------------------------

EIGHT_K = audio_format(AudioParams(sample_rate=AudioSampleRate.SR_8K))
EIGHT_K_MULTI = audio_format(
    AudioParams(sample_rate=AudioSampleRate.SR_8K, data_opt=DataOption.AUDIO_MULTI_STREAMS)
)
PER_MS = 8

packets_strategy = st.lists(
    st.tuples(
        st.integers(1, 3),  # speaker
        st.one_of(st.none(), st.sampled_from([0, 0, 0, 1, -1, 5, -5, 20, -20, 100, -100, 900])),
        st.integers(0, 300),  # frames
        st.booleans(),  # a trailing odd byte
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    packets=packets_strategy,
    multi=st.booleans(),
    fill_gaps=st.booleans(),
    seconds=st.sampled_from([0.001, 0.01, 0.02, 0.05, 0.13]),
    max_gap=st.sampled_from([0, 0.01, 0.05, 1.0]),
    bound_chunks=st.sampled_from([1, 2, 3, 10]),
)
def test_every_frame_is_placed_once_in_order_in_its_speakers_chunks(
    *,
    packets: list[tuple[int, int | None, int, bool]],
    multi: bool,
    fill_gaps: bool,
    seconds: float,
    max_gap: float,
    bound_chunks: int,
) -> None:
    fmt = EIGHT_K_MULTI if multi else EIGHT_K
    size = max(1, round(seconds * 8000))
    bound = size * 2 * bound_chunks
    chunker = AudioChunker(
        fmt, seconds=seconds, fill_gaps=fill_gaps, max_gap=max_gap, max_buffered_bytes=bound
    )
    owner: dict[int, int] = {}  # frame id -> speaker
    place: dict[int, int] = {}  # frame id -> timeline frame, for timed packets
    last: dict[int, int] = defaultdict(lambda: 1000)  # speaker -> last timestamp
    next_id, fed, odd = 1, 0, 0
    out: list[AudioChunk] = []
    for speaker, delta, frames, extra in packets:
        stamp = None if delta is None else max(0, last[speaker] + delta)
        ids = list(range(next_id, next_id + frames))
        next_id += frames
        for index, frame_id in enumerate(ids):
            owner[frame_id] = speaker
            if stamp is not None:
                place[frame_id] = stamp * PER_MS + index
        if stamp is not None:
            last[speaker] = stamp + frames // PER_MS
        fed += frames
        odd += extra
        data = pcm(*ids) + (b"\x01" if extra else b"")
        out += chunker.feed(packet(data, stamp, speaker, f"user {speaker}"))
        assert chunker.buffered_bytes <= bound
    out += chunker.flush()
    assert chunker.buffered_bytes == 0

    emitted = [frame_id for chunk in out for frame_id in samples(chunk.data) if frame_id]
    assert len(emitted) == len(set(emitted))  # no frame twice
    assert len(emitted) + chunker.dropped_frames == fed  # every frame placed or counted
    assert chunker.dropped_bytes == odd
    silence = sum(samples(chunk.data).count(0) for chunk in out)
    assert silence == chunker.filled_frames == sum(chunk.silence for chunk in out)
    assert fill_gaps or silence == 0
    assert all(0 < chunk.frames <= size for chunk in out)
    assert sum(chunk.frames < size for chunk in out) == chunker.early_chunks

    by_speaker: dict[int | None, list[int]] = defaultdict(list)
    for chunk in out:
        ids = [frame_id for frame_id in samples(chunk.data) if frame_id]
        if multi:
            assert {owner[i] for i in ids} <= {chunk.user_id}
            assert chunk.user_name == f"user {chunk.user_id}"
        else:
            assert chunk.user_id is None
        by_speaker[chunk.user_id].extend(ids)
        timed = [(j, i) for j, i in enumerate(samples(chunk.data)) if i in place]
        if chunk.timestamp is not None and fill_gaps:
            # Real time: each frame sits at its own instant after the chunk's start.
            start = round(chunk.timestamp * PER_MS)
            assert all(start + j == place[i] for j, i in timed)
        elif chunk.timestamp is not None and timed and timed[0][0] == 0:
            assert round(chunk.timestamp * PER_MS) == place[timed[0][1]]
    for ids in by_speaker.values():
        assert ids == sorted(ids)  # each speaker's frames in the order they came
