"""The :class:`Recorder`: routes one stream's events to the sinks of its folder.

Files in the folder (each created when its first data arrives; transcript and
chat files at once when those media are expected):

``audio.wav``
    the audio as 16-bit PCM WAV at the confirmed sample rate and channels.
    Mixed audio (the default) is one file whatever user ids the packets carry;
    with multi-stream audio there is one ``audio-<user id>.wav`` per speaker,
    and Contact Center audio has one ``audio-<channel id>.wav`` per channel.
    Ids become file names through :func:`~._files.file_key` (safe, stable,
    and two ids never share a file).  Very long recordings continue in
    ``audio.part2.wav`` ... (a WAV file holds at most 4 GiB); after a change of
    audio format on a reconnect, new files ``audio.format2.wav`` ... begin.
    Codecs other than L16 go to ``audio.<codec>.raw`` with an index
    ``audio.<codec>.jsonl``.  Gap filling is bounded (see :mod:`.wav`): the
    arrival clock is the ``t`` passed to :meth:`Recorder.handle`, and each
    timestamp that could not be followed is an ``AudioDiscontinuity`` line in
    ``events.jsonl`` (``file``, ``timestamp``, ``jump_ms``, ``position_ms``,
    ``reason``) and a warning in the log.
``transcript.jsonl``, ``transcript.vtt``, ``chat.jsonl``, ``events.jsonl``
    see :mod:`.transcript`, :mod:`.chat`, :mod:`.events_log`.
``video/``, ``deskshare/``
    see :mod:`.frames`.

At most ``RecorderOptions.max_open_tracks`` audio tracks (default 16) hold
open files at a time: opening one more suspends the least recently used (its
header fixed, its descriptor closed) until its next packet reopens it to
append.  Thousands of speakers or channels cost files on disk, not
descriptors.

Every file shares one time origin: the FIRST_PACKET_TIMESTAMP event when it
comes before any media (Zoom's "start of session"), else the first media
timestamp.  ``audio.wav`` sample 0, WebVTT time 0 and frame names count from
it, so the outputs line up; a track whose first packet lies more than
``max_lead_ms`` after the origin (or before it) starts at its own first packet
instead.

A recorder made with ``resume=True`` continues the files an earlier process
left in ``folder`` (see :mod:`.resume`); ``RecorderOptions(resumable=True)``
keeps the small journal that makes a recording resumable, and ``guard``
fences every write (:class:`~.resume.NotOwner`).

A write that fails (disk full, a file size limit) raises ``OSError`` naming
the file and leaves every file consistent: whole records only, WAV headers
counting exactly the frames on disk.  :attr:`Recorder.failure` keeps the first
such error; :meth:`Recorder.close` closes every file even then and never
raises for one of them.

:attr:`Recorder.stats` is a live summary (messages and bytes per media type,
participants, reconnects, state, seconds of audio) for progress displays.

At the end of a stream Zoom may close a media socket a moment before the
stream-state message that ends the stream; the session then schedules a
reconnect it never makes.  So that a clean end does not read as a failure, a
media ``ReconnectScheduled`` for ``CLOSED_BY_SERVER`` is held back, with the
non-media events after it (order kept): a ``ReconnectStarted`` or anything
else than a clean end writes them all, a clean end (the stream or session
stopped or terminated by Zoom) drops the unmade reconnect and writes the rest.
At most :data:`HOLD_EVENTS` events and :data:`HOLD_SECONDS` seconds are held.

:meth:`Recorder.discard` removes what a recording that never connected left
behind (empty text files, the folder it created).
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rtms_proto import AudioParams, MediaParams
from rtms_proto import events as ev
from rtms_proto.enums import (
    AudioChannel,
    AudioSampleRate,
    Codec,
    DataOption,
    FailureReason,
    MediaType,
)

from ._files import file_key
from .chat import ChatSink
from .events_log import EventsLog, event_to_json
from .frames import FrameSink
from .resume import (
    Journal,
    NotOwner,
    ResumeState,
    TrackState,
    event_key,
    frame_key,
    load,
    transcript_key,
)
from .transcript import TranscriptSink
from .wav import AudioTrack, Discontinuity, RawAudioWriter, WavWriter

__all__ = ["MEDIA_KINDS", "MediaCount", "Recorder", "RecorderOptions", "Stats", "WrittenFile"]

MEDIA_KINDS = ("audio", "video", "deskshare", "transcript", "chat")

_RAW_EXT = {Codec.OPUS: "opus", Codec.G711: "alaw", Codec.G722: "g722"}
_LOGGED_DISCONTINUITIES = 5
"""Discontinuities logged per stream (all of them go to ``events.jsonl``)."""

LOG = logging.getLogger("rtms_app.recorder")

HOLD_EVENTS = 64
"""Events held back behind a media reconnect scheduled on a server close, at most."""
HOLD_SECONDS = 2.0
"""Seconds (of the ``t`` clock) such events are held back, at most."""

_CLEAN_ENDS = frozenset(
    {ev.EndReason.STREAM_TERMINATED, ev.EndReason.SESSION_STOPPED, ev.EndReason.STREAM_STOPPED}
)
"""Ends decided by Zoom in order: a media reconnect pending then was never needed."""


def _deferred(event: ev.Event) -> bool:
    return (
        isinstance(event, ev.ReconnectScheduled)
        and event.scope is ev.ReconnectScope.MEDIA
        and event.reason is FailureReason.CLOSED_BY_SERVER
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RecorderOptions:
    """How a :class:`Recorder` writes.

    ``gap_fill`` fills gaps in the audio with silence by the timestamps (off:
    packets are concatenated).  ``expect`` names the media types requested, so
    that their text files exist even when nothing arrives.  ``wav_update``
    is the seconds of audio between WAV header rewrites.  ``max_open_tracks``
    bounds the audio tracks holding open files (see the module docstring).
    ``resumable`` keeps ``resume.jsonl`` so that another process can continue
    the recording (:mod:`.resume`).
    """

    gap_fill: bool = True
    expect: MediaType = MediaType.UNDEFINED
    max_lead_ms: int = 60_000
    wav_update: float = 1.0
    max_open_tracks: int = 16
    resumable: bool = False


@dataclass(slots=True)
class MediaCount:
    messages: int = 0
    bytes: int = 0


@dataclass(slots=True)
class Stats:
    """What a stream has done so far; updated by :meth:`Recorder.handle`."""

    counts: dict[str, MediaCount] = field(
        default_factory=lambda: {kind: MediaCount() for kind in MEDIA_KINDS}
    )
    participants: dict[int, str | None] = field(default_factory=dict)
    speaker: str | None = None
    speaker_id: int | None = None
    reconnects: int = 0
    reconnect_scopes: dict[str, int] = field(default_factory=dict)
    """Reconnects begun, by scope (``media``, ``signaling``)."""
    state: str = "connecting"
    events: int = 0
    ended: ev.SessionEnded | None = None
    audio_seconds: float = 0.0
    """Seconds of audio in the longest WAV track so far (what a user checks first);
    audio kept raw (codecs other than L16) is not counted."""

    def count(self, kind: str, size: int) -> None:
        c = self.counts[kind]
        c.messages += 1
        c.bytes += size


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """A file (or folder of frames) the recorder wrote: where, how big, what it holds."""

    path: Path
    size: int
    note: str


def _hz(params: AudioParams) -> int:
    rate = params.sample_rate
    return rate.hz if isinstance(rate, AudioSampleRate) else 16000


def _channels(params: AudioParams) -> int:
    return 2 if params.channel == AudioChannel.STEREO else 1


def _format(params: AudioParams) -> tuple[int, int, int]:
    return int(params.codec), _hz(params), _channels(params)


class Recorder:
    """Writes one stream's files into ``folder`` (see the module docstring).

    ``resume``: continue what an earlier process wrote there.  ``guard``: asked
    before every event; when it says False, nothing is written and
    :class:`~.resume.NotOwner` is raised.
    """

    def __init__(
        self,
        folder: Path,
        options: RecorderOptions | None = None,
        *,
        resume: bool = False,
        guard: Callable[[], bool] | None = None,
    ) -> None:
        self.folder = folder
        self.options = options or RecorderOptions()
        self._made_folder = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        self._held: list[tuple[ev.Event, float | None]] = []
        self.stats = Stats()
        self.guard = guard
        self._resume: ResumeState | None = load(folder) if resume else None
        self._journal: Journal | None = None
        if resume or self.options.resumable:
            self._journal = Journal(folder)
        self.origin_ms: int | None = None if self._resume is None else self._resume.origin_ms
        self._audio_params: AudioParams | None = None
        self._codecs: dict[str, Codec | int] = {}
        self._format_gen = 1 if self._resume is None else self._resume.format_gen
        self._tracks: dict[str, AudioTrack] = {}
        self._closed_tracks: list[AudioTrack] = []
        self._raw: dict[str, RawAudioWriter] = {}
        self._closed_raw: list[RawAudioWriter] = []
        self._open: OrderedDict[str, AudioTrack | RawAudioWriter] = OrderedDict()
        self._t: float | None = None
        self._logged = 0
        self.failure: OSError | None = None
        """The first write that failed (the recording cannot go on), if any."""
        self._frames: dict[str, FrameSink] = {}
        self._append = resume
        self.events = EventsLog(folder, append=resume)
        self._transcript: TranscriptSink | None = None
        self._chat: ChatSink | None = None
        if MediaType.TRANSCRIPT in self.options.expect or (
            resume and (folder / "transcript.jsonl").exists()
        ):
            self._transcript = TranscriptSink(folder, append=resume)
        if MediaType.CHAT in self.options.expect or (resume and (folder / "chat.jsonl").exists()):
            self._chat = ChatSink(folder, append=resume)
        self._skipped = 0
        self._closed = False

    @property
    def skipped(self) -> int:
        """Records not written because they were already on disk (a resumed recording)."""
        tracks = [*self._closed_tracks, *self._tracks.values()]
        return self._skipped + sum(track.skipped for track in tracks)

    def claimed(self, node: str, revision: int) -> None:
        """Say in the journal and the events log which node writes from here on."""
        if self._journal is not None:
            self._journal.write("owner", node=node, revision=revision)
        kind = "RecordingResumed" if self._resume is not None else "RecordingOwned"
        self.events.note(kind, self._t, node=node, revision=revision)

    # --- input ------------------------------------------------------------------------------

    def handle(self, event: ev.Event, t: float | None = None) -> None:
        """Record one event; ``t`` is seconds since the session started.

        ``t`` goes into the events log and is the arrival clock that bounds gap
        filling; it must not jump.  Raises ``OSError`` naming the file when a
        write fails (also kept in :attr:`failure`), :class:`~.resume.NotOwner`
        when ``guard`` says this process may not write any more.
        """
        if self.guard is not None and not self.guard():
            raise NotOwner(f"{self.folder}: this process no longer owns the stream")
        try:
            self._handle(event, t)
        except OSError as exc:
            if self.failure is None:
                self.failure = exc
            raise

    def _handle(self, event: ev.Event, t: float | None) -> None:
        stats = self.stats
        stats.events += 1
        self._t = t
        if isinstance(event, ev.AudioReceived):
            self._origin_from(event.timestamp)
            stats.count("audio", len(event.data))
            self._audio(event, t)
        elif isinstance(event, ev.VideoReceived | ev.DeskshareReceived):
            self._origin_from(event.timestamp)
            kind = "video" if isinstance(event, ev.VideoReceived) else "deskshare"
            stats.count(kind, len(event.data))
            if self._seen_frame(kind, event.timestamp, event.user_id, len(event.data)):
                return
            self._frame_sink(kind).add(
                event.data,
                timestamp=event.timestamp,
                user_id=event.user_id,
                user_name=event.user_name,
                origin_ms=self.origin_ms,
            )
        elif isinstance(event, ev.TranscriptReceived):
            start = event.start_time if event.start_time is not None else event.timestamp
            self._origin_from(start)
            stats.count("transcript", len(event.text.encode("utf-8", "replace")))
            if self._resume is not None and self._resume.transcript.seen(
                start, transcript_key(event.user_id, event.text)
            ):
                self._skipped += 1
                return
            if self._transcript is None:
                self._transcript = TranscriptSink(self.folder, append=self._append)
            self._transcript.add(event, self.origin_ms)
        elif isinstance(event, ev.ChatReceived):
            stats.count("chat", len(event.text.encode("utf-8", "replace")))
            if self._resume is not None and self._resume.chat.seen(
                event.timestamp, transcript_key(event.user_id, event.text)
            ):
                self._skipped += 1
                return
            if self._chat is None:
                self._chat = ChatSink(self.folder, append=self._append)
            self._chat.add(event)
        else:
            self._log(event, t)

    def _log(self, event: ev.Event, t: float | None) -> None:
        """Note and write a non-media event, holding some back (see the module docstring)."""
        held = self._held
        if not held and not _deferred(event):
            self._note(event)
            stamp = getattr(event, "timestamp", None)
            if (
                self._resume is not None
                and isinstance(stamp, int)
                and self._resume.events.seen(stamp, event_key(event_to_json(event)))
            ):
                self._skipped += 1
                return
            self.events.add(event, t)
            return
        held.append((event, t))
        first = held[0][1]
        if isinstance(event, ev.SessionEnded) and event.why in _CLEAN_ENDS:
            self._release(drop=True)
        elif (
            isinstance(event, ev.ReconnectStarted | ev.SessionEnded)
            or len(held) >= HOLD_EVENTS
            or (t is not None and first is not None and t - first > HOLD_SECONDS)
        ):
            self._release(drop=False)

    def _release(self, *, drop: bool) -> None:
        """Write the held events, without the deferred reconnects when ``drop``."""
        held, self._held = self._held, []
        for event, t in held:
            if not (drop and _deferred(event)):
                self._note(event)
                self.events.add(event, t)

    def _seen_frame(self, kind: str, stamp: int | None, user: object, size: int) -> bool:
        if self._resume is None:
            return False
        mark = self._resume.frames.get(kind)
        if mark is not None and mark.seen(stamp, frame_key(user, size)):
            self._skipped += 1
            return True
        return False

    def _note(self, event: ev.Event) -> None:
        stats = self.stats
        if isinstance(event, ev.FirstPacketReceived):
            self._origin_from(event.timestamp)
        elif isinstance(event, ev.MediaConnected):
            self._confirmed(event.params)
        elif isinstance(event, ev.SignalingConnected):
            stats.state = "connected"
        elif isinstance(event, ev.ParticipantsJoined):
            for p in event.participants:
                stats.participants[p.user_id] = p.user_name or stats.participants.get(p.user_id)
        elif isinstance(event, ev.ParticipantsLeft):
            for p in event.participants:
                stats.participants.pop(p.user_id, None)
                if p.user_id == stats.speaker_id:
                    stats.speaker = stats.speaker_id = None
        elif isinstance(event, ev.ActiveSpeakerChanged):
            stats.speaker_id = event.user_id
            stats.speaker = event.user_name or (
                None if event.user_id is None else stats.participants.get(event.user_id)
            )
        elif isinstance(event, ev.ReconnectScheduled):
            stats.state = "reconnecting"
        elif isinstance(event, ev.ReconnectStarted):
            stats.reconnects += 1
            scope = event.scope.value
            stats.reconnect_scopes[scope] = stats.reconnect_scopes.get(scope, 0) + 1
        elif isinstance(event, ev.ReconnectCompleted):
            stats.state = "connected"
        elif isinstance(event, ev.SessionEnded):
            stats.state = "ended"
            stats.ended = event

    def _origin_from(self, timestamp: int | None) -> None:
        if self.origin_ms is None and timestamp is not None:
            self.origin_ms = timestamp
            if self._journal is not None:
                self._journal.write("origin", origin_ms=timestamp)

    # --- audio ------------------------------------------------------------------------------

    def _confirmed(self, params: MediaParams) -> None:
        if params.video is not None:
            self._codecs["video"] = params.video.codec
        if params.deskshare is not None:
            self._codecs["deskshare"] = params.deskshare.codec
        audio = params.audio
        if audio is None:
            return
        old = self._audio_params
        resumed = self._resume
        if old is None and resumed is not None and resumed.audio_format is not None:
            # A resumed recording: its tracks have the earlier process's format.
            if resumed.audio_format != _format(audio):
                self._format_gen += 1
                self._journal_format()
            resumed.audio_format = None
        if old is not None and _format(old) != _format(audio) and (self._tracks or self._raw):
            # The format changed on a reconnect: new files, the old ones stay as they are.
            self._close_audio()
            self._format_gen += 1
            self._journal_format()
        self._audio_params = audio

    def _journal_format(self) -> None:
        if self._journal is not None:
            self._journal.write("format", gen=self._format_gen)

    def _audio(self, event: ev.AudioReceived, t: float | None) -> None:
        params = self._audio_params or AudioParams()
        if event.channel_id is not None:
            key = f"-{file_key(event.channel_id)}"
        elif event.user_id and params.data_opt == DataOption.AUDIO_MULTI_STREAMS:
            key = f"-{file_key(event.user_id)}"
        else:
            key = ""  # mixed audio: one file, whatever ids the packets carry
        if self._format_gen > 1:
            key += f".format{self._format_gen}"
        if params.codec == Codec.L16:
            track = self._tracks.get(key)
            if track is None:
                track = self._tracks[key] = self._new_track(key, params, event.timestamp)
            self._touch(key, track)
            track.add(event.data, event.timestamp, t)
            self.stats.audio_seconds = max(self.stats.audio_seconds, track.duration)
            return
        raw = self._raw.get(key)
        if raw is None:
            codec = params.codec
            ext = _RAW_EXT.get(codec, "raw") if isinstance(codec, Codec) else f"codec{codec}"
            raw = self._raw[key] = RawAudioWriter(
                self.folder / f"audio{key}.{ext}.raw",
                self.folder / f"audio{key}.{ext}.jsonl",
                append=self._append,
            )
        user = event.user_id if event.channel_id is None else event.channel_id
        mark = None if self._resume is None else self._resume.raw.get(raw.path.name)
        if mark is not None and mark.seen(event.timestamp, frame_key(user, len(event.data))):
            self._skipped += 1
            return
        self._touch(key, raw)
        raw.add(
            event.data,
            timestamp=event.timestamp,
            user_id=event.user_id if event.channel_id is None else event.channel_id,
            user_name=event.user_name,
        )

    def _touch(self, key: str, writer: AudioTrack | RawAudioWriter) -> None:
        """``writer`` is about to write: keep it open, suspend the least recently used."""
        lru = self._open
        if key in lru:
            lru.move_to_end(key)
            return
        lru[key] = writer
        while len(lru) > max(1, self.options.max_open_tracks):
            _, idle = lru.popitem(last=False)
            idle.suspend()

    def _new_track(self, key: str, params: AudioParams, first: int | None) -> AudioTrack:
        rate, channels = _hz(params), _channels(params)
        origin = self.origin_ms
        if first is not None and (
            origin is None or not 0 <= first - origin <= self.options.max_lead_ms
        ):
            origin = first
        update = max(1, round(rate * self.options.wav_update))

        def name_of(n: int) -> str:
            return f"audio{key}.wav" if n == 1 else f"audio{key}.part{n}.wav"

        earlier = self._earlier_track(key, rate, channels)
        if earlier is None and self._resume is not None and (self.folder / name_of(1)).exists():
            # On disk but not in the journal (killed in between): continued, never emptied.
            earlier = TrackState(key, origin, rate, channels, int(params.codec), self._format_gen)
        parts, shift = 1, 0
        if earlier is not None:
            origin, shift = earlier.origin_ms, earlier.shift
            while (self.folder / name_of(parts + 1)).exists():
                parts += 1
        elif self._journal is not None:
            self._journal.write(
                "track",
                key=key,
                origin_ms=origin,
                rate=rate,
                ch=channels,
                codec=int(params.codec),
                gen=self._format_gen,
            )

        def open_part(n: int) -> WavWriter:
            return WavWriter(
                self.folder / name_of(n),
                sample_rate=rate,
                channels=channels,
                update_every=update,
                append=earlier is not None,
            )

        track: AudioTrack | None = None

        def report(d: Discontinuity) -> None:
            assert track is not None
            if self._journal is not None:
                self._journal.write("shift", key=key, shift=track.shift)
            self._discontinuity(track.writer.path.name, d)

        track = AudioTrack(
            open_part,
            sample_rate=rate,
            origin_ms=origin,
            gap_fill=self.options.gap_fill,
            on_discontinuity=report,
            parts=parts,
            shift=shift,
        )
        return track

    def _earlier_track(self, key: str, rate: int, channels: int) -> TrackState | None:
        """The track an earlier process wrote under ``key``, when it can be continued."""
        if self._resume is None:
            return None
        earlier = self._resume.tracks.get(key)
        if earlier is None or (earlier.sample_rate, earlier.channels) != (rate, channels):
            return None
        if not (self.folder / f"audio{key}.wav").exists():
            return None
        return earlier

    def _discontinuity(self, name: str, d: Discontinuity) -> None:
        self.events.note(
            "AudioDiscontinuity",
            self._t,
            file=name,
            timestamp=d.timestamp,
            jump_ms=d.jump_ms,
            position_ms=d.position_ms,
            reason=d.reason,
        )
        self._logged += 1
        if self._logged <= _LOGGED_DISCONTINUITIES:
            more = (
                "; further ones only in events.jsonl"
                if self._logged == _LOGGED_DISCONTINUITIES
                else ""
            )
            LOG.warning(
                "%s: audio timestamp %d not followed (%s); the track continues at %.3f s%s",
                self.folder / name,
                d.timestamp,
                d.reason,
                d.position_ms / 1000,
                more,
            )

    def _close_audio(self) -> None:
        for track in self._tracks.values():
            self._closing(track.close)
            self._closed_tracks.append(track)
        self._tracks.clear()
        for raw in self._raw.values():
            self._closing(raw.close)
            self._closed_raw.append(raw)
        self._raw.clear()
        self._open.clear()

    def _closing(self, close: Callable[[], object]) -> None:
        """Close one sink; a failure is kept in :attr:`failure`, the others still close."""
        try:
            close()
        except OSError as exc:
            if self.failure is None:
                self.failure = exc

    def _frame_sink(self, kind: str) -> FrameSink:
        sink = self._frames.get(kind)
        if sink is None:
            sink = self._frames[kind] = FrameSink(
                self.folder / kind, self._codecs.get(kind), append=self._append
            )
        return sink

    # --- the end ----------------------------------------------------------------------------

    def abandon(self) -> None:
        """Let go of every file without writing to any of them again.

        For a process that lost the stream to another one, which continues
        these very files: even a WAV header fixed now would undo its writes.
        """
        if self._closed:
            return
        self._closed = True
        for track in [*self._tracks.values()]:
            self._closing(track.abandon)
        for raw in self._raw.values():
            self._closing(raw.abandon)
        for sink in self._frames.values():
            self._closing(sink.close)
        for other in (self._transcript, self._chat, self.events, self._journal):
            if other is not None:
                self._closing(other.close)

    def close(self) -> list[WrittenFile]:
        """Close every file (WAV headers fixed) and list what was written.

        Never raises for a file that cannot be closed: see :attr:`failure`.
        """
        if not self._closed:
            self._closed = True
            if self._held:
                self._closing(lambda: self._release(drop=False))
            self._close_audio()
            for sink in self._frames.values():
                self._closing(sink.close)
            if self._transcript is not None:
                self._closing(self._transcript.close)
            if self._chat is not None:
                self._closing(self._chat.close)
            self._closing(self.events.close)
            if self._journal is not None:
                self._closing(self._journal.close)
        return self.files()

    def discard(self) -> None:
        """Close, then remove every file written and the folder when this recorder
        created it (a recording that never connected holds nothing worth keeping).
        Files it cannot remove stay; never raises."""
        self.close()
        frames = {sink.folder: sink for sink in self._frames.values()}
        for written in self.files():
            with contextlib.suppress(OSError):
                sink = frames.get(written.path)
                if sink is None:
                    written.path.unlink(missing_ok=True)
                    continue
                for path in [*sink.files, sink.index_path]:
                    path.unlink(missing_ok=True)
                sink.folder.rmdir()
        if self._made_folder:
            with contextlib.suppress(OSError):
                self.folder.rmdir()

    def files(self) -> list[WrittenFile]:
        """What was written so far, for a summary."""
        out: list[WrittenFile] = []
        for track in [*self._closed_tracks, *self._tracks.values()]:
            for part in track.parts:
                layout = "mono" if part.channels == 1 else "stereo"
                note = f"{part.sample_rate} Hz {layout}, {part.duration:.2f} s"
                if part is track.parts[0]:
                    extra = []
                    if track.silence_frames:
                        silence = track.silence_frames / track.sample_rate
                        extra.append(f"incl. {silence:.2f} s gap silence")
                    if n := track.discontinuities:
                        extra.append(f"{n} timestamp discontinuit{'y' if n == 1 else 'ies'}")
                    if extra:
                        note += f" ({'; '.join(extra)})"
                out.append(_written(part.path, note))
        for raw in [*self._closed_raw, *self._raw.values()]:
            out.append(_written(raw.path, f"{plural(raw.packets, 'audio packet')}, as received"))
            out.append(_written(raw.index.path, "index of the packets"))
        if self._transcript is not None:
            n = self._transcript.utterances
            out.append(_written(self._transcript.jsonl_path, plural(n, "utterance")))
            out.append(_written(self._transcript.vtt_path, "WebVTT subtitles with speaker names"))
        if self._chat is not None:
            out.append(_written(self._chat.path, plural(self._chat.messages, "chat message")))
        for kind, sink in self._frames.items():
            kinds = sorted({p.suffix.lstrip(".").upper() for p in sink.files})
            size = sum(_size(p) for p in sink.files)
            note = f"{plural(sink.frames, kind + ' frame')} ({', '.join(kinds) or '-'})"
            out.append(WrittenFile(sink.folder, size, note))
        out.append(_written(self.events.path, plural(self.events.lines, "event")))
        return out


def plural(n: int, word: str) -> str:
    """``1 frame``, ``2 frames``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _written(path: Path, note: str) -> WrittenFile:
    return WrittenFile(path, _size(path), note)
