"""The fake server applying a stream's timeline: meeting events and timed faults.

Scripted joins, leaves, speakers, shares, utterances, chat and pauses turn
into events and media; timed faults break sockets or move the stream
(failover) at the moment the scenario asks for.
"""

from __future__ import annotations

import json
import math

from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.enums import EventType, MediaType, SessionState, StopReason, StreamState

from . import faults as f
from . import timeline as tl
from .server_media import MediaMixin
from .server_routes import signaling_url
from .server_state import Conn, ConnState, Stream
from .server_types import EmitWebhook, PauseReading

__all__ = ["TimelineMixin"]


class TimelineMixin(MediaMixin):
    """Meeting events and timed faults (transcripts and chat go out as media)."""

    def _name(self, s: Stream, user: int) -> str | None:
        return s.roster.get(user) or s.script.name_of(user)

    def _user_event(self, s: Stream, at: float, event_type: EventType, user: int) -> None:
        """An event about one user, named as the roster or the script knows them."""
        self._event(s, at, event_type, user_id=user, user_name=self._name(s, user))

    def _apply(self, s: Stream, event: tl.ServerEvent, at: float) -> None:
        if isinstance(event, tl.Join):
            new = [p for p in event.people if p.user_id not in s.roster]
            for p in new:
                s.roster[p.user_id] = p.user_name
            if new:
                people = tuple(m.Participant(user_id=p.user_id, user_name=p.user_name) for p in new)
                self._event(s, at, EventType.PARTICIPANT_JOIN, participants=people)
        elif isinstance(event, tl.Leave):
            gone = [u for u in event.user_ids if u in s.roster]
            for u in gone:
                del s.roster[u]
                s.video_on.discard(u)
            if s.sharer is not None and s.sharer in gone:
                self._apply(s, tl.SharingStop(), at)
            if gone:
                people = tuple(m.Participant(user_id=u) for u in gone)
                self._event(s, at, EventType.PARTICIPANT_LEAVE, participants=people)
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
                    self._event(s, at, EventType.SHARING_STOP)
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
                self._event(
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
            self._deliver(s, MediaType.TRANSCRIPT, msg, at)
        elif isinstance(event, tl.Chat):
            self._deliver(s, MediaType.CHAT, self._chat(s, event, at), at)
        elif isinstance(event, tl.PauseSession | tl.ResumeSession):
            pause = isinstance(event, tl.PauseSession)
            if s.paused != pause and s.signaling is not None:
                s.paused = pause
                stamp = self._wall(at)
                self._send(
                    s.signaling,
                    m.StreamStateUpdate(
                        state=StreamState.PAUSED if pause else StreamState.RESUMED, timestamp=stamp
                    ),
                    at,
                )
                self._send(
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
            self._end_stream(s, at, event.reason)
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
            text=text, user_id=event.user_id, user_name=name, timestamp=self._wall(at)
        )

    # --- faults -----------------------------------------------------------------------------

    def _targets(self, s: Stream, role: SocketRole | None) -> list[Conn]:
        return [
            c for c in s.conns() if c.state is ConnState.OPEN and (role is None or c.role is role)
        ]

    def _apply_fault(self, s: Stream, fault: f.TimedFault, at: float) -> None:
        self._note(None, at, f"fault: {fault!r}", s)
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
                self._abort(c, at, "media interruption fault")
                self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
            else:
                self._event(
                    s,
                    at,
                    EventType.MEDIA_CONNECTION_INTERRUPTED,
                    extra={"media_type": int(fault.media_type)},
                )
            return
        targets = self._targets(s, fault.role)
        if not targets:
            self._note(None, at, "fault found no live socket", s)
        for c in targets:
            if isinstance(fault, f.DropSocket):
                self._abort(c, at, "drop fault")
                self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
            elif isinstance(fault, f.SendClose):
                self._close(c, at, fault.code, fault.reason)
                self._gone(c, at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
            elif isinstance(fault, f.Silence):
                c.silent_until = math.inf if fault.duration is None else at + fault.duration
            elif isinstance(fault, f.SlowReads):
                self._out.append(PauseReading(conn=c.id, seconds=fault.seconds))
            elif isinstance(fault, f.SendOversized):
                head = '{"msg_type":23,"padding":"'
                self._send_raw(c, head + "x" * (fault.size - len(head) - 2) + '"}', at)
            elif isinstance(fault, f.SendMalformed):
                self._send_raw(c, fault.data, at)
            elif isinstance(fault, f.SendUnknownType):
                body = {"msg_type": fault.msg_type, "note": "an unknown message type"}
                self._send_raw(c, json.dumps(body, separators=(",", ":")), at)
            else:
                assert isinstance(fault, f.SendRaw)
                self._send_raw(c, fault.data, at)

    def _failover(self, s: Stream, at: float) -> None:
        """The stream moves to a "new server": new URLs, a new ``rtms_started``."""
        for c in s.clients_in_order():
            if c.state in (ConnState.HANDSHAKING, ConnState.OPEN, ConnState.CLOSING):
                self._abort(c, at, "failover")
        s.signaling = None
        s.media.clear()
        s.media_lost.clear()
        s.generation += 1
        s.sig_lost = (at, StopReason.AWAIT_RECONNECTION_TIMEOUT)
        s.started_body = self._started_body(s, at)
        event = json.loads(s.started_body)["event"]
        self._out.append(
            EmitWebhook(rtms_stream_id=s.info.rtms_stream_id, event=event, body=s.started_body)
        )
        url = signaling_url(self.config.base_url, s.info.rtms_stream_id, s.generation)
        self._note(None, at, f"failover: now serving {url}", s)
