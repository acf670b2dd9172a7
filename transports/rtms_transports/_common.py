"""What the three drivers share and that does no I/O: options, configuration, errors, logs.

Nothing here opens a socket or reads a clock.  It reads the environment
(``ZM_RTMS_CLIENT``, ``ZM_RTMS_SECRET``, ``ZM_RTMS_CA``, as Zoom's SDK does)
and builds an :class:`ssl.SSLContext`; the drivers do the rest.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
import ssl
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rtms_proto
from rtms_proto import (
    ConnectionOptions,
    Credentials,
    InvalidConfig,
    Layout,
    MediaParams,
    MediaType,
    SessionConfig,
    SocketId,
    StreamIdentity,
)
from rtms_proto.enums import EventType
from rtms_proto.webhooks import RtmsStarted, parse_webhook, parse_webhook_payload

from ._errors import check_plaintext
from ._proxy import ProxyConfig, choose_proxy

__all__ = [
    "CA_ENV",
    "CLIENT_ENV",
    "DEFAULT_ALLOWED_HOSTS",
    "SECRET_ENV",
    "LOGGER",
    "Backpressure",
    "Prepared",
    "StreamLog",
    "TlsSetup",
    "TransportOptions",
    "WebhookSource",
    "prepare",
    "resolve_credentials",
    "session_log",
    "session_config",
    "tls_setup",
]

CLIENT_ENV = "ZM_RTMS_CLIENT"
SECRET_ENV = "ZM_RTMS_SECRET"
CA_ENV = "ZM_RTMS_CA"

DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = rtms_proto.DEFAULT_ALLOWED_HOSTS
"""Hosts a webhook may point at when ``allowed_hosts`` is not given: Zoom's domains."""


# --------------------------------------------------------------------------- options


