"""A live stream's audio as fixed-duration PCM chunks, from asyncio, trio or blocking code.

``audio_chunks(stream, seconds=2)`` reads the stream's events and gives
:class:`~rtms_proto.audio.AudioChunk` values, cut by
:class:`~rtms_proto.audio.AudioChunker` (its rules: mixed or per speaker,
gaps filled with silence or closed up, bounded): ``async for`` on an asyncio
or trio stream, ``for`` on a blocking one.  When the stream ends, the partial
chunks are given too, then iteration stops.

The chunks start in the format the session asks for (``stream.audio_format``);
a ``MediaConnected`` whose confirmed parameters say otherwise ends the
chunks in progress and goes on in the confirmed format (each chunk carries
its own ``format``).  Every event other than audio is passed to ``on_event``
when given (transcripts, ``SessionEnded``...), so nothing is lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import overload

from rtms_proto import events as ev
from rtms_proto.audio import (
    DEFAULT_MAX_BUFFERED_BYTES,
    AudioChunk,
    AudioChunker,
    AudioFormat,
    UnsupportedAudio,
)
from rtms_proto.enums import MediaType

from ._stream import AsyncStream, StreamBase
from .blocking import Stream as BlockingStream

__all__ = ["AsyncAudioChunks", "AudioChunks", "audio_chunks"]

EventCallback = Callable[[ev.Event], object]


class _Chunking:
    """What the asynchronous and the blocking iterators share: events in, chunks out."""

    _stream: StreamBase

    def __init__(
        self,
        stream: StreamBase,
        *,
        seconds: float,
        fill_gaps: bool,
        max_gap: float,
        max_buffered_bytes: int,
        on_event: EventCallback | None,
    ) -> None:
        fmt = stream.audio_format
        if fmt is None:
            raise UnsupportedAudio(
                "the stream has no audio: connect with media including MediaType.AUDIO"
            )
        self._stream = stream
        self._options = (seconds, fill_gaps, max_gap, max_buffered_bytes)
        self._chunker = self._new_chunker(fmt)
        self._on_event = on_event
        self._pending: deque[AudioChunk] = deque()
        self._ended = False

    @property
    def chunker(self) -> AudioChunker:
        """The chunker in use: its counters (``filled_frames``, ``dropped_frames``...)."""
        return self._chunker

    @property
    def format(self) -> AudioFormat:
        """The audio format being chunked now."""
        return self._chunker.format

    def _new_chunker(self, fmt: AudioFormat) -> AudioChunker:
        seconds, fill_gaps, max_gap, max_buffered_bytes = self._options
        return AudioChunker(
            fmt,
            seconds=seconds,
            fill_gaps=fill_gaps,
            max_gap=max_gap,
            max_buffered_bytes=max_buffered_bytes,
        )

    def _take(self, event: ev.Event) -> None:
        if type(event) is ev.AudioReceived:
            self._pending.extend(self._chunker.feed(event))
            return
        if (
            isinstance(event, ev.MediaConnected)
            and event.media_type & (MediaType.AUDIO | MediaType.ALL)
            and event.params.audio is not None
        ):
            confirmed = AudioFormat.from_params(event.params.audio)
            if confirmed != self._chunker.format:
                self._pending.extend(self._chunker.flush())
                self._chunker = self._new_chunker(confirmed)
        if self._on_event is not None:
            self._on_event(event)

    def _end(self) -> None:
        self._ended = True
        self._pending.extend(self._chunker.flush())


class AsyncAudioChunks(_Chunking):
    """``async for chunk in audio_chunks(stream, ...)`` on an asyncio or trio stream."""

    _stream: AsyncStream

    def __aiter__(self) -> AsyncAudioChunks:
        return self

    async def __anext__(self) -> AudioChunk:
        while not self._pending:
            if self._ended:
                raise StopAsyncIteration
            try:
                event = await self._stream.__anext__()
            except StopAsyncIteration:
                self._end()
            else:
                self._take(event)
        return self._pending.popleft()


class AudioChunks(_Chunking):
    """``for chunk in audio_chunks(stream, ...)`` on a blocking stream."""

    _stream: BlockingStream

    def __iter__(self) -> AudioChunks:
        return self

    def __next__(self) -> AudioChunk:
        while not self._pending:
            if self._ended:
                raise StopIteration
            try:
                event = next(self._stream)
            except StopIteration:
                self._end()
            else:
                self._take(event)
        return self._pending.popleft()


@overload
def audio_chunks(
    stream: AsyncStream,
    *,
    seconds: float,
    fill_gaps: bool = ...,
    max_gap: float = ...,
    max_buffered_bytes: int = ...,
    on_event: EventCallback | None = ...,
) -> AsyncAudioChunks: ...


@overload
def audio_chunks(
    stream: BlockingStream,
    *,
    seconds: float,
    fill_gaps: bool = ...,
    max_gap: float = ...,
    max_buffered_bytes: int = ...,
    on_event: EventCallback | None = ...,
) -> AudioChunks: ...


def audio_chunks(
    stream: AsyncStream | BlockingStream,
    *,
    seconds: float,
    fill_gaps: bool = True,
    max_gap: float = 1.0,
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    on_event: EventCallback | None = None,
) -> AsyncAudioChunks | AudioChunks:
    """The stream's audio in chunks of ``seconds``: iterate with ``async for`` (asyncio,
    trio) or ``for`` (blocking).

    The arguments are :class:`~rtms_proto.audio.AudioChunker`'s; they are checked
    here, and :class:`~rtms_proto.audio.UnsupportedAudio` is raised at once for
    a stream without audio or with audio that is not raw PCM (or later, if the
    server confirms such a format).  ``on_event`` receives every other event.
    The stream must be read only through the returned iterator.
    """
    kind = AsyncAudioChunks if isinstance(stream, AsyncStream) else AudioChunks
    return kind(
        stream,
        seconds=seconds,
        fill_gaps=fill_gaps,
        max_gap=max_gap,
        max_buffered_bytes=max_buffered_bytes,
        on_event=on_event,
    )
