"""``rtms_transports.blocking.connect()``: the loops of all its streams share one I/O
thread ("rtms-io"), against the fake server: streams from many threads on that one
thread, nothing lost; the thread stops with the last stream and starts again with
the next; an exception leaving one block aborts that stream only; a pool's handler
may not wait for a stream; a forked child starts an I/O thread of its own."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
from test_transport_helpers import (
    ALLOWED,
    CLIENT_ID,
    CLIENT_SECRET,
    WAIT,
    add_stream,
    closed_port,
    driver_threads,
    fake_server,
    meeting,
    of,
    options,
    rtms_threads,
    wait_until,
    webhook_body,
    write_ca,
)

from rtms_conformance.net import ServerThread
from rtms_conformance.server import StreamInfo
from rtms_proto import MediaType
from rtms_proto import events as ev
from rtms_transports import ConnectError
from rtms_transports.blocking import Pool, Stream, connect

KW: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "allowed_hosts": ALLOWED,
}


def notes(server: ServerThread, info: StreamInfo) -> list[str]:
    """What the server noted about the stream's sockets (close frames, lost connections)."""
    sid = info.rtms_stream_id
    return server.call(
        lambda r: [
            e.note for e in r.server.trace if e.direction == "note" and e.rtms_stream_id == sid
        ]
    )


def next_audio(stream: Stream) -> ev.AudioReceived:
    """The stream's next audio message (other events skipped)."""
    while True:
        event = stream.receive(timeout=WAIT)
        if isinstance(event, ev.AudioReceived):
            return event


def test_streams_of_many_threads_share_one_io_thread_nothing_lost(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    count = 6
    with fake_server() as server:
        infos = [add_stream(server, f"shared-{n}", duration=1.5) for n in range(count)]
        all_in = threading.Barrier(count, timeout=WAIT)
        seen: list[tuple[list[str], threading.Thread]] = []
        got: dict[int, list[ev.Event]] = {}
        errors: list[BaseException] = []

        def iterate(n: int) -> None:
            try:
                body = server.rtms_started_body(infos[n])
                with connect(body, options=options(ca), **KW) as stream:
                    all_in.wait()  # every stream is open at once
                    seen.append((driver_threads(), rtms_threads()[0]))
                    got[n] = list(stream)
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=iterate, args=(n,)) for n in range(count)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(WAIT)
        statuses = [server.status(info) for info in infos]
    assert not errors
    assert len(seen) == count
    assert all(names == ["rtms-io"] for names, _ in seen)
    assert len({id(thread) for _, thread in seen}) == 1  # the same thread for all
    for n, status in enumerate(statuses):
        events = got[n]
        assert isinstance(events[-1], ev.SessionEnded)
        assert events[-1].why is ev.EndReason.STREAM_TERMINATED
        audio = of(events, ev.AudioReceived)
        assert len(audio) == status.sent[14] >= 45
        stamps = [a.timestamp for a in audio]
        assert stamps == list(range(stamps[0], stamps[-1] + 1, 20))
        assert not of(events, ev.ConnectionFailed)
    assert driver_threads() == []  # gone with the last stream


