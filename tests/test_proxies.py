"""Proxies: which one a socket uses (explicit, none, or the environment as websockets
and requests read it), the SOCKS5 handshake, and every driver and the command through a
real proxy on 127.0.0.1 that speaks both SOCKS5 and HTTP CONNECT."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_transport_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    HARNESSES,
    Harness,
    add_stream,
    of,
)

from rtms_conformance.net import ServerThread
from rtms_conformance.server import ServerConfig
from rtms_conformance.tls import LoopbackTLS, make_test_ca
from rtms_proto import InvalidConfig
from rtms_proto import events as ev
from rtms_transports import ProxyConfig, ProxyError, TransportError, TransportOptions
from rtms_transports._proxy import Socks5Handshake, Tunnel, bypassed, choose_proxy, open_tunnel

every_driver = pytest.mark.parametrize("driver", HARNESSES, ids=str)

NAME = "rtms.test"
"""The server's name: only the test proxy knows it (the client cannot resolve it), so a
stream that works went through the proxy."""

# --------------------------------------------------------------------------- choosing


def test_an_explicit_url_or_none_ignores_the_environment() -> None:
    env = {"https_proxy": "http://env-proxy:3128"}
    chosen = choose_proxy("socks5h://p:1080", "rtms.zoom.us", 443, True, env)
    assert chosen == ProxyConfig(host="p", port=1080, scheme="socks5h")
    loopback = choose_proxy("http://p:8080", "127.0.0.1", 443, True, env)
    assert loopback is not None and loopback.host == "p"  # an explicit proxy: every socket
    assert choose_proxy(None, "rtms.zoom.us", 443, True, env) is None
    assert choose_proxy(False, "rtms.zoom.us", 443, True, env) is None
    with pytest.raises(InvalidConfig, match="proxy must be a URL, True"):
        TransportOptions(proxy=8080)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "secure", "expected"),
    [
        ({"wss_proxy": "http://a", "https_proxy": "http://b", "all_proxy": "http://c"}, True, "a"),
        ({"https_proxy": "http://b", "all_proxy": "http://c"}, True, "b"),
        ({"http_proxy": "http://h", "all_proxy": "http://c"}, True, "c"),
        ({"http_proxy": "http://h"}, True, None),  # http_proxy is for ws:// only
        ({"ws_proxy": "http://w", "https_proxy": "http://b"}, False, "w"),
        ({"https_proxy": "http://b", "http_proxy": "http://h"}, False, "b"),
        ({"http_proxy": "http://h", "all_proxy": "http://c"}, False, "h"),
        ({"HTTPS_PROXY": "http://upper"}, True, "upper"),
        ({"HTTPS_PROXY": "http://upper", "https_proxy": "http://lower"}, True, "lower"),
        ({"HTTPS_PROXY": "http://upper", "https_proxy": ""}, True, None),  # unset by lower
        ({"ALL_PROXY": "socks5h://s"}, True, "s"),
        ({"HTTP_PROXY": "http://h", "REQUEST_METHOD": "GET"}, False, None),  # CGI: ignored
        ({"http_proxy": "http://h", "REQUEST_METHOD": "GET"}, False, "h"),
        ({}, True, None),
    ],
)
def test_the_environment_in_order(env: dict[str, str], secure: bool, expected: str | None) -> None:
    chosen = choose_proxy(True, "rtms.zoom.us", 443, secure, env)
    assert (chosen.host if chosen is not None else None) == expected


def test_no_proxy_and_loopback_go_direct() -> None:
    env = {"https_proxy": "http://p:3128"}
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.9"):
        assert choose_proxy(True, host, 443, True, env) is None
    for listed, host, port, expect in [
        ("*", "rtms.zoom.us", 443, True),
        ("zoom.us", "rtms.zoom.us", 443, True),
        (".zoom.us", "rtms.zoom.us", 443, True),
        ("*.zoom.us", "zoom.us", 443, True),
        ("zoom.us", "notzoom.us", 443, False),
        ("other.example, zoom.us:443", "rtms.zoom.us", 443, True),
        ("zoom.us:8443", "rtms.zoom.us", 443, False),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("[2001:db8::1]:443", "2001:db8::1", 443, True),
        ("2001:db8::/32", "[2001:db8::5]", 443, True),
        ("zoom.us", "10.1.2.3", 443, False),
        ("", "rtms.zoom.us", 443, False),
    ]:
        assert bypassed(host, port, listed) is expect, (listed, host)
        chosen = choose_proxy(True, host, port, True, {**env, "NO_PROXY": listed})
        assert (chosen is None) is expect, (listed, host)


def test_a_bad_variable_is_named_and_its_password_never_shown() -> None:
    env = {"https_proxy": "ftp://user:hunter2@p:21"}
    with pytest.raises(InvalidConfig, match="unsupported https_proxy scheme 'ftp'") as info:
        choose_proxy(True, "rtms.zoom.us", 443, True, env)
    assert "hunter2" not in str(info.value)
    assert choose_proxy(True, "localhost", 443, True, env) is None  # not read when not used


def test_options_show_where_the_proxy_comes_from() -> None:
    assert TransportOptions().proxy is True
    assert "proxy='from the environment'" in repr(TransportOptions())
    assert "proxy=None" in repr(TransportOptions(proxy=None))
    shown = repr(TransportOptions(proxy="socks5://u:s3cret@p"))
    assert "socks5://p:1080" in shown and "s3cret" not in shown
    for bad in ("https://p:1", "socks4://p", "socks5://:1", "http://p/x"):
        with pytest.raises(InvalidConfig):
            TransportOptions(proxy=bad)
    for bad in (f"socks5h://{'u' * 256}:p@proxy", f"socks5://u:{'p' * 256}@proxy"):
        with pytest.raises(InvalidConfig, match="user name"):
            TransportOptions(proxy=bad)
    bare = ProxyConfig.from_url("proxy.example:3128")  # no scheme: http, as curl and requests
    assert (bare.scheme, bare.host, bare.port) == ("http", "proxy.example", 3128)


def test_connect_refuses_a_bad_proxy_variable_before_opening_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rtms_transports.blocking import connect

    monkeypatch.setenv("https_proxy", "gopher://p:70")
    body = json.dumps(
        {
            "event": "meeting.rtms_started",
            "payload": {
                "meeting_uuid": "m==",
                "rtms_stream_id": "s",
                "server_urls": "wss://rtms.zoom.us/signaling",
            },
        }
    ).encode()
    with (
        pytest.raises(InvalidConfig, match="https_proxy"),
        connect(body, client_id="c", client_secret="s"),
    ):
        pass


# --------------------------------------------------------------------------- SOCKS5, Sans-I/O


def feed(handshake: Tunnel, data: bytes, *, bytewise: bool = False) -> bool:
    """Feed ``data`` whole or one byte at a time; True once the tunnel is open."""
    if not bytewise:
        return handshake.receive_data(data)
    opened = False
    for i in range(len(data)):
        opened = handshake.receive_data(data[i : i + 1])
    return opened


@pytest.mark.parametrize("bytewise", [False, True])
def test_socks5_without_credentials(bytewise: bool) -> None:
    hs = open_tunnel(ProxyConfig.from_url("socks5h://proxy"), NAME, 443)
    assert isinstance(hs, Socks5Handshake)
    assert hs.data_to_send() == b"\x05\x01\x00" and hs.data_to_send() == b""
    assert not feed(hs, b"\x05\x00", bytewise=bytewise)
    assert hs.data_to_send() == b"\x05\x01\x00\x03\x09rtms.test\x01\xbb"
    reply = b"\x05\x00\x00\x03\x05proxy\x10\x00"  # bound to a name: 7 + 5 bytes
    assert feed(hs, reply, bytewise=bytewise) and hs.done
    assert hs.data_to_send() == b""


@pytest.mark.parametrize("bytewise", [False, True])
def test_socks5_with_credentials_and_addresses(bytewise: bool) -> None:
    proxy = ProxyConfig.from_url("socks5://us%3Aer:p%40ss@proxy:1081")
    assert (proxy.username, proxy.password, proxy.port) == ("us:er", "p@ss", 1081)
    assert proxy.resolves_here(NAME) and not proxy.resolves_here("10.0.0.1")
    hs = open_tunnel(proxy, NAME, 443, address="10.0.0.1")
    assert hs.data_to_send() == b"\x05\x02\x00\x02"
    assert not feed(hs, b"\x05\x02", bytewise=bytewise)
    assert hs.data_to_send() == b"\x01\x05us:er\x04p@ss"
    assert not feed(hs, b"\x01\x00", bytewise=bytewise)
    assert hs.data_to_send() == b"\x05\x01\x00\x01\x0a\x00\x00\x01\x01\xbb"
    assert feed(hs, b"\x05\x00\x00\x01" + bytes(6), bytewise=bytewise)
    v6 = Socks5Handshake(ProxyConfig.from_url("socks5h://p"), "::1", 8443)
    assert v6.data_to_send() == b"\x05\x01\x00"
    v6.receive_data(b"\x05\x00")
    assert v6.data_to_send() == b"\x05\x01\x00\x04" + bytes(15) + b"\x01\x20\xfb"
    assert v6.receive_data(b"\x05\x00\x00\x04" + bytes(18))


@pytest.mark.parametrize(
    ("url", "replies", "message"),
    [
        ("socks5h://p", [b"\x05\xff"], "requires authentication: give user:password"),
        ("socks5h://u:secret@p", [b"\x05\xff"], "accepts none of the authentication"),
        ("socks5h://u:secret@p", [b"\x05\x02", b"\x01\x01"], "authentication failed"),
        ("socks5h://p", [b"\x04\x5a"], "not SOCKS5"),
        ("socks5h://p", [b"HTTP/1.1 400 Bad\r\n"], "not SOCKS5"),
        ("socks5h://p", [b"\x05\x00", b"\x05\x05\x00\x01" + bytes(6)], "connection refused"),
        ("socks5h://p", [b"\x05\x00", b"\x05\x02\x00\x01" + bytes(6)], "not allowed"),
        ("socks5h://p", [b"\x05\x00", b"\x05\x63\x00\x01" + bytes(6)], "error 99"),
        ("socks5h://p", [b"\x05\x00", b"\x05\x01\x00\x09\x00"], "general failure"),
        ("socks5h://p", [b"\x05\x00", b"\x05\x00\x00\x09\x00"], "unknown address type 9"),
        ("socks5h://p", [b"\x05\x00", b"\x06\x00\x00\x01" + bytes(6)], "not SOCKS5"),
        ("socks5h://p", [b"\x05\x00", b"\x05\x00\x00\x01" + bytes(6) + b"x"], "sent data"),
        ("socks5h://p", [b"\x05\x00", b""], "closed the connection before answering"),
    ],
)
def test_socks5_failures_are_proxy_errors(url: str, replies: list[bytes], message: str) -> None:
    hs = open_tunnel(ProxyConfig.from_url(url), NAME, 443)
    with pytest.raises(ProxyError, match=message) as info:
        for reply in replies:
            hs.receive_data(reply)
            hs.data_to_send()
    assert "secret" not in str(info.value)
    assert isinstance(info.value, TransportError)
    assert "socks5h://p:1080" in str(info.value)


def test_socks5_after_the_tunnel_and_bounds() -> None:
    hs = open_tunnel(ProxyConfig.from_url("socks5h://p"), NAME, 443)
    hs.receive_data(b"\x05\x00")
    assert hs.receive_data(b"\x05\x00\x00\x01" + bytes(6))
    with pytest.raises(ProxyError, match="sent data before"):
        hs.receive_data(b"x")
    for bad in ("a" * 64 + ".example", ".".join(["a" * 60] * 5)):  # a label, or the name
        with pytest.raises(InvalidConfig, match="not usable with SOCKS5"):
            open_tunnel(ProxyConfig.from_url("socks5h://p"), bad, 443)


# --------------------------------------------------------------------------- a real proxy


class LoopbackProxy:
    """SOCKS5 (optionally with user/password) and HTTP CONNECT on one port of 127.0.0.1,
    on threads.  Names in ``hosts`` are resolved to its addresses; any loopback
    address reaches 127.0.0.1 (where the fake server listens)."""

    def __init__(self, hosts: dict[str, str], user: str | None = None, password: str = "") -> None:
        self.hosts = hosts
        self.user, self.password = user, password
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.seen: list[
            tuple[str, str]
        ] = []  # (how it was asked: socks-name/socks-ip/http, target)
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def url(self, scheme: str, credentials: bool = True) -> str:
        cred = f"{self.user}:{self.password}@" if credentials and self.user else ""
        return f"{scheme}://{cred}127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self._threads:
            t.join(5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="test-proxy")
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self._socks.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            file = conn.makefile("rb", buffering=0)
            first = file.read(1)
            target = self._socks5(conn, file) if first == b"\x05" else self._http(conn, file, first)
            if target is None:
                return
            upstream = socket.create_connection(target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            return
        with self._lock:
            self._socks.append(upstream)
        self._spawn(self._pipe, upstream, conn)
        self._pipe(conn, upstream)

    def _resolve(self, host: str) -> str | None:
        try:
            return "127.0.0.1" if ipaddress.ip_address(host).is_loopback else None
        except ValueError:
            return self.hosts.get(host)

    def _socks5(self, conn: socket.socket, file: Any) -> tuple[str, int] | None:
        methods = file.read(file.read(1)[0])
        if self.user is not None:
            if 2 not in methods:
                conn.sendall(b"\x05\xff")
                return None
            conn.sendall(b"\x05\x02")
            version, ulen = file.read(2)
            user = file.read(ulen).decode()
            password = file.read(file.read(1)[0]).decode()
            ok = version == 1 and (user, password) == (self.user, self.password)
            conn.sendall(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                return None
        else:
            conn.sendall(b"\x05\x00")
        _ver, _cmd, _rsv, kind = file.read(4)
        if kind == 3:
            host, how = file.read(file.read(1)[0]).decode(), "socks-name"
        else:
            packed = file.read(4 if kind == 1 else 16)
            host, how = str(ipaddress.ip_address(packed)), "socks-ip"
        port = int.from_bytes(file.read(2), "big")
        address = self._resolve(host)
        if address is None:
            conn.sendall(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
            return None
        self.seen.append((how, f"{host}:{port}"))
        conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + port.to_bytes(2, "big"))
        return address, port

    def _http(self, conn: socket.socket, file: Any, first: bytes) -> tuple[str, int] | None:
        head = first
        while not head.endswith(b"\r\n\r\n"):
            byte = file.read(1)
            if not byte:
                return None
            head += byte
        method, target, _ = head.split(b"\r\n")[0].decode().split(" ", 2)
        host, port = target.rsplit(":", 1)
        address = self._resolve(host.strip("[]"))
        if method != "CONNECT" or address is None:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            return None
        self.seen.append(("http", target))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return address, int(port)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@functools.cache
def named_tls() -> LoopbackTLS:
    """A certificate for :data:`NAME` and localhost."""
    return make_test_ca((NAME, "localhost", "127.0.0.1"))


@contextlib.contextmanager
def server_named(url_host: str) -> Iterator[ServerThread]:
    config = ServerConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with ServerThread(config, ssl_context=named_tls().server_context, url_host=url_host) as srv:
        yield srv


def run_stream(driver: Harness, server: ServerThread, name: str, ca: str, **kw: Any) -> list[Any]:
    info = add_stream(server, name, duration=0.5)
    return driver.stream(
        server.rtms_started_body(info),
        options=TransportOptions(ca_file=ca, **kw),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        allowed_hosts=(NAME, "localhost"),
    ).events


def cannot_resolve(name: str) -> bool:
    try:
        socket.getaddrinfo(name, 443)
    except OSError:
        return True
    return False


@every_driver
def test_socks5h_with_credentials(driver: Harness, tmp_path: Path) -> None:
    assert cannot_resolve(NAME)  # so only the proxy can reach the server
    ca = str(named_tls().write_ca(tmp_path / "ca.pem"))
    with server_named(NAME) as server, LoopbackProxy({NAME: "127.0.0.1"}, "pu", "pp") as proxy:
        events = run_stream(driver, server, f"socks5h-{driver}", ca, proxy=proxy.url("socks5h"))
        assert proxy.seen == [("socks-name", f"{NAME}:{server.port}")] * 3
        with pytest.raises(ProxyError, match="authentication failed") as raised:
            bad = f"socks5h://pu:wrong-pass@127.0.0.1:{proxy.port}"
            run_stream(driver, server, f"socks5h-bad-{driver}", ca, proxy=bad)
        assert "wrong-pass" not in str(raised.value)
    assert isinstance(events[-1], ev.SessionEnded) and of(events, ev.AudioReceived)
    assert len(of(events, ev.MediaConnected)) == 2


@every_driver
def test_socks5_resolves_the_name_here(driver: Harness, tmp_path: Path) -> None:
    ca = str(named_tls().write_ca(tmp_path / "ca.pem"))
    with server_named("localhost") as server, LoopbackProxy({}) as proxy:
        events = run_stream(driver, server, f"socks5-{driver}", ca, proxy=proxy.url("socks5"))
        hows = {how for how, _ in proxy.seen}
        targets = {target.rsplit(":", 1)[0] for _, target in proxy.seen}
    assert hows == {"socks-ip"} and len(proxy.seen) == 3  # an address, never the name
    assert all(ipaddress.ip_address(t).is_loopback for t in targets)
    assert of(events, ev.AudioReceived)


@every_driver
def test_the_environment_chooses_the_proxy(
    driver: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = str(named_tls().write_ca(tmp_path / "ca.pem"))
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    with server_named(NAME) as server, LoopbackProxy({NAME: "127.0.0.1"}) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url("http"))
        monkeypatch.setenv("no_proxy", "example.com")
        events = run_stream(driver, server, f"env-http-{driver}", ca)
        assert proxy.seen == [("http", f"{NAME}:{server.port}")] * 3
        monkeypatch.setenv("wss_proxy", proxy.url("socks5h"))  # more specific: wins
        events += run_stream(driver, server, f"env-socks-{driver}", ca)
        assert proxy.seen[3:] == [("socks-name", f"{NAME}:{server.port}")] * 3
        monkeypatch.setenv("no_proxy", "example.com,.test")
        with pytest.raises(TransportError):  # direct: the name does not resolve here
            run_stream(driver, server, f"env-bypass-{driver}", ca, connect_timeout=2.0)
        assert len(proxy.seen) == 6
    assert len(of(events, ev.SessionEnded)) == 2


# --------------------------------------------------------------------------- the command


def test_the_command_takes_proxy_and_hides_its_password(tmp_path: Path) -> None:
    ca = named_tls().write_ca(tmp_path / "ca.pem")
    proxied = LoopbackProxy({NAME: "127.0.0.1"}, "cu", "cli-secret")
    with server_named(NAME) as server, proxied as proxy:
        info = add_stream(server, "cli-proxy", duration=None)  # ended below, once joined
        payload = tmp_path / "started.json"
        payload.write_bytes(server.rtms_started_body(info))
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(ZM_RTMS_CLIENT=CLIENT_ID, ZM_RTMS_SECRET=CLIENT_SECRET)
        command = [sys.executable, "-m", "rtms_app", "record", "--payload", str(payload)]
        command += ["--allow-host", NAME, "--ca-file", str(ca), "-vv", "-q"]
        child = subprocess.Popen(
            [*command, "--out", str(tmp_path / "rec"), "--proxy", proxy.url("socks5h")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while not (tmp_path / "rec" / "audio.wav").exists():  # joined, audio flowing
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline, "the command did not record"
                time.sleep(0.05)
            server.end_stream(info)
            stdout, stderr = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        result = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
        assert result.returncode == 0, result.stderr
        assert proxy.seen == [("socks-name", f"{NAME}:{server.port}")] * 3
        assert "cli-secret" not in result.stdout + result.stderr
        env["https_proxy"] = proxy.url("socks5h")
        bad = subprocess.run(
            [*command, "--out", str(tmp_path / "rec2"), "--proxy", "ftp://u:cli-secret@p"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert "cli-secret" not in bad.stderr and "unsupported proxy scheme" in bad.stderr
        seen = len(proxy.seen)
        direct = subprocess.run(
            [*command, "--out", str(tmp_path / "rec3"), "--proxy", "direct"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert direct.returncode != 0 and len(proxy.seen) == seen  # the variable was ignored
