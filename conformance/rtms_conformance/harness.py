"""What a transport implements to run the conformance suite, and the in-memory reference.

A transport's adapter is a :class:`Harness`: an object with a ``name`` and a
``run(env)`` method that runs every stream of ``env`` (at the same time) to
its end.  For each stream (:class:`StreamEnv`) it must

* run an :class:`rtms_proto.Session` built from ``stream.config`` with
  ``jitter=stream.jitter``, trusting the test CA (``stream.ca_file``, or
  ``stream.ssl_context()``) for ``wss://localhost``;
* hand every event the session emits, in order and including those before the
  signaling handshake succeeded, to ``pause = stream.react(event, commands)``,
  where ``commands`` is an object with the session's commands
  (:class:`CommandTarget`, which ``rtms_transports``' streams are); ``react``
  performs the scenario's commands on it before returning;
* then wait ``pause`` seconds (the application is slow) without taking events,
  the framework's way, while the transport keeps the session alive;
* stop when ``SessionEnded`` was delivered; if the connect step raises, report
  it with ``stream.raised(exc)``; when ``stream.cancel_after`` is set, cancel
  the run after that many seconds the framework's way and call
  ``stream.expire()``.

The base classes :class:`AsyncioHarness`, :class:`TrioHarness` and
:class:`ThreadedHarness` do the concurrency, the cancellation, the time limit
and the error reporting: an adapter only writes ``run_stream(stream)``.
:class:`MemoryAdapter` is the reference: the session driven on
:class:`~rtms_conformance.memory.MemoryNetwork`'s simulated clock, no sockets.
"""

from __future__ import annotations

import abc
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rtms_proto import RtmsError, Session, SessionConfig
from rtms_proto import events as ev
from rtms_proto.actions import CloseSocket, OpenSocket, SendBytes, SocketId
from rtms_proto.enums import EventType, StopReason

from .memory import MemoryNetwork
from .scenarios import (
    Action,
    CloseStream,
    Command,
    Failover,
    NotifyStopped,
    Pause,
    RequestStreamState,
    Scenario,
    Stop,
    SubscribeEvents,
    SubscribeVideo,
)
from .server import StreamInfo
from .tls import LoopbackTLS
from .trace import AppCommand, RecordItem, RunEnded, RunEndKind

__all__ = [
    "AsyncioHarness",
    "CommandTarget",
    "Expired",
    "HANG_GRACE",
    "Harness",
    "MemoryAdapter",
    "ScenarioEnv",
    "StreamEnv",
    "ThreadedHarness",
    "TrioHarness",
]


HANG_GRACE = 3.0
"""Seconds a run may overrun its time limit (or cancellation) before it counts as hung."""


class CommandTarget(Protocol):
    """The session commands a scenario uses (``rtms_transports`` streams have them)."""

    def close_stream(self) -> None: ...
    def stop(self) -> None: ...
    def failover(self, new_signaling_url: str) -> None: ...
    def notify_stopped(self, stop_reason: StopReason | int | str | None = None) -> None: ...
    def subscribe_video(self, user_id: int, subscribe: bool = True) -> None: ...
    def subscribe_events(
        self, event_types: Iterable[EventType | int], subscribe: bool = True
    ) -> None: ...
    def request_stream_state(self) -> None: ...


class Expired(Exception):
    """Raised by an adapter to leave its run when ``stream.remaining()`` ran out."""


