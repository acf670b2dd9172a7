"""HTTP CONNECT through a proxy, Sans-I/O (h11): request bytes out, response bytes in.

A driver connects to the proxy, sends :attr:`ProxyHandshake.request`, feeds
what comes back to :meth:`ProxyHandshake.receive_data` until it returns True,
and then speaks TLS (``wss://``) or plain WebSocket (loopback ``ws://``) to
the RTMS server through the tunnel, exactly as it would without a proxy.
"""

from __future__ import annotations

import base64
import urllib.parse
from dataclasses import dataclass, field

import h11

from rtms_proto import InvalidConfig

from ._errors import ProxyError

__all__ = ["ProxyConfig", "ProxyHandshake"]

_PROXY_URL_HELP = "the proxy must be given as http://[user:password@]host[:port]"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyConfig:
    """An HTTP proxy; the password never shows in a repr or a message."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> ProxyConfig:
        """Parse ``http://[user:password@]host[:port]`` (port 80 when absent)."""
        if not isinstance(url, str):
            raise InvalidConfig(f"proxy must be a str URL, not {type(url).__name__}")
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise InvalidConfig(f"bad proxy URL: {_PROXY_URL_HELP}") from None
        if parts.scheme.lower() != "http":
            raise InvalidConfig(
                f"unsupported proxy scheme {parts.scheme!r}: {_PROXY_URL_HELP}"
                " (TLS to the RTMS server runs inside the tunnel)"
            )
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise InvalidConfig(f"bad proxy URL: {_PROXY_URL_HELP}")
        username = urllib.parse.unquote(parts.username) if parts.username is not None else None
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        return cls(
            host=parts.hostname,
            port=port if port is not None else 80,
            username=username,
            password=password,
        )

    @property
    def display(self) -> str:
        """``host:port`` for logs and messages (never the credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` header value (HTTP Basic), if credentials are set."""
        if self.username is None:
            return None
        token = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(token).decode("ascii")


class ProxyHandshake:
    """One CONNECT exchange for a tunnel to ``host:port``; raises :class:`ProxyError`."""

    def __init__(self, proxy: ProxyConfig, host: str, port: int) -> None:
        self.proxy = proxy
        self.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.done = False
        self._h11 = h11.Connection(h11.CLIENT)
        headers = [("Host", self.target), ("User-Agent", "rtms-proto")]
        auth = proxy.authorization
        if auth is not None:
            headers.append(("Proxy-Authorization", auth))
        self.request: bytes = self._h11.send(
            h11.Request(method="CONNECT", target=self.target, headers=headers)
        ) + (self._h11.send(h11.EndOfMessage()) or b"")

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
