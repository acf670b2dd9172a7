"""Media parameters (docs/protocol.md §5): defaults, wire form, lenient decoding, validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtms_proto import InvalidConfig
from rtms_proto._fields import WireFieldError
from rtms_proto._params import (
    AudioParams,
    ChatParams,
    DeskshareParams,
    MediaParams,
    TranscriptParams,
    VideoParams,
)
from rtms_proto.enums import (
    AudioChannel,
    AudioSampleRate,
    Codec,
    ContentType,
    DataOption,
    MediaType,
    Resolution,
    TranscriptLanguage,
)

ALL_PARAMS = MediaParams(
    audio=AudioParams(),
    video=VideoParams(),
    deskshare=DeskshareParams(),
    transcript=TranscriptParams(),
    chat=ChatParams(),
)


# --- defaults and wire form -----------------------------------------------------------------


def test_defaults_are_the_protocol_defaults_of_section_5() -> None:
    """Written out by hand from §5.1-§5.5 (not the SDK's Opus/H.264 defaults of §5.6)."""
    assert ALL_PARAMS.to_wire() == {
        "audio": {
            "content_type": 2,
            "sample_rate": 1,
            "channel": 1,
            "codec": 1,
            "data_opt": 1,
            "send_rate": 20,
        },
        "video": {"content_type": 3, "codec": 5, "resolution": 2, "data_opt": 3, "fps": 5},
        "deskshare": {"content_type": 3, "codec": 5, "resolution": 3, "fps": 1},
        "transcript": {"content_type": 5, "enable_lid": True},
        "chat": {"content_type": 5},
    }


def test_defaults_validate() -> None:
    ALL_PARAMS.validate()


def test_to_wire_writes_only_present_sub_objects() -> None:
    assert MediaParams().to_wire() == {}
    assert MediaParams(chat=ChatParams()).to_wire() == {"chat": {"content_type": 5}}


def test_to_wire_uses_plain_integers_never_names() -> None:
    params = MediaParams(
        audio=AudioParams(codec=Codec.OPUS, sample_rate=AudioSampleRate.SR_48K),
        transcript=TranscriptParams(src_language=TranscriptLanguage.GERMAN, enable_lid=False),
    )
    wire = params.to_wire()
    text = json.dumps(wire)
    assert "OPUS" not in text and "GERMAN" not in text
    for sub in wire.values():
        assert isinstance(sub, dict)
        for value in sub.values():
            assert type(value) in (int, bool)
    assert wire["transcript"] == {"content_type": 5, "src_language": 14, "enable_lid": False}


def test_transcript_src_language_none_is_not_sent() -> None:
    wire = MediaParams(transcript=TranscriptParams(enable_lid=False)).to_wire()
    assert wire == {"transcript": {"content_type": 5, "enable_lid": False}}


# --- media type selection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("media_type", "kept"),
    [
        (MediaType.AUDIO, {"audio"}),
        (MediaType.VIDEO, {"video"}),
        (MediaType.DESKSHARE, {"deskshare"}),
        (MediaType.TRANSCRIPT, {"transcript"}),
        (MediaType.CHAT, {"chat"}),
        (MediaType.AUDIO | MediaType.TRANSCRIPT, {"audio", "transcript"}),
        (MediaType.ALL, {"audio", "video", "deskshare", "transcript", "chat"}),
        (MediaType.ALL | MediaType.AUDIO, {"audio", "video", "deskshare", "transcript", "chat"}),
        (MediaType.UNDEFINED, set()),
    ],
)
def test_for_types_keeps_only_the_requested_sub_objects(
    media_type: MediaType, kept: set[str]
) -> None:
    selected = ALL_PARAMS.for_types(media_type)
    assert set(selected.to_wire()) == kept
    for name in kept:
        assert getattr(selected, name) is getattr(ALL_PARAMS, name)


