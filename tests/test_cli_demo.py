"""``rtms-proto demo``: the first command a new user runs, on each transport."""

from __future__ import annotations

from pathlib import Path

from cli_harness import finish, read_jsonl, read_wav, reap_commands, start_cli

FLAVOURS = ("asyncio", "trio", "blocking")
__all__ = ["reap_commands"]  # the harness's fixture, used by every test here


def test_demo_each_transport(tmp_path: Path) -> None:
    procs = {}
    for flavour in FLAVOURS:
        cwd = tmp_path / flavour
        cwd.mkdir()
        args = ["demo", "--duration", "2", "--transport", flavour]
        if flavour == "trio":
            args += ["--out", str(cwd / "elsewhere"), "--save-wire"]
        procs[flavour] = (cwd, start_cli(args, cwd=cwd))
    for flavour, (cwd, proc) in procs.items():
        code, out, err = finish(proc)
        assert code == 0, (flavour, out, err)
        folder = cwd / ("elsewhere" if flavour == "trio" else "rtms-demo")
        # the summary names every file
        assert "Recorded a 2 s synthetic meeting into" in out
        for name in ("audio.wav", "transcript.jsonl", "transcript.vtt", "events.jsonl", "video/"):
            assert name in out, (name, out)
        assert "Fake RTMS server on wss://127.0.0.1:" in err
        # a playable WAV of the whole meeting
        rate, channels, pcm = read_wav(folder / "audio.wav")
        assert (rate, channels) == (16000, 1)
        assert len(pcm) == 2 * 32000
        assert any(pcm), "the meeting is not silent"
        transcript = read_jsonl(folder / "transcript.jsonl")
        assert transcript and all(line["text"] for line in transcript)
        assert (folder / "transcript.vtt").read_text("utf-8").startswith("WEBVTT")
        events = read_jsonl(folder / "events.jsonl")
        types = [e["type"] for e in events]
        assert "ParticipantsJoined" in types
        assert types[-1] == "SessionEnded" and events[-1]["why"] == "STREAM_TERMINATED"
        frames = list((folder / "video").glob("*.jpg"))
        assert len(frames) >= 5
        assert all(p.read_bytes()[:3] == b"\xff\xd8\xff" for p in frames)
    assert (tmp_path / "trio" / "elsewhere" / "wire.rtms").exists()


def test_demo_refuses_bad_duration(tmp_path: Path) -> None:
    code, _, err = finish(start_cli(["demo", "--duration", "-3"], cwd=tmp_path))
    assert code == 2
    assert err.startswith("rtms-proto demo: error: argument --duration: must be a positive")
    assert len(err.splitlines()) == 1
