"""audio_chunks() on the three drivers, against the fake server over TLS on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from test_transport_helpers import (
    ALLOWED,
    CLIENT_ID,
    CLIENT_SECRET,
    add_stream,
    fake_server,
    write_ca,
)

from rtms_conformance.net import RunningServer, ServerThread
from rtms_conformance.server import StreamInfo
from rtms_proto import AudioParams, MediaParams, MediaType
from rtms_proto import events as ev
from rtms_proto.audio import AudioChunk, AudioFormat, UnsupportedAudio, audio_format
from rtms_proto.enums import AudioSampleRate, Codec, DataOption
from rtms_transports import CA_ENV, CLIENT_ENV, SECRET_ENV, audio_chunks
from rtms_transports import asyncio as aio_driver
from rtms_transports import blocking as blocking_driver
from rtms_transports import trio as trio_driver
from rtms_transports.audio import AsyncAudioChunks, AudioChunks

MULTI = MediaParams(audio=AudioParams(data_opt=DataOption.AUDIO_MULTI_STREAMS))

Run = tuple[AudioFormat | None, list[AudioChunk], list[ev.Event]]


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLIENT_ENV, CLIENT_ID)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setenv(CA_ENV, write_ca(tmp_path))


def run_asyncio(body: bytes, params: MediaParams | None, **chunking: Any) -> Run:
    chunks: list[AudioChunk] = []
    others: list[ev.Event] = []

    async def main() -> AudioFormat | None:
        async with aio_driver.connect(body, allowed_hosts=ALLOWED, params=params) as stream:
            pieces = audio_chunks(stream, on_event=others.append, **chunking)
            assert isinstance(pieces, AsyncAudioChunks)
            async for chunk in pieces:
                chunks.append(chunk)
            return stream.audio_format

    return asyncio.run(main()), chunks, others


def run_trio(body: bytes, params: MediaParams | None, **chunking: Any) -> Run:
    chunks: list[AudioChunk] = []
    others: list[ev.Event] = []

    async def main() -> AudioFormat | None:
        async with trio_driver.connect(body, allowed_hosts=ALLOWED, params=params) as stream:
            async for chunk in audio_chunks(stream, on_event=others.append, **chunking):
                chunks.append(chunk)
            return stream.audio_format

    return trio.run(main), chunks, others


def run_blocking(body: bytes, params: MediaParams | None, **chunking: Any) -> Run:
    chunks: list[AudioChunk] = []
    others: list[ev.Event] = []
    with blocking_driver.connect(body, allowed_hosts=ALLOWED, params=params) as stream:
        pieces = audio_chunks(stream, on_event=others.append, **chunking)
        assert isinstance(pieces, AudioChunks)
        chunks.extend(pieces)
        assert list(pieces) == []  # over for good
        return stream.audio_format, chunks, others


DRIVERS: dict[str, Callable[..., Run]] = {
    "asyncio": run_asyncio,
    "trio": run_trio,
    "blocking": run_blocking,
}


def expected(
    server: ServerThread, info: StreamInfo, params: AudioParams, start: int, end: int, **kw: Any
) -> bytes:
    def compute(running: RunningServer) -> bytes:
        return running.server.expected_audio(info, params, start, end, **kw)

    return server.call(compute)


@pytest.mark.parametrize("driver", DRIVERS)
def test_mixed_audio_comes_in_whole_chunks_byte_for_byte(driver: str) -> None:
    with fake_server() as server:
        info = add_stream(server, f"chunks-{driver}", duration=1.0)
        fmt, chunks, others = DRIVERS[driver](server.rtms_started_body(info), None, seconds=0.2)
        sent = server.status(info).sent[14]
        assert fmt == audio_format(AudioParams())
        assert {chunk.format for chunk in chunks} == {fmt}
        # Every packet is in the chunks, in order, as the server made it.
        frames = sum(chunk.frames for chunk in chunks)
        assert frames == sent * 320
        first = chunks[0].timestamp
        assert first is not None and first == int(first)
        data = b"".join(chunk.data for chunk in chunks)
        assert data == expected(server, info, AudioParams(), int(first), int(first) + frames // 16)
    assert all(chunk.frames == 3200 and chunk.silence == 0 for chunk in chunks[:-1])
    assert [chunk.timestamp for chunk in chunks] == [first + 200 * i for i in range(len(chunks))]
    assert all(chunk.user_id is None for chunk in chunks)
    # Everything else reached on_event, up to the end.
    assert not any(isinstance(event, ev.AudioReceived) for event in others)
    assert any(isinstance(event, ev.TranscriptReceived) for event in others)
    assert isinstance(others[-1], ev.SessionEnded)


def test_per_speaker_chunks_are_each_speakers_packets_with_silence_between() -> None:
    params = MULTI.audio
    assert params is not None
    with fake_server() as server:
        info = add_stream(server, "chunks-multi", duration=1.5)
        fmt, chunks, _ = run_blocking(
            server.rtms_started_body(info), MULTI, seconds=0.3, max_gap=60
        )
        assert fmt is not None and not fmt.mixed
        speakers = {chunk.user_id for chunk in chunks}
        assert len(speakers) == 2 and None not in speakers
        for chunk in chunks:
            assert chunk.user_name and chunk.user_name.endswith(" Example")
            assert chunk.timestamp is not None and (chunk.timestamp - info.media_epoch_ms) % 20 == 0
            # Slot by slot: the speaker's own packet where one was sent, else silence.
            start = int(chunk.timestamp)
            want = b"".join(
                expected(server, info, params, t, t + 20, user_id=chunk.user_id) or bytes(640)
                for t in range(start, start + chunk.frames // 16, 20)
            )
            assert chunk.data == want
    for user in speakers:
        mine = [chunk for chunk in chunks if chunk.user_id == user]
        assert all(chunk.frames == 4800 for chunk in mine[:-1])
        stamps = [chunk.timestamp for chunk in mine]
        assert stamps == [mine[0].timestamp + 300 * i for i in range(len(mine))]  # type: ignore[operator]
    assert sum(chunk.silence for chunk in chunks) > 0  # turns leave gaps, filled


def test_a_confirmed_format_that_differs_is_followed() -> None:
    # The fake server confirms what was asked; the chunker switches when a
    # MediaConnected says otherwise, ending the chunks in progress.
    stream = _FakeStream(
        [
            ev.AudioReceived(data=bytes(640), timestamp=0, user_id=0),
            _connected(AudioParams(sample_rate=AudioSampleRate.SR_8K)),
            ev.AudioReceived(data=bytes(320), timestamp=20, user_id=0),
            _connected(AudioParams(sample_rate=AudioSampleRate.SR_8K)),  # the same: no cut
            ev.AudioReceived(data=bytes(320), timestamp=40, user_id=0),
        ]
    )
    pieces = audio_chunks(stream, seconds=1)
    out = list(pieces)
    assert [(c.format.sample_rate, c.frames, c.timestamp) for c in out] == [
        (16000, 320, 0.0),
        (8000, 320, 20.0),
    ]
    assert pieces.format.sample_rate == 8000 and pieces.chunker.early_chunks == 1


def test_a_confirmed_compressed_format_is_a_clear_error() -> None:
    opus = AudioParams(codec=Codec.OPUS, sample_rate=AudioSampleRate.SR_48K)
    pieces = audio_chunks(_FakeStream([_connected(opus)]), seconds=1)
    with pytest.raises(UnsupportedAudio, match="cannot chunk OPUS"):
        next(pieces)


def test_other_media_confirmations_leave_the_format_alone() -> None:
    video = ev.MediaConnected(sock=_SOCK, media_type=MediaType.VIDEO, params=MediaParams())
    seen: list[ev.Event] = []
    stream = _FakeStream([video, ev.AudioReceived(data=bytes(2), timestamp=0)])
    pieces = audio_chunks(stream, seconds=1, on_event=seen.append)
    assert [c.frames for c in pieces] == [1] and seen == [video]


def test_no_audio_or_bad_arguments_fail_before_reading() -> None:
    no_audio = _FakeStream([], audio=None)
    with pytest.raises(UnsupportedAudio, match="the stream has no audio"):
        audio_chunks(no_audio, seconds=1)
    with pytest.raises(ValueError, match="seconds must be a positive number"):
        audio_chunks(_FakeStream([]), seconds=0)
    opus = audio_format(AudioParams(codec=Codec.OPUS, sample_rate=AudioSampleRate.SR_48K))
    with pytest.raises(UnsupportedAudio, match="cannot chunk OPUS"):
        audio_chunks(_FakeStream([], audio=opus), seconds=1)


def test_a_stream_without_audio_says_so() -> None:
    with fake_server() as server:
        info = add_stream(server, "chunks-none", duration=0.2)
        body = server.rtms_started_body(info)
        with blocking_driver.connect(body, allowed_hosts=ALLOWED, media=MediaType.TRANSCRIPT) as s:
            assert s.audio_format is None
            with pytest.raises(UnsupportedAudio, match="the stream has no audio"):
                audio_chunks(s, seconds=1)


# --- a stand-in blocking stream for the format rules ---------------------------------------------

_SOCK: Any = object()
PCM = audio_format(AudioParams())


def _connected(params: AudioParams) -> ev.MediaConnected:
    return ev.MediaConnected(
        sock=_SOCK, media_type=MediaType.AUDIO, params=MediaParams(audio=params)
    )


class _FakeStream(blocking_driver.Stream):
    """Only what the iterator reads of a blocking stream: its events and audio format."""

    def __init__(self, events: list[ev.Event], audio: AudioFormat | None = PCM) -> None:
        self._events = iter(events)
        self._audio = audio

    @property
    def audio_format(self) -> AudioFormat | None:
        return self._audio

    def __next__(self) -> ev.Event:
        return next(self._events)