@pytest.mark.parametrize(
    ("params", "flags"),
    [
        (MediaParams(), MediaType.UNDEFINED),
        (MediaParams(audio=AudioParams()), MediaType.AUDIO),
        (
            MediaParams(video=VideoParams(), chat=ChatParams()),
            MediaType.VIDEO | MediaType.CHAT,
        ),
        (
            ALL_PARAMS,
            MediaType.AUDIO
            | MediaType.VIDEO
            | MediaType.DESKSHARE
            | MediaType.TRANSCRIPT
            | MediaType.CHAT,
        ),
    ],
)
def test_present_types(params: MediaParams, flags: MediaType) -> None:
    assert params.present_types() == flags


def test_for_types_of_present_types_is_identity() -> None:
    params = MediaParams(audio=AudioParams(), transcript=TranscriptParams())
    assert params.for_types(params.present_types()) == params


# --- validation -----------------------------------------------------------------------------

VALID = [
    AudioParams(),
    AudioParams(codec=Codec.OPUS, sample_rate=AudioSampleRate.SR_48K, channel=AudioChannel.STEREO),
    AudioParams(
        content_type=ContentType.RTP,
        codec=Codec.OPUS,
        sample_rate=AudioSampleRate.SR_48K,
        channel=AudioChannel.STEREO,
    ),
    AudioParams(content_type=ContentType.RTP, codec=Codec.G711, sample_rate=AudioSampleRate.SR_8K),
    AudioParams(content_type=ContentType.RTP, codec=Codec.G722, sample_rate=AudioSampleRate.SR_16K),
    AudioParams(sample_rate=AudioSampleRate.SR_32K, channel=2, send_rate=1000),
    AudioParams(sample_rate=0, data_opt=DataOption.AUDIO_MULTI_STREAMS, send_rate=40),
    VideoParams(),
    VideoParams(codec=Codec.PNG, fps=1, resolution=Resolution.SD),
    VideoParams(codec=Codec.H264, fps=30, resolution=Resolution.QHD),
    VideoParams(data_opt=DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM),
    DeskshareParams(),
    DeskshareParams(codec=Codec.PNG, fps=1),
    DeskshareParams(codec=Codec.H264, fps=30, resolution=1),
    TranscriptParams(),
    TranscriptParams(src_language=TranscriptLanguage.NONE, enable_lid=False),
    TranscriptParams(src_language=36),
    ChatParams(),
]


@pytest.mark.parametrize("params", VALID, ids=repr)
def test_valid_params_pass(
    params: AudioParams | VideoParams | DeskshareParams | TranscriptParams | ChatParams,
) -> None:
    params.validate()


