"""Throughput of the three drivers against a websockets + json baseline (not a test).

Each client joins a stream of the fake RTMS server (over TLS on loopback
unless ``--plain``) that has a backlog of 20 ms audio messages, so the server
sends them as fast as it can, and receives ``--messages`` of them.  The
server runs in a subprocess, so only the client's work is measured:

* msgs/s: audio messages received per wall-clock second, from the first
  message after a settling pause (during which the server finishes
  generating the backlog and the client stops reading, as its queue is full)
  to the last;
* CPU s / 100k: the client process's CPU time (all its threads) from
  ``connect`` to the last message, per 100 000 messages.

The baseline is written the way Zoom's Python samples are: ``websockets``
connections, ``json.dumps`` handshakes, ``json.loads`` and ``base64`` for
every message, keep-alives answered.

Clients run in turn, round after round, and each figure is a client's best
round (fastest rate, least CPU): the shared 2-core machines this runs on
change speed from minute to minute, and interleaved rounds give every client
the same chances.  Where the machine has two CPUs or more, the client is
pinned to one and the server to another, so that they do not take turns on
the same core.

``--instructions`` measures instead what no neighbour can disturb: each
client runs under valgrind's callgrind twice, receiving ``--messages`` and
then three times as many, and the difference in instructions executed by the
client process, divided by the difference in messages, is its cost per
message (start-up, imports and handshakes cancel out).  It takes a few
minutes.  Usage::

    python bench/bench_transports.py [--messages 30000] [--rounds 5] [--plain]
    python bench/bench_transports.py --instructions [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callgrind import instructions

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-not-a-real-one"
SETTLE = 1.0
DRIVERS = ("baseline", "asyncio", "trio", "blocking")


# --------------------------------------------------------------------------- the server process


def serve(plain: bool) -> None:
    """Serve streams with backlogs; commands on stdin, answers on stdout (JSON lines)."""
    from rtms_conformance.meeting import MeetingSpec
    from rtms_conformance.net import ServerThread
    from rtms_conformance.server import ServerConfig, StreamSpec
    from rtms_conformance.tls import make_test_ca
    from rtms_proto import MediaType

    tls = None if plain else make_test_ca()
    ca_path = ""
    if tls is not None:
        ca_path = str(tls.write_ca(os.path.join(tempfile.mkdtemp(), "bench-ca.pem")))
    config = ServerConfig(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, audio_buffer_limit=100_000.0
    )
    meeting = MeetingSpec(
        participants=1, transcripts=False, chat_interval=None, share_at=None, video=False
    )
    context = None if tls is None else tls.server_context
    with ServerThread(config, ssl_context=context, timeout=60.0) as server:
        print(json.dumps({"ca": ca_path}), flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] != "stream":
                break
            stream_id, count = words[1], int(words[2])
            backlog = count * 0.020 + 1.0
            spec = StreamSpec(
                meeting_uuid=f"meeting-{stream_id}",
                rtms_stream_id=stream_id,
                scopes=MediaType.AUDIO,
                offer_all=False,
                meeting=meeting,
            )

            info = add_backdated(server, spec, backlog)
            body = server.rtms_started_body(info)
            print(json.dumps({"body": body.decode()}), flush=True)


def add_backdated(server: Any, spec: Any, seconds: float) -> Any:
    """Add ``spec`` as if it had started ``seconds`` ago: its audio is all due now."""

    def add(core: Any, now: float) -> Any:
        return core.add_stream(spec, now - seconds)

    return server.call(lambda running: running.call(add))


# --------------------------------------------------------------------------- measuring


@dataclass
class Meter:
    """Counts audio messages; times the run after the settling pause."""

    wanted: int
    count: int = 0
    cpu0: float = 0.0
    wall1: float = 0.0
    counted: int = 0
    done_at: float = 0.0
    cpu: float = 0.0

    def start(self) -> None:
        self.cpu0 = time.process_time()

    def audio(self) -> bool:
        """One audio message; True once enough were received."""
        self.count += 1
        if self.count == 2:  # the first message after the pause starts the clock
            self.wall1 = time.perf_counter()
        if self.count >= self.wanted:
            self.done_at = time.perf_counter()
            self.cpu = time.process_time() - self.cpu0
            self.counted = self.count - 2
            return True
        return False

    @property
    def rate(self) -> float:
        return self.counted / (self.done_at - self.wall1)

    @property
    def cpu_per_100k(self) -> float:
        return self.cpu / self.count * 100_000


def transport_options(ca: str) -> Any:
    from rtms_transports import TransportOptions

    return TransportOptions(ca_file=ca or None)


def driver_config(body: str) -> Any:
    from rtms_proto import MediaType
    from rtms_transports import session_config

    return session_config(
        body.encode(),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        media=MediaType.AUDIO,
        events=(),
        buffer_data=True,
        allowed_hosts=("127.0.0.1",),
    )


def run_asyncio(body: str, ca: str, wanted: int, settle: float = SETTLE) -> Meter:
    from rtms_proto import events as ev
    from rtms_transports.asyncio import connect

    meter = Meter(wanted)

    async def main() -> None:
        meter.start()
        async with connect(driver_config(body), options=transport_options(ca)) as stream:
            async for event in stream:
                if type(event) is ev.AudioReceived:
                    if meter.count == 0:
                        await asyncio.sleep(settle)
                    if meter.audio():
                        break

    asyncio.run(main())
    return meter


def run_trio(body: str, ca: str, wanted: int, settle: float = SETTLE) -> Meter:
    import trio

    from rtms_proto import events as ev
    from rtms_transports.trio import connect

    meter = Meter(wanted)

    async def main() -> None:
        meter.start()
        async with connect(driver_config(body), options=transport_options(ca)) as stream:
            async for event in stream:
                if type(event) is ev.AudioReceived:
                    if meter.count == 0:
                        await trio.sleep(settle)
                    if meter.audio():
                        break

    trio.run(main)
    return meter


def run_blocking(body: str, ca: str, wanted: int, settle: float = SETTLE) -> Meter:
    from rtms_proto import events as ev
    from rtms_transports.blocking import connect

    meter = Meter(wanted)
    meter.start()
    with connect(driver_config(body), options=transport_options(ca)) as stream:
        for event in stream:
            if type(event) is ev.AudioReceived:
                if meter.count == 0:
                    time.sleep(settle)
                if meter.audio():
                    break
    return meter


def run_baseline(body: str, ca: str, wanted: int, settle: float = SETTLE) -> Meter:
    """A client as Zoom's Python samples write it: websockets, json, base64."""
    import hashlib
    import hmac

    import websockets

    meter = Meter(wanted)
    payload = json.loads(body)["payload"]
    meeting_uuid, stream_id = payload["meeting_uuid"], payload["rtms_stream_id"]
    signature = hmac.new(
        CLIENT_SECRET.encode(),
        f"{CLIENT_ID},{meeting_uuid},{stream_id}".encode(),
        hashlib.sha256,
    ).hexdigest()
    context = ssl.create_default_context(cafile=ca) if ca else None

    async def keepalives(ws: Any) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("msg_type") == 12:
                await ws.send(json.dumps({"msg_type": 13, "timestamp": msg.get("timestamp")}))

    async def main() -> None:
        meter.start()
        async with websockets.connect(payload["server_urls"], ssl=context) as signaling:
            await signaling.send(
                json.dumps(
                    {
                        "msg_type": 1,
                        "protocol_version": 1,
                        "sequence": 1,
                        "meeting_uuid": meeting_uuid,
                        "rtms_stream_id": stream_id,
                        "signature": signature,
                        "buffer_data": True,
                    }
                )
            )
            answer = json.loads(await signaling.recv())
            url = answer["media_server"]["server_urls"]["audio"]
            async with websockets.connect(url, ssl=context) as media:
                await media.send(
                    json.dumps(
                        {
                            "msg_type": 3,
                            "protocol_version": 1,
                            "sequence": 1,
                            "meeting_uuid": meeting_uuid,
                            "rtms_stream_id": stream_id,
                            "signature": signature,
                            "media_type": 1,
                            "payload_encryption": False,
                            "media_params": {
                                "audio": {
                                    "content_type": 2,
                                    "sample_rate": 1,
                                    "channel": 1,
                                    "codec": 1,
                                    "data_opt": 1,
                                    "send_rate": 20,
                                }
                            },
                        }
                    )
                )
                json.loads(await media.recv())
                await signaling.send(json.dumps({"msg_type": 7, "rtms_stream_id": stream_id}))
                task = asyncio.create_task(keepalives(signaling))
                try:
                    async for raw in media:
                        msg = json.loads(raw)
                        kind = msg.get("msg_type")
                        if kind == 14:
                            base64.b64decode(msg["content"]["data"])
                            if meter.count == 0:
                                await asyncio.sleep(settle)
                            if meter.audio():
                                break
                        elif kind == 12:
                            await media.send(
                                json.dumps({"msg_type": 13, "timestamp": msg.get("timestamp")})
                            )
                finally:
                    task.cancel()

    asyncio.run(main())
    return meter


