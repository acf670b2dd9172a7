"""Session: the two-phase flow, layouts, reconnect rules and endings, in explicit time."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from sim import (
    CREDENTIALS,
    MEDIA_URLS,
    SIGNALING_URL,
    STREAM,
    Sim,
    events_of,
    kinds,
    make_config,
    only,
)

from rtms_proto import (
    AudioParams,
    BackoffPolicy,
    ConnectionClosed,
    ConnectionOptions,
    DisallowedHost,
    InvalidConfig,
    Jitter,
    Layout,
    LocalProtocolError,
    MediaParams,
    MediaType,
    Session,
    SessionPhase,
    VideoParams,
    handshake_signature,
)
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import CloseSocket, OpenSocket, SocketId, SocketRole
from rtms_proto.enums import (
    DataOption,
    EventType,
    FailureReason,
    SessionState,
    StatusCode,
    StopReason,
    StreamState,
)

SIG = SocketRole.SIGNALING
AUDIO = SocketRole.AUDIO
TRANSCRIPT = SocketRole.TRANSCRIPT


def active_sim(**config: object) -> Sim:
    sim = Sim(make_config(**config))
    sim.start()
    return sim


def audio(ts: int, data: bytes = b"\x01\x00" * 320, user_id: int = 0) -> m.AudioData:
    return m.AudioData(data=data, user_id=user_id, timestamp=ts)


# --- the two-phase flow ---------------------------------------------------------


def test_happy_path_split_opens_signaling_then_one_socket_per_type() -> None:
    sim = Sim()
    out = sim.start()
    assert kinds(out) == [
        "open signaling#1",
        "SignalingConnected",
        "open audio#2",
        "open transcript#3",
        "MediaConnected",
        "MediaConnected",
    ]
    assert sim.session.state is SessionPhase.ACTIVE
    sig = sim.received(sim.latest(SIG))
    signature = handshake_signature(
        client_id="client-id",
        client_secret="client-secret-value",
        instance_id="meeting-uuid==",
        rtms_stream_id="stream-1",
    )
    assert sig == [
        m.SignalingHandshakeRequest(
            instance_id="meeting-uuid==",
            rtms_stream_id="stream-1",
            signature=signature,
            id_keys=("meeting_uuid",),
            protocol_version=1,
            sequence=1,
            client_agent="rtms-proto",
        ),
        m.EventSubscription(
            events=tuple(m.EventSubscriptionItem(event_type=t, subscribe=True) for t in (2, 3, 4))
        ),
        m.ClientReady(rtms_stream_id="stream-1"),
        m.ClientReady(rtms_stream_id="stream-1"),
    ]
    audio_req = sim.received(sim.latest(AUDIO))[0]
    assert isinstance(audio_req, m.MediaHandshakeRequest)
    assert audio_req.media_type is MediaType.AUDIO
    assert audio_req.media_params == MediaParams(audio=AudioParams())
    assert audio_req.signature == signature
    assert sim.peers[sim.latest(AUDIO)].requests[0].target == "/audio"


def test_media_connected_reports_the_confirmed_params_from_the_reply() -> None:
    sim = Sim(make_config(media=MediaType.AUDIO), auto=False)
    sim.start()
    sig = sim.latest(SIG)
    sim.send(sig, m.SignalingHandshakeResponse(status_code=0, media_urls=MEDIA_URLS))
    audio_sock = sim.latest(AUDIO)
    confirmed = MediaParams(audio=AudioParams(sample_rate=3, channel=2))
    out = sim.send(audio_sock, m.MediaHandshakeResponse(status_code=0, media_params=confirmed))
    assert events_of(out) == [
        ev.MediaConnected(sock=audio_sock, media_type=MediaType.AUDIO, params=confirmed)
    ]


def test_unified_layout_opens_one_all_socket_with_every_requested_param() -> None:
    sim = active_sim(layout=Layout.UNIFIED, media=MediaType.AUDIO | MediaType.VIDEO)
    assert [s.role for s in sim.order] == [SIG, SocketRole.ALL]
    req = sim.received(sim.latest(SocketRole.ALL))[0]
    assert isinstance(req, m.MediaHandshakeRequest)
    assert req.media_type is MediaType.ALL
    assert req.media_params == MediaParams(audio=AudioParams(), video=VideoParams())
    assert sim.peers[sim.order[1]].requests[0].target == "/all"
    # Video wanted: video on/off events are subscribed too.
    sub = sim.received(sim.latest(SIG))[1]
    assert isinstance(sub, m.EventSubscription)
    assert [i.event_type for i in sub.events] == [2, 3, 4, 8, 9]


def test_share_url_is_found_under_sharescreen_and_chat_under_chat() -> None:
    urls = {"sharescreen": MEDIA_URLS["deskshare"], "chat": MEDIA_URLS["chat"]}
    sim = Sim(make_config(media=MediaType.DESKSHARE | MediaType.CHAT), media_urls=urls)
    out = sim.start()
    assert kinds(out)[2:] == ["open deskshare#2", "open chat#3", "MediaConnected", "MediaConnected"]
    sub = sim.received(sim.latest(SIG))[1]
    assert isinstance(sub, m.EventSubscription)
    assert [i.event_type for i in sub.events] == [2, 3, 4, 5, 6]


def test_missing_media_url_is_reported_before_any_media_socket_opens() -> None:
    sim = Sim(media_urls={"transcript": MEDIA_URLS["transcript"]})
    out = sim.start()
    assert kinds(out) == [
        "open signaling#1",
        "SignalingConnected",
        "MediaUnavailable",
        "open transcript#2",
        "MediaConnected",
    ]
    unavailable = events_of(out)[1]
    assert unavailable == ev.MediaUnavailable(
        media_type=MediaType.AUDIO,
        detail="the server offered no URL for audio (offered: transcript)",
    )


def test_refused_media_host_is_unavailable_and_nothing_usable_ends_the_session() -> None:
    sim = Sim(
        make_config(media=MediaType.AUDIO),
        media_urls={"audio": "wss://media.evil.example/audio"},
    )
    out = sim.start()
    events = events_of(out)
    assert isinstance(events[1], ev.MediaUnavailable)
    assert events[1].detail.startswith("refused host")
    assert isinstance(events[-1], ev.SessionEnded)
    assert events[-1].why is ev.EndReason.FATAL_ERROR
    assert events[-1].error is not None
    assert events[-1].error.reason is FailureReason.MEDIA_NOT_AVAILABLE
    assert sim.session.ended


def test_malformed_media_url_is_unavailable() -> None:
    sim = Sim(
        media_urls={"audio": "http://rtms-sjc1.zoom.us/x", "transcript": MEDIA_URLS["transcript"]}
    )
    out = sim.start()
    unavailable = events_of(out)[1]
    assert isinstance(unavailable, ev.MediaUnavailable)
    assert unavailable.detail.startswith("bad URL")


def test_unified_without_an_all_url_ends_with_media_not_available() -> None:
    sim = Sim(make_config(layout=Layout.UNIFIED), media_urls={"audio": MEDIA_URLS["audio"]})
    out = sim.start()
    assert kinds(out)[-4:] == [
        "MediaUnavailable",
        "close signaling#1",
        "SocketClosed",
        "SessionEnded",
    ]


# --- media reconnects ------------------------------------------------------------------


def test_lost_media_socket_reconnects_alone_then_sends_client_ready_again() -> None:
    sim = active_sim()
    audio1 = sim.latest(AUDIO)
    sim.now = 5.0
    out = sim.eof(audio1)
    assert kinds(out) == ["ConnectionFailed", f"close {audio1}", "ReconnectScheduled"]
    assert events_of(out)[1] == ev.ReconnectScheduled(
        scope=ev.ReconnectScope.MEDIA,
        media_type=MediaType.AUDIO,
        attempt=1,
        delay=0.75,
        reason=FailureReason.CONNECTION_LOST,
    )
    assert sim.session.next_deadline() == 5.75
    out = sim.advance(1.0)
    assert kinds(out) == [
        "ReconnectStarted",
        "open audio#4",
        "MediaConnected",
        "ReconnectCompleted",
    ]
    assert events_of(out)[-1] == ev.ReconnectCompleted(
        scope=ev.ReconnectScope.MEDIA, media_type=MediaType.AUDIO, attempts=1
    )
    sig_msgs = sim.received(sim.latest(SIG))
    assert sig_msgs[-1] == m.ClientReady(rtms_stream_id="stream-1")
    assert sum(isinstance(x, m.ClientReady) for x in sig_msgs) == 3
    assert len(sim.socks(SIG)) == 1
    assert len(sim.socks(TRANSCRIPT)) == 1


def test_replayed_audio_after_a_media_reconnect_is_not_delivered_twice() -> None:
    sim = active_sim()
    a1 = sim.latest(AUDIO)
    got = sim.send(a1, audio(1000)) + sim.send(a1, audio(1020))
    assert [e.timestamp for e in only(got, ev.AudioReceived)] == [1000, 1020]
    sim.eof(a1)
    sim.advance(1.0)
    a2 = sim.latest(AUDIO)
    out = [o for ts in (1000, 1020, 1040, 1060) for o in sim.send(a2, audio(ts))]
    assert [e.timestamp for e in only(out, ev.AudioReceived)] == [1040, 1060]


def test_first_socket_keeps_out_of_order_packets() -> None:
    sim = active_sim()
    a1 = sim.latest(AUDIO)
    out = (
        sim.send(a1, audio(1020)) + sim.send(a1, audio(1000)) + sim.send(a1, m.AudioData(data=b"x"))
    )
    assert [e.timestamp for e in only(out, ev.AudioReceived)] == [1020, 1000, None]


def test_media_liveness_timeout_triggers_a_media_reconnect() -> None:
    sim = active_sim()
    sig, audio1, t1 = sim.latest(SIG), sim.latest(AUDIO), sim.latest(TRANSCRIPT)
    sim.send(audio1, m.KeepAliveRequest(timestamp=1, sequence=1))
    assert sim.received(audio1)[-1] == m.KeepAliveResponse(timestamp=1, sequence=1)
    sim.now = 10.0
    sim.send(audio1, audio(1))
    sim.now = 20.0
    sim.send(sig, m.KeepAliveRequest(timestamp=2))
    sim.send(t1, m.KeepAliveRequest(timestamp=3))
    assert sim.session.next_deadline() == 45.0
    assert sim.advance_to(44.9) == []
    out = sim.advance_to(45.0)
    failed = events_of(out)[0]
    assert isinstance(failed, ev.ConnectionFailed)
    assert failed.sock == audio1
    assert failed.reason is FailureReason.KEEPALIVE_TIMEOUT
    assert str(failed.error) == "keepalive_timeout: nothing received for 35 s"
    assert isinstance(events_of(out)[1], ev.ReconnectScheduled)


def test_server_close_frame_on_media_reconnects_that_socket() -> None:
    sim = active_sim()
    t1 = sim.latest(TRANSCRIPT)
    sim.session.receive_data(t1, sim.peers[t1].close(1001, "going away"), now=sim.now)
    out = sim.run()
    assert events_of(out)[0] == ev.SocketClosed(
        sock=t1, by_peer=True, code=1001, reason="going away"
    )
    assert isinstance(events_of(out)[1], ev.ReconnectScheduled)


def test_media_connection_interrupted_event_naming_a_type_rebuilds_only_that_socket() -> None:
    sim = active_sim()
    sig = sim.latest(SIG)
    a1, t1 = sim.latest(AUDIO), sim.latest(TRANSCRIPT)
    event = {"msg_type": 6, "event": {"event_type": 7, "timestamp": 5, "media_type": 8}}
    out = sim.send(sig, event)
    assert kinds(out)[:2] == ["MediaInterrupted", "ReconnectScheduled"]
    assert t1 in sim.closed
    assert a1 not in sim.closed
    sim.advance(1.0)
    assert len(sim.socks(TRANSCRIPT)) == 2
    assert len(sim.socks(AUDIO)) == 1


def test_media_connection_interrupted_without_a_name_rebuilds_every_media_socket() -> None:
    """When no socket shows itself lost within the grace and all were silent: all."""
    sim = active_sim()
    sig = sim.latest(SIG)
    out = sim.send(sig, {"msg_type": 6, "event": {"event_type": 7, "timestamp": 5}})
    assert kinds(out) == ["MediaInterrupted"]
    out = sim.advance(2.0)  # the default interruption_grace
    assert kinds(out).count("ReconnectScheduled") == 2
    sim.advance(1.0)
    assert len(sim.socks(TRANSCRIPT)) == 2
    assert len(sim.socks(AUDIO)) == 2
    assert len(sim.socks(SIG)) == 1


def test_media_interrupted_while_a_socket_is_already_down_leaves_its_own_reconnect() -> None:
    sim = active_sim()
    sig, a1 = sim.latest(SIG), sim.latest(AUDIO)
    sim.hold_open.add(AUDIO)
    sim.eof(a1)
    sim.advance(1.0)  # audio#4 is opening, not open
    out = sim.send(sig, {"msg_type": 6, "event": {"event_type": 7, "timestamp": 5}})
    assert kinds(out) == ["MediaInterrupted"]


def test_media_reconnects_give_up_after_the_attempt_limit() -> None:
    policy = BackoffPolicy(
        initial=1.0, factor=2.0, cap=8.0, jitter=Jitter.NONE, max_attempts=2, window=None
    )
    sim = active_sim(media_backoff=policy)
    sim.hold_open.add(AUDIO)
    sim.eof(sim.latest(AUDIO))
    sim.advance(1.0)
    sim.fail(sim.latest(AUDIO), "refused")
    out = sim.advance(2.0)
    sim.run()
    assert kinds(out)[:2] == ["ReconnectStarted", f"open {sim.latest(AUDIO)}"]
    out = sim.fail(sim.latest(AUDIO), "refused")
    ended = events_of(out)[-1]
    assert isinstance(ended, ev.SessionEnded)
    assert ended.why is ev.EndReason.RECONNECT_EXHAUSTED
    assert ended.detail.startswith("gave up reconnecting media (audio) after 2 attempts")


# --- signaling reconnects ----------------------------------------------------------------


def test_lost_signaling_rebuilds_everything_and_resubscribes_events() -> None:
    sim = active_sim()
    sig1, a1, t1 = sim.latest(SIG), sim.latest(AUDIO), sim.latest(TRANSCRIPT)
    out = sim.fail(sig1)
    assert kinds(out)[:5] == [
        "ConnectionFailed",
        f"close {sig1}",
        "ReconnectScheduled",
        f"close {a1}",  # after the media close handshakes
        "SocketClosed",
    ]
    assert sim.session.state is SessionPhase.RECONNECTING
    assert {a1, t1} <= set(sim.closed)
    out = sim.advance(1.0)
    assert kinds(out) == [
        "ReconnectStarted",
        "open signaling#4",
        "SignalingConnected",
        "ReconnectCompleted",
        "open audio#5",
        "open transcript#6",
        "MediaConnected",
        "MediaConnected",
    ]
    sig2 = sim.latest(SIG)
    types = [type(x).__name__ for x in sim.received(sig2)]
    assert types == ["SignalingHandshakeRequest", "EventSubscription", "ClientReady", "ClientReady"]


def test_media_retry_in_flight_is_dropped_when_signaling_goes_too() -> None:
    sim = active_sim()
    sim.eof(sim.latest(AUDIO))
    sim.fail(sim.latest(SIG))
    out = sim.advance(1.0)
    assert kinds(out).count("ReconnectStarted") == 1
    assert kinds(out).count("ReconnectCompleted") == 1
    assert [s.role for s in sim.order[-3:]] == [SIG, AUDIO, TRANSCRIPT]


def test_duplicate_signal_rejection_backs_off_on_its_own_schedule() -> None:
    sim = Sim(auto=False, config=make_config(media=MediaType.AUDIO))
    sim.start()
    dup = m.SignalingHandshakeResponse(status_code=8, reason="duplicate signal request")
    out = sim.send(sim.latest(SIG), dup)
    failed = events_of(out)[0]
    assert isinstance(failed, ev.ConnectionFailed)
    assert failed.reason is FailureReason.DUPLICATE_SIGNAL
    assert failed.error.status is StatusCode.DUPLICATE_SIGNAL_REQUEST
    assert events_of(out)[1] == ev.ReconnectScheduled(
        scope=ev.ReconnectScope.SIGNALING,
        media_type=None,
        attempt=1,
        delay=1.5,
        reason=FailureReason.DUPLICATE_SIGNAL,
    )
    sim.advance(1.5)
    out = sim.send(sim.latest(SIG), dup)
    assert only(out, ev.ReconnectScheduled)[0].delay == 3.0
    sim.advance(3.0)
    out = sim.send(
        sim.latest(SIG), m.SignalingHandshakeResponse(status_code=0, media_urls=MEDIA_URLS)
    )
    assert kinds(out)[:2] == ["SignalingConnected", "ReconnectCompleted"]


def test_duplicate_signal_by_reason_text_on_the_legacy_table() -> None:
    sim = Sim(auto=False)
    sim.start()
    out = sim.send(
        sim.latest(SIG),
        m.SignalingHandshakeResponse(status_code=17, reason="Duplicate Signal Request"),
    )
    assert only(out, ev.ConnectionFailed)[0].reason is FailureReason.DUPLICATE_SIGNAL


def test_fatal_handshake_status_ends_without_reconnecting() -> None:
    sim = Sim(auto=False)
    sim.start()
    out = sim.send(
        sim.latest(SIG), m.SignalingHandshakeResponse(status_code=3, reason="invalid sig")
    )
    assert kinds(out) == ["ConnectionFailed", "close signaling#1", "SessionEnded"]
    ended = events_of(out)[-1]
    assert isinstance(ended, ev.SessionEnded)
    assert ended.why is ev.EndReason.FATAL_ERROR
    assert ended.error is not None
    assert ended.error.reason is FailureReason.AUTHENTICATION_FAILED
    assert not ended.error.retryable
    assert "client-secret-value" not in repr(ended) + str(ended.error)
    assert sim.session.next_deadline() is None
    assert sim.session.drain() == []


def test_fatal_media_status_ends_the_session() -> None:
    sim = Sim(auto=False, config=make_config(media=MediaType.AUDIO))
    sim.start()
    sim.send(sim.latest(SIG), m.SignalingHandshakeResponse(status_code=0, media_urls=MEDIA_URLS))
    out = sim.send(
        sim.latest(AUDIO), m.MediaHandshakeResponse(status_code=9, reason="no audio scope")
    )
    ended = events_of(out)[-1]
    assert isinstance(ended, ev.SessionEnded)
    assert ended.error is not None
    assert ended.error.reason is FailureReason.MEDIA_NOT_AVAILABLE
    assert "close signaling#1" in kinds(out)


def test_signaling_window_limits_retries_measured_from_the_first_failure() -> None:
    policy = BackoffPolicy(
        initial=4.0, factor=2.0, cap=8.0, jitter=Jitter.NONE, max_attempts=None, window=10.0
    )
    sim = Sim(make_config(signaling_backoff=policy))
    sim.hold_open.add(SIG)
    sim.start()
    first = sim.latest(SIG)
    out = sim.fail(first, "refused")
    assert only(out, ev.ReconnectScheduled)[-1].delay == 4.0
    sim.advance(4.0)
    out = sim.fail(sim.latest(SIG), "refused")
    assert only(out, ev.ReconnectScheduled)[-1].delay == 6.0  # clamped to the window end
    sim.advance(6.0)
    out = sim.fail(sim.latest(SIG), "refused")
    assert isinstance(events_of(out)[-1], ev.SessionEnded)


def test_first_signaling_failure_ends_at_once_without_retry_first_connect() -> None:
    sim = Sim(make_config(retry_first_connect=False))
    sim.hold_open.add(SIG)
    sim.start()
    assert not sim.session.has_connected
    out = sim.fail(sim.latest(SIG), "certificate verify failed")
    assert only(out, ev.ReconnectScheduled) == []
    ended = only(out, ev.SessionEnded)
    assert len(ended) == 1
    assert ended[0].why is ev.EndReason.FATAL_ERROR
    assert ended[0].error is not None
    assert ended[0].error.reason is FailureReason.CONNECT_FAILED
    assert "certificate verify failed" in ended[0].detail


def test_without_retry_first_connect_later_signaling_losses_still_reconnect() -> None:
    sim = active_sim(retry_first_connect=False)
    assert sim.session.has_connected
    out = sim.fail(sim.latest(SIG))
    assert [e.scope for e in only(out, ev.ReconnectScheduled)] == [ev.ReconnectScope.SIGNALING]
    assert only(out, ev.SessionEnded) == []
    sim.advance(60.0)
    assert sim.session.has_connected  # it stays true across reconnects


def test_first_signaling_failure_is_retried_by_default() -> None:
    sim = Sim()
    sim.hold_open.add(SIG)
    sim.start()
    out = sim.fail(sim.latest(SIG), "refused")
    assert len(only(out, ev.ReconnectScheduled)) == 1
    assert only(out, ev.SessionEnded) == []


def test_without_retry_first_connect_a_retryable_rejection_is_still_retried() -> None:
    """Only a socket that cannot be opened ends at once; the server's answers keep their rules."""
    sim = Sim(auto=False, config=make_config(retry_first_connect=False))
    sim.start()
    out = sim.send(
        sim.latest(SIG),
        m.SignalingHandshakeResponse(status_code=StatusCode.INTERNAL_EXCEPTION, reason="try again"),
    )
    assert len(only(out, ev.ReconnectScheduled)) == 1
    assert only(out, ev.SessionEnded) == []