class StreamEnv:
    """One stream of a scenario run: what to run, and where its record goes."""

    def __init__(
        self,
        *,
        index: int,
        info: StreamInfo,
        config: SessionConfig,
        webhook_body: bytes,
        jitter_value: float,
        actions: Sequence[Action],
        cancel_after: float | None,
        time_limit: float,
        current_url: Callable[[], str],
        tls: LoopbackTLS | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.index = index
        self.info = info
        self.config = config
        """The complete session configuration (pass it as the webhook source)."""
        self.webhook_body = webhook_body
        """The stream's ``rtms_started`` body, for adapters that want to parse it."""
        self.cancel_after = cancel_after
        self.time_limit = time_limit
        self.ca_file = ca_file
        """PEM file of the CA that signed the server's certificate (None in memory)."""
        self.tls = tls
        self.record: list[RecordItem] = []
        self.connected_after: float | None = None
        """Seconds from the start to the first media handshake (a load diagnostic)."""
        self._jitter_value = jitter_value
        self._actions = tuple(actions)
        self._counts = [0] * len(self._actions)
        self._current_url = current_url
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def __repr__(self) -> str:
        return f"<StreamEnv {self.info.rtms_stream_id}>"

    @property
    def rtms_stream_id(self) -> str:
        return self.info.rtms_stream_id

    def jitter(self) -> float:
        """The jitter draw: a constant, so that every backoff delay is known."""
        return self._jitter_value

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying client context trusting the test CA (None in memory)."""
        return None if self.tls is None else self.tls.client_context()

    # --- the application ---------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """``SessionEnded`` was delivered, or the run ended otherwise."""
        with self._lock:
            return any(isinstance(item, ev.SessionEnded | RunEnded) for item in self.record)

    def react(self, event: ev.Event, commands: CommandTarget) -> float:
        """Record ``event``, perform the commands it triggers; the seconds to pause."""
        with self._lock:
            index = len(self.record)
            self.record.append(event)
            if self.connected_after is None and isinstance(event, ev.MediaConnected):
                self.connected_after = time.monotonic() - self._started
        pause = 0.0
        for i, action in enumerate(self._actions):
            on = action.on
            if self._counts[i] >= on.nth or not isinstance(event, on.event):
                continue
            if on.role is not None:
                sock = getattr(event, "sock", None)
                if not isinstance(sock, SocketId) or sock.role is not on.role:
                    continue
            self._counts[i] += 1
            if self._counts[i] == on.nth:
                for command in action.do:
                    pause += self._perform(command, commands, index)
        return pause

    def _perform(self, command: Command, target: CommandTarget, trigger: int) -> float:
        pause = 0.0
        error: str | None = None
        try:
            match command:
                case CloseStream():
                    target.close_stream()
                case Stop():
                    target.stop()
                case NotifyStopped(stop_reason=reason):
                    target.notify_stopped(reason)
                case Failover():
                    target.failover(self._current_url())
                case SubscribeVideo(user_id=user, subscribe=on):
                    target.subscribe_video(user, on)
                case SubscribeEvents(event_types=types, subscribe=on):
                    target.subscribe_events(types, on)
                case RequestStreamState():
                    target.request_stream_state()
                case Pause(seconds=seconds):
                    pause = seconds
        except RtmsError as exc:
            error = type(exc).__name__
        with self._lock:
            self.record.append(AppCommand(command, trigger, error))
        return pause

    # --- how a run ends ------------------------------------------------------------------------

    def remaining(self) -> float:
        """Seconds until the run must be cancelled (or hits its time limit)."""
        limit = self.cancel_after if self.cancel_after is not None else self.time_limit
        return max(0.0, limit - (time.monotonic() - self._started))

    def expire(self) -> Expired:
        """The run was cancelled as the scenario asks (or hit its time limit): record it,
        and return an exception for the adapter to raise if it needs one."""
        kind = RunEndKind.CANCELLED if self.cancel_after is not None else RunEndKind.TIMED_OUT
        self._end(RunEnded(kind, detail=f"after {self.time_limit:g} s"))
        return Expired(kind.value)

    def raised(self, error: BaseException) -> None:
        """The transport raised ``error`` (its connect step, or a crash)."""
        self._end(RunEnded(RunEndKind.RAISED, error))

    def hung(self) -> None:
        """The adapter's run for this stream did not finish in time (a hung transport)."""
        limit = self.cancel_after if self.cancel_after is not None else self.time_limit
        detail = f"(still running {limit + HANG_GRACE:g} s after the start)"
        self._end(RunEnded(RunEndKind.TIMED_OUT, detail=detail))

    def returned(self) -> None:
        """The adapter returned; note it if the stream had not finished."""
        if not self.finished:
            self._end(RunEnded(RunEndKind.TIMED_OUT, detail="(the adapter returned early)"))

    def _end(self, item: RunEnded) -> None:
        with self._lock:
            if not any(isinstance(x, RunEnded) for x in self.record):
                self.record.append(item)

    def snapshot(self) -> list[RecordItem]:
        with self._lock:
            return list(self.record)


@dataclass(frozen=True, slots=True)
class ScenarioEnv:
    """One run of a scenario: its streams (run them all at once) and, for the in-memory
    reference, the simulated network."""

    scenario: Scenario
    streams: tuple[StreamEnv, ...]
    memory: MemoryNetwork | None = None

    @property
    def time_limit(self) -> float:
        return self.scenario.time_limit

    @property
    def cancel_after(self) -> float | None:
        return self.scenario.cancel_after


@runtime_checkable
class Harness(Protocol):
    """A transport's adapter (see the module docstring).

    ``uses_sockets`` (default True) tells the runner to serve the scenario on
    real loopback sockets; the in-memory reference sets it to False.
    """

    name: str

    def run(self, env: ScenarioEnv) -> None: ...


# --- base classes for adapters ---------------------------------------------------------------


class AsyncioHarness(abc.ABC):
    """An asyncio adapter: implement ``async def run_stream(stream)``.

    Streams run as tasks of one event loop; ``cancel_after`` cancels a stream's
    task (as ``asyncio.timeout`` does), the time limit likewise.
    """

    name = "asyncio"
    uses_sockets = True

    @abc.abstractmethod
    async def run_stream(self, stream: StreamEnv) -> None:
        """Run one stream to its end (see the module docstring)."""

    def run(self, env: ScenarioEnv) -> None:
        import asyncio

        async def main() -> None:
            await asyncio.gather(*(self._guard(stream) for stream in env.streams))

        asyncio.run(main())

    async def _guard(self, stream: StreamEnv) -> None:
        import asyncio

        try:
            async with asyncio.timeout(stream.remaining()) as scope:
                await self.run_stream(stream)
        except TimeoutError as exc:
            if scope.expired():
                stream.expire()
            else:
                stream.raised(exc)
        except Exception as exc:
            stream.raised(exc)
        stream.returned()


class TrioHarness(abc.ABC):
    """A trio adapter: implement ``async def run_stream(stream)``.

    Streams run as tasks of one nursery; ``cancel_after`` cancels a stream's
    cancel scope, the time limit likewise.
    """

    name = "trio"
    uses_sockets = True

    @abc.abstractmethod
    async def run_stream(self, stream: StreamEnv) -> None:
        """Run one stream to its end (see the module docstring)."""

    def run(self, env: ScenarioEnv) -> None:
        import trio

        async def main() -> None:
            async with trio.open_nursery() as nursery:
                for stream in env.streams:
                    nursery.start_soon(self._guard, stream)

        # Real time, not trio.testing.MockClock: the peer is the fake server on
        # its own thread and asyncio loop (net.ServerThread), whose keep-alives,
        # media and reconnection windows run on the real clock, over real
        # loopback sockets.  With autojump_threshold=0 the client's clock jumps
        # whenever its tasks wait, past bytes still on their way and past the
        # worker thread that resolves "localhost": every connect timed out
        # (after "2 s" of mock time).  With a threshold (0.05 s tried) the two
        # clocks drift apart whenever the server is quiet for longer than it:
        # 27 of 34 scenarios produced other traces (keep-alive timeouts, early
        # expiries).  Only the in-memory reference, where server and client share
        # one simulated clock, can skip the waiting.

        trio.run(main)

    async def _guard(self, stream: StreamEnv) -> None:
        import trio

        with trio.move_on_after(stream.remaining()) as scope:
            try:
                await self.run_stream(stream)
            except Exception as exc:
                stream.raised(exc)
        if scope.cancelled_caught:
            stream.expire()
        stream.returned()


class ThreadedHarness(abc.ABC):
    """A blocking adapter: implement ``run_stream(stream)``; each stream gets a thread.

    Threads cannot be cancelled from outside: ``run_stream`` waits for events at
    most ``stream.remaining()`` seconds and, when that runs out, leaves its
    transport the way an application would (``raise stream.expire()``).
    """

    name = "threads"
    uses_sockets = True

    @abc.abstractmethod
    def run_stream(self, stream: StreamEnv) -> None:
        """Run one stream to its end (see the class docstring)."""

    def run(self, env: ScenarioEnv) -> None:
        threads = [
            threading.Thread(
                target=self._guard, args=(stream,), name=f"rtms-{stream.index}", daemon=True
            )
            for stream in env.streams
        ]
        for thread in threads:
            thread.start()
        for thread, stream in zip(threads, env.streams, strict=True):
            thread.join(stream.remaining() + HANG_GRACE)
            if thread.is_alive():
                stream.hung()

    def _guard(self, stream: StreamEnv) -> None:
        try:
            self.run_stream(stream)
        except Expired:
            pass
        except Exception as exc:
            stream.raised(exc)
        stream.returned()


# --- the in-memory reference -------------------------------------------------------------------


class _SessionCommands:
    """:class:`CommandTarget` over a session on the simulated clock."""

    def __init__(self, session: Session, net: MemoryNetwork) -> None:
        self._session = session
        self._net = net

    def close_stream(self) -> None:
        self._session.close_stream(now=self._net.now)

    def stop(self) -> None:
        self._session.stop(now=self._net.now)

    def failover(self, new_signaling_url: str) -> None:
        self._session.failover(new_signaling_url, now=self._net.now)

    def notify_stopped(self, stop_reason: StopReason | int | str | None = None) -> None:
        self._session.notify_stopped(stop_reason=stop_reason, now=self._net.now)

    def subscribe_video(self, user_id: int, subscribe: bool = True) -> None:
        self._session.subscribe_video(user_id, subscribe=subscribe, now=self._net.now)

    def subscribe_events(
        self, event_types: Iterable[EventType | int], subscribe: bool = True
    ) -> None:
        self._session.subscribe_events(event_types, subscribe=subscribe, now=self._net.now)

    def request_stream_state(self) -> None:
        self._session.request_stream_state(now=self._net.now)


class _MemoryClient:
    """A session on the network that hands its events to the scenario as they come."""

    def __init__(self, session: Session, stream: StreamEnv, net: MemoryNetwork) -> None:
        self.session = session
        self.stream = stream
        self.commands = _SessionCommands(session, net)
        self._open: dict[SocketId, None] = {}
        self._cancelled = False
        self._closing: list[CloseSocket] = []

    def start(self, *, now: float) -> None:
        self.session.start(now=now)

    def socket_opened(self, sock: SocketId, *, now: float) -> None:
        if not self._cancelled:
            self.session.socket_opened(sock, now=now)

    def receive_data(self, sock: SocketId, data: bytes, *, now: float) -> None:
        if not self._cancelled:
            self.session.receive_data(sock, data, now=now)

    def receive_eof(self, sock: SocketId, *, now: float) -> None:
        if not self._cancelled:
            self.session.receive_eof(sock, now=now)

    def socket_failed(self, sock: SocketId, detail: str, *, now: float) -> None:
        if not self._cancelled:
            self.session.socket_failed(sock, detail, now=now)

    def handle_timer(self, *, now: float) -> None:
        if not self._cancelled:
            self.session.handle_timer(now=now)

    def next_deadline(self) -> float | None:
        return None if self._cancelled else self.session.next_deadline()

    def drain(self) -> list[object]:
        if self._closing:
            closing, self._closing = self._closing, []
            return list(closing)
        if self._cancelled:
            return []
        out: list[object] = []
        for item in self.session.drain():
            if isinstance(item, OpenSocket):
                self._open[item.sock] = None
            elif isinstance(item, CloseSocket):
                self._open.pop(item.sock, None)
            elif not isinstance(item, SendBytes):
                # A slow consumer costs nothing on the simulated clock.
                self.stream.react(item, self.commands)
            out.append(item)
        return out

    def cancel(self) -> None:
        """Abandon the session as a cancelled transport does: close every socket, now."""
        self._cancelled = True
        self._closing = [CloseSocket(sock=sock) for sock in self._open]
        self._open.clear()
        self.stream.expire()


class MemoryAdapter:
    """The reference: every stream's session on the fake server's simulated clock.

    Deterministic and instant; defines what the socket transports must match.
    """

    name = "memory"
    uses_sockets = False

    def run(self, env: ScenarioEnv) -> None:
        net = env.memory
        if net is None:
            raise RuntimeError("the memory adapter needs the runner's MemoryNetwork")
        clients = [
            _MemoryClient(Session(stream.config, jitter=stream.jitter), stream, net)
            for stream in env.streams
        ]
        for client in clients:
            net.add_client(client)

        def done() -> bool:
            return all(client.stream.finished for client in clients)

        start = net.now
        if env.cancel_after is not None:
            net.run_until_true(done, limit=env.cancel_after)
            for client in clients:
                if not client.stream.finished:
                    client.cancel()
            net.pump()
        net.run_until_true(done, limit=max(0.0, start + env.time_limit - net.now))
        for client in clients:
            if not client.stream.finished:
                client.stream.expire()
