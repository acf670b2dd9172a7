"""Zoom webhooks that start and stop RTMS streams (docs/protocol.md §8.1-§8.3).

A receiver does, in order: :func:`verify_webhook` over the *raw* request body
(re-serialised JSON never verifies), :func:`parse_webhook`, answer
``endpoint.url_validation`` with :func:`url_validation_response`, and feed the
other events to a :class:`StreamTracker`, which tells a new stream from a retried
delivery or a failover.  Everything here is pure: the caller supplies ``now``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import math
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeAlias

from ._errors import DisallowedHost, InvalidConfig, WebhookError
from ._fields import WireFieldError, read_stop_reason
from ._json import freeze
from ._urls import DEFAULT_ALLOWED_HOSTS, ServerUrl, _check_allowlist, parse_server_url
from .enums import Product, StopReason

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "URL_VALIDATION_EVENT",
    "Disposition",
    "OtherWebhook",
    "RtmsInterrupted",
    "RtmsStarted",
    "RtmsStopped",
    "StreamTracker",
    "UrlValidation",
    "WebhookErrorKind",
    "WebhookEvent",
    "WebhookRejected",
    "parse_webhook",
    "parse_webhook_payload",
    "sign_webhook",
    "url_validation_response",
    "verify_webhook",
]

SIGNATURE_HEADER = "x-zm-signature"
TIMESTAMP_HEADER = "x-zm-request-timestamp"
URL_VALIDATION_EVENT = "endpoint.url_validation"

_TIMESTAMP = re.compile(r"[0-9]{1,15}")


class WebhookErrorKind(enum.Enum):
    """Why a webhook was refused; :attr:`http_status` is the answer to send."""

    MISSING_SIGNATURE = "missing_signature"
    MISSING_TIMESTAMP = "missing_timestamp"
    BAD_TIMESTAMP = "bad_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED_BODY = "malformed_body"
    NOT_RTMS = "not_rtms"
    DISALLOWED_HOST = "disallowed_host"

    @property
    def http_status(self) -> int:
        """401 when the request is not proven to come from Zoom, 400 when its content is bad."""
        return 400 if self in _CONTENT_KINDS else 401


_CONTENT_KINDS = frozenset(
    {WebhookErrorKind.MALFORMED_BODY, WebhookErrorKind.NOT_RTMS, WebhookErrorKind.DISALLOWED_HOST}
)


class WebhookRejected(WebhookError):
    """A :class:`WebhookError` that says which check failed (``kind``) and on what ``field``.

    Messages name headers and fields, never a secret or a signature.
    """

    def __init__(self, kind: WebhookErrorKind, detail: str, *, field: str | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.field = field
        super().__init__(f"{kind.value}: {detail}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only ``field`` would otherwise be lost when pickled (e.g. across processes).
        return (type(self), (self.kind, self.detail), {"field": self.field})


def _malformed(where: str, detail: str) -> WebhookRejected:
    return WebhookRejected(WebhookErrorKind.MALFORMED_BODY, f"{where} {detail}", field=where)


# --------------------------------------------------------------------------- signatures


def _require_str(name: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidConfig(f"{name} must be a non-empty str")


def _signature(raw_body: bytes, secret: str, timestamp: str) -> str:
    message = b"v0:" + timestamp.encode() + b":" + raw_body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_webhook(*, raw_body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The two headers Zoom would send with ``raw_body`` (for fake servers and tests)."""
    _require_str("secret", secret)
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise InvalidConfig("timestamp must be a non-negative int (Unix seconds)")
    return {
        SIGNATURE_HEADER: _signature(raw_body, secret, str(timestamp)),
        TIMESTAMP_HEADER: str(timestamp),
    }


def _header(
    headers: Mapping[str, str], name: str, missing: WebhookErrorKind, bad: WebhookErrorKind
) -> str:
    values = {value.strip() for key, value in headers.items() if key.lower() == name}
    values.discard("")
    if not values:
        raise WebhookRejected(missing, f"header {name} is missing", field=name)
    if len(values) > 1:
        raise WebhookRejected(bad, f"header {name} is given twice, differently", field=name)
    return values.pop()


