"""The client process of ``bench_scale.py``: N meetings of one driver in one process.

``python _scale_clients.py DRIVER MEETINGS PORT BATCH DEADLINE [CPU]`` joins
MEETINGS streams of the load server on 127.0.0.1:PORT, BATCH at a time (each
batch connected before the next starts, so the connect storm stays small),
receives until the server ends every stream, and prints one JSON line: audio
messages received, the histogram of delivery lag (wall-clock receive time
minus the message's ``timestamp``, in ms), how the streams ended, errors, and
the RSS before the first meeting.  The bench reads CPU time and RSS from
``/proc`` itself, so this process measures nothing but lag.

Drivers: ``asyncio``, ``trio`` (one task per meeting), ``blocking`` (a
thread per meeting iterating its stream, the sockets of all on ``connect()``'s
one I/O thread), ``blocking-pool`` (one ``blocking.Pool`` thread for all,
events to a handler per meeting) and ``websockets``, a client written the way Zoom's Python
samples are (``websockets`` + ``json`` + ``base64``, asyncio tasks).  Each
imports only what it uses, so its RSS is its own.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from time import time as wall
from typing import TYPE_CHECKING, Any

from _scale_server import raise_fd_limit

if TYPE_CHECKING:
    from rtms_proto import SessionConfig
    from rtms_transports import TransportOptions

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-not-a-real-one"
BATCH_TIMEOUT = 30.0
NORMAL_ENDS = ("stream_terminated", "session_stopped")


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size from ``/proc`` (KiB); 0 where there is no ``/proc``."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Meter:
    """One meeting's audio count and delivery lags (ms -> messages)."""

    __slots__ = ("count", "lags", "settled")

    def __init__(self) -> None:
        self.count = 0
        self.lags: dict[int, int] = {}
        self.settled = False

    def audio(self, timestamp: int | None) -> None:
        self.count += 1
        if timestamp is not None:
            lag = int(wall() * 1000.0) - timestamp
            lags = self.lags
            lags[lag] = lags.get(lag, 0) + 1


class GcPauses:
    """The garbage collector's pauses in this process: the longest, and their total.

    A full collection stops every meeting at once, for a time that grows with
    the objects alive: it is what a latency percentile sees first.
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self.total = 0.0
        self._start = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            pause = time.perf_counter() - self._start
            self.total += pause
            self.longest = max(self.longest, pause)


class Progress:
    """What the meetings of this process did; thread-safe for the rare updates."""

    def __init__(self, meetings: int) -> None:
        self.meetings = meetings
        self.meters: list[Meter] = []
        self.ready = 0
        self.settled = 0
        self.ended: dict[str, int] = {}
        self.errors: list[str] = []
        self.error_count = 0
        self.timed_out = False
        self.rss0 = 0
        self.lock = threading.Lock()

    def meter(self) -> Meter:
        meter = Meter()
        with self.lock:
            self.meters.append(meter)
        return meter

    def _settle(self, meter: Meter) -> None:
        if not meter.settled:
            meter.settled = True
            self.settled += 1

    def connected(self, meter: Meter) -> None:
        with self.lock:
            self.ready += 1
            self._settle(meter)

    def end(self, meter: Meter, why: str) -> None:
        with self.lock:
            self.ended[why] = self.ended.get(why, 0) + 1
            self._settle(meter)

    def error(self, meter: Meter, exc: BaseException) -> None:
        with self.lock:
            self.error_count += 1
            if len(self.errors) < 3:
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            self._settle(meter)

    def stats(self, driver: str) -> dict[str, Any]:
        lags: dict[int, int] = {}
        for meter in self.meters:
            for lag, count in meter.lags.items():
                lags[lag] = lags.get(lag, 0) + count
        return {
            "driver": driver,
            "meetings": self.meetings,
            "ready": self.ready,
            "received": sum(m.count for m in self.meters),
            "lags": {str(k): v for k, v in sorted(lags.items())},
            "ended": self.ended,
            "ended_ok": sum(self.ended.get(why, 0) for why in NORMAL_ENDS),
            "error_count": self.error_count,
            "errors": self.errors,
            "timed_out": self.timed_out,
            "rss0_kib": self.rss0,
            "gc_longest_ms": GC.longest * 1000.0,
            "gc_total_s": GC.total,
        }


GC = GcPauses()


def webhook(number: int, port: int) -> bytes:
    """The ``rtms_started`` body of meeting ``number``."""
    return json.dumps(
        {
            "event": "meeting.rtms_started",
            "event_ts": 1,
            "payload": {
                "meeting_uuid": f"meeting-{number}",
                "rtms_stream_id": f"stream-{number}",
                "server_urls": f"ws://127.0.0.1:{port}/signaling",
                "operator_id": "bench",
            },
        }
    ).encode()


def rtms_config(number: int, port: int) -> SessionConfig:
    """Audio only, split layout, no event subscriptions, loopback ``ws://`` allowed."""
    from rtms_proto import MediaType
    from rtms_transports import session_config

    return session_config(
        webhook(number, port),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        media=MediaType.AUDIO,
        events=(),
        allowed_hosts=("127.0.0.1",),
    )