def test_the_thread_stops_with_the_last_stream_and_starts_with_the_next(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        first_info, second_info, third_info = (
            add_stream(server, f"shared-turn-{n}", duration=None) for n in range(3)
        )
        assert driver_threads() == []
        with contextlib.ExitStack() as second_block:
            with contextlib.ExitStack() as first_block:
                first = first_block.enter_context(
                    connect(server.rtms_started_body(first_info), options=options(ca), **KW)
                )
                second = second_block.enter_context(
                    connect(server.rtms_started_body(second_info), options=options(ca), **KW)
                )
                (io,) = rtms_threads()
                next_audio(first)
                next_audio(second)
            assert first.ended is not None  # left in order, the second stream still open
            assert rtms_threads() == [io]
            next_audio(second)  # still served (TimeoutError otherwise)
        assert second.ended is not None
        assert driver_threads() == []
        with connect(server.rtms_started_body(third_info), options=options(ca), **KW) as third:
            (again,) = rtms_threads()
            next_audio(third)
        assert driver_threads() == []
        first_notes = notes(server, first_info)
    assert again is not io and again.name == "rtms-io"
    assert any(note.startswith("client sent a close frame") for note in first_notes)


@pytest.mark.parametrize("error", [KeyError("mine"), KeyboardInterrupt()], ids=repr)
def test_an_exception_leaving_one_block_aborts_that_stream_only(
    error: BaseException, tmp_path: Path
) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        aborted_info = add_stream(server, "shared-aborted", duration=None)
        kept_info = add_stream(server, "shared-kept", duration=None)
        with connect(server.rtms_started_body(kept_info), options=options(ca), **KW) as kept:
            (io,) = rtms_threads()
            with (
                pytest.raises(type(error)),
                connect(server.rtms_started_body(aborted_info), options=options(ca), **KW) as s,
            ):
                next_audio(s)
                raise error
            assert s.ended is None  # aborted: no end of the session was seen

            def gone() -> bool:
                status = server.status(aborted_info)
                return not status.signaling_connected and not status.media_connected

            assert wait_until(gone, WAIT)
            assert rtms_threads() == [io]
            next_audio(kept)
            kept.close_stream()
            last = None
            while not isinstance(last, ev.SessionEnded):
                last = kept.receive(timeout=WAIT)
        aborted_notes = notes(server, aborted_info)
    assert last.why is ev.EndReason.CLOSED_BY_APP
    assert "connection lost" in aborted_notes
    assert not any(note.startswith("client sent a close frame") for note in aborted_notes)
    assert driver_threads() == []


def test_a_stream_that_cannot_connect_leaves_no_thread_and_spares_the_others(
    tmp_path: Path,
) -> None:
    ca = write_ca(tmp_path)
    refused = webhook_body(f"wss://127.0.0.1:{closed_port()}/signaling")
    with pytest.raises(ConnectError):
        connect(refused, options=options(ca), **KW).__enter__()
    assert driver_threads() == []
    with fake_server() as server:
        info = add_stream(server, "shared-survivor", duration=None)
        with connect(server.rtms_started_body(info), options=options(ca), **KW) as stream:
            (io,) = rtms_threads()
            with pytest.raises(ConnectError), connect(refused, options=options(ca), **KW):
                pass
            assert rtms_threads() == [io]
            next_audio(stream)
    assert stream.ended is not None and driver_threads() == []


def test_connects_racing_the_thread_stopping_are_all_served(tmp_path: Path) -> None:
    """Short streams from several threads, so that the count falls to zero and the
    thread stops and restarts while other threads connect: none is refused or lost."""
    ca = write_ca(tmp_path)
    threads, rounds = 4, 3
    with fake_server() as server:
        bodies = [
            [
                server.rtms_started_body(add_stream(server, f"shared-race-{t}-{r}", duration=None))
                for r in range(rounds)
            ]
            for t in range(threads)
        ]
        ended: list[ev.SessionEnded | None] = []
        errors: list[BaseException] = []

        def churn(mine: list[bytes]) -> None:
            try:
                for body in mine:
                    with connect(body, options=options(ca), **KW) as stream:
                        next_audio(stream)
                    ended.append(stream.ended)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=churn, args=(mine,)) for mine in bodies]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(WAIT * rounds)
    assert not errors
    assert len(ended) == threads * rounds
    assert all(end is not None and end.why is ev.EndReason.STOPPED_LOCALLY for end in ended)
    assert driver_threads() == []


def test_connect_from_a_pool_handler_is_refused_not_a_stall(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server, Pool(name="rtms-pool-handler") as pool:
        info = add_stream(server, "shared-from-handler", duration=None)
        body = server.rtms_started_body(info)
        refused: list[str] = []
        during: list[list[str]] = []
        handles: list[Any] = []
        done = threading.Event()

        def handler(event: ev.Event) -> None:
            if isinstance(event, ev.MediaConnected) and not refused:
                try:
                    connect(body, options=options(ca), **KW).__enter__()
                except RuntimeError as exc:
                    refused.append(str(exc))
                during.append(driver_threads())
                handles[0].stop()
            if isinstance(event, ev.SessionEnded):
                done.set()

        handles.append(pool.start(body, handler, options=options(ca), **KW))
        assert done.wait(WAIT)
    assert refused == ["connect() waits for an I/O thread: not from a pool's handler"]
    assert during == [["rtms-pool-handler"]]  # no shared thread was started for it


def _stream_in_child(body: bytes, ca: str, conn: Connection) -> None:
    """In a forked child: one connect() stream to its end; what it saw goes up the pipe."""
    try:
        with connect(body, options=options(ca), **KW) as stream:
            during = driver_threads()
            events = list(stream)
        last = events[-1]
        why = last.why.value if isinstance(last, ev.SessionEnded) else repr(last)
        conn.send((during, len(of(events, ev.AudioReceived)), why, driver_threads()))
    except BaseException as exc:
        conn.send(repr(exc))


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_an_io_thread_of_its_own(tmp_path: Path) -> None:
    """The child of a fork taken while a stream runs has no copy of the I/O thread: its
    own connect() starts one instead of handing its stream to a thread that is not there."""
    ca = write_ca(tmp_path)
    fork = multiprocessing.get_context("fork")
    quiet = meeting(None, participants=0, transcripts=False)  # the parent's stream idles
    with fake_server() as server:
        held = add_stream(server, "shared-fork-parent", duration=None, meeting=quiet)
        info = add_stream(server, "shared-fork-child", duration=0.5)
        body = server.rtms_started_body(info)
        parent_body = server.rtms_started_body(held)
        with connect(parent_body, media=MediaType.TRANSCRIPT, options=options(ca), **KW) as s:
            (io,) = rtms_threads()
            ours, theirs = fork.Pipe(duplex=False)
            child = fork.Process(target=_stream_in_child, args=(body, ca, theirs), daemon=True)
            child.start()
            theirs.close()
            try:
                answered = ours.poll(WAIT)
                result = ours.recv() if answered else "no answer"
            finally:
                child.join(WAIT)
                if child.is_alive():
                    child.kill()
                    child.join(WAIT)
                ours.close()
            assert rtms_threads() == [io]  # the parent's thread went on
            assert s.ended is None
        sent = server.status(info).sent.get(14, 0)
    assert result == (["rtms-io"], sent, ev.EndReason.STREAM_TERMINATED.value, [])
    assert sent >= 15
    assert driver_threads() == []
