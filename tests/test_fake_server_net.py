"""The fake server on real loopback sockets: TLS, threads, asyncio, webhooks, CLI.

Every test here uses 127.0.0.1 only and bounded timeouts of a few seconds.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from rtms_conformance.cli import fake_server_main
from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import ServerThread, post_webhook, serve
from rtms_conformance.server import ServerConfig, StreamSpec
from rtms_conformance.tls import make_test_ca
from rtms_proto import (
    ConnectionOptions,
    Credentials,
    Session,
    SessionConfig,
    StreamIdentity,
    handshake_signature,
)
from rtms_proto import events as ev
from rtms_proto.actions import CloseSocket, OpenSocket, SendBytes, SocketId
from rtms_proto.enums import MediaType, StopReason
from rtms_proto.webhooks import RtmsStarted, RtmsStopped, parse_webhook, verify_webhook

CLIENT_ID = "net-client-id"
SECRET = "net-client-secret"
WEBHOOK_SECRET = "net-webhook-secret"
UUID = "net-meeting-uuid=="
SID = "net-stream-1"


def config() -> ServerConfig:
    return ServerConfig(client_id=CLIENT_ID, client_secret=SECRET)


class BlockingDriver:
    """A minimal blocking-socket driver for rtms_proto's Session (test only)."""

    def __init__(self, session: Session, context: ssl.SSLContext | None) -> None:
        self.session = session
        self.context = context
        self.events: list[object] = []
        self.socks: dict[SocketId, socket.socket] = {}
        self.selector = selectors.DefaultSelector()
        session.start(now=time.monotonic())

    def close(self) -> None:
        for s in self.socks.values():
            s.close()
        self.selector.close()

    def _perform(self) -> None:
        session = self.session
        outputs = session.drain()
        while outputs:
            for out in outputs:
                if isinstance(out, OpenSocket):
                    raw = socket.create_connection((out.host, out.port), timeout=2)
                    s = (
                        self.context.wrap_socket(raw, server_hostname=out.host)
                        if out.secure and self.context is not None
                        else raw
                    )
                    self.socks[out.sock] = s
                    self.selector.register(s, selectors.EVENT_READ, out.sock)
                    session.socket_opened(out.sock, now=time.monotonic())
                elif isinstance(out, SendBytes):
                    if out.sock in self.socks:
                        self.socks[out.sock].sendall(out.data)
                elif isinstance(out, CloseSocket):
                    closed = self.socks.pop(out.sock, None)
                    if closed is not None:
                        self.selector.unregister(closed)
                        closed.close()
                else:
                    self.events.append(out)
            outputs = session.drain()

    def run_until(self, until: Callable[[list[object]], bool], timeout: float = 3.0) -> None:
        session = self.session
        end = time.monotonic() + timeout
        while True:
            self._perform()
            if until(self.events):
                return
            if time.monotonic() > end:
                raise TimeoutError(f"gave up; last events: {self.events[-5:]}")
            deadline = session.next_deadline()
            wait = 0.05 if deadline is None else max(0.0, min(0.05, deadline - time.monotonic()))
            for key, _ in self.selector.select(wait):
                sock_id: SocketId = key.data
                s = self.socks[sock_id]
                try:
                    data = s.recv(1 << 20)
                    while isinstance(s, ssl.SSLSocket) and s.pending():
                        data += s.recv(1 << 20)
                except (BlockingIOError, ssl.SSLWantReadError):
                    continue
                except OSError as exc:
                    self.selector.unregister(s)
                    session.socket_failed(sock_id, str(exc), now=time.monotonic())
                    continue
                if data:
                    session.receive_data(sock_id, data, now=time.monotonic())
                else:
                    self.selector.unregister(s)
                    session.receive_eof(sock_id, now=time.monotonic())
            session.handle_timer(now=time.monotonic())


