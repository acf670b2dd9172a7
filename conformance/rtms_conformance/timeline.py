"""What happens in a fake meeting: the events a scripted timeline is made of.

The synthetic meeting (:mod:`rtms_conformance.meeting`) is expressed in these
same events, so a user's timeline and the generated meeting merge into one
ordered script that the server plays back.  Times are seconds from the start
of the stream (the moment it was added to the server).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from rtms_proto.enums import StopReason, TranscriptLanguage

__all__ = [
    "ActiveSpeaker",
    "Chat",
    "EndStream",
    "Join",
    "Leave",
    "PauseSession",
    "Person",
    "Quiet",
    "ResumeSession",
    "ServerEvent",
    "SharingStart",
    "SharingStop",
    "TimelineEntry",
    "Utterance",
    "VideoOff",
    "VideoOn",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Person:
    """A participant: Zoom ids are unsigned 32-bit numbers, 0 is reserved for mixed audio."""

    user_id: int
    user_name: str

    def __post_init__(self) -> None:
        if isinstance(self.user_id, bool) or not 0 < self.user_id < 2**32:
            raise ValueError(f"user_id must be in 1..2**32-1, not {self.user_id!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Join:
    """Participants join (PARTICIPANT_JOIN, event 3, with names)."""

    people: tuple[Person, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Leave:
    """Participants leave (PARTICIPANT_LEAVE, event 4, ids only as Zoom sends it)."""

    user_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveSpeaker:
    """``user_id`` starts talking and becomes the active speaker (event 2 when it changes).

    Talking decides the audio: the speaker's tone is what the mixed stream and
    that user's multi-stream packets carry until the next ``ActiveSpeaker`` or
    :class:`Quiet`.
    """

    user_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Quiet:
    """Nobody talks: mixed audio is silence and multi-stream audio has no packets."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SharingStart:
    """``user_id`` starts sharing the screen (event 5); deskshare frames flow."""

    user_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SharingStop:
    """Screen sharing stops (event 6)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoOn:
    """Cameras switch on (event 8); video frames exist only for users with video on."""

    user_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoOff:
    """Cameras switch off (event 9)."""

    user_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Utterance:
    """One transcript message (msg 17), sent at the entry's time.

    ``start``/``end`` are seconds from the stream start, sent as ms timestamps.
    """

    user_id: int
    text: str
    start: float
    end: float
    language: TranscriptLanguage | int = TranscriptLanguage.ENGLISH


@dataclass(frozen=True, slots=True, kw_only=True)
class Chat:
    """One chat message (msg 18): plain text, or the structured JSON-in-``data`` form."""

    user_id: int
    text: str
    structured: bool = False
    to_user: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseSession:
    """The session pauses: session state PAUSED, stream state PAUSED, no media."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeSession:
    """The session resumes after a pause."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndStream:
    """The stream ends: stream TERMINATED + session STOPPED, close frames, ``rtms_stopped``."""

    reason: StopReason | int = StopReason.MEETING_ENDED


ServerEvent: TypeAlias = (
    Join
    | Leave
    | ActiveSpeaker
    | Quiet
    | SharingStart
    | SharingStop
    | VideoOn
    | VideoOff
    | Utterance
    | Chat
    | PauseSession
    | ResumeSession
    | EndStream
)
"""Everything a timeline can make happen in a meeting."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """``event`` happens ``at`` seconds after the stream started."""

    at: float
    event: ServerEvent

    def __post_init__(self) -> None:
        if not self.at >= 0:
            raise ValueError(f"at must be a number of seconds >= 0, not {self.at!r}")
