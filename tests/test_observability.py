"""``/healthz``, ``/readyz`` and ``/metrics`` on the webhook port, over real HTTP.

First a :class:`WebhookServer` with an :class:`Observability` in this process
(loopback), then the ``listen`` command recording a stream of the fake server.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from cli_harness import (
    CLIENT_ID,
    SECRET,
    WEBHOOK_SECRET,
    add_stream,
    fake_server,
    finish,
    reap_commands,
    start_cli,
    tls,
    wait_until,
)
from prometheus_client.parser import text_string_to_metric_families

from rtms_app.observability import METRICS_CONTENT_TYPE, Observability
from rtms_app.sinks import Stats
from rtms_app.webhook_server import WebhookReceiver, WebhookServer
from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import post_webhook
from rtms_conformance.server import StreamSpec
from rtms_conformance.webhooks import webhook_headers

__all__ = ["reap_commands"]


def get(port: int, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        conn.close()


def post(port: int, raw: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/webhook", body=raw, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics answer by name and labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@dataclass
class FakeNodeStats:
    claims: int = 3
    takeovers: int = 1
    handovers: int = 2
    lost: int = 0
    webhooks_stored: int = 5
    webhooks_duplicate: int = 4
    renewals: int = 10
    renew_failures: int = 1
    renew_seconds_total: float = 0.25
    renew_seconds_last: float = 0.02
    published: int = 12
    publish_errors: int = 2


@dataclass
class FakeNode:
    ready: bool = True
    stats: FakeNodeStats = field(default_factory=FakeNodeStats)


@dataclass
class FakeQueue:
    dropped: int = 0
    queued: int = 0


async def serve(obs: Observability) -> WebhookServer:
    receiver = WebhookReceiver(WEBHOOK_SECRET, allowed_hosts=("127.0.0.1",))
    server = WebhookServer(
        receiver,
        lambda action: None,
        clock=time.time,
        on_get=obs.on_get,
        on_status=obs.webhook_status,
    )
    await server.start("127.0.0.1", 0)
    return server


def test_health_readiness_and_metrics_over_http() -> None:
    node = FakeNode()
    obs = Observability(node=node)

    async def main() -> None:
        server = await serve(obs)
        port = server.port
        try:
            status, kind, body = await asyncio.to_thread(get, port, "/healthz")
            assert (status, json.loads(body)) == (200, {"status": "ok"})
            status, _, body = await asyncio.to_thread(get, port, "/readyz?verbose=1")
            assert (status, json.loads(body)) == (200, {"status": "ready"})
            # webhooks: one refused (unsigned), one answered
            raw = b'{"event":"endpoint.url_validation","payload":{"plainToken":"t"}}'
            assert await asyncio.to_thread(post, port, raw, {}) == 401
            signed = webhook_headers(raw, WEBHOOK_SECRET, int(time.time()))
            assert await asyncio.to_thread(post, port, raw, signed) == 200
            # one stream running, one that ended
            done, running = Stats(), Stats()
            done.count("audio", 640)
            done.reconnect_scopes["media"] = 2
            obs.add_stream("done", done, lambda: FakeQueue(dropped=3))
            obs.remove_stream("done")
            running.count("audio", 320)
            running.count("video", 1000)
            running.reconnect_scopes["signaling"] = 1
            obs.add_stream("running", running, lambda: FakeQueue(dropped=1, queued=7))
            status, kind, body = await asyncio.to_thread(get, port, "/metrics")
            assert status == 200 and kind == METRICS_CONTENT_TYPE
            got = samples(body.decode())
            assert got[("rtms_messages_total", (("media", "audio"),))] == 2
            assert got[("rtms_media_bytes_total", (("media", "audio"),))] == 960
            assert got[("rtms_media_bytes_total", (("media", "video"),))] == 1000
            assert got[("rtms_reconnects_total", (("scope", "media"),))] == 2
            assert got[("rtms_reconnects_total", (("scope", "signaling"),))] == 1
            assert got[("rtms_dropped_frames_total", ())] == 4
            assert got[("rtms_queue_depth", ())] == 7
            assert got[("rtms_streams_owned", ())] == 1
            assert got[("rtms_webhook_requests_total", (("status", "401"),))] == 1
            # /healthz, /readyz and the signed webhook (this answer is counted once sent)
            assert got[("rtms_webhook_requests_total", (("status", "200"),))] == 3
            assert got[("rtms_stream_claims_total", ())] == 3
            assert got[("rtms_stream_takeovers_total", ())] == 1
            assert got[("rtms_stream_handovers_total", ())] == 2
            assert got[("rtms_webhooks_duplicate_total", ())] == 4
            assert got[("rtms_published_total", ())] == 12
            assert got[("rtms_publish_failures_total", ())] == 2
            assert got[("rtms_lease_renewal_seconds_count", ())] == 10
            assert got[("rtms_lease_renewal_seconds_sum", ())] == 0.25
            assert got[("rtms_ready", ())] == 1
            # the engine lost: not ready, but alive
            node.ready = False
            status, _, body = await asyncio.to_thread(get, port, "/readyz")
            assert (status, json.loads(body)) == (503, {"status": "the engine is unreachable"})
            assert (await asyncio.to_thread(get, port, "/healthz"))[0] == 200
            node.ready = True
            obs.stopping = "draining"
            status, _, body = await asyncio.to_thread(get, port, "/readyz")
            assert (status, json.loads(body)) == (503, {"status": "draining"})
            got = samples((await asyncio.to_thread(get, port, "/metrics"))[2].decode())
            assert got[("rtms_ready", ())] == 0
            # HEAD has the headers alone; other paths are the webhook's (POST only)
            status, _, body = await asyncio.to_thread(get, port, "/healthz", "HEAD")
            assert (status, body) == (200, b"")
            assert (await asyncio.to_thread(get, port, "/webhook"))[0] == 405
            assert (await asyncio.to_thread(get, port, "/metrics/x"))[0] == 405
        finally:
            await server.close()

    asyncio.run(main())


def test_refusals_are_counted_by_status() -> None:
    obs = Observability()

    async def main() -> None:
        server = await serve(obs)
        try:
            big = {"Content-Length": str(10**6)}
            assert await asyncio.to_thread(post, server.port, b"", big) == 413
            got = samples((await asyncio.to_thread(get, server.port, "/metrics"))[2].decode())
            assert got[("rtms_webhook_requests_total", (("status", "413"),))] == 1
            # no engine: no lease metrics at all
            assert not any(name.startswith("rtms_stream_claims") for name, _ in got)
        finally:
            await server.close()

    asyncio.run(main())


def test_listen_serves_metrics_of_its_recordings(tmp_path: Path) -> None:
    ca = tls().write_ca(tmp_path / "ca.pem")
    out = tmp_path / "rec"
    proc = start_cli(
        [
            *("listen", "--port", "0", "--out", str(out), "--ca-file", str(ca)),
            *("--allow-host", "127.0.0.1", "--client-id", CLIENT_ID),
        ],
        env={"ZM_RTMS_SECRET": SECRET, "ZM_RTMS_WEBHOOK_SECRET": WEBHOOK_SECRET},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    port = int(first.split("http://127.0.0.1:")[1].split("/")[0])
    assert get(port, "/readyz")[0] == 200
    url = f"http://127.0.0.1:{port}/webhook"
    with fake_server(webhook_url=url, webhook_secret=WEBHOOK_SECRET) as server:
        stream = add_stream(
            server,
            StreamSpec(
                meeting_uuid="m==",
                rtms_stream_id="obs-1",
                meeting=MeetingSpec(duration=2.0, chat_interval=None, share_at=None),
            ),
            tmp_path / "s",
        )
        assert post_webhook(url, stream.payload.read_bytes(), WEBHOOK_SECRET) == 200

        def audio_counted() -> bool:
            got = samples(get(port, "/metrics")[2].decode())
            return got[("rtms_messages_total", (("media", "audio"),))] > 10

        try:
            wait_until(audio_counted, timeout=20)
        except AssertionError:
            proc.kill()
            raise AssertionError(finish(proc)) from None
        got = samples(get(port, "/metrics")[2].decode())
        assert got[("rtms_webhook_requests_total", (("status", "200"),))] >= 1
        assert got[("rtms_media_bytes_total", (("media", "audio"),))] > 0
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 0, err
    assert SECRET not in err and WEBHOOK_SECRET not in err