def test_tls_session_against_a_server_thread() -> None:
    tls = make_test_ca()
    with ServerThread(config(), ssl_context=tls.server_context, url_host="localhost") as server:
        assert server.base_url == f"wss://localhost:{server.port}"
        info = server.add_stream(StreamSpec(meeting_uuid=UUID, rtms_stream_id=SID))
        started = parse_webhook(server.rtms_started_body(info), allowed_hosts=("localhost",))
        assert isinstance(started, RtmsStarted) and started.server_url.secure
        options = ConnectionOptions(allowed_hosts=("localhost",))
        session = Session(
            SessionConfig(
                stream=StreamIdentity(instance_id=UUID, rtms_stream_id=SID),
                server_url=started.server_url.url,
                credentials=Credentials(client_id=CLIENT_ID, client_secret=SECRET),
                media=MediaType.AUDIO,
                signaling_options=options,
                media_options=options,
            ),
            jitter=lambda: 0.5,
        )
        driver = BlockingDriver(session, tls.client_context())
        try:
            driver.run_until(lambda evs: sum(isinstance(e, ev.AudioReceived) for e in evs) >= 10)
            first = next(e for e in driver.events if isinstance(e, ev.AudioReceived))
            assert first.timestamp == info.media_epoch_ms and len(first.data) == 640
            session.close_stream(now=time.monotonic())
            driver.run_until(lambda evs: any(isinstance(e, ev.SessionEnded) for e in evs))
        finally:
            driver.close()
        assert server.wait_for(lambda core: core.status(SID).ended, timeout=2.0)
        assert server.status(info).stop_reason == StopReason.RECEIVER_REQUEST_CLOSE


def test_untrusted_certificate_is_refused() -> None:
    tls = make_test_ca()
    other = make_test_ca()
    with ServerThread(config(), ssl_context=tls.server_context) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=2)
        with raw, pytest.raises(ssl.SSLCertVerificationError):
            other.client_context().wrap_socket(raw, server_hostname="127.0.0.1")


def signaling_hello() -> dict[str, object]:
    """A signaling handshake request, as a third-party client writes it by hand."""
    signature = handshake_signature(
        client_id=CLIENT_ID, client_secret=SECRET, instance_id=UUID, rtms_stream_id=SID
    )
    return {"msg_type": 1, "meeting_uuid": UUID, "rtms_stream_id": SID, "signature": signature}


def test_asyncio_serve_with_a_third_party_websocket_client() -> None:
    from websockets.asyncio.client import connect

    async def main() -> None:
        async with serve(config()) as running:
            info = running.add_stream(StreamSpec(meeting_uuid=UUID, rtms_stream_id=SID))
            assert running.base_url == f"ws://127.0.0.1:{running.port}"
            hello = signaling_hello()
            async with asyncio.timeout(3):
                async with connect(info.signaling_url) as sig:
                    await sig.send(json.dumps(hello))
                    answer = json.loads(await sig.recv())
                    assert answer["status_code"] == 0
                    url = answer["media_server"]["server_urls"]["transcript"]
                    async with connect(url) as media:
                        await media.send(json.dumps({**hello, "msg_type": 3, "media_type": 8}))
                        assert json.loads(await media.recv())["status_code"] == 0
                        await sig.send(json.dumps({"msg_type": 7, "rtms_stream_id": SID}))
                        assert await running.wait_for(
                            lambda core: bool(core.status(SID).media_released), timeout=1
                        )
                    # The media socket closed: the server tells signaling which one.
                    while True:
                        event = json.loads(await sig.recv())
                        if event["msg_type"] == 6 and event["event"]["event_type"] == 7:
                            break
                    assert event["event"]["media_type"] == 8

    asyncio.run(main())


