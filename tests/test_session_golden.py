"""Session scenarios fed with the hand-written wire fixtures, not the codec's encoder.

The fixtures in ``tests/fixtures/wire`` were written from docs/protocol.md, so these
runs pin the Session to the wire as documented, independently of how our own
codec would encode a server message.  Frames go out binary (as Zoom's own
client uses) and text alike.
"""

from __future__ import annotations

import pathlib

import pytest
from sim import Sim, events_of, kinds, make_config, only

from rtms_proto import Layout, MediaType
from rtms_proto import events as ev
from rtms_proto.actions import SocketRole
from rtms_proto.enums import AudioChannel, AudioSampleRate, Codec, FailureReason, StopReason

WIRE = pathlib.Path(__file__).parent / "fixtures" / "wire"
SIG = SocketRole.SIGNALING


def fixture(name: str) -> str:
    return (WIRE / f"{name}.json").read_text()


def handshaken(binary: bool) -> Sim:
    sim = Sim(make_config(media=MediaType.AUDIO | MediaType.TRANSCRIPT), auto=False)
    sim.start()
    sim.send(sim.latest(SIG), fixture("signaling_handshake_response"), binary=binary)
    return sim


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_happy_path_from_fixtures(binary: bool) -> None:
    sim = handshaken(binary)
    audio = sim.latest(SocketRole.AUDIO)
    transcript = sim.latest(SocketRole.TRANSCRIPT)
    assert sim.peers[audio].requests[0].target == "/rtms/audio"
    assert sim.peers[audio].requests[0].host == "sjc.zoom.us"
    out = sim.send(audio, fixture("media_handshake_response.zoom_sdk"), binary=binary)
    connected = only(out, ev.MediaConnected)[0]
    confirmed = connected.params.audio
    assert confirmed is not None
    assert (confirmed.codec, confirmed.sample_rate, confirmed.channel) == (
        Codec.OPUS,
        AudioSampleRate.SR_48K,
        AudioChannel.STEREO,
    )
    sim.send(transcript, fixture("media_handshake_response"), binary=binary)
    out = sim.send(audio, fixture("audio_data"), binary=binary)
    assert events_of(out) == [
        ev.AudioReceived(data=bytes(range(8)), user_id=0, user_name=None, timestamp=1727384361000)
    ]
    out = sim.send(transcript, fixture("transcript_data"), binary=binary)
    utterance = only(out, ev.TranscriptReceived)[0]
    assert utterance.text == "Hello, everyone. Café 日本"
    assert (utterance.start_time, utterance.end_time) == (1727384364000, 1727384366500)
    sim.send(audio, fixture("keep_alive_request.zoom_sdk"), binary=binary)
    answer = sim.received(audio)[-1]
    assert (answer.timestamp, answer.sequence) == (1727384360000, 17)  # type: ignore[union-attr]
    out = sim.send(sim.latest(SIG), fixture("event_update.participant_join"), binary=binary)
    joined = only(out, ev.ParticipantsJoined)[0]
    assert [p.user_id for p in joined.participants] == [16778240, 16779264]
    out = sim.send(sim.latest(SIG), fixture("stream_state_update.mock"), binary=binary)
    ended = only(out, ev.SessionEnded)
    assert ended == [
        ev.SessionEnded(
            why=ev.EndReason.STREAM_TERMINATED,
            detail="the stream was terminated",
            stop_reason=StopReason.MEETING_ENDED,
        )
    ]


def test_mock_session_stop_with_a_name_string_ends() -> None:
    sim = handshaken(False)
    out = sim.send(sim.latest(SIG), fixture("session_state_update.mock"))
    ended = only(out, ev.SessionEnded)[0]
    assert ended.why is ev.EndReason.SESSION_STOPPED
    assert ended.stop_reason is StopReason.MEETING_ENDED


def test_duplicate_fixture_backs_off_and_retries() -> None:
    sim = Sim(auto=False)
    sim.start()
    out = sim.send(sim.latest(SIG), fixture("signaling_handshake_response.duplicate"))
    assert only(out, ev.ConnectionFailed)[0].reason is FailureReason.DUPLICATE_SIGNAL
    assert only(out, ev.ReconnectScheduled)[0].delay == 1.5


def test_mock_failure_without_status_code_is_a_rejection() -> None:
    sim = Sim(auto=False)
    sim.start()
    out = sim.send(sim.latest(SIG), fixture("signaling_handshake_response.mock_failure"))
    failed = only(out, ev.ConnectionFailed)[0]
    # No status code, but the reason text names the signature: fatal, no retry.
    assert failed.reason is FailureReason.AUTHENTICATION_FAILED
    assert failed.error.status is None
    assert failed.error.status_reason == "Invalid signature"
    assert "ReconnectScheduled" not in kinds(out)
    assert only(out, ev.SessionEnded)[0].why is ev.EndReason.FATAL_ERROR


def test_unified_with_the_documented_all_key() -> None:
    sim = Sim(make_config(layout=Layout.UNIFIED), auto=False)
    sim.start()
    sim.send(sim.latest(SIG), fixture("signaling_handshake_response"))
    assert sim.peers[sim.latest(SocketRole.ALL)].requests[0].target == "/rtms/all"


def test_deskshare_key_and_region_from_the_zoom_sdk_shaped_reply() -> None:
    sim = Sim(make_config(media=MediaType.DESKSHARE), auto=False)
    sim.start()
    out = sim.send(sim.latest(SIG), fixture("signaling_handshake_response.deskshare_region"))
    connected = only(out, ev.SignalingConnected)[0]
    assert connected.region == "us-west"
    assert sim.peers[sim.latest(SocketRole.DESKSHARE)].requests[0].target == "/d"
