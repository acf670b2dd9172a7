"""Proxies, Sans-I/O: which proxy a socket uses, and the tunnel handshakes.

A socket goes through a proxy chosen by :func:`choose_proxy` (an explicit URL,
none, or the environment the way ``websockets`` and ``requests`` read it).
The driver connects to the proxy, sends :meth:`Tunnel.data_to_send`, feeds
what comes back to :meth:`Tunnel.receive_data` (sending whatever it then has
to send) until it returns True, and then speaks TLS (``wss://``) or plain
WebSocket (loopback ``ws://``) to the RTMS server through the tunnel, exactly
as it would without a proxy.  Two kinds of tunnel: HTTP ``CONNECT``
(:class:`ProxyHandshake`, with h11) and SOCKS5 (:class:`Socks5Handshake`,
RFC 1928 with the username/password method of RFC 1929).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import h11

from rtms_proto import InvalidConfig

from ._errors import ProxyError, is_loopback

__all__ = [
    "PROXY_SCHEMES",
    "ProxyConfig",
    "ProxyHandshake",
    "Socks5Handshake",
    "Tunnel",
    "bypassed",
    "choose_proxy",
    "open_tunnel",
    "resolve_for_tunnel",
]

PROXY_SCHEMES = ("http", "socks5", "socks5h")
"""``socks5h`` lets the proxy resolve the server's name; ``socks5`` resolves it here."""

_DEFAULT_PORTS = {"http": 80, "socks5": 1080, "socks5h": 1080}
_PROXY_URL_HELP = (
    "the proxy must be given as http://, socks5:// or socks5h://[user:password@]host[:port]"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyConfig:
    """A proxy; the password never shows in a repr or a message."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    scheme: str = "http"

    @classmethod
    def from_url(cls, url: str, *, source: str = "proxy") -> ProxyConfig:
        """Parse ``scheme://[user:password@]host[:port]`` (``http://`` when there is no
        scheme; port 80 for http, 1080 for SOCKS when absent); ``source`` names where
        the URL came from, for messages."""
        if not isinstance(url, str):
            raise InvalidConfig(f"{source} must be a str URL, not {type(url).__name__}")
        url = url.strip()
        if "://" not in url:  # "proxy.example:3128", as curl and requests take it
            url = "http://" + url
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            raise InvalidConfig(f"bad {source} URL: {_PROXY_URL_HELP}") from None
        scheme = parts.scheme.lower()
        if scheme not in PROXY_SCHEMES:
            raise InvalidConfig(
                f"unsupported {source} scheme {parts.scheme!r}: {_PROXY_URL_HELP}"
                " (TLS to the RTMS server runs inside the tunnel)"
            )
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise InvalidConfig(f"bad {source} URL: {_PROXY_URL_HELP}")
        username = urllib.parse.unquote(parts.username) if parts.username is not None else None
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        if scheme != "http" and username is not None:
            too_long = len(username.encode()) > 255 or len((password or "").encode()) > 255
            if not username or too_long:
                raise InvalidConfig(
                    f"the SOCKS5 user name in {source} must be 1 to 255 bytes,"
                    " the password at most 255"
                )
        return cls(
            host=parts.hostname,
            port=port if port is not None else _DEFAULT_PORTS[scheme],
            username=username,
            password=password,
            scheme=scheme,
        )

    @property
    def display(self) -> str:
        """``scheme://host:port`` for logs and messages (never the credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` header value (HTTP Basic), if credentials are set."""
        if self.username is None:
            return None
        token = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(token).decode("ascii")

    def resolves_here(self, host: str) -> bool:
        """Whether the driver must resolve ``host`` before the handshake: ``socks5://``
        (not ``socks5h://``) sends the proxy an address, not a name."""
        return self.scheme == "socks5" and not _is_ip(host)


# --------------------------------------------------------------------------- choosing


