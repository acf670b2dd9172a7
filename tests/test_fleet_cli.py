"""``rtms-proto listen --engine``: real nodes (subprocesses), a real ``nats-server -js``,
the fake RTMS server serving several streams and signed webhooks, all on 127.0.0.1.

Leases are short (2 s) so that a dead node's streams move within seconds.
Recordings are checked against the PCM the fake server sent.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_harness import (
    CLIENT_ID,
    SECRET,
    WEBHOOK_SECRET,
    cli_env,
    fake_server,
    read_jsonl,
    read_wav,
    recording_ended,
    server_config,
    tls,
    wait_until,
)
from nats_harness import free_port, nats_cluster, nats_server

from rtms_app.cli import build_parser
from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import ServerThread, post_webhook
from rtms_conformance.server import StreamInfo, StreamSpec
from rtms_conformance.webhooks import rtms_stopped_body
from rtms_fleet import DEFAULT_LEASE, NodeConfig
from rtms_proto import AudioParams
from rtms_proto.enums import Product, StopReason

LEASE = "2"
PACKET = 640  # 20 ms of 16 kHz mono 16-bit audio


@dataclass
class NodeProc:
    """One ``listen --engine`` node: its process, port and output files."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def out(self) -> str:
        return self.stdout.read_text("utf-8", "replace")

    def err(self) -> str:
        return self.stderr.read_text("utf-8", "replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(30)


class Fleet:
    """Starts nodes; kills whatever is left at the end."""

    def __init__(self, tmp: Path, engine: str) -> None:
        self.tmp = tmp
        self.engine = engine
        self.out = tmp / "recordings"
        self.ca = tls().write_ca(tmp / "ca.pem")
        self.nodes: list[NodeProc] = []

    def start(self, name: str, *extra: str, engine: str | None = None) -> NodeProc:
        stdout, stderr = self.tmp / f"{name}.out", self.tmp / f"{name}.err"
        port = free_port()
        args = [
            *(sys.executable, "-m", "rtms_app", "listen", "-v", "--port", str(port)),
            *("--out", str(self.out), "--ca-file", str(self.ca), "--allow-host", "127.0.0.1"),
            *("--client-id", CLIENT_ID, "--engine", engine or self.engine, "--node", name),
            *("--lease", LEASE, "--media", "audio,transcript"),
            *extra,
        ]
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=cli_env({"ZM_RTMS_SECRET": SECRET, "ZM_RTMS_WEBHOOK_SECRET": WEBHOOK_SECRET}),
            )
        node = NodeProc(name, proc, port, stdout, stderr)
        self.nodes.append(node)
        return node

    def ready(self, *nodes: NodeProc) -> None:
        for node in nodes:
            wait_until(lambda: all("listening for Zoom" in n.out() or not n.alive() for n in nodes))
            assert node.alive(), node.err()

    def close(self) -> None:
        for node in self.nodes:
            node.kill()
        # pytest shows what a test printed only when it fails: each node's log then says why
        for node in self.nodes:
            print(f"---- node {node.name} (exit {node.proc.returncode})\n{node.out()}{node.err()}")


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    with nats_server(tmp_path) as server:
        yield server.url


@pytest.fixture
def fleet(tmp_path: Path, nats_url: str) -> Iterator[Fleet]:
    f = Fleet(tmp_path, nats_url)
    try:
        yield f
    finally:
        f.close()


def add(server: ServerThread, sid: str, duration: float) -> StreamInfo:
    return server.add_stream(
        StreamSpec(
            meeting_uuid=f"{sid}-uuid==",
            rtms_stream_id=sid,
            meeting=MeetingSpec(duration=duration, chat_interval=None, share_at=None),
        )
    )


def deliver(server: ServerThread, info: StreamInfo, *nodes: NodeProc) -> None:
    body = server.rtms_started_body(info)
    for node in nodes:
        assert post_webhook(node.url, body, WEBHOOK_SECRET) == 200


def owner(nodes: list[NodeProc], sid: str, verb: str = "recording") -> NodeProc | None:
    found = [n for n in nodes if f"stream {sid}: {verb} into" in n.out()]
    return found[-1] if found else None


def http_get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read().decode()
    finally:
        conn.close()


def expected_pcm(server: ServerThread, info: StreamInfo, ms: int) -> bytes:
    epoch, sid = info.media_epoch_ms, info.rtms_stream_id
    return server.call(lambda r: r.server.expected_audio(sid, AudioParams(), epoch, epoch + ms))


