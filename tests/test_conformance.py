"""The conformance suite: every scenario on the in-memory reference and on every transport.

The in-memory reference (the session on the fake server's simulated clock)
must produce each scenario's expected trace; so must each driver
``rtms_transports`` registers (asyncio, trio, blocking: all three, since the
test extra installs trio, so a missing one fails instead of dropping out of the
parity check), over TLS on 127.0.0.1, and the traces must be identical to each
other.  A transport's
whole catalogue runs once, several scenarios at a time
(``RTMS_CONFORMANCE_PARALLEL``, default 2: safe on a busy 2-core CI machine), and
each scenario is reported as its own test.

Then the machinery itself: the trace rules on hand-made records, a broken
adapter being caught, the pytest plugin, the command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rtms_conformance.adapters import ENTRY_POINT_GROUP, adapter_names, load_adapter
from rtms_conformance.harness import (
    CommandTarget,
    Harness,
    MemoryAdapter,
    ScenarioEnv,
    StreamEnv,
)
from rtms_conformance.runner import Runner, ScenarioResult
from rtms_conformance.scenarios import SCENARIOS, Stop, by_name, trace_lines
from rtms_conformance.trace import AppCommand, RecordItem, RunEnded, RunEndKind, normalise
from rtms_proto import AudioParams, Layout, MediaParams, RemoteProtocolError
from rtms_proto import events as ev
from rtms_proto.actions import SocketId, SocketRole
from rtms_proto.enums import (
    FailureReason,
    MediaType,
    StatusCode,
    StopReason,
    StreamState,
)

NAMES = [s.name for s in SCENARIOS]
PARALLEL = int(os.environ.get("RTMS_CONFORMANCE_PARALLEL", "2"))


TRANSPORTS = ("asyncio", "trio", "blocking")
"""Every driver must run the catalogue: one that cannot be loaded fails its tests."""

Results = dict[str, ScenarioResult]


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(parallel=PARALLEL) as r:
        yield r


@pytest.fixture(scope="module")
def memory(runner: Runner) -> Results:
    report = runner.run(MemoryAdapter())
    return {r.scenario: r for r in report.results}


@pytest.fixture(scope="module")
def transport(runner: Runner) -> Callable[[str], Results]:
    """The results of one transport's whole catalogue, run on first use."""
    cache: dict[str, Results] = {}

    def results(name: str) -> Results:
        if name not in cache:
            report = runner.run(load_adapter(name))
            cache[name] = {r.scenario: r for r in report.results}
        return cache[name]

    return results


# --- the catalogue ------------------------------------------------------------------------------


def test_catalogue_is_well_formed() -> None:
    assert len(NAMES) == len(set(NAMES)), "scenario names must be unique"
    for scenario in SCENARIOS:
        assert scenario.expected, scenario.name
        assert scenario.description, scenario.name
        ids = [spec.rtms_stream_id for spec in scenario.stream_specs()]
        assert len(ids) == len(set(ids)), scenario.name
    assert by_name("happy-split") is SCENARIOS[0]
    with pytest.raises(KeyError, match="no scenario"):
        by_name("no-such-scenario")


@pytest.mark.parametrize("name", NAMES)
def test_memory_reference(name: str, memory: Results) -> None:
    result = memory[name]
    assert result.ok, result.diff()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("transport_name", TRANSPORTS)
def test_transport(
    transport_name: str, name: str, transport: Callable[[str], Results], memory: Results
) -> None:
    result = transport(transport_name)[name]
    assert result.ok, result.diff()
    assert result.traces == memory[name].traces


@pytest.mark.parametrize("name", NAMES)
def test_traces_identical_across_adapters(
    name: str, transport: Callable[[str], Results], memory: Results
) -> None:
    traces = {"memory": memory[name].traces}
    traces.update({t: transport(t)[name].traces for t in TRANSPORTS})
    assert len(set(traces.values())) == 1, sorted(traces)


# --- the trace rules on hand-made records ------------------------------------------------------

SIG1 = SocketId(1, SocketRole.SIGNALING)
AUDIO2 = SocketId(2, SocketRole.AUDIO)
SIG3 = SocketId(3, SocketRole.SIGNALING)
AUDIO4 = SocketId(4, SocketRole.AUDIO)
EPOCH = 1_700_000_000_000
LOST = RemoteProtocolError(FailureReason.CONNECTION_LOST, "reset")
AUDIO_PARAMS = MediaParams(audio=AudioParams())