def test_failover_reconnects_to_the_new_url() -> None:
    sim = active_sim()
    old = set(sim.order)
    sim.session.failover("wss://rtms-iad2.zoom.us/signaling", now=2.0)
    out = sim.run()
    assert set(sim.closed) >= old
    new_sig = sim.latest(SIG)
    opened = [o for o in out if isinstance(o, OpenSocket)]
    assert opened[0].sock == new_sig
    assert opened[0].host == "rtms-iad2.zoom.us"
    assert "ReconnectStarted" in kinds(out)
    assert "ReconnectCompleted" in kinds(out)
    with pytest.raises(DisallowedHost):
        sim.session.failover("wss://evil.example/x", now=3.0)


# --- endings -------------------------------------------------------------------------


def test_stream_terminated_ends_after_every_socket_closed() -> None:
    sim = active_sim()
    sig = sim.latest(SIG)
    out = sim.send(
        sig, m.StreamStateUpdate(state=StreamState.TERMINATED, reason=StopReason.MEETING_ENDED)
    )
    trace = kinds(out)
    assert trace[0] == "StreamStateChanged"
    assert trace[-1] == "SessionEnded"
    assert sorted(t for t in trace if t.startswith("close")) == sorted(
        f"close {s}" for s in sim.order
    )
    ended = events_of(out)[-1]
    assert ended == ev.SessionEnded(
        why=ev.EndReason.STREAM_TERMINATED,
        detail="the stream was terminated",
        stop_reason=StopReason.MEETING_ENDED,
    )
    assert sim.session.ended
    assert sim.session.next_deadline() is None
    # Every peer saw a close frame from us.
    assert all(sim.peers[s].closes for s in sim.order)