def rtms_options() -> TransportOptions:
    from rtms_transports import TransportOptions

    return TransportOptions(connect_timeout=10.0)


def batches(meetings: int, batch: int) -> list[range]:
    return [range(start, min(meetings, start + batch)) for start in range(0, meetings, batch)]


# --------------------------------------------------------------------------- rtms-proto asyncio


def run_asyncio(progress: Progress, port: int, batch: int, deadline: float) -> None:
    import asyncio

    from rtms_proto import events as ev
    from rtms_transports.asyncio import connect

    options = rtms_options()

    async def meeting(number: int) -> None:
        meter = progress.meter()
        try:
            async with connect(rtms_config(number, port), options=options) as stream:
                async for event in stream:
                    if type(event) is ev.AudioReceived:
                        meter.audio(event.timestamp)
                    elif type(event) is ev.MediaConnected:
                        progress.connected(meter)
                    elif type(event) is ev.SessionEnded:
                        progress.end(meter, event.why.value)
        except Exception as exc:
            progress.error(meter, exc)

    async def main() -> None:
        progress.rss0 = rss_kib()
        try:
            async with asyncio.timeout(deadline), asyncio.TaskGroup() as group:
                for numbers in batches(progress.meetings, batch):
                    for number in numbers:
                        group.create_task(meeting(number))
                    limit = time.monotonic() + BATCH_TIMEOUT
                    while progress.settled < numbers.stop and time.monotonic() < limit:
                        await asyncio.sleep(0.01)
        except TimeoutError:
            progress.timed_out = True

    asyncio.run(main())


# --------------------------------------------------------------------------- rtms-proto trio


def run_trio(progress: Progress, port: int, batch: int, deadline: float) -> None:
    import trio

    from rtms_proto import events as ev
    from rtms_transports.trio import connect

    options = rtms_options()

    async def meeting(number: int) -> None:
        meter = progress.meter()
        try:
            async with connect(rtms_config(number, port), options=options) as stream:
                async for event in stream:
                    if type(event) is ev.AudioReceived:
                        meter.audio(event.timestamp)
                    elif type(event) is ev.MediaConnected:
                        progress.connected(meter)
                    elif type(event) is ev.SessionEnded:
                        progress.end(meter, event.why.value)
        except Exception as exc:
            progress.error(meter, exc)

    async def main() -> None:
        progress.rss0 = rss_kib()
        with trio.move_on_after(deadline) as scope:
            async with trio.open_nursery() as nursery:
                for numbers in batches(progress.meetings, batch):
                    for number in numbers:
                        nursery.start_soon(meeting, number)
                    limit = time.monotonic() + BATCH_TIMEOUT
                    while progress.settled < numbers.stop and time.monotonic() < limit:
                        await trio.sleep(0.01)
        progress.timed_out = scope.cancelled_caught

    trio.run(main)


