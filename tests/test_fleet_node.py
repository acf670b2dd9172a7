"""The fleet node library against a real ``nats-server -js`` and the fake RTMS server.

Several nodes run in one asyncio loop here, each with its own NATS connection,
as separate machines would; the fake server serves the streams on loopback.
Leases are short (2 s) so that expiry and takeover happen within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from nats_harness import nats_server

from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import RunningServer, serve
from rtms_conformance.server import ServerConfig, StreamSpec
from rtms_fleet import Node, NodeConfig, OwnedStream, StopWhy
from rtms_proto import SessionConfig
from rtms_proto import events as ev
from rtms_proto.enums import StopReason
from rtms_proto.webhooks import RtmsStarted, RtmsStopped, parse_webhook
from rtms_transports import TransportOptions, session_config

CLIENT_ID = "fleet-client-id"
SECRET = "fleet-client-secret"
LOOPBACK = ("127.0.0.1",)
LEASE = 2.0


def factory(started: RtmsStarted) -> SessionConfig:
    return session_config(
        started, client_id=CLIENT_ID, client_secret=SECRET, allowed_hosts=LOOPBACK
    )


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    with nats_server(tmp_path) as server:
        yield server.url


@dataclass
class Recorder:
    """Runs a node's owned streams like an application: one task per stream."""

    node: Node
    owned: list[OwnedStream] = field(default_factory=list)
    events: dict[str, list[ev.Event]] = field(default_factory=dict)
    ended: dict[str, StopWhy | None] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self) -> None:
        async for owned in self.node.streams():
            self.owned.append(owned)
            self.tasks.append(asyncio.create_task(self._record(owned)))

    async def _record(self, owned: OwnedStream) -> None:
        got = self.events.setdefault(owned.stream_id, [])
        async for event in owned.events():
            assert owned.still_owner()
            got.append(event)
        self.ended[owned.stream_id] = owned.stopped_why

    def audio(self, stream_id: str) -> int:
        return sum(isinstance(e, ev.AudioReceived) for e in self.events.get(stream_id, []))


@contextlib.asynccontextmanager
async def fleet_node(url: str | list[str], name: str, **kwargs: object) -> AsyncIterator[Recorder]:
    servers = [url] if isinstance(url, str) else url
    config = NodeConfig(
        servers=servers,
        node=name,
        lease=LEASE,
        allowed_hosts=LOOPBACK,
        **kwargs,  # type: ignore[arg-type]
    )
    options = TransportOptions(fail_fast=False)
    async with Node.connect(config, options=options, session_config=factory) as node:
        recorder = Recorder(node)
        runner = asyncio.create_task(recorder.run())
        try:
            yield recorder
        finally:
            runner.cancel()
            for task in recorder.tasks:
                task.cancel()
            await asyncio.gather(runner, *recorder.tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def rtms_server() -> AsyncIterator[RunningServer]:
    async with serve(ServerConfig(client_id=CLIENT_ID, client_secret=SECRET)) as running:
        yield running


def add_stream(running: RunningServer, sid: str, **meeting: object) -> RtmsStarted:
    spec = StreamSpec(
        meeting_uuid=f"uuid-{sid}==",
        rtms_stream_id=sid,
        meeting=MeetingSpec(**meeting),  # type: ignore[arg-type]
    )
    info = running.add_stream(spec)
    started = parse_webhook(running.rtms_started_body(info), allowed_hosts=LOOPBACK)
    assert isinstance(started, RtmsStarted)
    return started


def stopped(started: RtmsStarted, reason: StopReason = StopReason.MEETING_ENDED) -> RtmsStopped:
    return RtmsStopped(
        product=started.product,
        event=started.event.replace("rtms_started", "rtms_stopped"),
        event_ts=(started.event_ts or 0) + 1,
        instance_id=started.instance_id,
        id_key=started.id_key,
        rtms_stream_id=started.rtms_stream_id,
        stop_reason=reason,
    )


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def owners(*recorders: Recorder, sid: str) -> list[str]:
    return [r.node.name for r in recorders if sid in r.node.owned()]


def run(coro: Callable[[], object]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 60))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- tests


def test_the_same_webhook_to_two_nodes_gives_one_connection(nats_url: str) -> None:
    async def main() -> None:
        async with (
            rtms_server() as running,
            fleet_node(nats_url, "a") as a,
            fleet_node(nats_url, "b") as b,
        ):
            started = add_stream(running, "s1")
            stored = await asyncio.gather(a.node.submit(started), b.node.submit(started))
            assert sorted(stored) == [False, True]  # the engine kept one entry
            await until(lambda: a.audio("s1") + b.audio("s1") >= 5)
            await asyncio.sleep(LEASE)  # renewals happen; nobody else claims
            assert len(owners(a, b, sid="s1")) == 1
            assert running.status("s1").signaling_handshakes == 1
            assert a.node.stats.claims + b.node.stats.claims == 1
            assert not any(o.takeover for o in a.owned + b.owned)

    run(main)
