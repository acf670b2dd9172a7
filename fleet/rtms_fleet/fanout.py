"""The ``--publish`` queue: a recording hands its events over without waiting for NATS.

Why: the engine's connection can stall (a server that stops reading) or drop
for a while; the recording is what must not wait.  Events are queued encoded,
at most ``max_bytes`` of them, and one more is dropped and counted; one task
publishes them in order and waits for the engine as long as it takes (nats-py
keeps :data:`~rtms_fleet.engine.PUBLISH_BUFFER` more and then waits for its
socket, or for the reconnect).  Publishing is at most once: a subscriber that
is not there, or a message dropped here, is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["FANOUT_CLOSE_WAIT", "FANOUT_QUEUE_BYTES", "FanOut"]

FANOUT_QUEUE_BYTES = 8 * 1024 * 1024
"""Encoded events a node keeps for ``--publish`` by default (``NodeConfig.publish_queue``):
about four minutes of one stream's audio, a few seconds of video."""

FANOUT_CLOSE_WAIT = 1.0
"""Seconds a closing node gives the queue to reach the engine before dropping it."""


class FanOut:
    """Events waiting to be published: :meth:`offer` never waits, :meth:`run` publishes.

    Counters: ``published`` (the engine took it), ``failed`` (the engine refused
    it: disconnected with its buffer full, or larger than the server allows),
    ``dropped`` (the queue was full, or the node closed before it was sent).
    """

    def __init__(self, publish: Callable[[str, bytes], Awaitable[None]], max_bytes: int) -> None:
        self._publish = publish
        self.max_bytes = max_bytes
        self._queue: deque[tuple[str, bytes]] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()  # nothing queued, nothing being published
        self._idle.set()
        self.published = 0
        self.failed = 0
        self.dropped = 0

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def offer(self, subject: str, data: bytes) -> bool:
        """Queue one message; False (dropped, counted) when it would pass ``max_bytes``.

        A message larger than the bound alone is queued when nothing else waits,
        so that the bound never drops every frame of a stream."""
        size = len(data)
        if self._queue and self._bytes + size > self.max_bytes:
            self.dropped += 1
            return False
        self._queue.append((subject, data))
        self._bytes += size
        self._idle.clear()
        self._ready.set()
        return True

    async def run(self) -> None:
        """Publish what is queued, in order, until cancelled."""
        queue = self._queue
        while True:
            if not queue:
                self._idle.set()
                self._ready.clear()
                await self._ready.wait()
                continue
            subject, data = queue.popleft()
            self._bytes -= len(data)
            try:
                await self._publish(subject, data)
            except Exception:
                self.failed += 1
            else:
                self.published += 1

    async def wait_sent(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for everything queued to reach the engine."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        return self._idle.is_set()

    def close(self) -> None:
        """The node closes: what was not sent is dropped (and counted)."""
        self.dropped += len(self._queue)
        self._queue.clear()
        self._bytes = 0
