"""``rtms-proto record`` end to end: the real command in a subprocess, the fake server on
loopback over TLS, one run per transport (run side by side to keep the suite short).

The recorded WAV must hold exactly the PCM the server sent, also across a media
and a signaling reconnect; transcripts must match the meeting's script; failures
end with one line on stderr and the right exit status; secrets never show.
"""

from __future__ import annotations

import functools
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_harness import (
    CLIENT_ID,
    SECRET,
    Stream,
    add_stream,
    cli_env,
    fake_server,
    feed,
    finish,
    origin_ms,
    read_jsonl,
    read_wav,
    reap_commands,
    record_args,
    secret_env,
    start_cli,
    wait_reading_stdin,
    wait_until,
)

from rtms_app.cli import main
from rtms_conformance import faults as f
from rtms_conformance.meeting import MeetingScript, MeetingSpec
from rtms_conformance.net import RunningServer, ServerThread
from rtms_conformance.server import StreamSpec
from rtms_conformance.timeline import Utterance
from rtms_proto import AudioParams, MediaType, handshake_signature
from rtms_proto.actions import SocketRole
from rtms_proto.enums import DataOption, StopReason

FLAVOURS = ("asyncio", "trio", "blocking")
__all__ = ["reap_commands"]  # the harness's fixture, used by every test here


def spec(name: str, meeting: MeetingSpec, faults: tuple[f.Fault, ...] = ()) -> StreamSpec:
    return StreamSpec(
        meeting_uuid=f"{name}-uuid==",
        rtms_stream_id=f"stream-{name}",
        meeting=meeting,
        faults=faults,
    )


def expected_pcm(
    server: ServerThread,
    sid: str,
    origin: int,
    ms: int,
    *,
    params: AudioParams | None = None,
    user_id: int | None = None,
) -> bytes:
    """What the server sent for ``ms`` milliseconds from ``origin`` (mixed, or one user)."""
    audio = params or AudioParams()

    def compute(running: RunningServer) -> bytes:
        return running.server.expected_audio(sid, audio, origin, origin + ms, user_id=user_id)

    return server.call(compute)


def launch(
    server: ServerThread, tmp_path: Path, runs: dict[str, tuple[StreamSpec, list[str]]]
) -> dict[str, tuple[Stream, Path, subprocess.Popen[str]]]:
    """Start one ``record`` per transport, reading its payload from standard input.

    The streams are added only once every command has started up, so the
    meetings' fault times do not depend on how fast Python starts.
    """
    procs = {}
    for flavour, (_, extra) in runs.items():
        out = tmp_path / f"out-{flavour}"
        args = record_args(None, out, "--transport", flavour, *extra)
        procs[flavour] = (out, start_cli(args, env=secret_env(), stdin=True))
    for _, proc in procs.values():
        wait_reading_stdin(proc)
    started = {}
    for flavour, (out, proc) in procs.items():
        stream = add_stream(server, runs[flavour][0], tmp_path / f"in-{flavour}")
        feed(proc, stream.payload.read_bytes())
        started[flavour] = (stream, out, proc)
    return started


def script_utterances(meeting: MeetingSpec) -> dict[str, Utterance]:
    script = MeetingScript(meeting)
    end = round((meeting.duration or 0) * 1000)
    found = [e.event for e in script.events_between(-1, end) if isinstance(e.event, Utterance)]
    return {u.text: u for u in found}


def check_transcript(folder: Path, meeting: MeetingSpec, origin: int) -> None:
    """Every line is one of the script's utterances, exactly; the last one is there."""
    script = script_utterances(meeting)
    lines = read_jsonl(folder / "transcript.jsonl")
    assert lines, "no transcript"
    for line in lines:
        u = script[str(line["text"])]
        assert line["user_id"] == u.user_id
        assert line["start_time"] == origin + round(u.start * 1000)
        assert line["end_time"] == origin + round(u.end * 1000)
        assert line["language_name"] == "english"
        assert isinstance(line["user_name"], str) and line["user_name"] in str(line["text"])
    assert lines[-1]["text"] == max(script.values(), key=lambda u: u.start).text
    vtt = (folder / "transcript.vtt").read_text("utf-8")
    assert vtt.startswith("WEBVTT\n")
    assert vtt.count(" --> ") == len(lines)
    assert f"<v {lines[-1]['user_name']}>{lines[-1]['text']}" in vtt