def _trace(record: list[RecordItem], layout: Layout = Layout.SPLIT) -> tuple[str, ...]:
    return normalise(record, layout=layout, media_epoch_ms=EPOCH)


def _connected() -> list[RecordItem]:
    return [
        ev.SignalingConnected(sock=SIG1, media_urls={"audio": "wss://x/a"}),
        ev.MediaConnected(sock=AUDIO2, media_type=MediaType.AUDIO, params=AUDIO_PARAMS),
        ev.AudioReceived(data=b"\x01\x02", user_id=0, timestamp=EPOCH),
        ev.AudioReceived(data=b"\x03\x04", user_id=0, timestamp=EPOCH + 20),
    ]


def _schedule(media_type: MediaType | None, reason: FailureReason) -> ev.ReconnectScheduled:
    scope = ev.ReconnectScope.SIGNALING if media_type is None else ev.ReconnectScope.MEDIA
    return ev.ReconnectScheduled(
        scope=scope, media_type=media_type, attempt=1, delay=0.1, reason=reason
    )


def _resumed() -> list[RecordItem]:
    signaling = ev.ReconnectScope.SIGNALING
    return [
        ev.ReconnectStarted(scope=signaling, media_type=None, attempt=1),
        ev.SignalingConnected(sock=SIG3, media_urls={"audio": "wss://x/a"}),
        ev.ReconnectCompleted(scope=signaling, media_type=None, attempts=1),
        ev.MediaConnected(sock=AUDIO4, media_type=MediaType.AUDIO, params=AUDIO_PARAMS),
        ev.SessionEnded(why=ev.EndReason.STOPPED_LOCALLY, detail="x"),
    ]


def test_signaling_loss_race_variants_give_one_trace() -> None:
    sig_first = [
        *_connected(),
        ev.ConnectionFailed(sock=SIG1, error=LOST),
        _schedule(None, FailureReason.CONNECTION_LOST),
        ev.SocketClosed(sock=AUDIO2, by_peer=False, code=None),
        *_resumed(),
    ]
    audio_first = [
        *_connected(),
        ev.ConnectionFailed(sock=AUDIO2, error=LOST),
        _schedule(MediaType.AUDIO, FailureReason.CONNECTION_LOST),
        ev.ConnectionFailed(sock=SIG1, error=LOST),
        _schedule(None, FailureReason.CONNECTION_LOST),
        *_resumed(),
    ]
    assert _trace(sig_first) == _trace(audio_first)
    assert "audio: closed audio#1" in _trace(sig_first)
    assert not any("media attempt" in line for line in _trace(audio_first))


def test_interruption_event_and_reset_race_variants_give_one_trace() -> None:
    interrupted = ev.MediaInterrupted(timestamp=1, raw={"media_type": 1})
    started = ev.ReconnectStarted(
        scope=ev.ReconnectScope.MEDIA, media_type=MediaType.AUDIO, attempt=1
    )
    reset_first = [
        *_connected(),
        ev.ConnectionFailed(sock=AUDIO2, error=LOST),
        _schedule(MediaType.AUDIO, FailureReason.CONNECTION_LOST),
        interrupted,
        started,
        ev.SessionEnded(why=ev.EndReason.STOPPED_LOCALLY, detail="x"),
    ]
    event_first = [
        *_connected(),
        interrupted,
        _schedule(MediaType.AUDIO, FailureReason.CONNECTION_LOST),
        ev.SocketClosed(sock=AUDIO2, by_peer=False, code=None),
        started,
        ev.SessionEnded(why=ev.EndReason.STOPPED_LOCALLY, detail="x"),
    ]
    assert _trace(reset_first) == _trace(event_first)


def test_interruptions_after_the_session_chose_to_end_are_not_compared() -> None:
    stop = AppCommand(Stop(), trigger=3)
    late = ev.MediaInterrupted(timestamp=1, raw={"media_type": 1})
    end = ev.SessionEnded(why=ev.EndReason.STOPPED_LOCALLY, detail="x")
    assert _trace([*_connected(), stop, late, end]) == _trace([*_connected(), stop, end])
    early = _trace([*_connected(), late, end])
    assert "signaling: MediaInterrupted media_type=AUDIO" in early


