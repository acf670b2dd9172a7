"""Capacity: many real-time audio meetings in one client process, per driver (not a test).

The benchmark of issue 12.  For every meeting count and every client, one row
from three processes:

* a load server (``_scale_server.py``, raw asyncio, prebuilt frames; not the
  conformance fake server, whose own cost would dominate) on 127.0.0.1,
  ``ws://``, pinned to one CPU.  Per meeting: a signaling socket and an audio
  socket (split layout); once every meeting is ready (msg 7 received) it sends
  each one a 20 ms L16 16 kHz mono audio message (640 bytes base64 in JSON,
  msg 14, ``timestamp`` = send time in ms) every 20 ms for ``--seconds``, and
  a keep-alive request to every socket every second, timing the round trip.
  Then it ends every stream normally (STREAM_STATE_UPDATE TERMINATED, SESSION_STATE_UPDATE
  STOPPED) after a last keep-alive on each audio socket, whose answer shows
  that every audio message before it was read;
* the client (``_scale_clients.py``), pinned to the other CPU: all N meetings
  of one driver in one process (``rtms_transports.asyncio`` / ``.trio``
  tasks, ``.blocking`` a thread per meeting iterating its stream, their sockets
  on the one I/O thread of ``connect()``, ``blocking-pool`` every meeting
  on the one I/O thread of a ``blocking.Pool`` with a handler, or ``websockets``: a baseline
  written the way Zoom's Python samples are, ``websockets`` + ``json`` +
  ``base64`` in asyncio tasks), connected ``--batch`` meetings at a time;
* this process, which drives both and reads the client's CPU time and RSS
  from ``/proc`` (Linux; elsewhere those columns show ``-``).

Columns: meetings ready/asked; keep-alive round trip p50/p99 measured by the
server (requests sent during the phase); delivery lag p50/p99 measured by the
client (its wall clock at receipt minus the message's ``timestamp``, 1 ms
resolution); audio messages the server sent and how many the client did not
receive; the client's CPU seconds (all threads) during the phase; its RSS at
the end of the phase, and that RSS minus the RSS before its first meeting,
per meeting; streams that ended normally; the client's longest garbage
collector pause over the whole run (ramp included), which stops every meeting
at once.

``--idle`` runs the same without audio (keep-alives only, default 50 and 1000
meetings) and reports for each driver the slope of RSS between the smallest
and the largest count: the memory one more idle meeting costs.

``--instructions`` counts instead the client's instructions per audio message
under valgrind's callgrind, at a few meetings (default 3) so that each read
still holds one message: two phases of 2 and 8 s, the difference in
instructions over the difference in messages.  It is what a neighbour on the
machine cannot disturb, but leaves out what only many sockets cost.

``RTMS_SCALE_PROFILE=FILE`` in the environment writes a cProfile of the client to
FILE (the last row measured wins; the profile slows the client down).

The figures depend on the machine and on what else runs on it: compare rows
of one run, and read the notes under the table.  The server skips the ticks it
misses rather than bursting, and says so when it sent less than 97% of the
audio due: such a row understates the load.  On the (busy) 2-vCPU virtual
machine this was written on, that happened with the blocking client at 100
meetings and not with the others: waking a hundred threads on the client's
CPU from the server's stalled the server inside ``send()`` (milliseconds of
wall time, no CPU time), a cost of cross-CPU wake-ups under virtualisation
that a thread per meeting pays and one event loop does not.  Commands::

    # validation with small numbers (about a minute each)
    python bench/bench_scale.py --meetings 20,100 --seconds 3
    python bench/bench_scale.py --idle --meetings 20,100 --seconds 3
    # a modest measurement
    python bench/bench_scale.py --meetings 100,500 --seconds 10
    # the issue's figures (about half an hour)
    python bench/bench_scale.py
    python bench/bench_scale.py --idle
    # client instructions per message (valgrind; steady on a busy machine)
    python bench/bench_scale.py --instructions --drivers asyncio,websockets
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from _scale_clients import RUNNERS, rss_kib

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "_scale_server.py")
CLIENTS = os.path.join(HERE, "_scale_clients.py")
DRIVERS = tuple(RUNNERS)
SETTLE = 1.0
"""Seconds between the last meeting ready and the phase: the connect storm's tail."""
END_BUDGET = 90.0
"""Seconds for the server to end every stream and see every socket closed."""


