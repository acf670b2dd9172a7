"""Parsing and vetting of RTMS server URLs.

A signaling URL arrives in a webhook, media URLs in the signaling handshake
response: both are remote data.  Before a client connects anywhere it checks the
URL here, so a forged webhook or a confused server cannot point it at an
arbitrary host.  The parser is deliberately strict (ASCII only, no userinfo, no
fragment, plain DNS names or IP literals) because every leniency is a way to
make two URL parsers disagree about which host a URL names.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._errors import DisallowedHost, InvalidConfig

__all__ = [
    "DEFAULT_ALLOWED_HOSTS",
    "KNOWN_REGIONS",
    "ServerUrl",
    "parse_server_url",
    "region_of",
]

DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("zoom.us", "zoom.com", "zoomgov.com")
"""Zoom's own domains; each entry also allows every subdomain."""

KNOWN_REGIONS: frozenset[str] = frozenset(
    {
        # Seen in Zoom host names and docs (docs/protocol.md §1).
        "sjc", "iad", "sin", "fra", "syd", "ams", "nrt", "mel", "yyz", "hkg",
        # Plausible: airports near other Zoom data centres and cloud regions.
        "lhr", "bom", "gru", "dfw", "ord", "sea", "mia", "den", "lax", "jfk",
        "cdg", "icn", "tpe", "dub", "hyd", "yvr", "yul", "kix", "phx", "jnb",
    }
)  # fmt: skip
"""Three-letter region codes that :func:`region_of` recognises."""

