"""Every (state x input) pair of the per-socket machine, h2 style; then the session's phases.

Each ConnState is reached through the public API, every kind of input is
applied to a fresh connection in that state, and the outcome is checked
against TRANSITIONS through a hand-written table of what each input *means*
in each state:

* a ConnInput: the pair must be in TRANSITIONS and the machine must land on
  its target;
* STAY: the state does not change (the input may produce outputs: a pong, an
  event, a keep-alive answer);
* IGNORED: the state does not change and nothing at all comes out (peer
  inputs after the end, early timers);
* REFUSED: a local command (or driver input) illegal here: it raises
  LocalProtocolError (ConnectionClosed from CLOSING on) and changes nothing.

For the three local commands that are transitions themselves (start,
socket_opened, close) the meaning is TRANSITIONS itself: legal where the
table has the pair, refused everywhere else.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from conn_harness import Wire, handshake_ok, media, open_server_peer, reach, signaling
from sim import MEDIA_URLS, Sim

from rtms_proto import ConnectionClosed, LocalProtocolError, SessionPhase, SignalingConnection
from rtms_proto import messages as m
from rtms_proto._connection import TRANSITIONS, Connection, ConnInput, ConnState
from rtms_proto._phases import PHASES, RULES, SessionInput
from rtms_proto.actions import SocketId, SocketRole
from rtms_proto.enums import StreamState

S = ConnState
I = ConnInput  # noqa: E741


class Outcome(enum.Enum):
    STAY = "stay"
    IGNORED = "ignored"
    REFUSED = "refused"


STAY, IGNORED, REFUSED = Outcome.STAY, Outcome.IGNORED, Outcome.REFUSED
Meaning = ConnInput | Outcome

ACCEPT_101 = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: not-for-this-key\r\n\r\n"
)
REJECT_403 = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n"


def _data(w: Wire, make: Callable[[], bytes]) -> None:
    w.conn.receive_data(make(), now=5.0)


def _accept(w: Wire) -> None:
    # The Peer's own answer to this connection's upgrade when there is one.
    w.conn.receive_data(w.take_answers() or ACCEPT_101, now=5.0)


def _timer_due(w: Wire) -> None:
    deadline = w.conn.next_deadline()
    w.conn.handle_timer(now=1e6 if deadline is None else deadline)


def _timer_early(w: Wire) -> None:
    deadline = w.conn.next_deadline()
    w.conn.handle_timer(now=0.5 if deadline is None else deadline - 0.001)


def _signaling_command(w: Wire) -> None:
    assert isinstance(w.conn, SignalingConnection)
    w.conn.request_stream_state()


@dataclass(frozen=True)
class Kind:
    name: str
    apply: Callable[[Wire], None]
    meaning: dict[ConnState, Meaning]


def _frame_kind(
    name: str,
    make: Callable[[Connection], bytes],
    handshaking: Meaning,
    open_: Meaning,
    closing: Meaning,
) -> Kind:
    """Server bytes: refused before the socket is open, ignored after the end."""
    return Kind(
        name,
        lambda w: _data(w, lambda: make(w.conn)),
        {
            S.IDLE: REFUSED,
            S.OPENING: REFUSED,
            S.UPGRADING: STAY,  # not a whole HTTP response: the parser waits for more
            S.HANDSHAKING: handshaking,
            S.OPEN: open_,
            S.CLOSING: closing,
            S.CLOSED: IGNORED,
            S.FAILED: IGNORED,
        },
    )


def _rejection(conn: Connection) -> bytes:
    response_type = 2 if isinstance(conn, SignalingConnection) else 4
    return open_server_peer().send({"msg_type": response_type, "status_code": 3})


PEER_KINDS = [
    Kind(
        "upgrade accepted",
        _accept,
        {
            S.IDLE: REFUSED,
            S.OPENING: REFUSED,
            S.UPGRADING: I.UPGRADED,
            S.HANDSHAKING: I.FAIL,  # HTTP text read as a WebSocket frame
            S.OPEN: I.FAIL,
            S.CLOSING: I.CLOSE_DONE,
            S.CLOSED: IGNORED,
            S.FAILED: IGNORED,
        },
    ),
    Kind(
        "upgrade rejected",
        lambda w: _data(w, lambda: REJECT_403),
        {
            S.IDLE: REFUSED,
            S.OPENING: REFUSED,
            S.UPGRADING: I.FAIL,
            S.HANDSHAKING: I.FAIL,
            S.OPEN: I.FAIL,
            S.CLOSING: I.CLOSE_DONE,
            S.CLOSED: IGNORED,
            S.FAILED: IGNORED,
        },
    ),
    _frame_kind(
        "handshake accepted",
        lambda c: open_server_peer().send(handshake_ok(c)),
        I.HANDSHAKE_ACCEPTED,
        STAY,  # reported as malformed
        STAY,  # moot while closing
    ),
    _frame_kind("handshake rejected", _rejection, I.FAIL, STAY, STAY),
    _frame_kind(
        "keep-alive",
        lambda c: open_server_peer().send(m.KeepAliveRequest(timestamp=1, sequence=2)),
        STAY,
        STAY,
        STAY,
    ),
    # Media data before the handshake answer accepts a media socket (Zoom's mock
    # never answers it); on signaling it only passes on.
    _frame_kind(
        "data message (signaling)",
        lambda c: open_server_peer().send(m.AudioData(data=b"\x00")),
        STAY,
        STAY,
        STAY,
    ),
    _frame_kind(
        "data message (media)",
        lambda c: open_server_peer().send(m.AudioData(data=b"\x00")),
        I.HANDSHAKE_ACCEPTED,
        STAY,
        STAY,
    ),
    _frame_kind("ping", lambda c: open_server_peer().ping(b"p"), STAY, STAY, STAY),
    _frame_kind(
        "close frame", lambda c: open_server_peer().close(), I.FAIL, I.PEER_CLOSED, I.PEER_CLOSED
    ),
    _frame_kind("broken frame", lambda c: b"\x83\x00", I.FAIL, I.FAIL, I.CLOSE_DONE),
    Kind(
        "end of stream",
        lambda w: w.conn.receive_eof(now=5.0),
        {
            S.IDLE: REFUSED,
            S.OPENING: I.FAIL,
            S.UPGRADING: I.FAIL,
            S.HANDSHAKING: I.FAIL,
            S.OPEN: I.FAIL,
            S.CLOSING: I.CLOSE_DONE,
            S.CLOSED: IGNORED,
            S.FAILED: IGNORED,
        },
    ),
    Kind(
        "socket failed",
        lambda w: w.conn.socket_failed("reset", now=5.0),
        {
            S.IDLE: REFUSED,
            S.OPENING: I.FAIL,
            S.UPGRADING: I.FAIL,
            S.HANDSHAKING: I.FAIL,
            S.OPEN: I.FAIL,
            S.CLOSING: I.CLOSE_DONE,
            S.CLOSED: IGNORED,
            S.FAILED: IGNORED,
        },
    ),
    Kind(
        "timer due",
        _timer_due,
        {
            S.IDLE: IGNORED,
            S.OPENING: I.FAIL,
            S.UPGRADING: I.FAIL,
            S.HANDSHAKING: I.FAIL,
            S.OPEN: I.FAIL,
            S.CLOSING: I.CLOSE_DONE,
            S.CLOSED: IGNORED,
            S.FAILED: IGNORED,
        },
    ),
    Kind("timer early", _timer_early, dict.fromkeys(ConnState, IGNORED)),
    Kind(
        "signaling command",
        _signaling_command,
        {
            S.IDLE: REFUSED,
            S.OPENING: REFUSED,
            S.UPGRADING: REFUSED,
            S.HANDSHAKING: REFUSED,
            S.OPEN: STAY,
            S.CLOSING: REFUSED,
            S.CLOSED: REFUSED,
            S.FAILED: REFUSED,
        },
    ),
]

LOCAL: dict[str, tuple[ConnInput, Callable[[Connection], None]]] = {
    "start": (I.START, lambda c: c.start(now=5.0)),
    "socket_opened": (I.SOCKET_OPENED, lambda c: c.socket_opened(now=5.0)),
    "close": (I.CLOSE, lambda c: c.close(now=5.0)),
}

MAKERS = [pytest.param(signaling, id="signaling"), pytest.param(media, id="media")]


def _refused(w: Wire, state: ConnState, call: Callable[[], object]) -> None:
    conn = w.conn
    before = (conn.state, conn.next_deadline())
    with pytest.raises(LocalProtocolError) as info:
        call()
    closed = state in (S.CLOSING, S.CLOSED, S.FAILED)
    assert type(info.value) is (ConnectionClosed if closed else LocalProtocolError)
    assert (conn.state, conn.next_deadline()) == before
    assert w.drain() == []


def _check(w: Wire, state: ConnState, meaning: Meaning, call: Callable[[], object]) -> None:
    conn = w.conn
    if meaning is REFUSED:
        _refused(w, state, call)
        return
    before = conn.next_deadline()
    call()
    out = w.drain()
    if isinstance(meaning, ConnInput):
        assert (state, meaning) in TRANSITIONS, f"{meaning} is not legal in {state}"
        assert conn.state is TRANSITIONS[state, meaning]
        assert out, "a transition always reports something"
    else:
        assert conn.state is state
        if meaning is IGNORED:
            assert out == []
            assert conn.next_deadline() == before


@pytest.mark.parametrize("make", MAKERS)
@pytest.mark.parametrize("state", list(ConnState))
@pytest.mark.parametrize("name", list(LOCAL))
def test_local_commands_follow_the_table(
    make: Callable[[], Connection], state: ConnState, name: str
) -> None:
    inp, apply = LOCAL[name]
    w = reach(make(), state, now=0.0)
    meaning: Meaning = inp if (state, inp) in TRANSITIONS else REFUSED
    _check(w, state, meaning, lambda: apply(w.conn))


# Media sockets have no signaling commands: that pair is not an input there.
PEER_CASES = [
    pytest.param(make.values[0], kind, id=f"{make.id}-{kind.name}")
    for make in MAKERS
    for kind in PEER_KINDS
    if not (kind.name == "signaling command" and make.id == "media")
    and not (kind.name.startswith("data message (") and not kind.name.endswith(f"({make.id})"))
]


@pytest.mark.parametrize("state", list(ConnState))
@pytest.mark.parametrize(("make", "kind"), PEER_CASES)
def test_peer_and_driver_inputs_follow_the_table(
    make: Callable[[], Connection], state: ConnState, kind: Kind
) -> None:
    conn = make()
    w = reach(conn, state, now=0.0)
    _check(w, state, kind.meaning[state], lambda: kind.apply(w))


def test_every_state_has_a_meaning_for_every_input() -> None:
    for kind in PEER_KINDS:
        assert set(kind.meaning) == set(ConnState), kind.name


def test_every_transition_is_exercised_by_some_input() -> None:
    """The tests above check each meaning at run time; together they cover the whole table."""
    exercised = {(state, inp) for state in ConnState for inp, _ in LOCAL.values()}
    exercised &= set(TRANSITIONS)
    for kind in PEER_KINDS:
        exercised |= {(s, m) for s, m in kind.meaning.items() if isinstance(m, ConnInput)}
    assert exercised == set(TRANSITIONS)


def test_the_table_only_leaves_live_states() -> None:
    for (state, _), target in TRANSITIONS.items():
        assert state not in (S.CLOSED, S.FAILED)
        assert target is not S.IDLE
    assert {s for s, _ in TRANSITIONS} == set(ConnState) - {S.CLOSED, S.FAILED}
    assert set(TRANSITIONS.values()) == set(ConnState) - {S.IDLE}


def test_every_state_is_reachable_through_the_public_api() -> None:
    for state in ConnState:
        assert reach(signaling(), state).conn.state is state
        assert reach(media(), state).conn.state is state


# --- the session's phases ------------------------------------------------------------------------
#
# The same method one level up: every SessionPhase is reached through the public
# API (some by two routes, since what an input does also depends on the sockets:
# a signaling handshake can only finish while one is under way), every kind of
# input is applied, and the phase must follow PHASES through the inputs each
# pair is meant to cause.  Outputs are drained but not performed, so a step is
# exactly one input to the session.

Path = tuple[SessionInput, ...]
PhaseMeaning = Path | Outcome

SP = SessionPhase
SI = SessionInput
_FRAMER = open_server_peer()
"""Frames server messages whatever the state of a socket's own Peer."""


