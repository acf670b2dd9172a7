"""The NATS test harness survives a port taken between finding it free and binding it."""

from __future__ import annotations

import socket
from pathlib import Path

from nats_harness import NatsServer


def test_a_server_whose_port_was_taken_starts_again_on_another(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server = NatsServer(tmp_path / "nats")
        server.port = taken  # as if another process took it after free_port()
        server.start()
        try:
            server.wait_listening()
            server.wait_healthy()
            assert server.port != taken
            assert "address already in use" in server.log.read_text()
        finally:
            server.stop()
