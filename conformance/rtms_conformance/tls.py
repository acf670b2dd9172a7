"""A throwaway certificate authority for serving the fake server over ``wss://``.

Clients must verify certificates (docs/protocol.md §10 rule 11), so the fake server
is tested with a real chain: a fresh CA per run, a server certificate for
``localhost`` and the loopback addresses, and the CA's PEM for the client.
``trustme`` is imported only when a CA is made, so plain ``ws://`` serving
does not need it.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LoopbackTLS", "make_test_ca"]

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class LoopbackTLS:
    """A server TLS context and the PEM of the CA that signed its certificate."""

    ca_pem: bytes
    server_context: ssl.SSLContext = field(repr=False)
    names: tuple[str, ...]

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA."""
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))

    def write_ca(self, path: str | Path) -> Path:
        """Write the CA certificate (PEM) for clients that take a CA file."""
        target = Path(path)
        target.write_bytes(self.ca_pem)
        return target


def make_test_ca(names: Sequence[str] = DEFAULT_NAMES) -> LoopbackTLS:
    """Create a CA and a server certificate for ``names`` (DNS names or IP addresses)."""
    try:
        import trustme
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "TLS for the fake server needs trustme: pip install 'rtms-proto[demo]'",
            name="trustme",
        ) from exc
    unique = tuple(dict.fromkeys(names))
    ca = trustme.CA(organization_name="rtms-proto fake RTMS server (test only)")
    cert = ca.issue_cert(*unique)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return LoopbackTLS(ca_pem=ca.cert_pem.bytes(), server_context=context, names=unique)
