"""trio's socket reads: on Linux one system task per run reads every connected socket
(an epoll of its own, level-triggered, that trio waits on); elsewhere each socket's task
reads it.  Both paths run the whole conformance catalogue; the edges of a read (nothing
there after all, the end, TLS records cut or many per read) are pinned here."""

from __future__ import annotations

import contextlib
import contextvars
import random
import socket
import threading
from pathlib import Path
from typing import Any, cast

import pytest
import trio
import trio.testing
from test_transport_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    add_stream,
    fake_server,
    loopback_tls,
    options,
    write_ca,
)

from rtms_conformance.adapters import load_adapter
from rtms_conformance.harness import MemoryAdapter
from rtms_conformance.runner import Runner
from rtms_proto import Session
from rtms_proto import events as ev
from rtms_transports import session_config
from rtms_transports import trio as rt_trio

KW: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "allowed_hosts": ("127.0.0.1",),
}


def _pair() -> tuple[rt_trio._SocketStream, socket.socket]:
    ours, peer = socket.socketpair()
    return rt_trio._SocketStream(trio.SocketStream(trio.socket.from_stdlib_socket(ours))), peer


def test_a_plain_read_when_readable_nothing_data_then_the_end() -> None:
    async def main() -> list[bytes | None]:
        stream, peer = _pair()
        got = [stream.read_ready(1024)]  # woken for nothing: None, not the end
        peer.send(b"abc")
        got.append(stream.read_ready(1024))
        peer.close()
        got.append(stream.read_ready(1024))
        stream.close()
        return got

    assert trio.run(main) == [None, b"abc", b""]


def test_a_tls_read_takes_every_complete_record_and_keeps_a_cut_one() -> None:
    """Records bigger than one read and many per read: every whole record's bytes come
    out of the read that completed it (none left inside for a poller that would not come
    back for them); a cut record gives None until its end arrives; close_notify ends."""
    tls = loopback_tls()
    payload = bytes(random.Random(7).randrange(256) for _ in range(100_000))
    ours, peer = socket.socketpair()
    server_done = threading.Event()

    def serve() -> None:
        with tls.server_context.wrap_socket(peer, server_side=True) as s:
            s.sendall(payload)
            server_done.set()
            with contextlib.suppress(OSError):  # the client closes without answering it
                s.unwrap()  # sends close_notify

    async def main() -> tuple[bytes, list[int | None]]:
        raw = rt_trio._SocketStream(trio.SocketStream(trio.socket.from_stdlib_socket(ours)))
        stream = rt_trio._TlsStream(raw, tls.client_context(), "127.0.0.1")
        await stream.do_handshake()
        got = bytearray()
        sizes: list[int | None] = []
        first = stream.buffered  # the handshake's last read may have taken data too
        while True:
            if not first and not stream.at_eof:
                await trio.lowlevel.wait_readable(raw.sock)
            first = False
            data = stream.read_ready(5000)  # smaller than a record: cut records
            sizes.append(None if data is None else len(data))
            if data == b"":
                break
            got += data or b""
            if wire := stream.take_output():
                await raw.send_all(wire)
        raw.close()
        return bytes(got), sizes

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        got, sizes = trio.run(main)
    finally:
        thread.join(10)
    assert server_done.is_set()
    assert got == payload
    assert None in sizes  # some reads ended inside a record
    assert any(size is not None and size > 5000 for size in sizes)  # and some took several


def test_receive_some_closed_while_waiting_raises_closed() -> None:
    async def main() -> None:
        stream, peer = _pair()
        with peer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_close_soon, stream)
                with pytest.raises(trio.ClosedResourceError):
                    await stream.receive_some(16)
            with pytest.raises(trio.ClosedResourceError):
                await stream.receive_some(16)

    trio.run(main)


async def _close_soon(stream: rt_trio._SocketStream) -> None:
    await trio.testing.wait_all_tasks_blocked()
    stream.close()


def _system_tasks() -> list[str]:
    root = trio.lowlevel.current_root_task()
    assert root is not None
    return [t.name for nursery in root.child_nurseries for t in nursery.child_tasks]


