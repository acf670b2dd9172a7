"""``rtms-proto listen``: the webhook receiver, pure and over real HTTP.

The pure :class:`WebhookReceiver` is checked request by request; then the
command runs in a subprocess, gets webhooks from a real HTTP client (signed,
unsigned, wrongly signed, stale, URL validation, duplicates) and from the fake
server (failover, stop), and records two streams at once.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from cli_harness import (
    CLIENT_ID,
    SECRET,
    WEBHOOK_SECRET,
    add_stream,
    fake_server,
    finish,
    origin_ms,
    read_jsonl,
    read_wav,
    reap_commands,
    recording_ended,
    start_cli,
    tls,
    wait_until,
)

from rtms_app.cli import describe_end
from rtms_app.webhook_server import WebhookReceiver
from rtms_conformance import faults as f
from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import RunningServer, post_webhook
from rtms_conformance.server import StreamSpec
from rtms_conformance.webhooks import rtms_stopped_body, webhook_headers
from rtms_proto import AudioParams, RemoteProtocolError
from rtms_proto import events as ev
from rtms_proto.enums import FailureReason, Product, StopReason
from rtms_proto.webhooks import Disposition, sign_webhook

__all__ = ["reap_commands"]  # the harness's fixture, used by every test here

NOW = 1_800_000_000.0


def body(event: str, payload: Mapping[str, object], event_ts: int = 1) -> bytes:
    return json.dumps({"event": event, "event_ts": event_ts, "payload": payload}).encode()


def started(sid: str = "s1", url: str = "wss://rtms-sjc1.zoom.us/s", ts: int = 1) -> bytes:
    payload = {"meeting_uuid": "m==", "rtms_stream_id": sid, "server_urls": url}
    return body("meeting.rtms_started", payload, ts)


def signed(raw: bytes, *, at: float = NOW, secret: str = WEBHOOK_SECRET) -> list[tuple[str, str]]:
    headers = sign_webhook(raw_body=raw, secret=secret, timestamp=int(at))
    return [("Content-Type", "application/json"), *headers.items()]


# --- the pure receiver ---------------------------------------------------------------------------


def test_receiver_checks_signatures_before_anything() -> None:
    rx = WebhookReceiver(WEBHOOK_SECRET)
    raw = started()
    for headers, status, error in [
        ([], 401, "missing_signature"),
        (signed(raw, secret="wrong"), 401, "bad_signature"),
        (signed(raw, at=NOW - 301), 401, "stale_timestamp"),
        ([("x-zm-signature", "v0=00")], 401, "missing_timestamp"),
    ]:
        reply, action = rx.handle("POST", headers, raw, NOW)
        assert (reply.status, json.loads(reply.body)) == (status, {"error": error})
        assert action is None
    assert rx.tracker.live_streams() == {}  # refused requests change nothing
    # the same header twice with different values is ambiguous: refused
    twice = [*signed(raw), ("X-ZM-Signature", "v0=" + "0" * 64)]
    assert rx.handle("POST", twice, raw, NOW)[0].status == 401
    assert rx.handle("GET", signed(raw), raw, NOW)[0].status == 405
    assert rx.rejected == 5
    assert WEBHOOK_SECRET not in repr(rx)


def test_receiver_content_errors_are_400() -> None:
    rx = WebhookReceiver(WEBHOOK_SECRET)
    for raw, error in [
        (b"{not json", "malformed_body"),
        (started(url="wss://evil.example.com/s"), "disallowed_host"),
        (body("meeting.rtms_started", {"meeting_uuid": "m"}), "malformed_body"),
    ]:
        reply, action = rx.handle("POST", signed(raw), raw, NOW)
        assert (reply.status, json.loads(reply.body)) == (400, {"error": error})
        assert action is None


def test_receiver_url_validation() -> None:
    rx = WebhookReceiver(WEBHOOK_SECRET)
    raw = body("endpoint.url_validation", {"plainToken": "abc123"})
    reply, action = rx.handle("POST", signed(raw), raw, NOW)
    expected = hmac.new(WEBHOOK_SECRET.encode(), b"abc123", hashlib.sha256).hexdigest()
    assert reply.status == 200 and action is None
    assert json.loads(reply.body) == {"plainToken": "abc123", "encryptedToken": expected}
    # unsigned validation requests are refused: the answer is an HMAC oracle otherwise
    assert rx.handle("POST", [], raw, NOW)[0].status == 401


def test_receiver_streams_duplicates_failover_stop() -> None:
    rx = WebhookReceiver(WEBHOOK_SECRET)

    def post(raw: bytes) -> Disposition | None:
        reply, action = rx.handle("POST", signed(raw), raw, NOW)
        assert reply.status == 200
        return None if action is None else action.disposition

    assert post(started()) is Disposition.NEW_STREAM
    assert post(started()) is None  # a retried delivery
    assert post(started(url="wss://rtms-iad1.zoom.us/s", ts=2)) is Disposition.FAILOVER
    assert post(
        body("meeting.rtms_interrupted", {"meeting_uuid": "m==", "rtms_stream_id": "s1"})
    ) is (Disposition.INTERRUPTED)
    stop = body(
        "meeting.rtms_stopped", {"meeting_uuid": "m==", "rtms_stream_id": "s1", "stop_reason": 6}, 3
    )
    assert post(stop) is Disposition.STOPPED
    assert post(stop) is None
    assert post(body("rtms.concurrency_limited", {})) is None
    with pytest.raises(ValueError):
        WebhookReceiver("")


def test_receiver_refuses_an_id_that_cannot_be_signed() -> None:
    """A lone surrogate (a JSON "\\ud800" escape) in an id: a 400 at the boundary, not a
    200 followed by a crash in the signature code."""
    rx = WebhookReceiver(WEBHOOK_SECRET)
    for raw in (
        started(sid="s\ud800"),
        body(
            "meeting.rtms_started",
            {"meeting_uuid": "\udfff", "rtms_stream_id": "s", "server_urls": "wss://rtms.zoom.us/"},
        ),
    ):
        assert b"\\ud" in raw
        reply, action = rx.handle("POST", signed(raw), raw, NOW)
        assert (reply.status, json.loads(reply.body)) == (400, {"error": "malformed_body"})
        assert action is None
    assert rx.tracker.live_streams() == {}


def test_a_status_less_refusal_shows_its_class_and_reason() -> None:
    """Zoom's mock refuses a wrong secret with a reason and no status_code: the
    terminal line still says what the server said, sanitised."""
    error = RemoteProtocolError(
        FailureReason.AUTHENTICATION_FAILED,
        "signaling handshake rejected",
        status_reason="Invalid signature\x1b[2J",
    )
    line = describe_end(ev.SessionEnded(why=ev.EndReason.FATAL_ERROR, detail="x", error=error))
    assert line == (
        "the session failed: authentication_failed: signaling handshake rejected"
        " (reason 'Invalid signature\ufffd[2J')"
    )


# --- the command, over HTTP ----------------------------------------------------------------------


def request(
    port: int, method: str, raw: bytes, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, "/webhook", body=raw, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def start_listener(out: Path, ca: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    proc = start_cli(
        [
            "listen",
            "--port",
            "0",
            "--out",
            str(out),
            "--ca-file",
            str(ca),
            "--allow-host",
            "127.0.0.1",
            "--client-id",
            CLIENT_ID,
            *extra,
        ],
        env={"ZM_RTMS_SECRET": SECRET, "ZM_RTMS_WEBHOOK_SECRET": WEBHOOK_SECRET},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("listening for Zoom webhooks on http://127.0.0.1:"), first
    port = int(first.split("http://127.0.0.1:")[1].split("/")[0])
    return proc, port


class LineReader:
    """Reads a running command's stdout line by line, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stdout:
            self._lines.append(line)

    def text(self) -> str:
        return "".join(self._lines)

    def rest(self, timeout: float) -> str:
        """Everything, once the command closed its stdout (bounded by ``timeout``)."""
        self._thread.join(timeout)
        return self.text()


