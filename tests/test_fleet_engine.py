"""The NATS adapter against a real ``nats-server -js``, and the fan-out formats.

Each test opens its own engine connections (two where two nodes matter) on a
server of its own; leases are 1 s so that expiry is seen within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats.errors
import pytest
from nats_harness import cluster_servers, nats_server

from rtms_fleet.engine import (
    PUBLISH_BUFFER,
    Engine,
    EngineSettings,
    EngineUnavailable,
    LeaseLost,
    decode_key,
    encode_key,
    webhook_body,
    webhook_msg_id,
)
from rtms_fleet.policy import Lease, LeaseState
from rtms_fleet.publish import FRAME_HEADER, decode_frame, encode_event, subject_token
from rtms_proto import events as ev
from rtms_proto import parse_server_url
from rtms_proto.enums import Product, StopReason
from rtms_proto.webhooks import RtmsStarted, RtmsStopped, WebhookEvent, parse_webhook

LEASE = 1.0


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    with nats_server(tmp_path) as server:
        yield server.url


@asynccontextmanager
async def engine(url: str, name: str, lease: float = LEASE) -> AsyncIterator[Engine]:
    e = await Engine.connect(EngineSettings(servers=[url], name=name, lease=lease))
    try:
        yield e
    finally:
        await e.close()


def started(sid: str = "s1", ts: int = 100, host: str = "rtms-sjc1.zoom.us") -> RtmsStarted:
    return RtmsStarted(
        product=Product.MEETING,
        event="meeting.rtms_started",
        event_ts=ts,
        instance_id=f"uuid/{sid}==",
        id_key="meeting_uuid",
        rtms_stream_id=sid,
        server_url=parse_server_url(f"wss://{host}/signaling?id={sid}"),
        operator_id="op-1",
        signature="precomputed-signature",
    )


def stopped(sid: str = "s1") -> RtmsStopped:
    return RtmsStopped(
        product=Product.MEETING,
        event="meeting.rtms_stopped",
        event_ts=200,
        instance_id=f"uuid/{sid}==",
        id_key="meeting_uuid",
        rtms_stream_id=sid,
        stop_reason=StopReason.MEETING_ENDED,
    )


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- leases


def test_one_claim_wins_and_the_others_see_its_entry(nats_url: str) -> None:
    async def main() -> None:
        async with engine(nats_url, "a") as a, engine(nats_url, "b") as b:
            revision = await a.claim("s1", None)
            with pytest.raises(LeaseLost):
                await b.claim("s1", None)
            assert await b.current("s1") == Lease("a", LeaseState.OWNED, revision)
            assert await b.current("s2") is None

    run(main())


def test_renewals_are_compare_and_set_on_the_owners_revision(nats_url: str) -> None:
    async def main() -> None:
        async with engine(nats_url, "a") as a, engine(nats_url, "b") as b:
            first = await a.claim("s1", None)
            second = await a.write("s1", first, LeaseState.OWNED)
            assert second > first
            with pytest.raises(LeaseLost):
                await a.write("s1", first, LeaseState.OWNED)  # a stale revision
            with pytest.raises(LeaseLost):
                await b.claim("s1", first)
            released = await a.write("s1", second, LeaseState.RELEASED)
            assert await b.current("s1") == Lease("a", LeaseState.RELEASED, released)
            taken = await b.claim("s1", released)
            assert taken > released
            with pytest.raises(LeaseLost):
                await a.write("s1", second, LeaseState.OWNED)  # a lost it

    run(main())


def test_an_entry_not_renewed_expires_after_the_lease_and_watchers_see_it(
    nats_url: str,
) -> None:
    async def main() -> None:
        async with engine(nats_url, "a") as a, engine(nats_url, "b") as b:
            seen: list[tuple[str, Lease | None, float]] = []
            initial = asyncio.Event()
            loop = asyncio.get_running_loop()

            async def watch() -> None:
                async for stream_id, lease in b.watch_leases(on_initial=initial.set):
                    seen.append((stream_id, lease, loop.time()))

            watcher = asyncio.create_task(watch())
            await asyncio.wait_for(initial.wait(), 5)
            written = loop.time()
            revision = await a.claim("stream.with/odd chars", None)
            renewed = await a.write("stream.with/odd chars", revision, LeaseState.OWNED)
            async with asyncio.timeout(LEASE * 4):
                while not seen or seen[-1][1] is not None:
                    await asyncio.sleep(0.02)
            watcher.cancel()
            leases = [(sid, lease) for sid, lease, _ in seen]
            assert leases == [
                ("stream.with/odd chars", Lease("a", LeaseState.OWNED, revision)),
                ("stream.with/odd chars", Lease("a", LeaseState.OWNED, renewed)),
                ("stream.with/odd chars", None),
            ]
            expired_after = seen[-1][2] - written
            assert LEASE * 0.9 <= expired_after < LEASE * 3, expired_after
            # Expired: a create succeeds again.
            assert await b.claim("stream.with/odd chars", None) > renewed

    run(main())


def test_the_first_claim_of_a_stream_is_recorded_for_good(nats_url: str) -> None:
    async def main() -> None:
        async with engine(nats_url, "a") as a, engine(nats_url, "b") as b:
            assert await a.first_claim("s1")
            assert not await b.first_claim("s1")
            assert not await a.first_claim("s1")
            assert await b.first_claim("s2")
            await asyncio.sleep(LEASE * 1.5)  # outlives the lease
            assert not await b.first_claim("s1")

    run(main())


def test_every_node_must_use_the_same_lease(nats_url: str) -> None:
    async def main() -> None:
        async with engine(nats_url, "a", lease=LEASE):
            with pytest.raises(EngineUnavailable, match="same --lease"):
                async with engine(nats_url, "b", lease=LEASE * 2):
                    pass  # pragma: no cover

    run(main())


def test_a_server_without_jetstream_is_refused_clearly(tmp_path: Path) -> None:
    import subprocess

    from nats_harness import free_port, nats_server_binary

    port = free_port()
    proc = subprocess.Popen(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def main() -> None:
            for _ in range(100):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            with pytest.raises(EngineUnavailable, match="-js"):
                async with engine(f"nats://127.0.0.1:{port}", "a"):
                    pass  # pragma: no cover

        run(main())
    finally:
        proc.terminate()
        proc.wait(10)


# --------------------------------------------------------------------------- webhooks


def test_the_same_webhook_stored_by_two_nodes_is_one_entry(nats_url: str) -> None:
    async def main() -> None:
        async with engine(nats_url, "a") as a, engine(nats_url, "b") as b:
            assert await a.submit(started())
            assert not await b.submit(started())
            assert not await a.submit(started())
            failover = started(ts=150, host="rtms-iad1.zoom.us")
            assert await b.submit(failover)  # a new start for a live stream is kept
            assert await a.submit(stopped())
            assert not await b.submit(stopped())
            got: list[WebhookEvent] = []
            sequences: list[int] = []

            async def read() -> None:
                async for sequence, event in a.webhooks():
                    sequences.append(sequence)
                    assert event is not None
                    got.append(event)

            reader = asyncio.create_task(read())
            async with asyncio.timeout(5):
                while len(got) < 3:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            reader.cancel()
            assert got == [started(), failover, stopped()]
            # Reading on after a sequence gives what follows it only.
            later: list[WebhookEvent | None] = []

            async def read_after() -> None:
                async for _, event in a.webhooks(after=sequences[0]):
                    later.append(event)

            reader = asyncio.create_task(read_after())
            async with asyncio.timeout(5):
                while len(later) < 2:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            reader.cancel()
            assert later == [failover, stopped()]

    run(main())


def test_stored_webhooks_are_kept_for_the_history_only(tmp_path: Path) -> None:
    async def main(url: str) -> None:
        settings = EngineSettings(servers=[url], name="a", lease=LEASE, history=1.0)
        old = await Engine.connect(settings)
        try:
            assert await old.submit(started("s1"))
            await asyncio.sleep(1.5)
            assert await old.submit(started("s2"))
            got: list[WebhookEvent] = []

            async def read() -> None:
                async for _, event in old.webhooks():
                    assert event is not None
                    got.append(event)

            reader = asyncio.create_task(read())
            async with asyncio.timeout(5):
                while not got:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            reader.cancel()
            # s1 is older than the history: gone, and so is its de-duplication.
            assert [e.rtms_stream_id for e in got if isinstance(e, RtmsStarted)] == ["s2"]
            assert await old.submit(started("s1"))
        finally:
            await old.close()

    with nats_server(tmp_path) as server:
        run(main(server.url))


def test_a_stored_webhook_outside_the_allowed_hosts_is_skipped(
    nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with engine(nats_url, "a") as a:
            await a.submit(started("s1"))
            await a.submit(started("s2", host="rtms-iad1.zoom.us"))
            got: list[WebhookEvent | None] = []

            async def read() -> None:
                async for _, event in a.webhooks(allowed_hosts=("rtms-iad1.zoom.us",)):
                    got.append(event)

            reader = asyncio.create_task(read())
            async with asyncio.timeout(5):
                while len(got) < 2:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            reader.cancel()
            assert got[0] is None  # the unusable one, counted but not given
            assert [e.rtms_stream_id for e in got if isinstance(e, RtmsStarted)] == ["s2"]

    run(main())
    assert "unusable here" in caplog.text
    assert "precomputed-signature" not in caplog.text


def test_webhook_bodies_give_the_same_events_back() -> None:
    for event in (started(), stopped(), started("s2", ts=None)):  # type: ignore[arg-type]
        assert parse_webhook(webhook_body(event)) == event
    bare = RtmsStopped(
        product=Product.MEETING,
        event="meeting.rtms_stopped",
        event_ts=None,
        instance_id="u",
        id_key="meeting_uuid",
        rtms_stream_id="s1",
    )
    assert parse_webhook(webhook_body(bare)) == bare
    assert webhook_msg_id(started()) == webhook_msg_id(started())
    assert webhook_msg_id(started()) != webhook_msg_id(started(ts=101))
    assert webhook_msg_id(started()) != webhook_msg_id(started("s2"))
    assert webhook_msg_id(stopped()) != webhook_msg_id(started())


def test_keys_carry_any_stream_id_and_foreign_keys_are_ignored() -> None:
    for sid in ("s1", "a.b*c>d e", "ünï/cödé==", "x" * 300):
        key = encode_key(sid)
        assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert decode_key(key) == sid
    assert decode_key("%%%") is None
    assert decode_key("_w") is None  # decodes to a byte that is not UTF-8


# --------------------------------------------------------------------------- fan-out formats


def test_frames_carry_user_and_timestamp_in_a_header() -> None:
    audio = ev.AudioReceived(data=b"\x01\x02", user_id=16778240, timestamp=1_700_000_000_123)
    subject, message = encode_event("s1", audio)
    assert subject == "rtms.s1.audio"
    assert len(message) == FRAME_HEADER.size + 2
    assert decode_frame(message) == (16778240, 1_700_000_000_123, b"\x01\x02")
    mixed = ev.AudioReceived(data=b"", user_id=0)
    assert decode_frame(encode_event("s1", mixed)[1]) == (0, None, b"")
    video = ev.VideoReceived(data=b"jpg", timestamp=-1)
    subject, message = encode_event("s1", video)
    assert subject == "rtms.s1.video" and decode_frame(message) == (None, -1, b"jpg")
    assert encode_event("s1", ev.DeskshareReceived(data=b"d"))[0] == "rtms.s1.deskshare"
    with pytest.raises(ValueError, match="18 bytes"):
        decode_frame(b"short")
    with pytest.raises(ValueError, match="version"):
        decode_frame(b"\x02" + bytes(FRAME_HEADER.size - 1))


def test_other_events_are_json_with_their_type() -> None:
    subject, message = encode_event(
        "s1", ev.TranscriptReceived(text="hello", user_id=7, timestamp=5)
    )
    assert subject == "rtms.s1.transcript"
    body = json.loads(message)
    assert body["type"] == "TranscriptReceived" and body["text"] == "hello"
    assert body["user_id"] == 7
    ended = ev.SessionEnded(
        why=ev.EndReason.STREAM_STOPPED, detail="d", stop_reason=StopReason.MEETING_ENDED
    )
    subject, message = encode_event("s1", ended)
    assert subject == "rtms.s1.session_ended"
    assert json.loads(message) == {
        "why": "stream_stopped",
        "detail": "d",
        "stop_reason": int(StopReason.MEETING_ENDED),
        "error": None,
        "type": "SessionEnded",
    }
    speaker = ev.ActiveSpeakerChanged(user_id=1, user_name="Ann", timestamp=3)
    assert encode_event("s1", speaker)[0] == "rtms.s1.active_speaker_changed"
    meta = ev.MetadataReceived(sock=None, msg_type=9, raw={"a": (1, "x")})  # type: ignore[arg-type]
    assert json.loads(encode_event("s1", meta)[1])["raw"] == {"a": [1, "x"]}


def test_stream_ids_become_one_subject_token() -> None:
    assert subject_token("abc-DEF_123==") == "abc-DEF_123=="
    assert subject_token("a.b*c>d e%") == "a%2Eb%2Ac%3Ed%20e%25"
    assert subject_token("é") == "%C3%A9"


# --------------------------------------------------------------------------- a cluster starting


def test_a_node_waits_for_a_cluster_still_electing_its_leader(tmp_path: Path) -> None:
    """One server of three is up: JetStream has no leader and does not answer. A node
    starting then waits (bounded by ready_timeout) and joins once the others are up."""
    servers = cluster_servers(tmp_path)
    try:
        servers[0].start()
        servers[0].wait_listening()
        settings = EngineSettings(
            servers=[servers[0].url], name="a", lease=LEASE, replicas=3, ready_timeout=60
        )

        async def main() -> None:
            joining = asyncio.ensure_future(Engine.connect(settings))
            await asyncio.sleep(2.0)
            assert not joining.done()  # still waiting for a leader, not failed
            for server in servers[1:]:
                server.start()
            e = await asyncio.wait_for(joining, 40)
            try:
                assert await e.submit(started())  # a working engine
            finally:
                await e.close()

        asyncio.run(asyncio.wait_for(main(), 50))
    finally:
        for server in servers:
            server.stop()


def test_a_cluster_that_never_gets_a_leader_is_given_up_after_ready_timeout(
    tmp_path: Path,
) -> None:
    servers = cluster_servers(tmp_path)
    try:
        servers[0].start()
        servers[0].wait_listening()
        settings = EngineSettings(
            servers=[servers[0].url],
            name="a",
            lease=LEASE,
            replicas=3,
            connect_timeout=1.0,
            ready_timeout=2.0,
        )

        async def main() -> float:
            began = time.monotonic()
            with pytest.raises(EngineUnavailable, match="no usable JetStream"):
                await Engine.connect(settings)
            return time.monotonic() - began

        took = asyncio.run(asyncio.wait_for(main(), 30))
        assert 2.0 <= took < 2.0 + 2 * settings.connect_timeout + 2.0
    finally:
        for server in servers:
            server.stop()


# --- the publish buffer's bound -------------------------------------------------------

CHUNK = b"v" * 65536  # a large video frame


def _kernel_buffers() -> int:
    """The most loopback TCP can hold between us and a server that stopped reading: our
    send buffer and its receive buffer at their largest (``tcp_wmem``/``tcp_rmem``)."""
    total = 0
    for name in ("tcp_wmem", "tcp_rmem"):
        total += int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])
    return total


class Pump:
    """Publishes :data:`CHUNK` as fast as the engine takes it; ``accepted`` counts bytes."""

    def __init__(self, e: Engine) -> None:
        self.accepted = 0
        self._engine = e
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await self._engine.publish("rtms.s1.video", CHUNK)
            self.accepted += len(CHUNK)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def test_publishing_to_a_server_that_stops_reading_waits_instead_of_buffering(
    tmp_path: Path,
) -> None:
    """A paused server: publish() stops returning once the buffer (one being written,
    one filling) and the kernel's are full, and goes on when the server reads again."""
    with nats_server(tmp_path) as server:

        async def main() -> None:
            async with engine(server.url, "a") as e:
                server.pause()
                pump = Pump(e)
                try:
                    await asyncio.sleep(1.0)
                    stalled = pump.accepted
                    await asyncio.sleep(0.5)
                    assert not pump.task.done()
                    assert pump.accepted == stalled  # waiting, not buffering more
                    bound = 2 * PUBLISH_BUFFER + 2 * len(CHUNK) + _kernel_buffers()
                    assert PUBLISH_BUFFER < stalled <= bound, (stalled, bound)
                finally:
                    server.resume()
                deadline = time.monotonic() + 10
                while pump.accepted < stalled + 2 * PUBLISH_BUFFER:  # flows again
                    assert time.monotonic() < deadline, "publishing did not resume"
                    await asyncio.sleep(0.05)
                await pump.stop()
                assert e.connected

        asyncio.run(asyncio.wait_for(main(), 30))