def test_media_sockets_closing_at_the_end_are_compared_by_outcome_only() -> None:
    terminated = ev.StreamStateChanged(
        state=StreamState.TERMINATED, reason=StopReason.MEETING_ENDED, timestamp=1
    )
    end = ev.SessionEnded(why=ev.EndReason.STREAM_TERMINATED, detail="x")
    audio_by_peer = ev.SocketClosed(sock=AUDIO2, by_peer=True, code=1000)
    audio_reset = ev.ConnectionFailed(sock=AUDIO2, error=LOST)
    sig_local = ev.SocketClosed(sock=SIG1, by_peer=False, code=1000)
    one = _trace([*_connected(), terminated, audio_by_peer, sig_local, end])
    assert one == _trace([*_connected(), terminated, audio_reset, sig_local, end])
    assert "audio: closed audio#1" in one


def test_signaling_keeps_how_it_closed() -> None:
    # The session reacts to each message before reading the next, so how the
    # signaling socket ends is the transport's doing and is compared as it is.
    terminated = ev.StreamStateChanged(
        state=StreamState.TERMINATED, reason=StopReason.MEETING_ENDED, timestamp=1
    )
    end = ev.SessionEnded(why=ev.EndReason.STREAM_TERMINATED, detail="x")
    by_peer = ev.SocketClosed(sock=SIG1, by_peer=True, code=1000)
    local = ev.SocketClosed(sock=SIG1, by_peer=False, code=1000)
    after_end = _trace([*_connected(), terminated, local, end])
    assert "signaling: SocketClosed signaling#1 local" in after_end
    assert after_end != _trace([*_connected(), terminated, by_peer, end])
    mid = _trace([*_connected(), by_peer, end])
    assert "signaling: SocketClosed signaling#1 by_peer code=1000" in mid


def test_reconnect_completion_keeps_its_place() -> None:
    # No reordering on the signaling lane: the session completes a reconnect
    # right after the handshake answer, before the next message.
    first = ev.FirstPacketReceived(timestamp=EPOCH)
    resumed = _resumed()
    in_order = _trace([*resumed[:3], first, *resumed[3:]])
    late = _trace([*resumed[:2], first, resumed[2], *resumed[3:]])
    assert in_order != late
    signaling = [line for line in in_order if line.startswith("signaling: ")]
    assert signaling[2:4] == [
        "signaling: ReconnectCompleted signaling attempts=1",
        "signaling: FirstPacketReceived ts=+0",
    ]


def test_never_connected_is_the_same_as_events_or_as_an_exception() -> None:
    error = RemoteProtocolError(
        FailureReason.AUTHENTICATION_FAILED,
        "rejected",
        status=StatusCode.INVALID_SIGNATURE,
        status_reason="invalid signature",
    )
    as_events: list[RecordItem] = [
        ev.ConnectionFailed(sock=SIG1, error=error),
        ev.SessionEnded(why=ev.EndReason.FATAL_ERROR, detail="x", error=error),
    ]
    as_exception: list[RecordItem] = [RunEnded(RunEndKind.RAISED, error)]
    expected = (
        "end: not connected: authentication_failed status=INVALID_SIGNATURE"
        " status_reason='invalid signature'",
    )
    assert _trace(as_events) == _trace(as_exception) == expected


def test_media_runs_are_digested_per_lane_and_layout() -> None:
    record: list[RecordItem] = [
        *_connected(),
        ev.TranscriptReceived(text="hi", user_id=7, timestamp=EPOCH + 40),
        ev.SessionEnded(why=ev.EndReason.STOPPED_LOCALLY, detail="x"),
    ]
    split = _trace(record)
    assert any(line.startswith("audio: AudioReceived x2 bytes=4 ts=+0..+20") for line in split)
    assert any(line.startswith("transcript: TranscriptReceived x1") for line in split)
    unified = _trace(record, Layout.UNIFIED)
    assert any(line.startswith("all: AudioReceived x2") for line in unified)
    changed = list(record)
    changed[3] = ev.AudioReceived(data=b"\x03\x05", user_id=0, timestamp=EPOCH + 20)
    assert _trace(changed) != split


def test_pictures_are_compared_without_their_wall_clock_label() -> None:
    def frame(epoch: int) -> ev.VideoReceived:
        stamp = epoch + 400
        return ev.VideoReceived(data=f"jpeg ts={stamp}".encode(), user_id=5, timestamp=stamp)

    end = ev.SessionEnded(why=ev.EndReason.STOPPED_LOCALLY, detail="x")
    one = normalise([frame(EPOCH), end], layout=Layout.SPLIT, media_epoch_ms=EPOCH)
    other = normalise([frame(EPOCH + 777), end], layout=Layout.SPLIT, media_epoch_ms=EPOCH + 777)
    assert one == other


