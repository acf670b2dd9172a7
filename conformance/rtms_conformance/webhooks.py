"""Webhook bodies the fake server emits and their ``x-zm-signature`` headers.

Bodies use the flat ``payload`` every working Zoom client reads (docs/protocol.md
§8.1) and the event name and instance-id key of the stream's product.  Pure;
delivery (:func:`rtms_conformance.net.post_webhook`) lives with the other I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from rtms_proto.enums import Product, StopReason
from rtms_proto.webhooks import sign_webhook

__all__ = [
    "event_name",
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
        {
            product.id_key: instance_id,
            "rtms_stream_id": rtms_stream_id,
            "stop_reason": int(stop_reason),
        },
    )


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
