"""The webhook receiver behind ``rtms-proto listen``: HTTP/1.1 over h11, on asyncio.

Two layers:

* :class:`WebhookReceiver` is pure: a whole request (method, target,
  headers, raw body) and the Unix time in, the reply and a
  :class:`StreamAction` (or None) out.  It verifies ``x-zm-signature`` over
  the raw body for *every* request, ``endpoint.url_validation`` included:
  answering an unsigned validation would let anyone have arbitrary text
  HMAC'ed with the webhook secret, which is exactly a webhook signature.
  Then it parses the body, answers URL validation, and feeds stream events
  to a :class:`~rtms_proto.webhooks.StreamTracker` (duplicates, failovers).
  Refused requests get 401 (not proven to come from Zoom) or 400 (bad
  content) and change nothing.
* :class:`WebhookServer` is the I/O: an asyncio protocol and an h11
  connection per client, every resource bounded (whole-request deadline,
  connection cap, head and body size caps: see the class), so that a client
  without credentials cannot keep real webhooks from being answered.  The
  reply is written before the action runs ("reply 200 at once"); an action
  that fails is logged, never silent.

Every decision is logged at INFO on ``rtms_app.webhook`` with its reason (a
refusal and why, a URL validation answered, a duplicate delivery ignored, a
stream started, failed over, interrupted or stopped): ``rtms-proto listen -v``
shows them.  Nothing here logs or returns a secret, a signature or a token,
and text from the request is logged through :func:`~.terminal.printable`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

import h11

from rtms_proto import DEFAULT_ALLOWED_HOSTS, WebhookError
from rtms_proto.webhooks import (
    Disposition,
    OtherWebhook,
    RtmsInterrupted,
    RtmsStarted,
    RtmsStopped,
    StreamTracker,
    UrlValidation,
    WebhookRejected,
    parse_webhook,
    url_validation_response,
    verify_webhook,
)

from .terminal import printable

__all__ = ["HttpReply", "StreamAction", "WebhookReceiver", "WebhookServer"]

LOG = logging.getLogger("rtms_app.webhook")


@dataclass(frozen=True, slots=True)
class HttpReply:
    """What to answer: status and a JSON body."""

    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamAction:
    """What a verified stream webhook asks the receiver to do.

    ``disposition`` is NEW_STREAM (start recording ``started``), FAILOVER
    (reconnect the live stream to ``started.server_url``), STOPPED or
    UNKNOWN_STOP (stop it, ``stopped`` says why) or INTERRUPTED (Zoom lost its
    signaling connection; the session reconnects by itself).
    """

    disposition: Disposition
    rtms_stream_id: str
    started: RtmsStarted | None = None
    stopped: RtmsStopped | None = None


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


_OK = HttpReply(200, _json({"status": "ok"}))


class WebhookReceiver:
    """Pure request handling (see the module docstring); not thread-safe."""

    def __init__(
        self,
        secret: str,
        *,
        allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS,
        tolerance: float = 300.0,
        tracker: StreamTracker | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the webhook secret must not be empty")
        self._secret = secret
        self.allowed_hosts = tuple(allowed_hosts)
        self.tolerance = tolerance
        self.tracker = tracker if tracker is not None else StreamTracker()
        self.rejected = 0

    def __repr__(self) -> str:
        return f"<WebhookReceiver hosts={self.allowed_hosts!r}>"

    def handle(
        self,
        method: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        now: float,
        *,
        peer: str | None = None,
    ) -> tuple[HttpReply, StreamAction | None]:
        """Answer one request; ``now`` is the Unix time in seconds, ``peer`` (optional)
        the client's address, for the log."""
        source = f"webhook from {printable(peer, 100)}" if peer else "webhook"
        if method.upper() != "POST":
            LOG.info("%s: 405: %s instead of POST", source, printable(method, 20))
            return HttpReply(405, _json({"error": "method_not_allowed"})), None
        try:
            verify_webhook(
                headers=_header_map(headers),
                raw_body=body,
                secret=self._secret,
                now=now,
                tolerance=self.tolerance,
            )
            event = parse_webhook(body, allowed_hosts=self.allowed_hosts)
        except WebhookRejected as exc:
            self.rejected += 1
            status = exc.kind.http_status
            why = str(exc)
            if exc.__cause__ is not None and str(exc.__cause__) not in why:
                why += f" ({exc.__cause__})"
            LOG.info("%s: refused %d %s", source, status, printable(why))
            return HttpReply(status, _json({"error": exc.kind.value})), None
        except WebhookError as exc:
            self.rejected += 1
            LOG.info("%s: refused 400 malformed: %s", source, printable(exc))
            return HttpReply(400, _json({"error": "bad_request"})), None
        if isinstance(event, UrlValidation):
            LOG.info("%s: endpoint.url_validation answered (signature verified)", source)
            return HttpReply(200, url_validation_response(event.plain_token, self._secret)), None
        disposition = self.tracker.observe(event)
        _log_disposition(source, event, disposition)
        if isinstance(event, RtmsStarted) and disposition in (
            Disposition.NEW_STREAM,
            Disposition.FAILOVER,
        ):
            return _OK, StreamAction(
                disposition=disposition, rtms_stream_id=event.rtms_stream_id, started=event
            )
        if isinstance(event, RtmsStopped) and disposition in (
            Disposition.STOPPED,
            Disposition.UNKNOWN_STOP,
        ):
            return _OK, StreamAction(
                disposition=disposition, rtms_stream_id=event.rtms_stream_id, stopped=event
            )
        if isinstance(event, RtmsInterrupted) and disposition is Disposition.INTERRUPTED:
            return _OK, StreamAction(disposition=disposition, rtms_stream_id=event.rtms_stream_id)
        return _OK, None