def has_audio(wav: Path, seconds: float) -> bool:
    """Whether the WAV header already counts ``seconds`` of 16 kHz mono audio."""
    return wav.exists() and wav.stat().st_size > 44 + 32_000 * seconds


def assert_no_secret(*texts: str) -> None:
    signature = handshake_signature(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        instance_id="x",
        rtms_stream_id="y",
    )
    for text in texts:
        assert SECRET not in text
        assert signature not in text


# --- a normal recording, each transport --------------------------------------------------------

MEETING = MeetingSpec(duration=3.0, turn=1.0, pause=0.3, chat_interval=None, share_at=None)


def test_record_each_transport(tmp_path: Path) -> None:
    with fake_server() as server:
        extra = {
            "asyncio": ["--media", "audio,transcript,video"],
            "trio": ["--audio-streams", "per-speaker", "--layout", "unified", "--no-gap-fill"],
            "blocking": ["-vv", "--save-wire"],
        }
        runs = launch(server, tmp_path, {fl: (spec(fl, MEETING), extra[fl]) for fl in FLAVOURS})
        results = {flavour: finish(proc) for flavour, (_, _, proc) in runs.items()}
        for flavour, (code, stdout, stderr) in results.items():
            assert code == 0, (flavour, stdout, stderr)
            assert_no_secret(stdout, stderr)
            assert re.search(rf"Recorded \d+\.\d s of stream stream-{flavour} into", stdout)
        for flavour, (stream, out, _) in runs.items():
            sid = stream.info.rtms_stream_id
            origin = origin_ms(out)
            assert origin == stream.info.media_epoch_ms
            if flavour == "trio":
                # one file per speaker, each exactly that speaker's packets
                for person in MEETING.people:
                    rate, channels, pcm = read_wav(out / f"audio-{person.user_id}.wav")
                    assert (rate, channels) == (16000, 1)
                    want = expected_pcm(
                        server,
                        sid,
                        origin,
                        3000,
                        params=AudioParams(data_opt=DataOption.AUDIO_MULTI_STREAMS),
                        user_id=person.user_id,
                    )
                    assert pcm == want, person
                assert not (out / "audio.wav").exists()
            else:
                rate, channels, pcm = read_wav(out / "audio.wav")
                assert (rate, channels) == (16000, 1)
                assert len(pcm) == 3000 * 32  # the whole meeting, no more, no less
                assert pcm == expected_pcm(server, sid, origin, 3000)
            check_transcript(out, MEETING, origin)
            events = read_jsonl(out / "events.jsonl")
            assert all("type" in e for e in events)
            assert events[-1]["type"] == "SessionEnded"
            assert events[-1]["why"] == "STREAM_TERMINATED"
        assert sorted(p.suffix for p in (tmp_path / "out-asyncio" / "video").iterdir()) != []
        # -vv logs connections, never secrets; the wire log keeps no secret either
        blocking_err = results["blocking"][2]
        assert "signaling handshake done" in blocking_err
        wire = (tmp_path / "out-blocking" / "wire.rtms").read_bytes()
        assert SECRET.encode() not in wire
        for path in (tmp_path / "out-blocking").rglob("*"):
            if path.is_file() and path.name != "wire.rtms":
                assert SECRET not in path.read_text("utf-8", "replace")


# --- reconnects, and replay of the wire log ------------------------------------------------------

RECONNECT_MEETING = MeetingSpec(
    duration=4.5, turn=1.0, pause=0.3, chat_interval=None, share_at=None
)
RECONNECT_FAULTS: tuple[f.Fault, ...] = (
    f.InterruptMedia(at=1.2, media_type=MediaType.AUDIO, drop=True),
    f.DropSocket(at=2.8, role=SocketRole.SIGNALING),
)


