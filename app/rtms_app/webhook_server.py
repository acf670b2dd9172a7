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
* :class:`WebhookServer` is the I/O: asyncio streams and an h11 connection
  per client, bounded body size and read timeout.  The reply is written
  before the action runs ("reply 200 at once").

Nothing here logs or returns a secret or a signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import h11

from rtms_proto import DEFAULT_ALLOWED_HOSTS, WebhookError
from rtms_proto.webhooks import (
    Disposition,
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
    ) -> tuple[HttpReply, StreamAction | None]:
        """Answer one request; ``now`` is the Unix time in seconds."""
        if method.upper() != "POST":
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
            return HttpReply(exc.kind.http_status, _json({"error": exc.kind.value})), None
        except WebhookError:
            self.rejected += 1
            return HttpReply(400, _json({"error": "bad_request"})), None
        if isinstance(event, UrlValidation):
            return HttpReply(200, url_validation_response(event.plain_token, self._secret)), None
        disposition = self.tracker.observe(event)
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
    """Serves a :class:`WebhookReceiver` over HTTP/1.1 (h11) on asyncio.

    ``on_action`` runs on the loop after the reply to its request was written.
    ``clock`` gives the Unix time for signature freshness.
    """

    def __init__(
        self,
        receiver: WebhookReceiver,
        on_action: Callable[[StreamAction], object],
        *,
        clock: Callable[[], float],
        max_body: int = 1 << 20,
        timeout: float = 10.0,
    ) -> None:
        self.receiver = receiver
        self.on_action = on_action
        self.clock = clock
        self.max_body = max_body
        self.timeout = timeout
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._client, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, h11.ProtocolError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        while True:
            request: h11.Request | None = None
            body = bytearray()
            too_big = False
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError:
                    await self._send(writer, conn, HttpReply(400, _json({"error": "bad_http"})))
                    return
                if event is h11.NEED_DATA:
                    async with asyncio.timeout(self.timeout):
                        data = await reader.read(65536)
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Request):
                    request = event
                    length = _content_length(event.headers)
                    too_big = length is not None and length > self.max_body
                elif isinstance(event, h11.Data):
                    if len(body) + len(event.data) > self.max_body:
                        too_big = True
                    if not too_big:
                        body += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
                if too_big:
                    break
            if request is None or isinstance(event, h11.ConnectionClosed):
                return
            if too_big:
                reply = HttpReply(413, _json({"error": "body_too_large"}))
                await self._send(writer, conn, reply, close=True)
                return
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
            reply, action = self.receiver.handle(
                request.method.decode("ascii", "replace"), headers, bytes(body), self.clock()
            )
            await self._send(writer, conn, reply)
            if action is not None:
                self.on_action(action)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        conn: h11.Connection,
        reply: HttpReply,
        *,
        close: bool = False,
    ) -> None:
        headers = [
            ("content-type", reply.content_type),
            ("content-length", str(len(reply.body))),
        ]
        if reply.status == 405:
            headers.append(("allow", "POST"))
        if close:
            headers.append(("connection", "close"))
        try:
            data = conn.send(h11.Response(status_code=reply.status, headers=headers))
            data = (data or b"") + (conn.send(h11.Data(data=reply.body)) or b"")
            data += conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            return
        writer.write(data)
        await writer.drain()


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