def verify_webhook(
    *,
    headers: Mapping[str, str],
    raw_body: bytes,
    secret: str,
    now: float,
    tolerance: float = 300.0,
) -> None:
    """Check that a request comes from Zoom, unaltered and recent; raise :class:`WebhookRejected`.

    ``headers`` are matched case-insensitively; ``raw_body`` must be the bytes
    as received; ``secret`` is the app's webhook Secret Token; ``now`` is the
    caller's Unix time in seconds.  The signature is checked before the
    timestamp, so ``STALE_TIMESTAMP`` means an authentic but old (replayed) or
    clock-skewed request.  A bad ``secret``, ``now`` or ``tolerance`` is
    caller misuse and raises :class:`InvalidConfig`: an empty secret would let
    anyone sign, a NaN would disable the freshness check.
    """
    _require_str("secret", secret)
    if not math.isfinite(now):
        raise InvalidConfig("now must be a finite number of Unix seconds")
    if not tolerance >= 0:
        raise InvalidConfig("tolerance must be a number of seconds >= 0")
    signature = _header(
        headers,
        SIGNATURE_HEADER,
        WebhookErrorKind.MISSING_SIGNATURE,
        WebhookErrorKind.BAD_SIGNATURE,
    )
    timestamp = _header(
        headers,
        TIMESTAMP_HEADER,
        WebhookErrorKind.MISSING_TIMESTAMP,
        WebhookErrorKind.BAD_TIMESTAMP,
    )
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookRejected(
            WebhookErrorKind.BAD_TIMESTAMP,
            f"header {TIMESTAMP_HEADER} is not a whole number of seconds",
            field=TIMESTAMP_HEADER,
        )
    expected = _signature(raw_body, secret, timestamp)
    # Bytes on both sides: compare_digest refuses non-ASCII str.
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise WebhookRejected(
            WebhookErrorKind.BAD_SIGNATURE,
            f"header {SIGNATURE_HEADER} does not match the body",
            field=SIGNATURE_HEADER,
        )
    skew = now - int(timestamp)
    if abs(skew) > tolerance:
        raise WebhookRejected(
            WebhookErrorKind.STALE_TIMESTAMP,
            f"request timestamp is {skew:+.0f} s off now, outside the ±{tolerance:g} s window",
            field=TIMESTAMP_HEADER,
        )


def url_validation_response(plain_token: str, secret: str) -> bytes:
    """The JSON body that answers ``endpoint.url_validation`` (docs/protocol.md §8.2)."""
    _require_str("plain_token", plain_token)
    _require_str("secret", secret)
    encrypted = hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {"plainToken": plain_token, "encryptedToken": encrypted}, separators=(",", ":")
    ).encode()


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class RtmsStarted:
    """A stream is ready: connect to ``server_url`` (already checked against the allowlist).

    ``id_key`` is the payload key the instance id came from (webinars use
    ``webinar_uuid`` or ``meeting_uuid``), so a handshake can echo the same key.
    ``signature`` is a precomputed handshake signature, present in some variants.
    """

    product: Product
    event: str
    event_ts: int | None
    instance_id: str
    id_key: str
    rtms_stream_id: str
    server_url: ServerUrl
    operator_id: str | None = None
    signature: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RtmsStopped:
    """A stream ended; ``stop_reason`` is a :class:`StopReason`, an unknown number, or absent."""

    product: Product
    event: str
    event_ts: int | None
    instance_id: str
    id_key: str
    rtms_stream_id: str
    stop_reason: StopReason | int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RtmsInterrupted:
    """Zoom lost the signaling connection of a stream and waits for a reconnect."""

    product: Product
    event: str
    event_ts: int | None
    instance_id: str
    id_key: str
    rtms_stream_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlValidation:
    """Zoom checks the endpoint; answer with :func:`url_validation_response`."""

    plain_token: str
    event_ts: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherWebhook:
    """Any other event (e.g. ``rtms.concurrency_limited``), payload kept read-only."""

    event: str
    event_ts: int | None
    payload: Mapping[str, object]


WebhookEvent: TypeAlias = RtmsStarted | RtmsStopped | RtmsInterrupted | UrlValidation | OtherWebhook


class _Kind(enum.Enum):
    STARTED = "rtms_started"
    STOPPED = "rtms_stopped"
    INTERRUPTED = "rtms_interrupted"


