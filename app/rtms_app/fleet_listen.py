"""``rtms-proto listen --engine nats://...``: one node of a fleet.

Every node is the same: it receives Zoom's webhooks (signature verified,
answered at once), stores ``rtms_started`` and ``rtms_stopped`` in the engine
(:class:`rtms_fleet.Node` de-duplicates them across nodes), and records the
streams the fleet gives it, up to ``--capacity``, each into
``--out/<stream id>/``: a folder shared by the nodes.

* A stream this node takes over from another one (``OwnedStream.takeover``)
  continues the same recording (:mod:`.sinks.resume`): the files go on where
  the earlier owner left them, what Zoom replays is skipped by timestamp.
* Every write is fenced by the lease (``OwnedStream.still_owner``): a node
  that lost a stream (paused past its lease, cut off from the engine) writes
  nothing more, not even a WAV header, and lets go of the files.
* SIGTERM drains: every owned stream is handed over (sockets closed without
  ending the stream in Zoom, files closed, lease released, so another node
  continues at once) and the command exits 0.  A second SIGTERM, or SIGINT,
  stops at once: the sockets close, the files are closed, and the leases are
  left to expire (another node takes over after ``--lease`` seconds).
* An engine that cannot be reached at start: one line on stderr, exit 1.
  A webhook the engine does not take (it is unreachable for a while) was
  answered already: it is offered again every ``submit_retry`` seconds for
  ``submit_for`` seconds (the engine drops the repeats), then given up with
  one line on stderr (an engine that was slow rather than away may still
  have stored it); at most ``max_pending_submits`` wait at once, one more
  is given up at once (:class:`FleetSettings`; defaults :data:`SUBMIT_RETRY`,
  :data:`SUBMIT_FOR`, :data:`MAX_PENDING_SUBMITS`).

``/healthz``, ``/readyz`` and ``/metrics`` are on the webhook port (see
:mod:`.observability`).  What each stream becomes is one line on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from rtms_fleet import EngineUnavailable, Node, NodeConfig, OwnedStream, StopWhy
from rtms_proto import InvalidConfig, SessionConfig
from rtms_proto import events as ev
from rtms_proto.webhooks import Disposition, RtmsStarted, RtmsStopped
from rtms_transports import TransportOptions

from ._signals import on_signals
from .observability import Observability, QueueView
from .sinks import Recorder, RecorderOptions
from .sinks._files import safe_name
from .sinks.resume import NotOwner
from .terminal import printable
from .webhook_server import StreamAction, WebhookReceiver, WebhookServer

__all__ = ["FleetSettings", "run_fleet"]

LOG = logging.getLogger("rtms_app.fleet")
PROG = "rtms-proto listen"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

SUBMIT_RETRY = 1.0
"""Seconds between two offers of a webhook the engine did not take."""
SUBMIT_FOR = 60.0
"""Seconds a webhook is offered again (Zoom keeps a stream about a minute for a client)."""
MAX_PENDING_SUBMITS = 1024
"""Webhooks waiting for the engine at once; beyond it, a new one is given up at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetSettings:
    """What ``listen --engine`` was given (checked by the command's argument parser)."""

    servers: tuple[str, ...]
    node: str
    capacity: int
    lease: float
    region: str | None
    publish: bool
    host: str
    port: int
    out: Path
    secret: str
    allowed_hosts: tuple[str, ...]
    gap_fill: bool
    quiet: bool
    options: TransportOptions
    session_config: Callable[[RtmsStarted], SessionConfig]
    submit_retry: float = SUBMIT_RETRY
    submit_for: float = SUBMIT_FOR
    max_pending_submits: int = MAX_PENDING_SUBMITS


def default_node_name() -> str:
    """``<host name>-<process id>``: unique on a machine and across machines."""
    return f"{safe_name(socket.gethostname(), 40)}-{os.getpid()}"


def parse_servers(text: str) -> tuple[str, ...]:
    """``nats://a:4222,nats://b:4222`` as a tuple; ValueError naming what is wrong."""
    servers = tuple(part.strip() for part in text.split(",") if part.strip())
    if not servers:
        raise ValueError("--engine needs at least one nats://HOST:PORT")
    for server in servers:
        scheme = server.split("://", 1)[0] if "://" in server else ""
        if scheme not in ("nats", "tls"):
            raise ValueError("--engine takes nats://HOST:PORT (or tls://HOST:PORT) URLs")
    return servers


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {printable(message, 1000)}\n")
    sys.stderr.flush()


