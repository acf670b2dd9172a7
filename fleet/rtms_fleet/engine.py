"""The thin NATS JetStream adapter: the only module of the fleet that talks to the engine.

What it keeps in NATS (names fixed so that every node finds the same things):

``KV bucket rtms_leases``
    One key per stream (the stream id, base64url-encoded), value
    ``{"node": NAME, "state": "owned"|"released"|"ended"}``.  The bucket's TTL is
    the lease: an entry not rewritten for ``lease`` seconds expires, and the
    server leaves a marker that watchers see (nats-server >= 2.11; with 2.10
    the other nodes infer the expiry from when they saw the last write).  Claim =
    create-if-absent, or compare-and-set over a released entry; renew and
    release = compare-and-set over the owner's last revision.
``stream RTMS_WEBHOOKS``, subjects ``rtmsfleet.webhooks.<key>``
    Every accepted ``rtms_started``/``rtms_stopped``, published with a
    ``Nats-Msg-Id`` made of the stream id, the event and (for a start) its
    ``event_ts`` and URL: the server keeps one entry per stream and event
    within its two-minute duplicate window (or ``history``, if shorter)
    however many nodes received it.
    Every node reads all of it when it joins (the stored ``rtms_started`` is
    what a takeover reconnects with), and on from the last entry read after a
    reconnect; entries are kept ``history`` seconds.  A node whose session of
    a stream ended for good stores an ``rtms_stopped`` for it as well.  The
    entries hold what a node needs to join a stream (a precomputed handshake
    signature, when Zoom sent one): keep the NATS account to the fleet.
``stream RTMS_WEBHOOKS``, subjects ``rtmsfleet.owners.<key>``
    One message per stream, written by its first claim only (expected last
    subject sequence 0): a later claim that finds it is a takeover, even by a
    node that never saw the earlier owner.  Kept ``history`` seconds too.
``core subjects rtms.<stream id>.<kind>``
    The ``--publish`` fan-out (formats in :mod:`rtms_fleet.publish`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from rtms_proto import DEFAULT_ALLOWED_HOSTS, WebhookError
from rtms_proto.webhooks import RtmsStarted, RtmsStopped, WebhookEvent, parse_webhook

from .policy import Lease, LeaseState

__all__ = [
    "LEASE_BUCKET",
    "WEBHOOK_STREAM",
    "WEBHOOK_SUBJECTS",
    "Engine",
    "EngineSettings",
    "EngineUnavailable",
    "LeaseLost",
    "PUBLISH_BUFFER",
    "decode_key",
    "encode_key",
    "webhook_body",
    "webhook_msg_id",
]

LEASE_BUCKET = "rtms_leases"
WEBHOOK_STREAM = "RTMS_WEBHOOKS"
WEBHOOK_SUBJECTS = "rtmsfleet.webhooks"
OWNER_SUBJECTS = "rtmsfleet.owners"
_WRONG_LAST_SEQUENCE = 10071  # JetStream's err_code for a failed expected-sequence check
DUPLICATE_WINDOW = 120.0
PUBLISH_BUFFER = 2 * 1024 * 1024
"""Bytes of published messages kept in memory for the NATS connection.  Connected,
a publish that would keep more waits until the socket takes them (a server that
stops reading stalls the publisher, not memory); disconnected, they are kept for
the reconnect and a publish beyond them fails at once."""

log = logging.getLogger("rtms_fleet")


class EngineUnavailable(Exception):
    """The engine cannot be reached or used (message names servers by host:port only)."""


class LeaseLost(Exception):
    """A compare-and-set on a lease found another revision (or no entry): not ours."""


def encode_key(stream_id: str) -> str:
    """A KV key / subject token for ``stream_id`` (base64url, no padding)."""
    return base64.urlsafe_b64encode(stream_id.encode()).decode().rstrip("=")


def decode_key(key: str) -> str | None:
    """The stream id of a key made by :func:`encode_key`, or None for a foreign key."""
    padded = key + "=" * (-len(key) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def webhook_body(event: RtmsStarted | RtmsStopped) -> bytes:
    """A webhook body equivalent to ``event`` (what :func:`parse_webhook` gives it back from)."""
    payload: dict[str, object] = {
        event.id_key: event.instance_id,
        "rtms_stream_id": event.rtms_stream_id,
    }
    if isinstance(event, RtmsStarted):
        payload["server_urls"] = event.server_url.url
        if event.operator_id is not None:
            payload["operator_id"] = event.operator_id
        if event.signature is not None:
            payload["signature"] = event.signature
    elif event.stop_reason is not None:
        payload["stop_reason"] = int(event.stop_reason)
    body = {"event": event.event, "event_ts": event.event_ts, "payload": payload}
    return json.dumps(body, separators=(",", ":")).encode()


def webhook_msg_id(event: RtmsStarted | RtmsStopped) -> str:
    """The de-duplication id: equal for re-deliveries of one event, different for a failover."""
    if isinstance(event, RtmsStarted):
        parts = [event.rtms_stream_id, "started", str(event.event_ts), event.server_url.url]
    else:
        parts = [event.rtms_stream_id, "stopped"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _redacted(server: str) -> str:
    """``host:port`` of a server URL: never its user or password."""
    try:
        parts = urlsplit(server if "://" in server else f"nats://{server}")
        return f"{parts.hostname}:{parts.port or 4222}"
    except ValueError:
        return "<unparsable server URL>"


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """How to reach and lay out the engine; durations in seconds."""

    servers: Sequence[str]
    name: str
    lease: float
    replicas: int = 1
    history: float = 86400.0
    connect_timeout: float = 5.0
    request_timeout: float = 2.0
    ready_timeout: float = 20.0
    """How long a node waits, at start, for JetStream to be ready: a cluster that has
    just started elects its leader first, and creating a replicated bucket takes longer
    than a renewal may wait."""
    ping_interval: int = 10
    """Seconds between two pings of the NATS server; two unanswered and the connection
    is dropped (the engine is lost, then reconnected).  A network partition drops no
    connection by itself: without pings, nats-py's 120 s default left a node saying it
    was ready for minutes while nothing reached the engine."""


READY_RETRY = 0.5
"""Seconds between two tries of a JetStream that is not ready yet."""


class _NotReady(Exception):
    """JetStream answers, but a stream it holds for the fleet is not usable yet."""


def _not_ready(exc: Exception) -> bool:
    """JetStream answered that it is not ready, or did not answer in time (a cluster
    electing its leader); not "no responders", which is a server without JetStream."""
    if isinstance(exc, (TimeoutError, _NotReady)):
        return True
    return isinstance(exc, nats.js.errors.ServiceUnavailableError) and exc.err_code is not None


def _parse_lease(value: bytes | None, revision: int | None, operation: str | None) -> Lease | None:
    if operation in ("DEL", "PURGE") or value is None or revision is None:
        return None
    try:
        data = json.loads(value)
        return Lease(str(data["node"]), LeaseState(data["state"]), revision)
    except (ValueError, KeyError, TypeError):
        return None


class Engine:
    """One connection to NATS and the fleet's bucket, stream and subjects on it."""

    def __init__(self, nc: Client, js: JetStreamContext, kv: KeyValue, settings: EngineSettings):
        self._nc = nc
        self._js = js
        self._kv = kv
        self.settings = settings

    @classmethod
    async def connect(
        cls,
        settings: EngineSettings,
        *,
        on_lost: Callable[[], None] = lambda: None,
        on_back: Callable[[], None] = lambda: None,
    ) -> Engine:
        """Connect, make sure the bucket and the stream exist; raise :class:`EngineUnavailable`."""
        where = ", ".join(_redacted(s) for s in settings.servers)

        async def disconnected() -> None:
            if not nc.is_closed:
                log.warning("engine: disconnected from NATS (%s)", where)
                on_lost()

        async def reconnected() -> None:
            log.info("engine: reconnected to NATS")
            on_back()

        async def error(exc: Exception) -> None:
            log.info("engine: %s", type(exc).__name__)

        nc = Client()
        # Reconnects go on forever once connected; the first connection is bounded
        # (nats-py would otherwise keep trying the servers).
        first_try = settings.connect_timeout * len(settings.servers) + 1.0
        try:
            async with asyncio.timeout(first_try):
                await nc.connect(
                    servers=list(settings.servers),
                    name=settings.name,
                    connect_timeout=max(1, round(settings.connect_timeout)),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    ping_interval=settings.ping_interval,
                    max_outstanding_pings=2,
                    pending_size=PUBLISH_BUFFER,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            raise EngineUnavailable(
                f"cannot reach the NATS engine at {where} ({type(exc).__name__})"
            ) from None
        js = nc.jetstream(timeout=settings.request_timeout)
        setup = nc.jetstream(timeout=max(settings.request_timeout, settings.connect_timeout))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.ready_timeout
        said = False
        while True:
            try:
                await cls._bucket(setup, settings)
                await cls._stream(setup, settings)
                await cls._led(setup)
                kv = await js.key_value(LEASE_BUCKET)  # its requests wait as renewals may
                return cls(nc, js, kv, settings)
            except EngineUnavailable:
                await nc.close()
                raise
            except Exception as exc:
                if _not_ready(exc) and loop.time() < deadline:
                    if not said:
                        said = True
                        log.info("engine: JetStream is not ready yet (%s); waiting", exc)
                    await asyncio.sleep(READY_RETRY)
                    continue
                await nc.close()
                raise EngineUnavailable(
                    f"the NATS engine at {where} has no usable JetStream (start nats-server"
                    f" with -js): {type(exc).__name__}: {exc}"
                ) from None

    @staticmethod
    async def _bucket(js: JetStreamContext, settings: EngineSettings) -> KeyValue:
        try:
            kv = await js.key_value(LEASE_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            config = api.KeyValueConfig(
                bucket=LEASE_BUCKET, history=1, ttl=settings.lease, replicas=settings.replicas
            )
            try:
                return await js.create_key_value(config, limit_marker_ttl=settings.lease)
            except nats.js.errors.KeyValueLimitMarkerTTLNotSupportedError:
                # nats-server 2.10 leaves no marker: expiry is then inferred from time only.
                log.info("engine: the server leaves no expiry markers (nats-server < 2.11)")
                return await js.create_key_value(config)
        status = await kv.status()
        if status.ttl is not None and abs(status.ttl - settings.lease) > 1e-3:
            raise EngineUnavailable(
                f"the engine's leases last {status.ttl:g} s but this node's --lease is"
                f" {settings.lease:g} s: every node must use the same --lease"
            )
        return kv

    @staticmethod
    async def _led(js: JetStreamContext) -> None:
        """Both streams have a leader: a replicated stream just made elects one first, and
        until then nothing can be stored in it (``_NotReady``)."""
        for name in (f"KV_{LEASE_BUCKET}", WEBHOOK_STREAM):
            cluster = (await js.stream_info(name)).cluster
            if cluster is not None and not cluster.leader:
                raise _NotReady(f"the stream {name} has no leader yet")

    @staticmethod
    async def _stream(js: JetStreamContext, settings: EngineSettings) -> None:
        config = api.StreamConfig(
            name=WEBHOOK_STREAM,
            subjects=[f"{WEBHOOK_SUBJECTS}.*", f"{OWNER_SUBJECTS}.*"],
            max_age=settings.history,
            duplicate_window=min(DUPLICATE_WINDOW, settings.history),
            num_replicas=settings.replicas,
            storage=api.StorageType.FILE,
        )
        try:
            await js.stream_info(WEBHOOK_STREAM)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    async def close(self) -> None:
        """Close the connection; an engine already gone is no error here."""
        try:
            await self._nc.close()
        except (OSError, nats.errors.Error) as exc:
            log.info("engine: closed while unreachable (%s)", type(exc).__name__)

    # --- webhooks ------------------------------------------------------------------------

    async def submit(self, event: RtmsStarted | RtmsStopped) -> bool:
        """Store ``event`` once for the fleet; False when it was a duplicate."""
        subject = f"{WEBHOOK_SUBJECTS}.{encode_key(event.rtms_stream_id)}"
        try:
            ack = await self._js.publish(
                subject, webhook_body(event), headers={"Nats-Msg-Id": webhook_msg_id(event)}
            )
        except Exception as exc:
            raise EngineUnavailable(f"the engine did not store the webhook ({exc!s})") from None
        return not ack.duplicate

    async def webhooks(
        self, allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS, *, after: int = 0
    ) -> AsyncIterator[tuple[int, WebhookEvent | None]]:
        """Every stored webhook after stream sequence ``after`` (0: all of them), oldest
        first, then each new one as it is stored: (sequence, event, or None when the
        entry is unusable here)."""
        config = (
            api.ConsumerConfig(
                deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1
            )
            if after > 0
            else api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL)
        )
        sub = await self._js.subscribe(
            f"{WEBHOOK_SUBJECTS}.*", stream=WEBHOOK_STREAM, ordered_consumer=True, config=config
        )
        try:
            async for msg in sub.messages:
                sequence = msg.metadata.sequence.stream
                try:
                    yield sequence, parse_webhook(msg.data, allowed_hosts=allowed_hosts)
                except WebhookError as exc:
                    log.warning("engine: a stored webhook is unusable here: %s", exc)
                    yield sequence, None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # --- leases --------------------------------------------------------------------------

    def _value(self, state: LeaseState) -> bytes:
        return json.dumps({"node": self.settings.name, "state": state.value}).encode()

    async def claim(self, stream_id: str, after: int | None) -> int:
        """Write an owned entry: create it, or compare-and-set over ``after``.

        Raise :class:`LeaseLost` when someone else's entry is there.
        """
        key = encode_key(stream_id)
        value = self._value(LeaseState.OWNED)
        try:
            if after is not None:
                return await self._kv.update(key, value, last=after)
            try:
                return await self._kv.create(key, value)
            except nats.js.errors.KeyWrongLastSequenceError:
                # nats-py's create() knows delete markers, not the server's expiry
                # markers (no lease in them): such a key is free, take it over the marker.
                entry = await self._kv.get(key)
                if entry.revision is None or _parse_lease(entry.value, 1, None) is not None:
                    raise
                return await self._kv.update(key, value, last=entry.revision)
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            raise LeaseLost(stream_id) from None

    async def write(self, stream_id: str, revision: int, state: LeaseState) -> int:
        """Compare-and-set the entry over ``revision``; :class:`LeaseLost` when it moved."""
        try:
            return await self._kv.update(encode_key(stream_id), self._value(state), last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise LeaseLost(stream_id) from None

    async def first_claim(self, stream_id: str) -> bool:
        """Record that ``stream_id`` has been owned; False when it had been before.

        Raise :class:`EngineUnavailable` when the engine cannot say.
        """
        subject = f"{OWNER_SUBJECTS}.{encode_key(stream_id)}"
        try:
            await self._js.publish(
                subject,
                self.settings.name.encode(),
                headers={"Nats-Expected-Last-Subject-Sequence": "0"},
            )
        except nats.js.errors.APIError as exc:
            if exc.err_code == _WRONG_LAST_SEQUENCE:
                return False
            raise EngineUnavailable(f"the engine did not record the owner ({exc!s})") from None
        except Exception as exc:
            raise EngineUnavailable(f"the engine did not record the owner ({exc!s})") from None
        return True

    async def current(self, stream_id: str) -> Lease | None:
        """The entry as it is now, None when there is none (absent, expired, deleted)."""
        try:
            entry = await self._kv.get(encode_key(stream_id))
        except nats.js.errors.KeyNotFoundError:
            return None
        return _parse_lease(entry.value, entry.revision, entry.operation)

    async def watch_leases(
        self, on_initial: Callable[[], None] = lambda: None
    ) -> AsyncIterator[tuple[str, Lease | None]]:
        """Every entry of the bucket, then every change: (stream id, entry or None);
        ``on_initial`` is called once the entries present at the start were given."""
        watcher = await self._kv.watchall()
        try:
            async for entry in watcher:
                if entry is None:
                    on_initial()
                    continue
                stream_id = decode_key(entry.key)
                if stream_id is not None:
                    yield stream_id, _parse_lease(entry.value, entry.revision, entry.operation)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]

    # --- fan-out -------------------------------------------------------------------------

    async def publish(self, subject: str, data: bytes) -> None:
        """Publish on a core subject (at most once; nothing waits for subscribers).

        Bounded by :data:`PUBLISH_BUFFER`: waits while the server does not read;
        raises (``nats.errors.OutboundBufferLimitError``) while disconnected with
        the buffer full.  Cancelling the caller while it waits cancels it: nats-py
        swallows that cancellation, so it is raised again here."""
        task = asyncio.current_task()
        cancels = task.cancelling() if task is not None else 0
        await self._nc.publish(subject, data)
        if task is not None and task.cancelling() > cancels:
            raise asyncio.CancelledError

    async def flush(self) -> None:
        await self._nc.flush()