_PREFIXES: tuple[tuple[str, Product, tuple[str, ...]], ...] = (
    ("meeting.", Product.MEETING, ("meeting_uuid",)),
    # Which key webinars carry is unresolved (docs/protocol.md §12.4): take either.
    ("webinar.", Product.WEBINAR, ("webinar_uuid", "meeting_uuid")),
    ("session.", Product.VIDEO_SDK, ("session_id",)),
    ("contact_center.voice_", Product.CONTACT_CENTER, ("engagement_id",)),
    # Outdated Contact Center names used by Zoom's JS sample (docs/protocol.md §12.5).
    ("contactcenter.", Product.CONTACT_CENTER, ("engagement_id", "session_id")),
    ("phone.", Product.PHONE, ("call_id",)),
)
_RTMS_EVENTS: dict[str, tuple[Product, _Kind, tuple[str, ...]]] = {
    prefix + kind.value: (product, kind, keys)
    for prefix, product, keys in _PREFIXES
    for kind in _Kind
}
_STARTED_EVENT = {
    product: prefix + _Kind.STARTED.value
    for prefix, product, _ in reversed(_PREFIXES)  # the first (current) name wins
}
# Most specific first: a webinar payload may also carry meeting_uuid.
_INFERENCE_ORDER = (
    Product.WEBINAR,
    Product.CONTACT_CENTER,
    Product.PHONE,
    Product.VIDEO_SDK,
    Product.MEETING,
)


def parse_webhook(
    raw_body: bytes, *, allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS
) -> WebhookEvent:
    """Decode a webhook body ``{event, event_ts, payload}`` into a typed event.

    Verify the body first (:func:`verify_webhook`).  Malformed bodies raise
    :class:`WebhookRejected` (``MALFORMED_BODY``, naming the field); a
    ``server_urls`` outside ``allowed_hosts`` raises it with ``DISALLOWED_HOST``
    (the :class:`DisallowedHost` is chained as ``__cause__``), so a receiver
    needs to catch only :class:`WebhookError`.  Events this module does not
    model become :class:`OtherWebhook`.
    """
    _check_allowlist(allowed_hosts)
    try:
        body = json.loads(raw_body)
    except (ValueError, RecursionError) as exc:
        raise _malformed("body", "is not valid JSON") from exc
    if not isinstance(body, dict):
        raise _malformed("body", "is not a JSON object")
    event = body.get("event")
    if not isinstance(event, str) or not event:
        raise _malformed("event", "must be a non-empty string")
    event_ts = body.get("event_ts")
    if event_ts is not None and (isinstance(event_ts, bool) or not isinstance(event_ts, int)):
        raise _malformed("event_ts", "must be an integer")
    payload = body.get("payload")
    if payload is None:
        if event == URL_VALIDATION_EVENT or event in _RTMS_EVENTS:
            raise _malformed("payload", "is missing")
        payload = {}
    return parse_webhook_payload(
        payload, event=event, event_ts=event_ts, allowed_hosts=allowed_hosts
    )


def parse_webhook_payload(
    payload: Mapping[str, object],
    *,
    event: str | None = None,
    event_ts: int | None = None,
    allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS,
) -> WebhookEvent:
    """Decode just the ``payload`` object of a webhook whose envelope the caller has read.

    With ``event=None`` the payload is taken as an ``rtms_started`` payload (what
    the official SDK's ``join(payload)`` accepts) and the product is inferred
    from the id key present: ``webinar_uuid``, ``engagement_id``, ``call_id``,
    ``session_id``, ``meeting_uuid``, in that order.  A payload with none of
    them and no ``rtms_stream_id`` raises ``NOT_RTMS``.  Both the flat payload
    and the nested ``payload.object`` variant are read.
    """
    _check_allowlist(allowed_hosts)
    if not isinstance(payload, Mapping):
        raise _malformed("payload", "is not a JSON object")
    if event == URL_VALIDATION_EVENT:
        _check_encodable(payload, "payload", ("plainToken",))
        return UrlValidation(
            plain_token=_required_str(payload, "plainToken", "payload"), event_ts=event_ts
        )
    if event is None:
        obj, where = _unwrap(payload)
        product = next((p for p in _INFERENCE_ORDER if obj.get(p.id_key) is not None), None)
        if product is None:
            if obj.get("rtms_stream_id") is None:
                raise WebhookRejected(
                    WebhookErrorKind.NOT_RTMS,
                    "payload has no rtms_stream_id and no instance id: not an RTMS payload",
                )
            raise _malformed(where, "has no instance id (meeting_uuid, session_id, ...)")
        return _build(
            obj,
            where,
            product=product,
            kind=_Kind.STARTED,
            event=_STARTED_EVENT[product],
            event_ts=event_ts,
            id_keys=(product.id_key,),
            allowed_hosts=allowed_hosts,
        )
    spec = _RTMS_EVENTS.get(event)
    if spec is None:
        return OtherWebhook(event=event, event_ts=event_ts, payload=freeze(payload))
    product, kind, id_keys = spec
    obj, where = _unwrap(payload)
    return _build(
        obj,
        where,
        product=product,
        kind=kind,
        event=event,
        event_ts=event_ts,
        id_keys=id_keys,
        allowed_hosts=allowed_hosts,
    )