def test_broken_invariants_are_reported() -> None:
    end = ev.SessionEnded(why=ev.EndReason.STOPPED_LOCALLY, detail="x")
    twice = _trace([*_connected(), end, end])
    assert "invariant: 2 SessionEnded events" in twice
    assert "invariant: events after SessionEnded" in twice
    after = _trace(
        [
            *_connected(),
            ev.ConnectionFailed(sock=SIG1, error=LOST),
            ev.SocketClosed(sock=SIG1, by_peer=False),
            end,
        ]
    )
    assert "invariant: SocketClosed after the end of signaling#1" in after
    assert "invariant: the run ended without SessionEnded" in _trace(_connected())


def test_trace_lines_joins_continued_items() -> None:
    text = """
        audio: a \
            b   c
        end: x
    """
    assert trace_lines(text) == ("audio: a b c", "end: x")


# --- a broken transport is caught -------------------------------------------------------------


class _DroppingStream:
    """Wraps a stream's ``react`` so that the third audio packet never reaches the app."""

    def __init__(self, stream: StreamEnv) -> None:
        self.audio = 0
        original = stream.react

        def react(event: ev.Event, commands: CommandTarget) -> float:
            if isinstance(event, ev.AudioReceived):
                self.audio += 1
                if self.audio == 3:
                    return 0.0
            return original(event, commands)

        stream.react = react  # type: ignore[method-assign]


class DroppingAdapter:
    """The in-memory reference with a bug: it loses one audio packet."""

    name = "dropping"
    uses_sockets = False

    def run(self, env: ScenarioEnv) -> None:
        for stream in env.streams:
            _DroppingStream(stream)
        MemoryAdapter().run(env)


class OwnJitterAdapter:
    """The in-memory reference with a bug: it ignores the injected jitter."""

    name = "own-jitter"
    uses_sockets = False

    def run(self, env: ScenarioEnv) -> None:
        for stream in env.streams:
            stream.jitter = lambda: 0.9  # type: ignore[method-assign]
        MemoryAdapter().run(env)


def test_a_transport_that_loses_an_event_fails(runner: Runner) -> None:
    result = runner.run_scenario(DroppingAdapter(), by_name("happy-split"))
    assert not result.ok
    assert "-audio: AudioReceived x3" in result.diff()
    assert "+audio: AudioReceived x2" in result.diff()


def test_a_transport_that_ignores_the_jitter_fails(runner: Runner) -> None:
    result = runner.run_scenario(OwnJitterAdapter(), by_name("media-reconnect"))
    assert not result.ok
    assert "-audio: ReconnectScheduled media attempt=1 delay=0.100" in result.diff()
    assert "+audio: ReconnectScheduled media attempt=1 delay=0.152" in result.diff()


def test_an_adapter_error_is_reported(runner: Runner) -> None:
    class Failing:
        name = "failing"
        uses_sockets = False

        def run(self, env: ScenarioEnv) -> None:
            raise RuntimeError("boom")

    result = runner.run_scenario(Failing(), by_name("happy-split"))
    assert not result.ok
    assert "RuntimeError: boom" in result.diff()
    assert result.traces == (("end: raised: RuntimeError: boom",),)


def test_adapters_load_by_name_or_spec() -> None:
    assert isinstance(load_adapter("memory"), MemoryAdapter)
    assert set(adapter_names()) == {"memory", *TRANSPORTS}
    for name in TRANSPORTS:
        adapter = load_adapter(name)
        assert isinstance(adapter, Harness)
        assert adapter.name == name
        # The drivers' adapters live with the drivers, registered by entry point.
        assert type(adapter).__module__ == "rtms_transports.conformance"
    assert isinstance(load_adapter("rtms_conformance.harness:MemoryAdapter"), MemoryAdapter)
    with pytest.raises(ValueError, match="module:factory"):
        load_adapter("nonsense")
    with pytest.raises(TypeError, match="has no name and run"):
        load_adapter("builtins:object")
    with pytest.raises(TypeError, match="not callable"):
        load_adapter("rtms_conformance.adapters:MEMORY")


THIRD_PARTY_ADAPTER = textwrap.dedent(
    """
    from rtms_conformance.harness import MemoryAdapter

    class Mine(MemoryAdapter):
        name = "mine"
    """
)