def choose_proxy(
    setting: str | bool | None,
    host: str,
    port: int,
    secure: bool,
    environ: Mapping[str, str] | None = None,
) -> ProxyConfig | None:
    """The proxy for one socket to ``host:port``, or None to connect directly.

    ``setting`` is ``TransportOptions.proxy``: a URL is used for every socket
    (loopback included) and the environment is ignored; None or False means
    no proxy at all; True (the default) reads the environment, as
    ``websockets`` and ``requests`` do:

    1. a host listed in ``no_proxy``, and any loopback host, is reached
       directly (see :func:`bypassed`);
    2. else ``wss_proxy`` for ``wss://`` (``ws_proxy`` for ``ws://``);
    3. else ``https_proxy``;
    4. else, for ``ws://`` only, ``http_proxy``;
    5. else ``all_proxy``.

    Each name may also be upper case; the lower-case one wins when both are
    set (and ``HTTP_PROXY`` is ignored under CGI, where a request header can
    set it), as ``urllib`` reads them.  A variable that is set but not a
    usable URL raises :class:`~rtms_proto.InvalidConfig` naming it.
    """
    if isinstance(setting, str):
        return ProxyConfig.from_url(setting)
    if setting is None or setting is False:
        return None
    if setting is not True:
        raise InvalidConfig(
            f"proxy must be a URL, True (from the environment) or None, not {setting!r}"
        )
    env = _environment_proxies(os.environ if environ is None else environ)
    if not env or is_loopback(host):
        return None
    no_proxy = env.get("no")
    if no_proxy and bypassed(host, port, no_proxy):
        return None
    order = ("wss", "https", "all") if secure else ("ws", "https", "http", "all")
    for scheme in order:
        url = env.get(scheme)
        if url:
            return ProxyConfig.from_url(url, source=f"{scheme}_proxy")
    return None