def audio_of(folder: Path) -> bytes:
    return read_wav(folder / "audio.wav")[2]


def missing_packets(got: bytes, want: bytes) -> list[int]:
    """The 20 ms packets of ``want`` that ``got`` has as silence; fails on any other
    difference (a packet twice, or out of place)."""
    assert len(got) == len(want), (len(got), len(want))
    missing = []
    for n in range(0, len(want), PACKET):
        a, b = got[n : n + PACKET], want[n : n + PACKET]
        if a != b:
            assert a == bytes(len(a)), f"packet {n // PACKET} differs and is not silence"
            missing.append(n // PACKET)
    return missing


def contiguous(missing: list[int], want: bytes) -> bool:
    """The missing packets are one run, but for packets the server sent as silence
    (a pause in the meeting: missing or not, they are equal)."""
    if not missing:
        return True
    gaps = set(range(missing[0], missing[-1] + 1)) - set(missing)
    return all(want[n * PACKET : (n + 1) * PACKET] == bytes(PACKET) for n in gaps)


# --------------------------------------------------------------------------------- tests


def test_engine_unreachable_at_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    f = Fleet(tmp_path, f"nats://127.0.0.1:{free_port()}")
    try:
        node = f.start("a")
        assert node.proc.wait(60) == 1
        err_lines = [x for x in node.err().splitlines() if "error:" in x]
        assert len(err_lines) == 1, node.err()
        assert err_lines[0].startswith("rtms-proto listen: error: cannot use the engine")
        assert SECRET not in node.err() and WEBHOOK_SECRET not in node.err()
    finally:
        f.close()


def test_the_same_webhook_to_two_nodes_gives_one_connection(fleet: Fleet) -> None:
    a, b = fleet.start("a"), fleet.start("b")
    fleet.ready(a, b)
    with fake_server() as server:
        info = add(server, "dup-1", 3.0)
        deliver(server, info, a, b, a)  # and Zoom retried a delivery
        folder = fleet.out / "dup-1"
        wait_until(lambda: recording_ended(folder), timeout=30)
        assert server.status(info).signaling_handshakes == 1
        want = expected_pcm(server, info, 3000)
    assert [n.name for n in (a, b) if "stream dup-1: recording into" in n.out()] in (["a"], ["b"])
    assert audio_of(folder) == want
    assert sorted(p.name for p in fleet.out.iterdir()) == ["dup-1"]
    # the nodes' metrics say the same: one claim, one webhook stored, one duplicate
    # (the retry to node a never left it: its receiver ignores repeated deliveries)
    totals: dict[str, float] = {}
    for node in (a, b):
        status, text = http_get(node.port, "/readyz")
        assert status == 200, text
        for line in http_get(node.port, "/metrics")[1].splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                totals[key] = totals.get(key, 0.0) + float(value)
    assert totals["rtms_stream_claims_total"] == 1
    assert totals["rtms_stream_takeovers_total"] == 0
    assert totals["rtms_webhooks_stored_total"] == 1
    assert totals["rtms_webhooks_duplicate_total"] == 1
    assert totals['rtms_messages_total{media="audio"}'] == len(want) // PACKET


@pytest.mark.parametrize(
    ("lease", "meeting"),
    [
        (float(LEASE), 9.0),
        # The default lease: the stream moves after about 30 s, inside the minute Zoom
        # waits, and the audio Zoom kept meanwhile is replayed into the same recording.
        (DEFAULT_LEASE, DEFAULT_LEASE + 12.0),
    ],
    ids=["short-lease", "default-lease"],
)
def test_kill_9_of_the_owner_mid_stream_continues_the_recording(
    fleet: Fleet, lease: float, meeting: float
) -> None:
    a, b = fleet.start("a", "--lease", f"{lease:g}"), fleet.start("b", "--lease", f"{lease:g}")
    fleet.ready(a, b)
    with fake_server() as server:
        info = add(server, "kill-1", meeting)
        deliver(server, info, a, b)
        wait_until(lambda: owner([a, b], "kill-1") is not None)
        first = owner([a, b], "kill-1")
        assert first is not None
        other = b if first is a else a
        folder = fleet.out / "kill-1"
        wait_until((folder / "audio.wav").exists)
        time.sleep(2.5)
        first.proc.kill()  # kill -9 mid-stream
        first.proc.wait(10)
        wait_until(lambda: owner([other], "kill-1", "taking over") is not None, timeout=lease + 28)
        wait_until(lambda: recording_ended(folder), timeout=40)
        want = expected_pcm(server, info, round(meeting * 1000))
        assert server.status(info).signaling_handshakes == 2
    missing = missing_packets(audio_of(folder), want)
    # at most about one second around the death, in one piece, nothing twice
    assert not missing or missing[-1] - missing[0] < 50, missing
    assert contiguous(missing, want), missing
    events = read_jsonl(folder / "events.jsonl")
    resumed = [e for e in events if e["type"] == "RecordingResumed"]
    assert [e["node"] for e in resumed] == [other.name]
    transcript = read_jsonl(folder / "transcript.jsonl")
    keys = [(t["start_time"], t["text"]) for t in transcript]
    assert len(keys) == len(set(keys))  # no utterance twice


def test_sigterm_drains_without_losing_a_frame(fleet: Fleet) -> None:
    a, b = fleet.start("a"), fleet.start("b")
    fleet.ready(a, b)
    with fake_server() as server:
        info = add(server, "drain-1", 8.0)
        deliver(server, info, a, b)
        wait_until(lambda: owner([a, b], "drain-1") is not None)
        first = owner([a, b], "drain-1")
        assert first is not None
        other = b if first is a else a
        folder = fleet.out / "drain-1"
        wait_until((folder / "audio.wav").exists)
        time.sleep(2.0)
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(30) == 0, first.err()
        assert "stream drain-1: handed over" in first.out()
        wait_until(lambda: owner([other], "drain-1", "taking over") is not None, timeout=20)
        wait_until(lambda: recording_ended(folder), timeout=30)
        # not ended in Zoom by the drain: it went on to its end, recorded by the other node
        want = expected_pcm(server, info, 8000)
    assert missing_packets(audio_of(folder), want) == []


def test_rtms_stopped_to_a_non_owner_ends_the_stream(fleet: Fleet) -> None:
    a, b = fleet.start("a"), fleet.start("b")
    fleet.ready(a, b)
    with fake_server() as server:
        info = add(server, "stop-1", 60.0)
        deliver(server, info, a)
        wait_until(lambda: owner([a, b], "stop-1") is not None)
        first = owner([a, b], "stop-1")
        other = b if first is a else a
        folder = fleet.out / "stop-1"
        wait_until((folder / "audio.wav").exists)
        body = rtms_stopped_body(
            product=Product.MEETING,
            instance_id=info.instance_id,
            rtms_stream_id="stop-1",
            stop_reason=StopReason.MEETING_ENDED,
            event_ts=int(time.time() * 1000),
        )
        assert post_webhook(other.url, body, WEBHOOK_SECRET) == 200
        wait_until(lambda: recording_ended(folder), timeout=20)
    last = read_jsonl(folder / "events.jsonl")[-1]
    assert last["type"] == "SessionEnded"
    assert last["why"] in ("STREAM_STOPPED", "SESSION_STOPPED", "STREAM_TERMINATED")


def test_capacity_is_respected(fleet: Fleet) -> None:
    a, b = fleet.start("a", "--capacity", "1"), fleet.start("b", "--capacity", "1")
    c = fleet.start("c", "--capacity", "0")
    fleet.ready(a, b, c)
    with fake_server() as server:
        short = [add(server, f"cap-{n}", 4.0) for n in range(2)]
        waiting = add(server, "cap-2", 14.0)
        for info in [*short, waiting]:
            deliver(server, info, c)  # the receive-only node gets every webhook
        wait_until(lambda: sum("recording into" in n.out() for n in (a, b)) == 2, timeout=20)
        time.sleep(1.0)
        # one stream per node, none on the receive-only node; the third one waits
        holders = [owner([a, b], i.rtms_stream_id) for i in short]
        assert sorted(n.name for n in holders if n is not None) == ["a", "b"]
        assert not (fleet.out / "cap-2").exists()
        assert server.status(waiting).signaling_handshakes == 0
        # ... until a node has room again
        wait_until(lambda: recording_ended(fleet.out / "cap-2"), timeout=40)
        assert server.status(waiting).signaling_handshakes == 1
    assert "recording into" not in c.out()
    assert read_wav(fleet.out / "cap-2" / "audio.wav")[2]


def test_an_owner_paused_past_its_lease_is_replaced_and_writes_nothing_after(
    fleet: Fleet,
) -> None:
    a, b = fleet.start("a"), fleet.start("b")
    fleet.ready(a, b)
    # A server that drops a client silent for 2 s (Zoom: 30 s), so that the new owner
    # is not refused as a duplicate for long.
    config = dataclasses.replace(
        server_config(), keepalive_interval=1.0, keepalive_misses=2, keepalive_while_data=True
    )
    with ServerThread(config, ssl_context=tls().server_context) as server:
        info = add(server, "pause-1", 14.0)
        deliver(server, info, a, b)
        wait_until(lambda: owner([a, b], "pause-1") is not None)
        first = owner([a, b], "pause-1")
        assert first is not None
        other = b if first is a else a
        folder = fleet.out / "pause-1"
        wait_until((folder / "audio.wav").exists)
        time.sleep(2.0)
        os.kill(first.proc.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: owner([other], "pause-1", "taking over") is not None, timeout=30)
            wait_until(
                lambda: recording_ended(folder) and "stream pause-1: ended" in other.out(), 40
            )
            want = expected_pcm(server, info, 14000)
        finally:
            os.kill(first.proc.pid, signal.SIGCONT)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    wait_until(lambda: "stream pause-1: lost to another node" in first.out(), timeout=20)
    time.sleep(0.5)
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before  # not one byte, not even a WAV header
    missing = missing_packets(audio_of(folder), want)
    assert contiguous(missing, want), missing


def test_one_nats_server_of_three_lost_changes_nothing(tmp_path: Path) -> None:
    with nats_cluster(tmp_path) as servers:
        urls = ",".join(s.url for s in servers)
        f = Fleet(tmp_path, urls)
        try:
            # The default lease: a JetStream leader election (when the killed server led
            # the bucket) stops renewals for 4 to 9 s, which the lease must outlast.
            lease = str(DEFAULT_LEASE)
            a, b = f.start("a", "--lease", lease), f.start("b", "--lease", lease)
            f.ready(a, b)
            with fake_server() as server:
                info = add(server, "cluster-1", 8.0)
                deliver(server, info, a, b)
                folder = f.out / "cluster-1"
                wait_until((folder / "audio.wav").exists)
                time.sleep(1.5)
                servers[0].kill()
                # a webhook delivered after the loss is stored and routed as before (once
                # the bucket has a new leader: seconds, well inside Zoom's connect window)
                # (The meeting lasts until it was recorded a little: how long the cluster
                # takes to recover varies, 5 to 20 s on this machine.)
                second = add(server, "cluster-2", 600.0)
                deliver(server, second, b)
                wait_until((f.out / "cluster-2" / "audio.wav").exists, timeout=60)
                time.sleep(1.0)
                server.end_stream(second)
                wait_until(
                    lambda: recording_ended(folder) and recording_ended(f.out / "cluster-2"),
                    timeout=40,
                )
                assert server.status(second).signaling_handshakes == 1
                want = expected_pcm(server, info, 8000)
                assert server.status(info).signaling_handshakes == 1  # no takeover
            assert missing_packets(audio_of(folder), want) == []
            assert a.alive() and b.alive()
            for n in (a, b):
                assert "taking over" not in n.out()
        finally:
            f.close()


def test_the_commands_default_lease_is_the_librarys() -> None:
    args = build_parser().parse_args(["listen", "--port", "1", "--engine", "nats://127.0.0.1:4222"])
    assert args.lease == DEFAULT_LEASE == NodeConfig(servers=["nats://x:1"], node="a").lease


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--node", "a"], "--node needs --engine"),
        (["--publish"], "--publish needs --engine"),
        (["--region", "us"], "--region needs --engine"),
        (["--engine", "nats://127.0.0.1:1", "--once"], "--once cannot be used with --engine"),
        (
            ["--engine", "nats://127.0.0.1:1", "--transport", "blocking"],
            "--transport blocking cannot be used with --engine",
        ),
        (["--engine", "http://127.0.0.1:1"], "--engine takes nats://HOST:PORT"),
        (["--engine", " , "], "--engine needs at least one nats://HOST:PORT"),
        (["--engine", "nats://127.0.0.1:1", "--capacity", "-1"], "--capacity: must be a whole"),
        (["--engine", "nats://127.0.0.1:1", "--lease", "0"], "--lease"),
        (["--engine", "nats://127.0.0.1:1", "--lease", "0.2"], "lease must be a number"),
        (["--engine", "nats://127.0.0.1:1", "--node", ""], "node must be a non-empty name"),
    ],
)
def test_fleet_arguments_are_checked(tmp_path: Path, extra: list[str], message: str) -> None:
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "rtms_app", "listen", "--port", "0"),
            *("--out", str(tmp_path / "out"), "--client-id", CLIENT_ID, *extra),
        ],
        capture_output=True,
        text=True,
        env=cli_env({"ZM_RTMS_SECRET": SECRET, "ZM_RTMS_WEBHOOK_SECRET": WEBHOOK_SECRET}),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