def test_listen_records_streams_over_http(tmp_path: Path) -> None:
    ca = tls().write_ca(tmp_path / "ca.pem")
    out = tmp_path / "rec"
    proc, port = start_listener(out, ca)
    reader = LineReader(proc)
    url = f"http://127.0.0.1:{port}/webhook"
    try:
        # refused requests: nothing is recorded for them
        raw = started(sid="forged", url="wss://127.0.0.1:1/x")
        assert request(port, "POST", raw)[0] == 401
        bad = webhook_headers(raw, "not-the-secret", int(time.time()))
        assert request(port, "POST", raw, bad)[0] == 401
        stale = webhook_headers(raw, WEBHOOK_SECRET, int(time.time()) - 3600)
        assert request(port, "POST", raw, stale)[0] == 401
        garbage = b"{]"
        assert (
            request(
                port, "POST", garbage, webhook_headers(garbage, WEBHOOK_SECRET, int(time.time()))
            )[0]
            == 400
        )
        assert request(port, "GET", b"")[0] == 405
        validation = body("endpoint.url_validation", {"plainToken": "tok"})
        status, answer = request(
            port, "POST", validation, webhook_headers(validation, WEBHOOK_SECRET, int(time.time()))
        )
        assert status == 200
        assert (
            json.loads(answer)["encryptedToken"]
            == hmac.new(WEBHOOK_SECRET.encode(), b"tok", hashlib.sha256).hexdigest()
        )

        with fake_server(webhook_url=url, webhook_secret=WEBHOOK_SECRET) as server:
            moving = add_stream(
                server,
                StreamSpec(
                    meeting_uuid="a==",
                    rtms_stream_id="stream-a",
                    meeting=MeetingSpec(duration=4.5, chat_interval=None, share_at=None),
                    faults=(f.Failover(at=2.0),),
                ),
                tmp_path / "a",
            )
            still = add_stream(
                server,
                StreamSpec(
                    meeting_uuid="b==",
                    rtms_stream_id="stream-b",
                    meeting=MeetingSpec(duration=3.0, chat_interval=None, share_at=None),
                ),
                tmp_path / "b",
            )
            for s in (moving, still):
                assert post_webhook(url, s.payload.read_bytes(), WEBHOOK_SECRET) == 200
            # Zoom retries a delivery it got no quick answer for: a duplicate, ignored
            assert post_webhook(url, moving.payload.read_bytes(), WEBHOOK_SECRET) == 200
            wait_until(
                lambda: recording_ended(out / "stream-a") and recording_ended(out / "stream-b"),
                timeout=20,
            )
            # Interrupt only once both jobs have finished (sockets released, files closed):
            # the end is on disk before the job's task is done.
            wait_until(
                lambda: all(
                    f"stream {sid}: ended (" in reader.text() for sid in ("stream-a", "stream-b")
                ),
                timeout=20,
            )
            epoch = {s.info.rtms_stream_id: s.info.media_epoch_ms for s in (moving, still)}

            def expected(running: RunningServer, sid: str, ms: int) -> bytes:
                return running.server.expected_audio(
                    sid, AudioParams(), epoch[sid], epoch[sid] + ms
                )

            want_a = server.call(lambda r: expected(r, "stream-a", 4500))
            want_b = server.call(lambda r: expected(r, "stream-b", 3000))
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        assert proc.stderr is not None
        err = proc.stderr.read()
        stdout = reader.rest(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.rest(timeout=10)
        for pipe in (proc.stdout, proc.stderr, proc.stdin):
            if pipe is not None:
                pipe.close()
    assert code == 0, err
    assert err == ""
    assert sorted(p.name for p in out.iterdir()) == ["stream-a", "stream-b"]
    assert "stream stream-a: recording into" in stdout
    assert "stream stream-a: failover to 127.0.0.1" in stdout
    # the stream state (terminated) and the rtms_stopped webhook (stopped) race: both are
    # the normal end of a stream
    assert re.search(r"stream stream-b: ended \((stream_terminated|stream_stopped)\)", stdout)
    assert SECRET not in stdout and WEBHOOK_SECRET not in stdout
    for sid, want in (("stream-a", want_a), ("stream-b", want_b)):
        folder = out / sid
        assert origin_ms(folder) == epoch[sid]
        _, _, pcm = read_wav(folder / "audio.wav")
        assert pcm == want, sid  # the failover lost and repeated nothing
    events = read_jsonl(out / "stream-a" / "events.jsonl")
    assert any(e["type"] == "ReconnectStarted" and e["scope"] == "SIGNALING" for e in events)
    assert (out / "stream-a" / "transcript.jsonl").exists()


def test_listen_says_why_a_stream_it_answered_200_is_not_recorded(tmp_path: Path) -> None:
    """The 200 goes out before the recording starts; when it cannot start, one line
    on stderr names the stream and the cause, and the receiver goes on."""
    ca = tls().write_ca(tmp_path / "ca.pem")
    out = tmp_path / "rec"
    out.mkdir()
    (out / "blocked").write_text("a file where the stream's folder would go")
    proc, port = start_listener(out, ca)
    try:
        raw = started(sid="blocked")
        headers = webhook_headers(raw, WEBHOOK_SECRET, int(time.time()))
        assert request(port, "POST", raw, headers)[0] == 200
        # still serving
        assert request(port, "GET", b"")[0] == 405
        proc.send_signal(signal.SIGINT)
        code, stdout, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, err
    assert "rtms-proto listen: error: stream blocked: not recorded: NotADirectoryError" in err
    assert "recording into" not in stdout
    assert WEBHOOK_SECRET not in err + stdout


@pytest.mark.parametrize("flavour", ["trio", "blocking"])
def test_listen_stops_on_rtms_stopped_on_other_transports(tmp_path: Path, flavour: str) -> None:
    ca = tls().write_ca(tmp_path / "ca.pem")
    out = tmp_path / "rec"
    proc, port = start_listener(out, ca, "--transport", flavour, "--once", "--save-wire")
    url = f"http://127.0.0.1:{port}/"
    try:
        with fake_server(webhook_url=url, webhook_secret=WEBHOOK_SECRET) as server:
            stream = add_stream(
                server,
                StreamSpec(
                    meeting_uuid="c==",
                    rtms_stream_id="stream-c",
                    meeting=MeetingSpec(chat_interval=None, share_at=None),  # endless
                ),
                tmp_path / "c",
            )
            assert post_webhook(url, stream.payload.read_bytes(), WEBHOOK_SECRET) == 200
            wav = out / "stream-c" / "audio.wav"
            wait_until(lambda: wav.exists() and wav.stat().st_size > 44 + 32_000)
            stopped = rtms_stopped_body(
                product=Product.MEETING,
                instance_id="c==",
                rtms_stream_id="stream-c",
                stop_reason=StopReason.MEETING_ENDED,
                event_ts=int(time.time() * 1000),
            )
            assert post_webhook(url, stopped, WEBHOOK_SECRET) == 200
            code, stdout, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, err
    assert "stream stream-c: ended (stream_stopped)" in stdout
    events = read_jsonl(out / "stream-c" / "events.jsonl")
    assert events[-1]["type"] == "SessionEnded"
    assert events[-1]["stop_reason"] == "MEETING_ENDED"
    _, _, pcm = read_wav(out / "stream-c" / "audio.wav")
    assert len(pcm) >= 32_000
    assert (out / "stream-c" / "wire.rtms").exists()