RUNNERS: dict[str, Callable[[str, str, int, float], Meter]] = {
    "baseline": run_baseline,
    "asyncio": run_asyncio,
    "trio": run_trio,
    "blocking": run_blocking,
}


# --------------------------------------------------------------------------- main


def pin_cpus() -> int | None:
    """Keep this process on one CPU and return another one for the server, if there are two."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    os.sched_setaffinity(0, {cpus[0]})
    return cpus[1]


def new_stream(server: subprocess.Popen[str], number: int, messages: int) -> str:
    """Ask the server process for a stream with a backlog; its rtms_started body."""
    assert server.stdin is not None and server.stdout is not None
    server.stdin.write(f"stream bench-{number} {messages}\n")
    server.stdin.flush()
    body: str = json.loads(server.stdout.readline())["body"]
    return body


def start_server(plain: bool, pin: int | None) -> tuple[subprocess.Popen[str], str]:
    """The fake server process and the path of its CA certificate ("" without TLS)."""
    command = [sys.executable, os.path.abspath(__file__), "--serve"]
    if plain:
        command.append("--plain")
    if pin is not None:
        command += ["--cpu", str(pin)]
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    ca: str = json.loads(server.stdout.readline())["ca"]
    return server, ca


def stop_server(server: subprocess.Popen[str]) -> None:
    assert server.stdin is not None
    server.stdin.close()
    server.wait(30)


def measure_rates(args: argparse.Namespace, names: list[str]) -> None:
    pin = pin_cpus()
    server, ca = start_server(args.plain, pin)
    try:
        best: dict[str, Meter] = {}
        least_cpu: dict[str, float] = {}
        number = 0
        started = time.perf_counter()
        for round_ in range(args.rounds):
            for name in names:
                number += 1
                body = new_stream(server, number, args.messages)
                meter = RUNNERS[name](body, ca, args.messages, SETTLE)
                print(
                    f"  round {round_ + 1} {name:9s} {meter.rate:10,.0f} msgs/s"
                    f" {meter.cpu_per_100k:7.2f} CPU s/100k",
                    flush=True,
                )
                kept = best.get(name)
                if kept is None or meter.rate > kept.rate:
                    best[name] = meter
                least_cpu[name] = min(least_cpu.get(name, meter.cpu_per_100k), meter.cpu_per_100k)
        elapsed = time.perf_counter() - started
    finally:
        stop_server(server)
    base = best.get("baseline")
    scheme = "ws" if args.plain else "wss"
    print(
        f"\n{args.messages} x 20 ms audio messages over {scheme}:// on loopback,"
        f" best of {args.rounds} ({elapsed:.0f} s in all)"
        + ("" if pin is None else "; client and server on separate CPUs")
    )
    print(f"{'client':10s} {'msgs/s':>10s} {'CPU s/100k':>11s} {'rate/base':>10s} {'CPU/base':>9s}")
    for name in names:
        rate, cpu = best[name].rate, least_cpu[name]
        ratio = f"{rate / base.rate:10.2f}" if base else f"{'-':>10s}"
        cpu_ratio = f"{cpu / least_cpu['baseline']:9.2f}" if base else f"{'-':>9s}"
        print(f"{name:10s} {rate:10,.0f} {cpu:11.2f} {ratio} {cpu_ratio}")


def measure_instructions(args: argparse.Namespace, names: list[str]) -> None:
    counts = (args.messages, 3 * args.messages)
    server, ca = start_server(args.plain, None)
    per_message: dict[str, float] = {}
    try:
        number = 0
        for name in names:
            collected = []
            for count in counts:
                number += 1
                body = new_stream(server, number, count)
                with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                    f.write(body)
                client = [os.path.abspath(__file__), "--client", name, "--body-file", f.name]
                client += ["--ca", ca, "--messages", str(count)]
                try:
                    collected.append(instructions(client, name))
                finally:
                    os.unlink(f.name)
            per_message[name] = (collected[1] - collected[0]) / (counts[1] - counts[0])
            print(f"  {name:9s} {per_message[name]:10,.0f} instructions/msg", flush=True)
    finally:
        stop_server(server)
    base = per_message.get("baseline")
    scheme = "ws" if args.plain else "wss"
    print(
        f"\nclient instructions per 20 ms audio message over {scheme}:// (callgrind,"
        f" {counts[1]} - {counts[0]} messages)"
    )
    print(f"{'client':10s} {'instr/msg':>10s} {'speed/base':>11s}")
    for name in names:
        ratio = f"{base / per_message[name]:11.2f}" if base else f"{'-':>11s}"
        print(f"{name:10s} {per_message[name]:10,.0f} {ratio}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, help="audio messages per run (30000; 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="runs per client (best is kept)")
    parser.add_argument("--plain", action="store_true", help="ws:// instead of wss://")
    parser.add_argument(
        "--drivers", default=",".join(DRIVERS), help=f"comma-separated subset of {DRIVERS}"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under valgrind instead"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=DRIVERS, help=argparse.SUPPRESS)
    parser.add_argument("--body-file", help=argparse.SUPPRESS)
    parser.add_argument("--ca", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        if args.cpu is not None:
            os.sched_setaffinity(0, {args.cpu})
        serve(args.plain)
        return 0
    if args.client:
        with open(args.body_file) as f:
            # Instructions, not time, are counted: no need to wait long.
            RUNNERS[args.client](f.read(), args.ca, args.messages, 0.1)
        return 0
    names = [n for n in args.drivers.split(",") if n]
    unknown = set(names) - set(DRIVERS)
    if unknown:
        parser.error(f"unknown drivers: {', '.join(sorted(unknown))}")
    if args.instructions:
        args.messages = args.messages or 2000
        measure_instructions(args, names)
    else:
        args.messages = args.messages or 30_000
        measure_rates(args, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
