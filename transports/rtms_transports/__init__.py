"""Drivers that run an :class:`rtms_proto.Session` over real sockets.

Three transports with the same shape: :mod:`rtms_transports.asyncio`,
:mod:`rtms_transports.trio` and :mod:`rtms_transports.blocking` (sockets and
``selectors`` on one I/O thread shared by its streams).  Each has

* ``connect(webhook, ...)``: a context manager yielding a ``Stream`` that is
  iterated for events (``async for`` / ``for``) and has the session's commands
  (``close_stream()``, ``stop()``, ``subscribe_video()``, ``failover()`` ...);
* ``run_session(session, handler)`` / ``SessionRunner``: the lower-level entry
  for an application that builds its own :class:`~rtms_proto.Session`.

They contain no protocol logic, and the loop is written once
(``rtms_transports._loop``): it feeds bytes and time into the session,
performs the actions it drains in order, keeps one timer armed at
``session.next_deadline()`` and hands the events over; each driver supplies
only its primitives (clock, open, write, close, timer, waking the consumer).

TLS
    ``wss://`` certificates are always verified: against ``options.ssl_context``
    (which must verify), a CA file (``options.ca_file``, or the file named by
    ``ZM_RTMS_CA`` as in Zoom's SDK), or the system trust store.  ``ws://`` is
    refused unless the host is loopback.

Proxies
    Every socket may go through a proxy: HTTP ``CONNECT`` (``http://``, with
    basic auth) or SOCKS5 (``socks5h://``, the proxy resolves the name;
    ``socks5://``, it is resolved here; with user name and password).  TLS
    runs inside the tunnel, end to end with Zoom.  ``options.proxy`` is a URL
    (for every socket), None (no proxy), or True, the default: the
    environment decides, as for ``websockets`` and ``requests``: a host in
    ``no_proxy`` or a loopback host goes direct, else ``wss_proxy`` (for
    ``ws://``, ``ws_proxy``), ``https_proxy``, (``ws://`` only) ``http_proxy``,
    then ``all_proxy``; lower case wins over upper case.

Credentials
    ``client_id``/``client_secret`` parameters, a :class:`~rtms_proto.Credentials`,
    or ``ZM_RTMS_CLIENT`` / ``ZM_RTMS_SECRET``.

Backpressure
    Events wait in a queue bounded twice until the application takes them: in
    events (``max_events``, N, default 1,024) and in bytes (``max_queue_bytes``,
    B, default 64 MiB; a media event counts its payload plus 512 bytes, any
    other event 512 bytes).  The queue is *full* when either bound is reached.
    With ``Backpressure.BLOCK`` (the default) a socket is not read while the
    queue is full *and* some of its events came from that socket; it is read
    again as soon as either stops being true.  Sockets whose events are not
    waiting (usually the signaling socket, or an idle media socket) keep being
    read, so their keep-alives are answered while the application is busy;
    timers run and writes are flushed all along.
    The exact bound: the queue never holds more than ``N - 1 + S * R`` events
    read from sockets, where S is the number of the session's sockets (at most
    6) and R the number of events one read of ``read_size`` bytes can complete;
    nor more than B bytes plus what S such reads complete (one read completes
    at most ``read_size`` bytes of messages plus the rest of one message it
    finishes, up to the session's ``max_message_size``).
    Timers and commands may add the few events they cause (failures, reconnect
    notices, the final ``SessionEnded``) on top.
    With ``Backpressure.DROP_OLDEST_MEDIA`` sockets keep being read and the
    oldest audio/video/screen-share frames are dropped to make room, in events
    and in bytes (never any other event); ``Stream.dropped`` counts them and
    the log reports each burst.  ``Stream.queued`` and ``Stream.queued_bytes``
    say how much waits.
    A queue full of non-media events falls back to the ``BLOCK`` rule.
    A socket that stays paused longer than the session's keep-alive timeout
    (35 s by default) fails as the session's liveness rule says: an application
    that is slower than the stream for that long cannot be served without loss.

Write backpressure
    A peer that does not read what the client writes (its keep-alive answers,
    pongs, close frames) cannot make it buffer without limit: once a socket
    holds more than ``max_write_buffer`` bytes (1 MiB) that the kernel has not
    taken, that socket is not read until it is back under the bound (so a
    peer flooding pings or keep-alive requests gets no more answers queued);
    at most ``max_write_buffer`` plus the answers to one read of ``read_size``
    bytes wait per socket.  A socket over the bound for ``close_timeout``
    fails (a ``ConnectionFailed`` whose detail says the server stopped
    reading) and the session handles it as any socket failure.  Closing a
    socket flushes what it holds for at most ``close_timeout`` before
    aborting it, so leaving ``connect()`` or a ``SessionRunner`` never waits
    for a peer that does not read.

Leaving a stream
    ``connect()`` never ends the stream at Zoom by itself.  Leaving its block
    normally stops the session in order (close frames, bounded by
    ``options.close_timeout``).  Leaving it by an exception, a cancellation or
    a timeout (``asyncio.timeout``, ``trio.move_on_after``, ``KeyboardInterrupt``
    in the blocking driver) closes every socket at once, with no close frames.
    Either way Zoom is not asked to end the stream, and keeps it for a while:
    to end it for everyone, call ``stream.close_stream()`` and read on until
    ``SessionEnded``.

Audio
    ``audio_chunks(stream, seconds=...)`` (:mod:`rtms_transports.audio`) gives
    the stream's audio as fixed-duration PCM chunks, mixed or per speaker,
    for any of the three drivers; ``Stream.audio_format`` says what the audio is.

Logging
    Through :mod:`logging` under ``rtms_transports``, each line prefixed with the
    stream id and socket (also set as the ``rtms_stream_id`` and ``rtms_socket``
    record attributes).  Secrets (client secret, handshake signature, proxy
    password) and payloads are never logged.
"""

from ._common import (
    CA_ENV,
    CLIENT_ENV,
    SECRET_ENV,
    Backpressure,
    TransportOptions,
    WebhookSource,
    session_config,
)
from ._errors import (
    ConnectError,
    ConnectTimeout,
    PlaintextRefused,
    ProxyError,
    TLSError,
    TLSVerificationError,
    TransportError,
)
from ._proxy import ProxyConfig
from .audio import audio_chunks

__all__ = [
    "CA_ENV",
    "CLIENT_ENV",
    "SECRET_ENV",
    "Backpressure",
    "ConnectError",
    "ConnectTimeout",
    "PlaintextRefused",
    "ProxyConfig",
    "ProxyError",
    "TLSError",
    "TLSVerificationError",
    "TransportError",
    "TransportOptions",
    "WebhookSource",
    "audio_chunks",
    "session_config",
]