class _Fleet:
    """The node's streams, driven by :meth:`Node.streams`."""

    def __init__(self, settings: FleetSettings, node: Node, obs: Observability) -> None:
        self.settings = settings
        self.node = node
        self.obs = obs
        self.tasks: set[asyncio.Task[None]] = set()
        self.owned: dict[str, OwnedStream] = {}
        self.failed = 0
        self._write_failed: set[str] = set()
        self._submits: set[asyncio.Task[None]] = set()

    def say(self, text: str) -> None:
        if not self.settings.quiet:
            sys.stdout.write(printable(text, 1000) + "\n")
            sys.stdout.flush()

    # --- webhooks

    def on_action(self, action: StreamAction) -> None:
        """A verified webhook (answered already): into the engine, for the whole fleet."""
        event = action.started if action.started is not None else action.stopped
        if event is None:
            if action.disposition is Disposition.INTERRUPTED:
                self.say(f"stream {action.rtms_stream_id}: Zoom reports the stream interrupted")
            return
        limit = self.settings.max_pending_submits
        if len(self._submits) >= limit:
            _error(
                f"stream {event.rtms_stream_id}: webhook not stored: "
                f"{limit} webhooks already wait for the engine"
            )
            return
        task = asyncio.get_running_loop().create_task(self._submit(event))
        self._submits.add(task)
        task.add_done_callback(self._submits.discard)

    async def _submit(self, event: RtmsStarted | RtmsStopped) -> None:
        loop = asyncio.get_running_loop()
        retry, lasting = self.settings.submit_retry, self.settings.submit_for
        give_up = loop.time() + lasting
        while True:
            try:
                await self.node.submit(event)
                return
            except EngineUnavailable as exc:
                if loop.time() + retry > give_up:
                    _error(
                        f"stream {event.rtms_stream_id}: the engine did not confirm the "
                        f"webhook in {lasting:g} s (not offered again): {exc}"
                    )
                    return
                LOG.warning(
                    "stream %s: the engine did not take the webhook; again in %g s",
                    event.rtms_stream_id,
                    retry,
                )
            await asyncio.sleep(retry)

    # --- streams

    async def run(self) -> None:
        async for owned in self.node.streams():
            self.owned[owned.stream_id] = owned
            task = asyncio.get_running_loop().create_task(self._record(owned))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _folder(self, owned: OwnedStream) -> Path:
        root = self.settings.out
        base = safe_name(owned.stream_id, 80)
        folder = root / base
        if owned.takeover:
            return folder  # the earlier owner's recording: continued
        n = 2
        while folder.exists() and any(folder.iterdir()):
            folder = root / f"{base}-{n}"
            n += 1
        return folder

    async def _record(self, owned: OwnedStream) -> None:
        sid = owned.stream_id
        key = ("stream", sid, owned.revision)
        try:
            folder = self._folder(owned)
            recorder = Recorder(
                folder,
                RecorderOptions(
                    gap_fill=self.settings.gap_fill,
                    expect=self.settings.session_config(owned.started).media,
                    resumable=True,
                ),
                resume=owned.takeover,
                guard=owned.still_owner,
            )
            recorder.claimed(self.settings.node, owned.revision)
        except Exception as exc:  # the lease is ours: say why nothing is recorded
            self.failed += 1
            _error(f"stream {sid}: not recorded: {_why(exc)}")
            # Leaving the iteration at once ends this node's part: the lease is released.
            async with _closing(owned.events()) as events:
                async for _ in events:
                    break
            return
        verb = "taking over" if owned.takeover else "recording"
        self.say(f"stream {sid}: {verb} into {folder}/ (node {self.settings.node})")
        last: list[QueueView | None] = [None]  # the stream's counters outlive its socket
        self.obs.add_stream(key, recorder.stats, lambda: owned.stream or last[0])
        lost, ended = False, None
        try:
            lost, ended = await self._consume(owned, recorder, last)
        finally:
            self.obs.remove_stream(key)
            self.owned.pop(sid, None)
            lost = lost or owned.stopped_why is StopWhy.LOST
            if lost:
                recorder.abandon()
            else:
                recorder.close()
        if recorder.skipped:
            LOG.info(
                "stream %s: %d replayed messages were on disk already, not written again",
                sid,
                recorder.skipped,
            )
        why = owned.stopped_why.value if owned.stopped_why is not None else None
        if lost:
            self.say(f"stream {sid}: lost to another node; nothing more written here")
        elif why == "handover":
            self.say(f"stream {sid}: handed over ({folder}/ continues on another node)")
        elif ended is not None:
            self.say(f"stream {sid}: ended ({ended.why.value}), files in {folder}/")
        else:
            self.say(f"stream {sid}: not connected; another node may take it")

    async def _consume(
        self, owned: OwnedStream, recorder: Recorder, last: list[QueueView | None]
    ) -> tuple[bool, ev.SessionEnded | None]:
        """Record the stream's events; (lost to another node, the session's end)."""
        start = time.monotonic()
        ended: ev.SessionEnded | None = None
        async with _closing(owned.events()) as events:
            async for event in events:
                last[0] = owned.stream or last[0]
                try:
                    recorder.handle(event, time.monotonic() - start)
                except NotOwner:
                    return True, ended
                except OSError:
                    self._failing(owned, recorder)
                    continue
                if isinstance(event, ev.SessionEnded):
                    ended = event
        return False, ended

    def _failing(self, owned: OwnedStream, recorder: Recorder) -> None:
        """A file cannot be written: said once, the session stopped (the files stay whole)."""
        if owned.stream_id not in self._write_failed:
            self._write_failed.add(owned.stream_id)
            self.failed += 1
            _error(f"stream {owned.stream_id}: stopped on an error: {_why(recorder.failure)}")
        stream = owned.stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.stop()

    def stop_now(self) -> None:
        """Close every session at once (leases left to expire)."""
        for owned in list(self.owned.values()):
            stream = owned.stream
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.stop()


