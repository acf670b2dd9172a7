"""Record one stream with the chosen transport: the glue behind ``record``, ``demo`` and ``listen``.

A :class:`StreamJob` owns a :class:`~.sinks.TappedSession` (with a wire log
when asked), a :class:`~.sinks.Recorder` and the event handler the
transport's ``SessionRunner`` calls.  :func:`run_job` runs it on asyncio, trio
or blocking sockets in the calling thread until the session ends; SIGINT and
SIGTERM close the stream gracefully (a second one stops at once).

The job's session does not retry its very first signaling socket
(``SessionConfig.retry_first_connect=False``): when it cannot be opened (DNS,
TCP, TLS) the session ends at once instead of retrying for a minute, so that
a wrong CA or host fails at once; :attr:`StreamJob.failure` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from rtms_proto import (
    ConnectionClosed,
    LocalProtocolError,
    Session,
    SessionConfig,
)
from rtms_proto import events as ev
from rtms_proto.enums import FailureReason
from rtms_transports import TransportOptions

from ._signals import on_signals
from .sinks import (
    Recorder,
    Stats,
    TappedSession,
    WireLogWriter,
    WrittenFile,
    config_to_header,
)

__all__ = ["FLAVOURS", "OK_ENDS", "StreamJob", "run_job"]

T = TypeVar("T")
Command = Callable[[Callable[[Session, float], Any]], Any]

FLAVOURS = ("asyncio", "trio", "blocking")

OK_ENDS = frozenset(
    {
        ev.EndReason.STREAM_TERMINATED,
        ev.EndReason.SESSION_STOPPED,
        ev.EndReason.STREAM_STOPPED,
        ev.EndReason.CLOSED_BY_APP,
    }
)
"""Ways a session ends that are a normal end of a recording."""


@dataclass(slots=True)
class _Interrupt:
    signal: int
    count: int


class StreamJob:
    """One stream being recorded (see the module docstring).

    ``on_event`` (optional) is called after each event is recorded, with the
    recorder's stats (progress displays).  ``deadline`` (seconds of
    ``time.monotonic()``) stops the session if it is still running then.
    """

    def __init__(
        self,
        config: SessionConfig,
        recorder: Recorder,
        *,
        wire_path: Path | None = None,
        recorder_settings: Mapping[str, object] | None = None,
        on_event: Callable[[Stats], object] | None = None,
        jitter: Callable[[], float] = random.random,
        deadline: float | None = None,
    ) -> None:
        config = dataclasses.replace(config, retry_first_connect=False)
        self.config = config
        self.recorder = recorder
        self.wire: WireLogWriter | None = None
        if wire_path is not None:
            header = config_to_header(config, recorder_settings or {})
            self.wire = WireLogWriter(wire_path, header)
        self.session = TappedSession(config, jitter=jitter, wire=self.wire)
        self.on_event = on_event
        self.deadline = deadline
        self.failure: str | None = None
        """Why the first signaling socket could not be opened (the session then ended)."""
        self.ended: ev.SessionEnded | None = None
        self.interrupt: _Interrupt | None = None
        self._pending = False
        self._command: Command | None = None
        self._abort: Callable[[], object] | None = None
        self._lock = threading.Lock()
        self.closed = False

    @property
    def connected(self) -> bool:
        """A signaling handshake succeeded (the session says)."""
        return self.session.has_connected

    @property
    def rtms_stream_id(self) -> str:
        return self.config.stream.rtms_stream_id

    def bind(self, command: Command | None, abort: Callable[[], object] | None = None) -> None:
        """Give the job the runner's command entry and its ``abort`` (None: the runner is gone)."""
        self._command = command
        self._abort = abort

    def command(self, fn: Callable[[Session, float], T]) -> T:
        if self._command is None:
            raise ConnectionClosed("the stream is not running")
        result: T = self._command(fn)
        return result

    # --- the handler ------------------------------------------------------------------------

    def handle(self, event: ev.Event) -> None:
        self.recorder.handle(event, self.session.elapsed)
        if isinstance(event, ev.SessionEnded):
            self.ended = event
            error = event.error
            if (
                event.why is ev.EndReason.FATAL_ERROR
                and error is not None
                and error.reason is FailureReason.CONNECT_FAILED
                and not self.connected
            ):
                self.failure = error.detail
        if self._pending:
            self._apply_interrupt()
        if self.deadline is not None and self.ended is None and time.monotonic() > self.deadline:
            self.deadline = None
            self._stop_quietly()
        if self.on_event is not None:
            self.on_event(self.recorder.stats)

    # --- stopping ---------------------------------------------------------------------------

    def request_interrupt(self, signum: int) -> None:
        """Ctrl-C / SIGTERM: close the stream gracefully; a second one stops at once.

        Safe from a signal handler of the thread that runs the job's loop (the
        command is deferred to the next event when the runner cannot take it).
        """
        with self._lock:
            count = 1 if self.interrupt is None else self.interrupt.count + 1
            self.interrupt = _Interrupt(signum, count)
            self._pending = True
            abort = self._abort
        if count >= 2 and abort is not None:
            # Whatever the session is doing (even ended, its sockets still flushing to a
            # peer that does not read): close every socket now.
            abort()
        self._apply_interrupt()

    def _apply_interrupt(self) -> None:
        # Called from the loop's thread (next event) and the signal's: one of them acts.
        with self._lock:
            interrupt = self.interrupt
            if not self._pending or interrupt is None:
                return
            if self.ended is not None:
                self._pending = False
                return
            if self.session.started_at is None:
                return  # the runner has not started the session yet: on the first event
            self._pending = False
        fn = _graceful if interrupt.count == 1 and self.connected else _stop
        try:
            self.command(fn)
        except LocalProtocolError:
            pass  # ending already
        except RuntimeError:
            with self._lock:
                self._pending = True  # the runner is not running yet: on the next event

    def _stop_quietly(self) -> None:
        with contextlib.suppress(LocalProtocolError, RuntimeError):
            self.command(_stop)

    # --- the end -----------------------------------------------------------------------------

    def close(self) -> list[WrittenFile]:
        """Close the recorder and the wire log; what was written."""
        self.closed = True
        files = self.recorder.close()
        if self.wire is not None:
            self.wire.close()
            size = self.wire.path.stat().st_size if self.wire.path.exists() else 0
            files.append(WrittenFile(self.wire.path, size, "raw inbound frames, for 'replay'"))
        return files