class Lines:
    """JSON lines from a child's stdout, read by a thread so that waits can time out."""

    def __init__(self, proc: subprocess.Popen[str], name: str) -> None:
        self.proc, self.name = proc, name
        self.lines: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def read(self, timeout: float, watch: subprocess.Popen[str] | None = None) -> dict[str, Any]:
        """The next line; fails after ``timeout`` s, at end of output, or if ``watch`` exits."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no answer within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if watch is not None and watch.poll() is not None:
                    raise RuntimeError(f"client exited early (status {watch.returncode})") from None
                continue
            if line is None:
                raise RuntimeError(f"{self.name} exited (status {self.proc.wait()})")
            answer: dict[str, Any] = json.loads(line)
            return answer

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (all its threads), from ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile_of_histogram(hist: dict[int, int], p: float) -> int | None:
    """Nearest-rank percentile of a value -> count histogram."""
    total = sum(hist.values())
    if not total:
        return None
    rank = max(1, -(-total * p // 100))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to the total")


@dataclass
class Row:
    driver: str
    meetings: int
    audio: bool
    ready: int = 0
    rtt: tuple[float | None, float | None] = (None, None)
    lag: tuple[int | None, int | None] = (None, None)
    sent: int = 0
    expected: int = 0
    received: int = 0
    cpu: float | None = None
    rss_kib: int = 0
    rss0_kib: int = 0
    gc_longest_ms: float | None = None
    ended_ok: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def per_meeting_kib(self) -> float | None:
        if not (self.rss_kib and self.rss0_kib and self.meetings):
            return None
        return (self.rss_kib - self.rss0_kib) / self.meetings


def spawn(command: list[str], stdin: bool, stderr: IO[str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


def stop(proc: subprocess.Popen[str] | None) -> None:
    """End a child this bench started: the server on end of input, the client by signal.

    Both have normally finished by now; this is for a row that failed or a
    bench that was interrupted.
    """
    if proc is None:
        return
    if proc.stdin is not None and not proc.stdin.closed:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    elif proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(
    driver: str,
    meetings: int,
    args: argparse.Namespace,
    cpus: tuple[int, int] | None,
    wrap: tuple[list[str], IO[str]] | None = None,
) -> Row:
    """One row: a fresh server and client process, a phase, the end of every stream.

    ``wrap``: a command to run the client under, and where its stderr goes.
    """
    row = Row(driver, meetings, audio=not args.idle)
    ramp = 30.0 + meetings * 0.05 + (60.0 if wrap is not None else 0.0)  # valgrind starts slowly
    deadline = ramp + SETTLE + args.seconds + END_BUDGET + 30.0
    server = client = None
    try:
        server = spawn([sys.executable, SERVER, *(["--cpu", str(cpus[1])] if cpus else [])], True)
        from_server = Lines(server, "server")
        port = from_server.read(30)["port"]
        command = [sys.executable, CLIENTS, driver, str(meetings), str(port)]
        command += [str(args.batch), str(deadline), *([str(cpus[0])] if cpus else [])]
        if wrap is not None:
            command = wrap[0] + command
        client = spawn(command, False, None if wrap is None else wrap[1])
        from_client = Lines(client, "client")
        from_server.send(f"wait {meetings} {ramp}")
        row.ready = from_server.read(ramp + 30, watch=client)["ready"]
        if row.ready < meetings:
            row.problems.append(f"only {row.ready} of {meetings} meetings ready")
        time.sleep(SETTLE)
        cpu0 = cpu_seconds(client.pid)
        from_server.send(f"run {args.seconds} {int(row.audio)}")
        phase = from_server.read(args.seconds + 60, watch=client)
        cpu1 = cpu_seconds(client.pid)
        row.rss_kib = rss_kib(client.pid)
        if cpu0 is not None and cpu1 is not None:
            row.cpu = cpu1 - cpu0
        row.sent, row.expected = phase["sent"], phase["expected"]
        if row.sent < 0.97 * row.expected:
            row.problems.append(
                f"the server sent {row.sent} of {row.expected} audio messages: it skipped"
                f" {phase['late_ticks']} ticks of 20 ms (its CPU was busy), so this row"
                " understates the load"
            )
        if phase["server_cpu"] > 0.8 * phase["phase_end"]:
            row.problems.append(
                f"the server used {phase['server_cpu']:.1f} CPU s in a"
                f" {phase['phase_end']:.1f} s phase: it may have been the limit"
            )
        done = from_server.read(END_BUDGET)
        row.rtt = (done["rtt_p50"], done["rtt_p99"])
        if done["rtt_unanswered"]:
            row.problems.append(
                f"{done['rtt_unanswered']} timed keep-alives never answered"
                " (not in the RTT figures)"
            )
        if done["fence_timeouts"] or done["unclosed"]:
            row.problems.append(
                f"{done['fence_timeouts']} streams ended without their last keep-alive"
                f" answered, {done['unclosed']} sockets left open"
            )
        stats = from_client.read(deadline)
        row.received = stats["received"]
        hist = {int(k): v for k, v in stats["lags"].items()}
        row.lag = (percentile_of_histogram(hist, 50), percentile_of_histogram(hist, 99))
        row.ended_ok, row.rss0_kib = stats["ended_ok"], stats["rss0_kib"]
        row.gc_longest_ms = stats["gc_longest_ms"]
        if stats["error_count"] or stats["timed_out"] or row.ended_ok < meetings:
            row.problems.append(
                f"ended {stats['ended']}, {stats['error_count']} errors {stats['errors']}"
                + (", timed out" if stats["timed_out"] else "")
            )
    except RuntimeError as exc:
        row.problems.append(str(exc))
    finally:
        stop(client)
        stop(server)
    return row


def ms(value: float | None) -> str:
    """Milliseconds: whole ones from 10 on (and for the 1 ms lag histogram), else one decimal."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if isinstance(value, int) or value >= 10 else f"{value:.1f}"