_DEFAULT_PORTS = {"ws": 80, "wss": 443}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_DIGITS = re.compile(r"[0-9]{1,5}")
_REGION_TOKEN = re.compile(r"([a-z]{3})[0-9]*")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerUrl:
    """A vetted ``ws://`` or ``wss://`` URL, split into what a transport needs.

    ``url`` is the text as given; ``host`` is normalised (lower case, no
    brackets around an IPv6 literal, no trailing dot) and is what to resolve,
    connect to and verify the certificate against.
    """

    url: str
    scheme: str
    host: str
    port: int
    resource: str
    secure: bool

    @property
    def authority(self) -> str:
        """``host[:port]`` as the HTTP ``Host`` header wants it (port only if not default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS.get(self.scheme):
            return host
        return f"{host}:{self.port}"

    @property
    def region(self) -> str | None:
        """The region code in the host name, see :func:`region_of`."""
        return region_of(self.host)


def parse_server_url(
    url: str, *, allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS
) -> ServerUrl:
    """Parse ``url`` and check its host against ``allowed_hosts``.

    An allowlist entry matches that host and all its subdomains (``zoom.us``
    allows ``rtms-sjc1.zoom.us``, not ``evilzoom.us``); case and a trailing dot
    are ignored; IP addresses match only themselves; ``"*"`` allows any host.
    ``ws://`` is accepted: whether plain text is acceptable is the transport's
    decision.  Raises :class:`InvalidConfig`, or its subclass
    :class:`DisallowedHost` when the URL is fine but its host is not allowed.
    Messages name the host at most, never the whole URL.
    """
    allowlist = _check_allowlist(allowed_hosts)
    if not isinstance(url, str):
        raise InvalidConfig(f"server URL must be a str, not {type(url).__name__}")
    if not url.isascii() or any(ch <= " " or ch in "\x7f\\" for ch in url):
        raise InvalidConfig(
            "server URL must be ASCII without spaces, control characters or backslashes"
        )
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidConfig("server URL scheme must be ws or wss")
    if not rest.startswith("//"):
        raise InvalidConfig(f"server URL must start with {scheme}://")
    rest = rest[2:]
    if "#" in rest:
        raise InvalidConfig("server URL must not have a fragment")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, resource = rest[:cut], rest[cut:]
    if "@" in netloc:
        raise InvalidConfig("server URL must not contain credentials (userinfo)")
    host_text, port_text = _split_netloc(netloc)
    host = _normalise_host(host_text)
    port = _parse_port(port_text, scheme)
    if not _host_allowed(host, allowlist):
        raise DisallowedHost(f"server host {host!r} is not in the allowed hosts")
    if not resource.startswith("/"):
        resource = "/" + resource
    return ServerUrl(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        resource=resource,
        secure=scheme == "wss",
    )


def region_of(host: str) -> str | None:
    """The Zoom region code carried in a host name, or ``None``.

    A heuristic for logs and metrics, not an identity: it returns the first
    label part (split on ``.`` and ``-``, top-level domain excluded) that is a
    code of :data:`KNOWN_REGIONS` optionally followed by digits, so
    ``rtms-sjc1.zoom.us`` and ``zoom-rtms-iad-2.zoom.us`` give ``sjc``/``iad``.
    """
    labels = host.lower().rstrip(".").split(".")[:-1]
    for label in labels:
        for part in label.split("-"):
            match = _REGION_TOKEN.fullmatch(part)
            if match and match.group(1) in KNOWN_REGIONS:
                return match.group(1)
    return None


def _split_netloc(netloc: str) -> tuple[str, str | None]:
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise InvalidConfig("server URL has an unterminated IPv6 literal")
        host, after = netloc[: end + 1], netloc[end + 1 :]
        if after and not after.startswith(":"):
            raise InvalidConfig("server URL has junk after the IPv6 literal")
        return host, after[1:] if after else None
    host, sep, port = netloc.partition(":")
    return host, port if sep else None


def _normalise_host(text: str) -> str:
    if not text:
        raise InvalidConfig("server URL has no host")
    if text.startswith("["):
        return _ipv6(text[1:-1], f"server host {text!r}")
    host = text.lower()
    if host.endswith("."):
        host = host[:-1]
    if not _valid_name(host):
        raise InvalidConfig(f"server host {text!r} is not a valid host name")
    return host


def _ipv6(text: str, what: str) -> str:
    """The canonical form of an IPv6 address; zone ids (``%eth0``) are refused."""
    try:
        if "%" in text:
            raise ValueError(text)
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise InvalidConfig(f"{what} is not a valid IPv6 address (zone ids excluded)") from None


def _valid_name(host: str) -> bool:
    """A DNS name of letters, digits, ``-`` and ``_``, or a dotted-quad IPv4 address.

    A name whose last label is numeric must be an IPv4 address: WHATWG parsers
    read ``1.2.3`` or ``0x7f.1`` style hosts as IPv4, so anything else ending in
    digits is ambiguous and refused.
    """
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return False
    if labels[-1].isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return False
    return True


def _parse_port(text: str | None, scheme: str) -> int:
    if not text:  # absent, or an empty port as RFC 3986 allows
        return _DEFAULT_PORTS[scheme]
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise InvalidConfig(f"server URL port {text[:16]!r} is not a number from 1 to 65535")
    return int(text)


def _check_allowlist(allowed_hosts: Sequence[str]) -> tuple[str, ...]:
    """Normalised allowlist entries; raises :class:`InvalidConfig` on a bad one."""
    if isinstance(allowed_hosts, str):
        raise InvalidConfig("allowed_hosts must be a sequence of host names, not a single str")
    return tuple(_normalise_entry(entry) for entry in allowed_hosts)


def _normalise_entry(entry: str) -> str:
    if not isinstance(entry, str):
        raise InvalidConfig(f"allowed host entries must be str, not {type(entry).__name__}")
    text = entry.strip().lower()
    if text == "*":
        return text
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        return _ipv6(text, f"allowed host {entry!r}")
    if text.endswith("."):
        text = text[:-1]
    if not text or not _valid_name(text):
        raise InvalidConfig(
            f"allowed host {entry!r} is not a host name"
            " (write 'zoom.us' to allow it and its subdomains, or '*' for any host)"
        )
    return text


def _host_allowed(host: str, allowlist: tuple[str, ...]) -> bool:
    is_name = ":" not in host and not host.rsplit(".", maxsplit=1)[-1].isdigit()
    for entry in allowlist:
        if entry in ("*", host):
            return True
        if is_name and host.endswith("." + entry):
            return True
    return False
