"""What the scenario modules build their streams from: the standard meeting, a stream
with faults, and the every-media client settings, so that a scenario states only how it
differs from the standard run."""

from __future__ import annotations

from typing import Any

from rtms_conformance.faults import Fault
from rtms_conformance.meeting import DEFAULT_PEOPLE, MeetingSpec
from rtms_conformance.server import StreamSpec
from rtms_conformance.timeline import (
    ActiveSpeaker,
    Chat,
    EndStream,
    ServerEvent,
    SharingStart,
    SharingStop,
    TimelineEntry,
    Utterance,
    VideoOn,
)
from rtms_proto import DeskshareParams, MediaParams, VideoParams
from rtms_proto.enums import Codec, MediaType, StopReason

from .model import DEFAULT_AUDIO

__all__ = [
    "ALICE",
    "ALL_MEDIA",
    "ALL_PARAMS",
    "BOB",
    "CAROL",
    "STANDARD",
    "meeting_events",
    "meeting_fields",
    "stream",
]

ALICE, BOB, CAROL = DEFAULT_PEOPLE[:3]


def meeting_fields(
    *entries: tuple[float, ServerEvent],
    end: float | None = 1.3,
    reason: StopReason | None = None,
    offset: float = 0.0,
) -> dict[str, Any]:
    """A three-person meeting (Alice talks first, everyone present from the start) with
    ``entries`` as its timeline, shifted by ``offset``.  At ``end`` everybody leaves and
    the stream ends with MEETING_ENDED, or, with ``reason``, the stream just ends with it.
    """
    timeline = [TimelineEntry(at=offset + at, event=event) for at, event in entries]
    duration = None
    if end is not None and reason is None:
        duration = offset + end
    elif end is not None and reason is not None:
        timeline.append(TimelineEntry(at=offset + end, event=EndStream(reason=reason)))
    spec = MeetingSpec(
        participants=3,
        turn=600.0,
        pause=0.0,
        transcripts=False,
        chat_interval=None,
        share_at=None,
        video=False,
        duration=duration,
    )
    return {"meeting": spec, "timeline": tuple(timeline)}


STANDARD: tuple[tuple[float, ServerEvent], ...] = (
    (0.6, VideoOn(user_ids=(ALICE.user_id, BOB.user_id))),
    (0.6, SharingStart(user_id=BOB.user_id)),
    (0.6, ActiveSpeaker(user_id=BOB.user_id)),
    (0.6, Utterance(user_id=ALICE.user_id, text="Hello everyone.", start=0.0, end=0.6)),
    (0.6, Chat(user_id=CAROL.user_id, text="Hi all")),
    (1.0, ActiveSpeaker(user_id=CAROL.user_id)),
    (1.0, SharingStop()),
    (1.0, Utterance(user_id=BOB.user_id, text="Thanks for joining.", start=0.6, end=1.0)),
    (1.0, Chat(user_id=ALICE.user_id, text="Bye", structured=True)),
)
"""The standard meeting: at 0.6 s cameras go on, Bob shares his screen and speaks,
Alice's utterance and Carol's chat message arrive; at 1.0 s Carol speaks, the share
stops, Bob's utterance and Alice's chat message arrive; it ends at 1.3 s."""


def stream(sid: str, *faults: Fault, **meeting: Any) -> StreamSpec:
    """Stream ``sid``: the :data:`STANDARD` meeting (or ``entries=``, keywords as for
    :func:`meeting_fields`) with ``faults`` injected."""
    entries = meeting.pop("entries", STANDARD)
    return StreamSpec(
        meeting_uuid=f"{sid}-meeting==",
        rtms_stream_id=sid,
        faults=faults,
        **meeting_fields(*entries, **meeting),
    )


ALL_MEDIA = (
    MediaType.AUDIO | MediaType.VIDEO | MediaType.DESKSHARE | MediaType.TRANSCRIPT | MediaType.CHAT
)
ALL_PARAMS = MediaParams(
    audio=DEFAULT_AUDIO,
    video=VideoParams(codec=Codec.JPG, fps=5),
    deskshare=DeskshareParams(codec=Codec.H264, fps=5),
)


def meeting_events(*entries: tuple[float, ServerEvent]) -> tuple[tuple[float, ServerEvent], ...]:
    """A meeting timeline other than :data:`STANDARD` (typed for the checker)."""
    return entries
