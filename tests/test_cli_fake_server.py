"""``rtms-proto fake-server`` as a user runs it: piped into ``record``, serving one
meeting after another, and its errors, each through the real command."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_harness import (
    CLIENT_ID,
    SECRET,
    WEBHOOK_SECRET,
    cli_env,
    finish,
    read_jsonl,
    read_wav,
    reap_commands,
    run_cli,
    start_cli,
    wait_until,
)

from rtms_conformance import cli as fake_cli
from rtms_transports import CLIENT_ENV, SECRET_ENV

__all__ = ["reap_commands"]

ENV = {"ZM_RTMS_CLIENT": CLIENT_ID, "ZM_RTMS_SECRET": SECRET}


def test_the_variable_names_are_zooms_like_the_other_commands() -> None:
    from rtms_app.cli import WEBHOOK_SECRET_ENV

    assert (fake_cli.CLIENT_ENV, fake_cli.SECRET_ENV) == (CLIENT_ENV, SECRET_ENV)
    assert fake_cli.WEBHOOK_SECRET_ENV == WEBHOOK_SECRET_ENV


def test_fake_server_piped_into_record(tmp_path: Path) -> None:
    """The pipe ends by itself: record reads one document, the server stops at --duration."""
    out = tmp_path / "rec"
    server = subprocess.Popen(
        [sys.executable, "-m", "rtms_app", "fake-server", "--duration", "3"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(ENV),
    )
    assert server.stdout is not None
    record = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rtms_app",
            "record",
            "--payload",
            "-",
            "--out",
            str(out),
            "--allow-host",
            "127.0.0.1",
        ],
        stdin=server.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(ENV),
    )
    server.stdout.close()  # the record command holds the pipe now
    try:
        code, rec_out, rec_err = finish(record)
        _, server_err = server.communicate(timeout=30)
    finally:
        for proc in (server, record):
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
    assert code == 0, rec_err
    assert server.returncode == 0, server_err
    assert "s of stream" in rec_out
    rate, _, pcm = read_wav(out / "audio.wav")
    assert len(pcm) / 2 / rate > 1.0  # seconds of the meeting, recorded
    events = read_jsonl(out / "events.jsonl")
    assert events[-1]["type"] == "SessionEnded"
    assert SECRET.encode() not in server_err


def _has_audio(wav: Path) -> Callable[[], bool]:
    """Half a second of 16 kHz mono audio is on disk."""
    return lambda: wav.exists() and wav.stat().st_size > 44 + 16000


def test_one_body_serves_meeting_after_meeting(tmp_path: Path) -> None:
    payload = tmp_path / "started.json"
    server = start_cli(["fake-server", "--streams", "2", "--payload-out", str(payload)], env=ENV)
    wait_until(lambda: payload.exists() and payload.read_bytes().endswith(b"\n"))
    for n in (1, 2):
        out = tmp_path / f"rec{n}"
        record = start_cli(
            ["record", "--payload", str(payload), "--out", str(out), "--allow-host", "127.0.0.1"],
            env=ENV,
        )
        wait_until(_has_audio(out / "audio.wav"))
        record.send_signal(signal.SIGINT)
        code, _, err = finish(record)
        assert code == 128 + signal.SIGINT, err
        assert err == "", err  # a graceful end asked by the user: no error
        events = read_jsonl(out / "events.jsonl")
        assert events[-1]["type"] == "SessionEnded"
        assert events[-1]["why"] in ("STREAM_TERMINATED", "CLOSED_BY_APP"), events[-1]
    code, _, err = finish(server)
    assert code == 0, err
    assert "meeting 1 ended; the next client gets a fresh meeting" in err
    assert "meeting 2 ended\n" in err
    assert json.loads(payload.read_bytes())["event"] == "meeting.rtms_started"


def test_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_cli(["fake-server", "--port", str(port)], env=ENV)
    assert code == 2 and out == ""
    assert err == (
        f"rtms-proto fake-server: error: cannot listen on 127.0.0.1:{port}: "
        "Address already in use\n"
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"ZM_RTMS_SECRET": SECRET}, "no client id: pass --client-id or set ZM_RTMS_CLIENT"),
        ([], {"ZM_RTMS_CLIENT": CLIENT_ID}, "no client secret: set ZM_RTMS_SECRET or pass"),
        (["--duration", "-1"], ENV, "argument --duration: must be a positive number"),
        (["--streams", "0"], ENV, "argument --streams: must be at least 1"),
        (["--port", "70000"], ENV, "argument --port: a port is 0..65535"),
        (["--webhook-url", "http://127.0.0.1:9/"], ENV, "--webhook-url needs a webhook secret"),
        ([f"--webhook-secret={WEBHOOK_SECRET}x", "--what"], ENV, "unrecognized arguments: --what"),
        (["--nope", SECRET], ENV, "unrecognized arguments: --nope <value>"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    code, out, err = run_cli(["fake-server", *args], env=env)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("rtms-proto fake-server: error: ")
    assert message in err
    assert SECRET not in err and WEBHOOK_SECRET not in err


def test_the_readme_pipe_runs_as_written(tmp_path: Path) -> None:
    """The README's fake-server block, copied alone into a shell, records a meeting."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    blocks = [
        b
        for b in re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
        if "fake-server" in b and "| rtms-proto record" in b
    ]
    assert len(blocks) == 1, blocks
    env = cli_env({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", blocks[0]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rate, _, pcm = read_wav(tmp_path / "fake1" / "audio.wav")
    assert len(pcm) / 2 / rate > 1.5