def _environment_proxies(environ: Mapping[str, str]) -> dict[str, str]:
    """``<scheme>_proxy`` variables by scheme, lower case first (urllib's rules)."""
    found: dict[str, str] = {}
    for name, value in environ.items():  # upper case first, so lower case overwrites
        lower = name.lower()
        if value and lower.endswith("_proxy") and name != lower:
            found[lower[:-6]] = value
    if "REQUEST_METHOD" in environ:  # CGI: HTTP_PROXY may come from a request header
        found.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy") and name == name.lower():
            if value:
                found[name[:-6]] = value
            else:  # set but empty: unset, whatever the upper-case one says
                found.pop(name[:-6], None)
    return found


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``no_proxy`` lists ``host:port``.

    Entries are separated by commas or spaces: ``*`` (every host); a name,
    which also covers its subdomains (``example.com``, ``.example.com`` and
    ``*.example.com`` all match ``rtms.example.com``); an IP address or
    network (``10.0.0.0/8``, ``::1``); each optionally with ``:port``
    (``[v6]:port`` for IPv6), which then matches that port only.
    """
    name = host.strip("[]").rstrip(".").lower()
    for item in re.split(r"[\s,]+", no_proxy.strip().lower()):
        entry, entry_port = item, None
        match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:]*):(\d+)", item)
        if match is not None:
            entry = match.group(1) or match.group(3)
            digits = match.group(2) or match.group(4)
            entry_port = int(digits) if digits else None
        if not entry or (entry_port is not None and entry_port != port):
            continue
        if entry == "*":
            return True
        if _is_ip(name):
            try:
                if ipaddress.ip_address(name) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        suffix = entry.removeprefix("*").removeprefix(".").rstrip(".")
        if suffix and (name == suffix or name.endswith("." + suffix)):
            return True
    return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- tunnels


class Tunnel(Protocol):
    """What a driver does with a proxy handshake (HTTP CONNECT or SOCKS5)."""

    @property
    def done(self) -> bool: ...

    def data_to_send(self) -> bytes: ...

    def receive_data(self, data: bytes) -> bool: ...

    def eof(self) -> None: ...


def open_tunnel(
    proxy: ProxyConfig, host: str, port: int, address: str | None = None
) -> ProxyHandshake | Socks5Handshake:
    """The handshake for a tunnel to ``host:port`` through ``proxy``.

    ``address`` is ``host`` resolved by the driver, which
    :meth:`ProxyConfig.resolves_here` asks for (``socks5://``).
    """
    if proxy.scheme == "http":
        return ProxyHandshake(proxy, host, port)
    return Socks5Handshake(proxy, host, port, address)


def resolve_for_tunnel(infos: Sequence[tuple[Any, ...]]) -> str:
    """The address to send a ``socks5://`` proxy: the first ``getaddrinfo`` result."""
    if not infos:
        raise OSError("the name resolved to no address")
    return str(infos[0][4][0])


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ProxyHandshake:
    """One CONNECT exchange for a tunnel to ``host:port``; raises :class:`ProxyError`."""

    def __init__(self, proxy: ProxyConfig, host: str, port: int) -> None:
        self.proxy = proxy
        self.target = _target(host, port)
        self.done = False
        self._h11 = h11.Connection(h11.CLIENT)
        headers = [("Host", self.target), ("User-Agent", "rtms-proto")]
        auth = proxy.authorization
        if auth is not None:
            headers.append(("Proxy-Authorization", auth))
        self.request: bytes = self._h11.send(
            h11.Request(method="CONNECT", target=self.target, headers=headers)
        ) + (self._h11.send(h11.EndOfMessage()) or b"")
        self._out = self.request

    def data_to_send(self) -> bytes:
        """What to send to the proxy now (the request, once)."""
        out, self._out = self._out, b""
        return out

    def receive_data(self, data: bytes) -> bool:
        """Feed bytes from the proxy; True once the tunnel is open."""
        if self.done:
            raise ProxyError(f"proxy {self.proxy.display} sent data before the tunnel was used")
        if not data:
            self.eof()
        self._h11.receive_data(data)
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise ProxyError(
                    f"proxy {self.proxy.display} answered CONNECT {self.target} with something"
                    f" that is not HTTP: {exc}"
                ) from None
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.Response):
                if not 200 <= event.status_code < 300:
                    raise self._refused(event.status_code, event.reason)
                continue
            if event is h11.PAUSED:
                trailing, _ = self._h11.trailing_data
                if trailing:
                    raise ProxyError(
                        f"proxy {self.proxy.display} sent data before the tunnel was used"
                    )
                self.done = True
                return True
            # InformationalResponse (1xx): wait for the real answer.

    def eof(self) -> None:
        """The proxy closed the connection before the tunnel opened."""
        raise ProxyError(
            f"proxy {self.proxy.display} closed the connection before answering"
            f" CONNECT {self.target}"
        )

    def _refused(self, status: int, reason: bytes) -> ProxyError:
        text = reason.decode("latin-1", "replace")
        hint = ""
        if status == 407:
            hint = (
                " (proxy authentication required: give user:password in the proxy URL)"
                if self.proxy.username is None
                else " (proxy authentication failed)"
            )
        return ProxyError(
            f"proxy {self.proxy.display} refused CONNECT {self.target}: HTTP {status} {text}{hint}"
        )