_SAID = {
    Disposition.NEW_STREAM: "a new stream: recording it",
    Disposition.DUPLICATE: "a duplicate delivery: ignored",
    Disposition.FAILOVER: "the stream moved to another server: following it",
    Disposition.STOPPED: "the stream ended: stopping its recording",
    Disposition.UNKNOWN_STOP: "a stop for a stream not live here",
    Disposition.INTERRUPTED: "Zoom lost the stream's signaling connection",
    Disposition.IGNORED: "nothing to do",
}


def _log_disposition(
    source: str,
    event: RtmsStarted | RtmsStopped | RtmsInterrupted | OtherWebhook,
    disposition: Disposition,
) -> None:
    sid = getattr(event, "rtms_stream_id", None)
    about = f" for stream {printable(sid, 100)}" if sid is not None else ""
    extra = ""
    if isinstance(event, RtmsStopped) and event.stop_reason is not None:
        reason = event.stop_reason
        extra = f" (stop reason {getattr(reason, 'name', reason)})"
    LOG.info(
        "%s: %s%s: %s%s",
        source,
        printable(event.event, 100),
        about,
        _SAID[disposition],
        extra,
    )


def _header_map(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name; a name repeated with another value is kept twice
    (once in upper case) so that verification sees and refuses the ambiguity."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key not in out:
            out[key] = value
        elif out[key] != value:
            out[key.upper()] = value
    return out


class WebhookServer:
    """Serves a :class:`WebhookReceiver` over HTTP/1.1 (h11) on asyncio, every resource bounded.

    ``on_action`` runs on the loop after the reply to its request was written;
    if it raises, the error is logged (the stream will not be recorded, and
    the log says why).  ``clock`` gives the Unix time for signature freshness.

    The bounds, each an option (the defaults suit Zoom's small JSON webhooks,
    which arrive whole within milliseconds):

    * ``request_timeout`` (10 s): a whole request, head and body, must have
      arrived this many seconds after the connection was accepted, or after
      the previous reply on a kept-alive connection.  The clock never restarts
      with a byte: a client that trickles is answered 408 and closed on time
      (an idle kept-alive connection is just closed).
    * ``max_connections`` (256): connections held at once.  One more makes
      room by closing the connection that has waited longest for its request
      (503): refusing the newcomer instead would let idle connections lock
      Zoom out for a whole timeout, while a real webhook, being quick, is
      never the oldest.  A refused or evicted connection costs one small write
      and a close; open connections never exceed ``max_connections``
      (an evicted one's socket is released on the next turn of the loop).
    * ``max_head`` (16 KiB): the request line and headers; no more is read
      before they end (431 beyond it).
    * ``max_body`` (64 KiB): a larger ``Content-Length`` is refused (413) from
      the head, before any of the body is read.  A body must come with a
      ``Content-Length`` (411 for chunked ones).
    * ``max_requests`` (100): requests answered on one kept-alive connection;
      the last answer says ``connection: close``.  With the deadline per
      request this bounds what one connection can cost, even one that
      pipelines requests and never reads the answers.

    A malformed request gets 400.  Every refusal closes the connection.  A
    client that does not read its replies is not read either once some 16 KiB
    of them wait (so they cannot pile up) and is closed at its deadline.

    ``on_get`` (optional) answers ``GET`` and ``HEAD`` requests by their
    target (health and metrics, see :mod:`.observability`); when it returns
    None the request goes to the receiver (405).  ``on_status`` is told the
    status of every answer and refusal (metrics).
    """

    def __init__(
        self,
        receiver: WebhookReceiver,
        on_action: Callable[[StreamAction], object],
        *,
        clock: Callable[[], float],
        request_timeout: float = 10.0,
        max_connections: int = 256,
        max_head: int = 16 * 1024,
        max_body: int = 64 * 1024,
        max_requests: int = 100,
        on_get: Callable[[str], HttpReply | None] | None = None,
        on_status: Callable[[int], object] | None = None,
    ) -> None:
        if not request_timeout > 0:
            raise ValueError("request_timeout must be a positive number of seconds")
        for name, value in (
            ("max_connections", max_connections),
            ("max_head", max_head),
            ("max_body", max_body),
            ("max_requests", max_requests),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int")
        self.receiver = receiver
        self.on_action = on_action
        self.clock = clock
        self.request_timeout = request_timeout
        self.max_connections = max_connections
        self.max_head = max_head
        self.max_body = max_body
        self.max_requests = max_requests
        self.on_get = on_get
        self.on_status = on_status
        self._server: asyncio.Server | None = None
        # Open connections, the one waiting longest for its request first.
        self._clients: dict[_Client, None] = {}
        self.port = 0

    @property
    def connections(self) -> int:
        """How many client connections are open now."""
        return len(self._clients)

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Client(self, loop), host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for client in list(self._clients):
                client.close(None)
            await self._server.wait_closed()
            self._server = None

    def _admit(self, client: _Client) -> None:
        while len(self._clients) >= self.max_connections:
            next(iter(self._clients)).close(_REFUSALS[503])
        self._clients[client] = None

    def _requeue(self, client: _Client) -> None:
        """``client`` starts waiting for a new request: it is the newest now."""
        if client in self._clients:
            del self._clients[client]
            self._clients[client] = None

    def _forget(self, client: _Client) -> None:
        self._clients.pop(client, None)

    def _act(self, action: StreamAction) -> None:
        try:
            self.on_action(action)
        except Exception as exc:  # the 200 is sent: whatever failed must be said
            LOG.error(
                "stream %r will not be recorded: its webhook was answered, then %s: %s",
                action.rtms_stream_id,
                type(exc).__name__,
                exc,
            )


def _raw_reply(status: int, error: str) -> bytes:
    """A whole closing response, built once: refusals cost one write, no parsing."""
    body = _json({"error": error})
    return (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


_REFUSALS = {
    status: _raw_reply(status, error)
    for status, error in [
        (400, "bad_http"),
        (408, "request_timeout"),
        (411, "length_required"),
        (413, "body_too_large"),
        (431, "head_too_large"),
        (501, "not_implemented"),
        (503, "too_many_connections"),
    ]
}


_REFUSAL_STATUS = {reply: status for status, reply in _REFUSALS.items()}

_SEND_BUFFER = 16 * 1024
"""Bytes of replies held for a client that does not read them, in the kernel and here."""


_READ_SIZE = 16 * 1024
"""The most one read takes from a socket."""


class _Client(asyncio.BufferedProtocol):
    """One HTTP connection: h11 fed no faster than the bounds allow.

    Reads go into a buffer of :data:`_READ_SIZE` bytes of its own, so what is
    held of a connection's input is bounded whatever the client sends.

    In the head of a request at most ``max_head`` bytes are ever handed to
    h11 (``_head_fed`` counts them, including what was left over from the
    previous request); in the body, never more than the body still needs, so
    nothing beyond one request is buffered.  ``_stash`` keeps received bytes
    not handed to h11 yet while reading is paused: when the client does not
    read its replies (``_paused``), and for one turn of the loop after each
    answered request (``_held``), so that a client pipelining requests gets
    one answered per turn, never the loop to itself.
    """

    def __init__(self, server: WebhookServer, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=server.max_head)
        self._timer: asyncio.TimerHandle | None = None
        self._request: h11.Request | None = None
        self._length = 0
        self._body = bytearray()
        self._head_fed = 0
        self._read = bytearray(_READ_SIZE)
        self._stash = b""
        self._paused = False
        self._held = False
        self._answered = 0
        self._closed = False
        self._peer: str | None = None

    # --- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self._peer = f"{peer[0]}:{peer[1]}"
        # Replies are small: little room for those a client leaves unread, in
        # the kernel and here, so that backpressure (pause_writing) comes soon.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        transport.set_write_buffer_limits(high=_SEND_BUFFER)
        self._server._admit(self)
        self._new_cycle()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._read

    def buffer_updated(self, nbytes: int) -> None:
        self._pump(bytes(self._read[:nbytes]))

    def eof_received(self) -> bool:
        if not self._closed:
            self._conn.receive_data(b"")
            self._pump(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._stop_timer()
        self._server._forget(self)

    def pause_writing(self) -> None:
        self._paused = True
        self._stop_reading()

    def resume_writing(self) -> None:
        self._paused = False
        self._go_on()

    def _stop_reading(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.pause_reading()

    def _go_on(self) -> None:
        """Read again, starting with the stash, unless still paused or held."""
        if self._closed or self._paused or self._held:
            return
        assert self._transport is not None
        self._transport.resume_reading()
        stash, self._stash = self._stash, b""
        self._pump(stash)

    def _release(self) -> None:
        self._held = False
        self._go_on()

    # --- the request cycle

    def _new_cycle(self) -> None:
        self._stop_timer()
        self._timer = self._loop.call_later(self._server.request_timeout, self._expire)
        self._server._requeue(self)
        self._request = None
        self._length = 0
        self._body = bytearray()
        self._head_fed = len(self._conn.trailing_data[0])

    def _expire(self) -> None:
        self._timer = None
        # Not one byte of a request yet (an idle or kept-alive connection): just closed.
        idle = self._request is None and self._head_fed == 0
        self.close(None if idle else _REFUSALS[408])

    def _pump(self, data: bytes) -> None:
        """Hand ``data`` to h11 within the bounds and act on every event it completes."""
        conn = self._conn
        while not self._closed:
            if self._paused or self._held:
                self._stash += data
                return
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                self.close(_REFUSALS.get(status, _REFUSALS[400]))
                return
            if event is h11.NEED_DATA:
                if not data:
                    return
                if self._request is None:
                    room = self._server.max_head - self._head_fed
                    if room <= 0:
                        self.close(_REFUSALS[431])
                        return
                else:  # never 0 here: h11 needs data only while the body is short
                    room = max(self._length - len(self._body), 1)
                piece, data = data[:room], data[room:]
                if self._request is None:
                    self._head_fed += len(piece)
                conn.receive_data(piece)
            elif isinstance(event, h11.Request):
                self._on_head(event)
            elif isinstance(event, h11.Data):
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._answer()
                if not self._closed and (data or conn.trailing_data[0]):
                    self._held = True
                    self._stop_reading()
                    self._loop.call_soon(self._release)
            else:  # ConnectionClosed (PAUSED cannot happen: every request is answered at once)
                self.close(None)

    def _on_head(self, request: h11.Request) -> None:
        length = 0
        for name, value in request.headers:
            if name == b"transfer-encoding":
                self.close(_REFUSALS[411])
                return
            if name == b"content-length":
                length = int(value)  # h11 checked it is digits, and one value
        if length > self._server.max_body:
            self.close(_REFUSALS[413])
            return
        self._request = request
        self._length = length
        if self._conn.they_are_waiting_for_100_continue:
            self._write(self._conn.send(h11.InformationalResponse(status_code=100, headers=[])))

    def _answer(self) -> None:
        request = self._request
        assert request is not None
        server = self._server
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
        method = request.method.decode("ascii", "replace")
        reply: HttpReply | None = None
        action: StreamAction | None = None
        if server.on_get is not None and method in ("GET", "HEAD"):
            reply = server.on_get(request.target.decode("ascii", "replace"))
        if reply is None:
            reply, action = server.receiver.handle(
                method, headers, bytes(self._body), server.clock(), peer=self._peer
            )
        if server.on_status is not None:
            server.on_status(reply.status)
        conn = self._conn
        reply_headers = [
            ("content-type", reply.content_type),
            ("content-length", str(len(reply.body))),
        ]
        if reply.status == 405:
            reply_headers.append(("allow", "POST"))
        self._answered += 1
        if self._answered >= server.max_requests:
            reply_headers.append(("connection", "close"))  # h11 then ends the connection
        phrase = HTTPStatus(reply.status).phrase.encode()
        data = conn.send(
            h11.Response(status_code=reply.status, headers=reply_headers, reason=phrase)
        )
        if request.method != b"HEAD":  # the answer to HEAD has the headers alone
            data += conn.send(h11.Data(data=reply.body))
        data += conn.send(h11.EndOfMessage())
        self._write(data)
        if action is not None:
            server._act(action)
        if conn.our_state is h11.MUST_CLOSE or self._closed:
            self.close(None)
            return
        conn.start_next_cycle()
        self._new_cycle()

    # --- output and the end

    def _write(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        transport.write(data)
        if transport.is_closing():  # the write failed: the connection is lost
            self._closed = True

    def close(self, final: bytes | None) -> None:
        """Close now, after ``final`` (a refusal) if it can go out at once.

        Never waits for a client to read: what the socket does not take at
        once is dropped with the connection.
        """
        if self._closed:
            return
        self._closed = True
        self._stop_timer()
        self._server._forget(self)
        transport = self._transport
        assert transport is not None
        if final is not None and self._server.on_status is not None:
            self._server.on_status(_REFUSAL_STATUS[final])
        if final is not None and not transport.get_write_buffer_size():
            transport.write(final)
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