INVALID: list[tuple[Any, str]] = [
    # audio, field by field
    (AudioParams(send_rate=30), "audio.send_rate=30"),
    (AudioParams(send_rate=0), "audio.send_rate=0"),
    (AudioParams(send_rate=1020), "audio.send_rate=1020"),
    (AudioParams(send_rate=-20), "audio.send_rate=-20"),
    (AudioParams(send_rate=True), "audio.send_rate: expected an integer, got bool"),
    (AudioParams(send_rate=20.0), "audio.send_rate: expected an integer, got float"),  # type: ignore[arg-type]
    (AudioParams(sample_rate=4), "audio.sample_rate=4 is not a known AudioSampleRate"),
    (AudioParams(channel=0), "audio.channel=0 is not a known AudioChannel"),
    (AudioParams(channel=3), "audio.channel=3 is not a known AudioChannel"),
    (AudioParams(codec=Codec.JPG), "audio.codec=JPG (5) is not allowed here; use L16 or G711"),
    (AudioParams(codec=9), "audio.codec=9 is not a known Codec"),
    (AudioParams(codec="OPUS"), "audio.codec: expected an integer, got str"),  # type: ignore[arg-type]
    (AudioParams(data_opt=3), "audio.data_opt=VIDEO_SINGLE_ACTIVE_STREAM (3) is not allowed"),
    (AudioParams(content_type=ContentType.TEXT), "audio.content_type=TEXT (5) is not allowed"),
    (AudioParams(content_type=0), "audio.content_type=UNDEFINED (0) is not allowed"),
    (AudioParams(content_type=77), "audio.content_type=77 is not a known ContentType"),
    # a member of another enum is a mistake even when its number fits
    (AudioParams(codec=ContentType.RTP), "audio.codec=RTP (1) is not a Codec"),
    # audio, combinations (DOC-MP matrix)
    (AudioParams(codec=Codec.OPUS), "audio.sample_rate=SR_16K (1) does not fit codec OPUS"),
    (
        AudioParams(content_type=1, codec=Codec.G711, sample_rate=AudioSampleRate.SR_16K),
        "audio.sample_rate=SR_16K (1) does not fit codec G711; it needs SR_8K",
    ),
    (
        AudioParams(content_type=1, codec=Codec.G711, sample_rate=0, channel=2),
        "audio.channel=STEREO (2) does not fit codec G711; it needs MONO",
    ),
    (
        AudioParams(content_type=1, codec=Codec.G722, sample_rate=0),
        "audio.sample_rate=SR_8K (0) does not fit codec G722; it needs SR_16K",
    ),
    (
        AudioParams(content_type=1, codec=Codec.G722, channel=2),
        "audio.channel=STEREO (2) does not fit codec G722",
    ),
    (
        AudioParams(content_type=ContentType.RTP),
        "audio.codec=L16 (1) cannot be sent as RTP; use OPUS, G711, G722",
    ),
    (
        AudioParams(codec=Codec.G711, sample_rate=0),
        "audio.codec=G711 (2) cannot be sent as RAW_AUDIO; use L16, OPUS",
    ),
    (
        AudioParams(codec=Codec.G722),
        "audio.codec=G722 (3) cannot be sent as RAW_AUDIO",
    ),
    # video
    (VideoParams(fps=6), "video.fps=6 is out of range 1..5 for codec JPG"),
    (VideoParams(fps=0), "video.fps=0 is out of range 1..5 for codec JPG"),
    (VideoParams(codec=Codec.PNG, fps=10), "video.fps=10 is out of range 1..5 for codec PNG"),
    (VideoParams(codec=Codec.H264, fps=31), "video.fps=31 is out of range 1..30 for codec H264"),
    (VideoParams(codec=Codec.H264, fps=0), "video.fps=0 is out of range 1..30 for codec H264"),
    (VideoParams(fps=False), "video.fps: expected an integer, got bool"),
    (
        VideoParams(codec=Codec.L16),
        "video.codec=L16 (1) is not allowed here; use JPG or PNG or H264",
    ),
    (VideoParams(resolution=0), "video.resolution=0 is not a known Resolution"),
    (VideoParams(resolution=5), "video.resolution=5 is not a known Resolution"),
    (
        VideoParams(data_opt=DataOption.VIDEO_MIXED_GALLERY_VIEW),
        "video.data_opt=VIDEO_MIXED_GALLERY_VIEW (5) is not allowed",
    ),
    (VideoParams(data_opt=1), "video.data_opt=AUDIO_MIXED_STREAM (1) is not allowed"),
    (VideoParams(content_type=2), "video.content_type=RAW_AUDIO (2) is not allowed"),
    # deskshare: image codecs only at 1 fps (DOC)
    (DeskshareParams(fps=2), "deskshare.fps=2 is out of range 1..1 for codec JPG"),
    (DeskshareParams(fps=5, codec=Codec.PNG), "deskshare.fps=5 is out of range 1..1 for codec PNG"),
    (DeskshareParams(fps=0), "deskshare.fps=0 is out of range 1..1"),
    (DeskshareParams(codec=Codec.H264, fps=40), "deskshare.fps=40 is out of range 1..30"),
    (DeskshareParams(codec=Codec.OPUS), "deskshare.codec=OPUS (4) is not allowed"),
    (DeskshareParams(resolution=9), "deskshare.resolution=9 is not a known Resolution"),
    (DeskshareParams(content_type=5), "deskshare.content_type=TEXT (5) is not allowed"),
    # transcript, chat
    (TranscriptParams(content_type=3), "transcript.content_type=RAW_VIDEO (3) is not allowed"),
    (TranscriptParams(src_language=37), "transcript.src_language=37 is not a known"),
    (TranscriptParams(src_language=-2), "transcript.src_language=-2 is not a known"),
    (TranscriptParams(enable_lid=1), "transcript.enable_lid: expected a bool, got int"),  # type: ignore[arg-type]
    (ChatParams(content_type=2), "chat.content_type=RAW_AUDIO (2) is not allowed here; use TEXT"),
    # MediaParams validates every present sub-object
    (MediaParams(chat=ChatParams(), video=VideoParams(fps=9)), "video.fps=9"),
    (
        MediaParams(deskshare=DeskshareParams(), transcript=TranscriptParams(content_type=1)),
        "transcript.content_type",
    ),
]


