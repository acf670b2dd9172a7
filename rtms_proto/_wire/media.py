"""Media data (msg 14-18): audio, video and screen-share packets, transcripts, chat.

An audio, video or screen-share packet is decoded straight into the event the
application receives (:class:`AudioReceived`, :class:`VideoReceived`,
:class:`DeskshareReceived`; ``messages.AudioData`` and friends are the same
classes), so there is one object per packet.  Audio arrives ~50 times a second
per socket: :meth:`MediaPacket._from_wire` is the hot path, and anything
unusual in a packet falls back to the checked reader beside it, which names the
faulty field.  A property test holds the two to the same result.
"""

from __future__ import annotations

import binascii
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Self

from rtms_proto._fields import (
    WireFieldError,
    obj_items,
    opt_int,
    opt_list,
    opt_obj,
    opt_str,
    opt_user_id,
    put,
    req_obj,
    req_str,
    wire_value,
    wrong,
)
from rtms_proto._json import parse_network
from rtms_proto.enums import (
    ChatOperation,
    ChatSessionType,
    MessageType,
    TranscriptLanguage,
    to_enum,
)

__all__ = [
    "AudioReceived",
    "ChatData",
    "ChatFile",
    "ChatUser",
    "DeskshareReceived",
    "MediaPacket",
    "StructuredChat",
    "TranscriptData",
    "VideoReceived",
]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MediaPacket:
    """The fields audio, video and screen-share packets share (§6.2-§6.4).

    ``data`` is the base64-decoded payload.  ``length`` is the byte count the
    server wrote beside it, kept so that a packet re-encodes as it came; it is
    left out of comparisons, as it only restates ``len(data)``.
    """

    msg_type: ClassVar[MessageType]
    data: bytes
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    channel_id: str | None = None
    length: int | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> Self:
        """Decode a packet: :meth:`_from_wire_fast`, else the checked reader."""
        packet = cls._from_wire_fast(o)
        return cls._from_wire_checked(o) if packet is None else packet

    @classmethod
    def _from_wire_fast(cls, o: dict[str, Any]) -> Self | None:
        """Decode a well-formed packet without the constructor; None for anything unusual.

        Every ``int`` a parser gives is within 64 bits (``_json._parse_int``),
        so the type test alone matches the checked reader's range rule.

        A frozen dataclass's ``__init__`` pays an ``object.__setattr__`` per
        field, about as much as the base64 decoding; filling the slots
        directly builds the same value (there is no ``__post_init__``) ~3x faster.
        """
        content = o.get("content")
        if type(content) is dict:
            get = content.get
            text = get("data")
            user_id = get("user_id")
            user_name = get("user_name")
            timestamp = get("timestamp")
            channel_id = get("channel_id")
            length = get("length")
            if (
                type(text) is str
                and (user_id is None or type(user_id) is int)
                and (user_name is None or type(user_name) is str)
                and (timestamp is None or type(timestamp) is int)
                and (channel_id is None or type(channel_id) is str)
                and (length is None or type(length) is int)
            ):
                if len(text) & 3:
                    text += "=" * (4 - (len(text) & 3))  # tolerate stripped padding
                try:
                    data = _a2b(text, strict_mode=True)
                except ValueError:
                    pass  # the checked reader says what is wrong
                else:
                    packet = _new(cls)
                    _set_data(packet, data)
                    _set_user_id(packet, user_id)
                    _set_user_name(packet, user_name)
                    _set_timestamp(packet, timestamp)
                    _set_channel_id(packet, channel_id)
                    _set_length(packet, length)
                    return packet
        return None

    @classmethod
    def _from_wire_checked(cls, o: dict[str, Any]) -> Self:
        """Every field read with the shared readers, in a fixed order: the first fault is named."""
        content = req_obj(o, "content", "")
        text = content.get("data")
        if type(text) is not str:
            raise wrong(content, "data", "content.", "a base64 string")
        if len(text) & 3:
            text += "=" * (4 - (len(text) & 3))
        try:
            data = _a2b(text, strict_mode=True)
        except ValueError:
            raise WireFieldError("content.data", "invalid base64") from None
        return cls(
            data=data,
            user_id=opt_user_id(content, "user_id", "content."),
            user_name=opt_str(content, "user_name", "content."),
            timestamp=opt_int(content, "timestamp", "content."),
            length=opt_int(content, "length", "content."),
            channel_id=opt_str(content, "channel_id", "content."),
        )

    def _to_wire(self) -> dict[str, object]:
        content: dict[str, object] = {}
        put(content, "user_id", self.user_id)
        put(content, "user_name", self.user_name)
        content["data"] = binascii.b2a_base64(self.data, newline=False).decode("ascii")
        put(content, "length", self.length)
        put(content, "timestamp", self.timestamp)
        put(content, "channel_id", self.channel_id)
        return {"msg_type": int(self.msg_type), "content": content}


