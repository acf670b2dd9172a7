"""The fleet node library against a real ``nats-server -js`` and the fake RTMS server.

Several nodes run in one asyncio loop here, each with its own NATS connection,
as separate machines would; the fake server serves the streams on loopback.
Leases are short (2 s) so that expiry and takeover happen within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.aio.msg
import pytest
from nats_harness import NatsServer, nats_cluster, nats_server

from rtms_conformance.faults import Failover
from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import RunningServer, serve
from rtms_conformance.server import ServerConfig, StreamSpec
from rtms_fleet import (
    DEFAULT_LEASE,
    EngineUnavailable,
    Node,
    NodeConfig,
    OwnedStream,
    StopWhy,
    decode_frame,
)
from rtms_proto import InvalidConfig, SessionConfig
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
    settings: dict[str, object] = {"lease": LEASE, "allowed_hosts": LOOPBACK, **kwargs}
    config = NodeConfig(servers=servers, node=name, **settings)  # type: ignore[arg-type]
    options = TransportOptions()  # fail_fast: the node turns it off
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


def test_a_stream_the_application_stops_is_handed_to_another_node_at_once(
    nats_url: str,
) -> None:
    async def main() -> None:
        async with rtms_server() as running, contextlib.AsyncExitStack() as stack:
            a = await stack.enter_async_context(fleet_node(nats_url, "a"))
            await a.node.submit(add_stream(running, "s1"))
            await until(lambda: a.audio("s1") >= 3)
            b = await stack.enter_async_context(fleet_node(nats_url, "b"))
            await asyncio.sleep(LEASE)  # b sees a renew and leaves the stream alone
            assert b.owned == []
            # a's application stops reading the stream (its task is cancelled).
            (task,) = a.tasks
            task.cancel()
            loop = asyncio.get_running_loop()
            gone = loop.time()
            await until(lambda: b.audio("s1") >= 3, timeout=LEASE * 4)
            took = loop.time() - gone
            assert [o.takeover for o in b.owned] == [True]
            assert b.owned[0].revision > a.owned[0].revision
            assert took < LEASE / 2, took  # released, not left to expire
            assert b.node.stats.takeovers == 1
            # a does not take it back (it gave it up): still one owner, one connection more.
            await asyncio.sleep(LEASE * 1.5)
            assert a.node.owned() == [] and b.node.owned() == ["s1"]
            assert running.status("s1").signaling_handshakes == 2

    run(main)


def test_a_node_that_never_saw_the_previous_owner_still_takes_over(nats_url: str) -> None:
    async def main() -> None:
        async with rtms_server() as running:
            async with fleet_node(nats_url, "a") as a:
                await a.node.submit(add_stream(running, "s1"))
                await until(lambda: a.audio("s1") >= 3)
            await asyncio.sleep(LEASE * 1.5)  # a's lease is gone from the engine
            async with fleet_node(nats_url, "c") as c:
                await until(lambda: c.audio("s1") >= 3)
                assert [o.takeover for o in c.owned] == [True]

    run(main)


def test_drain_hands_the_stream_over_at_once_without_ending_it(nats_url: str) -> None:
    lease = 10.0  # long, so that a hand-over is clearly not an expiry

    async def main() -> None:
        async with rtms_server() as running, contextlib.AsyncExitStack() as stack:
            a = await stack.enter_async_context(fleet_node(nats_url, "a", lease=lease))
            started = add_stream(running, "s1")
            await a.node.submit(started)
            await until(lambda: a.audio("s1") >= 3)
            b = await stack.enter_async_context(fleet_node(nats_url, "b", lease=lease))
            loop = asyncio.get_running_loop()
            began = loop.time()
            assert await a.node.drain(timeout=lease)
            assert not a.node.ready and b.node.ready
            await until(lambda: b.audio("s1") >= 3, timeout=lease)
            # Far sooner than a lease: the entry was released, not left to expire.
            assert loop.time() - began < lease / 4
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
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(EngineUnavailable) as caught:
            async with Node.connect(config):
                pass  # pragma: no cover
        # Bounded: connect_timeout per server, plus a second.
        assert loop.time() - began < 1 + 1 + 1
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


def test_the_whole_engine_lost_keeps_recording_while_fenced_then_resumes(
    tmp_path: Path,
) -> None:
    async def main(server: NatsServer) -> None:
        async with rtms_server() as running, fleet_node(server.url, "a") as a:
            await a.node.submit(add_stream(running, "s1"))
            await until(lambda: a.audio("s1") >= 3)
            loop = asyncio.get_running_loop()
            await asyncio.to_thread(server.stop)
            lost_at = loop.time()
            await until(lambda: not a.node.ready, timeout=LEASE)
            before = a.audio("s1")
            # Recording goes on while the fencing rule allows, then stops.
            await until(lambda: "s1" in a.ended, timeout=LEASE * 2)
            assert a.ended["s1"] is StopWhy.LOST
            assert a.audio("s1") > before
            # Stopped by the fence (lease - margin after the last renewal), not later.
            assert loop.time() - lost_at <= LEASE * 1.25
            assert a.node.owned() == []
            # The engine returns: the node is ready again and records the stream again.
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(server.wait_healthy)
            await until(lambda: a.node.ready, timeout=10)
            await until(lambda: len(a.owned) == 2 and a.audio("s1") > before + 3, timeout=15)
            assert a.owned[1].takeover and a.owned[1].revision > a.owned[0].revision
            # Webhooks flow again (the node reads the stored ones anew after the outage).
            await a.node.submit(add_stream(running, "s2"))
            await until(lambda: a.audio("s2") >= 3)

    with nats_server(tmp_path) as server:
        asyncio.run(asyncio.wait_for(main(server), 60))


def test_one_server_of_a_three_server_cluster_lost_changes_nothing(tmp_path: Path) -> None:
    # The default lease: losing the server that leads the bucket stops renewals for
    # its election (4 to 8 s), which the lease must outlast.
    lease = DEFAULT_LEASE

    async def main(servers: list[NatsServer]) -> None:
        urls = [s.url for s in servers]
        async with (
            rtms_server() as running,
            fleet_node(urls, "a", lease=lease) as a,
            fleet_node(list(reversed(urls)), "b", lease=lease) as b,
        ):
            await a.node.submit(add_stream(running, "s1"))
            await until(lambda: a.audio("s1") + b.audio("s1") >= 3)
            owner, other = (a, b) if a.owned else (b, a)
            # Kill the server the owner is connected to: the worst one to lose.
            used = owner.node._engine._nc.connected_url
            assert used is not None
            (victim,) = [s for s in servers if s.port == used.port]
            renewed = owner.node.stats.renewals
            await asyncio.to_thread(victim.kill)
            before = owner.audio("s1")
            # Two renewals succeed after the loss (one at a time: the second was sent
            # after it), so the outage is over and was ridden out.
            await until(lambda: owner.node.stats.renewals >= renewed + 2, timeout=lease * 1.5)
            assert owner.node.ready and other.node.ready
            assert owner.node.owned() == ["s1"] and other.node.owned() == []
            assert len(owner.owned) == 1 and owner.ended == {}
            assert owner.audio("s1") > before
            assert owner.node.stats.lost == 0
            assert running.status("s1").signaling_handshakes == 1
            # The fleet still works: a new stream is claimed and recorded.
            await other.node.submit(add_stream(running, "s2"))
            await until(lambda: a.audio("s2") + b.audio("s2") >= 3)

    with nats_cluster(tmp_path) as servers:
        asyncio.run(asyncio.wait_for(main(servers), 120))


class ThreadNode:
    """A node on an event loop of its own thread, so that it alone can be paused."""

    def __init__(self, url: str, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._stack = contextlib.AsyncExitStack()
        self.url, self.name = url, name
        self.recorder: Recorder | None = None

    async def _enter(self) -> Recorder:
        return await self._stack.enter_async_context(fleet_node(self.url, self.name))

    async def start(self) -> Recorder:
        future = asyncio.run_coroutine_threadsafe(self._enter(), self.loop)
        self.recorder = await asyncio.wrap_future(future)
        return self.recorder

    def pause(self, seconds: float) -> None:
        """Nothing runs on the node's loop for ``seconds`` (as SIGSTOP would do)."""
        self.loop.call_soon_threadsafe(time.sleep, seconds)

    async def stop(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self._stack.aclose(), self.loop)
        await asyncio.wrap_future(future)
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 10)
        self.loop.close()


