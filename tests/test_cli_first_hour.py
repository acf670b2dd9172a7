"""What a new user trips over in the first hour, each through the real command:
folders that already hold a recording, replay that would rewrite the originals,
a first connection that fails, an interrupted demo, ``-vv``."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from pathlib import Path

from cli_harness import (
    CLIENT_ID,
    SECRET,
    Stream,
    add_stream,
    fake_server,
    finish,
    read_jsonl,
    read_wav,
    reap_commands,
    record_args,
    run_cli,
    secret_env,
    start_cli,
    wait_until,
)

from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import RunningServer, ServerThread
from rtms_conformance.server import StreamSpec
from rtms_proto import SocketRole
from rtms_proto.messages import SignalingHandshakeRequest

__all__ = ["reap_commands"]

ENV = {"ZM_RTMS_CLIENT": CLIENT_ID, "ZM_RTMS_SECRET": SECRET}


def refused_payload(tmp_path: Path) -> Path:
    """A webhook body whose server refuses connections (port 9 on loopback)."""
    path = tmp_path / "started.json"
    payload = {"meeting_uuid": "m==", "rtms_stream_id": "sid", "server_urls": "wss://127.0.0.1:9/x"}
    path.write_text(json.dumps({"event": "meeting.rtms_started", "payload": payload}))
    return path


def record(payload: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    args = ["record", "--payload", str(payload), "--out", str(out), "--allow-host", "127.0.0.1"]
    return run_cli([*args, *extra], env=ENV)


def test_record_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    payload = refused_payload(tmp_path)
    out = tmp_path / "meeting1"
    out.mkdir()
    (out / "audio.wav").write_bytes(b"an earlier recording")
    code, stdout, err = record(payload, out)
    assert code == 2 and stdout == ""
    assert err == (
        f"rtms-proto record: error: {str(out)!r} is not empty: choose another --out, "
        "or pass --force to write into it anyway\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["audio.wav"]
    # --force goes on (here to a refused connection): what was there stays, nothing is added
    code, _, err = record(payload, out, "--force")
    assert code == 1
    assert err.startswith("rtms-proto record: error: cannot connect to the RTMS server: ")
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["audio.wav"]
    assert (out / "audio.wav").read_bytes() == b"an earlier recording"


def test_a_failed_first_connection_leaves_no_folder(tmp_path: Path) -> None:
    payload = refused_payload(tmp_path)
    for flavour in ("asyncio", "blocking"):
        out = tmp_path / f"new-{flavour}"
        code, stdout, err = record(payload, out, "--save-wire", "--transport", flavour)
        assert code == 1, err
        assert stdout == ""
        assert len(err.splitlines()) == 1 and "cannot connect to 127.0.0.1:9" in err
        assert not out.exists()  # no half-made recording claiming it was stopped


def test_demo_twice_then_interrupted(tmp_path: Path) -> None:
    """The second demo goes to a fresh numbered folder and says so; Ctrl-C after a
    couple of seconds gives a summary with the real length; a clean end has no
    reconnect in its events."""
    code, out, err = finish(start_cli(["demo", "--duration", "2", "-q"], cwd=tmp_path))
    assert code == 0, err
    events = read_jsonl(tmp_path / "rtms-demo" / "events.jsonl")
    assert events[-1]["why"] == "STREAM_TERMINATED"
    assert not [e for e in events if e["type"] == "ReconnectScheduled"], events[-8:]

    proc = start_cli(["demo", "--duration", "30"], cwd=tmp_path)
    wav = tmp_path / "rtms-demo-2" / "audio.wav"
    wait_until(lambda: wav.exists() and wav.stat().st_size > 44 + 2 * 32000)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 128 + signal.SIGINT, err
    assert err.startswith("rtms-demo/ is not empty: recording into rtms-demo-2/\n")
    match = re.search(r"Recorded the first (\d+\.\d) s of a 30 s synthetic meeting into", out)
    assert match is not None, out
    rate, _, pcm = read_wav(wav)
    assert float(match.group(1)) == round(len(pcm) / 2 / rate, 1)
    assert "rtms-demo-2/" in out


def test_replay_never_rewrites_the_originals_unless_told(tmp_path: Path) -> None:
    code, _, err = finish(start_cli(["demo", "--duration", "1", "-q", "--save-wire"], cwd=tmp_path))
    assert code == 0, err
    folder = tmp_path / "rtms-demo"
    wire = folder / "wire.rtms"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    code, out, err = run_cli(["replay", str(wire)])
    assert code == 2 and out == ""
    assert err.startswith("rtms-proto replay: error: one of the arguments --out --in-place")
    code, out, err = run_cli(["replay", str(wire), "--out", str(folder)])
    assert code == 2 and len(err.splitlines()) == 1 and "is not empty" in err
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = run_cli(["replay", str(wire), "--out", str(blocker / "sub")])
    assert code == 2 and out == ""
    assert (
        err
        == f"rtms-proto replay: error: cannot write to {str(blocker / 'sub')!r}: Not a directory\n"
    )

    original = (folder / "audio.wav").read_bytes()
    code, out, err = run_cli(["replay", str(wire), "--in-place", "-q"])
    assert code == 0, err
    assert (folder / "audio.wav").read_bytes() == original  # replay is byte-identical


def test_vv_shows_our_debug_lines_not_asyncio_s(tmp_path: Path) -> None:
    code, _, err = finish(start_cli(["demo", "--duration", "1", "-q", "-vv"], cwd=tmp_path))
    assert code == 0, err
    assert " DEBUG [" in err  # the transport's own debug lines
    assert "Using selector" not in err
    assert "INFO [" in err and "session ended: stream_terminated" in err
    assert "ReconnectScheduled" not in err  # lines say what is scheduled, not a bare name


def handshakes(server: ServerThread, stream: Stream) -> list[bool | None]:
    """The ``buffer_data`` of each signaling handshake the server got for ``stream``."""

    def received(running: RunningServer) -> list[bool | None]:
        return [
            m.buffer_data
            for m in running.server.received(stream.info, SocketRole.SIGNALING)
            if isinstance(m, SignalingHandshakeRequest)
        ]

    return server.call(received)


def test_buffer_data_switch(tmp_path: Path) -> None:
    """Joined 2 s into a 4 s meeting: Zoom's default delivers the 2 s before too,
    --no-buffer-data starts the audio at the join."""
    meeting = MeetingSpec(duration=4.0, turn=1.0, pause=0.2, chat_interval=None, share_at=None)
    with fake_server() as server:
        runs = {}
        for switch in ("--buffer-data", "--no-buffer-data"):
            stream = add_stream(
                server,
                StreamSpec(
                    meeting_uuid=f"{switch}==", rtms_stream_id=f"s{switch}", meeting=meeting
                ),
                tmp_path / f"in{switch}",
            )
            runs[switch] = stream
        time.sleep(2.0)
        procs = {
            switch: start_cli(
                [*record_args(stream, tmp_path / f"out{switch}"), switch, "-q"],
                env=secret_env(),
            )
            for switch, stream in runs.items()
        }
        results = {switch: finish(proc) for switch, proc in procs.items()}
        sent = {switch: handshakes(server, stream) for switch, stream in runs.items()}
    seconds = {}
    for switch, (code, _, err) in results.items():
        assert code == 0, err
        rate, _, pcm = read_wav(tmp_path / f"out{switch}" / "audio.wav")
        seconds[switch] = len(pcm) / 2 / rate
    assert sent == {"--buffer-data": [True], "--no-buffer-data": [False]}
    assert seconds["--buffer-data"] > 3.5, seconds  # the whole meeting, backlog first
    assert seconds["--no-buffer-data"] < 2.6, seconds  # from the join on


def test_listen_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_cli(
            ["listen", "--port", str(port), "--out", str(tmp_path / "rec")],
            env={**ENV, "ZM_RTMS_WEBHOOK_SECRET": "whsec-not-printed"},
        )
    assert code == 2 and out == ""
    assert err == (
        f"rtms-proto listen: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_payload_size_is_bounded(tmp_path: Path) -> None:
    from rtms_app.cli import PAYLOAD_LIMIT

    big = tmp_path / "big.json"
    big.write_text('{"pad": "' + "x" * PAYLOAD_LIMIT + '"}')
    code, out, err = record(big, tmp_path / "out")
    assert code == 2 and out == ""
    assert err == f"rtms-proto record: error: the payload is larger than {PAYLOAD_LIMIT} bytes\n"
    # on standard input, an endless document is cut at the same size (no waiting for EOF)
    args = ["record", "--payload", "-", "--out", str(tmp_path / "out2"), "--allow-host", "x"]
    proc = start_cli(args, env=ENV, stdin=True)
    assert proc.stdin is not None
    proc.stdin.write('{"pad": "' + "x" * (PAYLOAD_LIMIT + 70_000))
    proc.stdin.flush()
    code, out, err = finish(proc)
    assert code == 2
    assert err == f"rtms-proto record: error: the payload is larger than {PAYLOAD_LIMIT} bytes\n"
    assert not (tmp_path / "out2").exists()
