"""Run scenarios against an adapter and compare the traces with the expected ones.

For a socket adapter each scenario gets its own fake server
(:class:`~rtms_conformance.net.ServerThread` on 127.0.0.1, TLS from a test CA
made once per :class:`Runner`, URLs naming ``localhost``); the client's
configuration allows only ``localhost``.  For the in-memory reference the
server runs on a :class:`~rtms_conformance.memory.MemoryNetwork`.  Scenarios
run several at a time (``parallel``); each is bounded by its time limit.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rtms_proto import Credentials, SessionConfig, StreamIdentity
from rtms_proto import messages as m
from rtms_proto.actions import SocketRole
from rtms_proto.webhooks import RtmsStarted, parse_webhook

from .harness import HANG_GRACE, Harness, ScenarioEnv, StreamEnv
from .memory import MemoryNetwork
from .net import ServerThread
from .scenarios import CLIENT_ID, SCENARIOS, Scenario
from .server import FakeRtmsServer, StreamInfo, TraceEntry
from .tls import LoopbackTLS, make_test_ca
from .trace import normalise

__all__ = [
    "ALLOWED_HOSTS",
    "Report",
    "Runner",
    "ScenarioResult",
    "keepalive_facts",
    "released_fact",
    "session_config",
]

ALLOWED_HOSTS = ("localhost",)
"""The only host a conformance client may connect to."""

MEMORY_BASE_URL = "wss://localhost:8443"

SLOW_CONNECT = 0.25
"""Connect time (s) above which a failure report suspects an overloaded machine."""

_CLOSING_NOTES = ("connection lost", "client sent a close frame", "dropped:")
_ROLE_ORDER = {role: i for i, role in enumerate(SocketRole)}


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """One scenario on one adapter: the trace of each stream, and how it compares."""

    scenario: str
    adapter: str
    expected: tuple[str, ...]
    traces: tuple[tuple[str, ...], ...]
    seconds: float
    error: str | None = None
    connect_seconds: float | None = None
    """The slowest stream's time to its first media handshake (socket runs only)."""

    @property
    def ok(self) -> bool:
        return self.error is None and all(trace == self.expected for trace in self.traces)

    def diff(self) -> str:
        """A readable account of every difference (empty when ``ok``)."""
        parts: list[str] = []
        if self.error is not None:
            parts.append(f"adapter error: {self.error}")
        for i, trace in enumerate(self.traces):
            if trace == self.expected:
                continue
            lines = difflib.unified_diff(
                list(self.expected),
                list(trace),
                fromfile=f"expected ({self.scenario})",
                tofile=f"{self.adapter} stream {i + 1}",
                lineterm="",
                n=2,
            )
            parts.append("\n".join(lines))
        slow = self.connect_seconds
        if parts and slow is not None and slow > SLOW_CONNECT:
            parts.append(
                f"note: a stream needed {slow * 1000:.0f} ms to connect its first media socket;"
                " the scenarios assume well under 500 ms (is the machine overloaded?)"
            )
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Report:
    """Every scenario run on one adapter."""

    adapter: str
    results: tuple[ScenarioResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> tuple[ScenarioResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def summary(self) -> str:
        """One line per scenario, then the diff of each failure."""
        lines = [f"rtms conformance: adapter {self.adapter!r}"]
        for r in self.results:
            mark = "ok  " if r.ok else "FAIL"
            lines.append(f"  {mark} {r.scenario:<32} {r.seconds:6.2f} s")
        failed = self.failures
        lines.append(
            f"{len(self.results) - len(failed)} passed, {len(failed)} failed"
            f" in {self.seconds:.2f} s"
        )
        for r in failed:
            lines.append("")
            lines.append(f"--- {r.scenario} ---")
            lines.append(r.diff())
        return "\n".join(lines)


# --- configuration ----------------------------------------------------------------------------


def session_config(scenario: Scenario, webhook_body: bytes) -> SessionConfig:
    """The client's configuration: the webhook's stream, the scenario's settings."""
    started = parse_webhook(webhook_body, allowed_hosts=ALLOWED_HOSTS)
    if not isinstance(started, RtmsStarted):
        raise ValueError(f"not an rtms_started webhook: {type(started).__name__}")
    c = scenario.client
    url = started.server_url.url
    if c.signaling_path is not None:
        url = urllib.parse.urlsplit(url)._replace(path=c.signaling_path).geturl()
    return SessionConfig(
        stream=StreamIdentity(
            instance_id=started.instance_id,
            rtms_stream_id=started.rtms_stream_id,
            product=started.product,
        ),
        server_url=url,
        credentials=Credentials(client_id=CLIENT_ID, client_secret=c.client_secret),
        media=c.media,
        layout=c.layout,
        params=c.params,
        events=c.events,
        buffer_data=c.buffer_data,
        signaling_options=c.options(ALLOWED_HOSTS, media=False),
        media_options=c.options(ALLOWED_HOSTS, media=True),
        signaling_backoff=c.signaling_backoff,
        media_backoff=c.media_backoff,
        duplicate_backoff=c.duplicate_backoff,
        close_stream_timeout=c.close_stream_timeout,
    )


def _current_url(fetch: Callable[[StreamInfo], bytes], info: StreamInfo) -> Callable[[], str]:
    """The signaling URL of the stream's newest ``rtms_started`` (it changes on failover)."""

    def current() -> str:
        started = parse_webhook(fetch(info), allowed_hosts=ALLOWED_HOSTS)
        assert isinstance(started, RtmsStarted)
        return started.server_url.url

    return current


# --- server facts -----------------------------------------------------------------------------


def keepalive_facts(trace: Iterable[TraceEntry], rtms_stream_id: str) -> list[str]:
    """Which socket roles answered the server's keep-alives, and which missed some.

    The last request on a socket may go unanswered (the socket closed right
    after it); any earlier unanswered one is a miss.
    """
    requests: dict[object, tuple[SocketRole | None, list[int]]] = {}
    answers: dict[object, set[int]] = {}
    for entry in trace:
        if entry.rtms_stream_id != rtms_stream_id:
            continue
        msg = entry.message
        if not isinstance(msg, m.KeepAliveRequest | m.KeepAliveResponse) or msg.timestamp is None:
            continue
        if entry.direction == "out" and isinstance(msg, m.KeepAliveRequest):
            requests.setdefault(entry.conn, (entry.role, []))[1].append(msg.timestamp)
        elif entry.direction == "in" and isinstance(msg, m.KeepAliveResponse):
            answers.setdefault(entry.conn, set()).add(msg.timestamp)
    answered: set[SocketRole] = set()
    missed: set[SocketRole] = set()
    for conn, (role, stamps) in requests.items():
        if role is None:
            continue
        got = answers.get(conn, set())
        if any(stamp in got for stamp in stamps):
            answered.add(role)
        if any(stamp not in got for stamp in stamps[:-1]):
            missed.add(role)

    def roles(found: set[SocketRole]) -> str:
        return ",".join(r.value for r in sorted(found, key=_ROLE_ORDER.__getitem__)) or "none"

    facts = [f"server: keep-alives answered on {roles(answered)}"]
    if missed:
        facts.append(f"server: keep-alives MISSED on {roles(missed)}")
    return facts


def released_fact(trace: Iterable[TraceEntry], rtms_stream_id: str) -> str:
    """Whether every connection that spoke on the stream was closed or dropped."""
    seen: set[object] = set()
    closed: set[object] = set()
    for entry in trace:
        if entry.rtms_stream_id != rtms_stream_id:
            continue
        if entry.direction == "in":
            seen.add(entry.conn)
        elif entry.direction == "note" and entry.note.startswith(_CLOSING_NOTES):
            closed.add(entry.conn)
    left = len(seen - closed)
    if left == 0:
        return "server: every connection closed"
    return f"server: {left} connection(s) still open"


def _facts(scenario: Scenario, trace: Sequence[TraceEntry], sid: str) -> list[str]:
    out: list[str] = []
    for fact in scenario.facts:
        if fact == "keepalive":
            out.extend(keepalive_facts(trace, sid))
        elif fact == "released":
            out.append(released_fact(trace, sid))
        else:
            raise ValueError(f"unknown fact {fact!r} in scenario {scenario.name!r}")
    return out


def _all_released(core: FakeRtmsServer, sids: Sequence[str]) -> bool:
    return all(released_fact(core.trace, sid).endswith("every connection closed") for sid in sids)


# --- running ----------------------------------------------------------------------------------


class Runner:
    """Runs scenarios; holds the test CA (made on first use) until :meth:`close`."""

    def __init__(self, *, parallel: int = 4) -> None:
        if parallel < 1:
            raise ValueError("parallel must be >= 1")
        self.parallel = parallel
        self._tls: LoopbackTLS | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._ca_file: str | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _tls_files(self) -> tuple[LoopbackTLS, str]:
        with self._lock:
            if self._tls is None or self._ca_file is None:
                self._tls = make_test_ca(("localhost", "127.0.0.1"))
                self._tmp = tempfile.TemporaryDirectory(prefix="rtms-conformance-")
                self._ca_file = str(self._tls.write_ca(Path(self._tmp.name) / "ca.pem"))
            return self._tls, self._ca_file

    def run(self, adapter: Harness, scenarios: Sequence[Scenario] | None = None) -> Report:
        """Run ``scenarios`` (default: the whole catalogue) against ``adapter``."""
        chosen = tuple(SCENARIOS if scenarios is None else scenarios)
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
            results = tuple(pool.map(lambda s: self.run_scenario(adapter, s), chosen))
        return Report(adapter=adapter.name, results=results, seconds=time.monotonic() - start)

    def run_scenario(self, adapter: Harness, scenario: Scenario) -> ScenarioResult:
        """Run one scenario against ``adapter``."""
        start = time.monotonic()
        connect: float | None = None
        try:
            if getattr(adapter, "uses_sockets", True):
                traces, error, connect = self._on_sockets(adapter, scenario)
            else:
                traces, error = self._in_memory(adapter, scenario)
        except Exception as exc:  # the runner or the server failed: report, don't crash
            traces, error = (), f"{type(exc).__name__}: {exc}"
        return ScenarioResult(
            scenario=scenario.name,
            adapter=adapter.name,
            expected=scenario.expected,
            traces=traces,
            seconds=time.monotonic() - start,
            error=error,
            connect_seconds=connect,
        )

    def _stream_env(
        self,
        scenario: Scenario,
        index: int,
        info: StreamInfo,
        body: bytes,
        *,
        current_url: Callable[[], str],
        tls: LoopbackTLS | None,
        ca_file: str | None,
    ) -> StreamEnv:
        return StreamEnv(
            index=index,
            info=info,
            config=session_config(scenario, body),
            webhook_body=body,
            jitter_value=scenario.client.jitter,
            actions=scenario.actions,
            cancel_after=scenario.cancel_after,
            time_limit=scenario.time_limit,
            current_url=current_url,
            tls=tls,
            ca_file=ca_file,
        )

    def _in_memory(
        self, adapter: Harness, scenario: Scenario
    ) -> tuple[tuple[tuple[str, ...], ...], str | None]:
        server = FakeRtmsServer(scenario.server.config(MEMORY_BASE_URL))
        net = MemoryNetwork(server)
        infos = [server.add_stream(spec, net.now) for spec in scenario.stream_specs()]
        streams = tuple(
            self._stream_env(
                scenario,
                i,
                info,
                server.rtms_started_body(info),
                current_url=_current_url(server.rtms_started_body, info),
                tls=None,
                ca_file=None,
            )
            for i, info in enumerate(infos)
        )
        env = ScenarioEnv(scenario, streams, memory=net)
        error = _call(adapter, env)
        traces = tuple(
            normalise(
                s.snapshot(), layout=scenario.client.layout, media_epoch_ms=s.info.media_epoch_ms
            )
            + tuple(_facts(scenario, server.trace, s.rtms_stream_id))
            for s in streams
        )
        return traces, error

    def _on_sockets(
        self, adapter: Harness, scenario: Scenario
    ) -> tuple[tuple[tuple[str, ...], ...], str | None, float | None]:
        tls, ca_file = self._tls_files()
        config = scenario.server.config("wss://localhost")
        with ServerThread(
            config, host="127.0.0.1", ssl_context=tls.server_context, url_host="localhost"
        ) as server:
            infos = [server.add_stream(spec) for spec in scenario.stream_specs()]
            streams = tuple(
                self._stream_env(
                    scenario,
                    i,
                    info,
                    server.rtms_started_body(info),
                    current_url=_current_url(server.rtms_started_body, info),
                    tls=tls,
                    ca_file=ca_file,
                )
                for i, info in enumerate(infos)
            )
            env = ScenarioEnv(scenario, streams)
            error = _call(adapter, env)
            sids = [info.rtms_stream_id for info in infos]
            if "released" in scenario.facts:
                server.wait_for(lambda core: _all_released(core, sids), 2.0)
            trace = server.call(lambda running: list(running.server.trace))
        traces = tuple(
            normalise(
                s.snapshot(), layout=scenario.client.layout, media_epoch_ms=s.info.media_epoch_ms
            )
            + tuple(_facts(scenario, trace, s.rtms_stream_id))
            for s in streams
        )
        times = [s.connected_after for s in streams if s.connected_after is not None]
        return traces, error, max(times, default=None)


def _call(adapter: Harness, env: ScenarioEnv) -> str | None:
    """Run the adapter on a thread of its own, bounded by the scenario's time limit."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            adapter.run(env)
        except BaseException as exc:  # reported in the result
            errors.append(exc)

    thread = threading.Thread(target=target, name=f"rtms-conformance-{env.scenario.name}")
    thread.daemon = True
    thread.start()
    limit = env.time_limit + 2 * HANG_GRACE
    thread.join(limit)
    if thread.is_alive():
        for stream in env.streams:
            stream.hung()
        return f"the adapter did not return within {limit:g} s"
    for stream in env.streams:
        if errors:
            stream.raised(errors[0])
        stream.returned()
    if errors:
        return f"{type(errors[0]).__name__}: {errors[0]}"
    return None