def test_an_owner_paused_past_its_lease_is_replaced_and_writes_nothing_after(
    nats_url: str,
) -> None:
    async def main() -> None:
        paused = ThreadNode(nats_url, "a")
        try:
            a = await paused.start()
            async with rtms_server() as running, contextlib.AsyncExitStack() as stack:
                submitter = await stack.enter_async_context(fleet_node(nats_url, "c", capacity=0))
                await submitter.node.submit(add_stream(running, "s1"))
                await until(lambda: a.audio("s1") >= 3)
                b = await stack.enter_async_context(fleet_node(nats_url, "b"))
                loop = asyncio.get_running_loop()
                paused.pause(LEASE * 2)
                froze = loop.time()
                await asyncio.sleep(0.05)
                frozen = len(a.events["s1"])
                # b takes the stream over while a sleeps, once a's lease has expired: a
                # renewed at most a third of a lease before it froze.
                # (the application receives the stream a moment after the node owns it)
                await until(lambda: [o.stream_id for o in b.owned] == ["s1"], timeout=LEASE * 2)
                took = loop.time() - froze
                assert LEASE * 2 / 3 <= took < LEASE * 2, took
                assert [o.takeover for o in b.owned] == [True]
                # a wakes up: its first look at the clock stops the stream; nothing is written.
                await until(lambda: "s1" in a.ended, timeout=LEASE * 3)
                assert a.ended["s1"] is StopWhy.LOST
                assert len(a.events["s1"]) == frozen
                assert a.node.owned() == [] and b.node.owned() == ["s1"]
                await until(lambda: b.audio("s1") >= 3, timeout=LEASE * 3)
        finally:
            await paused.stop()

    run(main)