def test_terminating_then_lost_socket_ends_as_terminated() -> None:
    sim = active_sim()
    sig = sim.latest(SIG)
    sim.send(sig, m.StreamStateUpdate(state=StreamState.TERMINATING))
    out = sim.eof(sim.latest(AUDIO))
    ended = events_of(out)[-1]
    assert isinstance(ended, ev.SessionEnded)
    assert ended.why is ev.EndReason.STREAM_TERMINATED
    assert "ReconnectScheduled" not in kinds(out)


def test_session_stopped_ends() -> None:
    sim = active_sim()
    out = sim.send(
        sim.latest(SIG),
        m.SessionStateUpdate(
            state=SessionState.STOPPED, stop_reason=StopReason.HOST_TRIGGERED, rtms_session_id="s1"
        ),
    )
    ended = events_of(out)[-1]
    assert isinstance(ended, ev.SessionEnded)
    assert ended.why is ev.EndReason.SESSION_STOPPED
    assert ended.stop_reason is StopReason.HOST_TRIGGERED


def test_other_stream_and_session_states_change_nothing() -> None:
    sim = active_sim()
    sig = sim.latest(SIG)
    out = sim.send(sig, m.StreamStateUpdate(state=StreamState.PAUSED)) + sim.send(
        sig, m.SessionStateUpdate(state=SessionState.PAUSED)
    )
    assert kinds(out) == ["StreamStateChanged", "SessionStateChanged"]
    assert sim.session.state is SessionPhase.ACTIVE


