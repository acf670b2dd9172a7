"""A synthetic meeting: who is there, who talks when, what they say and share.

Pure and deterministic.  A :class:`MeetingSpec` describes a periodic meeting
(participants take turns talking; each turn ends with a short pause and yields
one transcript utterance; chat messages and screen sharing recur), optionally
ending after ``duration``.  :class:`MeetingScript` merges it with a user's
timeline and answers, for any instant, what happens (:meth:`events_between`)
and who talks (:meth:`talker_at`), lazily, so an endless meeting costs nothing.

Everything is computed in integer milliseconds from the stream start, so the
audio a server sends for a time range is a pure function of the script:
:func:`expected_audio` recomputes it for checking a recording byte for byte.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rtms_proto import AudioParams
from rtms_proto.enums import DataOption, StopReason, TranscriptLanguage

from .payloads import SLOT_MS, audio_payload, tone_hz
from .timeline import (
    ActiveSpeaker,
    Chat,
    EndStream,
    Join,
    Leave,
    Person,
    Quiet,
    ServerEvent,
    SharingStart,
    SharingStop,
    TimelineEntry,
    Utterance,
    VideoOn,
)

__all__ = [
    "DEFAULT_PEOPLE",
    "MeetingScript",
    "MeetingSpec",
    "ScriptedEvent",
    "audio_packets",
    "expected_audio",
]

DEFAULT_PEOPLE: tuple[Person, ...] = (
    Person(user_id=16778240, user_name="Alice Example"),
    Person(user_id=16779264, user_name="Bob Example"),
    Person(user_id=16780288, user_name="Carol Example"),
    Person(user_id=16781312, user_name="Dave Example"),
    Person(user_id=16782336, user_name="Erin Example"),
    Person(user_id=16783360, user_name="Frank Example"),
)
"""Participants of the default meeting; ids look like Zoom's (multiples of 1024)."""


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class MeetingSpec:
    """What the generated meeting looks like (all times in seconds from the stream start).

    ``participants`` is a count (taken from :data:`DEFAULT_PEOPLE`) or explicit
    people; 0 gives an empty meeting that only a timeline fills.  Speakers take
    turns of ``turn`` seconds, the last ``pause`` of each being silent; a turn
    produces one transcript utterance when ``transcripts``.  A chat message
    comes every ``chat_interval`` (None: no chat), structured when
    ``structured_chat``.  The second participant shares the screen from
    ``share_at`` for ``share_duration``, again every ``share_every`` if set.
    ``late_joiner_at`` adds a participant who joins then and leaves
    ``late_joiner_stays`` later.  With ``duration`` everybody leaves and the
    stream ends (``MEETING_ENDED``) at that time.
    """

    participants: int | tuple[Person, ...] = 3
    turn: float = 4.0
    pause: float = 0.5
    transcripts: bool = True
    language: TranscriptLanguage | int = TranscriptLanguage.ENGLISH
    chat_interval: float | None = 7.0
    structured_chat: bool = False
    share_at: float | None = 6.0
    share_duration: float = 6.0
    share_every: float | None = None
    video: bool = True
    late_joiner_at: float | None = None
    late_joiner_stays: float = 10.0
    duration: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.participants, int) and not (
            0 <= self.participants <= len(DEFAULT_PEOPLE) - 1
        ):
            raise ValueError(f"participants must be 0..{len(DEFAULT_PEOPLE) - 1} or people")
        if not self.turn >= 0.1 or not 0 <= self.pause < self.turn:
            raise ValueError("turn must be >= 0.1 s and 0 <= pause < turn")
        if self.chat_interval is not None and not self.chat_interval > 0:
            raise ValueError("chat_interval must be positive or None")
        if self.share_every is not None and not self.share_every > self.share_duration:
            raise ValueError("share_every must exceed share_duration")
        if self.duration is not None and not self.duration > 0:
            raise ValueError("duration must be positive or None")

    @property
    def people(self) -> tuple[Person, ...]:
        """The participants present from the start."""
        if isinstance(self.participants, int):
            return DEFAULT_PEOPLE[: self.participants]
        return self.participants

    @property
    def late_joiner(self) -> Person | None:
        """The participant who joins late, when ``late_joiner_at`` is set."""
        if self.late_joiner_at is None:
            return None
        taken = {p.user_id for p in self.people}
        return next(p for p in DEFAULT_PEOPLE if p.user_id not in taken)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptedEvent:
    """An event at ``at_ms`` milliseconds after the stream start, in script order."""

    at_ms: int
    event: ServerEvent


