"""Webhook bodies the fake server emits, their ``x-zm-signature``, and delivery.

Bodies use the flat ``payload`` every working Zoom client reads (protocol.md
§8.1) and the event name and instance-id key of the stream's product.  The
builders are pure; :func:`post_webhook` does I/O and only to loopback hosts
unless told otherwise, because a test server should never post to the world
by accident.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import time
import urllib.parse
from collections.abc import Mapping

from rtms_proto.enums import Product, StopReason
from rtms_proto.webhooks import sign_webhook

__all__ = [
    "event_name",
    "post_webhook",
    "rtms_interrupted_body",
    "rtms_started_body",
    "rtms_stopped_body",
    "webhook_headers",
]

_PREFIX = {
    Product.MEETING: "meeting.",
    Product.WEBINAR: "webinar.",
    Product.VIDEO_SDK: "session.",
    Product.CONTACT_CENTER: "contact_center.voice_",
    Product.PHONE: "phone.",
}


def event_name(product: Product, kind: str) -> str:
    """``meeting.rtms_started``, ``contact_center.voice_rtms_stopped`` …; kind is
    ``rtms_started``, ``rtms_stopped`` or ``rtms_interrupted``."""
    return _PREFIX[product] + kind


def _body(event: str, event_ts: int, payload: Mapping[str, object]) -> bytes:
    return json.dumps(
        {"event": event, "event_ts": event_ts, "payload": dict(payload)},
        separators=(",", ":"),
    ).encode()


def rtms_started_body(
    *,
    product: Product,
    instance_id: str,
    rtms_stream_id: str,
    server_url: str,
    operator_id: str,
    event_ts: int,
) -> bytes:
    """``*.rtms_started``: where to connect (``server_urls`` is one string, as Zoom sends)."""
    return _body(
        event_name(product, "rtms_started"),
        event_ts,
        {
            product.id_key: instance_id,
            "rtms_stream_id": rtms_stream_id,
            "server_urls": server_url,
            "operator_id": operator_id,
        },
    )


def rtms_stopped_body(
    *,
    product: Product,
    instance_id: str,
    rtms_stream_id: str,
    stop_reason: StopReason | int,
    event_ts: int,
) -> bytes:
    """``*.rtms_stopped`` with the numeric ``stop_reason``."""
    return _body(
        event_name(product, "rtms_stopped"),
        event_ts,
        {product.id_key: instance_id, "rtms_stream_id": rtms_stream_id,
         "stop_reason": int(stop_reason)},
    )  # fmt: skip


def rtms_interrupted_body(
    *, product: Product, instance_id: str, rtms_stream_id: str, event_ts: int
) -> bytes:
    """``*.rtms_interrupted``: Zoom lost the signaling connection and waits for a reconnect."""
    return _body(
        event_name(product, "rtms_interrupted"),
        event_ts,
        {product.id_key: instance_id, "rtms_stream_id": rtms_stream_id},
    )


def webhook_headers(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The headers Zoom sends with ``body``: ``x-zm-signature`` and ``x-zm-request-timestamp``
    (``timestamp`` in Unix seconds) plus the content type."""
    headers = sign_webhook(raw_body=body, secret=secret, timestamp=timestamp)
    headers["content-type"] = "application/json"
    return headers


_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def post_webhook(
    url: str,
    body: bytes,
    secret: str,
    *,
    timestamp: int | None = None,
    timeout: float = 5.0,
    allow_remote: bool = False,
) -> int:
    """POST ``body`` signed with ``secret`` to ``url`` and return the HTTP status.

    ``timestamp`` defaults to the current Unix time (receivers reject
    signatures more than 300 s off).  Only ``http``/``https`` URLs on a
    loopback host are allowed unless ``allow_remote``; raises ``ValueError``
    for others and ``OSError`` when the receiver is unreachable.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook URL must be http:// or https:// with a host")
    if not allow_remote and not _is_loopback(parts.hostname):
        raise ValueError("webhook URL must name a loopback host (localhost, 127.0.0.1, ::1)")
    ts = int(time.time()) if timestamp is None else timestamp
    headers = webhook_headers(body, secret, ts)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()
