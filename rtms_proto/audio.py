"""Audio ready for speech-to-text: what the audio bytes are, and fixed-duration PCM chunks.

Speech-to-text services take PCM of a known rate in pieces of a few seconds,
one speaker at a time or mixed; RTMS delivers 20 ms packets (by default)
whose format is set by the media handshake (docs/protocol.md §5.1, §6.2).

* :class:`AudioFormat` says what the bytes are: :func:`audio_format` gives it
  for a :class:`~rtms_proto.SessionConfig` (what the session asks for) or for
  the ``params`` of a :class:`~rtms_proto.events.MediaConnected` event (what
  the server confirmed).
* :class:`AudioChunker` turns :class:`~rtms_proto.events.AudioReceived` packets
  into :class:`AudioChunk` values of a fixed duration, each with the time of
  its first sample.  It is pure: packets in, chunks out, no clock; the times
  are the packets' own ``timestamp`` (Unix milliseconds).

Chunking rules (``N`` = frames per chunk, ``G`` = ``max_gap`` in frames; a
frame is one sample of every channel):

* Mixed audio (``AUDIO_MIXED_STREAM``) is one stream; multi-stream audio is one
  stream per speaker (``user_id``, or ``channel_id`` for Contact Center), and
  a chunk never holds two speakers' samples.
* A packet's place on its stream's timeline is its ``timestamp``; a packet
  without one continues where the stream's last packet ended.
* A packet starting up to ``G`` frames after the end of the last one leaves a
  gap: filled with silence (``fill_gaps=True``: the chunk keeps real time) or
  closed up (``fill_gaps=False``: speech only; the chunk's ``timestamp`` is
  still that of its first sample).
* A packet starting up to ``G`` frames before that end overlaps audio already
  placed: its overlapping frames are dropped (counted in :attr:`dropped_frames`),
  so no instant is emitted twice.
* A jump of more than ``G`` frames, forward or back (a long mute, a new
  timeline), ends the stream's current chunk early and starts a new one at the
  packet: no silence longer than ``max_gap`` is ever made up, nothing is dropped.
* A speaker whose audio ended more than ``G`` frames before a later packet of
  another speaker has stopped talking: their partial chunk is emitted then.
* The partial chunks together never hold more than ``max_buffered_bytes``:
  past it, the chunk started first is emitted early.  At most
  :data:`MAX_STREAMS` speakers are tracked: past it, the one heard least
  recently is treated as having stopped.
* A trailing partial frame of a packet (an odd byte count) cannot be placed
  and is dropped (counted in :attr:`dropped_bytes`).
* :meth:`AudioChunker.flush` emits every partial chunk (at the end of a stream).

Every chunk holds exactly ``N`` frames except those emitted early by the rules
above; every frame of every packet is in exactly one chunk, apart from the
dropped overlaps and partial frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._errors import InvalidConfig
from ._params import AudioParams, MediaParams
from ._session import SessionConfig
from ._wire.media import AudioReceived
from .enums import AudioChannel, AudioSampleRate, Codec, ContentType, DataOption, to_enum

__all__ = [
    "DEFAULT_MAX_BUFFERED_BYTES",
    "MAX_GAP_LIMIT",
    "MAX_STREAMS",
    "AudioChunk",
    "AudioChunker",
    "AudioFormat",
    "UnsupportedAudio",
    "audio_format",
]

MAX_GAP_LIMIT = 60.0
"""The largest ``max_gap`` (seconds): Zoom's own reconnection window, and a bound
on the silence one packet can make (60 s of 48 kHz stereo is 11 MiB)."""

MAX_STREAMS = 1024
"""The most streams (speakers) tracked at once: past it, the one heard least
recently is emitted and forgotten, as if it had stopped talking."""

DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024
"""The default bound on the bytes waiting in partial chunks (all speakers)."""


def _is_number(value: object) -> bool:
    return type(value) is not bool and isinstance(value, int | float)


def _is_int(value: object) -> bool:
    return type(value) is not bool and isinstance(value, int)


class UnsupportedAudio(InvalidConfig):
    """The audio cannot be described or chunked as asked (no audio, a compressed
    codec, an unknown rate); the message says which and what to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioFormat:
    """What an audio packet's bytes are (docs/protocol.md §5.1, §6.2).

    PCM (``codec`` L16 in RAW_AUDIO content, the protocol default) is signed
    16-bit little-endian samples, channels interleaved: ``sample_width`` 2.
    Compressed codecs (Opus, G.711 A-law, G.722) have no fixed sample width
    (None) and must be decoded before use.  ``mixed`` is False for
    ``AUDIO_MULTI_STREAMS``: one stream per speaker.  ``packet_ms`` is the
    ``send_rate``: the audio one packet carries.
    """

    codec: Codec | int
    sample_rate: int
    channels: int
    sample_width: int | None
    mixed: bool
    content_type: ContentType | int = ContentType.RAW_AUDIO
    packet_ms: int = 20

    def __post_init__(self) -> None:
        # Timestamps are whole milliseconds: a rate of whole kHz puts every one on a frame.
        if not (
            _is_int(self.sample_rate) and self.sample_rate > 0 and self.sample_rate % 1000 == 0
        ):
            raise InvalidConfig(
                f"sample_rate must be a whole number of kHz, not {self.sample_rate!r}"
            )
        if not (_is_int(self.channels) and self.channels in (1, 2)):
            raise InvalidConfig(f"channels must be 1 or 2, not {self.channels!r}")
        if self.sample_width not in (None, 2):
            raise InvalidConfig(
                f"sample_width must be 2 (16-bit PCM) or None, not {self.sample_width!r}"
            )

    @classmethod
    def from_params(cls, params: AudioParams) -> AudioFormat:
        """The format an ``audio`` parameter object describes (requested or confirmed).

        Raises :class:`UnsupportedAudio` for a rate or channel count this
        library does not know (a server's reply is decoded leniently).
        """
        rate = to_enum(AudioSampleRate, params.sample_rate)
        if not isinstance(rate, AudioSampleRate):
            raise UnsupportedAudio(f"audio.sample_rate={params.sample_rate!r} is not a known rate")
        channels = to_enum(AudioChannel, params.channel)
        if not isinstance(channels, AudioChannel):
            raise UnsupportedAudio(f"audio.channel={params.channel!r} is not mono or stereo")
        codec = to_enum(Codec, params.codec)
        content = to_enum(ContentType, params.content_type)
        pcm = codec == Codec.L16 and content == ContentType.RAW_AUDIO
        return cls(
            codec=codec,
            sample_rate=rate.hz,
            channels=int(channels),
            sample_width=2 if pcm else None,
            mixed=params.data_opt != DataOption.AUDIO_MULTI_STREAMS,
            content_type=content,
            packet_ms=int(params.send_rate),
        )

    @property
    def is_pcm(self) -> bool:
        """Raw 16-bit PCM: the only audio that can be cut into chunks as it comes."""
        return self.sample_width is not None

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (one sample of every channel); 0 for compressed audio."""
        return (self.sample_width or 0) * self.channels

    @property
    def bytes_per_second(self) -> int:
        """PCM bytes per second of audio; 0 for compressed audio."""
        return self.frame_bytes * self.sample_rate

    def describe(self) -> str:
        """A short human description, e.g. ``L16 16000 Hz mono, mixed``."""
        name = self.codec.name if isinstance(self.codec, Codec) else f"codec {self.codec}"
        layout = "mono" if self.channels == 1 else "stereo"
        speakers = "mixed" if self.mixed else "per speaker"
        return f"{name} {self.sample_rate} Hz {layout}, {speakers}"


def audio_format(source: SessionConfig | MediaParams | AudioParams) -> AudioFormat:
    """The audio format of a session's request, or of confirmed parameters.

    ``source`` is a :class:`~rtms_proto.SessionConfig` (its
    ``effective_params``: what the media handshake asks for), a
    :class:`~rtms_proto.MediaParams` (e.g. ``MediaConnected.params``, what the
    server confirmed) or an :class:`~rtms_proto.AudioParams`.  Raises
    :class:`UnsupportedAudio` when it has no audio.
    """
    params: AudioParams | None
    if isinstance(source, AudioParams):
        params = source
    elif isinstance(source, SessionConfig):
        params = source.effective_params.audio
    else:
        params = source.audio
    if params is None:
        raise UnsupportedAudio("no audio: the session does not ask for MediaType.AUDIO")
    return AudioFormat.from_params(params)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioChunk:
    """A stretch of PCM from one stream: mixed audio or one speaker's.

    ``timestamp`` is when its first frame was produced (Unix milliseconds, the
    packets' clock; fractional when a chunk starts inside a packet), or None
    when the packets carried no timestamp.  ``silence`` counts the frames
    filled in for gaps.  ``user_id``/``user_name``/``channel_id`` name the
    speaker (None for mixed audio).
    """

    data: bytes = field(repr=False)
    format: AudioFormat
    timestamp: float | None
    user_id: int | None = None
    user_name: str | None = None
    channel_id: str | None = None
    silence: int = 0

    @property
    def frames(self) -> int:
        """Frames (samples per channel) in the chunk."""
        return len(self.data) // self.format.frame_bytes

    @property
    def duration(self) -> float:
        """Seconds of audio in the chunk (filled silence included)."""
        return self.frames / self.format.sample_rate

    def as_numpy(self, *, float32: bool = False) -> Any:
        """The samples as a NumPy array: shape ``(frames,)`` for mono, ``(frames, channels)``
        for stereo.

        int16 by default, a read-only view of :attr:`data` (no copy); ``float32=True``
        gives a new array scaled to [-1.0, 1.0), what many speech models take.
        NumPy is imported only here: without it this raises
        :class:`ModuleNotFoundError` naming the ``numpy`` extra.
        """
        try:
            import numpy
        except ImportError:
            raise ModuleNotFoundError(
                "AudioChunk.as_numpy needs NumPy: pip install 'rtms-proto[numpy]'",
                name="numpy",
            ) from None
        array = numpy.frombuffer(self.data, dtype="<i2")
        if self.format.channels > 1:
            array = array.reshape(-1, self.format.channels)
        if float32:
            return array.astype(numpy.float32) / 32768.0
        return array


@dataclass(slots=True)
class _Track:
    """One stream's place on its timeline and its partial chunk."""

    pos: int  # timeline frame where the next packet is expected
    stamped: bool  # the timeline comes from packet timestamps
    order: int = 0  # when the partial chunk began, for the max_buffered_bytes rule
    buf: bytearray = field(default_factory=bytearray)
    start: int = 0  # timeline frame of the partial chunk's first frame
    silence: int = 0
    user_id: int | None = None
    user_name: str | None = None
    channel_id: str | None = None


class AudioChunker:
    """Cut a stream's PCM audio packets into chunks of ``seconds`` (rules: module docstring).

    ``format`` says what the packets are (:func:`audio_format`); it must be
    PCM.  ``seconds`` is rounded to whole frames (at least one).
    ``max_gap`` (seconds, 0 to :data:`MAX_GAP_LIMIT`, default 1) is the
    largest timestamp jump treated as one stretch of audio.
    ``max_buffered_bytes`` (default 16 MiB) bounds the partial chunks of all
    speakers together; it must hold at least one whole chunk.

    :meth:`feed` takes one packet and returns the chunks it completed (often
    none); :meth:`flush` returns the partial ones.  Counters:
    :attr:`filled_frames`, :attr:`dropped_frames`, :attr:`dropped_bytes`,
    :attr:`early_chunks`.
    """

    def __init__(
        self,
        format: AudioFormat,
        *,
        seconds: float,
        fill_gaps: bool = True,
        max_gap: float = 1.0,
        max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    ) -> None:
        if not format.is_pcm:
            raise UnsupportedAudio(
                f"cannot chunk {format.describe()}: only raw L16 PCM can be cut as it comes; "
                "ask for codec=Codec.L16 and content_type=ContentType.RAW_AUDIO, or decode first"
            )
        if not (_is_number(seconds) and math.isfinite(seconds) and seconds > 0):
            raise InvalidConfig(f"seconds must be a positive number, not {seconds!r}")
        if not (_is_number(max_gap) and 0 <= max_gap <= MAX_GAP_LIMIT):
            raise InvalidConfig(
                f"max_gap must be between 0 and {MAX_GAP_LIMIT:g} s, not {max_gap!r}"
            )
        self.format = format
        self.fill_gaps = fill_gaps
        self._fb = format.frame_bytes
        self._per_ms = format.sample_rate // 1000
        self._size = max(1, round(seconds * format.sample_rate))
        self._gap = round(max_gap * format.sample_rate)
        chunk_bytes = self._size * self._fb
        if type(max_buffered_bytes) is not int or max_buffered_bytes < chunk_bytes:
            raise InvalidConfig(
                f"max_buffered_bytes={max_buffered_bytes!r} cannot hold one {seconds:g} s chunk "
                f"of {format.describe()} ({chunk_bytes} bytes)"
            )
        self.max_buffered_bytes = max_buffered_bytes
        self._tracks: dict[tuple[int | None, str | None], _Track] = {}
        self._order = 0
        self._buffered = 0
        self.filled_frames = 0
        """Silence frames filled into gaps."""
        self.dropped_frames = 0
        """Frames dropped because they overlapped audio already placed."""
        self.dropped_bytes = 0
        """Bytes of trailing partial frames dropped."""
        self.early_chunks = 0
        """Chunks emitted short: jumps, speakers who stopped, the byte bound, :meth:`flush`."""

    @property
    def chunk_frames(self) -> int:
        """Frames in a whole chunk: ``seconds`` times the sample rate, rounded."""
        return self._size

    @property
    def streams(self) -> int:
        """Streams (speakers) tracked now: never more than :data:`MAX_STREAMS`."""
        return len(self._tracks)

    @property
    def buffered_bytes(self) -> int:
        """Bytes waiting in partial chunks (never more than ``max_buffered_bytes``)."""
        return self._buffered

    def feed(self, packet: AudioReceived) -> list[AudioChunk]:
        """Place one packet; return the chunks it completed or ended, in that order."""
        out: list[AudioChunk] = []
        data = packet.data
        extra = len(data) % self._fb
        if extra:
            self.dropped_bytes += extra
            data = data[: len(data) - extra]
        if not data:
            return out
        key = (None, None) if self.format.mixed else (packet.user_id, packet.channel_id)
        track = self._tracks.pop(key, None)  # back in below, as the most recently heard
        stamp = packet.timestamp
        at = stamp * self._per_ms if stamp is not None else None
        if (
            at is not None
            and track is not None
            and (not track.stamped or abs(at - track.pos) > self._gap)
        ):
            self._emit(track, out, early=True)  # a new stretch of audio
            track = None
        if track is None:
            track = _Track(pos=at or 0, stamped=at is not None)
            if not self.format.mixed:
                track.user_id, track.channel_id = key
        self._tracks[key] = track
        if len(self._tracks) > MAX_STREAMS:
            oldest = next(iter(self._tracks))  # the stream heard least recently
            self._emit(self._tracks.pop(oldest), out, early=True)
        if not self.format.mixed:
            track.user_name = packet.user_name
        if at is None:
            at = track.pos
        view = memoryview(data)
        if at < track.pos:
            overlap = min(track.pos - at, len(data) // self._fb)
            self.dropped_frames += overlap
            view = view[overlap * self._fb :]
        elif at > track.pos:
            if self.fill_gaps:
                self.filled_frames += at - track.pos
                self._append(track, None, at - track.pos, out)
            else:
                track.pos = at
        if view:
            self._append(track, view, len(view) // self._fb, out)
        if track.stamped:
            self._end_quiet_speakers(track, out)
        self._enforce_bound(out)
        return out

    def flush(self) -> list[AudioChunk]:
        """Emit every partial chunk (oldest first) and forget every stream's place."""
        out: list[AudioChunk] = []
        for track in sorted(self._tracks.values(), key=lambda t: t.order):
            self._emit(track, out, early=True)
        self._tracks.clear()
        return out

    # --- internals ------------------------------------------------------------------------

    def _append(
        self, track: _Track, view: memoryview | None, frames: int, out: list[AudioChunk]
    ) -> None:
        """Add ``frames`` frames (silence when ``view`` is None) at ``track.pos``."""
        fb = self._fb
        done = 0
        while done < frames:
            if not track.buf:
                track.start = track.pos
                self._order += 1
                track.order = self._order
            take = min(self._size - len(track.buf) // fb, frames - done)
            if view is None:
                track.buf += bytes(take * fb)
                track.silence += take
            else:
                track.buf += view[done * fb : (done + take) * fb]
            self._buffered += take * fb
            done += take
            track.pos += take
            if len(track.buf) == self._size * fb:
                self._emit(track, out, early=False)

    def _emit(self, track: _Track, out: list[AudioChunk], *, early: bool) -> None:
        """Turn the track's partial chunk (if any) into a chunk."""
        if not track.buf:
            return
        if early:
            self.early_chunks += 1
        self._buffered -= len(track.buf)
        out.append(
            AudioChunk(
                data=bytes(track.buf),
                format=self.format,
                timestamp=track.start / self._per_ms if track.stamped else None,
                user_id=track.user_id,
                user_name=track.user_name,
                channel_id=track.channel_id,
                silence=track.silence,
            )
        )
        track.buf = bytearray()
        track.silence = 0

    def _end_quiet_speakers(self, current: _Track, out: list[AudioChunk]) -> None:
        """Emit and forget the streams whose audio ended more than ``max_gap`` before this one's."""
        if len(self._tracks) == 1:
            return
        horizon = current.pos - self._gap
        for key, track in list(self._tracks.items()):
            if track is not current and track.stamped and track.pos < horizon:
                self._emit(track, out, early=True)
                del self._tracks[key]

    def _enforce_bound(self, out: list[AudioChunk]) -> None:
        """Emit the oldest partial chunks until the buffered bytes fit the bound."""
        while self._buffered > self.max_buffered_bytes:
            oldest = min((t for t in self._tracks.values() if t.buf), key=lambda t: t.order)
            self._emit(oldest, out, early=True)
