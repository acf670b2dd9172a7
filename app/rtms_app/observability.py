"""Health and metrics of a ``listen`` node: ``GET /healthz``, ``/readyz`` and ``/metrics``.

Served on the webhook port (:class:`~.webhook_server.WebhookServer` ``on_get``),
with or without ``--engine``, so that a load balancer and Prometheus need no
other port:

``/healthz``
    200 while the process runs and serves HTTP.
``/readyz``
    200 when the node takes new streams: the engine is reachable (with
    ``--engine``) and the node is not stopping or draining; 503 otherwise,
    with the reason in the JSON body.
``/metrics``
    the Prometheus text format, through ``prometheus_client`` (installed with
    ``rtms-proto[fleet]``; without it, 503 says so).  The metrics, all named
    ``rtms_...``:

    - ``rtms_streams_owned``: streams recorded by this node now;
    - ``rtms_stream_claims_total``, ``rtms_stream_takeovers_total``,
      ``rtms_stream_handovers_total``, ``rtms_stream_leases_lost_total``: lease
      changes (with ``--engine``);
    - ``rtms_reconnects_total{scope}``: reconnects begun (``media``, ``signaling``);
    - ``rtms_messages_total{media}``, ``rtms_media_bytes_total{media}``:
      what the streams received, per media type;
    - ``rtms_dropped_frames_total``: media frames dropped because the
      recording fell behind; ``rtms_queue_depth``: events waiting now;
    - ``rtms_webhook_requests_total{status}``: answers and refusals by HTTP
      status; ``rtms_webhooks_stored_total`` and
      ``rtms_webhooks_duplicate_total`` (with ``--engine``);
    - ``rtms_lease_renewal_seconds`` (a summary: ``_count`` and ``_sum``),
      ``rtms_lease_renewal_last_seconds`` and
      ``rtms_lease_renewal_failures_total`` (with ``--engine``);
    - ``rtms_published_total``, ``rtms_publish_failures_total``,
      ``rtms_publish_dropped_total``: events fanned out with ``--publish``,
      those the engine refused (disconnected with its buffer full, or too
      large) and those dropped because NATS fell behind (nothing is sent
      later: publishing is at most once);
    - ``rtms_ready``: 1 when ``/readyz`` would answer 200.

Counts of streams that ended are kept (folded into totals), so counters never
go down.  Nothing here holds or shows a secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .sinks import MEDIA_KINDS, Stats
from .webhook_server import HttpReply

__all__ = ["METRICS_CONTENT_TYPE", "NodeView", "Observability", "QueueView"]

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class QueueView(Protocol):
    """What a running stream tells about its queue (``rtms_transports`` ``Stream``)."""

    @property
    def dropped(self) -> int: ...

    @property
    def queued(self) -> int: ...


class NodeView(Protocol):
    """What a fleet node tells (``rtms_fleet.Node``)."""

    @property
    def ready(self) -> bool: ...

    @property
    def stats(self) -> Any: ...


@dataclass(slots=True)
class _Live:
    stats: Stats
    queue: Callable[[], QueueView | None]


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


_NO_CLIENT = _json({"error": "metrics need prometheus_client: pip install 'rtms-proto[fleet]'"})


class Observability:
    """The counters of one node and the three HTTP answers (see the module docstring).

    ``node`` is the fleet node, when there is one.  Streams are registered
    with :meth:`add_stream` while they run (their recorder's stats and a
    view of their queue) and :meth:`remove_stream` when they end.
    """

    def __init__(self, *, node: NodeView | None = None) -> None:
        self.node = node
        self.stopping: str | None = None
        """Why the node takes no new streams any more (stopping, draining), if so."""
        self._live: dict[object, _Live] = {}
        self._messages = dict.fromkeys(MEDIA_KINDS, 0)
        self._bytes = dict.fromkeys(MEDIA_KINDS, 0)
        self._reconnects: dict[str, int] = {}
        self._dropped = 0
        self._statuses: dict[int, int] = {}

    # --- input

    def webhook_status(self, status: int) -> None:
        """One HTTP answer or refusal (``WebhookServer(on_status=...)``)."""
        self._statuses[status] = self._statuses.get(status, 0) + 1

    def add_stream(
        self, key: object, stats: Stats, queue: Callable[[], QueueView | None] = lambda: None
    ) -> None:
        self._live[key] = _Live(stats, queue)

    def remove_stream(self, key: object) -> None:
        """The stream ended here: its counts go into the totals."""
        live = self._live.pop(key, None)
        if live is None:
            return
        for kind, count in live.stats.counts.items():
            self._messages[kind] = self._messages.get(kind, 0) + count.messages
            self._bytes[kind] = self._bytes.get(kind, 0) + count.bytes
        for scope, n in live.stats.reconnect_scopes.items():
            self._reconnects[scope] = self._reconnects.get(scope, 0) + n
        queue = live.queue()
        if queue is not None:
            self._dropped += queue.dropped

    # --- readiness

    def ready(self) -> tuple[bool, str]:
        """Whether the node takes new streams, and why not."""
        if self.stopping is not None:
            return False, self.stopping
        if self.node is not None and not self.node.ready:
            return False, "the engine is unreachable"
        return True, "ready"

    # --- HTTP

    def on_get(self, target: str) -> HttpReply | None:
        """The answer to ``GET target``, or None when the path is not one of ours."""
        path = target.split("?", 1)[0]
        if path == "/healthz":
            return HttpReply(200, _json({"status": "ok"}))
        if path == "/readyz":
            ok, why = self.ready()
            return HttpReply(200 if ok else 503, _json({"status": "ready" if ok else why}))
        if path == "/metrics":
            try:
                body = self.render()
            except ImportError:
                return HttpReply(503, _NO_CLIENT)
            return HttpReply(200, body, METRICS_CONTENT_TYPE)
        return None

    def render(self) -> bytes:
        """The metrics in the Prometheus text format; ImportError without prometheus_client."""
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        return generate_latest(registry)

    # --- what a scrape reads

    def snapshot(self) -> dict[str, Any]:
        """Every value at this instant (the metrics, as plain numbers)."""
        messages, size = dict(self._messages), dict(self._bytes)
        reconnects = dict(self._reconnects)
        dropped, queued = self._dropped, 0
        for live in self._live.values():
            for kind, count in live.stats.counts.items():
                messages[kind] = messages.get(kind, 0) + count.messages
                size[kind] = size.get(kind, 0) + count.bytes
            for scope, n in live.stats.reconnect_scopes.items():
                reconnects[scope] = reconnects.get(scope, 0) + n
            queue = live.queue()
            if queue is not None:
                dropped += queue.dropped
                queued += queue.queued
        return {
            "owned": len(self._live),
            "messages": messages,
            "bytes": size,
            "reconnects": reconnects,
            "dropped": dropped,
            "queued": queued,
            "statuses": dict(self._statuses),
            "ready": self.ready()[0],
        }


class _Collector:
    """Builds the metric families at each scrape (prometheus_client's collector protocol)."""

    def __init__(self, source: Observability) -> None:
        self._source = source

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            SummaryMetricFamily,
        )

        snap = self._source.snapshot()
        yield GaugeMetricFamily(
            "rtms_streams_owned", "Streams recorded by this node now", value=snap["owned"]
        )
        yield GaugeMetricFamily(
            "rtms_ready", "1 when the node takes new streams", value=int(snap["ready"])
        )
        messages = CounterMetricFamily("rtms_messages", "Media messages received", labels=["media"])
        size = CounterMetricFamily("rtms_media_bytes", "Bytes of media received", labels=["media"])
        for kind in MEDIA_KINDS:
            messages.add_metric([kind], snap["messages"].get(kind, 0))
            size.add_metric([kind], snap["bytes"].get(kind, 0))
        yield messages
        yield size
        reconnects = CounterMetricFamily("rtms_reconnects", "Reconnects begun", labels=["scope"])
        for scope in ("media", "signaling"):
            reconnects.add_metric([scope], snap["reconnects"].get(scope, 0))
        yield reconnects
        yield CounterMetricFamily(
            "rtms_dropped_frames",
            "Media frames dropped because the recording fell behind",
            value=snap["dropped"],
        )
        yield GaugeMetricFamily(
            "rtms_queue_depth", "Events waiting to be recorded", value=snap["queued"]
        )
        statuses = CounterMetricFamily(
            "rtms_webhook_requests", "HTTP answers and refusals", labels=["status"]
        )
        for status, n in sorted(snap["statuses"].items()):
            statuses.add_metric([str(status)], n)
        yield statuses
        node = self._source.node
        if node is None:
            return
        stats = node.stats
        for name, attr, text in (
            ("rtms_stream_claims", "claims", "Streams claimed"),
            ("rtms_stream_takeovers", "takeovers", "Streams taken over from another node"),
            ("rtms_stream_handovers", "handovers", "Streams handed over to another node"),
            ("rtms_stream_leases_lost", "lost", "Leases lost"),
            ("rtms_webhooks_stored", "webhooks_stored", "Webhooks stored in the engine"),
            ("rtms_webhooks_duplicate", "webhooks_duplicate", "Webhooks already stored"),
            ("rtms_lease_renewal_failures", "renew_failures", "Lease renewals that failed"),
            ("rtms_published", "published", "Events published with --publish"),
            ("rtms_publish_failures", "publish_errors", "Events the engine refused to publish"),
            ("rtms_publish_dropped", "publish_dropped", "Events --publish dropped: NATS too slow"),
        ):
            yield CounterMetricFamily(name, text, value=getattr(stats, attr, 0))
        yield SummaryMetricFamily(
            "rtms_lease_renewal_seconds",
            "Lease renewal latency",
            count_value=getattr(stats, "renewals", 0),
            sum_value=getattr(stats, "renew_seconds_total", 0.0),
        )
        yield GaugeMetricFamily(
            "rtms_lease_renewal_last_seconds",
            "Latency of the last lease renewal",
            value=getattr(stats, "renew_seconds_last", 0.0),
        )