_a2b = binascii.a2b_base64
_new = object.__new__
_SLOTS = ("data", "user_id", "user_name", "timestamp", "channel_id", "length")
assert tuple(f.name for f in dataclasses.fields(MediaPacket)) == _SLOTS
_setters: tuple[Callable[[MediaPacket, object], None], ...] = tuple(
    MediaPacket.__dict__[name].__set__ for name in _SLOTS
)
_set_data, _set_user_id, _set_user_name, _set_timestamp, _set_channel_id, _set_length = _setters


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AudioReceived(MediaPacket):
    """One audio packet; ``user_id`` 0 is the mixed stream.

    MEDIA_DATA_AUDIO (14), as decoded from the wire (§6.2); also ``messages.AudioData``.
    """

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_AUDIO


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VideoReceived(MediaPacket):
    """One video frame (JPG/PNG image or H.264 Annex-B access unit).

    MEDIA_DATA_VIDEO (15), as decoded from the wire (§6.3); also ``messages.VideoData``.
    """

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_VIDEO


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeskshareReceived(MediaPacket):
    """One screen-share frame; the user is the sharer.

    MEDIA_DATA_SHARE (16), as decoded from the wire (§6.4); also ``messages.DeskshareData``.
    """

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_SHARE


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptData:
    """MEDIA_DATA_TRANSCRIPT (17): one utterance; ``text`` is the wire ``data`` (§6.5)."""

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_TRANSCRIPT
    text: str
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    language: TranscriptLanguage | int | None = None
    attribute: int | str | None = None
    channel_id: str | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> TranscriptData:
        c = req_obj(o, "content", "")
        language = opt_int(c, "language", "content.")
        attribute = c.get("attribute")
        if attribute is not None and type(attribute) is not int and type(attribute) is not str:
            raise wrong(c, "attribute", "content.", "an integer or a string")
        return cls(
            text=req_str(c, "data", "content."),
            user_id=opt_user_id(c, "user_id", "content."),
            user_name=opt_str(c, "user_name", "content."),
            timestamp=opt_int(c, "timestamp", "content."),
            start_time=opt_int(c, "start_time", "content."),
            end_time=opt_int(c, "end_time", "content."),
            language=None if language is None else to_enum(TranscriptLanguage, language),
            attribute=attribute,
            channel_id=opt_str(c, "channel_id", "content."),
        )

    def _to_wire(self) -> dict[str, object]:
        content: dict[str, object] = {}
        put(content, "user_id", self.user_id)
        put(content, "user_name", self.user_name)
        put(content, "timestamp", self.timestamp)
        put(content, "start_time", self.start_time)
        put(content, "end_time", self.end_time)
        if self.language is not None:
            content["language"] = int(self.language)
        if self.attribute is not None:
            content["attribute"] = wire_value(self.attribute)
        content["data"] = self.text
        put(content, "channel_id", self.channel_id)
        return {"msg_type": int(self.msg_type), "content": content}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChatUser:
    """Sender or receiver of a structured chat message."""

    user_id: int | str | None = None
    user_name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChatFile:
    """A file attached to a structured chat message."""

    file_id: str | None = None
    file_name: str | None = None
    file_size: int | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StructuredChat:
    """The JSON object newer servers put inside chat ``data`` (§6.6, Zoom samples only)."""

    session_type: ChatSessionType | int | None = None
    session_id: str | None = None
    operation: ChatOperation | int | None = None
    message_id: str | None = None
    parent_message_id: str | None = None
    sender: ChatUser | None = None
    receiver: ChatUser | None = None
    files: tuple[ChatFile, ...] = ()
    delete_file_ids: tuple[str, ...] = ()
    text: str | None = None


