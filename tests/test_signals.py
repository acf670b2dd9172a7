"""Ctrl-C on a loop without ``add_signal_handler`` (Windows' default): the asyncio
commands fall back to ``signal.signal`` and still stop in order.  Forced here on Linux
by making the loop refuse, as Windows' proactor loop does."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rtms_app._signals import on_signals

SHIM = """\
import sys, asyncio.unix_events as unix
def refuse(self, *args, **kwargs):
    raise NotImplementedError  # what Windows' proactor loop does
unix._UnixSelectorEventLoop.add_signal_handler = refuse
from rtms_app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def refuse(*args: object) -> None:
    raise NotImplementedError


def test_the_fallback_hands_each_signal_to_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    got: list[int] = []
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    async def main() -> str:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(loop, "add_signal_handler", refuse)
        with on_signals(loop, got.append) as how:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):
                if len(got) == 2:
                    break
                await asyncio.sleep(0.01)
        return how

    assert asyncio.run(main()) == "signal"
    assert got == [signal.SIGINT, signal.SIGTERM]
    assert {sig: signal.getsignal(sig) for sig in before} == before  # restored


def test_the_loop_handler_where_there_is_one_and_none_off_the_main_thread() -> None:
    got: list[int] = []

    async def main() -> str:
        loop = asyncio.get_running_loop()
        with on_signals(loop, got.append) as how:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):
                if got:
                    break
                await asyncio.sleep(0.01)
        return how

    assert asyncio.run(main()) == "loop" and got == [signal.SIGTERM]
    hows: list[str] = []

    def in_thread() -> None:
        async def enter() -> None:
            with on_signals(asyncio.get_running_loop(), got.append) as how:
                hows.append(how)

        asyncio.run(enter())

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)
    assert hows == ["none"]


def test_ctrl_c_stops_the_demo_in_order_without_add_signal_handler(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    child = subprocess.Popen(
        [sys.executable, "-c", SHIM, "demo", "--duration", "60", "-q", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        events = out / "events.jsonl"
        deadline = time.monotonic() + 30
        while not (events.exists() and "MediaConnected" in events.read_text(encoding="utf-8")):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 128 + signal.SIGINT, stderr
    assert "Traceback" not in stderr and "NotImplementedError" not in stderr
    last = json.loads(events.read_text(encoding="utf-8").splitlines()[-1])
    assert last["type"] == "SessionEnded"  # the stream was closed in order, not abandoned
