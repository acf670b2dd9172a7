"""What the three drivers share and that does no I/O: configuration, TLS, proxy,
queue, errors, logs (the drivers themselves: ``test_transport_drivers``)."""

from __future__ import annotations

import json
import logging
import ssl
from pathlib import Path

import pytest
from test_transport_helpers import (
    ALLOWED,
    webhook_body,
    write_ca,
)

from rtms_proto import (
    Credentials,
    InvalidConfig,
    Layout,
    MediaType,
    SocketId,
    SocketRole,
    WebhookError,
)
from rtms_proto import events as ev
from rtms_proto.webhooks import parse_webhook
from rtms_transports import (
    CA_ENV,
    CLIENT_ENV,
    SECRET_ENV,
    Backpressure,
    ConnectError,
    ConnectTimeout,
    ProxyConfig,
    ProxyError,
    TLSError,
    TLSVerificationError,
    TransportError,
    TransportOptions,
    session_config,
)
from rtms_transports._common import StreamLog, tls_setup
from rtms_transports._errors import as_transport_error, is_loopback
from rtms_transports._proxy import ProxyHandshake
from rtms_transports._queue import EVENT_COST, EventBuffer

BODY = webhook_body("wss://rtms-sjc1.zoom.us/signaling", "stream-1")
AUDIO = SocketId(2, SocketRole.AUDIO)
SIGNALING = SocketId(1, SocketRole.SIGNALING)
LOG = StreamLog(logging.getLogger("rtms_transports.test"), "stream-1")


def audio(n: int = 0) -> ev.AudioReceived:
    return ev.AudioReceived(data=b"x", timestamp=n)


# --------------------------------------------------------------------------- configuration


def test_session_config_from_every_form_of_the_webhook() -> None:
    creds = {"client_id": "id", "client_secret": "secret"}
    payload = json.loads(BODY)["payload"]
    started = parse_webhook(BODY)
    forms: list[object] = [BODY, BODY.decode(), json.loads(BODY), payload, started]
    configs = [session_config(f, **creds) for f in forms]  # type: ignore[arg-type]
    assert all(c == configs[0] for c in configs)
    config = configs[0]
    assert config.server_url == "wss://rtms-sjc1.zoom.us/signaling"
    assert config.stream.rtms_stream_id == "stream-1"
    assert config.stream.instance_id == "meeting=="
    assert config.credentials == Credentials(client_id="id", client_secret="secret")
    assert session_config(config) is config


def test_session_config_options_and_allowed_hosts() -> None:
    body = webhook_body("wss://127.0.0.1:1/signaling")
    with pytest.raises(WebhookError):  # not one of Zoom's hosts
        session_config(body, client_id="id", client_secret="secret")
    config = session_config(
        body,
        client_id="id",
        client_secret="secret",
        allowed_hosts=ALLOWED,
        media=MediaType.AUDIO,
        layout=Layout.UNIFIED,
        events=(),
        buffer_data=True,
    )
    assert config.media_options.allowed_hosts == ALLOWED
    assert config.signaling_options.allowed_hosts == ALLOWED
    assert config.layout is Layout.UNIFIED and config.media == MediaType.AUDIO
    assert config.events == () and config.buffer_data is True
    with pytest.raises(InvalidConfig, match="complete"):
        session_config(config, media=MediaType.AUDIO)


def test_session_config_refuses_what_is_not_rtms_started() -> None:
    stopped = json.dumps(
        {"event": "meeting.rtms_stopped", "payload": {"meeting_uuid": "m", "rtms_stream_id": "s"}}
    )
    with pytest.raises(InvalidConfig, match="expected an rtms_started"):
        session_config(stopped, client_id="id", client_secret="s")
    with pytest.raises(InvalidConfig, match="cannot make a stream from int"):
        session_config(42, client_id="id", client_secret="s")  # type: ignore[arg-type]


