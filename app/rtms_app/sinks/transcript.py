"""Transcript sink: ``transcript.jsonl`` (one object per utterance) and ``transcript.vtt``.

WebVTT cue times are measured from the stream's origin (the same instant as
the start of ``audio.wav``), so the subtitles line up with the recording.  Each
cue names its speaker with a ``<v Name>`` voice span.  Both files are UTF-8
and flushed after every utterance.
"""

from __future__ import annotations

from pathlib import Path

from rtms_proto import events as ev
from rtms_proto.enums import TranscriptLanguage

from ._files import JsonlWriter, open_text, to_json_value

__all__ = ["TranscriptSink", "vtt_time"]

_DEFAULT_CUE_MS = 2000


def vtt_time(ms: int) -> str:
    """``HH:MM:SS.mmm`` for a non-negative number of milliseconds."""
    ms = max(0, ms)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _speaker(event: ev.TranscriptReceived) -> str:
    if event.user_name:
        return event.user_name
    if event.user_id is not None:
        return f"user {event.user_id}"
    if event.channel_id:
        return f"channel {event.channel_id}"
    return "unknown speaker"


class TranscriptSink:
    """Writes ``<folder>/transcript.jsonl`` and ``<folder>/transcript.vtt``."""

    def __init__(self, folder: Path) -> None:
        self.jsonl_path = folder / "transcript.jsonl"
        self.vtt_path = folder / "transcript.vtt"
        self._jsonl = JsonlWriter(self.jsonl_path)
        self._vtt = open_text(self.vtt_path)
        self._vtt.write("WEBVTT\n")
        self._vtt.flush()
        self.utterances = 0

    def add(self, event: ev.TranscriptReceived, origin_ms: int | None) -> None:
        """Write one utterance; ``origin_ms`` is the timestamp of cue time zero."""
        language = event.language
        line: dict[str, object] = {
            "user_id": event.user_id,
            "user_name": event.user_name,
            "start_time": event.start_time,
            "end_time": event.end_time,
            "timestamp": event.timestamp,
            "language": None if language is None else int(language),
            "language_name": (
                language.name.lower() if isinstance(language, TranscriptLanguage) else None
            ),
            "text": event.text,
        }
        if event.channel_id is not None:
            line["channel_id"] = event.channel_id
        if event.attribute is not None:
            line["attribute"] = to_json_value(event.attribute)
        self._jsonl.write(line)
        self.utterances += 1
        self._cue(event, origin_ms)

    def _cue(self, event: ev.TranscriptReceived, origin_ms: int | None) -> None:
        start = event.start_time if event.start_time is not None else event.timestamp
        end = event.end_time
        base = origin_ms if origin_ms is not None else (start or 0)
        begin = 0 if start is None else start - base
        finish = begin + _DEFAULT_CUE_MS if end is None else end - base
        finish = max(finish, begin + 1)
        text = " ".join(event.text.split()) or "…"
        self._vtt.write(
            f"\n{self.utterances}\n{vtt_time(begin)} --> {vtt_time(finish)}\n"
            f"<v {_escape(_speaker(event))}>{_escape(text)}\n"
        )
        self._vtt.flush()

    def close(self) -> None:
        self._jsonl.close()
        self._vtt.close()