def test_a_third_party_transport_registers_its_adapter_by_name(tmp_path: Path) -> None:
    # What an installed package's entry point looks like on disk (a .dist-info folder).
    (tmp_path / "my_transport_adapter.py").write_text(THIRD_PARTY_ADAPTER)
    info = tmp_path / "my_transport-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-transport\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nmine = my_transport_adapter:Mine\n"
    )
    env = {"PYTHONPATH": str(tmp_path)}
    usage = _python("-m", "rtms_conformance", "--help", cwd=tmp_path, env=env)
    assert "asyncio, blocking, mine, trio" in " ".join(usage.stdout.split())
    done = _python(
        "-m", "rtms_conformance", "--adapter", "mine", "--scenario", "happy-split",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "adapter 'mine'" in done.stdout
    assert "1 passed, 0 failed" in done.stdout


# --- the pytest plugin and the command line -----------------------------------------------------


def _python(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


BROKEN_ADAPTER = textwrap.dedent(
    """
    from rtms_conformance.harness import MemoryAdapter

    class Broken(MemoryAdapter):
        name = "broken"

        def run(self, env):
            for stream in env.streams:
                stream.jitter = lambda: 0.9
            super().run(env)
    """
)


def test_importing_the_plugin_is_cheap(tmp_path: Path) -> None:
    # The package itself loads its server names on first use only.
    code = (
        "import sys, rtms_conformance.plugin\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in"
        " ('trio', 'asyncio', 'rtms_transports', 'trustme', 'ssl', 'rtms_proto', 'wsproto')"
        " or m.startswith('rtms_conformance.') and m != 'rtms_conformance.plugin']\n"
        "assert not heavy, heavy\n"
        "import rtms_conformance as rc\n"
        "from rtms_conformance.server import FakeRtmsServer\n"
        "assert rc.FakeRtmsServer is FakeRtmsServer\n"
        "assert all(getattr(rc, name) is not None for name in rc.__all__)\n"
    )
    done = _python("-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr


MY_TEST = textwrap.dedent(
    """
    from rtms_conformance.scenarios import by_name

    def test_it(rtms_conformance):
        report = rtms_conformance.run("memory", [by_name("happy-split")])
        assert report.ok, report.summary()
        assert len(rtms_conformance.scenarios) > 30
    """
)


def test_plugin_runs_the_catalogue_and_reports_diffs(tmp_path: Path) -> None:
    (tmp_path / "broken_adapter.py").write_text(BROKEN_ADAPTER)
    (tmp_path / "test_mine.py").write_text(MY_TEST)
    # The plugin is loaded by its pytest11 entry point (pyproject.toml).
    common = ["-m", "pytest", "-p", "no:cacheprovider"]
    common += ["-o", "addopts=", "-q"]
    # The catalogue on the reference, plus a test of the user's using the fixture.
    done = _python(*common, "--rtms-adapter", "memory", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(SCENARIOS) + 1} passed" in done.stdout
    # A broken adapter: one scenario fails with a readable diff, the other passes.
    done = _python(
        *common,
        "--rtms-adapter",
        "broken_adapter:Broken",
        "--rtms-scenario",
        "media-reconnect",
        "--rtms-scenario",
        "happy-split",
        "-k",
        "rtms",
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed, 1 deselected" in done.stdout
    assert "broken_adapter:Broken / media-reconnect: trace differs" in done.stdout
    assert "+audio: ReconnectScheduled media attempt=1 delay=0.152" in done.stdout


def test_command_line(tmp_path: Path) -> None:
    listed = _python("-m", "rtms_conformance", "--list", cwd=tmp_path)
    assert listed.returncode == 0
    assert all(name in listed.stdout for name in NAMES)
    ok = _python(
        "-m", "rtms_conformance", "--adapter", "memory", "--scenario", "happy-split",
        cwd=tmp_path,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "1 passed, 0 failed" in ok.stdout
    (tmp_path / "broken_adapter.py").write_text(BROKEN_ADAPTER)
    bad = _python(
        "-m", "rtms_conformance", "--adapter", "broken_adapter:Broken", "--scenario",
        "media-reconnect", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert bad.returncode == 1
    assert "FAIL media-reconnect" in bad.stdout
    assert "-audio: ReconnectScheduled media attempt=1 delay=0.100" in bad.stdout
    usage = _python("-m", "rtms_conformance", "--scenario", "happy-split", cwd=tmp_path)
    assert usage.returncode == 2
    unknown = _python(
        "-m", "rtms_conformance", "--adapter", "memory", "--scenario", "x", cwd=tmp_path
    )
    assert unknown.returncode == 2
    assert "no scenario 'x'" in unknown.stderr


def test_keepalive_fact_lists_roles(memory: Results) -> None:
    trace = memory["keepalive-every-socket"].traces[0]
    assert trace[-1] == (
        "server: keep-alives answered on signaling,audio,video,deskshare,transcript,chat"
    )
