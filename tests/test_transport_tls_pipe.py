"""TLS through memory buffers (the blocking driver's TLS), against a real server end.

The server end is an ``ssl.SSLObject`` over memory too, so every byte that
crosses is visible and the tests need no socket.
"""

from __future__ import annotations

import contextlib
import ssl

import pytest

from rtms_conformance.tls import LoopbackTLS, make_test_ca
from rtms_transports._tls_pipe import TlsPipe


class Server:
    """The server end of one TLS connection, over memory."""

    def __init__(self, tls: LoopbackTLS) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = tls.server_context.wrap_bio(self.incoming, self.outgoing, server_side=True)

    def step(self, data: bytes) -> bytes:
        """Take the client's bytes; what the server sends back."""
        self.incoming.write(data)
        with contextlib.suppress(ssl.SSLWantReadError):  # more to come, or done
            self.obj.do_handshake()
        return self.outgoing.read()

    def send(self, plaintext: bytes) -> bytes:
        self.obj.write(plaintext)
        return self.outgoing.read()


@pytest.fixture(scope="module")
def tls() -> LoopbackTLS:
    return make_test_ca()


def connected(tls: LoopbackTLS, host: str = "127.0.0.1") -> tuple[TlsPipe, Server]:
    client = TlsPipe(tls.client_context(), host)
    server = Server(tls)
    done = client.handshake()
    while not done:
        answer = server.step(client.take_output())
        client.receive(answer)
        done = client.handshake()
    # The client's last flight; the server answers with session tickets.
    client.receive(server.step(client.take_output()))
    assert client.read(1 << 16) == (b"", False)
    return client, server


def test_many_small_records_come_out_of_one_read(tls: LoopbackTLS) -> None:
    client, server = connected(tls)
    records = b"".join(server.send(b"message %d;" % i) for i in range(200))
    client.receive(records)
    data, ended = client.read(1 << 16)
    assert data == b"".join(b"message %d;" % i for i in range(200))
    assert not ended
    assert client.read(1 << 16) == (b"", False)


def test_a_record_cut_anywhere_waits_for_its_end(tls: LoopbackTLS) -> None:
    client, server = connected(tls)
    record = server.send(b"x" * 1000)
    got = b""
    for i in range(0, len(record), 7):
        client.receive(record[i : i + 7])
        data, ended = client.read(1 << 16)
        assert not ended
        got += data
    assert got == b"x" * 1000


def test_plaintext_is_encrypted_for_the_server(tls: LoopbackTLS) -> None:
    client, server = connected(tls)
    client.write(b"hello server")
    server.incoming.write(client.take_output())
    assert server.obj.read(100) == b"hello server"


def test_close_notify_ends_after_the_data_before_it(tls: LoopbackTLS) -> None:
    client, server = connected(tls)
    wire = server.send(b"last words")
    with pytest.raises(ssl.SSLWantReadError):
        server.obj.unwrap()  # sends close_notify, then waits for ours
    wire += server.outgoing.read()
    client.receive(wire)
    assert client.read(1 << 16) == (b"last words", True)


def test_an_end_without_close_notify_is_an_end(tls: LoopbackTLS) -> None:
    client, server = connected(tls)
    client.receive(server.send(b"cut off"))
    client.receive(b"")
    assert client.read(1 << 16) == (b"cut off", True)


def test_a_corrupted_record_raises(tls: LoopbackTLS) -> None:
    client, server = connected(tls)
    record = bytearray(server.send(b"y" * 100))
    record[-1] ^= 0xFF
    client.receive(bytes(record))
    with pytest.raises(ssl.SSLError):
        client.read(1 << 16)


def test_a_certificate_for_another_name_fails_verification(tls: LoopbackTLS) -> None:
    client = TlsPipe(tls.client_context(), "rtms.example.com")
    server = Server(tls)
    client.handshake()
    client.receive(server.step(client.take_output()))
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        client.handshake()