def test_a_client_reset_mid_burst_is_not_logged_per_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A TLS transport takes writes until the loss reaches it, and asyncio warns on each
    one from the fifth on; the driver writes once per connection per flush."""
    from websockets.asyncio.client import connect

    tls = make_test_ca()

    async def main() -> None:
        async with serve(config(), ssl_context=tls.server_context, url_host="localhost") as running:
            info = running.add_stream(StreamSpec(meeting_uuid=UUID, rtms_stream_id=SID))
            hello = signaling_hello()
            context = tls.client_context()
            async with asyncio.timeout(5), connect(info.signaling_url, ssl=context) as sig:
                await sig.send(json.dumps(hello))
                answer = json.loads(await sig.recv())
                media = await connect(answer["media_server"]["server_urls"]["audio"], ssl=context)
                await media.send(json.dumps({**hello, "msg_type": 3, "media_type": 1}))
                assert json.loads(await media.recv())["status_code"] == 0
                await sig.send(json.dumps({"msg_type": 7, "rtms_stream_id": SID}))
                await media.recv()  # audio flows
                raw = media.transport.get_extra_info("socket")
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                media.transport.abort()  # a reset, not a close
                await asyncio.sleep(0)  # the reset goes out
                time.sleep(0.3)  # the loop lags: 15 audio packets are due at once
                assert await running.wait_for(
                    lambda core: not core.status(SID).media_connected, timeout=2
                )

    caplog.set_level(logging.WARNING, logger="asyncio")
    asyncio.run(main())
    lost = [
        r
        for r in caplog.records
        if r.name == "asyncio"
        and r.getMessage() in ("socket.send() raised exception.", "SSL connection is closed")
    ]
    assert len(lost) <= 1


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/zoom/webhook", received
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(2)


def test_post_webhook_signs_the_raw_body(
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, received = receiver
    body = b'{"event":"meeting.rtms_started","payload":{}}'
    assert post_webhook(url, body, WEBHOOK_SECRET, timestamp=1_700_000_000) == 200
    headers, got = received[0]
    assert got == body
    verify_webhook(headers=headers, raw_body=got, secret=WEBHOOK_SECRET, now=1_700_000_100)


def test_post_webhook_only_to_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        post_webhook("http://example.com/hook", b"{}", WEBHOOK_SECRET)
    with pytest.raises(ValueError, match="http"):
        post_webhook("ftp://127.0.0.1/hook", b"{}", WEBHOOK_SECRET)


def test_server_posts_the_stop_webhook(
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, received = receiver
    with ServerThread(config(), webhook_url=url, webhook_secret=WEBHOOK_SECRET) as server:
        info = server.add_stream(StreamSpec(meeting_uuid=UUID, rtms_stream_id=SID))
        server.end_stream(info, StopReason.HOST_TRIGGERED)
        end = time.monotonic() + 3
        while not received and time.monotonic() < end:
            time.sleep(0.01)
    headers, body = received[0]
    verify_webhook(headers=headers, raw_body=body, secret=WEBHOOK_SECRET, now=time.time())
    stopped = parse_webhook(body)
    assert isinstance(stopped, RtmsStopped) and stopped.stop_reason == StopReason.HOST_TRIGGERED


def test_cli_writes_the_payload_and_a_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "started.json"
    argv = ["--client-id", CLIENT_ID, "--client-secret", SECRET, "--tls", "--duration", "0.3"]
    assert fake_server_main([*argv, "--payload-out", str(out)]) == 0
    started = parse_webhook(out.read_bytes(), allowed_hosts=("127.0.0.1",))
    assert isinstance(started, RtmsStarted) and started.server_url.url.startswith(
        "wss://127.0.0.1:"
    )
    ca = Path(str(out) + ".ca.pem")
    assert ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(ca) in captured.err
    assert SECRET not in captured.err


def test_cli_prints_the_payload(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZM_RTMS_SECRET", SECRET)
    assert (
        fake_server_main(["--client-id", CLIENT_ID, "--duration", "0.1", "--rtms-stream-id", SID])
        == 0
    )
    captured = capsys.readouterr()
    body = json.loads(captured.out)
    assert body["event"] == "meeting.rtms_started"
    assert body["payload"]["rtms_stream_id"] == SID
    assert body["payload"]["server_urls"].startswith("ws://127.0.0.1:")
    assert SECRET not in captured.out + captured.err


def test_cli_argument_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZM_RTMS_SECRET", raising=False)
    assert fake_server_main(["--client-id", CLIENT_ID]) == 2
    assert (
        fake_server_main(
            [
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                SECRET,
                "--webhook-url",
                "http://127.0.0.1:1/",
            ]
        )
        == 2
    )


def test_meeting_duration_over_real_sockets() -> None:
    with ServerThread(config()) as server:
        info = server.add_stream(
            StreamSpec(meeting_uuid=UUID, rtms_stream_id=SID, meeting=MeetingSpec(duration=0.2))
        )
        assert server.wait_for(lambda core: core.status(info).ended, timeout=2.0)
        assert server.status(info).stop_reason == StopReason.MEETING_ENDED