def test_close_stream_sends_21_and_ends_on_the_answer() -> None:
    sim = active_sim()
    sig = sim.latest(SIG)
    sim.now = 3.0
    sim.session.close_stream(now=sim.now)
    sim.run()
    assert sim.received(sig)[-1] == m.StreamCloseRequest(rtms_stream_id="stream-1")
    assert sim.session.next_deadline() == 13.0
    with pytest.raises(ConnectionClosed):
        sim.session.request_stream_state(now=sim.now)
    out = sim.send(
        sig, m.StreamCloseResponse(status_code=0, reason="OK", rtms_stream_id="stream-1")
    )
    ended = events_of(out)[-1]
    assert ended == ev.SessionEnded(
        why=ev.EndReason.CLOSED_BY_APP, detail="stream close answered: OK"
    )


def test_close_stream_without_an_answer_ends_at_the_timeout() -> None:
    sim = active_sim()
    sim.session.close_stream(now=sim.now)
    sim.run()
    out = sim.advance(10.0)
    ended = events_of(out)[-1]
    assert isinstance(ended, ev.SessionEnded)
    assert ended.why is ev.EndReason.CLOSED_BY_APP
    assert ended.detail == "no stream close answer within 10 s"


def test_close_stream_then_dropped_socket_ends_closed_by_app() -> None:
    sim = active_sim()
    sim.session.close_stream(now=sim.now)
    sim.run()
    out = sim.eof(sim.latest(SIG))
    ended = events_of(out)[-1]
    assert isinstance(ended, ev.SessionEnded)
    assert ended.why is ev.EndReason.CLOSED_BY_APP