class Backpressure(enum.Enum):
    """What a driver does when the application does not keep up with the events.

    ``BLOCK`` (the default) stops reading the sockets whose events fill the
    queue until the application takes some; nothing is lost.
    ``DROP_OLDEST_MEDIA`` keeps reading and, when the queue is full, drops the
    oldest audio, video or screen-share frame (never anything else); the
    count is in ``Stream.dropped`` and in the log.
    """

    BLOCK = "block"
    DROP_OLDEST_MEDIA = "drop_oldest_media"


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportOptions:
    """How a driver opens sockets and queues events (seconds, bytes).

    TLS certificates are always verified: against ``ssl_context`` if given
    (it must verify), else the CA file ``ca_file``, else the file named by
    ``ZM_RTMS_CA``, else the system trust store.  ``proxy`` is a proxy URL
    (``http://`` for HTTP CONNECT, ``socks5h://`` for SOCKS5 with the name
    resolved by the proxy, ``socks5://`` with it resolved here; credentials as
    ``user:password@``) used for every socket, loopback included; None for no
    proxy; True (the default) to read ``no_proxy``, ``wss_proxy``,
    ``https_proxy``, ``all_proxy`` ... as ``websockets`` and ``requests`` do
    (see :func:`~rtms_transports._proxy.choose_proxy`; loopback hosts are
    always reached directly then).  ``connect_timeout`` bounds the name lookup,
    TCP, proxy and TLS together; ``close_timeout`` bounds the flush of a closing
    socket and the wait for the session to end when a stream is left.
    ``max_events``, ``backpressure`` and ``read_size`` shape the event queue
    (see ``rtms_transports``);
    ``read_size`` is the most one read takes (the asyncio driver reads every
    socket of an event loop into one buffer of that size, not one per socket).
    ``max_write_buffer`` (1 MiB) bounds the bytes written to one socket that
    its peer has not taken yet: over it, that socket is not read (so a peer
    that floods pings or keep-alive requests without reading gets no more
    answers queued), and a socket over it for ``close_timeout`` fails.
    ``max_queue_bytes`` (64 MiB) bounds the event queue in bytes as
    ``max_events`` bounds it in events: a media event counts its payload plus
    512 bytes, any other event 512 bytes.
    ``fail_fast`` makes ``connect()`` raise when the first signaling socket
    cannot be opened instead of letting the session retry (it is the session's
    ``SessionConfig.retry_first_connect``, inverted).
    """

    ca_file: str | os.PathLike[str] | None = None
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)
    proxy: str | bool | None = field(default=True, repr=False)
    connect_timeout: float = 5.0
    close_timeout: float = 10.0
    max_events: int = 1024
    max_queue_bytes: int = 64 << 20
    backpressure: Backpressure = Backpressure.BLOCK
    read_size: int = 65536
    max_write_buffer: int = 1 << 20
    fail_fast: bool = True

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "close_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidConfig(f"{name} must be a positive number of seconds, not {value!r}")
        if isinstance(self.max_events, bool) or not (
            isinstance(self.max_events, int) and self.max_events >= 1
        ):
            raise InvalidConfig(f"max_events must be an int >= 1, not {self.max_events!r}")
        if isinstance(self.read_size, bool) or not (
            isinstance(self.read_size, int) and 1024 <= self.read_size <= 1 << 24
        ):
            raise InvalidConfig("read_size must be an int from 1024 to 16 MiB")
        if isinstance(self.max_queue_bytes, bool) or not (
            isinstance(self.max_queue_bytes, int) and self.max_queue_bytes >= 1024
        ):
            raise InvalidConfig(
                f"max_queue_bytes must be an int >= 1024 bytes, not {self.max_queue_bytes!r}"
            )
        if isinstance(self.max_write_buffer, bool) or not (
            isinstance(self.max_write_buffer, int) and self.max_write_buffer >= 1024
        ):
            raise InvalidConfig(
                f"max_write_buffer must be an int >= 1024 bytes, not {self.max_write_buffer!r}"
            )
        if not isinstance(self.backpressure, Backpressure):
            raise InvalidConfig("backpressure must be a Backpressure member")
        if self.ssl_context is not None:
            _check_verifying(self.ssl_context)
        # Validates (the message never echoes a password); the environment is read later.
        choose_proxy(self.proxy, "localhost", 443, secure=True, environ={})

    @property
    def proxy_config(self) -> ProxyConfig | None:
        """The proxy given as a URL, if one was (not one from the environment)."""
        return ProxyConfig.from_url(self.proxy) if isinstance(self.proxy, str) else None

    def proxy_for(
        self, host: str, port: int, secure: bool, environ: Mapping[str, str] | None = None
    ) -> ProxyConfig | None:
        """The proxy for a socket to ``host:port`` (``environ``: ``os.environ``)."""
        return choose_proxy(self.proxy, host, port, secure, environ)

    def __repr__(self) -> str:
        proxy = self.proxy_config
        shown = (
            proxy.display
            if proxy is not None
            else "from the environment"
            if self.proxy is True
            else None
        )
        return (
            f"TransportOptions(ca_file={self.ca_file!r}, ssl_context="
            f"{'set' if self.ssl_context is not None else None}, proxy="
            f"{shown!r}, connect_timeout="
            f"{self.connect_timeout!r}, close_timeout={self.close_timeout!r}, max_events="
            f"{self.max_events!r}, max_queue_bytes={self.max_queue_bytes!r}, backpressure="
            f"{self.backpressure}, read_size="
            f"{self.read_size!r}, max_write_buffer={self.max_write_buffer!r}, fail_fast="
            f"{self.fail_fast!r})"
        )


def _check_verifying(context: ssl.SSLContext) -> None:
    if context.verify_mode is not ssl.CERT_REQUIRED or not context.check_hostname:
        raise InvalidConfig(
            "ssl_context must verify certificates (verify_mode CERT_REQUIRED and"
            " check_hostname on); rtms_transports has no insecure mode"
        )


@dataclass(frozen=True, slots=True)
class TlsSetup:
    """A verifying client context and a description of what it trusts (for error messages)."""

    context: ssl.SSLContext = field(repr=False)
    trust: str


def tls_setup(options: TransportOptions, env: Mapping[str, str] | None = None) -> TlsSetup:
    """The client TLS context: verification on, TLS 1.2 or newer, hostname checked."""
    if options.ssl_context is not None:
        _check_verifying(options.ssl_context)
        return TlsSetup(options.ssl_context, "the given ssl_context")
    environ = os.environ if env is None else env
    ca: str | os.PathLike[str] | None = options.ca_file
    source = "ca_file"
    if ca is None and environ.get(CA_ENV):
        ca, source = environ[CA_ENV], CA_ENV
    if ca is None:
        return TlsSetup(ssl.create_default_context(), "the system trust store")
    path = Path(ca)
    try:
        context = ssl.create_default_context(cafile=os.fspath(path))
    except (OSError, ssl.SSLError) as exc:
        raise InvalidConfig(f"cannot load the CA file {str(path)!r} ({source}): {exc}") from None
    return TlsSetup(context, f"CA file {str(path)!r}")


