"""Media parameters: the ``media_params`` object of the media handshake (docs/protocol.md §5).

Defaults are the *protocol* defaults (what the server assumes for a missing
key), not the official SDK's: a request that omits a key and a decoded reply
that the server filled in then compare equal.

Decoding is lenient (unknown keys ignored, unknown numbers kept as ``int``,
missing keys defaulted) because the server's echo is authoritative;
:meth:`MediaParams.validate` is strict because a bad request costs a whole
handshake round trip and only yields a numeric status.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ._errors import InvalidConfig
from ._fields import alias, opt_bool, opt_int, opt_obj
from .enums import (
    AudioChannel,
    AudioSampleRate,
    Codec,
    ContentType,
    DataOption,
    MediaType,
    Resolution,
    TranscriptLanguage,
    to_enum,
)

__all__ = [
    "AudioParams",
    "ChatParams",
    "DeskshareParams",
    "MediaParams",
    "TranscriptParams",
    "VideoParams",
]

E = TypeVar("E", bound=enum.IntEnum)


# --- validation helpers ---------------------------------------------------------------------


def _show(member: enum.Enum) -> str:
    """``NAME (n)``: messages name both what was passed and its wire number."""
    return f"{member.name} ({member.value})"


def _member(cls: type[E], value: object, field: str) -> E:
    """Return ``value`` as a member of ``cls`` or raise naming the field.

    A member of a *different* enum is rejected even when its number happens to
    be valid: ``codec=ContentType.RAW_VIDEO`` is a mistake, not ``Codec.G722``.
    """
    if type(value) is bool or not isinstance(value, int):
        raise InvalidConfig(f"{field}: expected an integer, got {type(value).__name__}")
    if isinstance(value, enum.Enum) and not isinstance(value, cls):
        raise InvalidConfig(f"{field}={_show(value)} is not a {cls.__name__}")
    member = to_enum(cls, value)
    if not isinstance(member, cls):
        raise InvalidConfig(f"{field}={value!r} is not a known {cls.__name__}")
    return member


def _one_of(cls: type[E], value: object, field: str, allowed: tuple[E, ...]) -> E:
    member = _member(cls, value, field)
    if member not in allowed:
        names = " or ".join(a.name for a in allowed)
        raise InvalidConfig(f"{field}={_show(member)} is not allowed here; use {names}")
    return member


def _plain_int(value: object, field: str) -> int:
    if type(value) is bool or not isinstance(value, int):
        raise InvalidConfig(f"{field}: expected an integer, got {type(value).__name__}")
    return value


def _check_fps(fps: object, field: str, codec: Codec, image_max: int) -> None:
    """JPG/PNG only at low frame rates, H.264 up to 30 fps (§5.2, §5.3)."""
    rate = _plain_int(fps, field)
    top = 30 if codec is Codec.H264 else image_max
    if not 1 <= rate <= top:
        raise InvalidConfig(f"{field}={rate} is out of range 1..{top} for codec {codec.name}")


_AUDIO_CODEC_NEEDS: dict[Codec, tuple[AudioSampleRate, AudioChannel | None]] = {
    Codec.OPUS: (AudioSampleRate.SR_48K, None),
    Codec.G711: (AudioSampleRate.SR_8K, AudioChannel.MONO),
    Codec.G722: (AudioSampleRate.SR_16K, AudioChannel.MONO),
}
"""What each compressed audio codec demands (DOC-MP audio matrix, §5.1)."""


# --- parameter objects ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioParams:
    """``media_params.audio`` (§5.1)."""

    content_type: ContentType | int = ContentType.RAW_AUDIO
    sample_rate: AudioSampleRate | int = AudioSampleRate.SR_16K
    channel: AudioChannel | int = AudioChannel.MONO
    codec: Codec | int = Codec.L16
    data_opt: DataOption | int = DataOption.AUDIO_MIXED_STREAM
    send_rate: int = 20

    def validate(self) -> None:
        """Raise :class:`InvalidConfig` for a combination the server would reject (§5.1)."""
        content = _one_of(
            ContentType,
            self.content_type,
            "audio.content_type",
            (ContentType.RTP, ContentType.RAW_AUDIO),
        )
        rate = _member(AudioSampleRate, self.sample_rate, "audio.sample_rate")
        channel = _member(AudioChannel, self.channel, "audio.channel")
        codec = _one_of(
            Codec, self.codec, "audio.codec", (Codec.L16, Codec.G711, Codec.G722, Codec.OPUS)
        )
        _one_of(
            DataOption,
            self.data_opt,
            "audio.data_opt",
            (DataOption.AUDIO_MIXED_STREAM, DataOption.AUDIO_MULTI_STREAMS),
        )
        send_rate = _plain_int(self.send_rate, "audio.send_rate")
        if not 20 <= send_rate <= 1000 or send_rate % 20:
            raise InvalidConfig(
                f"audio.send_rate={send_rate} must be a multiple of 20 between 20 and 1000 (ms)"
            )
        needs = _AUDIO_CODEC_NEEDS.get(codec)
        if needs is not None:
            need_rate, need_channel = needs
            if rate is not need_rate:
                raise InvalidConfig(
                    f"audio.sample_rate={_show(rate)} does not fit codec {codec.name}; "
                    f"it needs {need_rate.name}"
                )
            if need_channel is not None and channel is not need_channel:
                raise InvalidConfig(
                    f"audio.channel={_show(channel)} does not fit codec {codec.name}; "
                    f"it needs {need_channel.name}"
                )
        allowed: tuple[Codec, ...]
        if content is ContentType.RTP:
            allowed = (Codec.OPUS, Codec.G711, Codec.G722)
        else:
            allowed = (Codec.L16, Codec.OPUS)
        if codec not in allowed:
            names = ", ".join(a.name for a in allowed)
            raise InvalidConfig(
                f"audio.codec={_show(codec)} cannot be sent as {content.name}; use {names}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoParams:
    """``media_params.video`` (§5.2)."""

    content_type: ContentType | int = ContentType.RAW_VIDEO
    codec: Codec | int = Codec.JPG
    resolution: Resolution | int = Resolution.HD
    data_opt: DataOption | int = DataOption.VIDEO_SINGLE_ACTIVE_STREAM
    fps: int = 5

    def validate(self) -> None:
        """Raise :class:`InvalidConfig` for values the server would reject (§5.2).

        ``VIDEO_MIXED_GALLERY_VIEW`` (5) is refused: current docs no longer list it.
        """
        _one_of(ContentType, self.content_type, "video.content_type", (ContentType.RAW_VIDEO,))
        codec = _one_of(Codec, self.codec, "video.codec", (Codec.JPG, Codec.PNG, Codec.H264))
        _member(Resolution, self.resolution, "video.resolution")
        _one_of(
            DataOption,
            self.data_opt,
            "video.data_opt",
            (DataOption.VIDEO_SINGLE_ACTIVE_STREAM, DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM),
        )
        _check_fps(self.fps, "video.fps", codec, image_max=5)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeskshareParams:
    """``media_params.deskshare`` (§5.3); screen share has no ``data_opt``."""

    content_type: ContentType | int = ContentType.RAW_VIDEO
    codec: Codec | int = Codec.JPG
    resolution: Resolution | int = Resolution.FHD
    fps: int = 1

    def validate(self) -> None:
        """Raise :class:`InvalidConfig` for values the server would reject (§5.3).

        Image codecs are held to fps 1, the official docs' limit for screen share
        (stricter than the SDK's 5), so a request is never silently downgraded.
        """
        _one_of(ContentType, self.content_type, "deskshare.content_type", (ContentType.RAW_VIDEO,))
        codec = _one_of(Codec, self.codec, "deskshare.codec", (Codec.JPG, Codec.PNG, Codec.H264))
        _member(Resolution, self.resolution, "deskshare.resolution")
        _check_fps(self.fps, "deskshare.fps", codec, image_max=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptParams:
    """``media_params.transcript`` (§5.4); ``src_language`` None means the key is not sent."""

    content_type: ContentType | int = ContentType.TEXT
    src_language: TranscriptLanguage | int | None = None
    enable_lid: bool = True

    def validate(self) -> None:
        """Raise :class:`InvalidConfig` for values the server would reject (§5.4)."""
        _one_of(ContentType, self.content_type, "transcript.content_type", (ContentType.TEXT,))
        if self.src_language is not None:
            _member(TranscriptLanguage, self.src_language, "transcript.src_language")
        if type(self.enable_lid) is not bool:
            raise InvalidConfig(
                f"transcript.enable_lid: expected a bool, got {type(self.enable_lid).__name__}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatParams:
    """``media_params.chat`` (§5.5)."""

    content_type: ContentType | int = ContentType.TEXT

    def validate(self) -> None:
        """Raise :class:`InvalidConfig` unless the content type is TEXT (§5.5)."""
        _one_of(ContentType, self.content_type, "chat.content_type", (ContentType.TEXT,))


_FLAGS = (
    ("audio", MediaType.AUDIO),
    ("video", MediaType.VIDEO),
    ("deskshare", MediaType.DESKSHARE),
    ("transcript", MediaType.TRANSCRIPT),
    ("chat", MediaType.CHAT),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaParams:
    """The wire ``media_params`` object: one optional sub-object per media type."""

    audio: AudioParams | None = None
    video: VideoParams | None = None
    deskshare: DeskshareParams | None = None
    transcript: TranscriptParams | None = None
    chat: ChatParams | None = None

    def validate(self) -> None:
        """Validate every present sub-object; raise :class:`InvalidConfig` on the first fault."""
        for sub in (self.audio, self.video, self.deskshare, self.transcript, self.chat):
            if sub is not None:
                sub.validate()

    def for_types(self, media_type: MediaType) -> MediaParams:
        """Keep only the sub-objects of ``media_type``'s flags (split sockets send only theirs).

        ``ALL`` keeps everything: the unified socket carries every type.
        """
        if media_type & MediaType.ALL:
            return self
        return MediaParams(
            audio=self.audio if media_type & MediaType.AUDIO else None,
            video=self.video if media_type & MediaType.VIDEO else None,
            deskshare=self.deskshare if media_type & MediaType.DESKSHARE else None,
            transcript=self.transcript if media_type & MediaType.TRANSCRIPT else None,
            chat=self.chat if media_type & MediaType.CHAT else None,
        )

    def present_types(self) -> MediaType:
        """The flags of the sub-objects that are present (``UNDEFINED`` when none)."""
        flags = MediaType.UNDEFINED
        for name, flag in _FLAGS:
            if getattr(self, name) is not None:
                flags |= flag
        return flags

    def to_wire(self) -> dict[str, object]:
        """The JSON-ready object: present sub-objects only, integers for every enum."""
        wire: dict[str, object] = {}
        if (a := self.audio) is not None:
            wire["audio"] = {
                "content_type": int(a.content_type),
                "sample_rate": int(a.sample_rate),
                "channel": int(a.channel),
                "codec": int(a.codec),
                "data_opt": int(a.data_opt),
                "send_rate": int(a.send_rate),
            }
        if (v := self.video) is not None:
            wire["video"] = {
                "content_type": int(v.content_type),
                "codec": int(v.codec),
                "resolution": int(v.resolution),
                "data_opt": int(v.data_opt),
                "fps": int(v.fps),
            }
        if (d := self.deskshare) is not None:
            wire["deskshare"] = {
                "content_type": int(d.content_type),
                "codec": int(d.codec),
                "resolution": int(d.resolution),
                "fps": int(d.fps),
            }
        if (t := self.transcript) is not None:
            sub: dict[str, object] = {"content_type": int(t.content_type)}
            if t.src_language is not None:
                sub["src_language"] = int(t.src_language)
            sub["enable_lid"] = bool(t.enable_lid)
            wire["transcript"] = sub
        if (c := self.chat) is not None:
            wire["chat"] = {"content_type": int(c.content_type)}
        return wire

    @classmethod
    def from_wire(cls, obj: Mapping[str, object], field: str = "media_params") -> MediaParams:
        """Decode a wire ``media_params`` object, leniently.

        Unknown keys are ignored, a missing or ``null`` key takes the protocol
        default (the server echoes confirmed values with defaults filled in), a
        ``null`` sub-object counts as absent, unknown numbers stay ``int``, and
        the legacy transcript key ``language`` stands for ``src_language``.
        Raises :class:`WireFieldError` naming the dotted field on a wrong type.
        """
        audio = _sub(obj, "audio", field)
        video = _sub(obj, "video", field)
        deskshare = _sub(obj, "deskshare", field)
        transcript = _sub(obj, "transcript", field)
        chat = _sub(obj, "chat", field)
        return cls(
            audio=None if audio is None else _audio_from_wire(audio, f"{field}.audio."),
            video=None if video is None else _video_from_wire(video, f"{field}.video."),
            deskshare=(
                None
                if deskshare is None
                else _deskshare_from_wire(deskshare, f"{field}.deskshare.")
            ),
            transcript=(
                None
                if transcript is None
                else _transcript_from_wire(transcript, f"{field}.transcript.")
            ),
            chat=None
            if chat is None
            else ChatParams(
                content_type=_num(
                    chat, "content_type", f"{field}.chat.", ContentType, ContentType.TEXT
                )
            ),
        )


# --- wire decoding helpers ------------------------------------------------------------------


def _sub(obj: Mapping[str, object], key: str, field: str) -> Mapping[str, Any] | None:
    return opt_obj(obj, key, field + ".")


def _num(obj: Mapping[str, Any], key: str, path: str, cls: type[E], default: E) -> E | int:
    value = opt_int(obj, key, path)
    return default if value is None else to_enum(cls, value)


def _plain(obj: Mapping[str, Any], key: str, path: str, default: int) -> int:
    value = opt_int(obj, key, path)
    return default if value is None else value


def _audio_from_wire(obj: Mapping[str, Any], path: str) -> AudioParams:
    return AudioParams(
        content_type=_num(obj, "content_type", path, ContentType, ContentType.RAW_AUDIO),
        sample_rate=_num(obj, "sample_rate", path, AudioSampleRate, AudioSampleRate.SR_16K),
        channel=_num(obj, "channel", path, AudioChannel, AudioChannel.MONO),
        codec=_num(obj, "codec", path, Codec, Codec.L16),
        data_opt=_num(obj, "data_opt", path, DataOption, DataOption.AUDIO_MIXED_STREAM),
        send_rate=_plain(obj, "send_rate", path, 20),
    )


def _video_from_wire(obj: Mapping[str, Any], path: str) -> VideoParams:
    return VideoParams(
        content_type=_num(obj, "content_type", path, ContentType, ContentType.RAW_VIDEO),
        codec=_num(obj, "codec", path, Codec, Codec.JPG),
        resolution=_num(obj, "resolution", path, Resolution, Resolution.HD),
        data_opt=_num(obj, "data_opt", path, DataOption, DataOption.VIDEO_SINGLE_ACTIVE_STREAM),
        fps=_plain(obj, "fps", path, 5),
    )


def _deskshare_from_wire(obj: Mapping[str, Any], path: str) -> DeskshareParams:
    return DeskshareParams(
        content_type=_num(obj, "content_type", path, ContentType, ContentType.RAW_VIDEO),
        codec=_num(obj, "codec", path, Codec, Codec.JPG),
        resolution=_num(obj, "resolution", path, Resolution, Resolution.FHD),
        fps=_plain(obj, "fps", path, 1),
    )


def _transcript_from_wire(obj: Mapping[str, Any], path: str) -> TranscriptParams:
    language = opt_int(obj, alias(obj, "src_language", "language"), path)
    lid = opt_bool(obj, "enable_lid", path)
    return TranscriptParams(
        content_type=_num(obj, "content_type", path, ContentType, ContentType.TEXT),
        src_language=None if language is None else to_enum(TranscriptLanguage, language),
        enable_lid=True if lid is None else lid,
    )