def test_a_new_rtms_started_for_a_live_stream_reaches_its_owner(nats_url: str) -> None:
    async def main() -> None:
        async with rtms_server() as running, contextlib.AsyncExitStack() as stack:
            a = await stack.enter_async_context(fleet_node(nats_url, "a"))
            spec = StreamSpec(
                meeting_uuid="uuid-s1==", rtms_stream_id="s1", faults=(Failover(at=0.5),)
            )
            info = running.add_stream(spec)
            generation = running.status("s1").generation
            first = parse_webhook(running.rtms_started_body(info), allowed_hosts=LOOPBACK)
            assert isinstance(first, RtmsStarted)
            await a.node.submit(first)
            await until(lambda: a.audio("s1") >= 1)
            b = await stack.enter_async_context(fleet_node(nats_url, "b", capacity=0))
            assert await running.wait_for(lambda core: core.status("s1").generation > generation, 5)
            moved = parse_webhook(running.rtms_started_body(info), allowed_hosts=LOOPBACK)
            assert isinstance(moved, RtmsStarted) and moved.server_url != first.server_url
            assert await b.node.submit(moved)  # delivered to the node that does not own it
            heard = a.audio("s1")
            await until(lambda: a.audio("s1") >= heard + 5, timeout=LEASE * 2)
            assert running.status("s1").signaling_connected
            assert a.node.owned() == ["s1"] and len(a.owned) == 1 and a.ended == {}

    run(main)


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"servers": []}, "servers"),
        ({"servers": "nats://127.0.0.1:4222"}, "servers"),
        ({"node": ""}, "node"),
        ({"history": 0.0}, "history"),
        ({"history": float("nan")}, "history"),
        ({"lease": 0.2}, "lease"),
        ({"capacity": -1}, "capacity"),
        ({"ping_interval": 0}, "ping_interval"),
        ({"ping_interval": 1.5}, "ping_interval"),
        ({"ping_interval": True}, "ping_interval"),
        ({"publish_queue": 0}, "publish_queue"),
        ({"publish_queue": 1.5}, "publish_queue"),
        ({"publish_queue": True}, "publish_queue"),
        ({"publish_queue": "8"}, "publish_queue"),
    ],
)
def test_bad_node_configuration_is_refused(settings: dict[str, object], match: str) -> None:
    config: dict[str, object] = {"servers": ["nats://127.0.0.1:4222"], "node": "a", **settings}
    with pytest.raises(InvalidConfig, match=match):
        NodeConfig(**config)  # type: ignore[arg-type]


def test_replicas_follow_the_number_of_servers_unless_given() -> None:
    one = NodeConfig(servers=["nats://h1:4222"], node="a")
    three = NodeConfig(servers=["nats://h1:4222", "nats://h2:4222", "nats://h3:4222"], node="a")
    assert one.engine_settings().replicas == 1
    assert three.engine_settings().replicas == 3
    assert (
        NodeConfig(servers=["nats://h1:4222"], node="a", replicas=3).engine_settings().replicas == 3
    )
    # A renewal that cannot reach the engine fails well inside the fencing margin.
    assert three.engine_settings().request_timeout < three.lease / 5