def test_one_reader_per_run_and_handlers_see_their_own_context(tmp_path: Path) -> None:
    """Three sessions in one run: one reading task for all of them, and each handler,
    called from it, still sees the context variables of the task that ran its session."""
    ca = write_ca(tmp_path)
    meeting_var: contextvars.ContextVar[str] = contextvars.ContextVar("meeting")
    seen: dict[str, set[str]] = {}
    readers: list[int] = []

    with fake_server() as server:
        infos = [add_stream(server, f"ctx-{n}", duration=1.0) for n in range(3)]

        async def run_one(name: str, body: bytes) -> None:
            meeting_var.set(name)
            session = Session(session_config(body, **KW), jitter=random.random)

            def handler(event: ev.Event) -> None:
                if isinstance(event, ev.AudioReceived):
                    seen.setdefault(name, set()).add(meeting_var.get())
                    readers.append(_system_tasks().count("rtms-reader"))

            ended = await rt_trio.run_session(session, handler, options=options(ca))
            assert ended.why is ev.EndReason.STREAM_TERMINATED

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                for n, info in enumerate(infos):
                    nursery.start_soon(run_one, f"m{n}", server.rtms_started_body(info))

        trio.run(main)
    assert seen == {f"m{n}": {f"m{n}"} for n in range(3)}
    assert readers and set(readers) == {1}


def test_the_catalogue_reads_the_same_with_a_task_per_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The read path of platforms without epoll (each socket's task reads it), run here
    on the whole conformance catalogue: the same traces as the reference."""
    monkeypatch.setattr(rt_trio, "_HAVE_EPOLL", False)
    with Runner(parallel=2) as runner:
        reference = {r.scenario: r for r in runner.run(MemoryAdapter()).results}
        report = runner.run(load_adapter("trio"))
    assert len(report.results) == len(reference)
    for result in report.results:
        assert result.ok, result.diff()
        assert result.traces == reference[result.scenario].traces, result.scenario


class _ReaderSteps(trio.abc.Instrument):
    """Counts the steps of the run's reader task: one step is one wake-up of it."""

    def __init__(self) -> None:
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == "rtms-reader":
            self.steps += 1


def test_a_wake_reads_each_ready_socket_once_and_at_most_a_batch() -> None:
    """More sockets ready than one wake reads (``_POLL_BATCH``): a wake reads a batch,
    the other tasks run between wakes, the next wake reads the rest first; no socket is
    read twice before every ready one was read once (a flooding peer takes no more)."""
    batch = rt_trio._POLL_BATCH
    count = batch + 44
    ticks = 0
    wakes = _ReaderSteps()
    reads: list[tuple[int, int, int]] = []  # (wake, tick of this task, socket number)

    class Driver:  # what the poller asks of a driver
        def readable(self, sock: int) -> None:
            reads.append((wakes.steps, ticks, sock))  # reads nothing: the socket stays ready

    async def main() -> None:
        nonlocal ticks
        poller = rt_trio._poller()
        assert poller is not None
        pairs = [socket.socketpair() for _ in range(count)]
        try:
            for number, (ours, peer) in enumerate(pairs):
                peer.send(b"x")
                poller.add(ours.fileno(), cast(Any, Driver()), cast(Any, number))
            while len(reads) < 2 * count:
                ticks += 1  # this task runs between two wakes of the poller
                await trio.sleep(0)
        finally:
            for ours, peer in pairs:
                poller.remove(ours.fileno())
                ours.close()
                peer.close()

    trio.run(main, instruments=[wakes])
    per_wake: dict[int, int] = {}
    for wake, _, _ in reads:
        per_wake[wake] = per_wake.get(wake, 0) + 1
    assert list(per_wake.values())[:2] == [batch, batch]  # full wakes read a batch, no more
    # This task ran between the wakes (trio orders the tasks of a round at random, so
    # it may run just before the first and just after the second, not before the third).
    assert reads[2 * batch][1] > reads[0][1]
    assert sorted(sock for _, _, sock in reads[:count]) == list(range(count))