def _latest(sim: Sim, role: SocketRole, number: int) -> SocketId:
    socks = sim.socks(role)
    return socks[-1] if socks else SocketId(number, role)


def _server_sends(msg: m.Message | dict[str, object]) -> Callable[[Sim], None]:
    def apply(sim: Sim) -> None:
        sock = _latest(sim, SocketRole.SIGNALING, 1)
        sim.session.receive_data(sock, _FRAMER.send(msg), now=sim.now)

    return apply


def _timer(sim: Sim) -> None:
    deadline = sim.session.next_deadline()
    sim.session.handle_timer(now=sim.now if deadline is None else deadline)


def _terminating(sim: Sim) -> None:
    _server_sends(m.StreamStateUpdate(state=StreamState.TERMINATING))(sim)
    sim.run()


ROUTES: dict[str, tuple[SessionPhase, Callable[[], Sim]]] = {}


def _route(name: str, phase: SessionPhase) -> Callable[[Callable[[], Sim]], Callable[[], Sim]]:
    def register(make: Callable[[], Sim]) -> Callable[[], Sim]:
        ROUTES[name] = (phase, make)
        return make

    return register


@_route("idle", SP.IDLE)
def _idle() -> Sim:
    return Sim()


@_route("connecting", SP.CONNECTING)
def _connecting() -> Sim:
    sim = Sim(auto=False)  # the signaling handshake waits for its answer
    sim.start()
    return sim