def _unwrap(payload: Mapping[str, object]) -> tuple[Mapping[str, object], str]:
    """The flat payload, or its ``object`` in the nested variant (docs/protocol.md §12.3)."""
    inner = payload.get("object")
    if payload.get("rtms_stream_id") is None and isinstance(inner, Mapping):
        return inner, "payload.object"
    return payload, "payload"


def _build(
    obj: Mapping[str, object],
    where: str,
    *,
    product: Product,
    kind: _Kind,
    event: str,
    event_ts: int | None,
    id_keys: tuple[str, ...],
    allowed_hosts: Sequence[str],
) -> RtmsStarted | RtmsStopped | RtmsInterrupted:
    id_key = next((key for key in id_keys if obj.get(key) is not None), id_keys[0])
    instance_id = _required_str(obj, id_key, where)
    rtms_stream_id = _required_str(obj, "rtms_stream_id", where)
    _check_encodable(obj, where, (id_key, "rtms_stream_id", "operator_id", "signature"))
    if kind is _Kind.STOPPED:
        return RtmsStopped(
            product=product,
            event=event,
            event_ts=event_ts,
            instance_id=instance_id,
            id_key=id_key,
            rtms_stream_id=rtms_stream_id,
            stop_reason=_stop_reason(obj, where),
        )
    if kind is _Kind.INTERRUPTED:
        return RtmsInterrupted(
            product=product,
            event=event,
            event_ts=event_ts,
            instance_id=instance_id,
            id_key=id_key,
            rtms_stream_id=rtms_stream_id,
        )
    url_field = f"{where}.server_urls"
    url = _required_str(obj, "server_urls", where)
    try:
        server_url = parse_server_url(url, allowed_hosts=allowed_hosts)
    except DisallowedHost as exc:
        raise WebhookRejected(
            WebhookErrorKind.DISALLOWED_HOST, f"{url_field}: {exc}", field=url_field
        ) from exc
    except InvalidConfig as exc:
        raise _malformed(url_field, f"is not a usable server URL: {exc}") from exc
    return RtmsStarted(
        product=product,
        event=event,
        event_ts=event_ts,
        instance_id=instance_id,
        id_key=id_key,
        rtms_stream_id=rtms_stream_id,
        server_url=server_url,
        operator_id=_optional_str(obj, "operator_id", where),
        signature=_optional_str(obj, "signature", where),
    )