@contextlib.asynccontextmanager
async def _closing(events: AsyncIterator[ev.Event]) -> AsyncIterator[AsyncIterator[ev.Event]]:
    """``events``, closed on the way out (its ``finally`` runs now, not at garbage collection)."""
    try:
        yield events
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


def _why(exc: BaseException | None) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot write {exc.filename}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


async def run_fleet(settings: FleetSettings) -> int:
    """Run one node until SIGTERM (drain) or SIGINT; the exit status (2: a setting the
    node refuses, said in one line)."""
    try:
        config = NodeConfig(
            servers=list(settings.servers),
            node=settings.node,
            capacity=settings.capacity,
            lease=settings.lease,
            region=settings.region,
            publish=settings.publish,
            allowed_hosts=settings.allowed_hosts,
        )
    except InvalidConfig as exc:
        _error(str(exc))
        return EXIT_USAGE
    try:
        async with Node.connect(
            config, options=settings.options, session_config=settings.session_config
        ) as node:
            return await _serve(settings, node)
    except EngineUnavailable as exc:
        _error(f"cannot use the engine: {exc}")
        return EXIT_FAILED


async def _serve(settings: FleetSettings, node: Node) -> int:
    loop = asyncio.get_running_loop()
    obs = Observability(node=node)
    fleet = _Fleet(settings, node, obs)
    receiver = WebhookReceiver(settings.secret, allowed_hosts=settings.allowed_hosts)
    server = WebhookServer(
        receiver,
        fleet.on_action,
        clock=time.time,
        on_get=obs.on_get,
        on_status=obs.webhook_status,
    )
    try:
        await server.start(settings.host, settings.port)
    except OSError as exc:
        _error(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
        return EXIT_FAILED
    runner = loop.create_task(fleet.run())
    signals: asyncio.Queue[int] = asyncio.Queue()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    try:
        with on_signals(loop, signals.put_nowait):
            sys.stdout.write(
                f"listening for Zoom webhooks on http://{host}:{server.port}/ as node "
                f"{printable(settings.node)} of the fleet (SIGTERM: hand over and stop)\n"
            )
            sys.stdout.flush()
            await _until_stopped(settings, node, fleet, obs, signals)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await server.close()
    return EXIT_OK


async def _until_stopped(
    settings: FleetSettings,
    node: Node,
    fleet: _Fleet,
    obs: Observability,
    signals: asyncio.Queue[int],
) -> None:
    """SIGTERM: drain (a second signal cuts it short); SIGINT: stop at once."""
    loop = asyncio.get_running_loop()
    first = await signals.get()
    if first == signal.SIGTERM:
        obs.stopping = "draining"
        LOG.info("node %s: draining", settings.node)
        drain = loop.create_task(node.drain())
        second = loop.create_task(signals.get())
        await asyncio.wait({drain, second}, return_when=asyncio.FIRST_COMPLETED)
        drain.cancel()
        second.cancel()
    obs.stopping = "stopping"
    fleet.stop_now()
    if fleet.tasks:
        await asyncio.wait(set(fleet.tasks), timeout=settings.options.close_timeout + 5)
