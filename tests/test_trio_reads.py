"""trio's socket reads: eager reads (yield, then ``recv`` without asking epoll) while data
is waiting, and their bound on a light or idle socket (one empty ``recv`` per 64 reads)."""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from rtms_transports import trio as rt_trio

READS = 300


def _pair() -> tuple[rt_trio._SocketStream, socket.socket]:
    ours, peer = socket.socketpair()
    return rt_trio._SocketStream(trio.SocketStream(trio.socket.from_stdlib_socket(ours))), peer


def _count_eager_tries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the eager tries: each yields through ``trio.lowlevel.checkpoint`` first (in
    the main task, which reads; other tasks' checkpoints are not counted)."""
    tries = [0]
    real = trio.lowlevel.checkpoint

    async def counting() -> None:
        task = trio.lowlevel.current_task()
        if task.parent_nursery is not None and task.parent_nursery.parent_task is (
            trio.lowlevel.current_root_task()
        ):
            tries[0] += 1
        await real()

    monkeypatch.setattr(trio.lowlevel, "checkpoint", counting)
    return tries


def test_light_socket_pays_at_most_one_empty_recv_per_64_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each message arrives while the reader waits (nothing is ever waiting when it
    reads): eager tries back off to one per 64 reads, and every byte arrives in order."""
    tries = _count_eager_tries(monkeypatch)

    async def main() -> list[bytes]:
        stream, peer = _pair()
        got: list[bytes] = []

        async def send_later() -> None:
            for n in range(READS):
                await trio.testing.wait_all_tasks_blocked()  # the reader waits on epoll
                peer.send(b"%05d" % n)
                while len(got) <= n:
                    await trio.sleep(0)

        with peer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_later)
                while len(got) < READS:
                    got.append(await stream.receive_some(1024))
            stream.close()
        return got

    got = trio.run(main)
    assert got == [b"%05d" % n for n in range(READS)]
    # Tries after 1, 2+1, 4+1, ... 64+1 reads, then one per 65: about 8 in 300.
    assert 1 <= tries[0] <= 2 + 6 + READS // 65


def test_loaded_socket_reads_eagerly_while_data_is_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Data is waiting at every read (a loaded process): after the first read that finds
    it so, every read is eager and finds data; a miss then falls back to waiting."""
    tries = _count_eager_tries(monkeypatch)

    async def main() -> tuple[list[bytes], bytes]:
        stream, peer = _pair()
        got: list[bytes] = []
        with peer:
            for n in range(READS):
                peer.send(b"%05d" % n)  # waiting before the read
                got.append(await stream.receive_some(1024))
            before = tries[0]
            with trio.move_on_after(0.05):
                await stream.receive_some(1024)  # an eager miss, then a wait: times out
            assert tries[0] == before + 1
            peer.send(b"after")
            last = await stream.receive_some(1024)  # waits (backing off), gets it
            assert tries[0] == before + 1
        stream.close()
        return got, last

    got, last = trio.run(main)
    assert got == [b"%05d" % n for n in range(READS)]
    assert last == b"after"
    assert tries[0] >= READS - 2  # every read after the first went without epoll


def test_socket_closed_during_an_eager_yield_raises_closed() -> None:
    """A read that yields eagerly re-checks the socket: closed meanwhile, it raises
    ``ClosedResourceError`` instead of reading a reused file descriptor."""

    async def main() -> None:
        stream, peer = _pair()
        with peer:
            peer.send(b"a" * 16)
            assert await stream.receive_some(16) == b"a" * 16  # filled: next read is eager
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_close_soon, stream)
                with pytest.raises(trio.ClosedResourceError):
                    await stream.receive_some(16)

    trio.run(main)


async def _close_soon(stream: rt_trio._SocketStream) -> None:
    stream.close()