NODE_SCRIPT = """
import asyncio, json, os, sys
from pathlib import Path
from rtms_app.fleet_listen import FleetSettings, run_fleet
from rtms_transports import TransportOptions, session_config

a = json.loads(sys.argv[1])
hosts = ("127.0.0.1",)
settings = FleetSettings(
    servers=(a["engine"],), node="a", capacity=10, lease=2.0, region=None, publish=False,
    host="127.0.0.1", port=a["port"], out=Path(a["out"]),
    secret=os.environ["ZM_RTMS_WEBHOOK_SECRET"], allowed_hosts=hosts, gap_fill=True,
    quiet=False, options=TransportOptions(ca_file=a["ca"]),
    session_config=lambda s: session_config(
        s, client_id=a["client_id"], client_secret=os.environ["ZM_RTMS_SECRET"],
        allowed_hosts=hosts,
    ),
    submit_retry=0.5, submit_for=5.0, max_pending_submits=2,
)
sys.exit(asyncio.run(run_fleet(settings)))
"""


def test_webhooks_wait_for_an_engine_that_is_away_within_a_bound(tmp_path: Path) -> None:
    with nats_server(tmp_path) as nats:
        port = free_port()
        out = tmp_path / "recordings"
        settings = {
            "engine": nats.url,
            "port": port,
            "out": str(out),
            "ca": str(tls().write_ca(tmp_path / "ca.pem")),
            "client_id": CLIENT_ID,
        }
        stdout, stderr = tmp_path / "a.out", tmp_path / "a.err"
        with stdout.open("wb") as o, stderr.open("wb") as e:
            proc = subprocess.Popen(
                [sys.executable, "-c", NODE_SCRIPT, json.dumps(settings)],
                stdout=o,
                stderr=e,
                env=cli_env({"ZM_RTMS_SECRET": SECRET, "ZM_RTMS_WEBHOOK_SECRET": WEBHOOK_SECRET}),
            )
        node = NodeProc("a", proc, port, stdout, stderr)
        try:
            wait_until(lambda: "listening for Zoom webhooks" in node.out())
            with fake_server() as server:
                infos = [add(server, f"away-{n}", 20.0) for n in (1, 2, 3)]
                nats.pause()
                try:
                    deliver(server, infos[0], node)
                    deliver(server, infos[1], node)
                    deliver(server, infos[2], node)  # answered, then refused: 2 wait already
                    wait_until(lambda: "stream away-3: webhook not stored" in node.err())
                    time.sleep(1.5)  # the two others are offered again meanwhile
                finally:
                    nats.resume()
                wait_until(
                    lambda: all((out / f"away-{n}" / "audio.wav").exists() for n in (1, 2)),
                    timeout=30,
                )
                assert "stream away-1: the engine did not take the webhook; again" in node.err()
                # away longer than submit_for (5 s): the webhook is given up, said once
                late = add(server, "away-4", 20.0)
                nats.pause()
                try:
                    deliver(server, late, node)
                    wait_until(lambda: "away-4: the engine did not confirm" in node.err())
                finally:
                    nats.resume()
            # (a paused server may still store what it had received: not checked here)
            assert not (out / "away-3").exists()
            lines = [x for x in node.err().splitlines() if "error:" in x]
            assert len(lines) == 2
            assert lines[0] == (
                "rtms-proto listen: error: stream away-3: webhook not stored: "
                "2 webhooks already wait for the engine"
            )
            assert lines[1].startswith(
                "rtms-proto listen: error: stream away-4: the engine did not confirm the webhook "
                "in 5 s (not offered again)"
            )
            proc.send_signal(signal.SIGINT)
            assert proc.wait(30) == 0
        finally:
            node.kill()
