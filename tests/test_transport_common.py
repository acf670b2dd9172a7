"""What the three drivers share: configuration, TLS, proxy, queue, errors, logs
(I/O-free), and the same behaviour from each driver against the fake server."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from test_transport_helpers import (
    ALLOWED,
    CLIENT_ID,
    CLIENT_SECRET,
    DRIVERS,
    ConnectProxy,
    add_stream,
    closed_port,
    fake_server,
    fd_count,
    of,
    options,
    other_tls,
    run_stream,
    silent_listener,
    wait_until,
    webhook_body,
    write_ca,
)

from rtms_conformance.faults import RejectHandshake
from rtms_proto import (
    AudioParams,
    ConnectionClosed,
    Credentials,
    InvalidConfig,
    Layout,
    MediaType,
    RemoteProtocolError,
    SessionConfig,
    SocketId,
    SocketRole,
    WebhookError,
    handshake_signature,
)
from rtms_proto import events as ev
from rtms_proto.enums import FailureReason, StatusCode, StopReason
from rtms_proto.webhooks import parse_webhook
from rtms_transports import (
    CA_ENV,
    CLIENT_ENV,
    SECRET_ENV,
    Backpressure,
    ConnectError,
    ConnectTimeout,
    PlaintextRefused,
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
from rtms_transports._queue import EventBuffer

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
        {"proxy": "socks5://p:1"},
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
    body = webhook_body("ws://rtms-sjc1.zoom.us/signaling")
    for driver in DRIVERS:
        with pytest.raises(PlaintextRefused, match="refusing plain ws://"):
            run_stream(driver, body, client_id="id", client_secret="secret")


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


# --------------------------------------------------------------------------- every driver, alike


@pytest.mark.parametrize("driver", DRIVERS)
def test_happy_path_over_tls_nothing_lost(driver: str, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(server, f"happy-{driver}", duration=1.0)
        events = run_stream(
            driver,
            server.rtms_started_body(info),
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            allowed_hosts=ALLOWED,
            options=options(ca),
        )
        status = server.status(info)
        audio_events = of(events, ev.AudioReceived)
        first, last = audio_events[0].timestamp, audio_events[-1].timestamp
        expected = server.call(
            lambda r: r.server.expected_audio(info, AudioParams(), first, last + 20)
        )
    assert isinstance(events[-1], ev.SessionEnded)
    assert events[-1].why is ev.EndReason.STREAM_TERMINATED
    assert events[-1].stop_reason == StopReason.MEETING_ENDED
    assert isinstance(events[0], ev.SignalingConnected)
    assert len(of(events, ev.MediaConnected)) == 2
    assert len(audio_events) == status.sent[14] >= 45
    assert [a.timestamp for a in audio_events] == list(range(first, last + 1, 20))
    assert b"".join(a.data for a in audio_events) == expected
    assert len(of(events, ev.TranscriptReceived)) == status.sent[17] >= 1
    assert not of(events, ev.ConnectionFailed)


@pytest.mark.parametrize("driver", DRIVERS)
def test_environment_credentials_and_ca_and_no_secret_in_logs(
    driver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(CLIENT_ENV, CLIENT_ID)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setenv(CA_ENV, write_ca(tmp_path))
    caplog.set_level(logging.DEBUG)
    with fake_server() as server:
        info = add_stream(server, f"env-{driver}", duration=None)
        events = run_stream(
            driver,
            server.rtms_started_body(info),
            allowed_hosts=ALLOWED,
            script=lambda stream: stream.close_stream(),
        )
    assert isinstance(events[-1], ev.SessionEnded)
    assert events[-1].why is ev.EndReason.CLOSED_BY_APP
    signature = handshake_signature(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        instance_id=info.instance_id,
        rtms_stream_id=info.rtms_stream_id,
    )
    assert f"[env-{driver} signaling#1] connected to 127.0.0.1:" in caplog.text
    assert CLIENT_SECRET not in caplog.text and signature not in caplog.text


@pytest.mark.parametrize("driver", DRIVERS)
def test_wrong_ca_is_a_clear_tls_verification_error(driver: str, tmp_path: Path) -> None:
    ca = write_ca(tmp_path, other_tls())
    with fake_server() as server:
        info = add_stream(server, f"wrong-ca-{driver}")
        with pytest.raises(TLSVerificationError) as raised:
            run_stream(
                driver,
                server.rtms_started_body(info),
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                allowed_hosts=ALLOWED,
                options=options(ca),
            )
        port = server.port
    assert str(raised.value).startswith(
        f"TLS certificate verification failed for 127.0.0.1:{port}: "
    )
    assert f"(trusted: CA file {ca!r})" in str(raised.value)
    assert raised.value.host == "127.0.0.1" and raised.value.port == port


@pytest.mark.parametrize("driver", DRIVERS)
def test_connect_timeout_and_refused(driver: str, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    before = fd_count()
    with silent_listener() as port:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout, match=f"127.0.0.1:{port} timed out after 0.3 s"):
            run_stream(
                driver,
                webhook_body(f"wss://127.0.0.1:{port}/signaling"),
                client_id="id",
                client_secret="secret",
                allowed_hosts=ALLOWED,
                options=options(ca, connect_timeout=0.3),
            )
        assert time.monotonic() - started < 1.5
    port = closed_port()
    with pytest.raises(ConnectError, match=f"cannot connect to 127.0.0.1:{port}"):
        run_stream(
            driver,
            webhook_body(f"wss://127.0.0.1:{port}/signaling"),
            client_id="id",
            client_secret="secret",
            allowed_hosts=ALLOWED,
            options=options(ca),
        )
    assert fd_count() == before


@pytest.mark.parametrize(
    ("read_all", "why"),
    [
        (True, "the server closed the connection during the TLS handshake"),
        (False, "Connection reset by peer"),  # closed with the ClientHello unread: a reset
    ],
    ids=["end", "reset"],
)
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_server_hanging_up_during_the_tls_handshake(
    driver: str, read_all: bool, why: str, tmp_path: Path
) -> None:
    """The same error, word for word, from every driver, and nothing left open."""
    ca = write_ca(tmp_path)
    before = fd_count()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                if read_all:
                    conn.settimeout(5.0)
                    hello = conn.recv(65536)
                    length = 5 + int.from_bytes(hello[3:5], "big")  # the record's size
                    while len(hello) < length:
                        hello += conn.recv(65536)
                else:
                    conn.recv(1)

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        with pytest.raises(ConnectError) as raised:
            run_stream(
                driver,
                webhook_body(f"wss://127.0.0.1:{port}/signaling"),
                client_id="id",
                client_secret="secret",
                allowed_hosts=ALLOWED,
                options=options(ca, connect_timeout=5.0),
            )
    finally:
        listener.close()
        thread.join(5)
    assert str(raised.value) == f"cannot connect to 127.0.0.1:{port}: {why}"
    assert (raised.value.host, raised.value.port) == ("127.0.0.1", port)
    assert fd_count() == before


@pytest.mark.parametrize("driver", DRIVERS)
def test_through_an_http_connect_proxy(driver: str, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server, ConnectProxy(user="proxy-user", password="proxy-pass") as proxy:
        info = add_stream(server, f"proxy-{driver}", duration=None)
        body = server.rtms_started_body(info)
        events = run_stream(
            driver,
            body,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            allowed_hosts=ALLOWED,
            options=options(ca, proxy=proxy.url("proxy-user", "proxy-pass")),
            stop=lambda e: isinstance(e, ev.TranscriptReceived),
        )
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"] * 3
        with pytest.raises(ProxyError, match="407") as raised:
            run_stream(
                driver,
                body,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                allowed_hosts=ALLOWED,
                options=options(ca, proxy=proxy.url("proxy-user", "wrong-pass")),
            )
        assert "wrong-pass" not in str(raised.value) and proxy.refused == 1
    assert len(of(events, ev.MediaConnected)) == 2 and of(events, ev.AudioReceived)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_rejected_handshake_is_raised_by_connect(driver: str, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    with fake_server() as server:
        info = add_stream(
            server,
            f"rejected-{driver}",
            faults=(RejectHandshake(status=int(StatusCode.INVALID_SIGNATURE)),),
        )
        with pytest.raises(RemoteProtocolError) as raised:
            run_stream(
                driver,
                server.rtms_started_body(info),
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                allowed_hosts=ALLOWED,
                options=options(ca),
            )
    assert raised.value.reason is FailureReason.AUTHENTICATION_FAILED


@pytest.mark.parametrize("driver", DRIVERS)
def test_commands_and_leaving_the_block_early(driver: str, tmp_path: Path) -> None:
    ca = write_ca(tmp_path)
    kept: list[object] = []

    def script(stream: object) -> None:
        kept.append(stream)
        stream.subscribe_events([2])  # type: ignore[attr-defined]
        stream.request_stream_state()  # type: ignore[attr-defined]

    with fake_server() as server:
        info = add_stream(server, f"early-{driver}", duration=None)
        events = run_stream(
            driver,
            server.rtms_started_body(info),
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            allowed_hosts=ALLOWED,
            options=options(ca),
            script=script,
            stop=lambda e: isinstance(e, ev.StreamStateReported),
        )
        assert wait_until(lambda: not server.status(info).signaling_connected)
        assert 2 in server.status(info).subscribed_events
    stream = kept[0]
    assert stream.ended is not None  # type: ignore[attr-defined]
    assert stream.ended.why is ev.EndReason.STOPPED_LOCALLY  # type: ignore[attr-defined]
    assert stream.rtms_stream_id == f"early-{driver}"  # type: ignore[attr-defined]
    assert isinstance(stream.config, SessionConfig)  # type: ignore[attr-defined]
    with pytest.raises(ConnectionClosed):
        stream.close_stream()  # type: ignore[attr-defined]
    assert isinstance(events[-1], ev.StreamStateReported)