def test_stop_closes_everything_and_refuses_later_commands() -> None:
    sim = active_sim()
    sim.session.stop(now=sim.now)
    out = sim.run()
    assert kinds(out)[-1] == "SessionEnded"
    assert events_of(out)[-1] == ev.SessionEnded(
        why=ev.EndReason.STOPPED_LOCALLY, detail="stopped by the application"
    )
    calls: list[Callable[[], None]] = [
        lambda: sim.session.stop(now=sim.now),
        lambda: sim.session.request_stream_state(now=sim.now),
        lambda: sim.session.notify_stopped(now=sim.now),
        lambda: sim.session.failover(SIGNALING_URL, now=sim.now),
    ]
    for call in calls:
        with pytest.raises(ConnectionClosed):
            call()


def test_stop_while_sockets_are_still_opening_closes_them_at_once() -> None:
    sim = Sim()
    sim.hold_open.add(SIG)
    sim.start()
    sim.session.stop(now=0.0)
    out = sim.run()
    assert kinds(out) == ["close signaling#1", "SocketClosed", "SessionEnded"]


def test_stop_webhook_ends_with_its_reason() -> None:
    sim = active_sim()
    sim.session.notify_stopped(StopReason.MEETING_ENDED, now=sim.now)
    out = sim.run()
    assert events_of(out)[-1] == ev.SessionEnded(
        why=ev.EndReason.STREAM_STOPPED,
        detail="stop webhook received",
        stop_reason=StopReason.MEETING_ENDED,
    )


