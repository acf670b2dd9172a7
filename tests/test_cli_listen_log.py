"""``rtms-proto listen -v`` says what it decided for every webhook, and why, never a secret."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from cli_harness import (
    SECRET,
    WEBHOOK_SECRET,
    add_stream,
    fake_server,
    reap_commands,
    recording_ended,
    tls,
    wait_until,
)
from test_cli_listen import LineReader, body, request, start_listener

from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import post_webhook
from rtms_conformance.server import StreamSpec
from rtms_conformance.webhooks import webhook_headers

__all__ = ["reap_commands"]


def test_listen_logs_each_decision_with_its_reason(tmp_path: Path) -> None:
    ca = tls().write_ca(tmp_path / "ca.pem")
    out = tmp_path / "rec"
    proc, port = start_listener(out, ca, "-v")
    reader = LineReader(proc)
    url = f"http://127.0.0.1:{port}/webhook"
    token = "plain-token-not-logged-5d1e"
    try:
        now = int(time.time())
        evil = json.dumps(
            {
                "event": "meeting.rtms_started",
                "event_ts": 1,
                "payload": {
                    "meeting_uuid": "m==",
                    "rtms_stream_id": "evil",
                    "server_urls": "wss://evil.example.net/s",
                },
            }
        ).encode()
        assert request(port, "GET", b"")[0] == 405
        assert request(port, "POST", evil)[0] == 401
        assert request(port, "POST", evil, webhook_headers(evil, "wrong", now))[0] == 401
        stale = webhook_headers(evil, WEBHOOK_SECRET, now - 3600)
        assert request(port, "POST", evil, stale)[0] == 401
        garbage = b"{]"
        assert (
            request(port, "POST", garbage, webhook_headers(garbage, WEBHOOK_SECRET, now))[0] == 400
        )
        assert request(port, "POST", evil, webhook_headers(evil, WEBHOOK_SECRET, now))[0] == 400
        validation = body("endpoint.url_validation", {"plainToken": token})
        headers = webhook_headers(validation, WEBHOOK_SECRET, now)
        assert request(port, "POST", validation, headers)[0] == 200
        with fake_server(webhook_url=url, webhook_secret=WEBHOOK_SECRET) as server:
            stream = add_stream(
                server,
                StreamSpec(
                    meeting_uuid="a==",
                    rtms_stream_id="stream-log",
                    meeting=MeetingSpec(duration=1.5, chat_interval=None, share_at=None),
                ),
                tmp_path / "a",
            )
            started = stream.payload.read_bytes()
            assert post_webhook(url, started, WEBHOOK_SECRET) == 200
            assert post_webhook(url, started, WEBHOOK_SECRET) == 200  # a retried delivery
            wait_until(lambda: recording_ended(out / "stream-log"), timeout=20)
            wait_until(lambda: "stream stream-log: ended (" in reader.text(), timeout=20)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.rest(timeout=10)
        for pipe in (proc.stdout, proc.stderr, proc.stdin):
            if pipe is not None:
                pipe.close()
    assert code == 0, err
    lines = [line for line in err.splitlines() if " rtms" not in line or "webhook" in line]
    text = "\n".join(lines)
    src = "INFO webhook from 127.0.0.1:"
    for expected in (
        ": 405: GET instead of POST",
        ": refused 401 missing_signature: header x-zm-signature is missing",
        ": refused 401 bad_signature:",
        ": refused 401 stale_timestamp:",
        ": refused 400 malformed_body:",
        ": refused 400 disallowed_host:",
        ": endpoint.url_validation answered (signature verified)",
        ": meeting.rtms_started for stream stream-log: a new stream: recording it",
        ": meeting.rtms_started for stream stream-log: a duplicate delivery: ignored",
        ": meeting.rtms_stopped for stream stream-log: the stream ended: stopping its "
        "recording (stop reason MEETING_ENDED)",
    ):
        assert any(src in line and expected in line for line in lines), (expected, text)
    assert "evil.example.net" in text  # the refused host is named
    for secret in (SECRET, WEBHOOK_SECRET, token):
        assert secret not in err
