"""Errors of the transports: a socket could not be opened (DNS, TCP, TLS, proxy).

They subclass :class:`rtms_proto.RtmsError`.  ``connect()`` raises them when the
first signaling socket cannot be opened; later, the same text is the detail of
the session's :class:`~rtms_proto.events.ConnectionFailed` events.
"""

from __future__ import annotations

import ipaddress
import ssl

from rtms_proto import RtmsError

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "PlaintextRefused",
    "ProxyError",
    "TLSError",
    "TLSVerificationError",
    "TransportError",
    "as_transport_error",
    "check_plaintext",
    "is_loopback",
]


class TransportError(RtmsError):
    """A socket could not be opened: DNS, TCP, TLS or the proxy failed.

    ``host`` and ``port`` name the RTMS server the socket was for.  The
    message says what failed and never contains a secret.
    """

    def __init__(self, message: str, *, host: str | None = None, port: int | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.port = port


class ConnectError(TransportError):
    """The TCP connection failed (name not resolved, refused, unreachable)."""


class ConnectTimeout(ConnectError):
    """Opening the socket (TCP, proxy and TLS together) took longer than ``connect_timeout``."""


class TLSError(TransportError):
    """The TLS handshake failed for a reason other than the certificate."""


class TLSVerificationError(TLSError):
    """The server's certificate could not be verified (wrong CA, wrong name, expired...)."""


class PlaintextRefused(TransportError):
    """A ``ws://`` URL names a host that is not loopback: only ``wss://`` goes off the machine."""


class ProxyError(TransportError):
    """The proxy (HTTP CONNECT or SOCKS5) refused the tunnel or broke its protocol."""


CLOSED_DURING_TLS = "the server closed the connection during the TLS handshake"
"""What every driver says when the server hangs up before TLS is up."""


def as_transport_error(
    exc: BaseException | None,
    *,
    host: str,
    port: int,
    trust: str = "",
    timeout: float = 0.0,
    opened: bool = False,
) -> TransportError:
    """Name what went wrong while opening (or, ``opened``, using) a socket, in one sentence.

    ``trust`` says which CAs were trusted (for certificate errors), ``timeout``
    is the connect timeout (for timeouts).  Library wrappers (trio's
    ``BrokenResourceError``) are looked through to the cause.
    """
    if isinstance(exc, TransportError):
        return exc
    where = f"{host}:{port}"
    if opened:
        why = "closed" if exc is None else _describe(_root_cause(exc))
        return TransportError(f"connection to {where} lost: {why}", host=host, port=port)
    assert exc is not None
    cause = _root_cause(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or str(cause)
        return TLSVerificationError(
            f"TLS certificate verification failed for {where}: {why} (trusted: {trust})",
            host=host,
            port=port,
        )
    if isinstance(cause, ssl.SSLError):
        why = getattr(cause, "reason", None) or str(cause)
        return TLSError(f"TLS handshake with {where} failed: {why}", host=host, port=port)
    if isinstance(cause, TimeoutError):
        return ConnectTimeout(
            f"connecting to {where} timed out after {timeout:g} s", host=host, port=port
        )
    if isinstance(cause, OSError):
        why = cause.strerror or str(cause) or type(cause).__name__
        return ConnectError(f"cannot connect to {where}: {why}", host=host, port=port)
    return ConnectError(
        f"cannot connect to {where}: {type(cause).__name__}: {cause}", host=host, port=port
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {getattr(exc, 'reason', None) or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _root_cause(exc: BaseException) -> BaseException:
    """The most telling exception behind ``exc`` (causes, and single-member groups)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLError | TimeoutError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            if not exc.exceptions:
                return exc
            exc = exc.exceptions[0]
            continue
        nxt = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if nxt is None:
            return exc
        if isinstance(exc, OSError) and not isinstance(nxt, OSError | BaseExceptionGroup):
            return exc
        exc = nxt
    return exc


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_plaintext(host: str, port: int, secure: bool) -> None:
    """Refuse ``ws://`` off the machine: plain text only for loopback tests."""
    if not secure and not is_loopback(host):
        raise PlaintextRefused(
            f"refusing plain ws:// to {host}:{port}: only loopback hosts may be reached"
            " without TLS",
            host=host,
            port=port,
        )