def test_record_across_media_and_signaling_reconnects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_server() as server:
        runs = launch(
            server,
            tmp_path,
            {
                fl: (spec(f"re-{fl}", RECONNECT_MEETING, RECONNECT_FAULTS), ["--save-wire"])
                for fl in FLAVOURS
            },
        )
        for flavour, (stream, out, proc) in runs.items():
            code, stdout, err = finish(proc)
            assert code == 0, (flavour, stdout, err)
            status = server.status(stream.info)
            assert status.signaling_handshakes >= 2
            origin = origin_ms(out)
            _, _, pcm = read_wav(out / "audio.wav")
            # nothing lost, nothing duplicated: exactly the server's audio, end to end
            assert len(pcm) == 4500 * 32, flavour
            assert pcm == expected_pcm(server, stream.info.rtms_stream_id, origin, 4500), flavour
            events = read_jsonl(out / "events.jsonl")
            done = {
                (e["scope"], e["media_type"]) for e in events if e["type"] == "ReconnectCompleted"
            }
            assert ("MEDIA", "audio") in done, flavour
            assert ("SIGNALING", None) in done, flavour
            assert "wire.rtms" in stdout

            # replay: the same inputs through a fresh session give the same files
            again = tmp_path / f"replay-{flavour}"
            assert main(["replay", str(out / "wire.rtms"), "--out", str(again)]) == 0
            assert "stream_terminated" in capsys.readouterr().out
            for path in out.rglob("*"):
                if path.is_file() and path.name not in ("wire.rtms",):
                    twin = again / path.relative_to(out)
                    assert twin.read_bytes() == path.read_bytes(), path


# --- failures: one line on stderr ---------------------------------------------------------------


def test_record_failures_one_line_each(tmp_path: Path) -> None:
    meeting = MeetingSpec(duration=5.0)
    with fake_server() as server:
        reject = add_stream(
            server,
            spec(
                "reject",
                meeting,
                (f.RejectHandshake(status=3, reason="invalid signature"),),
            ),
            tmp_path / "reject",
        )
        ok = add_stream(server, spec("tls", meeting), tmp_path / "tls")
        cases = {
            "rejected": record_args(reject, tmp_path / "o1", "--transport", "trio"),
            "tls": [
                "record",
                "--payload",
                str(ok.payload),
                "--out",
                str(tmp_path / "o2"),
                "--allow-host",
                "127.0.0.1",
                "--client-id",
                CLIENT_ID,
                "--transport",
                "blocking",
            ],
            "refused": [
                "record",
                "--payload",
                str(ok.payload),
                "--out",
                str(tmp_path / "o3"),
                "--ca-file",
                str(ok.ca),
                "--client-id",
                CLIENT_ID,
            ],
        }
        procs = {name: start_cli(args, env=secret_env()) for name, args in cases.items()}
        results = {name: finish(proc) for name, proc in procs.items()}
    for _, out, err in results.values():
        assert_no_secret(out, err)
        assert len(err.splitlines()) == 1, err
    code, _, err = results["rejected"]
    assert code == 1
    assert err == (
        "rtms-proto record: error: the RTMS server rejected the handshake: "
        "status 3 INVALID_SIGNATURE, reason: invalid signature\n"
    )
    code, _, err = results["tls"]
    assert code == 1
    assert err.startswith("rtms-proto record: error: cannot connect to the RTMS server: TLS")
    assert "certificate verification failed" in err
    code, _, err = results["refused"]
    assert code == 2
    assert "refused host" in err and "'127.0.0.1'" in err and "--allow-host" in err


# What a terminal would act on: C0/C1 controls, DEL, line separators, bidi controls.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")
HOSTILE_REASON = "\x1b]0;owned\x07\x1b[2J\r\nrtms-proto record: error: all fine\u202e"


