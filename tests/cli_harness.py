"""Helpers for the ``rtms-proto`` command tests: a TLS fake server on loopback, the
command in a subprocess, WAV and JSON-lines readers.

Everything binds 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

from rtms_conformance.net import ServerThread
from rtms_conformance.server import ServerConfig, StreamInfo, StreamSpec
from rtms_conformance.tls import LoopbackTLS, make_test_ca

CLIENT_ID = "cli-test-client"
SECRET = "cli-test-secret-DO-NOT-PRINT-7f3a"
WEBHOOK_SECRET = "cli-webhook-secret-DO-NOT-PRINT-91bc"
TIMEOUT = 30.0


@lru_cache(maxsize=1)
def tls() -> LoopbackTLS:
    return make_test_ca(("127.0.0.1", "localhost"))


def server_config() -> ServerConfig:
    # Message timestamps anchored to the wall clock, as a real server's are.
    return ServerConfig(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        epoch_ms=round(time.time() * 1000 - time.monotonic() * 1000),
    )


@contextmanager
def fake_server(
    *, webhook_url: str | None = None, webhook_secret: str | None = None
) -> Iterator[ServerThread]:
    with ServerThread(
        server_config(),
        ssl_context=tls().server_context,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    ) as server:
        yield server


@dataclass
class Stream:
    """A stream served by the fake server, with its payload and CA files written."""

    info: StreamInfo
    payload: Path
    ca: Path


def add_stream(server: ServerThread, spec: StreamSpec, folder: Path) -> Stream:
    folder.mkdir(parents=True, exist_ok=True)
    info = server.add_stream(spec)
    payload = folder / "payload.json"
    payload.write_bytes(server.rtms_started_body(info))
    ca = tls().write_ca(folder / "ca.pem")
    return Stream(info, payload, ca)


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZM_RTMS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def reap_commands() -> Iterator[None]:
    """Kill what a failed test left running (import it into the test module)."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.returncode is None:  # never finished: the test failed on the way
            proc.kill()
            proc.communicate()


def start_cli(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bool = False,
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtms_app", *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
        cwd=cwd,
    )
    _STARTED.append(proc)
    return proc


def wait_reading_stdin(proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> None:
    """Wait until the command blocks reading its standard input (it has started up).

    Linux tells through ``/proc/<pid>/syscall`` (``read`` on fd 0); elsewhere
    this waits a few seconds instead.
    """
    path = Path(f"/proc/{proc.pid}/syscall")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fields = path.read_text().split()
        except OSError:  # pragma: no cover - not Linux
            time.sleep(3.0)
            return
        if fields[:2] == ["0", "0x0"]:
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the command did not start: {finish(proc)}")
        time.sleep(0.02)


def feed(proc: subprocess.Popen[str], data: bytes) -> None:
    """Write ``data`` to the command's standard input and close it."""
    assert proc.stdin is not None
    proc.stdin.write(data.decode())
    proc.stdin.close()
    proc.stdin = None  # communicate() must not touch it again


def finish(proc: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the command did not finish in {timeout} s:\n{out}\n{err}") from None
    return proc.returncode, out, err


def run_cli(
    args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = TIMEOUT
) -> tuple[int, str, str]:
    return finish(start_cli(args, env=env), timeout)


def record_args(stream: Stream | None, out: Path, *extra: str) -> list[str]:
    """``record`` arguments; with no stream, the payload comes on standard input."""
    return [
        "record",
        "--payload",
        "-" if stream is None else str(stream.payload),
        "--out",
        str(out),
        "--ca-file",
        str(tls().write_ca(out.parent / f"{out.name}-ca.pem")),
        "--allow-host",
        "127.0.0.1",
        "--client-id",
        CLIENT_ID,
        *extra,
    ]


def secret_env() -> dict[str, str]:
    return {"ZM_RTMS_SECRET": SECRET}


def read_wav(path: Path) -> tuple[int, int, bytes]:
    """(sample rate, channels, PCM bytes), read with the standard library."""
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        return w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def recording_ended(folder: Path) -> bool:
    """Whether the recording's last complete line in events.jsonl is SessionEnded.

    The command may be writing while a test polls: a line without its newline
    is still being written, so it is not read.
    """
    path = folder / "events.jsonl"
    if not path.exists():
        return False
    complete = path.read_bytes().rpartition(b"\n")[0]
    last = complete.rpartition(b"\n")[2]
    return bool(last) and json.loads(last).get("type") == "SessionEnded"


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def origin_ms(folder: Path) -> int:
    """The recording's time origin: the FIRST_PACKET_TIMESTAMP in events.jsonl."""
    for line in read_jsonl(folder / "events.jsonl"):
        if line["type"] == "FirstPacketReceived":
            value = line["timestamp"]
            assert isinstance(value, int)
            return value
    raise AssertionError("no FirstPacketReceived event")
