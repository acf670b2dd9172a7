"""A media socket whose handshake is never answered but which carries media (Zoom's
mock server never sends msg 4; issue 10, defect 20): the first media message
accepts the socket, unconfirmed.  Explicit time."""

from __future__ import annotations

from sim import Sim, kinds, make_config, only

from rtms_proto import AudioParams, MediaParams, MediaType, SessionPhase, TranscriptParams
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import SocketId, SocketRole
from rtms_proto.enums import FailureReason

SIG = SocketRole.SIGNALING
AUDIO = SocketRole.AUDIO
TRANSCRIPT = SocketRole.TRANSCRIPT


class MuteMedia(Sim):
    """Answers signaling handshakes only, like Zoom's mock server."""

    def auto_reply(self, sock: SocketId, msg: m.Message | m.DecodeError) -> m.Message | None:
        if isinstance(msg, m.MediaHandshakeRequest):
            return None
        return super().auto_reply(sock, msg)


def _audio(ts: int) -> m.AudioData:
    return m.AudioData(data=b"\x01\x00" * 320, user_id=7, timestamp=ts)


def _client_readies(sim: Sim) -> int:
    return sum(isinstance(x, m.ClientReady) for x in sim.received(sim.latest(SIG)))


def test_media_before_the_handshake_answer_accepts_the_socket_unconfirmed() -> None:
    sim = MuteMedia(make_config(media=MediaType.AUDIO))
    sim.start()
    audio = sim.latest(AUDIO)
    assert only(sim.log, ev.MediaConnected) == []
    assert _client_readies(sim) == 0
    sim.now = 0.5
    out = sim.send(audio, _audio(1000))
    assert kinds(out) == ["MediaConnected", "AudioReceived"]
    connected = only(out, ev.MediaConnected)[0]
    assert connected == ev.MediaConnected(
        sock=audio,
        media_type=MediaType.AUDIO,
        params=MediaParams(audio=AudioParams()),
        confirmed=False,
    )
    assert only(out, ev.AudioReceived)[0].timestamp == 1000
    assert _client_readies(sim) == 1
    # Past the 10 s handshake timeout: media keeps the socket alive...
    for t in range(1, 20):
        sim.now = 0.5 + t
        sim.send(audio, _audio(1000 + 20 * t))
    assert not only(sim.log, ev.ConnectionFailed)
    assert len(only(sim.log, ev.AudioReceived)) == 20
    assert sim.session.state is SessionPhase.ACTIVE
    # ...and the keep-alive rule applies from then on: 35 s of silence end it.
    last = sim.now
    sim.now = last + 1.0
    sim.send(sim.latest(SIG), m.KeepAliveRequest(timestamp=1))
    assert sim.advance_to(last + 34.9) == []
    out = sim.advance_to(last + 35.0)
    failed = only(out, ev.ConnectionFailed)
    assert [(f.sock, f.reason) for f in failed] == [(audio, FailureReason.KEEPALIVE_TIMEOUT)]


def test_transcript_data_accepts_its_socket_too() -> None:
    sim = MuteMedia(make_config(media=MediaType.TRANSCRIPT))
    sim.start()
    out = sim.send(sim.latest(TRANSCRIPT), m.TranscriptData(text="hello", user_id=3))
    assert kinds(out) == ["MediaConnected", "TranscriptReceived"]
    connected = only(out, ev.MediaConnected)[0]
    assert connected.params == MediaParams(transcript=TranscriptParams())
    assert not connected.confirmed
    assert _client_readies(sim) == 1


def test_an_answered_handshake_is_confirmed() -> None:
    sim = Sim(make_config(media=MediaType.AUDIO))
    sim.start()
    assert [c.confirmed for c in only(sim.log, ev.MediaConnected)] == [True]


def test_a_late_answer_after_an_unconfirmed_accept_is_reported_malformed() -> None:
    sim = MuteMedia(make_config(media=MediaType.AUDIO))
    sim.start()
    audio = sim.latest(AUDIO)
    sim.send(audio, _audio(1))
    out = sim.send(audio, m.MediaHandshakeResponse(status_code=0))
    assert kinds(out) == ["MalformedMessage"]
    assert sim.session.state is SessionPhase.ACTIVE


def test_media_on_a_signaling_socket_during_its_handshake_only_passes_on() -> None:
    sim = Sim(make_config(media=MediaType.AUDIO), auto=False)
    sim.start()
    sig = sim.latest(SIG)
    out = sim.send(sig, _audio(1)) + sim.send(sig, m.TranscriptData(text="x"))
    assert kinds(out) == ["AudioReceived", "TranscriptReceived"]
    assert sim.session.state is SessionPhase.CONNECTING
    assert not only(sim.log, ev.SignalingConnected)
