"""Every (state x input) pair of the per-socket machine, h2 style.

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

from rtms_proto import ConnectionClosed, LocalProtocolError, SignalingConnection
from rtms_proto import messages as m
from rtms_proto._connection import TRANSITIONS, Connection, ConnInput, ConnState

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
    w.conn.receive_data(make(), 5.0)


def _accept(w: Wire) -> None:
    # The Peer's own answer to this connection's upgrade when there is one.
    w.conn.receive_data(w.take_answers() or ACCEPT_101, 5.0)


def _timer_due(w: Wire) -> None:
    deadline = w.conn.next_deadline()
    w.conn.handle_timer(1e6 if deadline is None else deadline)


def _timer_early(w: Wire) -> None:
    deadline = w.conn.next_deadline()
    w.conn.handle_timer(0.5 if deadline is None else deadline - 0.001)


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
    _frame_kind(
        "data message",
        lambda c: open_server_peer().send(m.AudioData(data=b"\x00")),
        STAY,
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
        lambda w: w.conn.receive_eof(5.0),
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
        lambda w: w.conn.socket_failed(5.0, "reset"),
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
    "start": (I.START, lambda c: c.start(5.0)),
    "socket_opened": (I.SOCKET_OPENED, lambda c: c.socket_opened(5.0)),
    "close": (I.CLOSE, lambda c: c.close(5.0)),
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
