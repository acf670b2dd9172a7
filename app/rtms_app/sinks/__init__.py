"""Media sinks: the files the ``rtms-proto`` command writes for a stream.

Each sink is a plain file writer with no I/O besides its files and no clock:
:class:`WavWriter` / :class:`AudioTrack` (``audio.wav``), :class:`RawAudioWriter`
(non-L16 codecs), :class:`TranscriptSink` (``transcript.jsonl`` and
``transcript.vtt``), :class:`ChatSink` (``chat.jsonl``), :class:`EventsLog`
(``events.jsonl``), :class:`FrameSink` (``video/``, ``deskshare/``) and the
wire log (:mod:`.wire_log`, ``--save-wire`` and ``replay``).  A
:class:`Recorder` routes one stream's events to the sinks of its folder.
"""

from .chat import ChatSink
from .events_log import EventsLog, event_to_json
from .frames import FrameSink
from .recorder import MEDIA_KINDS, MediaCount, Recorder, RecorderOptions, Stats, WrittenFile
from .transcript import TranscriptSink, vtt_time
from .wav import AudioTrack, RawAudioWriter, WavWriter
from .wire_log import (
    TappedSession,
    WireFormatError,
    WireKind,
    WireLogWriter,
    WireRecord,
    config_from_header,
    config_to_header,
    read_wire_header,
    read_wire_log,
    replay,
)

__all__ = [
    "MEDIA_KINDS",
    "AudioTrack",
    "ChatSink",
    "EventsLog",
    "FrameSink",
    "MediaCount",
    "RawAudioWriter",
    "Recorder",
    "RecorderOptions",
    "Stats",
    "TappedSession",
    "TranscriptSink",
    "WavWriter",
    "WireFormatError",
    "WireKind",
    "WireLogWriter",
    "WireRecord",
    "WrittenFile",
    "config_from_header",
    "config_to_header",
    "event_to_json",
    "read_wire_header",
    "read_wire_log",
    "replay",
    "vtt_time",
]
