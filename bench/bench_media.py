"""How fast MediaConnection turns a recorded audio stream into events.

Feeds a realistic stream (20 ms L16 audio frames of 640 bytes, base64 in
JSON, unmasked server frames, read in 64 KiB chunks as a socket would give
them) through the whole core stack (frame reader + codec + machine + events)
and, in the same run, through the floors the issue compares it with:
wsproto's frame parsing alone (the general-purpose reader the core used
before it read server frames itself), and ``json.loads`` +
``base64.b64decode`` alone.  Prints messages per
second, best of several rounds, and the ratios.

``--instructions`` counts instead what a busy machine cannot disturb: the
instructions per message of the stack and of wsproto alone, under valgrind's
callgrind, each minus a run that only prepares the same input.

    python bench/bench_media.py [--frames N] [--rounds R]
    python bench/bench_media.py --instructions [--frames 3000]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections.abc import Callable

from callgrind import instructions
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, Request, TextMessage

from rtms_proto import Credentials, MediaConnection, MediaType, StreamIdentity
from rtms_proto import events as ev
from rtms_proto import messages as m
from rtms_proto.actions import OpenSocket, SendBytes, SocketId, SocketRole

CHUNK = 64 * 1024


def recorded_stream(frames: int) -> tuple[list[str], bytes]:
    """The JSON texts and the server's wire bytes for ``frames`` audio packets."""
    server = Connection(ConnectionType.SERVER)
    texts = []
    wire = bytearray()
    for i in range(frames):
        pcm = bytes((i + k) & 0xFF for k in range(640))
        text = json.dumps(
            {
                "msg_type": 14,
                "content": {
                    "user_id": 0,
                    "data": base64.b64encode(pcm).decode(),
                    "timestamp": 1_700_000_000_000 + 20 * i,
                },
            }
        )
        texts.append(text)
        wire += server.send(TextMessage(data=text))
    return texts, bytes(wire)


def open_media_connection() -> MediaConnection:
    """A MediaConnection walked to OPEN through a real upgrade and handshake."""
    conn = MediaConnection(
        sock=SocketId(1, SocketRole.AUDIO),
        url="wss://rtms-sjc1.zoom.us/audio",
        stream=StreamIdentity(instance_id="m", rtms_stream_id="s"),
        credentials=Credentials(client_id="c", client_secret="k"),
        media_type=MediaType.AUDIO,
    )
    peer = WSConnection(ConnectionType.SERVER)
    conn.start(now=0.0)
    conn.socket_opened(now=0.0)
    for out in conn.drain():
        if isinstance(out, SendBytes):
            peer.receive_data(out.data)
    for event in peer.events():
        if isinstance(event, Request):
            reply = peer.send(AcceptConnection())
            reply += peer.send(
                TextMessage(data=m.encode_message(m.MediaHandshakeResponse(status_code=0)).decode())
            )
            conn.receive_data(reply, now=0.0)
    assert any(isinstance(o, ev.MediaConnected) for o in conn.drain())
    assert not isinstance(conn.drain(), OpenSocket)
    return conn


def chunks(wire: bytes) -> list[bytes]:
    return [wire[i : i + CHUNK] for i in range(0, len(wire), CHUNK)]


def run_stack(wire_chunks: list[bytes], frames: int) -> float:
    conn = open_media_connection()
    start = time.process_time()
    got = 0
    for chunk in wire_chunks:
        conn.receive_data(chunk, now=1.0)
        got += len(conn.drain())
    elapsed = time.process_time() - start
    assert got == frames, got
    return elapsed


def run_wsproto(wire_chunks: list[bytes], frames: int) -> float:
    client = Connection(ConnectionType.CLIENT)
    start = time.process_time()
    got = 0
    for chunk in wire_chunks:
        client.receive_data(chunk)
        for event in client.events():
            got += event.message_finished  # type: ignore[attr-defined]
    elapsed = time.process_time() - start
    assert got == frames, got
    return elapsed


def run_json_b64(texts: list[str], frames: int) -> float:
    loads, b64 = json.loads, base64.b64decode
    start = time.process_time()
    for text in texts:
        b64(loads(text)["content"]["data"])
    return time.process_time() - start


def best_interleaved(fns: list[Callable[[], float]], rounds: int) -> list[float]:
    """Each function's least time, the functions taking turns round after round.

    A shared VM changes speed from minute to minute; taking turns gives every
    measurement the same chances, so the ratios printed are of like with like.
    """
    times = [[fn() for fn in fns] for _ in range(rounds)]
    return [min(column) for column in zip(*times, strict=True)]


PHASES = ("input", "input+connection", "stack", "wsproto")
"""What one run under valgrind does: prepare the input (and the connection), then feed it."""


def run_phase(phase: str, frames: int) -> None:
    _, wire = recorded_stream(frames)
    wire_chunks = chunks(wire)
    if phase == "input+connection":
        open_media_connection()
    elif phase == "stack":
        run_stack(wire_chunks, frames)
    elif phase == "wsproto":
        run_wsproto(wire_chunks, frames)


def count_instructions(frames: int) -> None:
    counted = {
        phase: instructions(
            [os.path.abspath(__file__), "--phase", phase, "--frames", str(frames)], phase
        )
        for phase in PHASES
    }
    stack = (counted["stack"] - counted["input+connection"]) / frames
    wsp = (counted["wsproto"] - counted["input"]) / frames
    print(f"{frames} audio frames of 640 bytes, instructions per message (callgrind)")
    print(f"  rtms_proto MediaConnection (frames + codec + machine): {stack:12,.0f}")
    print(f"  wsproto frame parsing alone:                          {wsp:12,.0f}")
    print(f"  ratio stack / wsproto alone: {wsp / stack:.2f}x  (goal >= 0.80x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under valgrind instead"
    )
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args.phase, args.frames)
        return
    if args.instructions:
        count_instructions(args.frames or 3000)
        return
    args.frames = args.frames or 20_000
    texts, wire = recorded_stream(args.frames)
    wire_chunks = chunks(wire)
    n = args.frames
    stack, wsp, jb = best_interleaved(
        [
            lambda: run_stack(wire_chunks, n),
            lambda: run_wsproto(wire_chunks, n),
            lambda: run_json_b64(texts, n),
        ],
        args.rounds,
    )
    print(f"{n} audio frames of 640 bytes, {len(wire)} wire bytes, best of {args.rounds}")
    print(f"  rtms_proto MediaConnection (frames + codec + machine): {n / stack:12,.0f} msg/s")
    print(f"  wsproto frame parsing alone:                          {n / wsp:12,.0f} msg/s")
    print(f"  json.loads + base64.b64decode alone:                  {n / jb:12,.0f} msg/s")
    print(f"  ratio stack / wsproto alone: {wsp / stack:.2f}x  (goal >= 0.80x)")
    print(f"  ratio stack / (wsproto + json + b64): {(wsp + jb) / stack:.2f}x")


if __name__ == "__main__":
    main()