def _required_str(obj: Mapping[str, object], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        raise _malformed(f"{where}.{key}", "is missing")
    if not isinstance(value, str) or not value:
        raise _malformed(f"{where}.{key}", "must be a non-empty string")
    return value


def _optional_str(obj: Mapping[str, object], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _malformed(f"{where}.{key}", "must be a string")
    return value


def _check_encodable(obj: Mapping[str, object], where: str, keys: tuple[str, ...]) -> None:
    """Refuse a text field that cannot be encoded: a lone surrogate (a JSON ``"\\ud800"``
    escape) would otherwise crash whatever signs it, sends it or names a file after it,
    long after the request was answered."""
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                raise _malformed(
                    f"{where}.{key}", "is not valid Unicode text (it holds a lone surrogate)"
                ) from None


def _stop_reason(obj: Mapping[str, object], where: str) -> StopReason | int | None:
    """A number (unknown ones kept) or a stop reason name, read as the codec reads it.

    Stricter than the codec: a name no one knows makes the body malformed.
    """
    malformed = _malformed(f"{where}.stop_reason", "must be an integer or a stop reason name")
    try:
        value = read_stop_reason(obj, "stop_reason", f"{where}.")
    except WireFieldError:
        raise malformed from None
    if isinstance(value, str):
        raise malformed
    return value


# --------------------------------------------------------------------------- tracking


class Disposition(enum.Enum):
    """What a webhook means for the streams a receiver runs (see :class:`StreamTracker`)."""

    NEW_STREAM = "new_stream"
    """Start a session for this stream."""
    DUPLICATE = "duplicate"
    """A retried or late delivery of something already seen: do nothing."""
    FAILOVER = "failover"
    """A live stream moved to a new server: reconnect it to the new URL."""
    STOPPED = "stopped"
    """A live stream ended: stop its session."""
    UNKNOWN_STOP = "unknown_stop"
    """A stop for a stream this tracker never saw live (e.g. before its start)."""
    INTERRUPTED = "interrupted"
    """Zoom lost a live stream's signaling connection and waits for a reconnect."""
    IGNORED = "ignored"
    """Not about a stream this tracker knows (URL validation, other events)."""


class StreamTracker:
    """De-duplicates stream webhooks and detects failovers, keyed by ``rtms_stream_id``.

    Zoom retries a webhook it got no quick 200 for and sends a fresh
    ``rtms_started`` when a stream moves to another server (docs/protocol.md §8.1,
    §8.6): both arrive as ``rtms_started`` for a stream already live, and only
    their ``event_ts`` and ``server_urls`` tell them apart.  A start older than
    the live one's is a late retry (``DUPLICATE``), never a failover back.

    Live streams are kept until their stop; the ids of the last
    ``max_stopped`` stopped streams are remembered so that a re-delivered stop,
    or a retried start that arrives after the stop, is a ``DUPLICATE``.  A start
    with a later ``event_ts`` than the remembered stop is a ``NEW_STREAM``.
    Not thread-safe: one tracker per receiver loop.
    """

    __slots__ = ("_live", "_max_stopped", "_stopped")

    def __init__(self, *, max_stopped: int = 1024) -> None:
        if isinstance(max_stopped, bool) or not isinstance(max_stopped, int) or max_stopped < 0:
            raise InvalidConfig("max_stopped must be an int >= 0")
        self._max_stopped = max_stopped
        self._live: dict[str, RtmsStarted] = {}
        self._stopped: OrderedDict[str, int | None] = OrderedDict()

    def observe(self, event: WebhookEvent) -> Disposition:
        """Record ``event`` and say what to do about it."""
        if isinstance(event, RtmsStarted):
            return self._started(event)
        if isinstance(event, RtmsStopped):
            return self._stop(event)
        if isinstance(event, RtmsInterrupted) and event.rtms_stream_id in self._live:
            return Disposition.INTERRUPTED
        return Disposition.IGNORED

    def live_streams(self) -> Mapping[str, RtmsStarted]:
        """A read-only snapshot: stream id -> the latest start of each live stream."""
        return MappingProxyType(dict(self._live))

    def _started(self, event: RtmsStarted) -> Disposition:
        stream_id = event.rtms_stream_id
        current = self._live.get(stream_id)
        if current is None:
            if stream_id in self._stopped:
                if not _later(event.event_ts, self._stopped[stream_id]):
                    return Disposition.DUPLICATE
                del self._stopped[stream_id]
            self._live[stream_id] = event
            return Disposition.NEW_STREAM
        if event.server_url == current.server_url and event.event_ts == current.event_ts:
            return Disposition.DUPLICATE
        if _later(current.event_ts, event.event_ts):
            return Disposition.DUPLICATE
        self._live[stream_id] = event
        return Disposition.FAILOVER

    def _stop(self, event: RtmsStopped) -> Disposition:
        stream_id = event.rtms_stream_id
        if stream_id in self._stopped:
            return Disposition.DUPLICATE
        disposition = Disposition.UNKNOWN_STOP
        if self._live.pop(stream_id, None) is not None:
            disposition = Disposition.STOPPED
        self._stopped[stream_id] = event.event_ts
        while len(self._stopped) > self._max_stopped:
            self._stopped.popitem(last=False)
        return disposition


def _later(a: int | None, b: int | None) -> bool:
    """Whether ``a`` is known to be later than ``b``."""
    return a is not None and b is not None and a > b
