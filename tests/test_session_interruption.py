"""An unnamed MEDIA_CONNECTION_INTERRUPTED (event 7) waits for the lost socket to
show itself before rebuilding anything (issue 10, defect 17).  Explicit time."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sim import Sim, kinds, make_config, only

from rtms_proto import BackoffPolicy, InvalidConfig, Jitter, MediaType
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import SocketId, SocketRole
from rtms_proto.enums import EventType

SIG = SocketRole.SIGNALING
AUDIO = SocketRole.AUDIO
VIDEO = SocketRole.VIDEO
TRANSCRIPT = SocketRole.TRANSCRIPT

UNNAMED = {"msg_type": 6, "event": {"event_type": int(EventType.MEDIA_CONNECTION_INTERRUPTED)}}


def _active(**config: object) -> Sim:
    sim = Sim(make_config(**config))
    sim.start()
    return sim


def _interrupt(sim: Sim) -> list[str]:
    return kinds(sim.send(sim.latest(SIG), UNNAMED))


def _rebuilt(sim: Sim) -> list[MediaType | None]:
    return [e.media_type for e in only(sim.log, ev.ReconnectScheduled)]


def _eof(sim: Sim, sock: SocketId) -> None:
    sim.eof(sock)


def _reset(sim: Sim, sock: SocketId) -> None:
    sim.fail(sock, "connection reset by peer")


def _close_frame(sim: Sim, sock: SocketId) -> None:
    sim.session.receive_data(sock, sim.peers[sock].close(1001, "gone"), now=sim.now)
    sim.run()


@pytest.mark.parametrize("lose", [_eof, _reset, _close_frame], ids=["eof", "reset", "close"])
def test_the_socket_that_shows_itself_lost_within_the_grace_is_the_only_one_rebuilt(
    lose: Callable[[Sim, SocketId], None],
) -> None:
    sim = _active()
    audio, transcript = sim.latest(AUDIO), sim.latest(TRANSCRIPT)
    assert _interrupt(sim) == ["MediaInterrupted"]
    assert sim.session.next_deadline() == 2.0  # the grace, before any liveness deadline
    sim.advance_to(0.5)
    lose(sim, audio)
    sim.advance_to(30.0)  # well past the grace, before any liveness timeout
    assert _rebuilt(sim) == [MediaType.AUDIO]
    assert transcript not in sim.closed
    assert len(sim.socks(TRANSCRIPT)) == 1
    assert len(sim.socks(AUDIO)) == 2


def test_without_a_loss_the_sockets_silent_during_the_grace_are_rebuilt() -> None:
    sim = _active(media=MediaType.AUDIO | MediaType.VIDEO | MediaType.TRANSCRIPT)
    audio, video, transcript = sim.latest(AUDIO), sim.latest(VIDEO), sim.latest(TRANSCRIPT)
    _interrupt(sim)
    sim.advance_to(1.0)
    sim.send(audio, m.AudioData(data=b"\x00\x00" * 320, timestamp=1, user_id=1))
    sim.send(transcript, m.KeepAliveRequest(timestamp=1))
    assert _rebuilt(sim) == []
    sim.advance_to(2.0)
    assert _rebuilt(sim) == [MediaType.VIDEO]
    assert video in sim.closed
    assert audio not in sim.closed and transcript not in sim.closed


def test_when_every_socket_delivered_during_the_grace_all_are_rebuilt() -> None:
    sim = _active()
    audio, transcript = sim.latest(AUDIO), sim.latest(TRANSCRIPT)
    _interrupt(sim)
    sim.send(audio, m.KeepAliveRequest(timestamp=1))
    sim.send(transcript, m.KeepAliveRequest(timestamp=1))
    sim.advance_to(2.0)
    assert set(_rebuilt(sim)) == {MediaType.AUDIO, MediaType.TRANSCRIPT}


def test_a_second_unnamed_event_does_not_extend_the_grace() -> None:
    sim = _active(interruption_grace=3.0)
    _interrupt(sim)
    sim.advance_to(2.0)
    _interrupt(sim)
    assert sim.session.next_deadline() == 3.0
    sim.advance_to(3.0)
    assert len(_rebuilt(sim)) == 2


def test_a_zero_grace_rebuilds_at_the_next_timer_call() -> None:
    sim = _active(interruption_grace=0.0)
    _interrupt(sim)
    assert sim.session.next_deadline() == 0.0
    sim.advance_to(0.0)
    assert len(_rebuilt(sim)) == 2


def test_losing_signaling_during_the_grace_ends_it() -> None:
    sim = _active()
    _interrupt(sim)
    sim.advance_to(1.0)
    sim.eof(sim.latest(SIG))  # every socket comes back with signaling
    out = sim.advance_to(10.0)
    assert kinds(out).count("MediaConnected") == 2
    assert [e.scope for e in only(sim.log, ev.ReconnectScheduled)] == [ev.ReconnectScope.SIGNALING]


def test_a_named_event_still_rebuilds_its_socket_at_once() -> None:
    sim = _active()
    event = {"msg_type": 6, "event": {"event_type": 7, "media_type": int(MediaType.AUDIO)}}
    sim.send(sim.latest(SIG), event)
    assert _rebuilt(sim) == [MediaType.AUDIO]


def test_a_rebuild_that_gives_up_ends_the_session_once() -> None:
    """Two sockets in their last attempt: the first that gives up ends the session."""
    policy = BackoffPolicy(jitter=Jitter.NONE, max_attempts=1)
    sim = _active(media_backoff=policy)
    for role in (AUDIO, TRANSCRIPT):
        sim.eof(sim.latest(role))
    sim.advance_to(1.0)  # both reconnected, both still in their episode
    _interrupt(sim)
    sim.advance_to(3.0)
    ended = only(sim.log, ev.SessionEnded)
    assert len(ended) == 1
    assert ended[0].why is ev.EndReason.RECONNECT_EXHAUSTED


@pytest.mark.parametrize("grace", [-1.0, float("nan"), float("inf")])
def test_the_grace_must_be_a_finite_non_negative_number(grace: float) -> None:
    with pytest.raises(InvalidConfig, match="interruption_grace"):
        make_config(interruption_grace=grace)
