"""A fleet node as a library: receive the events of the streams this node owns.

::

    config = NodeConfig(servers=["nats://127.0.0.1:4222"], node="a")
    async with Node.connect(config) as node:       # EngineUnavailable if unreachable
        await node.submit(verified_webhook_event)   # from any node, de-duplicated
        async for owned in node.streams():          # each stream this node now owns
            ...                                     # iterate owned.events() in a task

The node runs the :class:`~rtms_fleet.policy.Policy` against the
:class:`~rtms_fleet.engine.Engine` on the running asyncio loop (its clock is
``loop.time()``): it watches the leases and the stored webhooks, performs the
policy's actions and keeps one timer at the policy's next deadline.  An
:class:`OwnedStream` connects when its :meth:`~OwnedStream.events` is iterated
and ends when the stream ends, is handed over or its lease is lost; before each
event it checks the fencing rule, so a node that was paused past its lease
yields nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from rtms_proto import DEFAULT_ALLOWED_HOSTS, InvalidConfig, RemoteProtocolError, SessionConfig
from rtms_proto import events as ev
from rtms_proto.enums import StopReason
from rtms_proto.webhooks import RtmsStarted, RtmsStopped
from rtms_transports import TransportError, TransportOptions
from rtms_transports import session_config as default_session_config
from rtms_transports.asyncio import Stream, connect

from .engine import Engine, EngineSettings, EngineUnavailable, LeaseLost
from .fanout import FANOUT_CLOSE_WAIT, FANOUT_QUEUE_BYTES, FanOut
from .policy import (
    DEFAULT_LEASE,
    Action,
    Claim,
    Failover,
    Lease,
    LeaseState,
    Policy,
    PolicyConfig,
    Release,
    Renew,
    Start,
    Stop,
    StopWhy,
)
from .publish import encode_event

__all__ = ["Node", "NodeConfig", "NodeStats", "OwnedStream"]

log = logging.getLogger("rtms_fleet")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """One node of the fleet; durations in seconds.

    ``servers``: NATS URLs (one or several of a cluster).  ``node``: this node's
    name, unique in the fleet.  ``capacity``: streams recorded at once (0 =
    receive webhooks only).  ``lease``: the lease TTL, the same on every node.
    ``region``: prefer streams whose server is in this region (others are
    claimed ``region_delay`` later).  ``publish``: fan every event out on
    ``rtms.<stream id>.<kind>``, without making the recording wait for NATS
    (``publish_queue``: bytes of events kept meanwhile; more are dropped and
    counted, see :mod:`rtms_fleet.fanout`).  ``replicas``: copies of the bucket and the
    stream in a cluster (default 3 when three servers or more are given, else 1).
    ``history``: how long stored webhooks are kept (a stream older than that
    cannot be taken over).  ``ready_timeout``: how long to wait at start for
    JetStream to be ready (a cluster that has just started elects its leader).
    ``ping_interval``: seconds between pings of the NATS server; a server silent
    for two of them (a network partition) counts as lost: ``ready`` is False and
    no stream is claimed until it answers again.
    """

    servers: Sequence[str]
    node: str
    capacity: int = 10
    lease: float = DEFAULT_LEASE
    region: str | None = None
    publish: bool = False
    publish_queue: int = FANOUT_QUEUE_BYTES
    allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS
    region_delay: float = 1.0
    replicas: int | None = None
    history: float = 86400.0
    connect_timeout: float = 5.0
    ready_timeout: float = 20.0
    ping_interval: int = 10

    def __post_init__(self) -> None:
        if isinstance(self.servers, str) or not self.servers:
            raise InvalidConfig("servers must be a non-empty list of NATS URLs")
        if not (math.isfinite(self.history) and self.history > 0):
            raise InvalidConfig("history must be a number of seconds > 0")
        if not (math.isfinite(self.ready_timeout) and self.ready_timeout >= 0):
            raise InvalidConfig("ready_timeout must be a number of seconds >= 0")
        if (
            isinstance(self.ping_interval, bool)
            or not isinstance(self.ping_interval, int)
            or self.ping_interval < 1
        ):
            raise InvalidConfig("ping_interval must be a whole number of seconds >= 1")
        if (
            isinstance(self.publish_queue, bool)
            or not isinstance(self.publish_queue, int)
            or self.publish_queue < 1
        ):
            raise InvalidConfig("publish_queue must be a number of bytes >= 1")
        self.policy_config()  # checks node, capacity, lease, region_delay

    def policy_config(self) -> PolicyConfig:
        return PolicyConfig(
            node=self.node,
            lease=self.lease,
            capacity=self.capacity,
            region=self.region,
            region_delay=self.region_delay,
            retry=min(0.5, self.lease / 10),
        )

    def engine_settings(self) -> EngineSettings:
        replicas = (
            self.replicas if self.replicas is not None else (3 if len(self.servers) >= 3 else 1)
        )
        return EngineSettings(
            servers=list(self.servers),
            name=self.node,
            lease=self.lease,
            replicas=replicas,
            history=self.history,
            connect_timeout=self.connect_timeout,
            ready_timeout=self.ready_timeout,
            ping_interval=self.ping_interval,
            # A renewal must fail (and be retried) well before the lease's margin runs out;
            # a request to a server that died is never answered, so at most 2 s.
            request_timeout=min(2.0, max(0.2, self.lease / 10)),
        )


@dataclass(slots=True)
class NodeStats:
    """Counters of one node, for metrics (all since it started)."""

    owned: int = 0
    claims: int = 0
    takeovers: int = 0
    handovers: int = 0
    lost: int = 0
    ended: int = 0
    webhooks_stored: int = 0
    webhooks_duplicate: int = 0
    renewals: int = 0
    renew_failures: int = 0
    renew_seconds_total: float = 0.0
    renew_seconds_last: float = 0.0
    published: int = 0
    publish_errors: int = 0
    publish_dropped: int = 0
    events: dict[str, int] = field(default_factory=dict)


SessionConfigFactory = Callable[[RtmsStarted], SessionConfig]


class OwnedStream:
    """A stream this node owns: iterate :meth:`events` (once) to record it.

    ``takeover`` is True when another node (or this one before a restart)
    owned the stream before: continue its recording.  ``revision`` is the
    fencing token (greater than any earlier owner's); :meth:`still_owner` says
    whether a write is allowed now.  ``stopped_why`` says why the iteration
    ended early (``LOST``, ``HANDOVER``) or that the stream ended (``ENDED``).
    An application that stops iterating (``break``, cancellation) stops the
    session; the lease is then released for another node, and this node waits
    a lease before it would claim the stream again.
    """

    def __init__(self, node: Node, start: Start) -> None:
        self._node = node
        self.stream_id = start.stream_id
        self.started = start.started
        self.takeover = start.takeover
        self.revision = start.revision
        self.stopped_why: StopWhy | None = None
        self._stop_reason: StopReason | int | None = None
        self._stream: Stream | None = None
        self._iterated = False
        self._done = False

    def __repr__(self) -> str:
        return (
            f"OwnedStream({self.stream_id!r}, revision={self.revision},"
            f" takeover={self.takeover}, stopped_why={self.stopped_why})"
        )

    def still_owner(self) -> bool:
        """Whether this node still holds the lease with margin (check before each write)."""
        return self._node._still_owner(self.stream_id)

    @property
    def stream(self) -> Stream | None:
        """The running session's stream (for its commands), while connected."""
        return self._stream

    async def events(self) -> AsyncIterator[ev.Event]:
        """The stream's events, as ``connect()`` gives them, while this node owns it."""
        if self._iterated:
            raise RuntimeError("OwnedStream.events() can be iterated once")
        self._iterated = True
        node = self._node
        over = False
        if self._done:
            return  # stopped before it was iterated: already reported
        try:
            connecting = self.started
            config = node._session_config(connecting)
            async with connect(config, options=node._options) as stream:
                self._stream = stream
                self._apply_pending(stream, connecting)
                async for event in stream:
                    if not self.still_owner():
                        log.info(
                            "stream %s: lease lost on node %s, stopping", self.stream_id, node.name
                        )
                        break
                    if isinstance(event, ev.SessionEnded):
                        over = event.why is not ev.EndReason.STOPPED_LOCALLY
                    node._count(event)
                    if node._fanout is not None:
                        node._fanout.offer(*encode_event(self.stream_id, event))
                    yield event
        except (TransportError, RemoteProtocolError) as exc:
            log.warning("stream %s: cannot connect on node %s: %s", self.stream_id, node.name, exc)
            over = self.stopped_why is None and self.still_owner()
        finally:
            self._stream = None
            self._done = True
            node._session_over(self.stream_id, over)

    def _apply_pending(self, stream: Stream, connected: RtmsStarted) -> None:
        """What arrived while connecting: a stop, or a failover to a newer URL."""
        if self.stopped_why is not None:
            self._stop_stream(stream)
        elif self.started is not connected:
            self._failover(Failover(self.stream_id, self.started))

    def _stop(self, action: Stop) -> None:
        self.stopped_why = action.why
        self._stop_reason = action.stop_reason
        stream = self._stream
        if stream is not None:
            self._stop_stream(stream)
        elif not self._iterated and not self._done:
            # Never connected: the session is over already; events() will end at once.
            self._done = True
            self._node._session_over(self.stream_id, False)

    def _stop_stream(self, stream: Stream) -> None:
        try:
            if self.stopped_why is StopWhy.ENDED:
                stream.notify_stopped(self._stop_reason)
            else:
                stream.stop()
        except Exception as exc:  # the session may already be over: nothing to stop
            log.debug("stream %s: stop: %s", self.stream_id, type(exc).__name__)

    def _failover(self, action: Failover) -> None:
        self.started = action.started
        stream = self._stream
        if stream is not None:
            try:
                stream.failover(action.started.server_url.url)
            except Exception as exc:
                log.warning("stream %s: failover refused: %s", self.stream_id, exc)


class Node:
    """One node of the fleet on the running asyncio loop (use :meth:`connect`)."""

    def __init__(
        self,
        config: NodeConfig,
        engine: Engine,
        options: TransportOptions | None,
        session_config: SessionConfigFactory | None,
    ) -> None:
        self.config = config
        self.name = config.node
        self._engine = engine
        # The session retries a first connection that fails (a takeover may race the
        # previous owner's sockets); with fail_fast, ``connect()`` would raise at once
        # and the stream would be given up for good.
        self._options = dataclasses.replace(options or TransportOptions(), fail_fast=False)
        self._factory = session_config
        self._policy = Policy(config.policy_config())
        self._aio = asyncio.get_running_loop()
        self._owned: dict[str, OwnedStream] = {}
        self._new: asyncio.Queue[OwnedStream | None] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._broken: str | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._webhook_seq = 0  # the last stored webhook read
        self._ending: dict[str, RtmsStarted] = {}  # sessions over, leases being released
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats = NodeStats()
        self._fanout = FanOut(engine.publish, config.publish_queue) if config.publish else None
        self._closed = False

    # --- life cycle ----------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        config: NodeConfig,
        *,
        options: TransportOptions | None = None,
        session_config: SessionConfigFactory | None = None,
    ) -> AsyncIterator[Node]:
        """Join the fleet; raise :class:`EngineUnavailable` when the engine cannot be used.

        ``session_config`` makes a stream's :class:`SessionConfig` from its
        ``rtms_started`` (default: credentials from the environment, the
        config's ``allowed_hosts``).  ``options`` are the driver's, with
        ``fail_fast`` off: a stream a node owns is given up only when its
        session gives up.  Leaving the block stops the sessions still
        running without releasing their leases (others take over when they
        expire); call :meth:`drain` first to hand the streams over.
        """
        holder: list[Node] = []

        def lost() -> None:
            if holder and not holder[0]._closed:
                holder[0]._engine_changed(up=False)

        def back() -> None:
            if holder:
                holder[0]._engine_changed(up=True)

        engine = await Engine.connect(config.engine_settings(), on_lost=lost, on_back=back)
        node = cls(config, engine, options, session_config)
        holder.append(node)
        try:
            await node._start()
            yield node
        finally:
            await node._close()

    async def _start(self) -> None:
        ready = asyncio.Event()
        watcher = self._watcher = self._spawn(self._watch_leases(ready), "the lease watcher")
        # Know the owners before reading the webhooks (bounded: the engine may fail now).
        waiting = asyncio.ensure_future(ready.wait())
        limit = self.config.connect_timeout + self.config.engine_settings().request_timeout
        await asyncio.wait({watcher, waiting}, timeout=limit, return_when="FIRST_COMPLETED")
        waiting.cancel()
        if not ready.is_set():
            raise EngineUnavailable("the engine did not list the leases: cannot join the fleet")
        self._reader = self._spawn(self._read_webhooks(), "the webhook reader")
        self._spawn(self._ticker(), "the timer")
        if self._fanout is not None:
            self._spawn(self._fanout.run(), "the publisher")
        log.info("node %s: joined the fleet (capacity %d)", self.name, self.config.capacity)

    async def _close(self) -> None:
        self._closed = True
        # Stop every session here (those still connecting once they are connected);
        # the leases are left to expire: another node takes the streams over then.
        for owned in list(self._owned.values()):
            owned._stop(Stop(owned.stream_id, StopWhy.HANDOVER))
        self._new.put_nowait(None)
        if self._fanout is not None:  # what was recorded is published too, if NATS takes it
            await self._fanout.wait_sent(FANOUT_CLOSE_WAIT)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._fanout is not None:
            self._fanout.close()
        await self._engine.close()

    # --- the public API ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """The engine is reachable and this node accepts streams (not draining)."""
        return (
            self._engine.connected
            and self._policy.ready
            and not self._closed
            and self._broken is None
        )

    @property
    def stats(self) -> NodeStats:
        """The node's counters, up to date (the same object each time)."""
        counts = self._policy.counts
        s = self._stats
        s.owned = len(self._policy.owned())
        s.claims = counts.claims
        s.takeovers = counts.takeovers
        s.handovers = counts.handovers
        s.lost = counts.lost
        s.ended = counts.ended
        fanout = self._fanout
        if fanout is not None:
            s.published, s.publish_errors = fanout.published, fanout.failed
            s.publish_dropped = fanout.dropped
        return s

    def owned(self) -> list[str]:
        """The ids of the streams this node records now."""
        return self._policy.owned()

    async def submit(self, event: RtmsStarted | RtmsStopped) -> bool:
        """Store a verified webhook for the fleet; False when it was a duplicate.

        Raise :class:`EngineUnavailable` when the engine did not take it (answer
        the webhook with an error so that Zoom retries).
        """
        if not isinstance(event, RtmsStarted | RtmsStopped):
            raise TypeError("submit() takes an RtmsStarted or an RtmsStopped")
        stored = await self._engine.submit(event)
        if stored:
            self._stats.webhooks_stored += 1
        else:
            self._stats.webhooks_duplicate += 1
        return stored

    async def streams(self) -> AsyncIterator[OwnedStream]:
        """Each stream this node comes to own, as it does; ends when the node closes."""
        while True:
            owned = await self._new.get()
            if owned is None:
                self._new.put_nowait(None)
                return
            yield owned

    async def drain(self, timeout: float | None = None) -> bool:
        """Hand every stream over (sockets closed, leases released) and take no new one.

        Returns True when no stream is held any more within ``timeout`` (seconds,
        None: no limit): each was released, or, when the engine could not be
        reached, left to expire for another node to take over.
        """
        self._apply(self._policy.drain(now=self._now()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._drained.wait()
        return self._policy.drained

    # --- policy plumbing -----------------------------------------------------------------

    def _now(self) -> float:
        return self._aio.time()

    def _still_owner(self, stream_id: str) -> bool:
        return self._policy.still_owner(stream_id, now=self._now())

    def _session_config(self, started: RtmsStarted) -> SessionConfig:
        if self._factory is not None:
            return self._factory(started)
        return default_session_config(started, allowed_hosts=self.config.allowed_hosts)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str = "") -> asyncio.Task[None]:
        task = self._aio.create_task(coro, name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A background task that fails leaves the node unready, and says why once."""
        self._tasks.discard(task)
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        if exc is not None and self._broken is None:
            self._broken = f"{type(exc).__name__}: {exc}"
            log.error(
                "node %s: %s failed (%s); the node is not ready",
                self.name,
                task.get_name(),
                self._broken,
            )

    def _apply(self, actions: list[Action]) -> None:
        if self._closed:
            return  # closing: leases are left to expire, nothing more is written
        for action in actions:
            match action:
                case Claim():
                    self._spawn(self._claim(action))
                case Renew():
                    self._spawn(self._renew(action))
                case Release():
                    self._spawn(self._release(action))
                case Start():
                    owned = OwnedStream(self, action)
                    self._owned[action.stream_id] = owned
                    verb = "takes over" if action.takeover else "owns"
                    log.info(
                        "stream %s: node %s %s it (revision %d)",
                        action.stream_id,
                        self.name,
                        verb,
                        action.revision,
                    )
                    self._new.put_nowait(owned)
                case Stop():
                    log.info(
                        "stream %s: node %s stops it (%s)",
                        action.stream_id,
                        self.name,
                        action.why.value,
                    )
                    target = self._owned.get(action.stream_id)
                    if target is not None:
                        target._stop(action)
                    else:
                        self._session_over(action.stream_id, False)
                case Failover():
                    target = self._owned.get(action.stream_id)
                    if target is not None:
                        target._failover(action)
        if self._policy.drained:
            self._drained.set()
        self._wake.set()

    def _session_over(self, stream_id: str, over: bool) -> None:
        owned = self._owned.pop(stream_id, None)
        actions = self._policy.session_ended(stream_id, over=over, now=self._now())
        ending = any(isinstance(a, Release) and a.stream_id == stream_id for a in actions)
        if owned is not None and ending:
            self._ending[stream_id] = owned.started
        self._apply(actions)

    def _engine_changed(self, *, up: bool) -> None:
        now = self._now()
        if up:
            log.info("node %s: engine back, accepting streams", self.name)
            self._restart_readers()
            self._apply(self._policy.engine_back(now=now))
        else:
            log.warning("node %s: engine lost, taking no new stream", self.name)
            self._apply(self._policy.engine_lost(now=now))

    async def _claim(self, action: Claim) -> None:
        try:
            revision = await self._engine.claim(action.stream_id, action.after)
        except LeaseLost:
            current = await self._current(action.stream_id)
            self._apply(self._policy.claim_failed(action.stream_id, current, now=self._now()))
            return
        except Exception as exc:
            log.info("stream %s: claim failed: %s", action.stream_id, type(exc).__name__)
            self._apply(self._policy.claim_failed(action.stream_id, None, now=self._now()))
            return
        try:
            owned_before = not await self._engine.first_claim(action.stream_id)
        except EngineUnavailable as exc:
            log.warning("stream %s: %s; counting on what this node saw", action.stream_id, exc)
            owned_before = False
        self._apply(
            self._policy.claimed(
                action.stream_id, revision, owned_before=owned_before, now=self._now()
            )
        )

    async def _current(self, stream_id: str) -> Lease | None:
        try:
            return await self._engine.current(stream_id)
        except Exception:
            return None

    async def _renew(self, action: Renew) -> None:
        sent = self._now()
        try:
            revision = await self._engine.write(action.stream_id, action.revision, LeaseState.OWNED)
        except LeaseLost:
            self._stats.renew_failures += 1
            self._apply(self._policy.renew_failed(action.stream_id, lost=True, now=self._now()))
            return
        except Exception as exc:
            self._stats.renew_failures += 1
            log.warning("stream %s: renewal failed: %s", action.stream_id, type(exc).__name__)
            self._apply(self._policy.renew_failed(action.stream_id, lost=False, now=self._now()))
            return
        now = self._now()
        self._stats.renewals += 1
        self._stats.renew_seconds_last = now - sent
        self._stats.renew_seconds_total += now - sent
        self._apply(self._policy.renewed(action.stream_id, revision, now=now))

    async def _release(self, action: Release) -> None:
        state = LeaseState.ENDED if action.ended else LeaseState.RELEASED
        lease: Lease | None
        try:
            revision = await self._engine.write(action.stream_id, action.revision, state)
            lease = Lease(self.name, state, revision)
            log.info("stream %s: node %s marks it %s", action.stream_id, self.name, state.value)
        except Exception as exc:
            log.info("stream %s: release failed: %s", action.stream_id, type(exc).__name__)
            lease = None
        started = self._ending.pop(action.stream_id, None)
        if action.ended and started is not None:
            await self._record_end(started)
        self._apply(self._policy.release_done(action.stream_id, lease, now=self._now()))

    async def _record_end(self, started: RtmsStarted) -> None:
        """Store an ``rtms_stopped`` for a stream that ended here (the same de-duplication
        id as Zoom's own), so that no node claims it again from the stored start, even
        one that joins after the ended entry expired.  Stamped now (Unix milliseconds,
        as Zoom's): a later ``rtms_started`` for the stream is still a new start."""
        stop = RtmsStopped(
            product=started.product,
            event=started.event.replace("rtms_started", "rtms_stopped"),
            event_ts=int(time.time() * 1000),
            instance_id=started.instance_id,
            id_key=started.id_key,
            rtms_stream_id=started.rtms_stream_id,
        )
        try:
            await self._engine.submit(stop)
        except EngineUnavailable as exc:
            log.info("stream %s: end not recorded: %s", started.rtms_stream_id, exc)

    def _restart_readers(self) -> None:
        """Subscribe anew after a reconnect: the server may have lost the consumers
        (restarted, or another server of the cluster); the webhooks go on after the
        last one read, the leases are listed again."""
        if self._closed or self._watcher is None or self._reader is None:
            return
        for task in (self._watcher, self._reader):
            task.cancel()
        self._watcher = self._spawn(self._watch_leases(asyncio.Event()), "the lease watcher")
        self._reader = self._spawn(self._read_webhooks(), "the webhook reader")

    def _again(self, what: str, exc: Exception) -> None:
        """A subscription failed (the engine is moving, e.g. to another server)."""
        log.warning("node %s: %s failed (%s), subscribing again", self.name, what, exc)

    async def _watch_leases(self, ready: asyncio.Event) -> None:
        while True:
            try:
                async for stream_id, lease in self._engine.watch_leases(on_initial=ready.set):
                    self._apply(self._policy.lease_seen(stream_id, lease, now=self._now()))
            except Exception as exc:
                self._again("the lease watch", exc)
            await asyncio.sleep(self._policy.config.retry)

    async def _read_webhooks(self) -> None:
        while True:
            try:
                webhooks = self._engine.webhooks(self.config.allowed_hosts, after=self._webhook_seq)
                async for sequence, event in webhooks:
                    self._webhook_seq = max(self._webhook_seq, sequence)
                    if event is not None:
                        self._apply(self._policy.webhook(event, now=self._now()))
            except Exception as exc:
                self._again("reading the webhooks", exc)
            await asyncio.sleep(self._policy.config.retry)

    async def _ticker(self) -> None:
        while not self._closed:
            self._wake.clear()
            deadline = self._policy.next_deadline()
            when = None if deadline is None else max(deadline, self._now())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(when):
                    await self._wake.wait()
            self._apply(self._policy.tick(now=self._now()))

    # --- fan-out and counters ------------------------------------------------------------

    def _count(self, event: ev.Event) -> None:
        name = type(event).__name__
        self._stats.events[name] = self._stats.events.get(name, 0) + 1