@pytest.mark.parametrize(("params", "message"), INVALID, ids=lambda v: str(v)[:60])
def test_invalid_params_raise_naming_field_and_value(params: Any, message: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        params.validate()
    assert message in str(info.value)


def test_invalid_config_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"audio\.send_rate=7"):
        AudioParams(send_rate=7).validate()


# --- decoding -------------------------------------------------------------------------------


def test_from_wire_fills_missing_keys_with_protocol_defaults() -> None:
    decoded = MediaParams.from_wire(
        {"audio": {}, "video": {}, "deskshare": {}, "transcript": {}, "chat": {}}
    )
    assert decoded == ALL_PARAMS


def test_from_wire_null_values_mean_default_and_null_sub_objects_mean_absent() -> None:
    decoded = MediaParams.from_wire(
        {
            "audio": {"codec": None, "send_rate": None},
            "video": None,
            "transcript": {"src_language": None, "enable_lid": None, "content_type": None},
        }
    )
    assert decoded == MediaParams(audio=AudioParams(), transcript=TranscriptParams())


def test_from_wire_maps_numbers_to_members_and_keeps_unknown_numbers() -> None:
    decoded = MediaParams.from_wire(
        {
            "audio": {"codec": 4, "sample_rate": 3, "channel": 2, "data_opt": 9, "send_rate": 60},
            "video": {"codec": 7, "resolution": 11, "fps": 24},
            "transcript": {"src_language": 99},
        }
    )
    audio, video, transcript = decoded.audio, decoded.video, decoded.transcript
    assert audio is not None and video is not None and transcript is not None
    assert audio.codec is Codec.OPUS
    assert audio.sample_rate is AudioSampleRate.SR_48K
    assert audio.channel is AudioChannel.STEREO
    assert audio.data_opt == 9 and not isinstance(audio.data_opt, DataOption)
    assert audio.send_rate == 60
    assert video.codec is Codec.H264
    assert video.resolution == 11 and not isinstance(video.resolution, Resolution)
    assert transcript.src_language == 99
    assert not isinstance(transcript.src_language, TranscriptLanguage)


def test_from_wire_ignores_unknown_keys() -> None:
    decoded = MediaParams.from_wire(
        {"audio": {"frame_size": 320, "codec": 1}, "sharescreen": {"fps": 3}, "future": 1}
    )
    assert decoded == MediaParams(audio=AudioParams())


def test_from_wire_accepts_legacy_language_key() -> None:
    decoded = MediaParams.from_wire({"transcript": {"language": 9}})
    assert decoded.transcript == TranscriptParams(src_language=TranscriptLanguage.ENGLISH)


def test_from_wire_prefers_src_language_over_legacy_key() -> None:
    decoded = MediaParams.from_wire({"transcript": {"language": 9, "src_language": 14}})
    assert decoded.transcript == TranscriptParams(src_language=TranscriptLanguage.GERMAN)