def test_a_publisher_waiting_on_a_stalled_server_can_be_cancelled(tmp_path: Path) -> None:
    """Stopping a stream whose fan-out waits for a server that stopped reading ends it
    (nats-py alone swallows that cancellation and the publisher would go on)."""
    with nats_server(tmp_path) as server:

        async def main() -> None:
            async with engine(server.url, "a") as e:
                server.pause()
                try:
                    pump = Pump(e)
                    await asyncio.sleep(0.5)
                    stalled = pump.accepted
                    pump.task.cancel()
                    done, _ = await asyncio.wait([pump.task], timeout=2.0)
                    assert done == {pump.task} and pump.task.cancelled()
                    assert pump.accepted == stalled
                finally:
                    server.resume()

        asyncio.run(asyncio.wait_for(main(), 30))


def test_publishing_while_disconnected_keeps_at_most_the_buffer(tmp_path: Path) -> None:
    """The server gone: what is published is kept for the reconnect up to the buffer;
    one more is refused at once (the node counts it as a publish failure)."""
    with nats_server(tmp_path) as server:

        async def main() -> None:
            async with engine(server.url, "a") as e:
                await asyncio.to_thread(server.kill)
                deadline = time.monotonic() + 10
                while e.connected:
                    assert time.monotonic() < deadline, "the loss was not noticed"
                    await asyncio.sleep(0.02)
                accepted = 0
                with pytest.raises(nats.errors.OutboundBufferLimitError):
                    while accepted <= 2 * PUBLISH_BUFFER:
                        await e.publish("rtms.s1.video", CHUNK)
                        accepted += len(CHUNK)
                assert PUBLISH_BUFFER - 2 * len(CHUNK) < accepted <= PUBLISH_BUFFER

        asyncio.run(asyncio.wait_for(main(), 30))


def test_a_server_that_stops_answering_is_noticed_by_pings(tmp_path: Path) -> None:
    """A partition keeps the connection open and silent: the engine counts itself lost
    after two unanswered pings (nats-py's own default: minutes), and back once the
    server answers again."""
    with nats_server(tmp_path) as server:

        async def main() -> None:
            lost, back = asyncio.Event(), asyncio.Event()
            settings = EngineSettings(servers=[server.url], name="a", lease=LEASE, ping_interval=1)
            e = await Engine.connect(settings, on_lost=lost.set, on_back=back.set)
            try:
                server.pause()  # the connection stays open; nothing answers
                try:
                    began = time.monotonic()
                    await asyncio.wait_for(lost.wait(), 10)
                    assert time.monotonic() - began < 6  # three pings at most
                    assert not bool(e.connected)  # bool(): mypy must not narrow the later check
                finally:
                    server.resume()
                await asyncio.wait_for(back.wait(), 20)
                assert e.connected
                assert await e.submit(started())  # working again
            finally:
                await e.close()

        asyncio.run(asyncio.wait_for(main(), 45))