def _chat_user(obj: dict[str, Any], key: str) -> ChatUser | None:
    found = opt_obj(obj, key, "")
    if found is None:
        return None
    user_id = found.get("user_id")
    if user_id is not None and type(user_id) is not int and type(user_id) is not str:
        raise wrong(found, "user_id", "", "an integer or a string")
    return ChatUser(user_id=user_id, user_name=opt_str(found, "user_name", ""))


def _structured_chat(text: str) -> StructuredChat | None:
    """Read chat ``data`` as the samples' JSON object; anything else is plain text.

    Never an error: on older servers ``data`` is whatever a participant typed.
    Parsed within the same bounds as a message (``MAX_JSON_ITEMS``).
    """
    if text.lstrip()[:1] != "{":
        return None
    try:
        obj = parse_network(text)
        session = opt_obj(obj, "chat_session", "") or {}
        session_type = opt_int(session, "type", "")
        operation = opt_int(obj, "operation_type", "")
        delete_ids = tuple(opt_list(obj, "delete_file_id_list", ""))
        for file_id in delete_ids:
            if type(file_id) is not str:
                return None
        return StructuredChat(
            session_type=None if session_type is None else to_enum(ChatSessionType, session_type),
            session_id=opt_str(session, "id", ""),
            operation=None if operation is None else to_enum(ChatOperation, operation),
            message_id=opt_str(obj, "message_id", ""),
            parent_message_id=opt_str(obj, "parent_message_id", ""),
            sender=_chat_user(obj, "sender"),
            receiver=_chat_user(obj, "receiver"),
            files=tuple(
                ChatFile(
                    file_id=opt_str(f, "file_id", ""),
                    file_name=opt_str(f, "file_name", ""),
                    file_size=opt_int(f, "file_size", ""),
                )
                for f in obj_items(opt_list(obj, "files", ""), "files")
            ),
            delete_file_ids=delete_ids,
            text=opt_str(obj, "data", ""),
        )
    except (ValueError, RecursionError):  # WireFieldError is a ValueError
        return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChatData:
    """MEDIA_DATA_CHAT (18) (§6.6).

    ``text`` is the wire ``data`` exactly as sent (and what is encoded);
    ``chat`` is its structured reading when it is a JSON object of the known
    shape, else None (older servers send plain text).
    """

    msg_type: ClassVar[MessageType] = MessageType.MEDIA_DATA_CHAT
    text: str
    user_id: int | None = None
    user_name: str | None = None
    timestamp: int | None = None
    chat: StructuredChat | None = None

    @classmethod
    def _from_wire(cls, o: dict[str, Any]) -> ChatData:
        c = req_obj(o, "content", "")
        text = req_str(c, "data", "content.")
        return cls(
            text=text,
            user_id=opt_user_id(c, "user_id", "content."),
            user_name=opt_str(c, "user_name", "content."),
            timestamp=opt_int(c, "timestamp", "content."),
            chat=_structured_chat(text),
        )

    def _to_wire(self) -> dict[str, object]:
        content: dict[str, object] = {}
        put(content, "user_id", self.user_id)
        put(content, "user_name", self.user_name)
        put(content, "timestamp", self.timestamp)
        content["data"] = self.text
        return {"msg_type": int(self.msg_type), "content": content}