@pytest.mark.parametrize(
    ("wire", "field", "detail"),
    [
        ({"audio": 1}, "media_params.audio", "expected an object, got integer"),
        ({"video": []}, "media_params.video", "expected an object, got array"),
        ({"chat": "x"}, "media_params.chat", "expected an object, got string"),
        ({"deskshare": True}, "media_params.deskshare", "expected an object, got boolean"),
        ({"transcript": 1.5}, "media_params.transcript", "expected an object, got number"),
        ({"audio": {"sample_rate": "48000"}}, "media_params.audio.sample_rate", "got string"),
        ({"audio": {"codec": True}}, "media_params.audio.codec", "got boolean"),
        ({"audio": {"send_rate": 20.0}}, "media_params.audio.send_rate", "got number"),
        ({"video": {"fps": "5"}}, "media_params.video.fps", "got string"),
        ({"video": {"resolution": {}}}, "media_params.video.resolution", "got object"),
        ({"deskshare": {"codec": []}}, "media_params.deskshare.codec", "got array"),
        (
            {"transcript": {"src_language": "en"}},
            "media_params.transcript.src_language",
            "got string",
        ),
        ({"transcript": {"language": False}}, "media_params.transcript.language", "got boolean"),
        ({"transcript": {"enable_lid": 1}}, "media_params.transcript.enable_lid", "got integer"),
        ({"chat": {"content_type": "5"}}, "media_params.chat.content_type", "got string"),
    ],
)
def test_from_wire_reports_wrong_types_naming_the_field(
    wire: dict[str, Any], field: str, detail: str
) -> None:
    with pytest.raises(WireFieldError) as info:
        MediaParams.from_wire(wire)
    assert info.value.field == field
    assert detail in info.value.detail
    assert str(info.value).startswith(field + ": ")


def test_from_wire_field_prefix_is_configurable() -> None:
    with pytest.raises(WireFieldError) as info:
        MediaParams.from_wire({"audio": {"codec": "x"}}, field="params")
    assert info.value.field == "params.audio.codec"


# --- round trip -----------------------------------------------------------------------------

ints = st.integers(min_value=-(2**40), max_value=2**40)


def _enum_or_int(values: list[int]) -> st.SearchStrategy[int]:
    return st.sampled_from(values) | ints


media_params_strategy = st.builds(
    MediaParams,
    audio=st.none()
    | st.builds(
        AudioParams,
        content_type=_enum_or_int(list(ContentType)),
        sample_rate=_enum_or_int(list(AudioSampleRate)),
        channel=_enum_or_int(list(AudioChannel)),
        codec=_enum_or_int(list(Codec)),
        data_opt=_enum_or_int(list(DataOption)),
        send_rate=ints,
    ),
    video=st.none()
    | st.builds(
        VideoParams,
        content_type=ints,
        codec=_enum_or_int(list(Codec)),
        resolution=_enum_or_int(list(Resolution)),
        data_opt=ints,
        fps=ints,
    ),
    deskshare=st.none()
    | st.builds(DeskshareParams, content_type=ints, codec=ints, resolution=ints, fps=ints),
    transcript=st.none()
    | st.builds(
        TranscriptParams,
        content_type=ints,
        src_language=st.none() | _enum_or_int(list(TranscriptLanguage)),
        enable_lid=st.booleans(),
    ),
    chat=st.none() | st.builds(ChatParams, content_type=ints),
)


@given(media_params_strategy)
def test_from_wire_inverts_to_wire(params: MediaParams) -> None:
    wire = json.loads(json.dumps(params.to_wire()))
    assert MediaParams.from_wire(wire) == params


@given(media_params_strategy)
def test_validate_raises_only_invalid_config(params: MediaParams) -> None:
    """Whatever the numbers, validation either passes or names a field; nothing else escapes."""
    try:
        params.validate()
    except InvalidConfig as exc:
        assert str(exc).split(".", 1)[0] in {"audio", "video", "deskshare", "transcript", "chat"}