@dataclass(frozen=True, slots=True)
class _Family:
    """Events at ``offset + k * period`` (one-shot when ``period`` is None), before ``until``."""

    offset: int
    period: int | None
    order: int
    make: Callable[[int], ServerEvent]
    until: int | None = None

    def first_index_after(self, after: int) -> int | None:
        """The smallest k whose time is > ``after`` (and before ``until``), or None."""
        if self.period is None:
            k = 0 if self.offset > after else None
        else:
            k = max(0, (after - self.offset) // self.period + 1)
        if k is None or (self.until is not None and self.time(k) >= self.until):
            return None
        return k

    def time(self, k: int) -> int:
        return self.offset + k * (self.period or 0)


class MeetingScript:
    """The merged, lazily evaluated script of one stream's meeting.

    ``events_between(a, b)`` lists the events with ``a < at_ms <= b`` in a
    fixed order (generated events before timeline ones at the same
    millisecond); ``next_event_ms(a)`` is the time of the first event after
    ``a``.  Both are cheap for any ``a``: periodic events are computed, not
    stored.
    """

    def __init__(self, spec: MeetingSpec, timeline: Sequence[TimelineEntry] = ()) -> None:
        self.spec = spec
        people = list(spec.people)
        if (late := spec.late_joiner) is not None:
            people.append(late)
        for entry in timeline:
            if isinstance(entry.event, Join):
                people.extend(entry.event.people)
        self._names: dict[int, str] = {}
        self._tones: dict[int, int] = {}
        for person in people:
            self._names.setdefault(person.user_id, person.user_name)
            self._tones.setdefault(person.user_id, tone_hz(len(self._tones)))
        self._end = None if spec.duration is None else _ms(spec.duration)
        self._families = self._build_families()
        ordered = sorted(enumerate(timeline), key=lambda pair: (_ms(pair[1].at), pair[0]))
        self._user = [ScriptedEvent(at_ms=_ms(e.at), event=e.event) for _, e in ordered]
        self._user_times = [e.at_ms for e in self._user]
        talk = [
            (e.at_ms, e.event.user_id if isinstance(e.event, ActiveSpeaker) else None)
            for e in self._user
            if isinstance(e.event, ActiveSpeaker | Quiet)
        ]
        self._talk_times = [t for t, _ in talk]
        self._talk_users = [u for _, u in talk]

    # --- who is who ---------------------------------------------------------------------

    def name_of(self, user_id: int) -> str | None:
        """The name a participant joined with."""
        return self._names.get(user_id)

    def tone_of(self, user_id: int) -> int:
        """The tone (Hz) of a participant's voice; unknown users get one after the known."""
        tone = self._tones.get(user_id)
        if tone is None:
            tone = self._tones[user_id] = tone_hz(len(self._tones))
        return tone

    @property
    def end_ms(self) -> int | None:
        """When the generated meeting ends (None: never)."""
        return self._end

    # --- the generated meeting ------------------------------------------------------------

    def _build_families(self) -> list[_Family]:
        spec = self.spec
        people = spec.people
        end = self._end
        fams: list[_Family] = []

        def add(
            offset: int,
            period: int | None,
            build: Callable[[int], ServerEvent],
            until: int | None = end,
        ) -> None:
            if until is not None and offset >= until:
                return
            fams.append(_Family(offset, period, len(fams), build, until))

        if people:
            add(0, None, lambda k: Join(people=people))
            if spec.video:
                add(0, None, lambda k: VideoOn(user_ids=tuple(p.user_id for p in people)))
            turn = _ms(spec.turn)
            speech = turn - _ms(spec.pause)
            add(0, turn, lambda k: ActiveSpeaker(user_id=people[k % len(people)].user_id))
            if speech < turn:
                add(speech, turn, lambda k: Quiet())
            if spec.transcripts:
                add(speech, turn, self._utterance)
            if spec.chat_interval is not None:
                interval = _ms(spec.chat_interval)
                add(interval // 2, interval, self._chat)
            if spec.share_at is not None:
                sharer = people[1 % len(people)].user_id
                every = None if spec.share_every is None else _ms(spec.share_every)
                start = _ms(spec.share_at)
                add(start, every, lambda k: SharingStart(user_id=sharer))
                add(start + _ms(spec.share_duration), every, lambda k: SharingStop())
        late = spec.late_joiner
        if late is not None and spec.late_joiner_at is not None:
            joined = _ms(spec.late_joiner_at)
            add(joined, None, lambda k: Join(people=(late,)))
            if spec.video:
                add(joined, None, lambda k: VideoOn(user_ids=(late.user_id,)))
            add(
                joined + _ms(spec.late_joiner_stays),
                None,
                lambda k: Leave(user_ids=(late.user_id,)),
            )
        if end is not None:
            present = tuple(p.user_id for p in people)
            if spec.share_at is not None and people:
                add(end, None, lambda k: SharingStop(), until=None)
            if present:
                add(end, None, lambda k: Quiet(), until=None)
                add(end, None, lambda k: Leave(user_ids=present), until=None)
            add(end, None, lambda k: EndStream(reason=StopReason.MEETING_ENDED), until=None)
        return fams

    def _utterance(self, k: int) -> Utterance:
        people = self.spec.people
        person = people[k % len(people)]
        turn = _ms(self.spec.turn)
        start = k * turn
        end = start + turn - _ms(self.spec.pause)
        return Utterance(
            user_id=person.user_id,
            text=f"{person.user_name} says sentence number {k + 1}.",
            start=start / 1000,
            end=end / 1000,
            language=self.spec.language,
        )

    def _chat(self, k: int) -> Chat:
        people = self.spec.people
        person = people[(k + 1) % len(people)]
        return Chat(
            user_id=person.user_id,
            text=f"Chat message {k + 1} from {person.user_name}",
            structured=self.spec.structured_chat,
        )

    # --- queries --------------------------------------------------------------------------

    def next_event_ms(self, after: int) -> int | None:
        """The time of the first event strictly after ``after`` ms, or None."""
        best: int | None = None
        for fam in self._families:
            k = fam.first_index_after(after)
            if k is not None:
                t = fam.time(k)
                best = t if best is None else min(best, t)
        i = bisect.bisect_right(self._user_times, after)
        if i < len(self._user_times):
            t = self._user_times[i]
            best = t if best is None else min(best, t)
        return best

    def events_between(self, after: int, until: int) -> list[ScriptedEvent]:
        """Events with ``after < at_ms <= until``, ordered by time then script order."""
        found: list[tuple[int, int, int, ScriptedEvent]] = []
        for fam in self._families:
            k = fam.first_index_after(after)
            while k is not None:
                t = fam.time(k)
                if t > until or (fam.until is not None and t >= fam.until):
                    break
                found.append((t, 0, fam.order, ScriptedEvent(at_ms=t, event=fam.make(k))))
                if fam.period is None:
                    break
                k += 1
        lo = bisect.bisect_right(self._user_times, after)
        hi = bisect.bisect_right(self._user_times, until)
        for i in range(lo, hi):
            found.append((self._user[i].at_ms, 1, i, self._user[i]))
        found.sort(key=lambda item: item[:3])
        return [item[3] for item in found]

    def talker_at(self, ms: int) -> int | None:
        """Who talks at ``ms`` after the stream start (the latest speaker or quiet wins)."""
        generated: tuple[int, int | None] | None = None
        people = self.spec.people
        if people and ms >= 0 and (self._end is None or ms < self._end):
            turn = _ms(self.spec.turn)
            k, into = divmod(ms, turn)
            speech = turn - _ms(self.spec.pause)
            if into < speech:
                generated = (k * turn, people[k % len(people)].user_id)
            else:
                generated = (k * turn + speech, None)
        elif people and self._end is not None and ms >= self._end:
            generated = (self._end, None)
        i = bisect.bisect_right(self._talk_times, ms) - 1
        if i >= 0 and (generated is None or self._talk_times[i] >= generated[0]):
            return self._talk_users[i]
        return None if generated is None else generated[1]

    def talkers(self, start_ms: int, slots: int) -> list[int | None]:
        """The talker of each 20 ms slot from ``start_ms``."""
        return [self.talker_at(start_ms + i * SLOT_MS) for i in range(slots)]


def audio_packets(
    script: MeetingScript,
    params: AudioParams,
    start_ms: int,
    *,
    packet_index: int,
) -> Iterator[tuple[int, bytes]]:
    """The audio packets covering ``send_rate`` ms from ``start_ms``: ``(user_id, data)``.

    Mixed audio (``data_opt`` 1) is one packet for user 0, silence when nobody
    talks; multi-stream audio (``data_opt`` 2) is one packet per user who talks
    in the interval, with silence in that user's quiet slots.
    """
    slots = max(1, int(params.send_rate) // SLOT_MS)
    talkers = script.talkers(start_ms, slots)
    if params.data_opt != DataOption.AUDIO_MULTI_STREAMS:
        tones = [None if u is None else script.tone_of(u) for u in talkers]
        yield 0, audio_payload(params, tones, packet_index=packet_index, ssrc=0x52544D53)
        return
    for user in dict.fromkeys(u for u in talkers if u is not None):
        tone = script.tone_of(user)
        tones = [tone if u == user else None for u in talkers]
        yield user, audio_payload(params, tones, packet_index=packet_index, ssrc=user)


def expected_audio(
    script: MeetingScript,
    params: AudioParams,
    start_ms: int,
    end_ms: int,
    *,
    user_id: int | None = None,
) -> bytes:
    """The audio bytes the server sends for ``[start_ms, end_ms)``, concatenated.

    Times are ms after the stream start (a packet's ``timestamp`` minus the
    stream's media epoch) and must be on packet boundaries (multiples of
    ``send_rate``).  ``user_id`` None gives the mixed stream; a user id gives
    that user's multi-stream packets (intervals where the user is silent
    produce no packet and so contribute nothing).
    """
    step = int(params.send_rate)
    if start_ms % step or end_ms % step:
        raise ValueError(f"start_ms and end_ms must be multiples of send_rate ({step} ms)")
    out: list[bytes] = []
    for start in range(start_ms, end_ms, step):
        for user, data in audio_packets(script, params, start, packet_index=start // step):
            if user_id is None or user == user_id:
                out.append(data)
    return b"".join(out)
