"""A hypothesis model of the Zoom server and the clock driving a Session.

The server side answers handshakes (sometimes with rejections), sends
keep-alives, media and junk, drops and closes sockets, terminates the stream;
the application stops or closes the stream.  After every step the invariants
of the testing rules in docs/architecture.md must hold.
"""

from __future__ import annotations

import contextlib
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sim import Sim, make_config

from rtms_proto import BackoffPolicy, ConnectionClosed, Layout, MediaType
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import CloseSocket, OpenSocket, SendBytes, SocketId, SocketRole
from rtms_proto.enums import StreamState

POLICIES = {
    "signaling": BackoffPolicy.signaling(),
    "media": BackoffPolicy.media(),
    "duplicate": BackoffPolicy.duplicate_signal(),
}


class SessionModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim: Sim
        self.checked = 0
        self.terminal: dict[SocketId, int] = {}
        self.closed: set[SocketId] = set()
        self.keepalives: dict[SocketId, list[tuple[int, int]]] = {}
        self.reject_next: int | None = None
        self.ended = 0

    @initialize(
        layout=st.sampled_from(list(Layout)),
        media=st.sampled_from(
            [
                MediaType.AUDIO,
                MediaType.AUDIO | MediaType.TRANSCRIPT,
                MediaType.VIDEO | MediaType.CHAT,
            ]
        ),
        jitter=st.floats(min_value=0.0, max_value=0.999),
    )
    def start(self, layout: Layout, media: MediaType, jitter: float) -> None:
        self.layout = layout
        self.media = media
        self.sim = Sim(make_config(layout=layout, media=media), jitter=jitter)
        self.sim.auto_reply = self._reply  # type: ignore[method-assign]
        self.sim.start()

    def _reply(self, sock: SocketId, msg: m.Message | m.DecodeError) -> m.Message | None:
        status = 0
        if self.reject_next is not None and isinstance(
            msg, (m.SignalingHandshakeRequest, m.MediaHandshakeRequest)
        ):
            status, self.reject_next = self.reject_next, None
        if isinstance(msg, m.SignalingHandshakeRequest):
            return m.SignalingHandshakeResponse(
                status_code=status,
                reason="duplicate signal request" if status == 8 else "",
                media_urls=self.sim.media_urls,
            )
        if isinstance(msg, m.MediaHandshakeRequest):
            return m.MediaHandshakeResponse(status_code=status, media_params=msg.media_params)
        return None

    def _open_socks(self) -> list[SocketId]:
        return [s for s in self.sim.order if s in self.sim.open and s not in self.closed]

    # --- rules -------------------------------------------------------------------------

    @rule(dt=st.floats(min_value=0.0, max_value=40.0))
    def advance(self, dt: float) -> None:
        self.sim.advance(dt)

    @rule(data=st.data(), ts=st.integers(0, 2**53), seq=st.one_of(st.none(), st.integers(0, 2**31)))
    def keepalive(self, data: st.DataObject, ts: int, seq: int | None) -> None:
        socks = self._open_socks()
        if not socks:
            return
        sock = data.draw(st.sampled_from(socks))
        if self.sim.session.ended:
            return
        self.keepalives.setdefault(sock, []).append((ts, -1 if seq is None else seq))
        self.sim.send(sock, m.KeepAliveRequest(timestamp=ts, sequence=seq))

    @rule(data=st.data(), ts=st.integers(0, 10**9))
    def media_packet(self, data: st.DataObject, ts: int) -> None:
        socks = [s for s in self._open_socks() if s.role is not SocketRole.SIGNALING]
        if socks:
            self.sim.send(
                data.draw(st.sampled_from(socks)),
                m.AudioData(data=b"\x00\x01", user_id=0, timestamp=ts),
            )

    @rule(data=st.data(), junk=st.binary(max_size=64))
    def junk_frame(self, data: st.DataObject, junk: bytes) -> None:
        socks = self._open_socks()
        if socks:
            sock = data.draw(st.sampled_from(socks))
            self.sim.session.receive_data(
                sock, self.sim.peers[sock].send(junk.decode("latin-1")), now=self.sim.now
            )
            self.sim.run()

    @rule(data=st.data(), how=st.sampled_from(["eof", "fail", "close", "garbage"]))
    def drop(self, data: st.DataObject, how: str) -> None:
        socks = self._open_socks()
        if not socks:
            return
        sock = data.draw(st.sampled_from(socks))
        if how == "eof":
            self.sim.eof(sock)
        elif how == "fail":
            self.sim.fail(sock)
        elif how == "close":
            self.sim.session.receive_data(sock, self.sim.peers[sock].close(1001), now=self.sim.now)
            self.sim.run()
        else:
            self.sim.session.receive_data(sock, b"\x8f\x7f\xff" * 3, now=self.sim.now)
            self.sim.run()

    @rule(status=st.sampled_from([3, 8, 9, 17, 45]))
    def reject_next_handshake(self, status: int) -> None:
        self.reject_next = status

    @rule(named=st.booleans())
    def media_interrupted(self, named: bool) -> None:
        sigs = [s for s in self._open_socks() if s.role is SocketRole.SIGNALING]
        if sigs:
            event: dict[str, object] = {"event_type": 7, "timestamp": 1}
            if named:
                event["media_type"] = 1
            self.sim.send(sigs[-1], {"msg_type": 6, "event": event})

    @precondition(lambda self: not self.sim.session.ended)
    @rule(command=st.sampled_from(["stop", "close_stream", "terminate", "failover"]))
    def finish(self, command: str) -> None:
        session = self.sim.session
        try:
            if command == "stop":
                session.stop(now=self.sim.now)
            elif command == "close_stream":
                session.close_stream(now=self.sim.now)
            elif command == "failover":
                session.failover("wss://rtms-fra1.zoom.us/signaling", now=self.sim.now)
            else:
                sigs = [s for s in self._open_socks() if s.role is SocketRole.SIGNALING]
                if sigs:
                    self.sim.session.receive_data(
                        sigs[-1],
                        self.sim.peers[sigs[-1]].send(
                            m.StreamStateUpdate(state=StreamState.TERMINATED)
                        ),
                        now=self.sim.now,
                    )
        except ConnectionClosed:
            pass
        self.sim.run()

    # --- invariants ----------------------------------------------------------------------

    @invariant()
    def scan_new_outputs(self) -> None:
        log = self.sim.log
        for item in log[self.checked :]:
            assert self.ended == 0, f"{item!r} after SessionEnded"
            if isinstance(item, SendBytes):
                assert item.sock not in self.closed, f"bytes for {item.sock} after CloseSocket"
            elif isinstance(item, CloseSocket):
                assert item.sock not in self.closed
                self.closed.add(item.sock)
            elif isinstance(item, OpenSocket):
                assert item.sock not in self.terminal
            elif isinstance(item, (ev.ConnectionFailed, ev.SocketClosed)):
                self.terminal[item.sock] = self.terminal.get(item.sock, 0) + 1
                assert self.terminal[item.sock] == 1, f"two terminal events for {item.sock}"
            elif isinstance(item, ev.ReconnectScheduled):
                policy = {
                    ev.ReconnectScope.MEDIA: POLICIES["media"],
                    ev.ReconnectScope.SIGNALING: POLICIES["signaling"],
                }[item.scope]
                cap = max(policy.cap, POLICIES["duplicate"].cap)
                assert 0.0 <= item.delay <= cap
            elif isinstance(item, ev.SessionEnded):
                self.ended += 1
        self.checked = len(log)

    @invariant()
    def deadline_not_in_the_past(self) -> None:
        deadline = self.sim.session.next_deadline()
        assert deadline is None or deadline > self.sim.now or deadline == self.sim.now == 0.0

    @invariant()
    def keepalives_answered_exactly_once(self) -> None:
        for sock, sent in self.keepalives.items():
            replies = [
                (r.timestamp, -1 if r.sequence is None else r.sequence)
                for r in self.sim.received(sock)
                if isinstance(r, m.KeepAliveResponse)
            ]
            assert replies == sent

    @invariant()
    def media_layout(self) -> None:
        closed = set(self.sim.closed)
        live = [s for s in self.sim.order if s.role is not SocketRole.SIGNALING and s not in closed]
        if self.layout is Layout.UNIFIED:
            assert all(s.role is SocketRole.ALL for s in live)
            assert len(live) <= 1
        else:
            roles = [s.role for s in live]
            assert len(roles) == len(set(roles))
            assert len(roles) <= bin(int(self.media)).count("1")
        signaling = [
            s for s in self.sim.order if s.role is SocketRole.SIGNALING and s not in closed
        ]
        assert len(signaling) <= 1

    def teardown(self) -> None:
        # Whatever happened, the session can always be brought to its end.
        session = self.sim.session
        if not session.ended:
            with contextlib.suppress(ConnectionClosed):
                session.stop(now=self.sim.now)
            self.sim.run()
            self.sim.advance(30.0)
        assert session.ended
        assert session.next_deadline() is None
        self.scan_new_outputs()
        assert self.ended == 1


SessionModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("RTMS_MODEL_EXAMPLES", "120")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSessionModel = SessionModel.TestCase
