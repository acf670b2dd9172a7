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

Both should cost the same whatever the number of streams.  ``--core`` loads
another copy of ``server_core.py`` (for example the one before a change) in
place of the installed one.

    python bench/bench_fake_server.py [--streams 1,10,100,1000] [--inputs N] [--rounds R]
        [--core PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from types import ModuleType

from rtms_conformance import server_core
from rtms_conformance.memory import MemoryNetwork
from rtms_conformance.server_core import ConnId, FakeRtmsServer, ServerConfig, StreamSpec
from rtms_proto import handshake_signature
from rtms_proto import messages as m

CLIENT_ID = "bench-client-id"
SECRET = "bench-client-secret"
PACKET = 0.02  # seconds of audio per packet: the streams' starts are spread over one


def load_core(path: str) -> ModuleType:
    """``server_core.py`` from ``path``, inside the ``rtms_conformance`` package."""
    spec = importlib.util.spec_from_file_location("rtms_conformance._bench_core", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def client_frame(text: bytes) -> bytes:
    """One masked client text frame (short payloads only)."""
    assert len(text) < 126
    mask = b"\x5a\xa5\x3c\xc3"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
    return bytes([0x81, 0x80 | len(text)]) + mask + masked


def build(core: ModuleType, streams: int) -> tuple[FakeRtmsServer, list[ConnId]]:
    """A server with ``streams`` released audio streams; the signaling connection ids."""
    # Keep-alives are not answered once the core is driven directly: keep them away.
    server: FakeRtmsServer = core.FakeRtmsServer(
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
    parser.add_argument("--core", help="path of another server_core.py to measure")
    args = parser.parse_args()
    core = load_core(args.core) if args.core else server_core
    print(f"core: {core.__file__}")
    print(f"{'streams':>8} {'handle_timer us':>16} {'receive_data us':>16}")
    for n in (int(x) for x in args.streams.split(",")):
        server, conns = build(core, n)
        runs = [time_timer(server, args.inputs) for _ in range(args.rounds)]
        timer, now = min(t for t, _ in runs), runs[-1][1]
        data = min(time_data(server, conns, args.inputs, now) for _ in range(args.rounds))
        per = 1e6 / args.inputs
        print(f"{n:>8} {timer * per:>16.1f} {data * per:>16.1f}")


if __name__ == "__main__":
    main()