# --------------------------------------------------------------------------- configuration

WebhookSource = bytes | str | Mapping[str, object] | RtmsStarted | SessionConfig
"""What a stream can be made from: a ``*.rtms_started`` webhook body (raw bytes, its
text, or the decoded object), its ``payload`` alone, a parsed :class:`RtmsStarted`,
or a complete :class:`SessionConfig`."""


def resolve_credentials(
    *,
    credentials: Credentials | None,
    client_id: str | None,
    client_secret: str | None,
    env: Mapping[str, str] | None = None,
) -> Credentials:
    """Explicit credentials, else the parameters, else ``ZM_RTMS_CLIENT``/``ZM_RTMS_SECRET``."""
    if credentials is not None:
        if client_id is not None or client_secret is not None:
            raise InvalidConfig("pass either credentials or client_id/client_secret, not both")
        return credentials
    environ = os.environ if env is None else env
    cid = client_id if client_id is not None else environ.get(CLIENT_ENV)
    secret = client_secret if client_secret is not None else environ.get(SECRET_ENV)
    if not cid:
        raise InvalidConfig(f"no client id: pass client_id= or set {CLIENT_ENV}")
    if not secret:
        raise InvalidConfig(f"no client secret: pass client_secret= or set {SECRET_ENV}")
    return Credentials(client_id=cid, client_secret=secret)


def parse_started(source: WebhookSource, allowed_hosts: Sequence[str]) -> RtmsStarted:
    """The ``rtms_started`` event in ``source`` (body bytes or text, object, or payload)."""
    if isinstance(source, RtmsStarted):
        return source
    if isinstance(source, SessionConfig):  # pragma: no cover - callers handle it first
        raise InvalidConfig("a SessionConfig is not a webhook")
    if isinstance(source, bytes | bytearray | memoryview):
        event = parse_webhook(bytes(source), allowed_hosts=allowed_hosts)
    elif isinstance(source, str):
        event = parse_webhook(source.encode("utf-8"), allowed_hosts=allowed_hosts)
    elif isinstance(source, Mapping):
        if "payload" in source and "event" in source:
            # A decoded body: parse the same bytes a receiver would have had.
            event = parse_webhook(json.dumps(dict(source)).encode(), allowed_hosts=allowed_hosts)
        else:
            event = parse_webhook_payload(source, allowed_hosts=allowed_hosts)
    else:
        raise InvalidConfig(
            f"cannot make a stream from {type(source).__name__}: pass the rtms_started webhook"
            " body, its payload, an RtmsStarted or a SessionConfig"
        )
    if not isinstance(event, RtmsStarted):
        name = getattr(event, "event", type(event).__name__)
        raise InvalidConfig(f"expected an rtms_started webhook, not {name}")
    return event