def test_credentials_from_parameters_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLIENT_ENV, "env-id")
    monkeypatch.setenv(SECRET_ENV, "env-secret")
    assert session_config(BODY).credentials == Credentials(
        client_id="env-id", client_secret="env-secret"
    )
    assert session_config(BODY, client_secret="param").credentials.client_secret == "param"
    explicit = Credentials(client_id="a", client_secret="b")
    assert session_config(BODY, credentials=explicit).credentials is explicit
    with pytest.raises(InvalidConfig, match="not both"):
        session_config(BODY, credentials=explicit, client_id="x")
    monkeypatch.delenv(SECRET_ENV)
    with pytest.raises(InvalidConfig, match=f"set {SECRET_ENV}") as info:
        session_config(BODY)
    assert "env-id" not in str(info.value)
    monkeypatch.delenv(CLIENT_ENV)
    with pytest.raises(InvalidConfig, match=f"set {CLIENT_ENV}"):
        session_config(BODY, client_secret="s")


def test_transport_options_are_validated_and_never_show_secrets() -> None:
    for bad in (
        {"connect_timeout": 0},
        {"close_timeout": -1.0},
        {"connect_timeout": True},
        {"max_events": 0},
        {"read_size": 10},
        {"backpressure": "block"},
        {"proxy": "https://p:1"},
        {"proxy": "http://:1"},
        {"proxy": "http://p:1/path"},
        {"proxy": "http://p:notaport"},
    ):
        with pytest.raises(InvalidConfig):
            TransportOptions(**bad)
    opts = TransportOptions(proxy="http://user:pa%24%24word@proxy.example:3128")
    assert "pa$$word" not in repr(opts) and "pa%24%24word" not in repr(opts)
    assert "proxy.example:3128" in repr(opts)
    proxy = opts.proxy_config
    assert proxy == ProxyConfig(
        host="proxy.example", port=3128, username="user", password="pa$$word"
    )
    assert "pa$$word" not in repr(proxy)
    assert ProxyConfig.from_url("http://p").port == 80
    with pytest.raises(InvalidConfig, match="verify"):
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        TransportOptions(ssl_context=insecure)


def test_tls_setup_trusts_what_it_is_told(tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    assert tls_setup(TransportOptions(), env={}).trust == "the system trust store"
    assert tls_setup(TransportOptions(), env={CA_ENV: ca}).trust == f"CA file {ca!r}"
    assert tls_setup(TransportOptions(ca_file=ca), env={CA_ENV: "/nope"}).trust == f"CA file {ca!r}"
    setup = tls_setup(TransportOptions(ca_file=ca))
    assert setup.context.verify_mode is ssl.CERT_REQUIRED and setup.context.check_hostname
    given = ssl.create_default_context()
    assert tls_setup(TransportOptions(ssl_context=given)).context is given
    with pytest.raises(InvalidConfig, match="cannot load the CA file"):
        tls_setup(TransportOptions(), env={CA_ENV: str(tmp_path / "missing.pem")})


def test_plaintext_only_for_loopback() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("::1")
    assert not is_loopback("rtms.zoom.us") and not is_loopback("10.0.0.1")


# --------------------------------------------------------------------------- proxy handshake


def test_proxy_handshake_request_and_answers() -> None:
    proxy = ProxyConfig.from_url("http://u:p@proxy:8080")
    handshake = ProxyHandshake(proxy, "rtms.zoom.us", 443)
    assert handshake.request.startswith(b"CONNECT rtms.zoom.us:443 HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic dTpw\r\n" in handshake.request
    assert not handshake.receive_data(b"HTTP/1.1 200 Connection")
    assert handshake.receive_data(b" established\r\nVia: x\r\n\r\n")
    v6 = ProxyHandshake(ProxyConfig.from_url("http://proxy"), "::1", 443)
    assert v6.request.startswith(b"CONNECT [::1]:443 ")
    assert b"Proxy-Authorization" not in v6.request


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "407.*authentication failed"),
        (b"HTTP/1.1 403 Forbidden\r\n\r\n", "refused CONNECT rtms.zoom.us:443: HTTP 403"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP"),
        (b"HTTP/1.1 200 OK\r\n\r\nearly", "sent data before"),
        (b"", "closed the connection before answering"),
    ],
)
def test_proxy_handshake_failures(answer: bytes, message: str) -> None:
    handshake = ProxyHandshake(
        ProxyConfig.from_url("http://u:secret@proxy:8080"), "rtms.zoom.us", 443
    )
    with pytest.raises(ProxyError, match=message) as info:
        handshake.receive_data(answer)
    assert "secret" not in str(info.value)
    assert isinstance(info.value, TransportError)


