"""Ctrl-C and SIGTERM for the asyncio commands, on every platform.

``loop.add_signal_handler`` exists only on Unix event loops: Windows' default
(proactor) loop raises ``NotImplementedError``.  There the handler is
installed with :func:`signal.signal` instead and hands the signal over to the
loop with ``call_soon_threadsafe`` (the proactor loop wakes up for signals),
so the commands stop the same way everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["SIGNALS", "on_signals"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def on_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[int], object]) -> Iterator[str]:
    """While inside, ``callback(signum)`` runs on ``loop`` for SIGINT and SIGTERM.

    Yields how: ``"loop"`` (``add_signal_handler``), ``"signal"`` (the
    fallback) or ``"none"`` outside the main thread, where Python delivers no
    signal.  The previous handlers are back on leaving.
    """
    if threading.current_thread() is not threading.main_thread():
        yield "none"
        return
    installed: list[signal.Signals] = []
    try:
        for sig in SIGNALS:
            loop.add_signal_handler(sig, callback, int(sig))
            installed.append(sig)
    except NotImplementedError:
        for sig in installed:
            loop.remove_signal_handler(sig)
        with _fallback(loop, callback):
            yield "signal"
        return
    try:
        yield "loop"
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


@contextlib.contextmanager
def _fallback(loop: asyncio.AbstractEventLoop, callback: Callable[[int], object]) -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback, signum)

    previous: dict[signal.Signals, object] = {}
    try:
        for sig in SIGNALS:
            previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