def cells(row: Row) -> list[str]:
    per = row.per_meeting_kib
    common = [
        row.driver,
        f"{row.ready}/{row.meetings}",
        ms(row.rtt[0]),
        ms(row.rtt[1]),
    ]
    media = [
        ms(row.lag[0]),
        ms(row.lag[1]),
        f"{row.sent:,}",
        f"{row.sent - row.received:,}",
    ]
    rest = [
        "-" if row.cpu is None else f"{row.cpu:.1f}",
        f"{row.rss_kib / 1024:.0f}" if row.rss_kib else "-",
        "-" if per is None else f"{per:.0f}",
        f"{row.ended_ok}/{row.meetings}",
        ms(row.gc_longest_ms),
    ]
    return common + (media if row.audio else []) + rest


def header(audio: bool) -> list[str]:
    common = ["driver", "meetings", "KA RTT p50 ms", "KA RTT p99 ms"]
    media = ["lag p50 ms", "lag p99 ms", "sent", "lost"]
    rest = ["CPU s", "RSS MiB", "KiB/meeting", "ended ok", "GC max ms"]
    return common + (media if audio else []) + rest


def line(values: list[str]) -> str:
    return "| " + " | ".join(values) + " |"


def idle_slopes(rows: list[Row]) -> list[str]:
    """Per driver: RSS slope (KiB per idle meeting) between the smallest and largest count."""
    out = []
    for driver in dict.fromkeys(r.driver for r in rows):
        mine = sorted(
            (r for r in rows if r.driver == driver and r.rss_kib), key=lambda r: r.meetings
        )
        if len(mine) < 2 or mine[0].meetings == mine[-1].meetings:
            continue
        low, high = mine[0], mine[-1]
        slope = (high.rss_kib - low.rss_kib) / (high.meetings - low.meetings)
        out.append(
            f"{driver}: {slope:.1f} KiB per idle meeting"
            f" (RSS {low.rss_kib / 1024:.1f} MiB at {low.meetings},"
            f" {high.rss_kib / 1024:.1f} MiB at {high.meetings})"
        )
    return out