def test_proxy_407_without_credentials_says_how() -> None:
    handshake = ProxyHandshake(ProxyConfig.from_url("http://proxy:8080"), "h", 443)
    with pytest.raises(ProxyError, match="give user:password"):
        handshake.receive_data(b"HTTP/1.1 407 Nope\r\n\r\n")


# --------------------------------------------------------------------------- the queue


def take(buffer: EventBuffer) -> tuple[ev.Event | None, bool]:
    """Pop as a driver does: the event, and whether a socket may have become readable."""
    event = buffer.pop()
    unblocked, buffer.unblocked = buffer.unblocked, False
    return event, unblocked


def test_block_pauses_only_sockets_whose_events_wait() -> None:
    buffer = EventBuffer(3, Backpressure.BLOCK, LOG)
    for n in range(3):
        buffer.push(audio(n), AUDIO)
    assert not buffer.reading_allowed(AUDIO)  # full, and audio's events wait
    assert buffer.reading_allowed(SIGNALING)  # nothing of signaling waits: keep reading it
    buffer.push(ev.FirstPacketReceived(timestamp=1), SIGNALING)
    assert not buffer.reading_allowed(SIGNALING)
    notice = ev.ReconnectStarted(scope=ev.ReconnectScope.MEDIA, media_type=None, attempt=1)
    buffer.push(notice, None)
    assert len(buffer) == 5  # nothing is ever dropped under BLOCK
    assert take(buffer) == (audio(0), False)
    assert take(buffer) == (audio(1), False)
    assert take(buffer) == (audio(2), True)  # room again
    assert buffer.reading_allowed(AUDIO) and buffer.reading_allowed(SIGNALING)
    assert isinstance(buffer.pop(), ev.FirstPacketReceived)
    assert buffer.pop() == notice
    assert buffer.pop() is None and buffer.dropped == 0


def test_socket_read_again_when_its_last_event_is_taken() -> None:
    buffer = EventBuffer(2, Backpressure.BLOCK, LOG)
    buffer.push(ev.FirstPacketReceived(timestamp=1), SIGNALING)
    buffer.push(audio(), AUDIO)
    buffer.push(audio(), AUDIO)
    assert not buffer.reading_allowed(SIGNALING)
    assert take(buffer)[1] and buffer.reading_allowed(SIGNALING)
    assert not buffer.reading_allowed(AUDIO)


def test_drop_oldest_media_drops_only_media_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "rtms_transports")
    buffer = EventBuffer(3, Backpressure.DROP_OLDEST_MEDIA, LOG)
    transcript = ev.TranscriptReceived(text="hello")
    buffer.push(transcript, AUDIO)
    for n in range(4):
        buffer.push(audio(n), AUDIO)
    assert buffer.reading_allowed(AUDIO)  # never pauses while media can be dropped
    assert buffer.dropped == 2 and len(buffer) == 3
    assert [buffer.pop(), buffer.pop(), buffer.pop()] == [transcript, audio(2), audio(3)]
    assert "dropping the oldest media frames" in caplog.text
    assert "2 media frames were dropped (2 in all)" in caplog.text
    # Full of non-media events: BLOCK's rule, nothing dropped.
    for n in range(4):
        buffer.push(ev.TranscriptReceived(text=str(n)), AUDIO)
    assert len(buffer) == 4 and buffer.dropped == 2 and not buffer.reading_allowed(AUDIO)