_SOCKS_REPLIES = {
    1: "general failure",
    2: "connection not allowed by the proxy's rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}
_NO_AUTH, _USER_PASSWORD, _NO_METHOD = 0x00, 0x02, 0xFF


class Socks5Handshake:
    """One SOCKS5 CONNECT to ``host:port`` (RFC 1928; RFC 1929 when the URL has
    credentials); raises :class:`ProxyError`.

    The name goes to the proxy (``socks5h://``), or ``address``, the name
    resolved by the driver (``socks5://``).  At most 262 bytes of replies are
    buffered: the largest valid reply (a 255-byte name) is 262 bytes.
    """

    def __init__(
        self, proxy: ProxyConfig, host: str, port: int, address: str | None = None
    ) -> None:
        self.proxy = proxy
        self.target = _target(host, port)
        methods = bytes([_NO_AUTH, _USER_PASSWORD]) if proxy.username is not None else b"\x00"
        self._out = bytes([5, len(methods)]) + methods
        self._in = bytearray()
        self._step = "method"
        self._connect = b"\x05\x01\x00" + _socks_address(address or host) + port.to_bytes(2, "big")

    @property
    def done(self) -> bool:
        """Whether the tunnel is open."""
        return self._step == "open"

    def data_to_send(self) -> bytes:
        """What to send to the proxy now."""
        out, self._out = self._out, b""
        return out

    def receive_data(self, data: bytes) -> bool:
        """Feed bytes from the proxy; True once the tunnel is open."""
        if self.done:
            raise ProxyError(f"proxy {self.proxy.display} sent data before the tunnel was used")
        if not data:
            self.eof()
        self._in += data
        while True:
            needed = self._needed()
            if needed is None or len(self._in) < needed:
                return False
            reply = bytes(self._in[:needed])
            del self._in[:needed]
            self._answer(reply)
            if self._step == "open":
                if self._in:
                    raise ProxyError(
                        f"proxy {self.proxy.display} sent data before the tunnel was used"
                    )
                return True

    def _needed(self) -> int | None:
        """The length of the reply being read, or None until it can be told."""
        if self._step in ("method", "auth"):
            return 2
        if len(self._in) < 5:
            return None
        kind = self._in[3]
        if kind == 1:
            return 10
        if kind == 4:
            return 22
        if kind == 3:
            return 7 + self._in[4]
        if self._in[0] != 5 or self._in[1] != 0:  # a refusal may carry no valid address
            return 5
        raise self._bad(f"an unknown address type {kind}")

    def _answer(self, reply: bytes) -> None:
        if self._step == "method":
            if reply[0] != 5:
                raise self._bad("a reply that is not SOCKS5")
            if reply[1] == _NO_AUTH:
                self._send_connect()
            elif reply[1] == _USER_PASSWORD and self.proxy.username is not None:
                user = self.proxy.username.encode()
                password = (self.proxy.password or "").encode()
                self._out += bytes([1, len(user)]) + user + bytes([len(password)]) + password
                self._step = "auth"
            elif reply[1] == _NO_METHOD and self.proxy.username is None:
                raise ProxyError(
                    f"proxy {self.proxy.display} requires authentication: give user:password"
                    " in the proxy URL"
                )
            else:
                raise ProxyError(
                    f"proxy {self.proxy.display} accepts none of the authentication methods"
                    " offered (none, user name and password)"
                )
        elif self._step == "auth":
            if reply[1] != 0:
                raise ProxyError(f"proxy {self.proxy.display}: authentication failed")
            self._send_connect()
        else:
            if reply[0] != 5:
                raise self._bad("a reply that is not SOCKS5")
            if reply[1] != 0:
                why = _SOCKS_REPLIES.get(reply[1], f"error {reply[1]}")
                raise ProxyError(f"proxy {self.proxy.display} refused CONNECT {self.target}: {why}")
            self._step = "open"

    def _send_connect(self) -> None:
        self._out += self._connect
        self._step = "connect"

    def _bad(self, what: str) -> ProxyError:
        return ProxyError(f"proxy {self.proxy.display} answered CONNECT {self.target} with {what}")

    def eof(self) -> None:
        """The proxy closed the connection before the tunnel opened."""
        raise ProxyError(
            f"proxy {self.proxy.display} closed the connection before answering"
            f" CONNECT {self.target}"
        )


def _socks_address(host: str) -> bytes:
    """ATYP and address: IPv4, IPv6, or a name of at most 255 bytes."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        try:
            name = host.encode("idna")
        except UnicodeError:
            name = b""
        if not 0 < len(name) <= 255:
            raise InvalidConfig(f"host name not usable with SOCKS5: {host[:40]!r}") from None
        return bytes([3, len(name)]) + name
    return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
