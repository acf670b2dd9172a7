"""The conformance adapters of this package's drivers (asyncio, trio, blocking).

Each adapter is what an application does with the driver's high-level API:
``connect()`` with the scenario's :class:`~rtms_proto.SessionConfig`, iterate
the stream's events, issue commands on the stream, be slow when the scenario
says so.  The event queue is kept small (``max_events``) so that a slow
consumer exercises the driver's backpressure.

They are registered by name under the ``rtms_conformance.adapters`` entry-point
group (``pyproject.toml``), the way any third-party transport registers its
own, so ``python -m rtms_conformance --adapter trio`` finds them while
``rtms_conformance`` itself knows nothing of this package.  A driver is
imported when its adapter runs, not when this module is loaded.
"""

from __future__ import annotations

import time

from rtms_conformance.harness import AsyncioHarness, StreamEnv, ThreadedHarness, TrioHarness

from . import TransportOptions

__all__ = ["MAX_EVENTS", "AsyncioAdapter", "BlockingAdapter", "TrioAdapter", "transport_options"]

MAX_EVENTS = 16
"""Queue bound used by the adapters: small, so that backpressure is exercised."""


def transport_options(stream: StreamEnv) -> TransportOptions:
    """The transport options of a conformance run: the test CA, short timeouts."""
    return TransportOptions(
        ca_file=stream.ca_file,
        connect_timeout=2.0,
        close_timeout=2.0,
        max_events=MAX_EVENTS,
    )


class AsyncioAdapter(AsyncioHarness):
    """``rtms_transports.asyncio.connect`` and ``async for``."""

    name = "asyncio"

    async def run_stream(self, stream: StreamEnv) -> None:
        import asyncio

        from .asyncio import connect

        async with connect(
            stream.config, options=transport_options(stream), jitter=stream.jitter
        ) as events:
            async for event in events:
                pause = stream.react(event, events)
                if pause:
                    await asyncio.sleep(pause)


class TrioAdapter(TrioHarness):
    """``rtms_transports.trio.connect`` and ``async for``."""

    name = "trio"

    async def run_stream(self, stream: StreamEnv) -> None:
        import trio

        from .trio import connect

        async with connect(
            stream.config, options=transport_options(stream), jitter=stream.jitter
        ) as events:
            async for event in events:
                pause = stream.react(event, events)
                if pause:
                    await trio.sleep(pause)


class BlockingAdapter(ThreadedHarness):
    """``rtms_transports.blocking.connect`` and ``receive(timeout)`` on a thread per stream."""

    name = "blocking"

    def run_stream(self, stream: StreamEnv) -> None:
        from rtms_proto import ConnectionClosed

        from .blocking import connect

        with connect(
            stream.config, options=transport_options(stream), jitter=stream.jitter
        ) as events:
            while True:
                try:
                    event = events.receive(timeout=stream.remaining())
                except TimeoutError:
                    raise stream.expire() from None
                except ConnectionClosed:
                    return
                pause = stream.react(event, events)
                if pause:
                    time.sleep(pause)