@_route("active", SP.ACTIVE)
def _active() -> Sim:
    sim = Sim()
    sim.start()
    return sim


@_route("reconnecting", SP.RECONNECTING)
def _reconnecting() -> Sim:
    sim = _active()
    sim.eof(sim.latest(SocketRole.SIGNALING))  # the retry waits for its time
    return sim


@_route("reconnecting, handshaking", SP.RECONNECTING)
def _reconnecting_handshaking() -> Sim:
    sim = _reconnecting()
    sim.auto = False
    deadline = sim.session.next_deadline()
    assert deadline is not None
    sim.advance_to(deadline)  # the retry's handshake waits for its answer
    return sim


@_route("closing stream", SP.CLOSING_STREAM)
def _closing_stream() -> Sim:
    sim = _active()
    sim.session.close_stream(now=sim.now)
    sim.run()
    return sim


@_route("terminating, handshaking", SP.CLOSING_STREAM)
def _terminating_handshaking() -> Sim:
    sim = _connecting()
    _terminating(sim)
    return sim


@_route("ending", SP.ENDING)
def _ending() -> Sim:
    sim = _active()
    sim.session.stop(now=sim.now)
    sim.session.drain()  # the close frames never reach the server: every socket is closing
    return sim


@_route("ended", SP.ENDED)
def _ended() -> Sim:
    sim = _active()
    sim.session.stop(now=sim.now)
    sim.run()
    return sim


