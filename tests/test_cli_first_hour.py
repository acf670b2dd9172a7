"""What a new user trips over in the first hour, each through the real command:
folders that already hold a recording, replay that would rewrite the originals,
a first connection that fails, an interrupted demo, ``-vv``."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from cli_harness import (
    CLIENT_ID,
    SECRET,
    finish,
    read_jsonl,
    read_wav,
    reap_commands,
    run_cli,
    start_cli,
    wait_until,
)

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