def session_config(
    source: WebhookSource,
    *,
    credentials: Credentials | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    media: MediaType | None = None,
    layout: Layout | None = None,
    params: MediaParams | None = None,
    events: Sequence[EventType | int] | None = None,
    buffer_data: bool | None = None,
    allowed_hosts: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> SessionConfig:
    """A :class:`SessionConfig` from an ``rtms_started`` webhook and credentials.

    Credentials come from ``credentials``, else ``client_id``/``client_secret``,
    else ``ZM_RTMS_CLIENT``/``ZM_RTMS_SECRET``.  ``allowed_hosts`` (default:
    Zoom's domains) vets the webhook's URL and every media URL.  A
    :class:`SessionConfig` is returned unchanged (no other argument allowed).
    """
    if isinstance(source, SessionConfig):
        extras = (
            credentials,
            client_id,
            client_secret,
            media,
            layout,
            params,
            events,
            buffer_data,
            allowed_hosts,
        )
        if any(x is not None for x in extras):
            raise InvalidConfig("a SessionConfig is complete: pass no other session argument")
        return source
    hosts = tuple(DEFAULT_ALLOWED_HOSTS if allowed_hosts is None else allowed_hosts)
    started = parse_started(source, hosts)
    creds = resolve_credentials(
        credentials=credentials, client_id=client_id, client_secret=client_secret, env=env
    )
    conn = ConnectionOptions(allowed_hosts=hosts)
    extra: dict[str, Any] = {}
    if media is not None:
        extra["media"] = media
    if layout is not None:
        extra["layout"] = layout
    if params is not None:
        extra["params"] = params
    if events is not None:
        extra["events"] = tuple(events)
    return SessionConfig(
        stream=StreamIdentity(
            instance_id=started.instance_id,
            rtms_stream_id=started.rtms_stream_id,
            product=started.product,
        ),
        server_url=started.server_url.url,
        credentials=creds,
        buffer_data=buffer_data,
        signaling_options=conn,
        media_options=conn,
        **extra,
    )


# --------------------------------------------------------------------------- logging

LOGGER = logging.getLogger("rtms_transports")


class StreamLog(logging.LoggerAdapter[logging.Logger]):
    """A logger that prefixes ``[<stream id> <socket>]`` and adds both as ``extra``.

    Records carry ``rtms_stream_id`` and ``rtms_socket`` attributes for
    formatters and filters.  Nothing logged through it contains a secret:
    drivers log hosts, ports, sizes and event types, never payloads, the
    handshake (it carries the signature) or proxy passwords.
    """

    def __init__(self, logger: logging.Logger, stream_id: str, sock: SocketId | None = None):
        super().__init__(logger, {"rtms_stream_id": stream_id, "rtms_socket": str(sock or "-")})
        self.stream_id = stream_id
        self.sock = sock
        self._prefix = f"[{stream_id}{'' if sock is None else ' ' + str(sock)}] "

    def process(
        self, msg: object, kwargs: MutableMapping[str, Any]
    ) -> tuple[object, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra") or {})
        kwargs["extra"] = extra
        return f"{self._prefix}{msg}", kwargs

    def for_socket(self, sock: SocketId) -> StreamLog:
        return StreamLog(self.logger, self.stream_id, sock)

    def connecting(self, host: str, port: int, secure: bool, proxy: ProxyConfig | None) -> None:
        """The line every driver logs as it opens a socket (the proxy without password)."""
        self.debug(
            "connecting to %s:%d%s%s",
            host,
            port,
            " with TLS" if secure else "",
            f" via proxy {proxy.display}" if proxy else "",
        )


# --------------------------------------------------------------------------- connect() glue


@dataclass(frozen=True, slots=True)
class Prepared:
    """What ``connect()`` works out before any I/O: config, options, TLS, logger.

    ``config`` is the session's, with ``retry_first_connect`` set from
    ``options.fail_fast``.
    """

    config: SessionConfig
    options: TransportOptions
    tls: TlsSetup | None
    log: StreamLog


def prepare(
    source: WebhookSource,
    *,
    credentials: Credentials | None,
    client_id: str | None,
    client_secret: str | None,
    media: MediaType | None,
    layout: Layout | None,
    params: MediaParams | None,
    allowed_hosts: Sequence[str] | None,
    options: TransportOptions | None,
    logger: logging.Logger | None,
) -> Prepared:
    """Validate everything ``connect()`` was given; raise before opening anything."""
    config = session_config(
        source,
        credentials=credentials,
        client_id=client_id,
        client_secret=client_secret,
        media=media,
        layout=layout,
        params=params,
        allowed_hosts=allowed_hosts,
    )
    opts = options if options is not None else TransportOptions()
    config = dataclasses.replace(config, retry_first_connect=not opts.fail_fast)
    url = config.signaling_url
    check_plaintext(url.host, url.port, url.secure)
    opts.proxy_for(
        url.host, url.port, url.secure
    )  # a bad proxy variable fails here, not per socket
    tls = tls_setup(opts) if url.secure else None
    log = StreamLog(logger or LOGGER, config.stream.rtms_stream_id)
    return Prepared(config=config, options=opts, tls=tls, log=log)


def session_log(session_config_: SessionConfig, logger: logging.Logger | None) -> StreamLog:
    return StreamLog(logger or LOGGER, session_config_.stream.rtms_stream_id)
