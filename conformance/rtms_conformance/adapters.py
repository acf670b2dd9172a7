"""Adapters for the transports of ``rtms_transports`` (imported only when a run starts).

Each adapter is what an application does with the transport's high-level API:
``connect()`` with the scenario's :class:`~rtms_proto.SessionConfig`, iterate
the stream's events, issue commands on the stream, be slow when the scenario
says so.  The event queue is kept small (``max_events``) so that a slow
consumer exercises the transport's backpressure.

Use them by name with the runner, the pytest plugin or the command line:
``memory``, ``asyncio``, ``trio``, ``blocking`` (see :func:`load_adapter`).
"""

from __future__ import annotations

import importlib
import time
from typing import TYPE_CHECKING

from .harness import (
    AsyncioHarness,
    Harness,
    StreamEnv,
    ThreadedHarness,
    TrioHarness,
)

if TYPE_CHECKING:
    from rtms_transports import TransportOptions

__all__ = [
    "BUILTIN",
    "AsyncioAdapter",
    "BlockingAdapter",
    "TrioAdapter",
    "load_adapter",
    "transport_options",
]

MAX_EVENTS = 16
"""Queue bound used by the adapters: small, so that backpressure is exercised."""


def transport_options(stream: StreamEnv) -> TransportOptions:
    """The transport options of a conformance run: the test CA, short timeouts."""
    from rtms_transports import TransportOptions

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

        from rtms_transports.asyncio import connect

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

        from rtms_transports.trio import connect

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
        from rtms_transports.blocking import connect

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


BUILTIN: dict[str, str] = {
    "memory": "rtms_conformance.harness:MemoryAdapter",
    "asyncio": "rtms_conformance.adapters:AsyncioAdapter",
    "trio": "rtms_conformance.adapters:TrioAdapter",
    "blocking": "rtms_conformance.adapters:BlockingAdapter",
}
"""Short names for the adapters shipped here."""


def load_adapter(spec: str) -> Harness:
    """An adapter from ``module:factory`` (called without arguments) or a built-in name."""
    target = BUILTIN.get(spec, spec)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"adapter {spec!r} is not 'module:factory' nor one of {', '.join(BUILTIN)}"
        )
    factory: object = importlib.import_module(module_name)
    for part in attr.split("."):
        factory = getattr(factory, part)
    if not callable(factory):
        raise TypeError(f"{target} is not callable")
    adapter = factory()
    if not isinstance(adapter, Harness):
        raise TypeError(f"{target}() returned {adapter!r}, which has no name and run(env)")
    return adapter
