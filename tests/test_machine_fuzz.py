"""Hypothesis against the per-socket machines.

* arbitrary bytes and JSON-shaped junk into every state: no exception escapes
  an input method;
* split invariance: one server byte stream, cut anywhere (empty pieces
  included), gives the same events and the same client bytes (as decoded by
  the server) as the stream in one piece, read whole or message by message
  (``receive_batches``);
* a stateful model of server, driver and clock: deadlines are never in the
  past after an input, every keep-alive answered in HANDSHAKING/OPEN gets
  exactly one matching reply, exactly one terminal event (ConnectionFailed or
  SocketClosed) and one CloseSocket per socket, nothing sent after CloseSocket.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import get_args

import pytest
from conn_harness import (
    Wire,
    handshake_ok,
    media,
    open_server_peer,
    reach,
    signaling,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from wsproto.events import BytesMessage, TextMessage

from rtms_proto import ConnectionOptions, LocalProtocolError, SignalingConnection
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto._connection import Connection, ConnState, Output
from rtms_proto.actions import CloseSocket, OpenSocket, SendBytes
from rtms_proto.enums import MediaType

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
OPTIONS = ConnectionOptions(max_message_size=2048, keepalive_timeout=20.0, close_timeout=3.0)
EVENT_TYPES = frozenset(get_args(ev.Event))
ACTION_TYPES = (OpenSocket, SendBytes, CloseSocket)
TERMINAL_EVENTS = (ev.ConnectionFailed, ev.SocketClosed)
DATA_STATES = [
    ConnState.UPGRADING,
    ConnState.HANDSHAKING,
    ConnState.OPEN,
    ConnState.CLOSING,
    ConnState.CLOSED,
    ConnState.FAILED,
]


def make_signaling() -> Connection:
    return signaling(options=OPTIONS)


def make_media() -> Connection:
    return media(MediaType.ALL, options=OPTIONS)


MAKERS = [
    pytest.param(make_signaling, id="signaling"),
    pytest.param(make_media, id="media"),
]


# --- output invariants ------------------------------------------------------------------------


def check_trace(outputs: Iterable[Output]) -> tuple[int, int]:
    """Types are closed, nothing is sent after CloseSocket, at most one ending of each kind.

    Returns the number of terminal events and of CloseSocket actions.
    """
    terminal = closes = 0
    for o in outputs:
        assert isinstance(o, ACTION_TYPES) or type(o) in EVENT_TYPES, o
        if isinstance(o, SendBytes):
            assert closes == 0, "bytes after CloseSocket"
        elif isinstance(o, CloseSocket):
            closes += 1
        elif isinstance(o, TERMINAL_EVENTS):
            terminal += 1
        else:
            # Nothing but the pair CloseSocket + terminal event ends a trace.
            assert not (closes and terminal), f"{o!r} after the end"
    assert terminal <= 1
    assert closes <= 1
    return terminal, closes


def check_deadline(conn: Connection, now: float) -> None:
    deadline = conn.next_deadline()
    assert deadline is None or deadline > now, (deadline, now)
    idle_or_over = conn.state in (ConnState.IDLE, ConnState.CLOSED, ConnState.FAILED)
    assert (deadline is None) is idle_or_over


def advance(conn: Connection, now: float, later: float, outputs: list[Output]) -> float:
    """Move the clock as a driver does: timers that fall due on the way fire first."""
    deadline = conn.next_deadline()
    while deadline is not None and deadline <= later:
        conn.handle_timer(now=deadline)
        outputs += conn.drain()
        check_deadline(conn, deadline)
        deadline = conn.next_deadline()
    return later


def finish(conn: Connection, outputs: list[Output], now: float, *, ended: bool = False) -> None:
    """End the socket if it is still alive; then ``outputs`` must hold exactly one ending.

    ``ended``: the socket was already over before ``outputs`` started.
    """
    if conn.state is ConnState.IDLE:
        return
    if not conn.is_terminal:
        conn.receive_eof(now=now)
        outputs += conn.drain()
    assert conn.is_terminal
    assert check_trace(outputs) == ((0, 0) if ended else (1, 1))


# --- server byte strategies -------------------------------------------------------------------

KEYS = [
    "msg_type",
    "status_code",
    "reason",
    "media_server",
    "server_urls",
    "datacenter_region",
    "media_params",
    "audio",
    "video",
    "event",
    "event_type",
    "event_ts",
    "participants",
    "paticipant_info",
    "user_id",
    "user_name",
    "timestamp",
    "sequence",
    "content",
    "data",
    "state",
    "stop_reason",
    "rtms_session_id",
    "subscribe",
    "chat_session",
    "operation_type",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["AQID", "", "{}", "SHARING_STOP", "wss://x.zoom.us/a"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=12,
)
msg_types = st.integers(min_value=0, max_value=31) | st.integers()
junk_objects = st.fixed_dictionaries(
    {"msg_type": msg_types},
    optional=dict.fromkeys(KEYS[1:], json_values),
)
junk_texts = (
    junk_objects.map(json.dumps)
    | json_values.map(json.dumps)
    | st.text(max_size=40)
    | st.just('{"msg_type": 2, "status_code": 0}')
    | st.just('{"msg_type": 4, "status_code": 0}')
)

MESSAGES: list[m.Message] = [
    m.KeepAliveRequest(timestamp=1727481600000, sequence=9),
    m.KeepAliveRequest(),
    m.SignalingHandshakeResponse(status_code=0, media_urls={"audio": "wss://a.zoom.us/a"}),
    m.SignalingHandshakeResponse(status_code=8, reason="duplicate signal request"),
    m.MediaHandshakeResponse(status_code=0),
    m.MediaHandshakeResponse(status_code=9),
    m.AudioData(data=b"\x00\x01", user_id=1, timestamp=5),
    m.EventUpdate(event_type=2, user_id=3, user_name="x", timestamp=4),
    m.StreamStateUpdate(state=4, reason=6),
    m.MetadataMessage(msg_type=23),
    m.UnknownMessage(msg_type=99),
]

_FRAMER = open_server_peer()
"""Frames server messages; never closed, so it can always send."""


@dataclass(frozen=True)
class Action:
    """One thing the server does, as bytes."""

    name: str
    data: bytes


def _fragmented(text: str, cuts: list[int], binary: bool) -> bytes:
    points = sorted({c % (len(text) + 1) for c in cuts})
    parts = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    data = b""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if binary:
            data += _FRAMER.ws.send(BytesMessage(data=part.encode(), message_finished=last))
        else:
            data += _FRAMER.ws.send(TextMessage(data=part, message_finished=last))
    return data


server_actions = st.one_of(
    st.builds(
        lambda msg, binary: Action(f"send {msg!r}", _FRAMER.send(msg, binary=binary)),
        st.sampled_from(MESSAGES),
        st.booleans(),
    ),
    st.builds(
        lambda text, binary: Action(f"junk {text!r}", _FRAMER.send(text, binary=binary)),
        junk_texts,
        st.booleans(),
    ),
    st.builds(
        lambda text, cuts, binary: Action("fragments", _fragmented(text, cuts, binary)),
        junk_texts | st.sampled_from([m.encode_message(x).decode() for x in MESSAGES]),
        st.lists(st.integers(min_value=0), max_size=4),
        st.booleans(),
    ),
    st.builds(lambda n: Action(f"oversized {n}", _FRAMER.send("x" * n)), st.integers(2049, 3000)),
    st.builds(lambda p: Action("ping", _FRAMER.ping(p)), st.binary(max_size=20)),
    st.builds(
        lambda code, reason: Action(f"close {code}", open_server_peer().close(code, reason)),
        st.sampled_from([1000, 1001, 1011, 3000, 4999]),
        st.text(max_size=10),
    ),
    st.builds(lambda b: Action(f"raw {b!r}", b), st.binary(max_size=16)),
)


# --- arbitrary input into every state ---------------------------------------------------------


@FUZZ
@given(state=st.sampled_from(DATA_STATES), chunks=st.lists(st.binary(max_size=64), max_size=6))
@pytest.mark.parametrize("make", MAKERS)
def test_arbitrary_bytes_never_raise(
    make: Callable[[], Connection], state: ConnState, chunks: list[bytes]
) -> None:
    conn = make()
    reach(conn, state, now=0.0)
    ended = conn.is_terminal
    now = 0.0
    outputs: list[Output] = []
    for chunk in chunks:
        now = advance(conn, now, now + 0.5, outputs)
        conn.receive_data(chunk, now=now)
        outputs += conn.drain()
        check_deadline(conn, now)
        check_trace(outputs)
    finish(conn, outputs, now, ended=ended)


@FUZZ
@given(
    state=st.sampled_from([ConnState.HANDSHAKING, ConnState.OPEN, ConnState.CLOSING]),
    texts=st.lists(st.tuples(junk_texts, st.booleans()), min_size=1, max_size=5),
)
@pytest.mark.parametrize("make", MAKERS)
def test_json_shaped_junk_never_raises(
    make: Callable[[], Connection], state: ConnState, texts: list[tuple[str, bool]]
) -> None:
    conn = make()
    reach(conn, state, now=0.0)
    now = 0.0
    outputs: list[Output] = []
    for text, binary in texts:
        now = advance(conn, now, now + 0.5, outputs)
        conn.receive_data(_FRAMER.send(text, binary=binary), now=now)
        got = conn.drain()
        outputs += got
        check_deadline(conn, now)
        check_trace(outputs)
        if state is ConnState.OPEN and not conn.is_terminal:
            # Whatever the content, an open socket stays open and counts it as life.
            assert conn.state is ConnState.OPEN
            assert conn.next_deadline() == now + OPTIONS.keepalive_timeout
    finish(conn, outputs, now)


@FUZZ
@given(actions=st.lists(server_actions, max_size=8))
@pytest.mark.parametrize("make", MAKERS)
def test_server_actions_in_every_state_never_raise(
    make: Callable[[], Connection], actions: list[Action]
) -> None:
    for state in DATA_STATES[1:]:
        conn = make()
        reach(conn, state, now=1.0)
        ended = conn.is_terminal
        outputs: list[Output] = []
        for action in actions:
            conn.receive_data(action.data, now=2.0)
            outputs += conn.drain()
            check_deadline(conn, 2.0)
        check_trace(outputs)
        finish(conn, outputs, 2.0, ended=ended)


# --- split invariance -------------------------------------------------------------------------


Run = tuple[list[object], list[object], ConnState, float | None]


def _run(
    make: Callable[[], Connection],
    chunks: Callable[[bytes], list[bytes]],
    body: bytes,
    *,
    batches: bool = False,
) -> Run:
    """Feed the 101 answer and ``body`` cut by ``chunks``; return events and decoded bytes.

    ``batches``: read through ``receive_batches`` (no batch may be empty) instead
    of ``receive_data`` and ``drain``.
    """
    conn = make()
    w = reach(conn, ConnState.UPGRADING, now=0.0)
    stream = w.take_answers() + body
    events: list[object] = []
    sent: list[object] = []
    for chunk in chunks(stream):
        if batches:
            got: list[Output] = []
            for batch in conn.receive_batches(chunk, now=1.0):
                assert batch
                got += batch
            assert conn.drain() == []
        else:
            conn.receive_data(chunk, now=1.0)
            got = conn.drain()
        for item in got:
            decoded = w.decode(item) if isinstance(item, SendBytes) else item
            (events if type(item) in EVENT_TYPES else sent).append(decoded)
    return events, sent, conn.state, conn.next_deadline()


@FUZZ
@given(
    actions=st.lists(server_actions, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
    answer=st.booleans(),
)
@pytest.mark.parametrize("make", MAKERS)
def test_split_invariance(
    make: Callable[[], Connection], actions: list[Action], cuts: list[int], answer: bool
) -> None:
    body = b""
    if answer:
        body += _FRAMER.send(handshake_ok(make()))
    body += b"".join(a.data for a in actions)

    def whole(stream: bytes) -> list[bytes]:
        return [stream]

    def pieces(stream: bytes) -> list[bytes]:
        points = sorted(c % (len(stream) + 1) for c in cuts)  # repeats give empty pieces
        return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]

    expected = _run(make, whole, body)
    assert _run(make, pieces, body) == expected
    assert _run(make, pieces, body, batches=True) == expected


def test_split_invariance_byte_by_byte() -> None:
    body = (
        _FRAMER.send(handshake_ok(make_signaling()))
        + _FRAMER.send(m.KeepAliveRequest(timestamp=3, sequence=4))
        + _FRAMER.ping(b"p")
        + _fragmented('{"msg_type":14,"content":{"data":"AAEC"}}', [3, 10, 11], True)
        + _FRAMER.send("not json")
        + b"\x81\x03a\xff\xfe"  # invalid UTF-8: the failure must not depend on the cut
    )

    def bytewise(stream: bytes) -> list[bytes]:
        return [stream[i : i + 1] for i in range(len(stream))]

    result = _run(make_signaling, bytewise, body)
    assert result == _run(make_signaling, lambda s: [s], body)
    events = result[0]
    assert isinstance(events[-1], ev.ConnectionFailed)
    assert events[-1].error.detail == "invalid UTF-8 text"


# --- stateful model ---------------------------------------------------------------------------


@settings(
    max_examples=80,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
class SocketModel(RuleBasedStateMachine):
    """One socket, its server Peer, and a driver with a clock."""

    def __init__(self) -> None:
        super().__init__()
        self.conn: Connection = make_signaling()
        self.wire = Wire(self.conn)
        self.now = 0.0
        self.outputs: list[Output] = []

    # --- bookkeeping ---

    def _collect(self) -> list[object]:
        """The outputs, SendBytes decoded by the Peer (which checks every client frame)."""
        raw = self.conn.drain()
        self.outputs += raw
        return [self.wire.decode(o) if isinstance(o, SendBytes) else o for o in raw]

    def _input(self, call: Callable[[], object]) -> list[object]:
        state = self.conn.state
        deadline = self.conn.next_deadline()
        try:
            call()
        except LocalProtocolError:
            assert (self.conn.state, self.conn.next_deadline()) == (state, deadline)
            assert self.conn.drain() == []
            return []
        return self._collect()

    # --- driver ---

    @initialize(kind=st.sampled_from(["signaling", "media"]))
    def choose_kind(self, kind: str) -> None:
        if kind == "media":
            self.conn = make_media()
            self.wire = Wire(self.conn)

    @rule()
    def start(self) -> None:
        self._input(lambda: self.conn.start(now=self.now))

    @rule()
    def socket_opened(self) -> None:
        self._input(lambda: self.conn.socket_opened(now=self.now))

    @rule()
    def deliver_answers(self) -> None:
        """The Peer's automatic answers: the 101, or its reply to our close frame."""
        data = self.wire.take_answers()
        if data:
            self._input(lambda: self.conn.receive_data(data, now=self.now))

    @rule(dt=st.floats(min_value=0.0, max_value=40.0))
    def time_passes(self, dt: float) -> None:
        end = self.now + dt
        deadline = self.conn.next_deadline()
        while deadline is not None and deadline <= end:
            self.now = deadline
            self._input(lambda: self.conn.handle_timer(now=self.now))
            check_deadline(self.conn, self.now)
            deadline = self.conn.next_deadline()
        self.now = end

    @rule()
    def early_timer(self) -> None:
        # The deadline is always ahead of the clock here, so this call is early.
        assert self._input(lambda: self.conn.handle_timer(now=self.now)) == []

    @rule()
    def eof(self) -> None:
        self._input(lambda: self.conn.receive_eof(now=self.now))

    @rule(detail=st.sampled_from(["refused", "reset", ""]))
    def socket_failed(self, detail: str) -> None:
        self._input(lambda: self.conn.socket_failed(detail, now=self.now))

    @rule(code=st.sampled_from([1000, 4000, 1005, 70000]))
    def close(self, code: int) -> None:
        self._input(lambda: self.conn.close(code=code, now=self.now))

    @rule()
    def command(self) -> None:
        conn = self.conn
        if isinstance(conn, SignalingConnection):
            self._input(conn.send_client_ready)

    # --- server ---

    @rule(action=server_actions)
    def server_sends(self, action: Action) -> None:
        self._input(lambda: self.conn.receive_data(action.data, now=self.now))

    @rule(binary=st.booleans(), ok=st.booleans())
    def server_answers_the_handshake(self, binary: bool, ok: bool) -> None:
        msg = handshake_ok(self.conn) if ok else {"msg_type": 2, "status_code": 3}
        data = _FRAMER.send(msg, binary=binary)
        self._input(lambda: self.conn.receive_data(data, now=self.now))

    @rule(
        timestamp=st.none() | st.integers(min_value=0, max_value=2**64),
        sequence=st.none() | st.integers(min_value=0, max_value=2**31),
        binary=st.booleans(),
    )
    def server_keep_alive(self, timestamp: int | None, sequence: int | None, binary: bool) -> None:
        state = self.conn.state
        data = _FRAMER.send(
            m.KeepAliveRequest(timestamp=timestamp, sequence=sequence), binary=binary
        )
        got = self._input(lambda: self.conn.receive_data(data, now=self.now))
        replies = [o for o in got if isinstance(o, (m.KeepAliveResponse, m.DecodeError))]
        if state in (ConnState.HANDSHAKING, ConnState.OPEN):
            assert replies == [m.KeepAliveResponse(timestamp=timestamp, sequence=sequence)]
            assert self.conn.state is state
        else:
            assert replies == []
        if state is ConnState.OPEN:
            assert self.conn.next_deadline() == self.now + OPTIONS.keepalive_timeout

    # --- invariants ---

    @invariant()
    def deadline_is_not_in_the_past(self) -> None:
        check_deadline(self.conn, self.now)

    @invariant()
    def trace_is_well_formed(self) -> None:
        terminal, closes = check_trace(self.outputs)
        assert (terminal == 1) is self.conn.is_terminal
        assert closes == terminal

    def teardown(self) -> None:
        finish(self.conn, self.outputs, self.now)


TestSocketModel = SocketModel.TestCase