def pick_cpus() -> tuple[int, int] | None:
    """(client CPU, server CPU) when there are two CPUs to pin them to."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def counts(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("meeting counts are positive integers")
    return values


INSTRUCTION_PHASES = (2.0, 8.0)
"""Seconds of the two phases whose difference --instructions divides by the messages."""


def count_instructions(drivers: list[str], meetings: int, args: argparse.Namespace) -> int:
    """Client instructions per audio message at ``meetings`` real-time meetings.

    Each client runs under valgrind's callgrind for two phases of different
    lengths; the difference in instructions divided by the difference in audio
    messages received is the cost of one more message (start-up, imports and
    handshakes cancel out).  Few meetings, so that even under valgrind each
    read holds one message, as it does in real time.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("--instructions needs valgrind (Debian: apt install valgrind)")
    wrapper = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    print(
        f"client instructions per 20 ms audio message, {meetings} meetings, phases of"
        f" {INSTRUCTION_PHASES[0]:g} and {INSTRUCTION_PHASES[1]:g} s (callgrind)",
        flush=True,
    )
    per_message: dict[str, float] = {}
    problems = []
    for driver in drivers:
        points = []
        for seconds in INSTRUCTION_PHASES:
            phase = argparse.Namespace(idle=False, seconds=seconds, batch=args.batch)
            with tempfile.TemporaryFile("w+") as err:
                row = measure(driver, meetings, phase, pick_cpus(), (wrapper, err))
                err.seek(0)
                found = re.search(r"Collected : (\d+)", err.read())
            problems += [f"{driver} ({seconds:g} s): {p}" for p in row.problems]
            if found is None:
                problems.append(f"{driver} ({seconds:g} s): valgrind reported no count")
                break
            points.append((row.received, int(found.group(1))))
        if len(points) == 2 and points[1][0] > points[0][0]:
            (m0, i0), (m1, i1) = points
            per_message[driver] = (i1 - i0) / (m1 - m0)
            print(f"  {driver:10s} {per_message[driver]:10,.0f} instructions/msg", flush=True)
    base = per_message.get("websockets")
    for driver, count in per_message.items():
        ratio = f", {count / base:.2f}x websockets + json" if base else ""
        print(f"{driver}: {count:,.0f} instructions per message{ratio}")
    for text in problems:
        print(f"note: {text}")
    return 1 if problems or len(per_message) < len(drivers) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--meetings",
        type=counts,
        help="comma-separated meeting counts (100,500,1000,1500; --idle: 50,1000)",
    )
    parser.add_argument(
        "--drivers", default=",".join(DRIVERS), help=f"comma-separated subset of {DRIVERS}"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the phase (15)")
    parser.add_argument("--idle", action="store_true", help="keep-alives only: memory per meeting")
    parser.add_argument("--batch", type=int, default=50, help="meetings connected at a time (50)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count client instructions per audio message under valgrind (default 3 meetings)",
    )
    args = parser.parse_args(argv)
    # A terminated bench still stops its server and client (the ``finally`` in measure()).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    drivers = [d for d in args.drivers.split(",") if d]
    unknown = set(drivers) - set(DRIVERS)
    if unknown:
        parser.error(f"unknown drivers: {', '.join(sorted(unknown))}")
    if args.instructions:
        return count_instructions(drivers, (args.meetings or [3])[0], args)
    meetings = args.meetings or ([50, 1000] if args.idle else [100, 500, 1000, 1500])
    cpus = pick_cpus()
    print(
        f"{'idle meetings (keep-alives only)' if args.idle else '20 ms audio per meeting'},"
        f" {args.seconds:g} s phase, ws:// on loopback; "
        + (f"client on CPU {cpus[0]}, server on CPU {cpus[1]}" if cpus else "no CPU pinning")
        + f"; load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(line(header(not args.idle)), flush=True)
    print(line(["---"] * len(header(not args.idle))), flush=True)
    rows = []
    problems = []
    for count in meetings:
        for driver in drivers:
            row = measure(driver, count, args, cpus)
            rows.append(row)
            print(line(cells(row)), flush=True)
            problems += [f"{driver} x {count}: {p}" for p in row.problems]
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if args.idle:
        for text in idle_slopes(rows):
            print(text)
    for text in problems:
        print(f"note: {text}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