def test_server_text_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    """A rejection reason with ESC, BEL and CR LF once reached the terminal raw."""
    meeting = MeetingSpec(duration=5.0)
    with fake_server() as server:
        procs = {}
        for name, extra in {"plain": [], "verbose": ["-vv"]}.items():
            stream = add_stream(
                server,
                spec(
                    f"hostile-{name}",
                    meeting,
                    (f.RejectHandshake(status=3, reason=HOSTILE_REASON),),
                ),
                tmp_path / name,
            )
            args = record_args(stream, tmp_path / f"o-{name}", "--transport", "blocking", *extra)
            procs[name] = start_cli(args, env=secret_env())
        results = {name: finish(proc) for name, proc in procs.items()}
    code, out, err = results["plain"]
    assert code == 1
    assert err == (
        "rtms-proto record: error: the RTMS server rejected the handshake: status 3 "
        "INVALID_SIGNATURE, reason: \\x1b]0;owned\\x07\\x1b[2J\\x0d\\x0artms-proto record: "
        "error: all fine\\u202e\n"
    )
    code, out, err = results["verbose"]
    assert code == 1
    assert "\\x1b]0;owned" in err  # the log shows the reason, escaped
    for _, out, err in results.values():
        assert not RAW_CONTROL.search(out + err), err
        assert_no_secret(out, err)


# The command with a 50 kB file size limit: a write past it fails (EFBIG) as on a full
# disk (SIGXFSZ, which would kill the process instead, is ignored).
LIMITED_COMMAND = (
    "import resource, runpy, signal; "
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000)); "
    "runpy.run_module('rtms_app', run_name='__main__')"
)