def test_close_timeout_ends_even_when_peers_never_answer_the_close() -> None:
    sim = active_sim()
    sim.auto = False
    for peer in sim.peers.values():
        peer.feed = lambda data: b""  # type: ignore[method-assign]
    sim.session.stop(now=sim.now)
    out = sim.run()
    assert "SessionEnded" not in kinds(out)
    assert sim.session.next_deadline() == 5.0
    out = sim.advance(5.0)
    assert kinds(out)[-1] == "SessionEnded"


def test_data_arriving_while_ending_is_still_delivered() -> None:
    sim = active_sim()
    a1 = sim.latest(AUDIO)
    peer = sim.peers[a1]
    real_feed = peer.feed
    peer.feed = lambda data: b""  # type: ignore[method-assign]
    sim.session.stop(now=sim.now)
    sim.run()
    peer.feed = real_feed  # type: ignore[method-assign]
    out = sim.send(a1, audio(7))
    assert kinds(out) == ["AudioReceived"]


# --- commands --------------------------------------------------------------------------


def test_event_subscriptions_are_remembered_across_signaling_reconnects() -> None:
    sim = active_sim()
    sim.session.subscribe_events([EventType.SHARING_START], now=sim.now)
    sim.session.subscribe_events([EventType.PARTICIPANT_JOIN], subscribe=False, now=sim.now)
    sim.run()
    sim.fail(sim.latest(SIG))
    sim.advance(1.0)
    sub = sim.received(sim.latest(SIG))[1]
    assert isinstance(sub, m.EventSubscription)
    assert [i.event_type for i in sub.events] == [2, 4, 5]


