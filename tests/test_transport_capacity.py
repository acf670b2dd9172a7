"""What one more open stream costs the asyncio driver (issue 12: many meetings in one
process).  The figures themselves are ``bench/bench_scale.py``'s; this pins the
design choices they depend on, through the public API."""

from __future__ import annotations

import asyncio
import tracemalloc
from contextlib import AsyncExitStack
from pathlib import Path
from typing import cast

from test_transport_helpers import (
    ALLOWED,
    CLIENT_ID,
    CLIENT_SECRET,
    add_stream,
    fake_server,
    options,
    write_ca,
)

from rtms_proto import events as ev
from rtms_transports.asyncio import Stream, _read_buffer, connect

STREAMS = 4
READ_SIZE = 4 << 20


async def _until_media(stream: Stream) -> None:
    async for event in stream:
        if isinstance(event, ev.MediaConnected):
            return


def test_open_streams_share_one_receive_buffer_per_event_loop(tmp_path: Path) -> None:
    """``read_size`` bytes are allocated once per event loop, not per socket: with
    4 streams (8 sockets) and a 4 MiB ``read_size``, the driver's own allocations
    stay under two buffers' worth (per-socket buffers would be 32 MiB)."""
    ca = write_ca(tmp_path)
    with fake_server() as server:
        bodies = [
            server.rtms_started_body(add_stream(server, f"capacity-{n}", duration=None))
            for n in range(STREAMS)
        ]

        async def main() -> int:
            async with AsyncExitStack() as stack:
                streams = [
                    await stack.enter_async_context(
                        connect(
                            body,
                            options=options(ca, read_size=READ_SIZE),
                            client_id=CLIENT_ID,
                            client_secret=CLIENT_SECRET,
                            allowed_hosts=ALLOWED,
                        )
                    )
                    for body in bodies
                ]
                async with asyncio.timeout(20):
                    await asyncio.gather(*(_until_media(s) for s in streams))
                snapshot = tracemalloc.take_snapshot()
            mine = snapshot.filter_traces([tracemalloc.Filter(True, "*rtms_transports*")])
            return sum(stat.size for stat in mine.statistics("filename"))

        tracemalloc.start()
        try:
            held = asyncio.run(main())
        finally:
            tracemalloc.stop()
    assert READ_SIZE <= held < 2 * READ_SIZE


def test_the_receive_buffer_is_per_loop_and_size_and_per_call_without_weak_references() -> None:
    """Two loops never share a buffer (each reads on its own thread); a loop that
    cannot be weakly referenced (an event loop implemented without ``__weakref__``)
    still works, with a buffer per socket."""
    one, two = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        assert _read_buffer(one, 1024) is _read_buffer(one, 1024)
        assert _read_buffer(one, 1024) is not _read_buffer(two, 1024)
        assert len(_read_buffer(one, 2048)) == 2048
    finally:
        one.close()
        two.close()

    class SlottedLoop:
        __slots__ = ()

    odd = cast(asyncio.AbstractEventLoop, SlottedLoop())
    first, second = _read_buffer(odd, 1024), _read_buffer(odd, 1024)
    assert first is not second and len(first) == len(second) == 1024
