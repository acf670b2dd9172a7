"""Transcript sink: ``transcript.jsonl`` (one object per utterance) and ``transcript.vtt``.

WebVTT cue times are measured from the stream's origin (the same instant as
the start of ``audio.wav``), so the subtitles line up with the recording.  Each
cue names its speaker with a ``<v Name>`` voice span.  Both files are UTF-8
and written through after every utterance.

Names and text come from the server, so they are made safe for a cue before
they are written: line breaks and other control characters become spaces,
runs of white space one space, and ``&``, ``<`` and ``>`` are escaped (which
also keeps ``-->`` out of a cue).  A cue is therefore always its number, its
times and one line of text.  ``transcript.jsonl`` keeps the text as it came.
"""

from __future__ import annotations

import re
from pathlib import Path

from rtms_proto import events as ev
from rtms_proto.enums import TranscriptLanguage

from ._files import AppendFile, JsonlWriter, encode_text, to_json_value

__all__ = ["TranscriptSink", "vtt_time"]

_DEFAULT_CUE_MS = 2000


def vtt_time(ms: int) -> str:
    """``HH:MM:SS.mmm`` for a non-negative number of milliseconds."""
    ms = max(0, ms)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


# C0 and C1 controls, DEL, line and paragraph separators, and the code points a
# WebVTT parser or a text file cannot hold (lone surrogates, noncharacters).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _cue_text(text: str) -> str:
    """``text`` as one line of cue text: no control characters, markup escaped."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _speaker(event: ev.TranscriptReceived) -> str:
    for name in (
        event.user_name,
        None if event.user_id is None else f"user {event.user_id}",
        f"channel {event.channel_id}" if event.channel_id else None,
    ):
        cleaned = _cue_text(name or "")
        if cleaned:
            return cleaned
    return "unknown speaker"


class TranscriptSink:
    """Writes ``<folder>/transcript.jsonl`` and ``<folder>/transcript.vtt``.

    ``append``: continues existing files, cue numbers after the utterances
    already in ``transcript.jsonl``.
    """

    def __init__(self, folder: Path, *, append: bool = False) -> None:
        self.jsonl_path = folder / "transcript.jsonl"
        self.vtt_path = folder / "transcript.vtt"
        self._jsonl = JsonlWriter(self.jsonl_path, append=append)
        self._vtt = AppendFile(self.vtt_path, append=append)
        if not self._vtt.size:
            self._vtt.write(b"WEBVTT\n")
        self.utterances = self._jsonl.lines

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
        cue = (
            f"\n{self.utterances}\n{vtt_time(begin)} --> {vtt_time(finish)}\n"
            f"<v {_speaker(event)}>{_cue_text(event.text) or '…'}\n"
        )
        self._vtt.write(encode_text(cue))

    def close(self) -> None:
        try:
            self._jsonl.close()
        finally:
            self._vtt.close()