# --------------------------------------------------------------------------- rtms-proto blocking


def run_blocking(progress: Progress, port: int, batch: int, deadline: float) -> None:
    from rtms_proto import events as ev
    from rtms_transports.blocking import connect

    options = rtms_options()

    def meeting(number: int) -> None:
        meter = progress.meter()
        try:
            with connect(rtms_config(number, port), options=options) as stream:
                for event in stream:
                    if type(event) is ev.AudioReceived:
                        meter.audio(event.timestamp)
                    elif type(event) is ev.MediaConnected:
                        progress.connected(meter)
                    elif type(event) is ev.SessionEnded:
                        progress.end(meter, event.why.value)
        except Exception as exc:
            progress.error(meter, exc)

    progress.rss0 = rss_kib()
    end = time.monotonic() + deadline
    threads: list[threading.Thread] = []
    for numbers in batches(progress.meetings, batch):
        for number in numbers:
            thread = threading.Thread(target=meeting, args=(number,), daemon=True)
            thread.start()
            threads.append(thread)
        limit = min(end, time.monotonic() + BATCH_TIMEOUT)
        while progress.settled < numbers.stop and time.monotonic() < limit:
            time.sleep(0.01)
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    progress.timed_out = any(t.is_alive() for t in threads)


# --------------------------------------------------------------------------- blocking pool


def run_blocking_pool(progress: Progress, port: int, batch: int, deadline: float) -> None:
    """Every meeting on one I/O thread (``blocking.Pool``), events to a handler."""
    from rtms_proto import events as ev
    from rtms_transports.blocking import Pool, PoolSession

    options = rtms_options()

    def handler(meter: Meter) -> Callable[[ev.Event], None]:
        def on_event(event: ev.Event) -> None:
            if type(event) is ev.AudioReceived:
                meter.audio(event.timestamp)
            elif type(event) is ev.MediaConnected:
                progress.connected(meter)
            elif type(event) is ev.SessionEnded:
                progress.end(meter, event.why.value)

        return on_event

    progress.rss0 = rss_kib()
    end = time.monotonic() + deadline
    with Pool() as pool:
        meetings: list[PoolSession] = []
        for numbers in batches(progress.meetings, batch):
            for number in numbers:
                config = rtms_config(number, port)
                meetings.append(pool.start(config, handler(progress.meter()), options=options))
            limit = min(end, time.monotonic() + BATCH_TIMEOUT)
            while progress.settled < numbers.stop and time.monotonic() < limit:
                time.sleep(0.01)
        for meeting in meetings:
            try:
                meeting.wait(max(0.0, end - time.monotonic()))
            except TimeoutError:
                progress.timed_out = True
                break


# --------------------------------------------------------------------------- websockets + json


