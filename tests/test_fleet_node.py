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

import nats
import nats.aio.msg
import pytest
from nats_harness import nats_server

from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import RunningServer, serve
from rtms_conformance.server import ServerConfig, StreamSpec
from rtms_fleet import EngineUnavailable, Node, NodeConfig, OwnedStream, StopWhy, decode_frame
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


def test_an_owner_that_leaves_without_releasing_is_taken_over_after_its_lease(
    nats_url: str,
) -> None:
    async def main() -> None:
        async with rtms_server() as running, contextlib.AsyncExitStack() as stack:
            a_stack = await stack.enter_async_context(contextlib.AsyncExitStack())
            a = await a_stack.enter_async_context(fleet_node(nats_url, "a"))
            started = add_stream(running, "s1")
            await a.node.submit(started)
            await until(lambda: a.audio("s1") >= 3)
            b = await stack.enter_async_context(fleet_node(nats_url, "b"))
            await asyncio.sleep(LEASE)  # b sees a renew and leaves the stream alone
            assert b.owned == []
            # a goes: sockets closed, lease left to expire, as a crash would.
            await a_stack.aclose()
            loop = asyncio.get_running_loop()
            gone = loop.time()
            await until(lambda: b.audio("s1") >= 3, timeout=LEASE * 4)
            took = loop.time() - gone
            assert [o.takeover for o in b.owned] == [True]
            assert b.owned[0].revision > a.owned[0].revision
            assert took < LEASE * 2, took
            assert b.node.stats.takeovers == 1
            assert running.status("s1").signaling_handshakes == 2

    run(main)


def test_drain_hands_the_stream_over_at_once_without_ending_it(nats_url: str) -> None:
    async def main() -> None:
        async with rtms_server() as running, contextlib.AsyncExitStack() as stack:
            a = await stack.enter_async_context(fleet_node(nats_url, "a"))
            started = add_stream(running, "s1")
            await a.node.submit(started)
            await until(lambda: a.audio("s1") >= 3)
            b = await stack.enter_async_context(fleet_node(nats_url, "b"))
            loop = asyncio.get_running_loop()
            began = loop.time()
            assert await a.node.drain(timeout=LEASE)
            assert not a.node.ready and b.node.ready
            await until(lambda: b.audio("s1") >= 3, timeout=LEASE)
            # Far sooner than a lease: the entry was released, not left to expire.
            assert loop.time() - began < LEASE * 0.75
            assert a.ended == {"s1": StopWhy.HANDOVER}
            assert a.node.stats.handovers == 1
            assert [o.takeover for o in b.owned] == [True]
            assert not running.status("s1").ended
            # A draining node claims nothing new.
            await a.node.submit(add_stream(running, "s2"))
            await until(lambda: b.audio("s2") >= 1)
            assert a.node.owned() == []

    run(main)


def test_rtms_stopped_delivered_to_a_non_owner_ends_the_stream_on_its_owner(
    nats_url: str,
) -> None:
    async def main() -> None:
        async with rtms_server() as running, contextlib.AsyncExitStack() as stack:
            a = await stack.enter_async_context(fleet_node(nats_url, "a"))
            started = add_stream(running, "s1")
            await a.node.submit(started)
            await until(lambda: a.audio("s1") >= 3)
            b = await stack.enter_async_context(fleet_node(nats_url, "b", capacity=0))
            assert await b.node.submit(stopped(started))
            assert not await a.node.submit(stopped(started))  # a duplicate changes nothing
            await until(lambda: "s1" in a.ended)
            assert a.ended == {"s1": StopWhy.ENDED}
            last = a.events["s1"][-1]
            assert isinstance(last, ev.SessionEnded)
            assert last.stop_reason == StopReason.MEETING_ENDED
            # The entry says ended: nobody claims the stream again, even after the lease.
            c = await stack.enter_async_context(fleet_node(nats_url, "c"))
            await asyncio.sleep(LEASE * 1.5)
            assert a.node.owned() == c.node.owned() == []
            assert a.node.stats.ended == 1

    run(main)


def test_capacity_bounds_the_streams_a_node_claims(nats_url: str) -> None:
    async def main() -> None:
        async with (
            rtms_server() as running,
            fleet_node(nats_url, "a", capacity=1) as a,
            fleet_node(nats_url, "b", capacity=2) as b,
            fleet_node(nats_url, "c", capacity=0) as c,
        ):
            sids = [f"s{i}" for i in range(4)]
            for sid in sids:
                await c.node.submit(add_stream(running, sid))
            await until(lambda: len(a.node.owned()) + len(b.node.owned()) == 3)
            await asyncio.sleep(LEASE)
            assert len(a.node.owned()) == 1
            assert len(b.node.owned()) == 2
            assert c.node.owned() == []
            handshakes = sum(running.status(sid).signaling_handshakes for sid in sids)
            assert handshakes == 3
            # When a stream ends, its owner has room again and claims the fourth.
            (ending,) = a.node.owned()
            running.end_stream(ending)
            await c.node.submit(stopped(a.owned[0].started))
            await until(lambda: sorted(a.node.owned() + b.node.owned()) != sorted(sids[:0]))
            rest = [sid for sid in sids if sid != ending]
            await until(lambda: sorted(a.node.owned() + b.node.owned()) == rest)

    run(main)


def test_an_unreachable_engine_fails_at_start_with_one_clear_error() -> None:
    async def main() -> None:
        from nats_harness import free_port

        port = free_port()
        config = NodeConfig(
            servers=[f"nats://user:hunter2@127.0.0.1:{port}"], node="a", connect_timeout=1
        )
        with pytest.raises(EngineUnavailable) as caught:
            async with Node.connect(config):
                pass  # pragma: no cover
        message = str(caught.value)
        assert f"127.0.0.1:{port}" in message
        assert "hunter2" not in message and "user" not in message

    run(main)


def test_publish_fans_every_event_out_on_nats(nats_url: str) -> None:
    async def main() -> None:
        frames: list[tuple[int | None, int | None, bytes]] = []
        others: dict[str, list[bytes]] = {}
        watcher = await nats.connect(nats_url)
        try:

            async def on_audio(msg: nats.aio.msg.Msg) -> None:
                frames.append(decode_frame(msg.data))

            async def on_other(msg: nats.aio.msg.Msg) -> None:
                others.setdefault(msg.subject, []).append(msg.data)

            await watcher.subscribe("rtms.s%2E1.audio", cb=on_audio)
            await watcher.subscribe("rtms.s%2E1.signaling_connected", cb=on_other)
            async with rtms_server() as running, fleet_node(nats_url, "a", publish=True) as a:
                await a.node.submit(add_stream(running, "s.1"))
                await until(lambda: len(frames) >= 5)
                got = [e for e in a.events["s.1"] if isinstance(e, ev.AudioReceived)]
            for (user_id, timestamp, payload), event in zip(frames, got, strict=False):
                assert (user_id, timestamp, payload) == (
                    event.user_id,
                    event.timestamp,
                    event.data,
                )
            (connected,) = others["rtms.s%2E1.signaling_connected"]
            assert b'"type":"SignalingConnected"' in connected
            assert a.node.stats.published >= len(frames)
        finally:
            await watcher.close()

    run(main)