def test_full_disk_ends_with_one_line_and_consistent_files(tmp_path: Path) -> None:
    """A full disk once gave a traceback, and a WAV header saying 7.0 s with 7.93 s on disk."""
    meeting = MeetingSpec(duration=4.0, turn=1.0, pause=0.3, chat_interval=None, share_at=None)
    with fake_server() as server:
        procs = {}
        for flavour in FLAVOURS:
            out = tmp_path / f"out-{flavour}"
            extra = ["--save-wire"] if flavour == "blocking" else []
            args = record_args(None, out, "--transport", flavour, *extra)
            procs[flavour] = (
                out,
                subprocess.Popen(
                    [sys.executable, "-c", LIMITED_COMMAND, *args],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=cli_env(secret_env()),
                ),
            )
        runs = {}
        for flavour, (out, proc) in procs.items():
            wait_reading_stdin(proc)  # started up: the meeting's time does not depend on it
            stream = add_stream(
                server, spec(f"full-{flavour}", meeting), tmp_path / f"in-{flavour}"
            )
            feed(proc, stream.payload.read_bytes())
            runs[flavour] = (stream, out, proc)
        results = {flavour: finish(proc) for flavour, (_, _, proc) in runs.items()}
        for flavour, (stream, out, _) in runs.items():
            code, stdout, err = results[flavour]
            assert code == 1, (flavour, err)
            # the wire log holds every inbound frame: it fills up first
            failed = out / ("wire.rtms" if flavour == "blocking" else "audio.wav")
            assert err == f"rtms-proto record: error: cannot write {failed}: File too large\n"
            wav = out / "audio.wav"
            _, _, pcm = read_wav(wav)
            assert wav.stat().st_size == 44 + len(pcm)  # the header counts what is on disk
            origin = origin_ms(out)
            sid = stream.info.rtms_stream_id
            assert pcm == expected_pcm(server, sid, origin, len(pcm) // 32)
            assert all("type" in e for e in read_jsonl(out / "events.jsonl"))
            assert "s of stream" in stdout and "audio.wav" in stdout
            if flavour != "blocking":
                assert len(pcm) >= 50_000 - 44 - 640  # filled up to the limit
    # the wire log ends with whole records: it replays
    again = tmp_path / "again"
    assert (
        main(["replay", str(tmp_path / "out-blocking" / "wire.rtms"), "--out", str(again), "-q"])
        == 0
    )
    assert (again / "events.jsonl").exists()


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The command in this process (argument errors end before any I/O)."""
    try:
        code = main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_record_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ZM_RTMS_CLIENT", "ZM_RTMS_SECRET", "ZM_RTMS_CA"):
        monkeypatch.delenv(name, raising=False)
    payload = tmp_path / "p.json"
    payload.write_text(
        json.dumps(
            {
                "event": "meeting.rtms_started",
                "payload": {
                    "meeting_uuid": "u",
                    "rtms_stream_id": "s",
                    "server_urls": "wss://rtms.zoom.us/s",
                },
            }
        )
    )
    base = ["record", "--payload", str(payload), "--out", str(tmp_path / "o")]
    no_dir = tmp_path / "none" / "w.rtms"
    cases: list[tuple[list[str], bool, str]] = [
        ([*base, "--media", "smell"], False, "unknown media type 'smell'"),
        ([*base, "--transport", "curl"], False, "argument --transport: invalid choice"),
        (["record", "--out", "x"], False, "the following arguments are required: --payload"),
        (base, False, "no client id: pass --client-id or set ZM_RTMS_CLIENT"),
        ([*base, "--client-id", "c"], False, "no client secret: set ZM_RTMS_SECRET"),
        (
            [*base, "--client-id", "c", "--ca-file", str(tmp_path / "none.pem")],
            True,
            "cannot load the CA file",
        ),
        (
            ["record", "--payload", str(tmp_path / "missing.json"), "--out", "x"],
            False,
            "cannot read the payload",
        ),
        (
            [*base, "--out", str(tmp_path / "o2"), "--client-id", "c", "--save-wire", str(no_dir)],
            True,
            f"cannot write {no_dir}: No such file or directory",
        ),
        # a mistyped flag must not echo its value: it may be the secret
        (
            [*base, f"--client-secrt={SECRET}"],
            False,
            "unrecognized arguments: --client-secrt=<value>",
        ),
        (
            [*base, "--client-secrt", SECRET],
            False,
            "unrecognized arguments: --client-secrt <value>",
        ),
    ]
    for args, with_secret, want in cases:
        if with_secret:
            monkeypatch.setenv("ZM_RTMS_SECRET", SECRET)
        else:
            monkeypatch.delenv("ZM_RTMS_SECRET", raising=False)
        code, out, err = run_main(args, capsys)
        assert code == 2, err
        assert len(err.splitlines()) == 1, err
        assert want in err, err
        assert SECRET not in out + err

    monkeypatch.setenv("ZM_RTMS_SECRET", SECRET)
    bad = tmp_path / "bad.json"
    bad.write_text('{"event": "meeting.rtms_started", "payload": {"meeting_uuid": "u"}}')
    code, _, err = run_main(
        ["record", "--payload", str(bad), "--out", str(tmp_path / "o"), "--client-id", "c"], capsys
    )
    assert code == 2 and "not an rtms_started webhook" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written for a refused run


# --- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_closes_the_stream_and_keeps_the_files(tmp_path: Path) -> None:
    endless = MeetingSpec(turn=1.0, pause=0.3, chat_interval=None, share_at=None)
    with fake_server() as server:
        runs = {}
        for flavour in FLAVOURS:
            stream = add_stream(server, spec(f"int-{flavour}", endless), tmp_path / f"in-{flavour}")
            out = tmp_path / f"out-{flavour}"
            proc = start_cli(record_args(stream, out, "--transport", flavour), env=secret_env())
            runs[flavour] = (stream, out, proc)
        for _, out, _ in runs.values():
            wait_until(functools.partial(has_audio, out / "audio.wav", 1.2))
        for _, _, proc in runs.values():
            proc.send_signal(signal.SIGINT)
        for flavour, (stream, out, proc) in runs.items():
            code, stdout, err = finish(proc)
            assert code == 128 + signal.SIGINT, (flavour, err)
            assert err == "", err
            # the stream was closed gracefully: Zoom was asked to end it
            status = server.status(stream.info)
            assert status.ended and status.stop_reason == StopReason.RECEIVER_REQUEST_CLOSE
            events = read_jsonl(out / "events.jsonl")
            assert events[-1]["type"] == "SessionEnded"
            assert events[-1]["why"] == "CLOSED_BY_APP", flavour
            _, _, pcm = read_wav(out / "audio.wav")
            assert len(pcm) >= 32 * 1200
            origin = origin_ms(out)
            assert pcm == expected_pcm(server, stream.info.rtms_stream_id, origin, len(pcm) // 32)
            assert "s of stream" in stdout


def test_console_script_help_lists_commands() -> None:
    script = Path(sys.executable).parent / "rtms-proto"
    if not script.exists():  # pragma: no cover - not installed as a distribution
        pytest.skip("the rtms-proto console script is not installed")
    proc = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0
    for word in ("demo", "record", "listen", "replay", "fake-server"):
        assert word in proc.stdout
