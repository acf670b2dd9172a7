"""The fake server applying a stream's timeline: meeting events and timed faults.

Scripted joins, leaves, speakers, shares, utterances, chat and pauses (the
vocabulary of :mod:`rtms_conformance.timeline`) turn into events and media;
timed faults (:mod:`rtms_conformance.faults`) break sockets or move the stream
(failover) at the moment the scenario asks for.
"""

from __future__ import annotations

import json
import math

from rtms_conformance import faults as f
from rtms_conformance import timeline as tl
from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import EventType, MediaType, SessionState, StopReason, StreamState

from .endings import Endings
from .media import Media
from .output import Output
from .routes import signaling_url
from .state import Conn, ConnState, Stream
from .types import ServerConfig

__all__ = ["Timeline"]


class Timeline:
    """Meeting events and timed faults, written through ``output``; transcripts and chat
    go out through ``media``, and sockets are lost or streams ended through ``endings``."""

    def __init__(
        self, config: ServerConfig, output: Output, media: Media, endings: Endings
    ) -> None:
        self._config = config
        self._output = output
        self._media = media
        self._endings = endings

    def advance(self, s: Stream, at: float, ms: int) -> None:
        """Apply the script's events up to millisecond ``ms`` of the stream (due at ``at``)."""
        events = s.script.events_between(s.script_ms, ms)
        s.script_ms = ms
        for scripted in events:
            if s.ended:
                break
            self._apply(s, scripted.event, at)

    def next_fault(self, s: Stream, at: float) -> None:
        """Apply the stream's next timed fault (due at ``at``)."""
        fault = s.timed[s.timed_next]
        s.timed_next += 1
        self._apply_fault(s, fault, at)

    def _name(self, s: Stream, user: int) -> str | None:
        return s.roster.get(user) or s.script.name_of(user)

    def _user_event(self, s: Stream, at: float, event_type: EventType, user: int) -> None:
        """An event about one user, named as the roster or the script knows them."""
        self._output.event(s, at, event_type, user_id=user, user_name=self._name(s, user))

    def _apply(self, s: Stream, event: tl.ServerEvent, at: float) -> None:
        if isinstance(event, tl.Join):
            new = [p for p in event.people if p.user_id not in s.roster]
            for p in new:
                s.roster[p.user_id] = p.user_name
            if new:
                people = tuple(m.Participant(user_id=p.user_id, user_name=p.user_name) for p in new)
                self._output.event(s, at, EventType.PARTICIPANT_JOIN, participants=people)
        elif isinstance(event, tl.Leave):
            gone = [u for u in event.user_ids if u in s.roster]
            for u in gone:
                del s.roster[u]
                s.video_on.discard(u)
            if s.sharer is not None and s.sharer in gone:
                self._apply(s, tl.SharingStop(), at)
            if gone:
                people = tuple(m.Participant(user_id=u) for u in gone)
                self._output.event(s, at, EventType.PARTICIPANT_LEAVE, participants=people)
        elif isinstance(event, tl.ActiveSpeaker):
            if s.speaker != event.user_id:
                s.speaker = event.user_id
                self._user_event(s, at, EventType.ACTIVE_SPEAKER_CHANGE, event.user_id)
        elif isinstance(event, tl.SharingStart):
            if s.sharer != event.user_id:
                s.sharer = event.user_id
                for c in s.media.values():
                    c.share_since_idr = 0
                if s.spec.scopes & MediaType.DESKSHARE:
                    self._user_event(s, at, EventType.SHARING_START, event.user_id)
        elif isinstance(event, tl.SharingStop):
            if s.sharer is not None:
                s.sharer = None
                if s.spec.scopes & MediaType.DESKSHARE:
                    self._output.event(s, at, EventType.SHARING_STOP)
        elif isinstance(event, tl.VideoOn | tl.VideoOff):
            on = isinstance(event, tl.VideoOn)
            changed = [u for u in event.user_ids if (u in s.video_on) != on]
            for u in changed:
                if on:
                    s.video_on.add(u)
                else:
                    s.video_on.discard(u)
            if changed:
                kind = EventType.PARTICIPANT_VIDEO_ON if on else EventType.PARTICIPANT_VIDEO_OFF
                self._output.event(
                    s, at, kind, participants=tuple(m.Participant(user_id=u) for u in changed)
                )
        elif isinstance(event, tl.Utterance):
            epoch = s.info.media_epoch_ms
            start, end = epoch + round(event.start * 1000), epoch + round(event.end * 1000)
            msg = m.TranscriptData(
                text=event.text,
                user_id=event.user_id,
                user_name=self._name(s, event.user_id),
                timestamp=start,
                start_time=start,
                end_time=end,
                language=event.language,
            )
            self._media.deliver(s, MediaType.TRANSCRIPT, msg, at)
        elif isinstance(event, tl.Chat):
            self._media.deliver(s, MediaType.CHAT, self._chat(s, event, at), at)
        elif isinstance(event, tl.PauseSession | tl.ResumeSession):
            pause = isinstance(event, tl.PauseSession)
            if s.paused != pause and s.signaling is not None:
                s.paused = pause
                stamp = self._output.wall(at)
                self._output.send(
                    s.signaling,
                    m.StreamStateUpdate(
                        state=StreamState.PAUSED if pause else StreamState.RESUMED, timestamp=stamp
                    ),
                    at,
                )
                self._output.send(
                    s.signaling,
                    m.SessionStateUpdate(
                        state=SessionState.PAUSED if pause else SessionState.RESUMED,
                        timestamp=stamp,
                        rtms_session_id=s.info.rtms_session_id,
                    ),
                    at,
                )
            else:
                s.paused = pause
        elif isinstance(event, tl.EndStream):
            self._endings.end_stream(s, at, event.reason)
        # Quiet changes nothing but the audio, which follows the script directly.

    def _chat(self, s: Stream, event: tl.Chat, at: float) -> m.ChatData:
        s.chat_count += 1
        name = self._name(s, event.user_id)
        text = event.text
        if event.structured:
            obj: dict[str, object] = {
                "chat_session": {
                    "type": 2 if event.to_user is not None else 1,
                    "id": f"{s.info.rtms_stream_id}-chat",
                },
                "operation_type": 1,
                "message_id": f"{s.info.rtms_stream_id}-msg-{s.chat_count}",
                "sender": {"user_id": event.user_id, "user_name": name},
                "data": event.text,
            }
            if event.to_user is not None:
                obj["receiver"] = {
                    "user_id": event.to_user,
                    "user_name": self._name(s, event.to_user),
                }
            text = json.dumps(obj, separators=(",", ":"))
        return m.ChatData(
            text=text, user_id=event.user_id, user_name=name, timestamp=self._output.wall(at)
        )

    # --- faults -----------------------------------------------------------------------------

    def _targets(self, s: Stream, role: SocketRole | None) -> list[Conn]:
        return [
            c for c in s.conns() if c.state is ConnState.OPEN and (role is None or c.role is role)
        ]

    def _apply_fault(self, s: Stream, fault: f.TimedFault, at: float) -> None:
        self._output.note(None, at, f"fault: {fault!r}", s)
        if isinstance(fault, f.BinaryFrames):
            s.binary = True
            return
        if isinstance(fault, f.Failover):
            self._failover(s, at)
            return
        if isinstance(fault, f.InterruptMedia):
            c = s.media.get(fault.media_type) or next(
                (x for x in s.media.values() if x.carried & fault.media_type), None
            )
            if fault.drop and c is not None:
                self._output.abort(c, at, "media interruption fault")
                self._endings.gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
            else:
                self._output.event(
                    s,
                    at,
                    EventType.MEDIA_CONNECTION_INTERRUPTED,
                    extra={"media_type": int(fault.media_type)},
                )
            return
        targets = self._targets(s, fault.role)
        if not targets:
            self._output.note(None, at, "fault found no live socket", s)
        for c in targets:
            if isinstance(fault, f.DropSocket):
                self._output.abort(c, at, "drop fault")
                self._endings.gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
            elif isinstance(fault, f.SendClose):
                self._output.close(c, at, fault.code, fault.reason)
                self._endings.gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
            elif isinstance(fault, f.Silence):
                c.silent_until = math.inf if fault.duration is None else at + fault.duration
            elif isinstance(fault, f.SlowReads):
                self._output.pause_reading(c, fault.seconds)
            elif isinstance(fault, f.SendOversized):
                head = '{"msg_type":23,"padding":"'
                self._output.send_raw(c, head + "x" * (fault.size - len(head) - 2) + '"}', at)
            elif isinstance(fault, f.SendMalformed):
                self._output.send_raw(c, fault.data, at)
            elif isinstance(fault, f.SendUnknownType):
                body = {"msg_type": fault.msg_type, "note": "an unknown message type"}
                self._output.send_raw(c, json.dumps(body, separators=(",", ":")), at)
            else:
                assert isinstance(fault, f.SendRaw)
                self._output.send_raw(c, fault.data, at)

    def _failover(self, s: Stream, at: float) -> None:
        """The stream moves to a "new server": new URLs, a new ``rtms_started``."""
        for c in s.clients_in_order():
            if c.state in (ConnState.HANDSHAKING, ConnState.OPEN, ConnState.CLOSING):
                self._output.abort(c, at, "failover")
        s.signaling = None
        s.media.clear()
        s.media_lost.clear()
        s.generation += 1
        s.sig_lost = (at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
        self._output.emit_started(s, at)
        url = signaling_url(self._config.base_url, s.info.rtms_stream_id, s.generation)
        self._output.note(None, at, f"failover: now serving {url}", s)
