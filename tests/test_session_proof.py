"""A reconnect is over only when the new socket proves itself (issue 10, defect 1).

A server that completes the handshake and then drops (EOF, close 1000, reset,
or silence until the liveness timeout) must not reset the backoff: the episode,
with its window and attempt limits, goes on until the socket has stayed open
for ``BackoffPolicy.settle`` seconds and received a message after its
handshake.  All in explicit time.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sim import Sim, events_of, make_config, only

from rtms_proto import BackoffPolicy, InvalidConfig, Jitter, SessionPhase
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import SocketId, SocketRole

SIG = SocketRole.SIGNALING
AUDIO = SocketRole.AUDIO


def _eof(sim: Sim, sock: SocketId) -> None:
    sim.eof(sock)


def _close_1000(sim: Sim, sock: SocketId) -> None:
    sim.session.receive_data(sock, sim.peers[sock].close(1000, "bye"), now=sim.now)
    sim.run()


def _reset(sim: Sim, sock: SocketId) -> None:
    sim.fail(sock, "connection reset by peer")


DROPS: dict[str, Callable[[Sim, SocketId], None]] = {
    "eof": _eof,
    "close-1000": _close_1000,
    "reset": _reset,
}


def _live(sim: Sim, until: float) -> None:
    """A healthy server: a keep-alive request on every open socket every 10 s."""
    while sim.now + 10.0 <= until:
        sim.advance(10.0)
        for sock in list(sim.open):
            if sock in sim.open:
                sim.send(sock, m.KeepAliveRequest(timestamp=int(sim.now)))
    sim.advance_to(until)


def _scheduled(sim: Sim, scope: ev.ReconnectScope) -> list[ev.ReconnectScheduled]:
    return [e for e in only(sim.log, ev.ReconnectScheduled) if e.scope is scope]


def _ended(sim: Sim) -> ev.SessionEnded:
    ends = only(sim.log, ev.SessionEnded)
    assert len(ends) == 1
    return ends[0]


def _over(sim: Sim) -> bool:
    return sim.session.ended


def _flap_until_ended(sim: Sim, role: SocketRole, drop: Callable[[Sim, SocketId], None]) -> None:
    """Drop every new socket of ``role`` right after its handshake, until the session ends."""
    for _ in range(1000):  # far more than any policy allows: the bound is the session's
        if _over(sim):
            return
        sock = sim.latest(role)
        if sock in sim.open:
            drop(sim, sock)
            if _over(sim):
                return
        deadline = sim.session.next_deadline()
        assert deadline is not None
        sim.advance_to(deadline)
    raise AssertionError("the session reconnected forever")


@pytest.mark.parametrize("how", sorted(DROPS))
def test_signaling_dropped_right_after_each_handshake_ends_within_the_window(how: str) -> None:
    sim = Sim(make_config(signaling_backoff=BackoffPolicy(max_attempts=None, window=60.0)))
    sim.start()
    sim.now = 3.0
    _flap_until_ended(sim, SIG, DROPS[how])
    ended = _ended(sim)
    assert ended.why is ev.EndReason.RECONNECT_EXHAUSTED
    assert sim.now <= 3.0 + 60.0
    sockets = len(sim.socks(SIG))
    # Equal jitter at u=0.5: retries after 0.75, 1.5, 3 s, then every 6 s (the
    # 8 s cap) until the 60 s window closes; then the first socket's loss ends it.
    assert sockets == 1 + 3 + 10
    assert f"kept dropping right after its handshake: {sockets - 1} connections in" in (
        ended.detail
    )
    assert [e.attempt for e in _scheduled(sim, ev.ReconnectScope.SIGNALING)] == list(
        range(1, sockets)
    )


def test_signaling_flapping_ends_at_the_attempt_limit_with_the_default_policy() -> None:
    sim = Sim()
    sim.start()
    _flap_until_ended(sim, SIG, _eof)
    ended = _ended(sim)
    assert ended.why is ev.EndReason.RECONNECT_EXHAUSTED
    # 1 first socket + 6 retries, each completing its handshake, all in one episode.
    assert len(sim.socks(SIG)) == 7
    assert ended.detail.startswith(
        "gave up reconnecting signaling after 6 attempts: it kept dropping right after"
        " its handshake: 6 connections in 23.2 s:"
    )
    assert len(only(sim.log, ev.SignalingConnected)) == 7


def test_media_dropped_right_after_each_handshake_ends_the_session() -> None:
    # 30 s (older servers' window): shorter than signaling's 35 s liveness timeout.
    policy = BackoffPolicy(max_attempts=None, window=30.0)
    sim = Sim(make_config(media_backoff=policy))
    sim.start()
    _flap_until_ended(sim, AUDIO, _close_1000)
    ended = _ended(sim)
    assert ended.why is ev.EndReason.RECONNECT_EXHAUSTED
    assert ended.detail.startswith("gave up reconnecting media (audio) after")
    assert "kept dropping right after its handshake" in ended.detail
    assert sim.now <= 30.0
    assert len(sim.socks(SIG)) == 1


def test_a_silent_server_never_proves_a_reconnect() -> None:
    """Handshake, then nothing until the liveness timeout: the episode runs on."""
    policy = BackoffPolicy(jitter=Jitter.NONE, max_attempts=None, window=60.0)
    sim = Sim(make_config(signaling_backoff=policy))
    sim.start()
    sim.eof(sim.latest(SIG))  # the episode starts at 0
    for _ in range(100):
        if sim.session.ended:
            break
        deadline = sim.session.next_deadline()
        assert deadline is not None
        sim.advance_to(deadline)  # handshakes complete; nothing is ever sent after them
    ended = _ended(sim)
    assert ended.why is ev.EndReason.RECONNECT_EXHAUSTED
    # Retries at 1 s and 1 + 35 + 2 s, each socket silent for 35 s; the one due
    # at 38 + 35 + 4 = 77 s is past the 60 s window.
    assert [e.attempt for e in _scheduled(sim, ev.ReconnectScope.SIGNALING)] == [1, 2]
    assert sim.now == 1.0 + 35 + 2.0 + 35
    assert "2 connections in 73 s" in ended.detail
    assert "keepalive_timeout" in ended.detail


def test_a_message_proves_the_socket_only_once_it_has_stayed_open_for_settle() -> None:
    policy = BackoffPolicy(jitter=Jitter.NONE, settle=15.0)
    sim = Sim(make_config(signaling_backoff=policy))
    sim.start()
    sim.eof(sim.latest(SIG))
    sim.advance_to(1.0)  # reconnected, on probation until 16 s
    assert sim.session.next_deadline() == 16.0
    sig = sim.latest(SIG)
    sim.now = 2.0
    sim.send(sig, m.KeepAliveRequest(timestamp=1))
    sim.advance_to(15.9)
    sim.eof(sig)  # before the settle time: not proved, the episode goes on
    assert _scheduled(sim, ev.ReconnectScope.SIGNALING)[-1].attempt == 2


def test_settle_passing_without_a_message_waits_for_the_first_message() -> None:
    policy = BackoffPolicy(jitter=Jitter.NONE, settle=15.0)
    sim = Sim(make_config(signaling_backoff=policy))
    sim.start()
    sim.eof(sim.latest(SIG))
    sim.advance_to(1.0)
    sig = sim.latest(SIG)
    sim.advance_to(20.0)  # settled, but nothing received yet
    assert sim.session.next_deadline() == 1.0 + 35.0  # only the liveness deadline is left
    sim.send(sig, m.KeepAliveRequest(timestamp=1))  # proved now
    sim.now = 25.0
    sim.eof(sig)
    assert _scheduled(sim, ev.ReconnectScope.SIGNALING)[-1].attempt == 1


def test_a_healthy_reconnect_proves_itself_and_a_later_loss_starts_a_fresh_episode() -> None:
    policy = BackoffPolicy(jitter=Jitter.NONE, max_attempts=2, window=60.0, settle=15.0)
    sim = Sim(make_config(media_backoff=policy))
    sim.start()
    sim.eof(sim.latest(AUDIO))
    sim.advance_to(1.0)  # attempt 1 completes
    audio = sim.latest(AUDIO)
    for second in range(2, 17):
        sim.now = float(second)
        sim.send(audio, m.AudioData(data=b"\x00\x00" * 320, timestamp=second * 1000))
    _live(sim, 16.0)
    # Proved: losses at 105 s, 205 s and 305 s each start a fresh episode
    # (window and attempts), though the policy allows 2 attempts per 60 s episode.
    for t in (105.0, 205.0, 305.0):
        _live(sim, t)
        sim.eof(sim.latest(AUDIO))
        assert _scheduled(sim, ev.ReconnectScope.MEDIA)[-1].attempt == 1
        _live(sim, t + 20.0)
    assert len(sim.socks(SIG)) == 1
    assert len(sim.socks(AUDIO)) == 5
    assert not sim.session.ended
    assert sim.session.state is SessionPhase.ACTIVE


def test_the_first_connection_needs_no_proof() -> None:
    sim = Sim()
    sim.start()
    assert sim.session.next_deadline() == 35.0  # liveness only, no settle deadline
    sim.eof(sim.latest(SIG))
    assert _scheduled(sim, ev.ReconnectScope.SIGNALING)[-1].attempt == 1


def test_ending_during_probation_leaves_no_deadline() -> None:
    sim = Sim()
    sim.start()
    sim.eof(sim.latest(SIG))
    sim.advance_to(1.0)
    sim.session.stop(now=sim.now)
    sim.run()
    for sock in list(sim.open):
        sim.eof(sock)
    assert sim.session.ended
    assert sim.session.next_deadline() is None


def test_a_socket_lost_during_probation_drops_its_proof() -> None:
    """Signaling lost while media is on probation: the stale proof goes quietly."""
    policy = BackoffPolicy(jitter=Jitter.NONE, settle=15.0)
    sim = Sim(make_config(media_backoff=policy))
    sim.start()
    sim.eof(sim.latest(AUDIO))
    sim.advance_to(1.0)  # audio on probation until 16 s
    sim.now = 2.0
    sim.eof(sim.latest(SIG))  # media closed with signaling
    out = sim.advance_to(30.0)
    assert not sim.session.ended
    assert [e.attempt for e in only(out, ev.ReconnectStarted)] == [1]
    assert all(isinstance(e, ev.Event) for e in events_of(out))


@pytest.mark.parametrize("settle", [-1.0, float("nan"), float("inf")])
def test_settle_must_be_a_finite_non_negative_number(settle: float) -> None:
    with pytest.raises(InvalidConfig, match="settle"):
        BackoffPolicy(settle=settle)


def test_settle_zero_proves_on_the_first_message() -> None:
    policy = BackoffPolicy(jitter=Jitter.NONE, settle=0.0)
    sim = Sim(make_config(signaling_backoff=policy))
    sim.start()
    sim.eof(sim.latest(SIG))
    sim.advance_to(1.0)
    sim.send(sim.latest(SIG), m.KeepAliveRequest(timestamp=1))
    sim.now = 2.0
    sim.eof(sim.latest(SIG))
    assert _scheduled(sim, ev.ReconnectScope.SIGNALING)[-1].attempt == 1
