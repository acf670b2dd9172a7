"""TLS over memory buffers, for the blocking driver's non-blocking sockets.

An ``ssl.SSLSocket`` lets OpenSSL read the socket itself: two ``read()``
system calls per TLS record (header, then body).  A server that writes each
WebSocket message on its own produces one small record per message, so a
stream of 20 ms audio packets cost two system calls per packet.  Here the
driver reads the raw socket in large pieces and OpenSSL decrypts from memory
(``ssl.MemoryBIO``), as asyncio and trio do: one system call per read, however
the records are cut.  Certificate and host name checks are the context's, as
with ``wrap_socket``.
"""

from __future__ import annotations

import ssl

__all__ = ["TlsPipe"]


class TlsPipe:
    """One client TLS connection: ciphertext in and out, plaintext through."""

    __slots__ = ("_incoming", "_obj", "_outgoing")

    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._obj = context.wrap_bio(
            self._incoming, self._outgoing, server_hostname=server_hostname
        )

    def handshake(self) -> bool:
        """Advance the handshake; True once done.  Raises ``ssl.SSLError`` on failure."""
        try:
            self._obj.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def receive(self, ciphertext: bytes) -> None:
        """Bytes read from the socket; ``b""`` is the end of the stream."""
        if ciphertext:
            self._incoming.write(ciphertext)
        else:
            self._incoming.write_eof()

    def read(self, limit: int) -> tuple[bytes, bool]:
        """The plaintext that what was received completes, and whether the peer ended.

        The end is a close_notify, or the socket's end without one (a "ragged"
        end, which ``SSLSocket`` also reports as a plain end by default).
        Raises ``ssl.SSLError`` for a broken record.
        """
        parts: list[bytes] = []
        obj = self._obj
        ended = False
        while True:
            try:
                part = obj.read(limit)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                ended = True
                break
            if not part:  # a close_notify was read
                ended = True
                break
            parts.append(part)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        return data, ended

    def write(self, plaintext: bytes | bytearray) -> None:
        """Encrypt ``plaintext``; the records wait in :meth:`take_output`."""
        self._obj.write(plaintext)

    def take_output(self) -> bytes:
        """Ciphertext to send: handshake messages, records, alerts."""
        return self._outgoing.read()
