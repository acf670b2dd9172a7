"""What one input costs the fake RTMS server core, by the number of streams it serves.

Every stream has a signaling and a released audio socket (raw WebSocket peers
on a :class:`MemoryNetwork`), the streams started a fraction of an audio
packet apart so their timed work is spread out.  Then the core is driven
directly on a simulated clock and two inputs are timed, best of several
rounds:

* ``handle_timer`` at ``next_deadline()`` (one stream's audio packet is due),
  with the ``next_deadline`` and ``drain`` calls a driver makes around it;
* ``receive_data`` of one keep-alive request on one signaling socket (nothing
  timed is due), with its ``drain``.

Both should cost the same whatever the number of streams.  To compare two
versions of the server (before and after a change), run this script from each
one's checkout and environment, alternately, several times: the machine's
load moves the figures more than most changes do.

    python bench/bench_fake_server.py [--streams 1,10,100,1000] [--inputs N] [--rounds R]
"""

from __future__ import annotations

import argparse
import time

import rtms_conformance.server
from rtms_conformance.memory import MemoryNetwork
from rtms_conformance.server import ConnId, FakeRtmsServer, ServerConfig, StreamSpec
from rtms_proto import handshake_signature
from rtms_proto import messages as m

CLIENT_ID = "bench-client-id"
SECRET = "bench-client-secret"
PACKET = 0.02  # seconds of audio per packet: the streams' starts are spread over one


def client_frame(text: bytes) -> bytes:
    """One masked client text frame (short payloads only)."""
    assert len(text) < 126
    mask = b"\x5a\xa5\x3c\xc3"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
    return bytes([0x81, 0x80 | len(text)]) + mask + masked


def build(streams: int) -> tuple[FakeRtmsServer, list[ConnId]]:
    """A server with ``streams`` released audio streams; the signaling connection ids."""
    # Keep-alives are not answered once the core is driven directly: keep them away.
    server = FakeRtmsServer(
        ServerConfig(client_id=CLIENT_ID, client_secret=SECRET, keepalive_interval=3600.0)
    )
    net = MemoryNetwork(server)
    signaling = []
    for i in range(streams):
        sid, uuid = f"bench-stream-{i}", f"bench-meeting-{i}=="
        net.now = i * PACKET / streams
        server.add_stream(StreamSpec(meeting_uuid=uuid, rtms_stream_id=sid), net.now)
        hello = {
            "msg_type": 1,
            "protocol_version": 1,
            "meeting_uuid": uuid,
            "rtms_stream_id": sid,
            "signature": handshake_signature(
                client_id=CLIENT_ID, client_secret=SECRET, instance_id=uuid, rtms_stream_id=sid
            ),
        }
        sig = net.open(f"/signaling/{sid}")
        sig.send(hello)
        audio = net.open(f"/media/{sid}/audio")
        audio.send({**hello, "msg_type": 3, "media_type": 1})
        sig.send({"msg_type": 7, "rtms_stream_id": sid})
        assert sig.link is not None
        signaling.append(sig.link.conn)
    server.drain()
    return server, signaling


def time_timer(server: FakeRtmsServer, inputs: int) -> tuple[float, float]:
    """Seconds for ``inputs`` timer inputs, and the simulated time reached."""
    due = 0.0
    start = time.perf_counter()
    for _ in range(inputs):
        next_due = server.next_deadline()
        assert next_due is not None
        due = next_due
        server.handle_timer(due)
        server.drain()
    return time.perf_counter() - start, due


def time_data(server: FakeRtmsServer, conns: list[ConnId], inputs: int, now: float) -> float:
    """Seconds for ``inputs`` keep-alive requests at ``now``, when nothing timed is due."""
    frame = client_frame(m.encode_message(m.KeepAliveRequest(timestamp=1, sequence=1)))
    start = time.perf_counter()
    for i in range(inputs):
        server.receive_data(conns[i % len(conns)], frame, now)
        server.drain()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,10,100,1000", help="comma-separated counts")
    parser.add_argument("--inputs", type=int, default=2000, help="inputs per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"server: {rtms_conformance.server.__file__}")
    print(f"{'streams':>8} {'handle_timer us':>16} {'receive_data us':>16}")
    for n in (int(x) for x in args.streams.split(",")):
        server, conns = build(n)
        runs = [time_timer(server, args.inputs) for _ in range(args.rounds)]
        timer, now = min(t for t, _ in runs), runs[-1][1]
        data = min(time_data(server, conns, args.inputs, now) for _ in range(args.rounds))
        per = 1e6 / args.inputs
        print(f"{n:>8} {timer * per:>16.1f} {data * per:>16.1f}")


if __name__ == "__main__":
    main()