END: Path = (SI.END,)
GONE: Path = (SI.END, SI.SOCKETS_CLOSED)  # nothing left to close
# Driver input for a socket the session never opened is refused; for one it has
# forgotten (it is over) it is ignored.
_SIGNAL_LIKE = {
    "idle": REFUSED,
    "reconnecting": IGNORED,
    "ending": STAY,  # a closing socket still reports, nothing is acted on
    "ended": IGNORED,
}


@dataclass(frozen=True)
class SessionKind:
    name: str
    apply: Callable[[Sim], object]
    meaning: dict[str, PhaseMeaning]


def _for_routes(default: PhaseMeaning, **meaning: PhaseMeaning) -> dict[str, PhaseMeaning]:
    named = {name.replace("_", " ").replace("  ", ", "): m for name, m in meaning.items()}
    assert set(named) <= set(ROUTES), set(named) - set(ROUTES)
    return {route: named.get(route, default) for route in ROUTES}


def _signaling_kind(
    name: str, apply: Callable[[Sim], object], **meaning: PhaseMeaning
) -> SessionKind:
    return SessionKind(name, apply, {**_for_routes(REFUSED, **meaning), **_SIGNAL_LIKE})


SESSION_KINDS = [
    SessionKind(
        "start", lambda s: s.session.start(now=s.now), _for_routes(REFUSED, idle=(SI.START,))
    ),
    SessionKind(
        "close_stream",
        lambda s: s.session.close_stream(now=s.now),
        _for_routes(REFUSED, active=(SI.CLOSE_STREAM,)),
    ),
    *(
        SessionKind(
            name,
            apply,
            _for_routes(
                REFUSED,
                connecting=END,
                active=END,
                reconnecting=GONE,
                reconnecting__handshaking=END,
                closing_stream=END,
                terminating__handshaking=END,
            ),
        )
        for name, apply in [
            ("stop", lambda s: s.session.stop(now=s.now)),
            ("notify_stopped", lambda s: s.session.notify_stopped("stop webhook", now=s.now)),
        ]
    ),
    SessionKind(
        "failover",
        lambda s: s.session.failover("wss://rtms-fra1.zoom.us/signaling", now=s.now),
        _for_routes(
            REFUSED,
            connecting=(SI.FAILOVER,),
            active=(SI.FAILOVER,),
            reconnecting=(SI.FAILOVER,),
            reconnecting__handshaking=(SI.FAILOVER,),
        ),
    ),
    _signaling_kind(
        "signaling handshake answered",
        _server_sends(m.SignalingHandshakeResponse(status_code=0, media_urls=MEDIA_URLS)),
        connecting=(SI.SIGNALING_CONNECTED,),
        active=STAY,  # reported as malformed
        reconnecting__handshaking=(SI.SIGNALING_CONNECTED,),
        closing_stream=STAY,
        terminating__handshaking=(SI.SIGNALING_CONNECTED,),
        ending=IGNORED,  # moot while closing
    ),
    _signaling_kind(
        "signaling socket lost",
        lambda s: s.session.receive_eof(_latest(s, SocketRole.SIGNALING, 1), now=s.now),
        connecting=(SI.SIGNALING_LOST,),
        active=(SI.SIGNALING_LOST,),
        reconnecting__handshaking=(SI.SIGNALING_LOST,),
        closing_stream=END,
        terminating__handshaking=GONE,
    ),
    SessionKind(
        "media socket lost",
        lambda s: s.session.receive_eof(_latest(s, SocketRole.AUDIO, 2), now=s.now),
        {
            **_for_routes(REFUSED, active=(SI.MEDIA_LOST,), closing_stream=END),
            **_SIGNAL_LIKE,
            "reconnecting, handshaking": IGNORED,
        },
    ),
    _signaling_kind(
        "media interrupted",
        _server_sends({"msg_type": 6, "event": {"event_type": 7, "timestamp": 1}}),
        connecting=STAY,  # no media socket to rebuild yet
        active=(SI.MEDIA_INTERRUPTED,),
        reconnecting__handshaking=STAY,
        closing_stream=(SI.MEDIA_INTERRUPTED,),
        terminating__handshaking=STAY,
    ),
    _signaling_kind(
        "stream terminating",
        _server_sends(m.StreamStateUpdate(state=StreamState.TERMINATING)),
        connecting=(SI.STREAM_TERMINATING,),
        active=(SI.STREAM_TERMINATING,),
        reconnecting__handshaking=(SI.STREAM_TERMINATING,),
        closing_stream=(SI.STREAM_TERMINATING,),
        terminating__handshaking=(SI.STREAM_TERMINATING,),
    ),
    _signaling_kind(
        "stream terminated",
        _server_sends(m.StreamStateUpdate(state=StreamState.TERMINATED)),
        connecting=END,
        active=END,
        reconnecting__handshaking=END,
        closing_stream=END,
        terminating__handshaking=END,
    ),
    SessionKind(
        "timer due",
        _timer,
        _for_routes(
            IGNORED,
            connecting=(SI.SIGNALING_LOST,),  # handshake timeout
            active=(SI.SIGNALING_LOST,),  # keep-alive timeout on every socket at once
            reconnecting=STAY,  # the retry starts
            reconnecting__handshaking=(SI.SIGNALING_LOST,),
            closing_stream=END,  # no answer to the close request
            terminating__handshaking=GONE,
            ending=(SI.SOCKETS_CLOSED,),  # the close frames were not answered
        ),
    ),
]


