"""Wire messages to application events: one function shared by both machines."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from . import events as ev
from . import messages as m
from ._json import JsonValue
from .actions import SocketId
from .enums import EventType, MediaType, Product, StatusCode, ZccEventType, to_enum

__all__ = ["translate"]

_Translator = Callable[[m.Message, SocketId, Product], ev.Event]


def _transcript(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.TranscriptData)
    return ev.TranscriptReceived(
        text=msg.text,
        user_id=msg.user_id,
        user_name=msg.user_name,
        timestamp=msg.timestamp,
        start_time=msg.start_time,
        end_time=msg.end_time,
        language=msg.language,
        attribute=msg.attribute,
        channel_id=msg.channel_id,
    )


def _chat(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.ChatData)
    return ev.ChatReceived(
        text=msg.text,
        user_id=msg.user_id,
        user_name=msg.user_name,
        timestamp=msg.timestamp,
        chat=msg.chat,
    )


def _event_update(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.EventUpdate)
    ts = msg.timestamp
    et = msg.event_type
    if product is Product.CONTACT_CENTER or msg.zcc_participant is not None:
        return ev.ContactCenterEvent(
            event_type=to_enum(ZccEventType, et),
            timestamp=ts,
            participant=msg.zcc_participant,
            raw=msg.raw,
        )
    if et == EventType.FIRST_PACKET_TIMESTAMP:
        return ev.FirstPacketReceived(timestamp=ts)
    if et == EventType.ACTIVE_SPEAKER_CHANGE:
        return ev.ActiveSpeakerChanged(user_id=msg.user_id, user_name=msg.user_name, timestamp=ts)
    if et == EventType.PARTICIPANT_JOIN:
        return ev.ParticipantsJoined(participants=msg.participants, timestamp=ts)
    if et == EventType.PARTICIPANT_LEAVE:
        return ev.ParticipantsLeft(participants=msg.participants, timestamp=ts)
    if et == EventType.SHARING_START:
        return ev.SharingStarted(user_id=msg.user_id, user_name=msg.user_name, timestamp=ts)
    if et == EventType.SHARING_STOP:
        return ev.SharingStopped(timestamp=ts)
    if et == EventType.MEDIA_CONNECTION_INTERRUPTED:
        return ev.MediaInterrupted(timestamp=ts, raw=msg.raw, media_type=_media_type(msg.raw))
    if et in (EventType.PARTICIPANT_VIDEO_ON, EventType.PARTICIPANT_VIDEO_OFF):
        ids = tuple(p.user_id for p in msg.participants)
        if not ids and msg.user_id is not None:
            ids = (msg.user_id,)
        return ev.ParticipantVideoChanged(
            user_ids=ids, on=et == EventType.PARTICIPANT_VIDEO_ON, timestamp=ts
        )
    if EventType.CHAT_GROUP_CREATE <= et <= EventType.CHAT_GROUP_MEMBER_STATUS_UPDATE:
        return ev.ChatGroupChanged(event_type=EventType(et), timestamp=ts, raw=msg.raw)
    return ev.UnknownEventReceived(event_type=et, timestamp=ts, raw=msg.raw)


def _media_type(event: Mapping[str, JsonValue]) -> MediaType | int | None:
    """The event's ``media_type`` key as a media type; a number only (§3.6)."""
    value = event.get("media_type")
    if type(value) is not int:
        return None
    return MediaType(value) if value >= 0 else value


def _stream_state(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.StreamStateUpdate)
    return ev.StreamStateChanged(state=msg.state, reason=msg.reason, timestamp=msg.timestamp)


def _session_state(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.SessionStateUpdate)
    return ev.SessionStateChanged(
        session_id=msg.rtms_session_id,
        state=msg.state,
        stop_reason=msg.stop_reason,
        timestamp=msg.timestamp,
    )


def _session_resp(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.SessionStateResponse)
    return ev.SessionStateReported(
        session_id=msg.rtms_session_id, state=msg.state, timestamp=msg.timestamp
    )


def _stream_resp(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.StreamStateResponse)
    return ev.StreamStateReported(state=msg.state, timestamp=msg.timestamp)


def _close_resp(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.StreamCloseResponse)
    status = None if msg.status_code is None else to_enum(StatusCode, msg.status_code)
    return ev.StreamCloseAcknowledged(status=status, reason=msg.reason, timestamp=msg.timestamp)


def _video_sub(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.VideoSubscriptionResponse)
    status = None if msg.status_code is None else to_enum(StatusCode, msg.status_code)
    return ev.VideoSubscriptionResult(
        user_id=msg.user_id,
        status=status,
        reason=msg.reason,
        subscribed=True if msg.subscribe is None else msg.subscribe,
    )


def _unknown(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.UnknownMessage)
    return ev.UnknownMessageReceived(sock=sock, msg_type=msg.msg_type, raw=msg.raw)


def _metadata(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert isinstance(msg, m.MetadataMessage)
    return ev.MetadataReceived(sock=sock, msg_type=msg.msg_type, raw=msg.raw)


_TABLE: dict[type, _Translator] = {
    m.TranscriptData: _transcript,
    m.ChatData: _chat,
    m.EventUpdate: _event_update,
    m.StreamStateUpdate: _stream_state,
    m.SessionStateUpdate: _session_state,
    m.SessionStateResponse: _session_resp,
    m.StreamStateResponse: _stream_resp,
    m.StreamCloseResponse: _close_resp,
    m.VideoSubscriptionResponse: _video_sub,
    m.UnknownMessage: _unknown,
    m.MetadataMessage: _metadata,
}


def translate(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    """The application event for a server message that is not a handshake or keep-alive.

    Audio, video and screen-share packets never come here: they are decoded as
    their events already, and the connection passes them on as they are.

    A message only a client sends (a request) coming from the server is
    reported as malformed rather than dropped.
    """
    fn = _TABLE.get(type(msg))
    if fn is None:
        return ev.MalformedMessage(
            sock=sock,
            error=m.DecodeError(
                msg_type=msg.msg_type,
                field=None,
                detail="a client-to-server message arrived from the server",
            ),
        )
    return fn(msg, sock, product)