def _graceful(session: Session, now: float) -> None:
    """Ask Zoom to end the stream; when that cannot be sent now, close the sockets."""
    try:
        session.close_stream(now=now)
    except LocalProtocolError:
        session.stop(now=now)


def _stop(session: Session, now: float) -> None:
    session.stop(now=now)


# --- running ----------------------------------------------------------------------------------


def run_job(job: StreamJob, flavour: str, options: TransportOptions) -> ev.SessionEnded:
    """Run ``job`` on ``flavour`` in this thread until its session ends."""
    if flavour == "asyncio":
        return asyncio.run(_run_asyncio(job, options))
    if flavour == "trio":
        import trio

        ended: ev.SessionEnded = trio.run(_run_trio, job, options)
        return ended
    if flavour == "blocking":
        return _run_blocking(job, options)
    raise ValueError(f"unknown transport {flavour!r}")


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def _run_asyncio(job: StreamJob, options: TransportOptions) -> ev.SessionEnded:
    from rtms_transports.asyncio import SessionRunner

    runner = SessionRunner(job.session, job.handle, options=options)
    job.bind(runner.command, runner.abort)
    loop = asyncio.get_running_loop()
    try:
        with on_signals(loop, job.request_interrupt):  # Windows: signal.signal
            return await runner.run()
    finally:
        job.bind(None)


async def _run_trio(job: StreamJob, options: TransportOptions) -> ev.SessionEnded:
    import trio

    from rtms_transports.trio import SessionRunner

    runner = SessionRunner(job.session, job.handle, options=options)
    token = trio.lowlevel.current_trio_token()
    home = threading.get_ident()

    def command(fn: Callable[[Session, float], Any]) -> Any:
        # trio objects belong to their thread: other threads go through the token.
        if threading.get_ident() == home:
            return runner.command(fn)
        return trio.from_thread.run_sync(runner.command, fn, trio_token=token)

    def abort() -> None:
        if threading.get_ident() == home:
            runner.abort()
        else:
            trio.from_thread.run_sync(runner.abort, trio_token=token)

    job.bind(command, abort)

    async def watch(signals: Any) -> None:
        async for signum in signals:
            job.request_interrupt(int(signum))

    try:
        if threading.current_thread() is not threading.main_thread():
            return await runner.run()
        with trio.open_signal_receiver(*_SIGNALS) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, signals)
                ended = await runner.run()
                nursery.cancel_scope.cancel()
            return ended
    finally:
        job.bind(None)


def _run_blocking(job: StreamJob, options: TransportOptions) -> ev.SessionEnded:
    """The blocking runner loops in a worker thread; this thread waits for signals."""
    from rtms_transports.blocking import SessionRunner

    runner = SessionRunner(job.session, job.handle, options=options)
    job.bind(runner.command, runner.abort)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["ended"] = runner.run()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=work, name=f"rtms-{job.rtms_stream_id}", daemon=True)
    pending: list[int] = []
    previous: dict[signal.Signals, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    main = threading.current_thread() is threading.main_thread()
    if main:
        for sig in _SIGNALS:
            previous[sig] = signal.signal(sig, on_signal)
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.05)
            while pending:
                job.request_interrupt(pending.pop(0))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        job.bind(None)
    if "error" in outcome:
        raise outcome["error"]
    ended: ev.SessionEnded = outcome["ended"]
    return ended
