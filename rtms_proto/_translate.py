"""Wire messages to application events: one function shared by both machines."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from . import events as ev
from . import messages as m
from .actions import SocketId
from .enums import EventType, Product, StatusCode, ZccEventType, to_enum

__all__ = ["translate"]

_Translator = Callable[[m.Message, SocketId, Product], ev.Event]


_new = object.__new__


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[object, object], None], ...]:
    """Slot setters in ``names`` order: building the frozen media events this
    way skips ``__init__``'s per-field ``object.__setattr__`` (the hot path)."""
    assert tuple(f.name for f in dataclasses.fields(cls)) == names
    return tuple(cls.__dict__[name].__set__ for name in names)


_AUDIO = _setters(ev.AudioReceived, ("data", "user_id", "user_name", "timestamp", "channel_id"))
_VIDEO = _setters(ev.VideoReceived, ("data", "user_id", "user_name", "timestamp"))
_SHARE = _setters(ev.DeskshareReceived, ("data", "user_id", "user_name", "timestamp"))


def _audio(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert type(msg) is m.AudioData
    event = _new(ev.AudioReceived)
    set_data, set_user_id, set_user_name, set_timestamp, set_channel_id = _AUDIO
    set_data(event, msg.data)
    set_user_id(event, msg.user_id)
    set_user_name(event, msg.user_name)
    set_timestamp(event, msg.timestamp)
    set_channel_id(event, msg.channel_id)
    return event


def _picture(
    cls: type[ev.VideoReceived | ev.DeskshareReceived],
    setters: tuple[Callable[[object, object], None], ...],
    msg: m.VideoData | m.DeskshareData,
) -> ev.Event:
    event = _new(cls)
    set_data, set_user_id, set_user_name, set_timestamp = setters
    set_data(event, msg.data)
    set_user_id(event, msg.user_id)
    set_user_name(event, msg.user_name)
    set_timestamp(event, msg.timestamp)
    return event


def _video(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert type(msg) is m.VideoData
    return _picture(ev.VideoReceived, _VIDEO, msg)


def _deskshare(msg: m.Message, sock: SocketId, product: Product) -> ev.Event:
    assert type(msg) is m.DeskshareData
    return _picture(ev.DeskshareReceived, _SHARE, msg)


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
        return ev.MediaInterrupted(timestamp=ts, raw=msg.raw)
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
    m.AudioData: _audio,
    m.VideoData: _video,
    m.DeskshareData: _deskshare,
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