def _after(phase: SessionPhase, path: Path) -> SessionPhase:
    for happened in path:
        assert (phase, happened) in PHASES, f"{happened} is not legal in {phase}"
        phase = PHASES[phase, happened]
    return phase


SESSION_CASES = [
    pytest.param(route, kind, id=f"{route}-{kind.name}")
    for route in ROUTES
    for kind in SESSION_KINDS
]


@pytest.mark.parametrize(("route", "kind"), SESSION_CASES)
def test_session_inputs_follow_the_phase_table(route: str, kind: SessionKind) -> None:
    phase, make = ROUTES[route]
    sim = make()
    session = sim.session
    assert session.state is phase
    meaning = kind.meaning[route]
    before = session.next_deadline()
    if meaning is REFUSED:
        with pytest.raises(LocalProtocolError):
            kind.apply(sim)
        assert (session.state, session.next_deadline()) == (phase, before)
        assert session.drain() == []
        return
    kind.apply(sim)
    out = session.drain()
    if isinstance(meaning, tuple):
        assert session.state is _after(phase, meaning)
        assert out, "a phase change always reports or does something"
    else:
        assert session.state is phase
        if meaning is IGNORED:
            assert out == []
            assert session.next_deadline() == before


def test_every_route_has_a_meaning_for_every_session_input() -> None:
    for kind in SESSION_KINDS:
        assert set(kind.meaning) == set(ROUTES), kind.name


def test_every_phase_is_reached_and_every_phase_change_exercised() -> None:
    assert {phase for phase, _ in ROUTES.values()} == set(SessionPhase)
    exercised = set()
    for kind in SESSION_KINDS:
        for route, meaning in kind.meaning.items():
            if isinstance(meaning, tuple):
                phase = ROUTES[route][0]
                for happened in meaning:
                    exercised.add((phase, happened))
                    phase = PHASES[phase, happened]
    assert exercised == set(PHASES)


def test_the_phase_table_only_leaves_live_phases() -> None:
    assert {p for p, _ in PHASES} == set(SessionPhase) - {SP.ENDED}
    assert set(PHASES.values()) == set(SessionPhase) - {SP.IDLE}
    assert {i for _, i in PHASES} == set(SessionInput)
    # The reference page describes every input.
    assert set(RULES) == set(SessionInput)