def test_block_bounds_the_queue_in_bytes_as_in_events() -> None:
    """Three 1000-byte frames fill a 3000-byte queue long before its 100 events: the
    same rule applies (audio's socket paused, signaling's still read)."""
    frame = ev.AudioReceived(data=b"x" * 1000)
    buffer = EventBuffer(100, Backpressure.BLOCK, LOG, max_bytes=3 * (1000 + EVENT_COST))
    for _ in range(2):
        buffer.push(frame, AUDIO)
    assert buffer.reading_allowed(AUDIO) and buffer.bytes == 2 * (1000 + EVENT_COST)
    buffer.push(frame, AUDIO)
    assert not buffer.reading_allowed(AUDIO) and buffer.reading_allowed(SIGNALING)
    buffer.push(ev.FirstPacketReceived(timestamp=1), SIGNALING)  # counts EVENT_COST
    assert buffer.bytes == 3 * (1000 + EVENT_COST) + EVENT_COST
    assert take(buffer) == (frame, True)  # under the bound: room again
    assert buffer.reading_allowed(AUDIO)
    assert take(buffer) == (frame, False)
    buffer.pop()
    buffer.pop()
    assert buffer.bytes == 0 and len(buffer) == 0


def test_drop_oldest_media_keeps_the_bytes_under_the_bound() -> None:
    big = ev.AudioReceived(data=b"x" * 4000)
    buffer = EventBuffer(100, Backpressure.DROP_OLDEST_MEDIA, LOG, max_bytes=10_000)
    for _ in range(5):
        buffer.push(big, AUDIO)
        assert buffer.bytes <= 10_000 and buffer.reading_allowed(AUDIO)
    assert buffer.dropped == 3 and len(buffer) == 2
    # A frame larger than the bound alone still goes in (it is never its own victim).
    buffer.discard()
    alone = EventBuffer(100, Backpressure.DROP_OLDEST_MEDIA, LOG, max_bytes=1024)
    alone.push(big, AUDIO)
    assert len(alone) == 1 and alone.dropped == 0 and alone.reading_allowed(AUDIO)


def test_discard_when_the_application_is_gone() -> None:
    buffer = EventBuffer(1, Backpressure.BLOCK, LOG)
    buffer.push(audio(), AUDIO)
    buffer.push(audio(), AUDIO)
    buffer.discard()
    buffer.push(audio(), AUDIO)
    assert len(buffer) == 0 and buffer.reading_allowed(AUDIO) and buffer.pop() is None


# --------------------------------------------------------------------------- errors and logs


def test_errors_name_what_failed() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "unable to get local issuer certificate"
    wrapped = RuntimeError("broken")
    wrapped.__cause__ = verify
    for exc in (verify, wrapped, ExceptionGroup("g", [verify])):
        error = as_transport_error(exc, host="h", port=1, trust="CA file 'x'")
        assert isinstance(error, TLSVerificationError)
        assert str(error) == (
            "TLS certificate verification failed for h:1: unable to get local issuer"
            " certificate (trusted: CA file 'x')"
        )
    assert isinstance(as_transport_error(ssl.SSLError(1, "x"), host="h", port=1), TLSError)
    timeout = as_transport_error(TimeoutError(), host="h", port=1, timeout=2.5)
    assert isinstance(timeout, ConnectTimeout)
    assert str(timeout) == "connecting to h:1 timed out after 2.5 s"
    refused = as_transport_error(
        ConnectionRefusedError(111, "Connection refused"), host="h", port=1
    )
    assert type(refused) is ConnectError
    assert str(refused) == "cannot connect to h:1: Connection refused"
    lost = as_transport_error(ConnectionResetError(104, "reset"), host="h", port=1, opened=True)
    assert type(lost) is TransportError and str(lost) == "connection to h:1 lost: reset"
    assert str(as_transport_error(None, host="h", port=1, opened=True)).endswith("lost: closed")
    assert as_transport_error(lost, host="x", port=2) is lost
    odd = as_transport_error(ValueError("odd"), host="h", port=1)
    assert str(odd) == "cannot connect to h:1: ValueError: odd"


def test_stream_log_prefixes_and_tags(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "rtms_transports")
    LOG.for_socket(AUDIO).info("hello %s", "world")
    record = caplog.records[-1]
    assert record.getMessage() == "[stream-1 audio#2] hello world"
    assert record.rtms_stream_id == "stream-1"  # type: ignore[attr-defined]
    assert record.rtms_socket == "audio#2"  # type: ignore[attr-defined]
    LOG.info("whole stream")
    assert caplog.records[-1].getMessage() == "[stream-1] whole stream"
