"""The media run (issue 12): ``decode_media`` against ``decode_message``, and a read of
several whole messages taken by ``Connection.receive_run`` against the general reader,
through the Session as a driver feeds it."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sim import Sim, make_config
from test_messages import media_wire

from rtms_proto import MediaType, Output
from rtms_proto import events as ev
from rtms_proto._wire.codec import decode_media
from rtms_proto.actions import SendBytes, SocketRole
from rtms_proto.messages import decode_message

_OTHER = st.fixed_dictionaries(
    {"msg_type": st.one_of(st.integers(-2, 40), st.text(max_size=3), st.none(), st.booleans())}
).map(lambda o: {**o, "content": {"data": "AAEC", "timestamp": 1}})


@settings(max_examples=500)
@given(
    obj=st.one_of(media_wire(), _OTHER),
    text=st.one_of(st.none(), st.text(max_size=40)),
    pad=st.integers(0, 2),
)
def test_decode_media_is_decode_message_or_declines(
    obj: dict[str, Any], text: str | None, pad: int
) -> None:
    """Whatever the text (a media packet, well-formed or not, another message, not
    JSON, not an object, beyond orjson's bound), decode_media gives None or exactly
    what decode_message gives."""
    data = json.dumps(obj) if text is None else text
    data += " " * (pad * 40_000 if pad == 2 else pad)
    fast = decode_media(data)
    if fast is not None:
        slow = decode_message(data)
        assert type(fast) is type(slow)
        assert fast == slow and repr(fast) == repr(slow)


def test_decode_media_takes_every_well_formed_packet() -> None:
    """The property above must not pass by always declining."""
    for msg_type, cls in (
        (14, ev.AudioReceived),
        (15, ev.VideoReceived),
        (16, ev.DeskshareReceived),
    ):
        text = json.dumps(
            {"msg_type": msg_type, "content": {"user_id": 3, "data": "AAEC", "timestamp": 9}}
        )
        got = decode_media(text)
        assert type(got) is cls and got == decode_message(text)
    assert decode_media('{"msg_type": 17, "content": {"data": "hi"}}') is None
    assert decode_media('{"msg_type": 14, "content": {"data": "!!"}}') is None  # bad base64
    assert decode_media("[14]") is None and decode_media("{") is None


# --- the Session fed reads of several messages --------------------------------------------


def _audio(i: int) -> dict[str, object]:
    """An audio packet; odd ones need a 16-bit frame length."""
    pcm = bytes((i + k) & 0xFF for k in range(400 if i & 1 else 64))
    return {
        "msg_type": 14,
        "content": {"user_id": 1, "data": base64.b64encode(pcm).decode(), "timestamp": 100 + i},
    }


MESSAGES: list[dict[str, object] | str] = [
    _audio(0),
    _audio(1),
    {"msg_type": 15, "content": {"user_id": 2, "data": "AAEC", "timestamp": 5}},
    {"msg_type": 12, "timestamp": 5},  # a keep-alive request: answered
    {"msg_type": 99, "x": 1},  # unknown: an event, ends a run
    {"msg_type": 14, "content": {"data": "*"}},  # malformed media: general path
    {"msg_type": 8, "state": 4, "reason": 0},  # stream terminated: the session ends
    "not json",
    {"msg_type": 99, "pad": "x" * 70_000},  # a 64-bit frame length: the general reader
]


def _general_only(*args: object, **kwargs: object) -> None:
    """A ``receive_run`` that always declines: every read takes the general reader."""
    return


def _run(picks: list[int], cuts: list[int], *, fast: bool) -> tuple[object, ...]:
    """Feed the picked messages to an open audio socket, in reads cut at ``cuts``."""
    sim = Sim(make_config(media=MediaType.AUDIO))
    sim.start()
    sock = sim.latest(SocketRole.AUDIO)
    conn = sim.session._conn(sock)
    assert conn is not None
    if not fast:
        conn.receive_run = _general_only  # type: ignore[method-assign]
    peer = sim.peers[sock]
    start = len(sim.log)
    wire = b"".join(peer.send(MESSAGES[i]) for i in picks)
    points = sorted(c % (len(wire) + 1) for c in cuts)
    for a, b in zip([0, *points], [*points, len(wire)], strict=True):
        sim.session.receive_data(sock, wire[a:b], now=sim.now)
        sim.run()
    return (
        _seen(sim.log[start:]),
        list(peer.received),
        sim.session.state,
        conn.state,
        conn.messages_received,
        conn.next_deadline(),
    )


def _seen(log: list[Output]) -> list[object]:
    """The outputs, each frame sent as its socket (a client masks it at random: what it
    said is in the server's ``received``)."""
    return [("sent", o.sock) if isinstance(o, SendBytes) else o for o in log]


@settings(max_examples=300, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(MESSAGES) - 1), min_size=1, max_size=8),
    cuts=st.lists(st.integers(0, 100_000), max_size=6),
)
def test_reads_of_several_messages_give_what_the_general_reader_gives(
    picks: list[int], cuts: list[int]
) -> None:
    """However the messages are grouped into reads (whole runs of media packets, a
    run ended by a message that needs a reaction, cut frames), the Session's outputs,
    what the server receives, the session's and the socket's state equal those of the
    general reader alone: a run hands media packets over in one batch, and never
    changes their order or what follows them."""
    assert _run(picks, cuts, fast=True) == _run(picks, cuts, fast=False)


def test_a_read_of_media_packets_is_one_batch() -> None:
    """The property above must not pass by always declining.  The usual read, several
    audio packets (the last one cut), is taken whole by receive_run: one batch of
    events, the cut frame buffered and finished by the next read, the keep-alive
    deadline moved once."""
    sim = Sim(make_config(media=MediaType.AUDIO))
    sim.start()
    sock = sim.latest(SocketRole.AUDIO)
    conn = sim.session._conn(sock)
    assert conn is not None
    wire = b"".join(sim.peers[sock].send(_audio(i)) for i in range(4))
    before = conn.messages_received
    run = conn.receive_run(wire[:-5], now=7.0)
    assert run is not None
    out, rest = run
    assert not rest
    assert [type(o) for o in out] == [ev.AudioReceived] * 3
    assert [o.timestamp for o in out if isinstance(o, ev.AudioReceived)] == [100, 101, 102]
    assert conn.messages_received == before + 3
    assert conn.next_deadline() == 7.0 + conn.options.keepalive_timeout
    run = conn.receive_run(wire[-5:], now=8.0)
    assert run is not None
    assert [o.timestamp for o in run[0] if isinstance(o, ev.AudioReceived)] == [103]
    assert conn.receive_run(bytearray(wire), now=7.0) is None  # bytes only