def test_video_subscription_needs_individual_video_and_is_restored() -> None:
    with pytest.raises(InvalidConfig):
        active_sim().session.subscribe_video(7, now=0.0)
    video = VideoParams(data_opt=DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM)
    sim = active_sim(media=MediaType.VIDEO, params=MediaParams(video=video))
    sim.session.subscribe_video(16778240, now=sim.now)
    sim.run()
    assert sim.received(sim.latest(SIG))[-1] == m.VideoSubscriptionRequest(
        user_id=16778240, subscribe=True
    )
    out = sim.send(
        sim.latest(SIG), m.VideoSubscriptionResponse(user_id=16778240, status_code=0, reason="OK")
    )
    assert events_of(out) == [
        ev.VideoSubscriptionResult(
            user_id=16778240, status=StatusCode.STATUS_OK, reason="OK", subscribed=True
        )
    ]
    sim.fail(sim.latest(SIG))
    sim.advance(1.0)
    sent = sim.received(sim.latest(SIG))
    assert m.VideoSubscriptionRequest(user_id=16778240, subscribe=True) in sent


def test_state_queries_go_out_on_signaling() -> None:
    sim = active_sim()
    sim.session.request_stream_state(now=sim.now)
    sim.session.request_session_state("sess-1", now=sim.now)
    sim.run()
    assert sim.received(sim.latest(SIG))[-2:] == [
        m.StreamStateRequest(rtms_stream_id="stream-1"),
        m.SessionStateRequest(rtms_session_id="sess-1"),
    ]


def test_commands_need_an_open_signaling_socket() -> None:
    sim = Sim(auto=False)
    with pytest.raises(LocalProtocolError):
        sim.session.request_stream_state(now=0.0)
    with pytest.raises(LocalProtocolError):
        sim.session.stop(now=0.0)
    sim.start()
    with pytest.raises(ConnectionClosed):
        sim.session.close_stream(now=0.0)
    with pytest.raises(LocalProtocolError):
        sim.session.start(now=0.0)
    assert sim.session.state is SessionPhase.CONNECTING


def test_failover_is_refused_while_the_stream_closes() -> None:
    sim = active_sim()
    sim.session.close_stream(now=sim.now)
    with pytest.raises(ConnectionClosed):
        sim.session.failover(SIGNALING_URL, now=sim.now)


def test_unknown_socket_ids_are_misuse_and_retired_ones_are_ignored() -> None:
    sim = active_sim()
    with pytest.raises(LocalProtocolError):
        sim.session.receive_data(SocketId(99, AUDIO), b"x", now=sim.now)
    a1 = sim.latest(AUDIO)
    sim.eof(a1)
    sim.session.receive_data(a1, b"late", now=sim.now)
    sim.session.receive_eof(a1, now=sim.now)
    sim.session.socket_failed(a1, "late", now=sim.now)
    sim.session.socket_opened(a1, now=sim.now)
    assert sim.session.drain() == []


def test_socket_ids_never_repeat_and_sessions_share_nothing() -> None:
    one, two = active_sim(), active_sim()
    for _ in range(3):
        one.eof(one.latest(AUDIO))
        one.advance(2.0)
    numbers = [s.number for s in one.order]
    assert numbers == sorted(set(numbers))
    assert [s.number for s in two.order] == [1, 2, 3]


def test_early_timer_calls_do_nothing_and_deadlines_are_never_in_the_past() -> None:
    sim = active_sim()
    deadline = sim.session.next_deadline()
    assert deadline == 35.0
    sim.session.handle_timer(now=1.0)
    assert sim.session.drain() == []
    assert sim.session.next_deadline() == deadline