def run_websockets(progress: Progress, port: int, batch: int, deadline: float) -> None:
    """The baseline: a client as Zoom's Python samples write one, one task per socket."""
    import asyncio
    import base64

    from websockets.asyncio.client import ClientConnection
    from websockets.asyncio.client import connect as ws_connect

    async def keepalive(ws: ClientConnection, msg: dict[str, Any]) -> None:
        await ws.send(json.dumps({"msg_type": 13, "timestamp": msg.get("timestamp")}))

    async def media_loop(media: ClientConnection, meter: Meter) -> None:
        async for raw in media:
            msg = json.loads(raw)
            kind = msg.get("msg_type")
            if kind == 14:
                content = msg["content"]
                base64.b64decode(content["data"])
                meter.audio(content.get("timestamp"))
            elif kind == 12:
                await keepalive(media, msg)

    async def signaling_loop(signaling: ClientConnection) -> str:
        async for raw in signaling:
            msg = json.loads(raw)
            kind = msg.get("msg_type")
            if kind == 12:
                await keepalive(signaling, msg)
            elif kind == 8 and msg.get("state") == 4:
                return "stream_terminated"
            elif kind == 9 and msg.get("state") == 5:
                return "session_stopped"
        return "closed_by_server"

    async def meeting(number: int) -> None:
        meter = progress.meter()
        meeting_uuid, stream_id = f"meeting-{number}", f"stream-{number}"
        signature = hmac.new(
            CLIENT_SECRET.encode(),
            f"{CLIENT_ID},{meeting_uuid},{stream_id}".encode(),
            hashlib.sha256,
        ).hexdigest()
        identity = {"meeting_uuid": meeting_uuid, "rtms_stream_id": stream_id}
        try:
            async with ws_connect(f"ws://127.0.0.1:{port}/signaling") as signaling:
                await signaling.send(
                    json.dumps(
                        {
                            "msg_type": 1,
                            "protocol_version": 1,
                            "sequence": 1,
                            **identity,
                            "signature": signature,
                        }
                    )
                )
                answer = json.loads(await signaling.recv())
                if answer.get("status_code") != 0:
                    raise RuntimeError(f"signaling handshake refused: {answer.get('reason')}")
                url = answer["media_server"]["server_urls"]["audio"]
                async with ws_connect(url) as media:
                    await media.send(
                        json.dumps(
                            {
                                "msg_type": 3,
                                "protocol_version": 1,
                                "sequence": 1,
                                **identity,
                                "signature": signature,
                                "media_type": 1,
                                "payload_encryption": False,
                                "media_params": {
                                    "audio": {
                                        "content_type": 2,
                                        "sample_rate": 1,
                                        "channel": 1,
                                        "codec": 1,
                                        "data_opt": 1,
                                        "send_rate": 20,
                                    }
                                },
                            }
                        )
                    )
                    reply = json.loads(await media.recv())
                    if reply.get("status_code") != 0:
                        raise RuntimeError(f"media handshake refused: {reply.get('reason')}")
                    await signaling.send(json.dumps({"msg_type": 7, "rtms_stream_id": stream_id}))
                    progress.connected(meter)
                    media_task = asyncio.create_task(media_loop(media, meter))
                    try:
                        why = await signaling_loop(signaling)
                    finally:
                        media_task.cancel()
                    progress.end(meter, why)
        except Exception as exc:
            progress.error(meter, exc)

    async def main() -> None:
        progress.rss0 = rss_kib()
        try:
            async with asyncio.timeout(deadline), asyncio.TaskGroup() as group:
                for numbers in batches(progress.meetings, batch):
                    for number in numbers:
                        group.create_task(meeting(number))
                    limit = time.monotonic() + BATCH_TIMEOUT
                    while progress.settled < numbers.stop and time.monotonic() < limit:
                        await asyncio.sleep(0.01)
        except TimeoutError:
            progress.timed_out = True

    asyncio.run(main())


RUNNERS: dict[str, Callable[[Progress, int, int, float], None]] = {
    "asyncio": run_asyncio,
    "trio": run_trio,
    "blocking": run_blocking,
    "blocking-pool": run_blocking_pool,
    "websockets": run_websockets,
}


def main(argv: list[str]) -> int:
    driver, meetings, port, batch, deadline = argv[:5]
    if len(argv) > 5 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(argv[5])})
    raise_fd_limit()
    progress = Progress(int(meetings))
    profile = os.environ.get("RTMS_SCALE_PROFILE")
    if profile:  # a cProfile of this client for the phase and the ramp (slows it down)
        import cProfile

        cProfile.runctx(
            "RUNNERS[driver](progress, int(port), int(batch), float(deadline))",
            globals(),
            locals(),
            profile,
        )
    else:
        RUNNERS[driver](progress, int(port), int(batch), float(deadline))
    sys.stdout.write(json.dumps(progress.stats(driver)) + "\n")
    sys.stdout.flush()
    if progress.timed_out:
        os._exit(0)  # blocking meetings still running cannot be joined; leave now
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