def test_during_an_engine_outage_submit_fails_fast_and_drain_and_close_finish(
    tmp_path: Path,
) -> None:
    async def main(server: NatsServer) -> None:
        async with rtms_server() as running:
            async with fleet_node(server.url, "a") as a:
                await a.node.submit(add_stream(running, "s1"))
                await until(lambda: a.audio("s1") >= 3)
                await asyncio.to_thread(server.stop)
                await until(lambda: not a.node.ready, timeout=LEASE)
                loop = asyncio.get_running_loop()
                began = loop.time()
                # The webhook server must answer with an error (Zoom retries): say so fast.
                with pytest.raises(EngineUnavailable, match="did not store"):
                    await a.node.submit(add_stream(running, "s2"))
                assert loop.time() - began < LEASE / 5 + 0.5
                # Nothing can be released: the streams stop and their leases expire.
                assert await a.node.drain(timeout=LEASE)
                assert a.ended == {"s1": StopWhy.HANDOVER}
            assert not running.status("s1").ended  # never ended in Zoom

    with nats_server(tmp_path) as server:
        asyncio.run(asyncio.wait_for(main(server), 60))


def test_a_server_not_reachable_at_first_is_retried_not_given_up(nats_url: str) -> None:
    from nats_harness import free_port

    async def main() -> None:
        port = free_port()
        config = ServerConfig(client_id=CLIENT_ID, client_secret=SECRET)
        spec = StreamSpec(meeting_uuid="uuid-s1==", rtms_stream_id="s1")
        async with serve(config, port=port) as running:
            body = running.rtms_started_body(running.add_stream(spec))
        started = parse_webhook(body, allowed_hosts=LOOPBACK)
        assert isinstance(started, RtmsStarted)
        async with fleet_node(nats_url, "a") as a:
            await a.node.submit(started)  # nothing listens there yet: refused
            await until(lambda: len(a.owned) == 1)
            await asyncio.sleep(0.5)
            async with serve(config, port=port) as running:
                running.add_stream(spec)
                await until(lambda: a.audio("s1") >= 3, timeout=20)
            assert len(a.owned) == 1

    run(main)


def test_a_stream_that_ended_without_a_webhook_is_never_claimed_again(nats_url: str) -> None:
    async def main() -> None:
        async with rtms_server() as running:
            async with fleet_node(nats_url, "a") as a:
                await a.node.submit(add_stream(running, "s1"))
                await until(lambda: a.audio("s1") >= 3)
                running.end_stream("s1")  # no rtms_stopped reaches the fleet
                await until(lambda: "s1" in a.ended)
                await until(lambda: a.node.stats.ended == 1)
            await asyncio.sleep(LEASE * 1.5)  # the ended entry has expired by now
            # A node joining later reads the stored start, and the end recorded with it.
            async with fleet_node(nats_url, "c") as c:
                await asyncio.sleep(LEASE)
                assert c.owned == []
            assert running.status("s1").signaling_handshakes == 1

    run(main)


def test_leaving_the_node_stops_its_sessions_and_leaves_the_leases_to_expire(
    nats_url: str,
) -> None:
    async def main() -> None:
        async with rtms_server() as running, contextlib.AsyncExitStack() as stack:
            config = NodeConfig(servers=[nats_url], node="a", lease=LEASE, allowed_hosts=LOOPBACK)
            audio: list[ev.Event] = []
            async with Node.connect(config, session_config=factory) as node:
                await node.submit(add_stream(running, "s1"))
                owned = await anext(aiter(node.streams()))

                async def consume() -> None:
                    async for event in owned.events():
                        if isinstance(event, ev.AudioReceived):
                            audio.append(event)

                task = asyncio.create_task(consume())
                await until(lambda: len(audio) >= 3)
                b = await stack.enter_async_context(fleet_node(nats_url, "b"))
                await asyncio.sleep(0.2)
                loop = asyncio.get_running_loop()
            left = loop.time()
            await asyncio.wait_for(task, LEASE)  # the session stopped with the node
            assert owned.stopped_why is StopWhy.HANDOVER
            await until(lambda: [o.stream_id for o in b.owned] == ["s1"], timeout=LEASE * 2)
            took = loop.time() - left
            assert took >= LEASE * 2 / 3 - 0.2, took  # not released: it expired
            assert [o.takeover for o in b.owned] == [True]

    run(main)
