"""The ``--publish`` queue: the recording never waits for NATS; the queue's bound holds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from rtms_fleet.fanout import FANOUT_QUEUE_BYTES, FanOut
from rtms_fleet.node import NodeConfig


class Engine:
    """A publish that waits while ``open`` is clear (a server that stops reading)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.sent: list[tuple[str, bytes]] = []
        self.refuse: set[str] = set()

    async def publish(self, subject: str, data: bytes) -> None:
        await self.open.wait()
        if subject in self.refuse:
            raise OSError("refused")
        self.sent.append((subject, data))


@asynccontextmanager
async def publishing(engine: Engine, max_bytes: int) -> AsyncIterator[FanOut]:
    """A :class:`FanOut` publishing to ``engine`` until the block ends."""
    fanout = FanOut(engine.publish, max_bytes=max_bytes)
    runner = asyncio.ensure_future(fanout.run())
    try:
        yield fanout
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_offers_never_wait_and_the_queue_keeps_at_most_its_bytes() -> None:
    async def main() -> None:
        engine = Engine()
        async with publishing(engine, 1000) as fanout:
            engine.open.clear()  # stalled
            offered = [(f"rtms.s.{i}", bytes([i]) * 100) for i in range(50)]
            taken = [fanout.offer(s, d) for s, d in offered]  # synchronous: cannot wait
            assert fanout.queued_bytes == 1000
            assert taken.count(True) == 10 and fanout.dropped == 40  # counted
            await settle()  # the publisher takes one and waits for the engine
            assert fanout.queued_bytes == 900
            offered.append(("rtms.s.more", b"m" * 100))
            taken.append(fanout.offer(*offered[-1]))
            offered.append(("rtms.s.over", b"o"))
            taken.append(fanout.offer(*offered[-1]))
            assert taken[-2:] == [True, False] and fanout.queued_bytes == 1000
            engine.open.set()
            await settle()
            assert engine.sent == [o for o, t in zip(offered, taken, strict=True) if t]  # in order
            assert (fanout.published, fanout.failed, fanout.queued_bytes) == (11, 0, 0)
            assert fanout.dropped == 41
            # room again once sent
            assert fanout.offer("rtms.s.x", b"x" * 1000)
            await settle()
            assert engine.sent[-1] == ("rtms.s.x", b"x" * 1000)

    asyncio.run(main())


def test_a_message_larger_than_the_bound_goes_alone() -> None:
    async def main() -> None:
        engine = Engine()
        async with publishing(engine, 100) as fanout:
            engine.open.clear()
            assert fanout.offer("rtms.s.video", b"v" * 500)  # nothing else waits
            await settle()  # taken by the publisher
            assert fanout.offer("rtms.s.video", b"w" * 500)  # the queue is empty again
            assert not fanout.offer("rtms.s.audio", b"a")  # ... but not past it
            engine.open.set()
            await settle()
            assert [d[:1] for _, d in engine.sent] == [b"v", b"w"]
            assert fanout.dropped == 1

    asyncio.run(main())


def test_a_refused_publish_is_counted_and_the_rest_go_on() -> None:
    async def main() -> None:
        engine = Engine()
        engine.refuse.add("rtms.s.bad")
        async with publishing(engine, 1000) as fanout:
            for subject in ("rtms.s.a", "rtms.s.bad", "rtms.s.b"):
                fanout.offer(subject, b"1")
            await settle()
            assert [s for s, _ in engine.sent] == ["rtms.s.a", "rtms.s.b"]
            assert (fanout.published, fanout.failed) == (2, 1)

    asyncio.run(main())


def test_closing_drops_and_counts_what_was_not_sent() -> None:
    async def main() -> None:
        engine = Engine()
        engine.open.clear()
        fanout = FanOut(engine.publish, max_bytes=1000)
        runner = asyncio.ensure_future(fanout.run())
        for i in range(5):
            fanout.offer("rtms.s.a", bytes([i]))
        await settle()
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        fanout.close()
        assert (fanout.dropped, fanout.queued_bytes) == (4, 0)  # one was being published

    asyncio.run(main())


def test_a_node_keeps_the_default_bound_unless_told() -> None:
    assert NodeConfig(servers=["nats://x:1"], node="a").publish_queue == FANOUT_QUEUE_BYTES
    assert NodeConfig(servers=["nats://x:1"], node="a", publish_queue=1).publish_queue == 1
    # (refused values: test_fleet_node.py's test_bad_node_configuration_is_refused)


def test_waiting_for_the_queue_to_be_sent_is_bounded() -> None:
    async def main() -> None:
        engine = Engine()
        async with publishing(engine, 1000) as fanout:
            assert await fanout.wait_sent(0.01)  # nothing queued
            for i in range(3):
                fanout.offer("rtms.s.a", bytes([i]))
            assert await fanout.wait_sent(1.0)  # an engine that takes them: all sent
            assert len(engine.sent) == 3
            engine.open.clear()  # one that does not
            fanout.offer("rtms.s.a", b"x")
            loop = asyncio.get_running_loop()
            began = loop.time()
            assert not await fanout.wait_sent(0.2)
            assert 0.2 <= loop.time() - began < 1.0

    asyncio.run(main())