def test_repr_names_the_stream_and_never_a_secret() -> None:
    sim = active_sim()
    text = repr(sim.session) + repr(sim.session.config)
    assert "stream-1" in text
    assert "client-secret-value" not in text


# --- configuration -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"media": MediaType.ALL}, "use layout=Layout.UNIFIED"),
        ({"media": MediaType(0)}, "media must name"),
        ({"media": MediaType(64)}, "unknown bits"),
        ({"close_stream_timeout": 0.0}, "close_stream_timeout"),
        ({"server_url": "wss://evil.example/s"}, "not in the allowed hosts"),
        ({"params": MediaParams(audio=AudioParams(send_rate=30))}, "send_rate"),
    ],
)
def test_config_is_validated_when_built(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        make_config(**changes)


def test_config_fills_protocol_defaults_only_for_wanted_types() -> None:
    config = make_config(
        media=MediaType.AUDIO | MediaType.CHAT,
        params=MediaParams(audio=AudioParams(send_rate=40), video=VideoParams(fps=2)),
    )
    assert config.effective_params == MediaParams(
        audio=AudioParams(send_rate=40),
        chat=dataclasses.replace(MediaParams(chat=None)).chat or config.effective_params.chat,
    )
    assert config.effective_params.video is None
    assert config.effective_events == (2, 3, 4)
    assert make_config(events=()).effective_events == ()


def test_connection_options_reach_the_sockets() -> None:
    options = ConnectionOptions(keepalive_timeout=5.0)
    sim = active_sim(media_options=options, signaling_options=options)
    assert sim.session.next_deadline() == 5.0
    assert isinstance(Session(make_config(), jitter=lambda: 0.0), Session)
    assert CREDENTIALS.client_id == "client-id"
    assert STREAM.rtms_stream_id == "stream-1"
    assert CloseSocket(sock=SocketId(1, SIG)).sock.number == 1


def test_a_video_unsubscription_is_not_replayed_after_a_reconnect() -> None:
    video = VideoParams(data_opt=DataOption.VIDEO_SINGLE_INDIVIDUAL_STREAM)
    sim = active_sim(media=MediaType.VIDEO, params=MediaParams(video=video))
    sim.session.subscribe_video(5, now=sim.now)
    sim.session.subscribe_video(5, subscribe=False, now=sim.now)
    sim.run()
    sim.fail(sim.latest(SIG))
    sim.advance(1.0)
    assert not any(isinstance(x, m.VideoSubscriptionRequest) for x in sim.received(sim.latest(SIG)))


def test_no_event_subscription_is_sent_when_none_is_wanted() -> None:
    sim = active_sim(events=())
    types = [type(x).__name__ for x in sim.received(sim.latest(SIG))]
    assert types == ["SignalingHandshakeRequest", "ClientReady", "ClientReady"]


def test_sockets_timing_out_together_cause_one_signaling_reconnect() -> None:
    sim = active_sim(media=MediaType.AUDIO)
    out = sim.advance_to(35.0)
    trace = kinds(out)
    assert trace.count("ConnectionFailed") == 2
    assert trace.count("ReconnectScheduled") == 1
    scheduled = [e for e in events_of(out) if isinstance(e, ev.ReconnectScheduled)]
    assert scheduled[0].scope is ev.ReconnectScope.SIGNALING


def test_media_interrupted_naming_a_socket_that_is_already_down_touches_nothing_else() -> None:
    sim = active_sim()
    sig, a1, t1 = sim.latest(SIG), sim.latest(AUDIO), sim.latest(TRANSCRIPT)
    sim.eof(a1)
    out = sim.send(
        sig, {"msg_type": 6, "event": {"event_type": 7, "timestamp": 5, "media_type": 1}}
    )
    assert kinds(out) == ["MediaInterrupted"]
    assert t1 not in sim.closed


def _handshake_then_end(one_read: bool) -> list[str]:
    sim = Sim(make_config(media=MediaType.AUDIO), auto=False)
    sim.start()
    sig = sim.latest(SIG)
    peer = sim.peers[sig]
    chunks = [
        peer.send(m.SignalingHandshakeResponse(status_code=0, media_urls=MEDIA_URLS)),
        peer.send(m.StreamStateUpdate(state=StreamState.TERMINATED, reason=6)),
        peer.close(1000),
    ]
    for chunk in [b"".join(chunks)] if one_read else chunks:
        sim.session.receive_data(sig, chunk, now=sim.now)
    sim.run()
    return kinds(sim.log)


def test_reactions_do_not_depend_on_how_the_bytes_were_cut() -> None:
    # The session reacts after each message, so a handshake answer, the end of
    # the stream and a close frame in one read behave as in three reads.
    one, many = _handshake_then_end(True), _handshake_then_end(False)
    assert one == many
    assert one[-1] == "SessionEnded"
    assert "SignalingConnected" in one
